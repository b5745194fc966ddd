import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H265Depacketizer, h265NalType, isH265Irap } from '../../src/media/h265-depacketizer.js';
import { packetizeH265 } from '../../src/media/h265-packetizer.js';
import type { AccessUnit } from '../../src/media/nal-assembler.js';
import { parseRtp } from '../../src/media/rtp.js';
import type { RtpPacketView } from '../../src/media/types.js';
import { VideoPipeline } from '../../src/media/video-pipeline.js';
import type { PipelineFrame } from '../../src/media/pipeline.js';
import { encodeStream, groupAccessUnits, splitAnnexB, toRtp } from './helpers/streams.js';

function packet(payload: number[] | Buffer, options: { ts?: number; marker?: boolean } = {}): RtpPacketView {
  return {
    version: 2, padding: false, extension: false, marker: options.marker ?? false, payloadType: 96, sequenceNumber: 0,
    timestamp: options.ts ?? 1, ssrc: 1, csrcs: [], payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
  };
}

test('NAL types and IRAP classification', () => {
  assert.equal(h265NalType(Buffer.from([0x40, 0x01])), 32); // VPS
  assert.equal(h265NalType(Buffer.from([0x26, 0x01])), 19); // IDR_W_RADL
  assert.equal(isH265Irap(19), true);
  assert.equal(isH265Irap(21), true); // CRA
  assert.equal(isH265Irap(1), false);
  assert.equal(isH265Irap(32), false);
});

test('AP and FU (with and without DONL) depacketize', () => {
  const units: AccessUnit[] = [];
  const plain = new H265Depacketizer((au) => units.push(au));
  // AP: payload header type 48, then two units
  plain.push(packet([0x60, 0x01, 0, 3, 0x40, 0x01, 0xaa, 0, 3, 0x42, 0x01, 0xbb]), false);
  // FU: header type 49, FU header S + type 19
  plain.push(packet([0x62, 0x01, 0x93, 1, 2]), false);
  plain.push(packet([0x62, 0x01, 0x53, 3], { marker: true }), false);
  assert.deepEqual(units[0]!.units.map((u) => u.toString('hex')), ['4001aa', '4201bb', '2601010203']);
  const donUnits: AccessUnit[] = [];
  const withDon = new H265Depacketizer((au) => donUnits.push(au), true);
  withDon.push(packet([0x60, 0x01, 0, 0, 0, 3, 0x40, 0x01, 0xaa, 1, 0, 3, 0x42, 0x01, 0xbb]), false);
  withDon.push(packet([0x62, 0x01, 0x93, 0, 5, 1, 2]), false);
  withDon.push(packet([0x62, 0x01, 0x53, 3], { marker: true }), false);
  assert.deepEqual(donUnits[0]!.units.map((u) => u.toString('hex')), ['4001aa', '4201bb', '2601010203']);
  // FU continuation without a start, PACI, truncated AP
  plain.push(packet([0x62, 0x01, 0x13, 9], { ts: 5 }), false);
  plain.push(packet([0x64, 0x01, 0, 0], { ts: 5 }), false);
  plain.push(packet([0x60, 0x01, 0, 9, 1], { ts: 5, marker: true }), false);
  assert.equal(plain.counters.fragmentsWithoutStart, 1);
  assert.equal(plain.counters.unsupported, 1);
  assert.equal(plain.counters.malformed, 1);
});

test('round trip on a real 720p libx265 stream, payloads <= 1200, IRAP frames are keyframes', () => {
  const nals = splitAnnexB(encodeStream({ codec: 'h265', width: 1280, height: 720, seconds: 1, gop: 10 }));
  const accessUnits = groupAccessUnits('h265', nals);
  const got: AccessUnit[] = [];
  const depacketizer = new H265Depacketizer((au) => got.push(au));
  let ts = 0;
  for (const au of accessUnits) {
    for (const p of packetizeH265(au)) {
      assert.ok(p.payload.length <= 1200);
      depacketizer.push(packet(p.payload, { ts, marker: p.marker }), false);
    }
    ts += 3600;
  }
  assert.equal(got.length, accessUnits.length);
  for (let i = 0; i < got.length; i++) {
    assert.deepEqual(got[i]!.units.map((u) => u.toString('hex')), accessUnits[i]!.map((u) => u.toString('hex')));
  }
  const vps = nals.find((n) => h265NalType(n) === 32)!;
  const sps = nals.find((n) => h265NalType(n) === 33)!;
  const pps = nals.find((n) => h265NalType(n) === 34)!;
  // Parameter sets only in the SDP (sprop-vps/sps/pps), none in-band.
  const stripped = groupAccessUnits('h265', nals.filter((n) => ![32, 33, 34].includes(h265NalType(n))));
  const frames: PipelineFrame[] = [];
  const pipeline = new VideoPipeline({
    kind: 'video', codec: 'H265', payloadType: 96, clockRate: 90000, controlUrl: 'x', needsTranscoding: true,
    fmtp: { 'sprop-vps': vps.toString('base64'), 'sprop-sps': sps.toString('base64'), 'sprop-pps': pps.toString('base64') },
  }, (frame) => frames.push(frame));
  assert.deepEqual([pipeline.info?.width, pipeline.info?.height, pipeline.info?.profileName], [1280, 720, 'Main']);
  for (const frame of toRtp('h265', stripped)) {
    for (const raw of frame.packets) {
      const parsed = parseRtp(raw);
      assert.ok(typeof parsed !== 'string');
      pipeline.push(parsed, false);
    }
  }
  assert.equal(frames.length, stripped.length);
  const keyframes = frames.filter((f) => f.keyframe);
  assert.equal(keyframes.length, 3);
  for (const keyframe of keyframes) {
    assert.deepEqual(keyframe.units.slice(0, 3).map(h265NalType), [32, 33, 34]);
    assert.equal(keyframe.packets, undefined, 'cut only when read (the Source cuts on first use)');
    assert.equal((keyframe.cut!(keyframe.units)[0]!.payload[0]! >> 1) & 0x3f, 48, 'VPS+SPS+PPS aggregated in an AP');
  }
});
