// The relay between ffmpeg's plain RTP and the Home app's SRTP, driven with synthetic packets and a
// fake clock: the receiver decrypts with werift's SrtpSession, so a wrong key, index or tag shows.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { serializeRtp } from '../../src/media/rtp.js';
import { SrtpRelay, type IncomingRtp, type RelayKind } from '../../src/homekit/srtp-relay.js';
import { newSrtpKeys, SrtpReceiver } from './srtp-receiver.js';

interface Rig {
  relay: SrtpRelay;
  video: SrtpReceiver;
  audio: SrtpReceiver;
  controller: { video: dgram.Socket; audio: dgram.Socket };
  clock: { now: number };
  send(kind: RelayKind, seq: number, timestamp: number, marker?: boolean, size?: number): void;
  close(): void;
}

async function bound(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

async function rig(silenceTimeoutMs = 60_000, onIncomingRtp?: (packet: IncomingRtp) => void): Promise<Rig> {
  const video = await SrtpReceiver.open();
  const audio = await SrtpReceiver.open();
  const controller = { video: await bound(), audio: await bound() };
  const clock = { now: 1000 };
  const relay = await SrtpRelay.create({
    video: { kind: 'video', socket: controller.video, target: { address: '127.0.0.1', port: video.port }, key: video.keys.key, salt: video.keys.salt, ssrc: 0x11111111, payloadType: 99, clockRate: 90_000 },
    audio: { kind: 'audio', socket: controller.audio, target: { address: '127.0.0.1', port: audio.port }, key: audio.keys.key, salt: audio.keys.salt, ssrc: 0x22222222, payloadType: 110, clockRate: 48_000, ...(onIncomingRtp ? { onIncomingRtp } : {}) },
    rtcpIntervalMs: 200,
    silenceTimeoutMs,
    now: () => clock.now,
  });
  relay.markStart();
  const ffmpeg = dgram.createSocket('udp4');
  return {
    relay,
    video,
    audio,
    controller,
    clock,
    send(kind, seq, timestamp, marker = true, size = 100) {
      const packet = serializeRtp({ payloadType: kind === 'video' ? 96 : 97, marker, sequenceNumber: seq & 0xffff, timestamp: timestamp >>> 0, ssrc: 0xabcdef }, Buffer.alloc(size, seq & 0xff));
      ffmpeg.send(packet, kind === 'video' ? relay.videoPort : relay.audioPort!, '127.0.0.1');
    },
    close() {
      relay.close();
      video.close();
      audio.close();
      controller.video.close();
      controller.audio.close();
      ffmpeg.close();
    },
  };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 60));

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('SRTP relay', () => {
  const rigs: Rig[] = [];
  after(() => rigs.forEach((r) => r.close()));

  it('encrypts with HomeKit\'s key, SSRC and payload type; live frames keep their spacing', async () => {
    const r = await rig();
    rigs.push(r);
    for (let i = 0; i < 10; i++) {
      r.clock.now += 40;
      r.send('video', 500 + i, 7000 + i * 3600);
      await settle();
    }
    await r.video.waitForPackets(10);
    assert.equal(r.video.decryptErrors, 0);
    const p = r.video.packets;
    assert.ok(p.every((x) => x.ssrc === 0x11111111 && x.payloadType === 99));
    for (let i = 1; i < p.length; i++) {
      assert.equal(p[i]!.sequenceNumber, (p[i - 1]!.sequenceNumber + 1) & 0xffff);
      assert.equal((p[i]!.timestamp - p[i - 1]!.timestamp) >>> 0, 3600, 'the camera\'s 40 ms spacing is kept');
    }
  });

  it('a GOP burst is squeezed to "now" (video) and stale audio is dropped, without gaps', async () => {
    const r = await rig();
    rigs.push(r);
    // 50 video frames (2 s) and 100 audio packets (2 s) arrive at the same instant.
    for (let i = 0; i < 50; i++) r.send('video', i, i * 3600);
    for (let i = 0; i < 100; i++) r.send('audio', i, i * 960);
    await settle();
    await r.video.waitForPackets(50);
    // Every audio packet of the burst must be judged at the same "now": on a busy machine the
    // relay may still be reading them when the clock below moves on.
    await waitUntil(() => r.relay.stats().audio!.packetsSent + r.relay.stats().audio!.packetsDropped === 100);
    const v = r.video.packets;
    const span = (v.at(-1)!.timestamp - v[0]!.timestamp) >>> 0;
    assert.ok(span < 90 * 200, `the burst spans ${span / 90} ms of timestamps, not 2 s`);
    const lastBurst = v.at(-1)!.timestamp;
    // Then live frames continue at camera pace.
    r.clock.now += 40;
    r.send('video', 50, 50 * 3600);
    await settle();
    await r.video.waitForPackets(51);
    assert.equal((r.video.packets[50]!.timestamp - lastBurst) >>> 0, 3600);
    const a = r.audio.packets;
    assert.ok(a.length > 0 && a.length <= 10, `only the newest audio survives the burst (${a.length} packets)`);
    for (let i = 1; i < a.length; i++) {
      assert.equal((a[i]!.timestamp - a[i - 1]!.timestamp) >>> 0, 960, 'audio stays gapless 20 ms steps');
      assert.equal(a[i]!.sequenceNumber, (a[i - 1]!.sequenceNumber + 1) & 0xffff);
    }
    assert.ok(r.relay.stats().audio!.packetsDropped >= 90);
  });

  it('audio dropped in the middle of a burst leaves no gap in sequence numbers or timestamps', async () => {
    const r = await rig();
    rigs.push(r);
    // A burst read while real time moves on: some stale packets are dropped, later ones sent again.
    for (let i = 0; i < 50; i++) r.send('audio', i, i * 960);
    await waitUntil(() => r.relay.stats().audio!.packetsSent + r.relay.stats().audio!.packetsDropped === 50);
    r.clock.now += 100;
    for (let i = 50; i < 100; i++) r.send('audio', i, i * 960);
    await waitUntil(() => r.relay.stats().audio!.packetsSent + r.relay.stats().audio!.packetsDropped === 100);
    const sent = r.relay.stats().audio!.packetsSent;
    assert.ok(r.relay.stats().audio!.packetsDropped > 0, 'the burst had stale packets to drop');
    await r.audio.waitForPackets(sent);
    const a = r.audio.packets;
    assert.ok(a.length > 10, `packets were sent after a drop (${a.length})`);
    for (let i = 1; i < a.length; i++) {
      assert.equal(a[i]!.sequenceNumber, (a[i - 1]!.sequenceNumber + 1) & 0xffff, `packet ${i}: no sequence gap where packets were dropped`);
      assert.equal((a[i]!.timestamp - a[i - 1]!.timestamp) >>> 0, 960, `packet ${i}: gapless 20 ms steps`);
    }
  });

  it('a new ffmpeg (epoch) continues sequence numbers and timestamps', async () => {
    const r = await rig();
    rigs.push(r);
    for (let i = 0; i < 5; i++) {
      r.clock.now += 40;
      r.send('video', 100 + i, 1000 + i * 3600);
      await settle();
    }
    r.relay.newEpoch();
    r.clock.now += 500;
    for (let i = 0; i < 5; i++) {
      r.clock.now += 40;
      r.send('video', 60_000 + i, 999_999 + i * 3600); // a restarted ffmpeg numbers from anywhere
      await settle();
    }
    await r.video.waitForPackets(10);
    const p = r.video.packets;
    for (let i = 1; i < p.length; i++) assert.equal(p[i]!.sequenceNumber, (p[i - 1]!.sequenceNumber + 1) & 0xffff, `packet ${i}`);
    const gap = (p[5]!.timestamp - p[4]!.timestamp) >>> 0;
    assert.ok(gap >= 90 * 500 && gap <= 90 * 600, `the pause shows as time, not a jump (${gap / 90} ms)`);
  });

  it('sends SRTCP sender reports, and reports a silent controller', async () => {
    const r = await rig(300);
    rigs.push(r);
    const silent = new Promise<number>((resolve) => r.relay.once('controller-silent', resolve));
    r.send('video', 1, 1);
    await r.video.waitForPackets(1);
    r.clock.now += 1000;
    const ms = await silent;
    assert.ok(ms >= 300);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(r.video.rtcpPackets >= 1, 'sender reports decrypt with the same key');
  });

  it('RTCP from the controller keeps the stream alive', async () => {
    const r = await rig(300);
    rigs.push(r);
    let silent = false;
    r.relay.once('controller-silent', () => (silent = true));
    r.video.keepAlive({ address: '127.0.0.1', port: r.controller.video.address().port }, 50);
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r.clock.now += 100;
    }
    assert.equal(silent, false);
    assert.ok(r.relay.stats().video.controllerPackets > 5);
  });

  it('the Home app\'s microphone (SRTP on the audio port, same key) is decrypted and handed on; a stranger\'s key is rejected', async () => {
    const received: IncomingRtp[] = [];
    const r = await rig(60_000, (packet) => received.push(packet));
    rigs.push(r);
    const target = { address: '127.0.0.1', port: r.controller.audio.address().port };
    for (let i = 0; i < 5; i++) {
      r.audio.sendRtp(target, { payloadType: 110, sequenceNumber: 65_534 + i, timestamp: 1000 + i * 480, ssrc: 0x5151, payload: Buffer.from([0x78, i, i, i]) });
    }
    const stranger = await SrtpReceiver.open(newSrtpKeys());
    stranger.sendRtp(target, { payloadType: 110, sequenceNumber: 7, timestamp: 7, ssrc: 0x5151, payload: Buffer.from([0x78, 9, 9, 9]) });
    // Plain RTP, unprotected: no tag to check, so it is rejected too.
    r.controller.audio.send(serializeRtp({ payloadType: 110, marker: false, sequenceNumber: 8, timestamp: 8, ssrc: 0x5151 }, Buffer.from([0x78, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])), target.port, target.address);
    const deadline = Date.now() + 5000;
    while ((received.length < 5 || r.relay.stats().audio!.incomingRejected < 2) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    stranger.close();
    assert.deepEqual(received.map((p) => p.sequenceNumber), [65_534, 65_535, 0, 1, 2], 'in order, across the sequence wrap');
    assert.deepEqual(received.map((p) => p.timestamp), [1000, 1480, 1960, 2440, 2920]);
    assert.deepEqual(received[3]!.payload, Buffer.from([0x78, 3, 3, 3]));
    assert.equal(received[0]!.ssrc, 0x5151);
    const stats = r.relay.stats().audio!;
    assert.equal(stats.incomingRtp, 5);
    assert.equal(stats.incomingRejected, 2);
    assert.equal(r.relay.stats().video.incomingRtp, 0);
  });
});
