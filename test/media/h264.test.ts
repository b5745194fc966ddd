import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H264Depacketizer } from '../../src/media/h264-depacketizer.js';
import { packetizeH264 } from '../../src/media/h264-packetizer.js';
import type { AccessUnit } from '../../src/media/nal-assembler.js';
import type { RtpPacketView } from '../../src/media/types.js';
import { parseRtp } from '../../src/media/rtp.js';
import { VideoPipeline } from '../../src/media/video-pipeline.js';
import type { PipelineFrame } from '../../src/media/pipeline.js';
import { encodeStream, groupAccessUnits, splitAnnexB, toRtp } from './helpers/streams.js';

function packet(payload: Buffer | number[], options: { ts?: number; marker?: boolean; seq?: number } = {}): RtpPacketView {
  return {
    version: 2,
    padding: false,
    extension: false,
    marker: options.marker ?? false,
    payloadType: 96,
    sequenceNumber: options.seq ?? 0,
    timestamp: options.ts ?? 1000,
    ssrc: 1,
    csrcs: [],
    payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
  };
}

function collect(): { depacketizer: H264Depacketizer; units: AccessUnit[] } {
  const units: AccessUnit[] = [];
  return { depacketizer: new H264Depacketizer((au) => units.push(au)), units };
}

const hex = (units: Buffer[]): string[] => units.map((u) => u.toString('hex'));

test('single NAL unit packets (packetization-mode 0) build an access unit per marker', () => {
  const { depacketizer, units } = collect();
  depacketizer.push(packet([0x09, 0xf0]), false);
  depacketizer.push(packet([0x65, 1, 2, 3]), false);
  depacketizer.push(packet([0x65, 4, 5], { marker: true }), false);
  depacketizer.push(packet([0x41, 9], { ts: 4600, marker: true }), false);
  assert.equal(units.length, 2);
  assert.deepEqual(hex(units[0]!.units), ['09f0', '65010203', '650405']);
  assert.equal(units[0]!.timestamp, 1000);
  assert.equal(units[0]!.damaged, false);
  assert.deepEqual(hex(units[1]!.units), ['4109']);
});

test('STAP-A unpacks every unit and rejects a lying size', () => {
  const { depacketizer, units } = collect();
  depacketizer.push(packet([0x78, 0, 3, 0x67, 1, 2, 0, 2, 0x68, 3, 0, 2, 0x65, 7], { marker: true }), false);
  assert.deepEqual(hex(units[0]!.units), ['670102', '6803', '6507']);
  depacketizer.push(packet([0x78, 0, 2, 0x06, 5, 0, 9, 0x65], { ts: 2, marker: true }), false);
  assert.deepEqual(hex(units[1]!.units), ['0605']);
  assert.equal(depacketizer.counters.malformed, 1);
});

test('FU-A reassembles and rebuilds the NAL header', () => {
  const { depacketizer, units } = collect();
  depacketizer.push(packet([0x7c, 0x85, 1, 2]), false);
  depacketizer.push(packet([0x7c, 0x05, 3, 4]), false);
  depacketizer.push(packet([0x7c, 0x45, 5], { marker: true }), false);
  assert.deepEqual(hex(units[0]!.units), ['650102030405']);
});

test('FU-A without a start bit is dropped and counted until the next start', () => {
  const { depacketizer, units } = collect();
  depacketizer.push(packet([0x7c, 0x05, 3, 4]), false);
  depacketizer.push(packet([0x7c, 0x45, 5], { marker: true }), false);
  assert.equal(units.length, 0);
  assert.equal(depacketizer.counters.fragmentsWithoutStart, 2);
  depacketizer.push(packet([0x5c, 0x81, 1], { ts: 2 }), false);
  depacketizer.push(packet([0x5c, 0x41, 2], { ts: 2, marker: true }), false);
  assert.deepEqual(hex(units[0]!.units), ['410102']);
});

test('a lost FU-A fragment drops that NAL only and marks the access unit damaged', () => {
  const { depacketizer, units } = collect();
  depacketizer.push(packet([0x06, 0xaa]), false); // SEI survives
  depacketizer.push(packet([0x7c, 0x85, 1, 2]), false);
  // the middle fragment is lost
  depacketizer.push(packet([0x7c, 0x45, 5], { marker: true }), true);
  assert.equal(units.length, 1);
  assert.deepEqual(hex(units[0]!.units), ['06aa']);
  assert.equal(units[0]!.damaged, true);
  assert.equal(depacketizer.counters.fragmentedNalsLost, 1);
  assert.equal(depacketizer.counters.fragmentsWithoutStart, 1);
});

