/**
 * The access-control building blocks on their own: scrypt hashes (pre-hashed config values too),
 * the login rate limiter's backoff, client keys (IPv4, IPv6 /64), the secret file, the share-link
 * store failing closed, the DER certificate builder (checked by node:crypto and the openssl CLI),
 * TLS loading (configured, self-signed once, renewal, clear errors) and the HTTP-to-HTTPS redirect.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load-config.js';
import { AccountStore } from '../../src/web/auth/accounts.js';
import { clientKey, createClientAddressOf, isLoopbackAddress, isLoopbackHost, normaliseAddress, socketAddressOf } from '../../src/access/client-address.js';
import { formatPasswordHash, hashPassword, parsePasswordHash, verifyPassword } from '../../src/web/auth/password.js';
import { LoginRateLimiter } from '../../src/web/auth/rate-limiter.js';
import { createSelfSignedCertificate } from '../../src/web/auth/self-signed.js';
import { ShareLinkStore, parseExpiresIn } from '../../src/web/auth/share-links.js';
import { ensureStorageDir, readOrCreateSecret } from '../../src/util/storage.js';
import { createHttpsRedirect, loadTlsCredentials } from '../../src/web/auth/tls.js';
import { parseAddressRanges } from '../../src/util/address-ranges.js';
import { silentLogger } from '../../src/util/logger.js';
import { recordingLogger, request } from './auth-helpers.js';

const run = promisify(execFile);

describe('auth: password hashes', () => {
  it('hashes with scrypt, verifies, and refuses a wrong password', async () => {
    const hash = await hashPassword('correct horse');
    assert.equal(hash.ln, 15);
    assert.equal(await verifyPassword('correct horse', hash), true);
    assert.equal(await verifyPassword('correct hors', hash), false);
    assert.equal(await verifyPassword('', hash), false);
  });

  it('round-trips the scrypt$ format and accepts a pre-hashed value made with node:crypto alone', async () => {
    const hash = await hashPassword('p\u00e4ssword', { ln: 12, r: 8, p: 1 });
    const text = formatPasswordHash(hash);
    assert.match(text, /^scrypt\$ln=12,r=8,p=1\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/);
    assert.equal(await verifyPassword('p\u00e4ssword', parsePasswordHash(text)), true);
    // NFC and NFD spellings of the same password are the same password.
    assert.equal(await verifyPassword('pa\u0308ssword', parsePasswordHash(text)), true);
    // The one-liner the README's Security section gives, run as written there.
    const docs = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const script = /^node -e '([^']+)' 'the password'$/m.exec(docs)?.[1];
    assert.ok(script, 'the README has the node -e one-liner');
    const { stdout } = await run(process.execPath, ['-e', script, 'From the docs 1']);
    assert.equal(await verifyPassword('From the docs 1', parsePasswordHash(stdout.trim())), true);
  });

  it('refuses malformed or abusive pre-hashed values with a reason', () => {
    assert.throws(() => parsePasswordHash('scrypt$nope'), /must look like/);
    assert.throws(() => parsePasswordHash(`scrypt$ln=25,r=8,p=1$${'A'.repeat(22)}$${'A'.repeat(43)}`), /must look like|ln 10-20/);
    assert.throws(() => parsePasswordHash(`scrypt$ln=20,r=32,p=4$${'A'.repeat(22)}$${'A'.repeat(43)}`), /256 MiB/);
  });

  it('builds accounts from the config: plaintext or pre-hashed, admins see all, bad entries are skipped by name', async () => {
    const logs: string[] = [];
    const prehashed = formatPasswordHash(await hashPassword('Pre-Hashed-9', { ln: 12, r: 8, p: 1 }));
    const store = await AccountStore.create(
      [
        { username: 'ann', password: 'Plain-Pass-1', cameras: ['a'], admin: false },
        { username: 'ben', password: prehashed, cameras: ['a'], admin: true },
        { username: 'cy', password: 'scrypt$broken', cameras: [], admin: false },
        { username: 'ann', password: 'dup', cameras: [], admin: false },
        { username: 'dee', password: 'Plain-Pass-2', cameras: ['a'], admin: false, ptz: true },
      ],
      recordingLogger(logs),
    );
    assert.equal(store.size, 3);
    assert.deepEqual(await store.authenticate('ann', 'Plain-Pass-1'), { username: 'ann', cameras: ['a'], admin: false, ptz: false, talk: false });
    assert.deepEqual(await store.authenticate('ben', 'Pre-Hashed-9'), { username: 'ben', cameras: 'all', admin: true, ptz: true, talk: true }, 'admins have the PTZ and talk rights');
    assert.deepEqual(await store.authenticate('dee', 'Plain-Pass-2'), { username: 'dee', cameras: ['a'], admin: false, ptz: true, talk: false });
    assert.equal(await store.authenticate('ann', 'Pre-Hashed-9'), undefined);
    assert.equal(await store.authenticate('nobody', 'Plain-Pass-1'), undefined);
    assert.equal(await store.authenticate('ann', `Plain-Pass-1${'x'.repeat(2000)}`), undefined);
    assert.ok(logs.some((l) => /Viewer 'cy' cannot log in: a pre-hashed password must look like/.test(l)), logs.join('\n'));
    assert.ok(logs.some((l) => /Viewer 'ann' is ignored/.test(l)));
    for (const line of logs) assert.ok(!line.includes('Plain-Pass-1') && !line.includes('dup'), line);
  });
});

describe('auth: login rate limiter', () => {
  it('allows a few failures, then doubles the wait, and forgets a quiet client', () => {
    let now = 0;
    const limiter = new LoginRateLimiter({ freeAttempts: 3, baseDelayMs: 1000, maxDelayMs: 8000, forgetAfterMs: 60_000 }, () => now);
    const fail = (): void => {
      const a = limiter.admit('k');
      assert.ok(a.allowed);
      a.done(false);
    };
    fail();
    fail();
    fail();
    assert.equal(limiter.blockedFor('k'), 1000);
    const refused = limiter.admit('k');
    assert.ok(!refused.allowed && refused.retryAfterMs === 1000);
    now += 1000;
    fail();
    assert.equal(limiter.blockedFor('k'), 2000);
    now += 2000;
    fail();
    assert.equal(limiter.blockedFor('k'), 4000);
    now += 4000;
    fail();
    assert.equal(limiter.blockedFor('k'), 8000, 'capped');
    assert.equal(limiter.blockedFor('other'), 0);
    now += 70_000;
    const fresh = limiter.admit('k');
    assert.ok(fresh.allowed);
    fresh.done(false);
    assert.equal(limiter.blockedFor('k'), 0, 'forgotten after a quiet period');
  });

  it('caps parallel attempts per client and the size of its table', () => {
    const limiter = new LoginRateLimiter({ maxInFlight: 2, maxEntries: 100 });
    const a = limiter.admit('x');
    const b = limiter.admit('x');
    assert.ok(a.allowed && b.allowed);
    assert.equal(limiter.admit('x').allowed, false);
    if (a.allowed) a.done(true);
    assert.equal(limiter.admit('x').allowed, true);
    for (let i = 0; i < 1000; i++) limiter.fail(`ip-${i}`);
    assert.ok(limiter.size <= 100);
  });
});

describe('auth: client addresses', () => {
  it('keys IPv4 by address and IPv6 by /64; knows loopback', () => {
    assert.equal(clientKey('::ffff:192.168.1.9'), '192.168.1.9');
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
    assert.equal(clientKey('::1'), '::1');
    assert.equal(normaliseAddress(undefined), 'unknown');
    for (const a of ['127.0.0.1', '127.0.0.2', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackAddress(a), true, a);
    for (const a of ['10.0.0.1', '::2', 'fe80::1', '0.0.0.0']) assert.equal(isLoopbackAddress(a), false, a);
    for (const h of ['localhost', 'localhost:8090', '127.0.0.1:1', '[::1]:8090']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['evil.example', 'localhost.evil.example', '127.0.0.1.nip.io', undefined]) assert.equal(isLoopbackHost(h), false, String(h));
  });

  /** A request as the server sees it: the TCP peer and the headers. */
  const fakeRequest = (peer: string, forwardedFor?: string | string[]): IncomingMessage =>
    ({ socket: { remoteAddress: peer }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } }) as unknown as IncomingMessage;

  it('ignores X-Forwarded-For unless the peer is a trusted proxy', () => {
    assert.equal(socketAddressOf(fakeRequest('::ffff:10.0.0.9', '203.0.113.5')), '10.0.0.9');
    const behindNginx = createClientAddressOf(['127.0.0.1', '10.1.0.0/16']);
    assert.equal(behindNginx(fakeRequest('10.0.0.9', '203.0.113.5')), '10.0.0.9', 'a client that is not a proxy cannot claim an address');
    assert.equal(behindNginx(fakeRequest('127.0.0.1', '203.0.113.5')), '203.0.113.5');
    assert.equal(behindNginx(fakeRequest('::ffff:127.0.0.1', '203.0.113.5')), '203.0.113.5', 'IPv4-mapped peer');
    assert.equal(behindNginx(fakeRequest('127.0.0.1')), '127.0.0.1', 'no header: the proxy itself');
  });

  it('walks X-Forwarded-For from the right: a forged left part never changes who the client is', () => {
    const resolve = createClientAddressOf(['127.0.0.1', '10.1.0.0/16']);
    assert.equal(resolve(fakeRequest('127.0.0.1', '198.51.100.1, 203.0.113.5')), '203.0.113.5');
    assert.equal(resolve(fakeRequest('127.0.0.1', '203.0.113.5, 10.1.2.3')), '203.0.113.5', 'through two proxies');
    assert.equal(resolve(fakeRequest('127.0.0.1', ['198.51.100.1', '203.0.113.5'])), '203.0.113.5', 'repeated headers');
    assert.equal(resolve(fakeRequest('127.0.0.1', '10.1.0.7, 10.1.2.3')), '10.1.0.7', 'only proxies: the leftmost');
    assert.equal(resolve(fakeRequest('127.0.0.1', '[2001:db8::5]')), '2001:db8::5', 'bracketed IPv6');
    // Rubbish in the header stops the walk at the last trusted hop: one attacker stays one address.
    assert.equal(resolve(fakeRequest('127.0.0.1', 'unknown')), '127.0.0.1');
    assert.equal(resolve(fakeRequest('127.0.0.1', '203.0.113.5, <script>, 10.1.2.3')), '10.1.2.3');
    assert.equal(resolve(fakeRequest('127.0.0.1', ' , ')), '127.0.0.1');
  });

  it('parses addresses and CIDR ranges, and names a bad entry', () => {
    const ranges = parseAddressRanges(['192.168.1.0/24', '::1', 'fd00::/8']);
    for (const a of ['192.168.1.77', '::ffff:192.168.1.1', '::1', 'fd12:3456::1']) assert.equal(ranges.has(a), true, a);
    for (const a of ['192.168.2.1', '::2', 'fe80::1', 'nonsense', '']) assert.equal(ranges.has(a), false, a);
    for (const bad of ['localhost', '10.0.0.0/33', '::/129', '10.0.0.0/8/8', '10.0.0.0/', '10.0.0.0/x', '1.2.3']) {
      assert.throws(() => parseAddressRanges([bad]), new RegExp(`"${bad.replace(/[./]/g, '\\$&')}" is not an IP address or a CIDR range`), bad);
    }
  });
});

