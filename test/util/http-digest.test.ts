import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Authorizer, authorizationFor, basicAuthorization, chooseChallenge, digestResponse, isStale, parseChallenges } from '../../src/util/http-digest.js';

// RFC 7616 section 3.9.1: the same request answered with SHA-256 and with MD5.
const rfc7616 = {
  username: 'Mufasa',
  password: 'Circle of Life',
  realm: 'http-auth@example.org',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  nc: '00000001',
  qop: 'auth' as const,
  method: 'GET',
  uri: '/dir/index.html',
};

/** Parses an Authorization: Digest value back into its fields. */
function fields(header: string): Record<string, string> {
  assert.match(header, /^Digest /);
  const [c] = parseChallenges([header]);
  return c!.params;
}

describe('digestResponse', () => {
  it('matches the RFC 7616 SHA-256 example', () => {
    assert.equal(digestResponse({ ...rfc7616, algorithm: 'SHA-256' }), '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
  });

  it('matches the RFC 7616 MD5 example', () => {
    assert.equal(digestResponse({ ...rfc7616, algorithm: 'MD5' }), '8ca523f5e9506fed4657c9700eebdbec');
  });

  it('matches the RFC 2617 section 3.5 example', () => {
    const r = digestResponse({
      algorithm: 'MD5',
      username: 'Mufasa',
      password: 'Circle Of Life',
      realm: 'testrealm@host.com',
      nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
      cnonce: '0a4f113b',
      nc: '00000001',
      qop: 'auth',
      method: 'GET',
      uri: '/dir/index.html',
    });
    assert.equal(r, '6629fae49393a05397450978507c4ef1');
  });

  it('computes the RFC 2069 form without qop: H(HA1:nonce:HA2)', async () => {
    const { createHash } = await import('node:crypto');
    const md5 = (s: string) => createHash('md5').update(s).digest('hex');
    const ha1 = md5('admin:cam:secret');
    const ha2 = md5('DESCRIBE:rtsp://cam/live');
    const expected = md5(`${ha1}:n0nce:${ha2}`);
    const r = digestResponse({ algorithm: 'MD5', username: 'admin', password: 'secret', realm: 'cam', nonce: 'n0nce', method: 'DESCRIBE', uri: 'rtsp://cam/live' });
    assert.equal(r, expected);
  });

  it('applies -sess to HA1 and auth-int to HA2', async () => {
    const { createHash } = await import('node:crypto');
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    const ha1 = sha(`${sha('u:r:p')}:n:c`);
    const ha2 = sha(`GET:/x:${sha('')}`);
    const expected = sha(`${ha1}:n:00000002:c:auth-int:${ha2}`);
    const r = digestResponse({ algorithm: 'SHA-256-sess', username: 'u', password: 'p', realm: 'r', nonce: 'n', cnonce: 'c', nc: '00000002', qop: 'auth-int', method: 'GET', uri: '/x' });
    assert.equal(r, expected);
  });
});

describe('parseChallenges / chooseChallenge', () => {
  it('splits several challenges in one header and across headers', () => {
    const cs = parseChallenges([
      'Digest realm="cam, inc", nonce="a\\"b", qop="auth,auth-int", algorithm=MD5, stale=FALSE, Basic realm="cam"',
      'Digest realm="cam", nonce="x", algorithm=SHA-256',
    ]);
    assert.deepEqual(
      cs.map((c) => c.scheme),
      ['digest', 'basic', 'digest'],
    );
    assert.equal(cs[0]!.params['realm'], 'cam, inc');
    assert.equal(cs[0]!.params['nonce'], 'a"b');
    assert.equal(cs[0]!.params['qop'], 'auth,auth-int');
    assert.equal(isStale(cs[0]!), false);
    assert.equal(cs[1]!.params['realm'], 'cam');
  });

  it('reads stale=true in any case and quoted', () => {
    assert.equal(isStale(parseChallenges(['Digest realm="r", nonce="n", stale="TRUE"'])[0]!), true);
    assert.equal(isStale(parseChallenges(['Digest realm="r", nonce="n", stale=true'])[0]!), true);
  });

  it('reads unquoted values with spaces the way some cameras write them', () => {
    const [c] = parseChallenges(['Digest realm=IP Camera(C1234), nonce=abc123']);
    assert.equal(c!.params['realm'], 'IP Camera(C1234)');
    assert.equal(c!.params['nonce'], 'abc123');
  });

  it('prefers SHA-256 over MD5 over Basic, and skips what it cannot do', () => {
    const cs = parseChallenges([
      'Basic realm="r"',
      'Digest realm="r", nonce="1", algorithm=MD5',
      'Digest realm="r", nonce="2", algorithm=SHA-256',
      'Digest realm="r", nonce="3", algorithm=SHA-512-256',
      'Digest realm="r", nonce="4", algorithm=SHA-256, qop="auth-conf"',
      'Negotiate',
    ]);
    assert.equal(chooseChallenge(cs)?.params['nonce'], '2');
    assert.equal(chooseChallenge(cs.filter((c) => c.params['nonce'] !== '2'))?.params['nonce'], '1');
    assert.equal(chooseChallenge(cs.filter((c) => c.scheme === 'basic'))?.scheme, 'basic');
    assert.equal(chooseChallenge(parseChallenges(['Negotiate', 'NTLM'])), undefined);
    assert.equal(chooseChallenge(parseChallenges(['Digest realm="no nonce"'])), undefined);
  });
});

describe('Authorizer', () => {
  it('answers an RFC 7616 SHA-256 challenge with the RFC response and counts nonces', () => {
    const [challenge] = parseChallenges([
      'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    ]);
    const a = new Authorizer(challenge!, { username: 'Mufasa', password: 'Circle of Life' }, rfc7616.cnonce);
    assert.equal(a.description, 'Digest SHA-256');
    const f = fields(a.authorization('GET', '/dir/index.html'));
    assert.equal(f['response'], '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1');
    assert.equal(f['username'], 'Mufasa');
    assert.equal(f['realm'], 'http-auth@example.org');
    assert.equal(f['uri'], '/dir/index.html');
    assert.equal(f['qop'], 'auth');
    assert.equal(f['nc'], '00000001');
    assert.equal(f['cnonce'], rfc7616.cnonce);
    assert.equal(f['algorithm'], 'SHA-256');
    assert.equal(f['opaque'], 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS');
    assert.equal(fields(a.authorization('GET', '/dir/index.html'))['nc'], '00000002');
  });

  it('answers a no-qop challenge (gst-rtsp-server, most cameras) without qop, nc or cnonce', () => {
    const [challenge] = parseChallenges(['Digest realm="cam", nonce="abc"']);
    const header = new Authorizer(challenge!, { username: 'admin', password: 'pw' }).authorization('DESCRIBE', 'rtsp://cam/live');
    const f = fields(header);
    assert.equal(f['qop'], undefined);
    assert.equal(f['nc'], undefined);
    assert.equal(f['cnonce'], undefined);
    assert.equal(f['algorithm'], undefined);
    assert.equal(
      f['response'],
      digestResponse({ algorithm: 'MD5', username: 'admin', password: 'pw', realm: 'cam', nonce: 'abc', method: 'DESCRIBE', uri: 'rtsp://cam/live' }),
    );
  });

  it('hashes the user name when the camera asks for userhash, and escapes quotes', () => {
    const [challenge] = parseChallenges(['Digest realm="r", nonce="n", userhash=true, algorithm=SHA-256']);
    const f = fields(new Authorizer(challenge!, { username: 'a"b', password: 'p' }).authorization('PLAY', 'rtsp://c/'));
    assert.match(f['username']!, /^[0-9a-f]{64}$/);
    assert.equal(f['userhash'], 'true');
    const [plain] = parseChallenges(['Digest realm="r", nonce="n"']);
    assert.equal(fields(new Authorizer(plain!, { username: 'a"b', password: 'p' }).authorization('PLAY', 'rtsp://c/'))['username'], 'a"b');
  });

  it('makes Basic from UTF-8 credentials', () => {
    assert.equal(basicAuthorization({ username: 'Aladdin', password: 'open sesame' }), 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==');
    const [basic] = parseChallenges(['Basic realm="r"']);
    assert.equal(new Authorizer(basic!, { username: 'test', password: '123£' }).authorization('DESCRIBE', 'x'), 'Basic dGVzdDoxMjPCow==');
  });
});

// The one-shot answer the HTTP client (ONVIF SOAP, snapshot URLs) sends after a 401.
describe('authorizationFor', () => {
  const creds = { username: 'admin', password: 'pw' };

  it('answers the strongest challenge of several headers, Digest before Basic', () => {
    const value = authorizationFor(['Basic realm="cam"', 'Digest realm="cam", nonce="n1", qop="auth"'], creds, 'GET', '/snap.jpg?x=1');
    const f = fields(value!);
    assert.equal(f['uri'], '/snap.jpg?x=1');
    assert.equal(f['qop'], 'auth');
    assert.equal(f['nc'], '00000001');
    assert.equal(
      f['response'],
      digestResponse({ algorithm: 'MD5', username: 'admin', password: 'pw', realm: 'cam', nonce: 'n1', method: 'GET', uri: '/snap.jpg?x=1', qop: 'auth', nc: '00000001', cnonce: f['cnonce']! }),
    );
    assert.equal(authorizationFor(['Basic realm="cam"'], creds, 'GET', '/'), basicAuthorization(creds));
  });

  it('hashes the body for qop=auth-int, and gives up on schemes it cannot answer', () => {
    const body = '<s:Envelope/>';
    const f = fields(authorizationFor(['Digest realm="cam", nonce="n2", qop="auth-int", algorithm=SHA-256'], creds, 'POST', '/onvif/device_service', body)!);
    assert.equal(f['qop'], 'auth-int');
    assert.equal(
      f['response'],
      digestResponse({ algorithm: 'SHA-256', username: 'admin', password: 'pw', realm: 'cam', nonce: 'n2', method: 'POST', uri: '/onvif/device_service', qop: 'auth-int', nc: '00000001', cnonce: f['cnonce']!, body }),
    );
    assert.equal(authorizationFor(['Negotiate abc==', 'Digest realm="cam", nonce="n", algorithm=SHA-512-256'], creds, 'GET', '/'), undefined);
  });
});
