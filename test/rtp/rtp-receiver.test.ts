// Where RTP over UDP comes in (src/rtp/rtp-receiver.ts), through the native receiver
// (native/udp-receive.c, one recvmmsg per burst) and through dgram: both deliver every datagram
// from the camera byte for byte and in order, drop anyone else's, and stop at close.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { nativeFanout, type NativeFanout, type NativeUdpReceiverHandle, type UdpBatchHandler } from '../../src/rtp/native-fanout.js';
import { dgramRtpReceiver, openLoopbackRtpReceiver, openNativeRtpReceiver, type RtpReceiver } from '../../src/rtp/rtp-receiver.js';
import { readProcUdpSockets } from '../helpers/proc-net-udp.js';
import { sleep, waitFor } from '../helpers/wait.js';

const RECEIVE_BUFFER = 4 * 1024 * 1024;

function loadedNative(): NativeFanout {
  const status = nativeFanout();
  assert.ok(status.loaded, `the native addon loads on this machine: ${status.loaded ? '' : status.reason}`);
  return status.fanout;
}

async function bound(address = '127.0.0.1'): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return socket;
}

async function openReceiver(path: 'native' | 'dgram'): Promise<RtpReceiver> {
  if (path === 'native') return openNativeRtpReceiver(loadedNative(), '127.0.0.1', 0, RECEIVE_BUFFER);
  const socket = await bound();
  socket.setRecvBufferSize(RECEIVE_BUFFER);
  return dgramRtpReceiver(socket);
}

/** Sends each datagram in order, from `from`, without waiting between them. */
async function sendAll(from: dgram.Socket, port: number, datagrams: Buffer[]): Promise<void> {
  await Promise.all(datagrams.map((d) => new Promise<void>((resolve, reject) => from.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())))));
}

