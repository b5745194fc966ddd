import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { baseUrlFor, displayUrl, parseRtspUrl, resolveControlUrl, rtspEndpoint, splitRtspLogin, URL_WITH_LOGIN } from '../../src/rtsp/url.js';

describe('parseRtspUrl', () => {
  it('splits off percent-decoded credentials and keeps the rest', () => {
    const t = parseRtspUrl('rtsp://ad%20min:p%40ss%3Aword@192.168.1.10:8554/Streaming/Channels/101?transportmode=unicast');
    assert.equal(t.username, 'ad min');
    assert.equal(t.password, 'p@ss:word');
    assert.equal(t.url, 'rtsp://192.168.1.10:8554/Streaming/Channels/101?transportmode=unicast');
    assert.equal(t.hostname, '192.168.1.10');
    assert.equal(t.port, 8554);
    assert.equal(t.secure, false);
  });

  it('takes unencoded @, #, ? and : in a password as users paste them', () => {
    const t = parseRtspUrl('rtsp://admin:p@ss#1?x:y@cam.local/live');
    assert.equal(t.username, 'admin');
    assert.equal(t.password, 'p@ss#1?x:y');
    assert.equal(t.url, 'rtsp://cam.local/live');
    assert.equal(t.port, 554);
  });

  it('keeps a literal % that does not decode', () => {
    assert.equal(parseRtspUrl('rtsp://u:100%@cam/').password, '100%');
  });

  it('handles no credentials, a user without password, IPv6 and rtsps', () => {
    const plain = parseRtspUrl('rtsp://cam/');
    assert.equal(plain.username, undefined);
    assert.equal(plain.password, undefined);
    assert.equal(parseRtspUrl('rtsp://viewer@cam/').username, 'viewer');
    assert.equal(parseRtspUrl('rtsp://viewer@cam/').password, undefined);
    const v6 = parseRtspUrl('rtsp://u:p@[::1]:8554/x');
    assert.equal(v6.hostname, '::1');
    assert.equal(v6.url, 'rtsp://[::1]:8554/x');
    assert.equal(parseRtspUrl('RTSPS://cam/').secure, true);
  });

  it('rejects what is not an RTSP URL, without echoing it', () => {
    assert.throws(() => parseRtspUrl('http://admin:secret@cam/'), (e: unknown) => e instanceof Error && !e.message.includes('secret'));
    assert.throws(() => parseRtspUrl('rtsp://'), /host|malformed/);
  });
});

describe('baseUrlFor', () => {
  const req = 'rtsp://cam/live';
  it('prefers Content-Base, then Content-Location, then the request URL', () => {
    assert.equal(baseUrlFor(req, 'rtsp://cam/live/', 'rtsp://cam/other/'), 'rtsp://cam/live/');
    assert.equal(baseUrlFor(req, undefined, 'rtsp://cam/other/'), 'rtsp://cam/other/');
    assert.equal(baseUrlFor(req, '  ', undefined), req);
    assert.equal(baseUrlFor(req), req);
  });
  it('resolves a relative Content-Location and strips echoed credentials', () => {
    assert.equal(baseUrlFor(req, undefined, 'sub/'), 'rtsp://cam/sub/');
    assert.equal(baseUrlFor(req, 'rtsp://admin:secret@cam/live/'), 'rtsp://cam/live/');
  });
});

describe('resolveControlUrl', () => {
  it('uses absolute controls as they are (without credentials)', () => {
    assert.equal(resolveControlUrl('rtsp://cam/a/', 'rtsp://10.0.0.2:554/a/trackID=1'), 'rtsp://10.0.0.2:554/a/trackID=1');
    assert.equal(resolveControlUrl('rtsp://cam/a/', 'rtsp://u:p@cam/a/trackID=1'), 'rtsp://cam/a/trackID=1');
  });
  it('uses the base for "*" and for no control', () => {
    assert.equal(resolveControlUrl('rtsp://cam/a', '*'), 'rtsp://cam/a');
    assert.equal(resolveControlUrl('rtsp://cam/a', undefined), 'rtsp://cam/a');
    assert.equal(resolveControlUrl('rtsp://cam/a', ''), 'rtsp://cam/a');
  });
  it('appends relative controls with one "/" (what cameras mean)', () => {
    assert.equal(resolveControlUrl('rtsp://cam/live1.sdp/', 'stream=0'), 'rtsp://cam/live1.sdp/stream=0');
    // Hikvision without Content-Base: RFC 3986 would lose "101".
    assert.equal(resolveControlUrl('rtsp://cam/Streaming/Channels/101', 'trackID=1'), 'rtsp://cam/Streaming/Channels/101/trackID=1');
    // Dahua: the base carries a query and a trailing slash.
    assert.equal(
      resolveControlUrl('rtsp://cam:554/cam/realmonitor?channel=1&subtype=0/', 'trackID=0'),
      'rtsp://cam:554/cam/realmonitor?channel=1&subtype=0/trackID=0',
    );
  });
  it('replaces the path for controls starting with "/"', () => {
    assert.equal(resolveControlUrl('rtsp://cam:8554/a/b/', '/other/track1'), 'rtsp://cam:8554/other/track1');
  });
});

