// The RTSP client's UDP port pairs: which address to bind, and an even RTP port with RTCP on the next.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';

import { nativeFanout } from '../../src/rtp/native-fanout.js';
import { bindAddressFor, bindUdpPair } from '../../src/rtsp/udp.js';

describe('bindAddressFor', () => {
  it('binds loopback for a camera on loopback, else every interface of the camera\'s family', () => {
    assert.equal(bindAddressFor('127.0.0.1'), '127.0.0.1');
    assert.equal(bindAddressFor('127.8.9.10'), '127.0.0.1');
    assert.equal(bindAddressFor('::1'), '::1');
    assert.equal(bindAddressFor('192.168.1.20'), '0.0.0.0');
    assert.equal(bindAddressFor('fe80::1'), '::');
    assert.equal(bindAddressFor('2001:db8::127'), '::', 'an IPv6 address containing "127" is not loopback');
    assert.equal(bindAddressFor('camera.local'), '0.0.0.0', 'a host name is treated as IPv4');
  });
});

const NO_NATIVE = { loaded: false, reason: 'this test' } as const;

for (const [path, native] of [['native', nativeFanout()], ['dgram', NO_NATIVE]] as const) {
  describe(`bindUdpPair (RTP through ${path})`, () => {
    it('binds an even RTP port and RTCP on the next, both receiving', async () => {
      assert.equal(native.loaded, path === 'native', 'the native addon loads on this machine');
      const pair = await bindUdpPair('127.0.0.1', 20, native);
      try {
        assert.equal(pair.rtp.path, path);
        assert.equal(pair.rtpPort % 2, 0);
        assert.equal(pair.rtcpPort, pair.rtpPort + 1);
        assert.equal(pair.rtp.port, pair.rtpPort);
        assert.equal(pair.rtcp.address().port, pair.rtcpPort);
        const rtcp = new Promise<string>((resolve) => pair.rtcp.once('message', (m) => resolve(m.toString())));
        pair.rtp.allow('127.0.0.1');
        const rtp = new Promise<string>((resolve) => pair.rtp.start({ onPacket: (m) => resolve(m.toString()), onForeign: () => undefined }));
        const sender = dgram.createSocket('udp4');
        sender.send('rr', pair.rtcpPort, '127.0.0.1');
        sender.send('rtp', pair.rtpPort, '127.0.0.1', () => sender.close());
        assert.deepEqual(await Promise.all([rtcp, rtp]), ['rr', 'rtp']);
      } finally {
        pair.close();
        pair.close(); // idempotent
      }
    });

    it('gives up with a clear error when no pair can be bound', async () => {
      // 192.0.2.1 (TEST-NET-1) is not an address of this machine, so every bind fails.
      await assert.rejects(bindUdpPair('192.0.2.1', 3, native), /could not bind an even\/odd UDP port pair on 192\.0\.2\.1: .*EADDRNOTAVAIL/);
    });
  });
}