for (const path of ['native', 'dgram'] as const) {
  describe(`RTP receiver through ${path}`, () => {
    let sender: dgram.Socket;
    let stranger: dgram.Socket;
    before(async () => {
      sender = await bound();
      // Another address of this machine (all of 127/8 is loopback): not the camera.
      stranger = await bound('127.0.0.2');
    });
    after(() => {
      sender.close();
      stranger.close();
    });

    it("delivers a burst of the camera's datagrams byte for byte and in order", async () => {
      const receiver = await openReceiver(path);
      try {
        assert.equal(receiver.path, path);
        receiver.allow('127.0.0.1');
        const got: Buffer[] = [];
        // Kept as delivered, not copied: a later burst must never overwrite an earlier one's bytes.
        receiver.start({ onPacket: (p) => got.push(p), onForeign: () => assert.fail('no stranger sent') });
        // Sizes from an RTCP-sized packet to a jumbo frame, 200 of them at once (several recvmmsg batches).
        const sent = Array.from({ length: 200 }, (_, i) => randomBytes([12, 172, 1400, 1500, 9000][i % 5]!));
        await sendAll(sender, receiver.port, sent);
        await waitFor(() => got.length >= sent.length, 5000, 'all 200 datagrams', () => `${got.length} arrived`);
        assert.equal(got.length, sent.length);
        got.forEach((packet, i) => assert.ok(packet.equals(sent[i]!), `datagram ${i} (${sent[i]!.length} bytes) arrived as ${packet.length} different bytes`));
      } finally {
        receiver.close();
      }
    });

    it('drops datagrams from any other address, and reports the first stranger once', async () => {
      const receiver = await openReceiver(path);
      try {
        receiver.allow('::ffff:127.0.0.1'); // as a dual-stack socket reports it
        const got: string[] = [];
        const strangers: string[] = [];
        receiver.start({ onPacket: (p) => got.push(p.toString()), onForeign: (from) => strangers.push(from) });
        await sendAll(stranger, receiver.port, [Buffer.from('injected 1'), Buffer.from('injected 2')]);
        await waitFor(() => strangers.length > 0, 5000, 'the stranger reported');
        await sendAll(sender, receiver.port, [Buffer.from('camera')]);
        await sendAll(stranger, receiver.port, [Buffer.from('injected 3')]);
        await sendAll(sender, receiver.port, [Buffer.from('camera again')]);
        await waitFor(() => got.length >= 2, 5000, "the camera's datagrams");
        await sleep(50);
        assert.deepEqual(got, ['camera', 'camera again']);
        assert.deepEqual(strangers, ['127.0.0.2']);
      } finally {
        receiver.close();
      }
    });

    it(path === 'native' ? 'holds packets until flushed, each with how long ago it arrived' : 'cannot hold: delivers each packet at once, age 0', async () => {
      const receiver = await openReceiver(path);
      try {
        receiver.allow('127.0.0.1');
        const got: Array<{ text: string; ageMs: number }> = [];
        receiver.start({ onPacket: (p, ageMs) => got.push({ text: p.toString(), ageMs }), onForeign: () => undefined });
        receiver.hold(true);
        await sendAll(sender, receiver.port, [Buffer.from('one'), Buffer.from('two')]);
        await sleep(120);
        if (path === 'native') {
          assert.equal(got.length, 0, 'held');
          receiver.flush();
          assert.deepEqual(got.map((g) => g.text), ['one', 'two']);
          assert.ok(got.every((g) => g.ageMs >= 100), `ages ${got.map((g) => g.ageMs.toFixed(1)).join(', ')}`);
        } else {
          assert.deepEqual(got, [{ text: 'one', ageMs: 0 }, { text: 'two', ageMs: 0 }]);
        }
        receiver.hold(false);
        await sendAll(sender, receiver.port, [Buffer.from('three')]);
        await waitFor(() => got.length === 3, 5000, 'the packet after the hold');
        assert.ok(got[2]!.ageMs < 20);
      } finally {
        receiver.close();
      }
    });

    it('keeps delivering after a handler throws, and never throws out of the event loop', async () => {
      const receiver = await openReceiver(path);
      try {
        receiver.allow('127.0.0.1');
        const got: string[] = [];
        receiver.start({
          onPacket: (p) => {
            got.push(p.toString());
            if (got.length === 1) throw new Error('a broken handler');
          },
          onForeign: () => undefined,
        });
        await sendAll(sender, receiver.port, [Buffer.from('first')]);
        await waitFor(() => got.length === 1, 5000, 'the first datagram');
        await sendAll(sender, receiver.port, [Buffer.from('second')]);
        await waitFor(() => got.length === 2, 5000, 'the datagram after the throw');
        assert.deepEqual(got, ['first', 'second']);
      } finally {
        receiver.close();
      }
    });

    it('delivers nothing before start or after close, and frees its port at close', async () => {
      const receiver = await openReceiver(path);
      receiver.allow('127.0.0.1');
      const port = receiver.port;
      await sendAll(sender, port, [Buffer.from('before start')]);
      await sleep(50);
      const got: string[] = [];
      receiver.start({ onPacket: (p) => got.push(p.toString()), onForeign: () => undefined });
      await sendAll(sender, port, [Buffer.from('while open')]);
      await waitFor(() => got.length === 1, 5000, 'the datagram sent while open');
      receiver.close();
      receiver.close(); // idempotent
      await sendAll(sender, port, [Buffer.from('after close')]).catch(() => undefined);
      await sleep(50);
      assert.deepEqual(got, ['while open']);
      // The port is free again (the native socket is closed once libuv lets go of it).
      let rebound: dgram.Socket | undefined;
      await waitFor(
        async () => {
          const socket = dgram.createSocket('udp4');
          const ok = await new Promise<boolean>((resolve) => {
            socket.once('error', () => resolve(false));
            socket.bind(port, '127.0.0.1', () => resolve(true));
          });
          if (ok) rebound = socket;
          else socket.close();
          return ok;
        },
        2000,
        `port ${port} free after close`,
      );
      rebound?.close();
    });
  });
}

