// How the Homebridge UI server reaches the running plugin: admin.json read on every call, the admin
// secret as a bearer token, JSON in and out, clear errors when the plugin is not there, and over
// HTTPS the plugin's certificate pinned by fingerprint.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { createPluginClient, PluginUnavailableError, readAdminInfo } from '../../src/homebridge-ui/plugin-client.js';
import { createSelfSignedCertificate } from '../../src/web/auth/self-signed.js';

const dirs: string[] = [];
const servers: Array<http.Server | https.Server> = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function storage(admin?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'plugin-client-'));
  dirs.push(dir);
  if (admin !== undefined) {
    mkdirSync(join(dir, 'webrtc-cameras'));
    writeFileSync(join(dir, 'webrtc-cameras', 'admin.json'), typeof admin === 'string' ? admin : JSON.stringify(admin));
  }
  return dir;
}

interface Seen {
  method: string;
  url: string;
  authorization: string | undefined;
  type: string | undefined;
  body: string;
}

/** The plugin's admin API stand-in: records requests, answers from `reply`. */
async function plugin(reply: (seen: Seen) => { status: number; json?: unknown; text?: string }, tlsOptions?: https.ServerOptions) {
  const seen: Seen[] = [];
  const handler: http.RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, type: req.headers['content-type'], body: Buffer.concat(chunks).toString() };
      seen.push(entry);
      const answer = reply(entry);
      res.statusCode = answer.status;
      if (answer.json !== undefined) {
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.end(JSON.stringify(answer.json));
      } else {
        res.end(answer.text ?? '');
      }
    });
  };
  const server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { seen, port: (server.address() as AddressInfo).port };
}

describe('readAdminInfo', () => {
  it('says the plugin is not running when admin.json is missing, and damaged when it is malformed', async () => {
    await assert.rejects(readAdminInfo(storage()), (e: unknown) => e instanceof PluginUnavailableError && /not running/.test(e.message));
    await assert.rejects(readAdminInfo(storage({ port: '1', tls: false, secret: 's' })), (e: unknown) => e instanceof PluginUnavailableError && /damaged/.test(e.message));
  });

  it('keeps only the known fields', async () => {
    const info = await readAdminInfo(storage({ port: 8443, tls: true, secret: 's3', fingerprint256: 'AB:CD', extra: 'x' }));
    assert.deepEqual(info, { port: 8443, tls: true, secret: 's3', fingerprint256: 'AB:CD' });
  });
});

describe('createPluginClient', () => {
  it('sends the admin secret as a bearer token and JSON bodies, and reads JSON answers', async () => {
    const p = await plugin(() => ({ status: 200, json: { cameras: 2 } }));
    const client = createPluginClient(storage({ port: p.port, tls: false, secret: 'topsecret' }));
    assert.deepEqual(await client.json('POST', '/admin/test', { url: 'rtsp://x' }), { cameras: 2 });
    assert.deepEqual(p.seen[0], { method: 'POST', url: '/admin/test', authorization: 'Bearer wrcadmin.topsecret', type: 'application/json', body: '{"url":"rtsp://x"}' });
    await client.request('GET', '/admin/status');
    assert.equal(p.seen[1]!.type, undefined, 'no body, no content type');
  });

  it('reads admin.json on every call: a restarted plugin has a new secret', async () => {
    const p = await plugin(() => ({ status: 204 }));
    const dir = storage({ port: p.port, tls: false, secret: 'one' });
    const client = createPluginClient(dir);
    await client.request('GET', '/a');
    writeFileSync(join(dir, 'webrtc-cameras', 'admin.json'), JSON.stringify({ port: p.port, tls: false, secret: 'two' }));
    await client.request('GET', '/a');
    assert.deepEqual(p.seen.map((s) => s.authorization), ['Bearer wrcadmin.one', 'Bearer wrcadmin.two']);
  });

  it('json() turns an error answer into its message, or into the status when there is none', async () => {
    const p = await plugin((s) => (s.url === '/with-message' ? { status: 409, json: { message: 'That name is taken' } } : { status: 500, text: 'oops' }));
    const client = createPluginClient(storage({ port: p.port, tls: false, secret: 's' }));
    await assert.rejects(client.json('POST', '/with-message'), /^Error: That name is taken$/);
    await assert.rejects(client.json('POST', '/other'), /The plugin answered 500/);
    const plain = await plugin(() => ({ status: 200, text: 'not json' }));
    assert.equal(await createPluginClient(storage({ port: plain.port, tls: false, secret: 's' })).json('GET', '/'), undefined, 'a non-JSON answer parses to nothing');
  });

  it('a refused connection means the plugin is not running', async () => {
    const p = await plugin(() => ({ status: 200 }));
    const port = p.port;
    await new Promise((resolve) => servers.pop()!.close(resolve));
    await assert.rejects(createPluginClient(storage({ port, tls: false, secret: 's' })).request('GET', '/'), (e: unknown) => e instanceof PluginUnavailableError);
  });

  it('over HTTPS, talks only to the certificate whose fingerprint admin.json names', async () => {
    const { certPem, keyPem } = createSelfSignedCertificate({ dnsNames: ['homebridge.local'], ipAddresses: [] });
    const p = await plugin(() => ({ status: 200, json: { ok: true } }), { cert: certPem, key: keyPem });
    const fingerprint256 = new X509Certificate(certPem).fingerprint256;
    const pinned = createPluginClient(storage({ port: p.port, tls: true, secret: 's', fingerprint256 }));
    assert.deepEqual(await pinned.json('GET', '/admin/status'), { ok: true });

    // Pinned to another certificate's fingerprint. (Overwriting the first byte with a constant once
    // left it unchanged: one random certificate in 256 starts with that byte.)
    const otherCertificate = createSelfSignedCertificate({ dnsNames: ['homebridge.local'], ipAddresses: [] }).certPem;
    const otherFingerprint = new X509Certificate(otherCertificate).fingerprint256;
    assert.notEqual(otherFingerprint, fingerprint256);
    const other = createPluginClient(storage({ port: p.port, tls: true, secret: 'must-not-leak', fingerprint256: otherFingerprint }));
    await assert.rejects(other.request('GET', '/admin/status'), (e: unknown) => e instanceof PluginUnavailableError && /certificate mismatch/.test(e.message));
    const unpinned = createPluginClient(storage({ port: p.port, tls: true, secret: 'must-not-leak' }));
    await assert.rejects(unpinned.request('GET', '/admin/status'), /certificate mismatch/);
    assert.ok(p.seen.every((s) => s.authorization === 'Bearer wrcadmin.s'), 'the secret went to the pinned server only');
    // Not a byte of a request before the pin matched: the server saw the pinned client's one request only.
    assert.equal(p.seen.length, 1);
  });
});
