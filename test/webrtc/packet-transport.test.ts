// Where a viewer's packets go once ICE picked a pair: straight to the UDP socket, or through
// werift's send (counted until it completes).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';

import { nativeFanout, udpSocketFd } from '../../src/rtp/native-fanout.js';
import { resolvePacketTransport, type IceConnectionLike } from '../../src/webrtc/packet-transport.js';
import { sleep, waitFor } from '../helpers/wait.js';

describe('resolvePacketTransport', () => {
  it('is undefined before a pair is nominated', () => {
    assert.equal(resolvePacketTransport({ nominated: undefined, send: async () => undefined }), undefined);
  });

  for (const path of ['native', 'javascript'] as const) {
    it(`retarget moves a UDP pair's packets (and a native frame) to a new address, and refuses one it cannot send to (${path})`, async () => {
      const socket = dgram.createSocket('udp4');
      const first = dgram.createSocket('udp4');
      const second = dgram.createSocket('udp4');
      for (const s of [socket, first, second]) await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
      try {
        const pair = { protocol: { transport: { socket } }, remoteAddr: ['127.0.0.1', first.address().port] as const };
        const status = path === 'native' ? nativeFanout() : { loaded: false as const, reason: 'this test' };
        const transport = resolvePacketTransport({ nominated: pair, send: async () => undefined }, status)!;
        const atFirst: string[] = [];
        const atSecond: string[] = [];
        first.on('message', (m) => atFirst.push(m.toString()));
        second.on('message', (m) => atSecond.push(m.toString()));
        transport.send(Buffer.from('before'));
        await waitFor(() => atFirst.length === 1, 2_000, 'the packet at the first address');
        assert.equal(transport.retarget?.('not an address', 5000), false);
        assert.equal(transport.retarget?.('127.0.0.1', second.address().port), true);
        transport.send(Buffer.from('after'));
        await waitFor(() => atSecond.length === 1, 2_000, 'the packet at the new address');
        if (path === 'native' && status.loaded) {
          // A frame by sendmmsg goes where the transport now points, too.
          const target = transport.native!;
          const payload = Buffer.from('frame');
          const frame = status.fanout.prepareFrame([payload], Uint8Array.of(1));
          // AEAD_AES_128_GCM (profile 7): a 16-byte key and a 12-byte salt; no separate auth key.
          const stream = status.fanout.createStream(7, Buffer.alloc(16, 1), Buffer.alloc(12, 2), Buffer.alloc(0), 1);
          const result = new Float64Array(3);
          status.fanout.sendFrame(stream, target.fd, target.destination, 96, 0, 1, frame, result);
          assert.equal(result[0], 1);
          await waitFor(() => atSecond.length === 2, 2_000, 'the frame at the new address');
        }
        await sleep(50);
        assert.deepEqual(atFirst, ['before'], 'nothing more at the old address');
      } finally {
        for (const s of [socket, first, second]) s.close();
      }
    });

    it(`a UDP pair with an IP address sends straight to the socket, scatter/gather (${path})`, async () => {
      const socket = dgram.createSocket('udp4');
      const receiver = dgram.createSocket('udp4');
      await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
      await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
      try {
        let viaWerift = 0;
        const pair = { protocol: { transport: { socket } }, remoteAddr: ['127.0.0.1', receiver.address().port] as const };
        const status = path === 'native' ? nativeFanout() : { loaded: false as const, reason: 'this test' };
        const transport = resolvePacketTransport({ nominated: pair, send: async () => void viaWerift++ }, status)!;
        assert.equal(transport.kind, 'udp');
        assert.equal(transport.pair, pair);
        assert.equal(transport.native !== undefined, path === 'native');
        const got = new Promise<Buffer>((resolve) => receiver.once('message', resolve));
        transport.send([Buffer.from('he'), Buffer.from('llo')]);
        assert.equal((await got).toString(), 'hello', 'the parts arrive as one datagram');
        assert.equal(viaWerift, 0);
        assert.equal(typeof transport.queuedBytes(), 'number');
      } finally {
        socket.close();
        receiver.close();
      }
    });
  }

  it('native: once werift closes the socket nothing is written to its descriptor again, even when the kernel has given the number to a new socket', async (t) => {
    const bind = (s: dgram.Socket): Promise<void> => new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    const socket = dgram.createSocket('udp4');
    const watcher = dgram.createSocket('udp4');
    await Promise.all([bind(socket), bind(watcher)]);
    let received = 0;
    watcher.on('message', () => received++);
    const reuse = dgram.createSocket('udp4');
    try {
      const transport = resolvePacketTransport({ nominated: { protocol: { transport: { socket } }, remoteAddr: ['127.0.0.1', watcher.address().port] }, send: async () => undefined }, nativeFanout())!;
      const fd = transport.native?.fd;
      assert.ok(fd !== undefined);
      transport.send(Buffer.from('before'));
      await waitFor(() => received === 1, 2000, 'the first datagram');
      socket.close();
      await bind(reuse);
      t.diagnostic(`closed descriptor ${fd}; the new socket got ${String(udpSocketFd(reuse))}`);
      assert.equal(transport.native, undefined, 'no native target for a closed socket');
      assert.throws(() => transport.send(Buffer.from('after')), /the socket is closed/);
      await sleep(100);
      assert.equal(received, 1, 'nothing more left through the old descriptor number');
    } finally {
      watcher.close();
      reuse.close();
    }
  });

  it('a pair that is not plain UDP (TCP, TURN, a host name) goes through werift, counting bytes in flight', async () => {
    const sent: Buffer[] = [];
    const completions: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
    const connection: IceConnectionLike = {
      nominated: { protocol: { transport: { socket: {} } }, remoteAddr: ['turn.example', 3478] },
      send: (data) => {
        sent.push(data);
        return new Promise<void>((resolve, reject) => completions.push({ resolve, reject }));
      },
    };
    const transport = resolvePacketTransport(connection)!;
    assert.equal(transport.kind, 'generic');
    transport.send([Buffer.alloc(3), Buffer.alloc(4)]);
    transport.send(Buffer.alloc(10));
    assert.deepEqual(sent.map((b) => b.length), [7, 10], 'parts joined');
    assert.equal(transport.queuedBytes(), 17);
    completions[0]!.resolve();
    completions[1]!.reject(new Error('TURN allocation gone'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(transport.queuedBytes(), 0, 'a failed send is no longer waiting either');
  });

  it('an address the native fan-out cannot take (a zone naming no interface here) is sent to through the socket', () => {
    const socket = dgram.createSocket('udp6');
    try {
      const transport = resolvePacketTransport({ nominated: { protocol: { transport: { socket } }, remoteAddr: ['fe80::1%no-such-interface9', 5000] }, send: async () => undefined }, nativeFanout())!;
      assert.equal(transport.kind, 'udp');
      assert.equal(transport.native, undefined);
    } finally {
      socket.close();
    }
  });

  it('a UDP socket with a host name that is not an IP address is not sent to directly', () => {
    const socket = dgram.createSocket('udp4');
    try {
      const transport = resolvePacketTransport({ nominated: { protocol: { transport: { socket } }, remoteAddr: ['peer.local', 5000] }, send: async () => undefined })!;
      assert.equal(transport.kind, 'generic');
    } finally {
      socket.close();
    }
  });
});