describe('openLoopbackRtpReceiver (for an ffmpeg the plugin runs)', () => {
  for (const [path, native] of [['native', nativeFanout()], ['dgram', { loaded: false, reason: 'this test' } as const]] as const) {
    it(`takes RTP from 127.0.0.1 only, through ${path}`, async () => {
      const receiver = await openLoopbackRtpReceiver(native);
      const sender = await bound();
      const stranger = await bound('127.0.0.3');
      try {
        assert.equal(receiver.path, path);
        const got: string[] = [];
        const strangers: string[] = [];
        receiver.start({ onPacket: (p) => got.push(p.toString()), onForeign: (from) => strangers.push(from) });
        await sendAll(stranger, receiver.port, [Buffer.from('not ffmpeg')]);
        await waitFor(() => strangers.length === 1, 5000, 'the stranger reported');
        await sendAll(sender, receiver.port, [Buffer.from('ffmpeg')]);
        await waitFor(() => got.length === 1, 5000, "ffmpeg's datagram");
        assert.deepEqual([got, strangers], [['ffmpeg'], ['127.0.0.3']]);
      } finally {
        receiver.close();
        sender.close();
        stranger.close();
      }
    });
  }
});

/** Bytes waiting in the receive queue of the UDP socket bound to 127.0.0.1:`port` (/proc/net/udp). */
function socketQueuedBytes(port: number): number {
  const socket = readProcUdpSockets().find((s) => s.localAddressHex === '0100007F' && s.port === port);
  if (!socket) throw new Error(`no UDP socket on 127.0.0.1:${port}`);
  return socket.queued;
}

/**
 * A native receiver on 127.0.0.1 taking 127.0.0.1's datagrams, and a sender to it (`send`): `body`
 * gets them, and both are closed whatever happens.
 */
async function withNativeReceiver(
  onBatch: UdpBatchHandler,
  body: (receiver: { native: NativeFanout; handle: NativeUdpReceiverHandle; send: (datagrams: Buffer[]) => Promise<void> }) => Promise<void>,
): Promise<void> {
  const native = loadedNative();
  const sender = await bound();
  const handle = native.openUdpReceiver('127.0.0.1', 0, RECEIVE_BUFFER, onBatch);
  try {
    native.setUdpReceiverSources(handle, ['127.0.0.1']);
    await body({ native, handle, send: (datagrams) => sendAll(sender, native.udpReceiverPort(handle), datagrams) });
  } finally {
    native.closeUdpReceiver(handle);
    sender.close();
  }
}

/**
 * The receive buffer the native receiver is granted when it asks for `asked` bytes, in a child Node
 * started through `wrapper` (a command and its arguments, or none), and whether that child had
 * CAP_NET_ADMIN (bit 12 of its effective capabilities).
 */
function grantedReceiveBuffer(asked: number, wrapper: string[]): { granted: number; mayForce: boolean } {
  const script = `
    import { readFileSync } from 'node:fs';
    import { nativeFanout } from './src/rtp/native-fanout.ts';
    const status = nativeFanout();
    if (!status.loaded) throw new Error(status.reason);
    const handle = status.fanout.openUdpReceiver('127.0.0.1', 0, ${asked}, () => undefined);
    const granted = status.fanout.udpReceiverStats(handle).receiveBuffer;
    status.fanout.closeUdpReceiver(handle);
    const effective = BigInt('0x' + /^CapEff:\\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
    console.log(JSON.stringify({ granted, mayForce: (effective & (1n << 12n)) !== 0n }));`;
  const [command, ...args] = [...wrapper, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script];
  return JSON.parse(execFileSync(command!, args, { encoding: 'utf8', timeout: 30_000 })) as { granted: number; mayForce: boolean };
}

