import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionAccess, type AccessHost } from '../../src/restream/access.js';
import { RtspDigestAuthenticator } from '../../src/restream/auth.js';
import { formatResponse, parseTarget, sessionIdOf } from '../../src/restream/protocol.js';
import type { RtspRequest } from '../../src/restream/request-parser.js';
import { silentLogger } from '../../src/util/logger.js';

const TOKEN = 'tk_abcdefghijklmnopqrstuv';

function request(uri: string, headers: Record<string, string> = {}, method = 'DESCRIBE'): RtspRequest {
  return { method, uri, headers: new Map(Object.entries(headers)), body: Buffer.alloc(0) };
}

function host(options: { auth?: boolean; requireAuthOnLoopback?: boolean; tokens?: string[] } = {}): AccessHost & { redeemed: string[] } {
  const live = new Set(options.tokens ?? []);
  const redeemed: string[] = [];
  return {
    log: silentLogger,
    auth: options.auth ? new RtspDigestAuthenticator({ username: 'nvr', password: 'pw' }) : undefined,
    requireAuthOnLoopback: options.requireAuthOnLoopback ?? false,
    redeem(token, cameraId) {
      redeemed.push(`${token}/${cameraId}`);
      return live.delete(token);
    },
    redeemed,
  };
}

describe('re-stream connection access', () => {
  it('trusts loopback unless told not to, and never trusts the LAN without credentials', () => {
    assert.equal(new ConnectionAccess(host(), '127.0.0.1:5000', true).check(request('rtsp://127.0.0.1/cam')), undefined);
    assert.deepEqual(new ConnectionAccess(host({ requireAuthOnLoopback: true }), '127.0.0.1:5000', true).check(request('rtsp://127.0.0.1/cam')), { status: 401, headers: [] });
    assert.deepEqual(new ConnectionAccess(host(), '192.168.1.9:5000', false).check(request('rtsp://h/cam')), { status: 401, headers: [] });
  });

  it('a token opens the connection for its camera only, once', () => {
    const h = host({ requireAuthOnLoopback: true, tokens: [TOKEN] });
    const access = new ConnectionAccess(h, '127.0.0.1:5000', true);
    assert.equal(access.check(request(`rtsp://127.0.0.1:8554/${TOKEN}/cam`)), undefined);
    assert.deepEqual(h.redeemed, [`${TOKEN}/cam`]);
    // Later requests of the same connection need no token, but only for that camera.
    assert.equal(access.check(request('rtsp://127.0.0.1:8554/cam/trackID=0', {}, 'SETUP')), undefined);
    assert.equal(access.check(request('*', {}, 'GET_PARAMETER')), undefined);
    assert.deepEqual(access.check(request('rtsp://127.0.0.1:8554/other')), { status: 403, headers: [] });
    // A second connection with the same (now used) token is refused.
    assert.deepEqual(new ConnectionAccess(h, '127.0.0.1:5001', true).check(request(`rtsp://127.0.0.1:8554/${TOKEN}/cam`)), { status: 401, headers: [] });
  });

  it('challenges with Digest only from the LAN, Digest and Basic on loopback', () => {
    const lan = new ConnectionAccess(host({ auth: true }), '192.168.1.9:5000', false).check(request('rtsp://h/cam'));
    assert.equal(lan?.status, 401);
    assert.deepEqual(lan?.headers.map(([name, value]) => `${name}: ${value.split(' ')[0]}`), ['WWW-Authenticate: Digest']);
    const local = new ConnectionAccess(host({ auth: true, requireAuthOnLoopback: true }), '127.0.0.1:5000', true).check(request('rtsp://127.0.0.1/cam'));
    assert.deepEqual(local?.headers.map(([, value]) => value.split(' ')[0]), ['Digest', 'Basic']);
    const basic = `Basic ${Buffer.from('nvr:pw').toString('base64')}`;
    assert.equal(new ConnectionAccess(host({ auth: true, requireAuthOnLoopback: true }), '127.0.0.1:5000', true).check(request('rtsp://127.0.0.1/cam', { authorization: basic })), undefined);
    assert.equal(new ConnectionAccess(host({ auth: true }), '192.168.1.9:5000', false).check(request('rtsp://h/cam', { authorization: basic }))?.status, 401);
  });
});

describe('re-stream protocol helpers', () => {
  it('reads camera, token and track from absolute and bare request URLs', () => {
    assert.deepEqual(parseTarget('rtsp://u:p@127.0.0.1:8554/front%20door/trackID=1?x=1'), { cameraId: 'front door', base: 'rtsp://127.0.0.1:8554/front%20door', trackId: 1 });
    assert.deepEqual(parseTarget(`/${TOKEN}/cam/`), { cameraId: 'cam', base: `/${TOKEN}/cam`, token: TOKEN });
    assert.throws(() => parseTarget('rtsp://127.0.0.1:8554/'), /No camera/);
    assert.throws(() => parseTarget('cam'), /Malformed/);
    assert.equal(sessionIdOf(request('*', { session: 'abc123;timeout=60' })), 'abc123');
  });

  it('writes a status line, CSeq, Server, Date and a Content-Length for bodies and errors', () => {
    const ok = formatResponse(200, '3', [['Session', 'abc']], Buffer.from('v=0\r\n')).toString();
    assert.match(ok, /^RTSP\/1\.0 200 OK\r\nCSeq: 3\r\nServer: homebridge-webrtc-cameras\r\nDate: .+\r\nSession: abc\r\nContent-Length: 5\r\n\r\nv=0\r\n$/);
    assert.match(formatResponse(454, undefined, []).toString(), /^RTSP\/1\.0 454 Session Not Found\r\nServer: .*Content-Length: 0\r\n\r\n$/s);
    assert.match(formatResponse(299, '1', []).toString(), /^RTSP\/1\.0 299 Error\r\n/);
  });
});
