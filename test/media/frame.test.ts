// frameByteLength: the Source's byteLength when set, the sum of the units otherwise; and the
// Source's frames (SourceFrame): one shape, cut into packets on first read.
import assert from 'node:assert/strict';
import { it } from 'node:test';

import { frameByteLength } from '../../src/media/frame.js';
import { packetizeH264 } from '../../src/media/h264-packetizer.js';
import { KindState } from '../../src/media/kind-state.js';
import type { MediaFrame } from '../../src/media/types.js';

const frame = (units: Buffer[], byteLength?: number): MediaFrame => ({
  kind: 'video', codec: 'H264', clockRate: 90_000, timestamp: 0, sequenceNumber: 0, keyframe: false, units, packets: [], receivedAt: 0,
  ...(byteLength === undefined ? {} : { byteLength }),
});

it('frameByteLength trusts byteLength (even 0) and otherwise adds up the units', () => {
  assert.equal(frameByteLength(frame([Buffer.alloc(3), Buffer.alloc(4)])), 7);
  assert.equal(frameByteLength(frame([Buffer.alloc(3)], 100)), 100);
  assert.equal(frameByteLength(frame([Buffer.alloc(3)], 0)), 0);
  assert.equal(frameByteLength(frame([])), 0);
});

it("a Source's video frame is cut into packets on its first read, once, after its sequence numbers were taken by count", () => {
  // Real H.264 units: an SPS and PPS (aggregated) and a 5000-byte IDR slice (fragmented).
  const units = [Buffer.from([0x67, 0x42, 0x00, 0x1f]), Buffer.from([0x68, 0xce]), Buffer.concat([Buffer.from([0x65]), Buffer.alloc(4999, 0x88)])];
  let cuts = 0;
  const counting = Object.assign((u: ReadonlyArray<Buffer>) => {
    cuts++;
    return packetizeH264(u);
  }, { count: packetizeH264.count });
  const state = new KindState('video', 'H264', 90_000, 100);
  const input = { timestamp: 0, keyframe: true, units, byteLength: 5006, damaged: false, cut: counting };
  const first = state.toMediaFrame(input, 0, undefined);
  const second = state.toMediaFrame({ ...input, timestamp: 3600 }, 40, undefined);
  assert.equal(cuts, 0, 'nobody read them: not cut');
  const expected = packetizeH264(units).length;
  assert.equal(second.sequenceNumber - first.sequenceNumber, expected, 'numbered by the count');
  const packets = first.packets;
  assert.equal(cuts, 1);
  assert.equal(packets.length, expected);
  assert.equal(first.packets, packets, 'kept: every viewer shares the one cut (and its native batch, keyed by it)');
  assert.equal(cuts, 1);
  assert.deepEqual(Buffer.concat(packets.map((p) => p.payload)), Buffer.concat(packetizeH264(units).map((p) => p.payload)));

  const wrong = Object.assign((u: ReadonlyArray<Buffer>) => packetizeH264(u).slice(1), { count: packetizeH264.count });
  const broken = state.toMediaFrame({ ...input, cut: wrong }, 80, undefined);
  assert.throws(() => broken.packets, new RegExp(`counted ${expected} packets and was cut into ${expected - 1}$`), 'a cut that disagrees with its count is refused, not sent');
});

it("a Source's frames have one shape, audio and video, with and without capture time or damage", () => {
  const state = new KindState('video', 'H264', 90_000, 0);
  const audio = new KindState('audio', 'PCMU', 8000, 0);
  const video = state.toMediaFrame({ timestamp: 0, keyframe: true, units: [Buffer.from([0x65, 1])], byteLength: 2, damaged: true, cut: packetizeH264 }, 0, { rtpTimestamp: 0, wallClockMs: 1 });
  const sound = audio.toMediaFrame({ timestamp: 0, keyframe: true, units: [Buffer.alloc(160)], packets: [{ payload: Buffer.alloc(160), marker: true }], byteLength: 160, damaged: false }, 0, undefined);
  assert.equal(video.damaged, true);
  assert.equal(video.captureTime, 1);
  assert.equal(sound.captureTime, undefined);
  assert.deepEqual(Object.keys(video), Object.keys(sound), 'the same fields in the same order');
  assert.equal(sound.packets.length, 1, "an audio pipeline's own packets are kept as they are");
});