describe('the native receiver itself (native/udp-receive.c)', () => {
  it('hands a burst to JavaScript in fewer calls than datagrams', async () => {
    let calls = 0;
    let packets = 0;
    await withNativeReceiver((_slab, _offset, _lengths, count) => {
      calls++;
      packets += count;
    }, async ({ send }) => {
      // Queued on the socket before the loop turns: one readiness event, recvmmsg batches of 32.
      await send(Array.from({ length: 64 }, () => randomBytes(1200)));
      await waitFor(() => packets >= 64, 5000, '64 datagrams');
      assert.equal(packets, 64);
      assert.ok(calls <= 16, `64 datagrams in ${calls} calls`);
    });
  });

  it('drops and counts a datagram longer than a jumbo frame, and survives a handler that throws', async () => {
    const got: number[] = [];
    await withNativeReceiver((_slab, _offset, lengths, count) => {
      got.push(...lengths.subarray(0, count));
      throw new Error('a broken handler');
    }, async ({ native, handle, send }) => {
      await send([randomBytes(20_000)]);
      await waitFor(() => native.udpReceiverStats(handle).truncated === 1, 5000, 'the long datagram counted');
      await send([randomBytes(100)]);
      await waitFor(() => got.length === 1, 5000, 'the next datagram');
      await send([randomBytes(200)]);
      await waitFor(() => got.length === 2, 5000, 'one more after the handler threw');
      assert.deepEqual(got, [100, 200]);
      assert.equal(native.udpReceiverStats(handle).callbackErrors, 2);
    });
  });

  it('holds bursts until flushed, each with its arrival time, and delivers what it held first when let go', async () => {
    const got: Array<{ text: string; ageMs: number }> = [];
    let calls = 0;
    await withNativeReceiver((slab, offset, lengths, count, _foreign, arrivals, deliveredAt) => {
      calls++;
      for (let i = 0; i < count; i++) {
        got.push({ text: slab.toString('utf8', offset, offset + lengths[i]!), ageMs: deliveredAt - arrivals[i]! });
        offset += lengths[i]!;
      }
    }, async ({ native, handle, send }) => {
      native.setUdpReceiverHold(handle, true);
      await send([Buffer.from('a1'), Buffer.from('a2')]);
      await sleep(150);
      await send([Buffer.from('b1')]);
      await sleep(60);
      assert.equal(calls, 0, 'nothing is delivered while held');
      native.flushUdpReceiver(handle);
      assert.equal(calls, 1, 'a flush delivers before it returns, in one call');
      assert.deepEqual(got.map((g) => g.text), ['a1', 'a2', 'b1']);
      // The first two waited about 210 ms, the last about 60: each keeps its own arrival time.
      assert.ok(got[0]!.ageMs >= 180 && got[1]!.ageMs >= 180, `ages ${got.map((g) => g.ageMs.toFixed(1)).join(', ')}`);
      assert.ok(got[2]!.ageMs >= 40 && got[2]!.ageMs < got[1]!.ageMs - 100, `ages ${got.map((g) => g.ageMs.toFixed(1)).join(', ')}`);
      native.flushUdpReceiver(handle);
      assert.equal(calls, 1, 'an empty flush calls nothing');

      await send([Buffer.from('c1')]);
      await sleep(50);
      assert.equal(got.length, 3);
      native.setUdpReceiverHold(handle, false); // what was held goes first...
      assert.deepEqual(got.map((g) => g.text), ['a1', 'a2', 'b1', 'c1']);
      await send([Buffer.from('d1')]); // ...then each as it comes
      await waitFor(() => got.length === 5, 5000, 'the datagram after holding ended');
      assert.equal(got[4]!.text, 'd1');
      assert.ok(got[4]!.ageMs >= 0 && got[4]!.ageMs < 20, `delivered at once: age ${got[4]!.ageMs}`);
    });
  });

  it('drains a hold: the datagrams wait in the socket, unread, until a flush reads them all', async () => {
    const got: Array<{ seq: number; ageMs: number }> = [];
    let calls = 0;
    await withNativeReceiver((slab, offset, lengths, count, _foreign, arrivals, deliveredAt) => {
      calls++;
      for (let i = 0; i < count; i++) {
        got.push({ seq: slab.readUInt32BE(offset), ageMs: deliveredAt - arrivals[i]! });
        offset += lengths[i]!;
      }
    }, async ({ native, handle, send }) => {
      const port = native.udpReceiverPort(handle);
      native.setUdpReceiverHold(handle, true);
      assert.equal(native.udpReceiverStats(handle).holdMode, 'drain');
      const numbered = (from: number, n: number): Buffer[] =>
        Array.from({ length: n }, (_, i) => {
          const datagram = randomBytes(1200);
          datagram.writeUInt32BE(from + i, 0);
          return datagram;
        });
      await send(numbered(0, 100));
      await sleep(120);
      await send(numbered(100, 100));
      await sleep(30);
      // Nothing was read: the kernel still holds every byte (a polled hold would have read them).
      assert.ok(socketQueuedBytes(port) >= 200 * 1200, `receive queue ${socketQueuedBytes(port)} bytes`);
      assert.equal(calls, 0);
      const queued = socketQueuedBytes(port);
      const fill = native.flushUdpReceiver(handle);
      assert.equal(socketQueuedBytes(port), 0, 'the flush read the socket empty');
      // It says how full the buffer was, as the kernel counts it (more than the payload: each
      // datagram's bookkeeping), so its caller can flush sooner before draining must stop.
      const granted = native.udpReceiverStats(handle).receiveBuffer;
      assert.ok(fill >= queued / granted && fill < 0.5, `fill ${fill.toFixed(3)} for ${queued} bytes queued of ${granted}`);
      assert.equal(native.flushUdpReceiver(handle), 0, 'and an empty socket is empty');
      assert.deepEqual(got.map((g) => g.seq), Array.from({ length: 200 }, (_, i) => i), 'all, once, in order');
      // Ages come from the kernel's receive timestamps, not from when the flush read them.
      assert.ok(got[0]!.ageMs >= 130 && got[99]!.ageMs >= 130, `first burst ages ${got[0]!.ageMs.toFixed(1)} / ${got[99]!.ageMs.toFixed(1)} ms`);
      assert.ok(got[100]!.ageMs >= 20 && got[100]!.ageMs < got[99]!.ageMs - 80, `second burst age ${got[100]!.ageMs.toFixed(1)} ms`);
      const stats = native.udpReceiverStats(handle);
      assert.equal(stats.kernelDrops, 0);
      assert.equal(stats.holdMode, 'drain', stats.holdModeReason);
    });
  });

  it('gives draining up for good when the kernel dropped a datagram, and then reads as they come', async () => {
    const native = loadedNative();
    const sender = await bound();
    const got: number[] = [];
    // The smallest receive buffer the kernel grants holds a few datagrams of 1200 bytes.
    const handle = native.openUdpReceiver('127.0.0.1', 0, 1, (slab, offset, lengths, count) => {
      for (let i = 0; i < count; i++) {
        got.push(slab.readUInt32BE(offset));
        offset += lengths[i]!;
      }
    });
    try {
      native.setUdpReceiverSources(handle, ['127.0.0.1']);
      const port = native.udpReceiverPort(handle);
      native.setUdpReceiverHold(handle, true);
      for (let i = 0; i < 20; i++) {
        const datagram = randomBytes(1200);
        datagram.writeUInt32BE(i, 0);
        await sendAll(sender, port, [datagram]);
      }
      await sleep(30);
      assert.equal(native.flushUdpReceiver(handle), -1, 'a flush that gave draining up says nothing drains');
      const stats = native.udpReceiverStats(handle);
      assert.ok(got.length > 0 && got.length < 20, `${got.length} of 20 fit the buffer`);
      assert.equal(stats.kernelDrops, 20 - got.length, 'the kernel counted what it dropped');
      assert.equal(stats.holdMode, 'poll');
      assert.match(stats.holdModeReason, /dropped/);
      // Still holding, but by polling now: the same 20 one at a time are read as they come, and none is lost.
      got.length = 0;
      for (let i = 0; i < 20; i++) {
        const datagram = randomBytes(1200);
        datagram.writeUInt32BE(100 + i, 0);
        await sendAll(sender, port, [datagram]);
        await sleep(2);
        assert.equal(socketQueuedBytes(port), 0, `datagram ${i} was read at once`);
      }
      native.flushUdpReceiver(handle);
      assert.deepEqual(got, Array.from({ length: 20 }, (_, i) => 100 + i));
      assert.equal(native.udpReceiverStats(handle).kernelDrops, stats.kernelDrops, 'no new loss');
    } finally {
      native.closeUdpReceiver(handle);
      sender.close();
    }
  });

  it('gets the receive buffer it asks for past net.core.rmem_max where the process may (CAP_NET_ADMIN), and the cap elsewhere', () => {
    const cap = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const asked = cap + 1024 * 1024;
    // A child with this process's capabilities, and one without CAP_NET_ADMIN (setpriv, util-linux): both ways run here.
    const self = grantedReceiveBuffer(asked, []);
    assert.equal(self.granted, 2 * (self.mayForce ? asked : cap), `as this process: rmem_max ${cap}, CAP_NET_ADMIN ${self.mayForce}`);
    const capped = grantedReceiveBuffer(asked, ['setpriv', '--bounding-set', '-net_admin', '--inh-caps', '-net_admin']);
    assert.equal(capped.mayForce, false);
    // The kernel doubles what it is given, for its own bookkeeping, and reports that.
    assert.equal(capped.granted, 2 * cap, `without CAP_NET_ADMIN: rmem_max ${cap}`);
  });

  it('tells its user once, at the flush that found it, when a hold falls back from draining', async () => {
    const sender = await bound();
    const fallbacks: Array<[string, number]> = [];
    const delivered: number[] = [];
    // The smallest buffer the kernel grants: 20 datagrams overflow it while the hold drains.
    const receiver = openNativeRtpReceiver(loadedNative(), '127.0.0.1', 0, 1);
    try {
      receiver.allow('127.0.0.1');
      receiver.start({
        onPacket: (packet) => delivered.push(packet.readUInt32BE(0)),
        onForeign: () => undefined,
        onHoldFallback: (reason, bytes) => fallbacks.push([reason, bytes]),
      });
      receiver.hold(true);
      receiver.flush();
      assert.deepEqual(fallbacks, [], 'a drained hold that lost nothing says nothing');
      for (let i = 0; i < 20; i++) {
        const datagram = randomBytes(1200);
        datagram.writeUInt32BE(i, 0);
        await sendAll(sender, receiver.port, [datagram]);
      }
      await sleep(30);
      receiver.flush();
      assert.ok(delivered.length > 0 && delivered.length < 20, `${delivered.length} of 20 fit the buffer`);
      assert.equal(fallbacks.length, 1);
      assert.match(fallbacks[0]![0], /dropped/);
      assert.ok(fallbacks[0]![1] > 0 && fallbacks[0]![1] < 64 * 1024, `the granted buffer: ${fallbacks[0]![1]} bytes`);
      // Later flushes, and a hold taken again, say nothing new.
      await sendAll(sender, receiver.port, [randomBytes(1200)]);
      await sleep(10);
      receiver.flush();
      receiver.hold(false);
      receiver.hold(true);
      receiver.flush();
      assert.equal(fallbacks.length, 1);
    } finally {
      receiver.close();
      sender.close();
    }
  });

  it('gives draining up when one flush found half its receive buffer used, before anything is lost', async () => {
    const native = loadedNative();
    const sender = await bound();
    let delivered = 0;
    const handle = native.openUdpReceiver('127.0.0.1', 0, 96 * 1024, (_slab, _offset, _lengths, count) => {
      delivered += count;
    });
    try {
      native.setUdpReceiverSources(handle, ['127.0.0.1']);
      const granted = native.udpReceiverStats(handle).receiveBuffer;
      assert.ok(granted >= 96 * 1024, `granted ${granted}`);
      native.setUdpReceiverHold(handle, true);
      // Datagrams until the kernel counts more than half its buffer used (it charges each its true size).
      const port = native.udpReceiverPort(handle);
      let sent = 0;
      while (socketQueuedBytes(port) <= granted / 2) {
        await sendAll(sender, port, [randomBytes(1200)]);
        sent++;
      }
      assert.equal(delivered, 0, 'a drained hold read nothing yet');
      native.flushUdpReceiver(handle);
      assert.equal(delivered, sent);
      const stats = native.udpReceiverStats(handle);
      assert.equal(stats.kernelDrops, 0, 'nothing was lost yet');
      assert.equal(stats.holdMode, 'poll');
      assert.match(stats.holdModeReason, /half the receive buffer/);
    } finally {
      native.closeUdpReceiver(handle);
      sender.close();
    }
  });

  it('delivers held datagrams by itself when they would outgrow what it holds, losing none (a polled hold)', async () => {
    const got: number[] = [];
    let calls = 0;
    await withNativeReceiver((slab, offset, lengths, count) => {
      calls++;
      for (let i = 0; i < count; i++) {
        got.push(slab.readUInt32BE(offset));
        offset += lengths[i]!;
      }
    }, async ({ native, handle, send }) => {
      native.setUdpReceiverHold(handle, true, false);
      assert.equal(native.udpReceiverStats(handle).holdMode, 'drain', 'polled because asked to, not given up');
      // 1200 datagrams of 1200 bytes: more than the 512 held at most, and more than one slab.
      for (let burst = 0; burst < 12; burst++) {
        await send(
          Array.from({ length: 100 }, (_, i) => {
            const datagram = randomBytes(1200);
            datagram.writeUInt32BE(burst * 100 + i, 0);
            return datagram;
          }),
        );
        await sleep(5);
      }
      // Without a flush, all but what one hold can keep (512 datagrams, a 512 KiB slab) arrives.
      await waitFor(() => got.length >= 1200 - 512, 5000, 'the full holds delivered without a flush', () => `${got.length} delivered`);
      assert.ok(got.length < 1200, 'the rest is still held');
      await waitFor(
        () => {
          native.flushUdpReceiver(handle);
          return got.length === 1200;
        },
        5000,
        'all 1200',
      );
      assert.deepEqual(got, Array.from({ length: 1200 }, (_, i) => i), 'every datagram once, in order');
      assert.ok(calls < 20, `${calls} calls for 1200 datagrams`);
    });
  });

  it('refuses bad arguments with an error, not a crash', () => {
    const native = loadedNative();
    const onBatch = (): void => undefined;
    assert.throws(() => native.openUdpReceiver('not an address', 0, 0, onBatch), /not an IP address/);
    assert.throws(() => native.openUdpReceiver('127.0.0.1', 70_000, 0, onBatch), /bad arguments/);
    const handle = native.openUdpReceiver('127.0.0.1', 0, 0, onBatch);
    try {
      assert.throws(() => native.setUdpReceiverSources(handle, ['camera.local']), /not an IP address/);
      assert.throws(() => native.setUdpReceiverSources(handle, Array.from({ length: 9 }, () => '127.0.0.1')), /too many/);
      assert.throws(() => native.udpReceiverPort({} as typeof handle), /bad arguments/);
      assert.throws(() => native.setUdpReceiverHold(handle, 'yes' as unknown as boolean), /bad arguments/);
      assert.throws(() => native.flushUdpReceiver({} as typeof handle), /bad arguments/);
      const taken = native.udpReceiverPort(handle);
      assert.throws(() => native.openUdpReceiver('127.0.0.1', taken, 0, onBatch), /bind 127\.0\.0\.1:\d+: EADDRINUSE/);
    } finally {
      native.closeUdpReceiver(handle);
    }
  });

  it('closes its socket: a hundred opened and closed leave no descriptor behind', async () => {
    const native = loadedNative();
    const descriptors = (): number => readdirSync('/proc/self/fd').length;
    const start = descriptors();
    for (let i = 0; i < 100; i++) native.closeUdpReceiver(native.openUdpReceiver('127.0.0.1', 0, 0, () => undefined));
    await waitFor(() => descriptors() <= start, 2000, 'the descriptors closed', () => `${descriptors() - start} left open`);
  });
});