test('a lost marker packet: the timestamp change ends the access unit', () => {
  const { depacketizer, units } = collect();
  depacketizer.push(packet([0x65, 1], { ts: 100 }), false);
  depacketizer.push(packet([0x41, 2], { ts: 3700, marker: true }), true);
  assert.equal(units.length, 2);
  assert.deepEqual(hex(units[0]!.units), ['6501']);
  assert.equal(units[0]!.damaged, true);
  assert.deepEqual(hex(units[1]!.units), ['4102']);
  assert.equal(depacketizer.counters.accessUnitsWithoutMarker, 1);
});

test('an FU-A interrupted by a new timestamp is discarded', () => {
  const { depacketizer, units } = collect();
  depacketizer.push(packet([0x7c, 0x85, 1, 2], { ts: 100 }), false);
  depacketizer.push(packet([0x41, 2], { ts: 200, marker: true }), false);
  assert.equal(units.length, 1);
  assert.deepEqual(hex(units[0]!.units), ['4102']);
  assert.equal(depacketizer.counters.fragmentedNalsLost, 1);
});

test('unsupported and corrupt payloads are counted, never thrown', () => {
  const { depacketizer, units } = collect();
  depacketizer.push(packet([0x19, 0, 0]), false); // STAP-B
  depacketizer.push(packet([0x1d, 0x85, 1]), false); // FU-B
  depacketizer.push(packet([0x00, 1]), false); // type 0
  depacketizer.push(packet([0xe5, 1]), false); // forbidden bit
  depacketizer.push(packet([0x7c]), false); // truncated FU-A
  depacketizer.push(packet([0x78, 0], { marker: true }), false); // STAP-A without a size
  assert.equal(units.length, 0);
  assert.equal(depacketizer.counters.unsupported, 2);
  assert.equal(depacketizer.counters.malformed, 3);
  let seed = 7;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 20000; i++) {
    const bytes = Buffer.alloc(1 + Math.floor(random() * 30));
    for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
    depacketizer.push(packet(bytes, { ts: Math.floor(random() * 3), marker: random() < 0.2 }), random() < 0.1);
  }
});

test('packetizer: single NAL, STAP-A for small units, FU-A with even fragments, marker on the last', () => {
  const sps = Buffer.from([0x67, 0x42, 0xc0, 0x1f, 0xaa]);
  const pps = Buffer.from([0x68, 0xce, 0x3c, 0x80]);
  const idr = Buffer.alloc(3000, 7);
  idr[0] = 0x65;
  const packets = packetizeH264([sps, pps, idr]);
  assert.equal(packets[0]!.payload[0]! & 0x1f, 24);
  assert.equal(packets[0]!.payload[0]! & 0x60, 0x60, 'STAP-A NRI is the highest of its units');
  const fragments = packets.slice(1);
  assert.equal(fragments.length, 3);
  for (const fragment of fragments) {
    assert.equal(fragment.payload[0]! & 0x1f, 28);
    assert.ok(fragment.payload.length <= 1200);
  }
  const sizes = fragments.map((f) => f.payload.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `even split: ${sizes.join(',')}`);
  assert.deepEqual(packets.map((p) => p.marker), [false, false, false, true]);
  const small = Buffer.from([0x41, 1, 2]);
  const single = packetizeH264([small]);
  assert.equal(single.length, 1);
  assert.equal(single[0]!.payload, small, 'a lone NAL that fits is sent without copying');
  assert.equal(single[0]!.marker, true);
  const exact = Buffer.alloc(1200, 1);
  exact[0] = 0x41;
  assert.equal(packetizeH264([exact])[0]!.payload, exact);
  const over = Buffer.alloc(1201, 1);
  over[0] = 0x41;
  assert.equal(packetizeH264([over]).length, 2);
});

