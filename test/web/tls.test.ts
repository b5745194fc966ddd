/**
 * HTTPS: the server takes PEM cert/key buffers, serves the same routes and headers, and the origin
 * check knows the scheme (an http:// page may not open the https:// server's WebSocket).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { registryOf, sampleCameras } from './fixtures.js';

function httpsGet(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    }).on('error', reject);
  });
}

function upgradeStatus(url: string, origin: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { rejectUnauthorized: false, headers: { Origin: origin } });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('error', () => undefined);
  });
}

describe('web server over HTTPS', () => {
  let dir: string;
  let server: WebServer;
  let url: string;
  let port: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wrc-web-tls-'));
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    server = createWebServer({
      port: 0,
      host: '127.0.0.1',
      registry: registryOf(sampleCameras()),
      tls: { cert: await readFile(join(dir, 'cert.pem')), key: await readFile(join(dir, 'key.pem')) },
      signalling: (ws) => ws.close(1000),
    });
    ({ url, port } = await server.listen());
  });
  after(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves the page and API with the same headers', async () => {
    assert.equal(url, `https://127.0.0.1:${port}/`);
    const page = await httpsGet(url);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
    const api = await httpsGet(`${url}api/cameras`);
    assert.equal((JSON.parse(api.body) as unknown[]).length, 3);
  });

  it('judges WebSocket origins with the https scheme', async () => {
    const signal = `wss://127.0.0.1:${port}/signal`;
    assert.equal(await upgradeStatus(signal, `https://127.0.0.1:${port}`), 101);
    assert.equal(await upgradeStatus(signal, `http://127.0.0.1:${port}`), 403);
  });
});
