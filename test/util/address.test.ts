import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey, formatHost, ipAddressBytes, ipv6Bytes, isLoopback, normalizeAddress, stripCredentials, withCredentials, withoutCredentials } from '../../src/util/address.js';

// Moved from test/rtsp/url.test.ts with the function (util/address.ts is its one home now).
describe('stripCredentials', () => {
  it('removes user info, including a raw @ in the password', () => {
    assert.equal(stripCredentials('rtsp://a:b@cam/x'), 'rtsp://cam/x');
    assert.equal(stripCredentials('rtsp://a:b@c@cam:554/x'), 'rtsp://cam:554/x');
    assert.equal(stripCredentials('rtsp://cam/x@y'), 'rtsp://cam/x@y');
  });

  it('strips what a re-stream client puts in a request URI, and leaves other strings alone', () => {
    assert.equal(stripCredentials('rtsps://u:p@127.0.0.1:8554/cam/trackID=0'), 'rtsps://127.0.0.1:8554/cam/trackID=0');
    assert.equal(stripCredentials('rtsp://u@[::1]:8554/cam'), 'rtsp://[::1]:8554/cam');
    assert.equal(stripCredentials('/cam/trackID=0'), '/cam/trackID=0');
    assert.equal(stripCredentials('*'), '*');
  });
});

describe('withoutCredentials / withCredentials (the URL form)', () => {
  it('takes the user info off a parsed URL, as a copy, keeping host, port, path and query', () => {
    const given = new URL('rtsp://admin:s%40cret@[fd00::7]:8554/Streaming/Channels/101?transportmode=unicast');
    const bare = withoutCredentials(given);
    assert.equal(bare.href, 'rtsp://[fd00::7]:8554/Streaming/Channels/101?transportmode=unicast');
    assert.equal(given.username, 'admin', 'the URL given is not changed');
    assert.equal(withoutCredentials(new URL('rtsp://cam/x')).href, 'rtsp://cam/x');
    // Agrees with the string form wherever the string parses.
    assert.equal(withoutCredentials(new URL('rtsps://u:p@127.0.0.1:8554/cam/trackID=0')).href, stripCredentials('rtsps://u:p@127.0.0.1:8554/cam/trackID=0'));
  });

  it('puts a log-in in percent-encoded, so reserved characters in a password survive a round trip', () => {
    const url = new URL('rtsp://127.0.0.1:8554/cam');
    const withLogin = withCredentials(url, 'nvr user', 'p@ss:w/rd#1?');
    assert.equal(withLogin, 'rtsp://nvr%20user:p%40ss%3Aw%2Frd%231%3F@127.0.0.1:8554/cam');
    const parsed = new URL(withLogin);
    assert.equal(decodeURIComponent(parsed.username), 'nvr user');
    assert.equal(decodeURIComponent(parsed.password), 'p@ss:w/rd#1?');
    assert.equal(withoutCredentials(parsed).href, url.href);
    assert.equal(url.username, '', 'the URL given is not changed');
  });

  it('without a user name the URL stays as it is; a user name alone gets an empty password', () => {
    const url = new URL('rtsp://cam:554/x');
    assert.equal(withCredentials(url, undefined, 'ignored'), 'rtsp://cam:554/x');
    assert.equal(withCredentials(url, '', 'ignored'), 'rtsp://cam:554/x');
    assert.equal(withCredentials(url, 'admin', undefined), 'rtsp://admin@cam:554/x');
  });
});

describe('normalizeAddress', () => {
  it('turns IPv4-mapped IPv6 into IPv4 and leaves the rest as written', () => {
    assert.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('::FFFF:192.168.1.9'), '192.168.1.9');
    assert.equal(normalizeAddress('::ffff:7f00:1'), '::ffff:7f00:1');
    assert.equal(normalizeAddress('fe80::1'), 'fe80::1');
    assert.equal(normalizeAddress('cam.local'), 'cam.local');
    assert.equal(normalizeAddress(undefined), undefined);
    assert.equal(normalizeAddress(''), '');
  });
});

describe('isLoopback', () => {
  it('knows localhost, 127/8 and ::1 in every spelling', () => {
    for (const a of ['localhost', 'LOCALHOST', '127.0.0.1', '127.9.8.7', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::1%lo']) {
      assert.equal(isLoopback(a), true, a);
    }
  });

  it('refuses everything else, including look-alike names', () => {
    for (const a of ['10.0.0.1', '0.0.0.0', '::', '::2', 'fe80::1', '::ffff:10.0.0.1', '128.0.0.1', 'localhost.evil.example', '127.0.0.1.nip.io', '']) {
      assert.equal(isLoopback(a), false, a);
    }
  });
});

describe('formatHost', () => {
  it('brackets IPv6 once, unmaps IPv4-mapped addresses, keeps names', () => {
    assert.equal(formatHost('::1'), '[::1]');
    assert.equal(formatHost('[::1]'), '[::1]');
    assert.equal(formatHost('fe80::1%eth0'), '[fe80::1%eth0]');
    assert.equal(formatHost('::ffff:192.168.1.2'), '192.168.1.2');
    assert.equal(formatHost('192.168.1.2'), '192.168.1.2');
    assert.equal(formatHost('cam.local'), 'cam.local');
  });
});

describe('clientKey / ipv6Bytes', () => {
  it('keys IPv4 by address and IPv6 by /64, and expands IPv6 to 16 bytes', () => {
    assert.equal(clientKey('::ffff:192.168.1.9'), '192.168.1.9');
    assert.equal(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(clientKey('0:0:0:0:0:0:0:1'), '::1');
    assert.equal(clientKey('not-an-address'), 'not-an-address');
    assert.equal(ipv6Bytes('::1')?.toString('hex'), '00000000000000000000000000000001');
    assert.equal(ipv6Bytes('::ffff:1.2.3.4')?.toString('hex'), '00000000000000000000ffff01020304');
    assert.equal(ipv6Bytes('1.2.3.4'), undefined);
    assert.equal(ipAddressBytes('192.168.1.20')?.toString('hex'), 'c0a80114');
    assert.equal(ipAddressBytes('fe80::1%eth0')?.toString('hex'), 'fe800000000000000000000000000001');
    assert.equal(ipAddressBytes('camera.local'), undefined);
  });
});