describe('auth: storage, secret and share-link store', () => {
  let storage: string;
  before(async () => {
    storage = await mkdtemp(join(tmpdir(), 'wrc-auth-unit-'));
  });
  after(() => rm(storage, { recursive: true, force: true }));

  it('makes the secret once (0600 in a 0700 folder); concurrent starts agree; a damaged one is an error', async () => {
    const dir = await ensureStorageDir(storage);
    const results = await Promise.all([readOrCreateSecret(dir), readOrCreateSecret(dir), readOrCreateSecret(dir)]);
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.ok(results.every((r) => r.key.equals(results[0]!.key)));
    assert.equal((await stat(join(dir, 'secret.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await chmod(join(dir, 'secret.key'), 0o644);
    const again = await readOrCreateSecret(dir);
    assert.ok(again.key.equals(results[0]!.key) && !again.created);
    assert.equal((await stat(join(dir, 'secret.key'))).mode & 0o777, 0o600, 'loose permissions are tightened');
    await writeFile(join(dir, 'secret.key'), 'short');
    await assert.rejects(readOrCreateSecret(dir), /damaged/);
    await assert.rejects(ensureStorageDir('relative/path'), /absolute/);
  });

  it('fails closed: a damaged link list revokes every link; tampered entries are dropped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wrc-links-'));
    try {
      const key = Buffer.alloc(32, 7);
      const store = new ShareLinkStore({ dir, key, now: Date.now, log: silentLogger, maxLinks: 2 });
      await store.load();
      const { token } = await store.create({ cameras: ['a'], expiresInMs: 3_600_000, label: 'x\u0000y\n', createdBy: 'admin' });
      assert.equal(store.verify(token).ok, true);
      assert.equal(store.list()[0]!.label, 'x y');
      await store.create({ cameras: 'all', expiresInMs: null, label: '', createdBy: 'admin' });
      await assert.rejects(store.create({ cameras: ['a'], expiresInMs: null, label: '', createdBy: 'admin' }), /already 2 share links/);
      // Another key (a replaced secret) makes every token worthless.
      const other = new ShareLinkStore({ dir, key: Buffer.alloc(32, 8), now: Date.now, log: silentLogger, maxLinks: 10 });
      await other.load();
      assert.deepEqual(other.verify(token), { ok: false, reason: 'bad-signature' });
      // Every other spelling of the signature is refused, including the ones that decode to the same
      // bytes (the last base64url character of a 32-byte MAC has 2 unused bits).
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const sameBytes = [...alphabet].filter((c) => c !== token.at(-1)).map((c) => `${token.slice(0, -1)}${c}`)
        .filter((t) => Buffer.from(t.slice(t.lastIndexOf('.') + 1), 'base64url').equals(Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url')));
      assert.equal(sameBytes.length, 3, 'three other spellings decode to the same MAC');
      for (const [i, c] of [...alphabet].entries()) {
        if (c === token.at(-1)) continue;
        assert.deepEqual(store.verify(`${token.slice(0, -1)}${c}`), { ok: false, reason: 'bad-signature' }, `last character ${c} (${i})`);
      }
      // Editing the stored camera list breaks the MAC over it.
      const file = join(dir, 'share-links.json');
      await writeFile(file, (await readFile(file, 'utf8')).replace('"a"', '"b"'));
      const edited = new ShareLinkStore({ dir, key, now: Date.now, log: silentLogger, maxLinks: 10 });
      await edited.load();
      assert.deepEqual(edited.verify(token), { ok: false, reason: 'bad-signature' });
      await writeFile(file, '{ not json');
      const logs: string[] = [];
      const broken = new ShareLinkStore({ dir, key, now: Date.now, log: recordingLogger(logs), maxLinks: 10 });
      await broken.load();
      assert.deepEqual(broken.verify(token), { ok: false, reason: 'unknown' });
      assert.ok(logs.some((l) => /could not be read/.test(l)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('parses expiresIn presets, never, and seconds within 1 h .. 30 d', () => {
    assert.equal(parseExpiresIn(undefined, 5), 5);
    // shareLinks.defaultExpiry "never": a link made without an expiry never ends.
    assert.equal(parseExpiresIn(undefined, null), null);
    assert.equal(parseExpiresIn('never', 5), null);
    assert.equal(parseExpiresIn('7d', 5), 7 * 86_400_000);
    assert.equal(parseExpiresIn(3600, 5), 3_600_000);
    for (const bad of ['2d', 3599, 2_592_001, 1.5e3, '3600', null, {}]) assert.throws(() => parseExpiresIn(bad, 5), RangeError, String(bad));
  });
});

describe('auth: TLS', () => {
  let storage: string;
  before(async () => {
    storage = await mkdtemp(join(tmpdir(), 'wrc-tls-'));
  });
  after(() => rm(storage, { recursive: true, force: true }));

  it('builds a certificate openssl and node:crypto both accept: EC P-256, SAN, CA:FALSE, serverAuth, <= 825 days', async () => {
    const made = createSelfSignedCertificate({ dnsNames: ['localhost', 'homebridge.local'], ipAddresses: ['127.0.0.1', '192.168.1.20', '::1', '2001:db8::7'] });
    const x509 = new X509Certificate(made.certPem);
    assert.equal(x509.verify(x509.publicKey), true, 'self-signature verifies');
    assert.equal(x509.checkPrivateKey(createPrivateKey(made.keyPem)), true);
    assert.equal(x509.ca, false);
    assert.equal(x509.checkHost('homebridge.local'), 'homebridge.local');
    assert.equal(x509.checkIP('192.168.1.20'), '192.168.1.20');
    assert.equal(x509.checkIP('2001:db8::7'), '2001:db8::7');
    assert.deepEqual(x509.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    const days = (Date.parse(x509.validTo) - Date.parse(x509.validFrom)) / 86_400_000;
    assert.ok(days <= 825 && days > 800, String(days));
    const dir = await mkdtemp(join(tmpdir(), 'wrc-cert-'));
    try {
      await writeFile(join(dir, 'c.pem'), made.certPem);
      const { stdout } = await run('openssl', ['x509', '-in', join(dir, 'c.pem'), '-noout', '-text']);
      assert.match(stdout, /Signature Algorithm: ecdsa-with-SHA256/);
      assert.match(stdout, /CA:FALSE/);
      assert.match(stdout, /TLS Web Server Authentication/);
      assert.match(stdout, /DNS:localhost, DNS:homebridge\.local, IP Address:127\.0\.0\.1, IP Address:192\.168\.1\.20/);
      const verified = await run('openssl', ['verify', '-CAfile', join(dir, 'c.pem'), join(dir, 'c.pem')]);
      assert.match(verified.stdout, /OK/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('makes the self-signed certificate once, keeps it, and renews it only near expiry', async () => {
    assert.equal(await loadTlsCredentials({ selfSigned: false }, { storagePath: storage }), undefined);
    const first = await loadTlsCredentials({ selfSigned: true }, { storagePath: storage });
    assert.ok(first);
    assert.equal(first.source, 'self-signed');
    assert.equal(first.certPath, join(storage, 'webrtc-cameras', 'tls', 'cert.pem'));
    assert.equal((await stat(join(storage, 'webrtc-cameras', 'tls', 'key.pem'))).mode & 0o777, 0o600);
    const second = await loadTlsCredentials({ selfSigned: true }, { storagePath: storage });
    assert.equal(second?.fingerprint, first.fingerprint, 'the same certificate at the next start');
    const later = await loadTlsCredentials({ selfSigned: true }, { storagePath: storage, now: () => first.validTo.getTime() - 10 * 86_400_000 });
    assert.notEqual(later?.fingerprint, first.fingerprint, 'renewed within 30 days of expiry');
  });

  it('loads a configured certificate and key, and says clearly what is wrong with them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wrc-own-'));
    try {
      const a = createSelfSignedCertificate({ dnsNames: ['a'], ipAddresses: [] });
      const b = createSelfSignedCertificate({ dnsNames: ['b'], ipAddresses: [] });
      await writeFile(join(dir, 'a.pem'), a.certPem);
      await writeFile(join(dir, 'a.key'), a.keyPem);
      await writeFile(join(dir, 'b.key'), b.keyPem);
      const own = await loadTlsCredentials({ certPath: join(dir, 'a.pem'), keyPath: join(dir, 'a.key'), selfSigned: true }, { storagePath: storage });
      assert.equal(own?.source, 'configured');
      await assert.rejects(loadTlsCredentials({ certPath: join(dir, 'a.pem'), keyPath: join(dir, 'b.key') }, { storagePath: storage }), /does not belong to the certificate/);
      await assert.rejects(loadTlsCredentials({ certPath: join(dir, 'none.pem'), keyPath: join(dir, 'a.key') }, { storagePath: storage }), /none\.pem cannot be read: it does not exist/);
      await assert.rejects(loadTlsCredentials({ certPath: join(dir, 'a.key'), keyPath: join(dir, 'a.key') }, { storagePath: storage }), /is not a PEM certificate/);
      await assert.rejects(loadTlsCredentials({ certPath: join(dir, 'a.pem') }, { storagePath: storage }), /must be set together/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('redirects plain HTTP to HTTPS on the same host and path, and nothing else', async () => {
    const redirect = createHttpsRedirect({ port: 0, host: '127.0.0.1', httpsPort: 8443 });
    const { port } = await redirect.listen();
    try {
      const answer = await request(`http://127.0.0.1:${port}/api/cameras?x=1`);
      assert.equal(answer.status, 308);
      assert.equal(answer.headers.location, 'https://127.0.0.1:8443/api/cameras?x=1');
      assert.match(String(answer.headers['content-security-policy']), /frame-ancestors 'none'/);
      const named = await request(`http://127.0.0.1:${port}//evil.example/x`, { headers: { Host: `${hostname()}:80` } });
      assert.equal(named.headers.location, `https://${hostname()}:8443/evil.example/x`);
      const local = await request(`http://127.0.0.1:${port}/x`, { headers: { Host: 'localhost' } });
      assert.equal(local.headers.location, 'https://localhost:8443/x');
      const bad = await request(`http://127.0.0.1:${port}/`, { headers: { Host: 'a b' } });
      assert.equal(bad.status, 400);
      const posted = await request(`http://127.0.0.1:${port}/login`, { method: 'POST', body: 'username=x&password=y' });
      assert.equal(posted.status, 308);
      assert.equal(posted.body, '', 'nothing is served in clear');
    } finally {
      await redirect.close();
    }
  });

  it('never redirects to a host named by the Host header that this machine does not answer for (issue 12, item 5)', async () => {
    const redirect = createHttpsRedirect({ port: 0, host: '127.0.0.1', httpsPort: 8443 });
    const { port } = await redirect.listen();
    try {
      const forged = await request(`http://127.0.0.1:${port}/login?next=1`, { headers: { Host: 'evil.example' } });
      assert.equal(forged.status, 308);
      assert.equal(forged.headers.location, 'https://127.0.0.1:8443/login?next=1', 'the address the connection arrived on');
      const forgedPort = await request(`http://127.0.0.1:${port}/`, { headers: { Host: 'evil.example:8443' } });
      assert.equal(forgedPort.headers.location, 'https://127.0.0.1:8443/');
    } finally {
      await redirect.close();
    }
    const viaPublic = createHttpsRedirect({ port: 0, host: '127.0.0.1', httpsPort: 8443, publicUrl: 'https://cams.example.net/watch/' });
    const listening = await viaPublic.listen();
    try {
      const forged = await request(`http://127.0.0.1:${listening.port}/s/abc`, { headers: { Host: 'evil.example' } });
      assert.equal(forged.headers.location, 'https://cams.example.net/watch/s/abc', 'web.publicUrl wins');
      const own = await request(`http://127.0.0.1:${listening.port}/`, { headers: { Host: 'localhost' } });
      assert.equal(own.headers.location, 'https://cams.example.net/watch/');
    } finally {
      await viaPublic.close();
    }
  });
});

describe('auth: the config fields access control reads', () => {
  const camera = { name: 'Front door', rtspUrl: 'rtsp://127.0.0.1:8554/x' };

  it('reads web.tls.redirectHttpPort only when set, and refuses the web port itself', () => {
    const plain = loadConfig({ cameras: [camera] });
    assert.equal('redirectHttpPort' in plain.config.web.tls, false);
    const set = loadConfig({ cameras: [camera], web: { tls: { selfSigned: true, redirectHttpPort: 8080 } } });
    assert.deepEqual(set.config.web.tls, { selfSigned: true, certPath: undefined, keyPath: undefined, redirectHttpPort: 8080 });
    const clash = loadConfig({ cameras: [camera], web: { port: 8443, tls: { selfSigned: true, redirectHttpPort: 8443 } } });
    assert.ok(clash.messages.some((m) => /redirectHttpPort \(8443\) must differ from web\.port/.test(m.text)), JSON.stringify(clash.messages));
    const range = loadConfig({ cameras: [camera], web: { tls: { redirectHttpPort: 70000 } } });
    assert.ok(range.messages.some((m) => m.level === 'warn' && /redirectHttpPort/.test(m.text)));
  });

  it('accepts a pre-hashed viewer password and registers it as a secret like any password', async () => {
    const hashed = formatPasswordHash(await hashPassword('x', { ln: 10, r: 8, p: 1 }));
    const loaded = loadConfig({ cameras: [camera], viewers: [{ username: 'ann', password: hashed, admin: true }] });
    assert.equal(loaded.config.viewers[0]?.password, hashed);
    assert.ok(loaded.secrets.has(hashed));
  });
});
