// Where a viewer's packets go once ICE picked a pair: straight to the UDP socket, or through
// werift's send (counted until it completes).
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';

import { nativeFanout, udpSocketFd } from '../../src/rtp/native-fanout.js';
import { resolvePacketTransport, TURN_CHANNEL_CHECK_MS, turnChannelPacketTransport, type IceConnectionLike, type PacketTransport } from '../../src/webrtc/packet-transport.js';
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
          const target = transport.nativeTarget()!;
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
        assert.equal(transport.nativeTarget() !== undefined, path === 'native');
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
      const fd = transport.nativeTarget()?.fd;
      assert.ok(fd !== undefined);
      transport.send(Buffer.from('before'));
      await waitFor(() => received === 1, 2000, 'the first datagram');
      socket.close();
      await bind(reuse);
      t.diagnostic(`closed descriptor ${fd}; the new socket got ${String(udpSocketFd(reuse))}`);
      assert.equal(transport.nativeTarget(), undefined, 'no native target for a closed socket');
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
      assert.equal(transport.nativeTarget(), undefined);
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

  // werift's TURN client as a relay pair holds it: its UDP socket, the pinned server, channels by peer.
  function turnPair(socket: dgram.Socket, server: number, channels: Record<string, { number: number }>, getChannel: () => Promise<unknown> = async () => undefined) {
    return { protocol: { turn: { transport: { socket }, serverEndpoint: ['127.0.0.1', server] as const, channelByAddr: channels, getChannel } }, remoteAddr: ['127.0.0.1', 40_001] as const };
  }

  for (const path of ['native', 'javascript'] as const) {
    it(`a TURN pair over UDP with a channel to the viewer sends to the TURN server, each datagram behind the ChannelData header (${path})`, async () => {
      const socket = dgram.createSocket('udp4');
      const server = dgram.createSocket('udp4');
      for (const s of [socket, server]) await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
      try {
        let viaWerift = 0;
        const pair = turnPair(socket, server.address().port, { '["127.0.0.1",40001]': { number: 0x4003 } });
        const status = path === 'native' ? nativeFanout() : { loaded: false as const, reason: 'this test' };
        const transport = resolvePacketTransport({ nominated: pair, send: async () => void viaWerift++ }, status)!;
        assert.equal(transport.kind, 'turn');
        assert.equal(transport.pair, pair);
        assert.equal(transport.nativeTarget() !== undefined, path === 'native');
        const got = new Promise<Buffer>((resolve) => server.once('message', resolve));
        transport.send([Buffer.from('he'), Buffer.from('llo')]);
        assert.deepEqual([...(await got)], [0x40, 0x03, 0, 5, ...Buffer.from('hello')]);
        assert.equal(viaWerift, 0);
      } finally {
        socket.close();
        server.close();
      }
    });
  }

  it('a TURN pair without a channel to the viewer (werift sends Send indications), or over TCP, goes through werift', () => {
    const socket = dgram.createSocket('udp4');
    try {
      const noChannel = resolvePacketTransport({ nominated: turnPair(socket, 3478, {}), send: async () => undefined }, nativeFanout())!;
      assert.equal(noChannel.kind, 'generic');
      const tcp = turnPair(socket, 3478, { '["127.0.0.1",40001]': { number: 0x4000 } });
      const overTcp = { ...tcp, protocol: { turn: { ...tcp.protocol.turn, transport: { type: 'tcp' } } } };
      assert.equal(resolvePacketTransport({ nominated: overTcp, send: async () => undefined }, nativeFanout())!.kind, 'generic');
    } finally {
      socket.close();
    }
  });

  it('every kind of transport keeps V8 fast properties, so the fan-out reads them inline (a getter would put the object in dictionary mode)', () => {
    // The fan-out reads a viewer's transport once per frame (nativeTarget, queuedBytes). An
    // object literal with a getter is kept in dictionary mode, where each such read is a generic
    // look-up: a quarter of the fan-out's JavaScript time at 50 viewers (bench:webrtc under perf).
    setFlagsFromString('--allow-natives-syntax');
    const hasFastProperties = new Function('object', 'return %HasFastProperties(object)') as (object: unknown) => boolean;
    setFlagsFromString('--no-allow-natives-syntax');
    const socket = dgram.createSocket('udp4');
    try {
      socket.bind(0, '127.0.0.1');
      const udpPair = { protocol: { transport: { socket } }, remoteAddr: ['127.0.0.1', 40_000] as const };
      const channel = { '["127.0.0.1",40001]': { number: 0x4000 } };
      const transports: Record<string, PacketTransport> = {};
      for (const [name, status] of [['native', nativeFanout()], ['javascript', { loaded: false as const, reason: 'this test' }]] as const) {
        transports[`udp, ${name}`] = resolvePacketTransport({ nominated: udpPair, send: async () => undefined }, status)!;
        transports[`turn, ${name}`] = resolvePacketTransport({ nominated: turnPair(socket, 3478, channel), send: async () => undefined }, status)!;
      }
      transports['generic'] = resolvePacketTransport({ nominated: turnPair(socket, 3478, {}), send: async () => undefined }, nativeFanout())!;
      assert.deepEqual(Object.values(transports).map((t) => t.kind), ['udp', 'turn', 'udp', 'turn', 'generic']);
      for (const [name, transport] of Object.entries(transports)) assert.equal(hasFastProperties(transport), true, `${name}: fast properties`);
    } finally {
      socket.close();
    }
  });

  it(`asks werift to refresh the channel every ${TURN_CHANNEL_CHECK_MS / 1000} s while it sends, and goes werift's way once a refresh failed`, async () => {
    const socket = dgram.createSocket('udp4');
    const server = dgram.createSocket('udp4');
    for (const s of [socket, server]) await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
    try {
      let now = 1_000_000;
      let refreshes = 0;
      const werift = { refusal: undefined as Error | undefined };
      const viaWerift: number[] = [];
      const channel = { socket, server: ['127.0.0.1', server.address().port] as const, number: 0x4000, refresh: async () => (refreshes++, werift.refusal ? Promise.reject(werift.refusal) : undefined) };
      const generic: PacketTransport = { kind: 'generic', pair: 'the pair', nativeTarget: () => undefined, send: (p) => viaWerift.push(Buffer.concat([p].flat()).length), queuedBytes: () => 0 };
      const transport = turnChannelPacketTransport(channel, nativeFanout(), generic, () => now);
      let relayed = 0;
      server.on('message', () => relayed++);
      transport.send(Buffer.alloc(10));
      assert.ok(transport.nativeTarget());
      now += TURN_CHANNEL_CHECK_MS - 1;
      transport.send(Buffer.alloc(10));
      assert.equal(refreshes, 0, 'not before it is due');
      now += 1;
      assert.ok(transport.nativeTarget());
      transport.send(Buffer.alloc(10));
      assert.equal(refreshes, 1, 'once when due, not per packet');
      await waitFor(() => relayed === 3, 2_000, 'three datagrams at the TURN server');
      werift.refusal = new Error('438 Stale Nonce, then 403');
      now += TURN_CHANNEL_CHECK_MS;
      transport.send(Buffer.alloc(10));
      await sleep(0);
      assert.equal(refreshes, 2);
      assert.equal(transport.nativeTarget(), undefined, 'frames no longer go on the channel');
      transport.send(Buffer.alloc(7));
      assert.deepEqual(viaWerift, [7], 'but through werift, which binds anew or sends indications');
      await sleep(50);
      assert.equal(relayed, 4);
    } finally {
      socket.close();
      server.close();
    }
  });
});