describe('displayUrl', () => {
  it('masks the whole password, even one pasted with raw "@" and "#"', () => {
    assert.equal(displayUrl('rtsp://admin:p@ss#1@cam:554/live'), 'rtsp://admin:***@cam:554/live');
    assert.equal(displayUrl('rtsp://admin:p%40ss@cam/live'), 'rtsp://admin:***@cam/live');
    assert.equal(displayUrl('rtsp://cam/live'), 'rtsp://cam/live');
    assert.equal(displayUrl('rtsp://viewer@cam/'), 'rtsp://viewer:***@cam/');
    assert.equal(displayUrl('http://admin:p@ss@cam/x'), 'http://***@cam/x');
  });
});

describe('splitRtspLogin', () => {
  it('splits a typed log-in off once: a bare URL and the log-in beside it', () => {
    const { login, replacedUrlLogin, passwordWithoutUser } = splitRtspLogin('rtsp://admin:p@ss#1@cam:8554/live', {});
    assert.deepEqual(login, { url: 'rtsp://cam:8554/live', username: 'admin', password: 'p@ss#1' });
    assert.equal(replacedUrlLogin, false);
    assert.equal(passwordWithoutUser, false);
    assert.deepEqual(splitRtspLogin('rtsp://ad%20min:p%40ss@cam/', {}).login, { url: 'rtsp://cam/', username: 'ad min', password: 'p@ss' });
    assert.deepEqual(splitRtspLogin('rtsp://viewer@cam/', {}).login, { url: 'rtsp://cam/', username: 'viewer', password: '' });
    assert.deepEqual(splitRtspLogin('rtsp://:pw@cam/', {}).login, { url: 'rtsp://cam/' }, 'no user name, no log-in');
  });

  it('takes the fields over the URL, and a password field alone completes the URL user name', () => {
    const over = splitRtspLogin('rtsp://old:oldpw@cam/live', { username: 'new', password: 'newpw' });
    assert.deepEqual(over.login, { url: 'rtsp://cam/live', username: 'new', password: 'newpw' });
    assert.equal(over.replacedUrlLogin, true);
    assert.deepEqual(splitRtspLogin('rtsp://old:oldpw@cam/live', { username: 'new' }).login, { url: 'rtsp://cam/live', username: 'new', password: '' });
    assert.deepEqual(splitRtspLogin('rtsp://admin@cam/live', { password: 'pw' }).login, { url: 'rtsp://cam/live', username: 'admin', password: 'pw' });
    const orphan = splitRtspLogin('rtsp://cam/live', { password: 'pw' });
    assert.deepEqual(orphan.login, { url: 'rtsp://cam/live' });
    assert.equal(orphan.passwordWithoutUser, true);
    assert.equal(splitRtspLogin('rtsp://cam/live', { username: 'v', password: 'pw' }).replacedUrlLogin, false);
  });

  it('throws a credential-free error for an unusable URL', () => {
    assert.throws(() => splitRtspLogin('http://admin:secret@cam/', {}), (e: unknown) => e instanceof Error && !e.message.includes('secret'));
  });
});

describe('rtspEndpoint', () => {
  it('refuses a URL that still carries a log-in, without the password in the error', () => {
    for (const url of ['rtsp://admin:p@ss#1@cam:8554/live', 'rtsp://admin:s3cret@cam/', 'rtsp://admin@cam/', 'rtsp://:s3cret@cam/']) {
      assert.throws(() => rtspEndpoint(url, 'admin', 'other'), (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.equal(e.message, URL_WITH_LOGIN);
        assert.match(e.message, /carries a log-in/);
        for (const secret of ['p@ss', 's3cret', 'other']) assert.ok(!e.message.includes(secret), e.message);
        return true;
      }, url);
    }
  });

  it('takes the log-in as fields beside a bare URL, and keeps the password secret', () => {
    const e = rtspEndpoint('rtsp://cam:8554/live', 'admin', 'p@ss#1');
    assert.deepEqual(e.target, { url: 'rtsp://cam:8554/live', hostname: 'cam', port: 8554, secure: false });
    assert.deepEqual(e.credentials, { username: 'admin', password: 'p@ss#1' });
    assert.equal(e.shownUrl, 'rtsp://admin:***@cam:8554/live');
    assert.deepEqual(e.secrets, ['p@ss#1']);
    assert.ok(!JSON.stringify(e.target).includes('p@ss'));
    assert.deepEqual(rtspEndpoint('rtsp://cam/live', 'viewer').credentials, { username: 'viewer', password: '' });
    const fields = rtspEndpoint('rtsp://cam/live', 'viewer', 'pw');
    assert.equal(fields.target.url, 'rtsp://cam/live');
    assert.deepEqual(fields.credentials, { username: 'viewer', password: 'pw' });
    const none = rtspEndpoint('rtsp://cam/live');
    assert.equal(none.credentials, undefined);
    assert.deepEqual(none.secrets, []);
  });

  it('throws a credential-free error for an unusable URL', () => {
    assert.throws(() => rtspEndpoint('http://admin:secret@cam/'), (e: unknown) => e instanceof Error && !e.message.includes('secret'));
  });
});
