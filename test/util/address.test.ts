import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientKey, formatHost, ipv6Bytes, isLoopback, normalizeAddress, stripCredentials } from '../../src/util/address.js';

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
  });
});
