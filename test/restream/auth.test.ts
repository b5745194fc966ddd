import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseAuthParams, RtspDigestAuthenticator } from '../../src/restream/auth.js';

const credentials = { username: 'nvr', password: 'p@ss, "word"' };
const uri = 'rtsp://192.168.1.5:8554/cam';

function hash(algorithm: 'md5' | 'sha256', text: string): string {
  return createHash(algorithm).update(text).digest('hex');
}

/** What a client computes (RFC 7616), written independently of the server code. */
function digestHeader(
  challenge: string,
  options: { username?: string; password?: string; method?: string; uri?: string; qop?: boolean; algorithm?: 'MD5' | 'SHA-256' } = {},
): string {
  const params = parseAuthParams(challenge.replace(/^Digest /, ''));
  const algorithm = options.algorithm ?? 'MD5';
  const h = (text: string): string => hash(algorithm === 'MD5' ? 'md5' : 'sha256', text);
  const user = options.username ?? credentials.username;
  const realm = params.get('realm')!;
  const nonce = params.get('nonce')!;
  const target = options.uri ?? uri;
  const ha1 = h(`${user}:${realm}:${options.password ?? credentials.password}`);
  const ha2 = h(`${options.method ?? 'DESCRIBE'}:${target}`);
  if (options.qop === false) {
    return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${target}", response="${h(`${ha1}:${nonce}:${ha2}`)}", algorithm=${algorithm}`;
  }
  const response = h(`${ha1}:${nonce}:00000001:0a4f113b:auth:${ha2}`);
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${target}", ` +
    `response="${response}", qop=auth, nc=00000001, cnonce="0a4f113b", algorithm=${algorithm}`;
}

describe('re-stream authentication', () => {
  const auth = new RtspDigestAuthenticator(credentials);
  const challenge = auth.challenge({ allowBasic: false })[0]!;
  const lan = { allowBasic: false };

  it('challenges with Digest MD5 qop=auth, plus Basic only when allowed', () => {
    assert.match(challenge, /^Digest realm="homebridge-webrtc-cameras", nonce="[^"]+", algorithm=MD5, qop="auth"$/);
    assert.equal(auth.challenge({ allowBasic: false }).length, 1);
    assert.deepEqual(auth.challenge({ allowBasic: true }).slice(1), ['Basic realm="homebridge-webrtc-cameras"']);
    assert.match(auth.challenge({ allowBasic: false, stale: true })[0]!, /, stale=true$/);
  });

  it('accepts correct Digest answers: qop=auth, no qop (RFC 2069 style), SHA-256, path-only uri', () => {
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(challenge), lan), 'ok');
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(challenge, { qop: false }), lan), 'ok');
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(challenge, { algorithm: 'SHA-256' }), lan), 'ok');
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(challenge, { uri: '/cam' }), lan), 'ok');
    assert.equal(auth.check('SETUP', `${uri}/trackID=0`, digestHeader(challenge, { method: 'SETUP', uri: `${uri}/trackID=0` }), lan), 'ok');
  });

  it('denies wrong passwords, users, methods, URIs, forged nonces and unknown schemes', () => {
    assert.equal(auth.check('DESCRIBE', uri, undefined, lan), 'missing');
    assert.equal(auth.check('DESCRIBE', uri, '  ', lan), 'missing');
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(challenge, { password: 'wrong' }), lan), 'denied');
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(challenge, { username: 'admin' }), lan), 'denied');
    assert.equal(auth.check('PLAY', uri, digestHeader(challenge), lan), 'denied');
    assert.equal(auth.check('DESCRIBE', `${uri}2`, digestHeader(challenge), lan), 'denied');
    const forged = challenge.replace(/nonce="[^"]+"/, `nonce="${Date.now().toString(16)}.AAAAAAAAAAAAAAAAAAAAAA"`);
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(forged), lan), 'denied');
    const otherServer = new RtspDigestAuthenticator(credentials).challenge(lan)[0]!;
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(otherServer), lan), 'denied');
    assert.equal(auth.check('DESCRIBE', uri, 'Bearer abc', lan), 'denied');
    assert.equal(auth.check('DESCRIBE', uri, 'Digest garbage', lan), 'denied');
    assert.equal(auth.check('DESCRIBE', uri, digestHeader(challenge).replace('qop=auth', 'qop=auth-int'), lan), 'denied');
  });

  it('refuses Basic from the LAN even with the right password, accepts it where allowed', () => {
    const basic = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    assert.equal(auth.check('DESCRIBE', uri, basic, { allowBasic: false }), 'denied');
    assert.equal(auth.check('DESCRIBE', uri, basic, { allowBasic: true }), 'ok');
    const wrong = `Basic ${Buffer.from(`${credentials.username}:nope`).toString('base64')}`;
    assert.equal(auth.check('DESCRIBE', uri, wrong, { allowBasic: true }), 'denied');
    assert.equal(auth.check('DESCRIBE', uri, 'Basic !!!', { allowBasic: true }), 'denied');
  });

  it('calls a correct answer to an expired nonce stale, so the client retries without asking the user', () => {
    let now = 1_000_000;
    const clocked = new RtspDigestAuthenticator(credentials, 'r', 60_000, () => now);
    const old = clocked.challenge(lan)[0]!;
    now += 61_000;
    assert.equal(clocked.check('DESCRIBE', uri, digestHeader(old), lan), 'stale');
    assert.equal(clocked.check('DESCRIBE', uri, digestHeader(old, { password: 'x' }), lan), 'denied');
    assert.equal(clocked.check('DESCRIBE', uri, digestHeader(clocked.challenge(lan)[0]!), lan), 'ok');
  });

  it('parses quoted parameters with commas and escapes', () => {
    const params = parseAuthParams('username="a\\"b", realm="x, y", nc=00000001, qop=auth');
    assert.equal(params.get('username'), 'a"b');
    assert.equal(params.get('realm'), 'x, y');
    assert.equal(params.get('nc'), '00000001');
    assert.equal(params.get('qop'), 'auth');
  });
});