for (const profile of ['baseline', 'high']) {
  test(`round trip on a real ${profile} 720p stream: packetize -> depacketize gives the same units, payloads <= 1200`, () => {
    const nals = splitAnnexB(encodeStream({ codec: 'h264', width: 1280, height: 720, profile, preset: profile === 'high' ? 'veryfast' : 'ultrafast', seconds: 1, params: 'slices=4' }));
    const accessUnits = groupAccessUnits('h264', nals);
    assert.ok(accessUnits.length >= 25);
    const { depacketizer, units } = collect();
    let seq = 65000; // crosses the sequence wrap on the way
    let ts = 0xffff0000;
    for (const au of accessUnits) {
      const packets = packetizeH264(au);
      for (const p of packets) {
        assert.ok(p.payload.length <= 1200);
        depacketizer.push(packet(p.payload, { ts, marker: p.marker, seq: seq++ & 0xffff }), false);
      }
      ts = (ts + 3600) >>> 0;
    }
    assert.equal(units.length, accessUnits.length);
    for (let i = 0; i < units.length; i++) assert.deepEqual(hex(units[i]!.units), hex(accessUnits[i]!));
    assert.equal(depacketizer.counters.malformed + depacketizer.counters.fragmentsWithoutStart, 0);
  });
}

test('pipeline: SPS/PPS from sprop are prepended to an IDR that lacks them, keyframes detected', () => {
  const nals = splitAnnexB(encodeStream({ codec: 'h264', width: 640, height: 360, profile: 'baseline', seconds: 1, gop: 10 }));
  const sps = nals.find((n) => (n[0]! & 0x1f) === 7)!;
  const pps = nals.find((n) => (n[0]! & 0x1f) === 8)!;
  // The camera sends parameter sets only in the SDP: strip them from the stream.
  const stripped = groupAccessUnits('h264', nals.filter((n) => ![7, 8].includes(n[0]! & 0x1f)));
  const frames: PipelineFrame[] = [];
  const pipeline = new VideoPipeline({
    kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90000, fmtp: {}, controlUrl: 'x', parameterSets: [sps, pps],
  }, (f) => frames.push(f));
  assert.deepEqual([pipeline.info?.width, pipeline.info?.height], [640, 360]);
  for (const frame of toRtp('h264', stripped)) {
    for (const p of frame.packets) {
      const parsed = parseRtp(p);
      assert.ok(typeof parsed !== 'string');
      pipeline.push(parsed, false);
    }
  }
  assert.equal(frames.length, stripped.length);
  const keyframes = frames.filter((f) => f.keyframe);
  assert.equal(keyframes.length, 3);
  for (const keyframe of keyframes) {
    const types = keyframe.units.map((u) => u[0]! & 0x1f);
    assert.deepEqual(types.slice(0, 2), [7, 8]);
    assert.ok(types.includes(5));
    assert.equal(keyframe.packets, undefined, 'cut only when read (the Source cuts on first use)');
    assert.equal(keyframe.cut!(keyframe.units)[0]!.payload[0]! & 0x1f, 24, 'SPS+PPS aggregated in a STAP-A');
  }
});

test('pipeline: in-band parameter sets are learnt and reported; an IDR without any is not a keyframe', () => {
  const changes: number[] = [];
  const frames: PipelineFrame[] = [];
  const pipeline: VideoPipeline = new VideoPipeline(
    { kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90000, fmtp: {}, controlUrl: 'x' },
    (f) => frames.push(f),
    () => changes.push(pipeline.parameterSets().length),
  );
  pipeline.push(packet([0x65, 1], { ts: 1, marker: true }), false);
  assert.equal(frames[0]!.keyframe, false);
  const nals = splitAnnexB(encodeStream({ codec: 'h264', width: 320, height: 240, seconds: 0.2 }));
  const sps = nals.find((n) => (n[0]! & 0x1f) === 7)!;
  const pps = nals.find((n) => (n[0]! & 0x1f) === 8)!;
  pipeline.push(packet(sps, { ts: 2 }), false);
  pipeline.push(packet(pps, { ts: 2 }), false);
  pipeline.push(packet([0x65, 1], { ts: 2, marker: true }), false);
  assert.equal(frames[1]!.keyframe, true);
  assert.deepEqual(changes, [2], "one report per access unit");
  assert.deepEqual([pipeline.info?.width, pipeline.info?.height], [320, 240]);
  // An IDR with only a (new) PPS gets the full, ordered set.
  pipeline.push(packet(pps, { ts: 3 }), false);
  pipeline.push(packet([0x65, 2], { ts: 3, marker: true }), false);
  assert.deepEqual(frames[2]!.units.map((u) => u[0]! & 0x1f), [7, 8, 5]);
});
