import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AacPipeline,
  PassthroughAudioPipeline,
  aacFrameDuration,
  packetizeAac,
  parseAacAuHeaders,
  parseAacFmtp,
} from '../../src/media/audio.js';
import type { PipelineFrame } from '../../src/media/pipeline.js';
import type { RtpPacketView, TrackDescription } from '../../src/media/types.js';

function packet(payload: Buffer, options: { ts?: number; marker?: boolean } = {}): RtpPacketView {
  return {
    version: 2, padding: false, extension: false, marker: options.marker ?? true, payloadType: 97, sequenceNumber: 0,
    timestamp: options.ts ?? 1000, ssrc: 1, csrcs: [], payload,
  };
}

const aacTrack: TrackDescription = {
  kind: 'audio', codec: 'AAC', payloadType: 97, clockRate: 16000, channels: 1, controlUrl: 'x', needsTranscoding: true,
  fmtp: { mode: 'aac-hbr', sizelength: '13', indexlength: '3', indexdeltalength: '3', config: '1408' },
};

/** Builds an AAC-hbr payload with 13/3 AU headers. */
function aacPayload(aus: Buffer[], declaredSizes = aus.map((a) => a.length)): Buffer {
  const headers = Buffer.alloc(2 + 2 * aus.length);
  headers.writeUInt16BE(16 * aus.length, 0);
  declaredSizes.forEach((size, i) => headers.writeUInt16BE(size << 3, 2 + 2 * i));
  return Buffer.concat([headers, ...aus]);
}

test('G.711 and Opus pass through, one packet one frame, copied out of the packet buffer', () => {
  const frames: PipelineFrame[] = [];
  const pipeline = new PassthroughAudioPipeline('PCMU', (f) => frames.push(f));
  const payload = Buffer.alloc(160, 0x7f);
  pipeline.push(packet(payload, { ts: 8000, marker: false }), false);
  payload.fill(0); // the upstream reuses its buffer
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.timestamp, 8000);
  assert.equal(frames[0]!.units[0]![0], 0x7f);
  assert.equal(frames[0]!.keyframe, true);
  assert.equal(frames[0]!.packets![0]!.payload, frames[0]!.units[0]);
});

test('AAC config: frame durations for LC, LD/ELD and SBR', () => {
  assert.equal(aacFrameDuration('1408'), 1024); // AAC-LC 16 kHz mono
  assert.equal(aacFrameDuration('1210'), 1024); // AAC-LC 44.1 kHz stereo
  assert.equal(aacFrameDuration('F8F0212C00BC00'), 512); // AAC-ELD 16 kHz mono, frameLengthFlag 0
  assert.equal(aacFrameDuration('F8F0312C00BC00'), 480); // the same with frameLengthFlag 1
  assert.equal(aacFrameDuration('2B0A0800'), 1024 * 2); // explicit SBR
  assert.equal(aacFrameDuration(undefined), 1024);
  assert.equal(aacFrameDuration('zz'), 1024);
  assert.equal(parseAacFmtp({ constantduration: '960' }).frameDuration, 960);
});

test('AAC: several AUs in one packet become frames with consecutive timestamps', () => {
  const frames: PipelineFrame[] = [];
  const pipeline = new AacPipeline(aacTrack, (f) => frames.push(f));
  const aus = [Buffer.alloc(100, 1), Buffer.alloc(120, 2), Buffer.alloc(90, 3)];
  pipeline.push(packet(aacPayload(aus), { ts: 5000 }), false);
  assert.deepEqual(frames.map((f) => f.timestamp), [5000, 6024, 7048]);
  assert.deepEqual(frames.map((f) => f.units[0]!.length), [100, 120, 90]);
  // Output packets are AAC-hbr with one AU header and the whole AU.
  const out = frames[1]!.packets!;
  assert.equal(out.length, 1);
  const parsed = parseAacAuHeaders(out[0]!.payload, parseAacFmtp(aacTrack.fmtp));
  assert.deepEqual(parsed, { sizes: [120], dataOffset: 4 });
  assert.equal(out[0]!.marker, true);
});

test('AAC: a fragmented AU is reassembled; a lost fragment drops it', () => {
  const frames: PipelineFrame[] = [];
  const pipeline = new AacPipeline(aacTrack, (f) => frames.push(f));
  const au = Buffer.alloc(3000);
  for (let i = 0; i < au.length; i++) au[i] = i & 0xff;
  const header = (size: number): Buffer => Buffer.from([0, 16, size >> 5, (size << 3) & 0xff]);
  pipeline.push(packet(Buffer.concat([header(3000), au.subarray(0, 1400)]), { ts: 1, marker: false }), false);
  pipeline.push(packet(Buffer.concat([header(3000), au.subarray(1400, 2800)]), { ts: 1, marker: false }), false);
  pipeline.push(packet(Buffer.concat([header(3000), au.subarray(2800)]), { ts: 1, marker: true }), false);
  assert.equal(frames.length, 1);
  assert.ok(frames[0]!.units[0]!.equals(au));
  assert.equal(frames[0]!.packets!.length, 3, 'a 3000-byte AU is cut into <= 1200-byte packets');
  assert.deepEqual(frames[0]!.packets!.map((p) => p.marker), [false, false, true]);
  pipeline.push(packet(Buffer.concat([header(3000), au.subarray(0, 1400)]), { ts: 2, marker: false }), false);
  pipeline.push(packet(Buffer.concat([header(3000), au.subarray(2800)]), { ts: 2, marker: true }), true);
  assert.equal(frames.length, 1);
  assert.equal(pipeline.counters.fragmentedNalsLost, 1);
});

test('AAC: garbage is counted, not thrown', () => {
  const frames: PipelineFrame[] = [];
  const pipeline = new AacPipeline(aacTrack, (f) => frames.push(f));
  pipeline.push(packet(Buffer.from([0xff])), false);
  pipeline.push(packet(Buffer.from([0xff, 0xff, 1, 2])), false);
  pipeline.push(packet(aacPayload([Buffer.alloc(10)], [500]), { marker: true }), false);
  assert.equal(frames.length, 0);
  assert.equal(pipeline.counters.malformed, 3);
  let seed = 3;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 5000; i++) {
    const bytes = Buffer.alloc(Math.floor(random() * 40));
    for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
    pipeline.push(packet(bytes, { marker: random() < 0.5 }), random() < 0.1);
  }
});

test('packetizeAac round-trips through the AU-header parser', () => {
  for (const size of [1, 1196, 1197, 5000]) {
    const au = Buffer.alloc(size, 9);
    const packets = packetizeAac(au);
    let total = 0;
    for (const p of packets) {
      assert.ok(p.payload.length <= 1200);
      const parsed = parseAacAuHeaders(p.payload, parseAacFmtp({}));
      assert.deepEqual(parsed?.sizes, [size]);
      total += p.payload.length - 4;
    }
    assert.equal(total, size);
  }
});
