/**
 * The VP8 pipeline against real libvpx RTP (ffmpeg's muxer on loopback), and the payload
 * descriptor's edge cases with crafted packets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PipelineFrame } from '../../src/media/pipeline.js';
import { parseRtp, seqDelta } from '../../src/media/rtp.js';
import type { RtpPacketView } from '../../src/media/types.js';
import { parseVp8FrameStart, vp8DescriptorLength, Vp8Pipeline } from '../../src/media/vp8-pipeline.js';
import { captureRtp } from './helpers/ffmpeg-rtp.js';

/** `seconds` of 25 fps testsrc2 encoded by libvpx with a keyframe every `gop` frames, as RTP datagrams. */
function libvpxRtp(seconds: number, gop: number): Promise<Buffer[]> {
  return captureRtp((port) => [
    '-readrate', '4', '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=25:duration=${seconds}`,
    '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-g', String(gop), '-keyint_min', String(gop), '-b:v', '400k',
    '-f', 'rtp', '-payload_type', '96', `rtp://127.0.0.1:${port}?pkt_size=1200`,
  ]);
}

function run(packets: ReadonlyArray<RtpPacketView>, lossAt?: (rtp: RtpPacketView) => boolean): { frames: PipelineFrame[]; pipeline: Vp8Pipeline } {
  const frames: PipelineFrame[] = [];
  const pipeline = new Vp8Pipeline((frame) => frames.push(frame));
  let lossBefore = false;
  for (const rtp of packets) {
    if (lossAt?.(rtp)) {
      lossBefore = true;
      continue;
    }
    pipeline.push(rtp, lossBefore);
    lossBefore = false;
  }
  pipeline.flush();
  return { frames, pipeline };
}

test('libvpx over RTP: one frame per picture, keyframes where the encoder put them, the size from the keyframe header', async () => {
  const raw = await libvpxRtp(2, 10);
  const packets = raw.map((datagram) => {
    const rtp = parseRtp(datagram);
    assert.ok(typeof rtp !== 'string', String(rtp));
    return rtp;
  });
  for (let i = 1; i < packets.length; i++) assert.equal(seqDelta(packets[i - 1]!.sequenceNumber, packets[i]!.sequenceNumber), 1, 'no UDP loss on loopback');
  const { frames, pipeline } = run(packets);
  assert.equal(frames.length, 50, '2 s at 25 fps');
  assert.deepEqual(frames.flatMap((f, i) => (f.keyframe ? [i] : [])), [0, 10, 20, 30, 40]);
  assert.deepEqual([pipeline.width, pipeline.height], [320, 240]);
  assert.ok(frames.every((f) => !f.damaged));
  assert.equal(frames.reduce((n, f) => n + f.packets!.length, 0), packets.length, 'every payload passes through');
  assert.ok(frames.every((f) => f.packets!.at(-1)!.marker && f.packets!.slice(0, -1).every((p) => !p.marker)), 'the marker ends each frame');
  assert.ok(frames.every((f) => f.packets!.every((p) => p.payload.length <= 1188)));
  assert.deepEqual(frames[3]!.packets!.map((p) => p.payload), packets.filter((p) => p.timestamp === frames[3]!.timestamp).map((p) => p.payload), 'payloads unchanged, descriptor included');
  assert.equal(pipeline.counters.accessUnits, 50);
});

test('a lost packet damages its frame; a frame that lost its start is damaged and never a keyframe', async () => {
  const packets = (await libvpxRtp(1, 10)).map((d) => parseRtp(d) as RtpPacketView);
  const keyframeTimestamp = packets[0]!.timestamp;
  const keyframePackets = packets.filter((p) => p.timestamp === keyframeTimestamp);
  assert.ok(keyframePackets.length >= 1);
  // Lose the keyframe's first packet: its frame is damaged and not taken for a keyframe.
  const { frames } = run(packets, (rtp) => rtp === keyframePackets[0]);
  assert.equal(frames[0]!.keyframe, false);
  assert.equal(frames[0]!.damaged, true);
  assert.equal(frames.filter((f) => f.keyframe).length, 2, 'the next keyframes (10, 20) are whole');
});

test('payload descriptor: every extension layout, and short or hostile input', () => {
  assert.equal(vp8DescriptorLength(Buffer.from([0x10])), 1);
  assert.equal(vp8DescriptorLength(Buffer.from([0x90, 0x80, 0x05])), 3, 'X + I, 7-bit PictureID');
  assert.equal(vp8DescriptorLength(Buffer.from([0x90, 0x80, 0x85, 0x01])), 4, 'X + I, 15-bit PictureID');
  assert.equal(vp8DescriptorLength(Buffer.from([0x90, 0xf0, 0x85, 0x01, 0x02, 0x03])), 6, 'X + I (M) + L + T/K');
  assert.equal(vp8DescriptorLength(Buffer.from([0x90, 0x20, 0x01])), 3, 'X + T only');
  for (const bad of [[], [0x80], [0x90, 0x80], [0x90, 0x80, 0x85], [0x90, 0xc0, 0x05]]) {
    assert.equal(vp8DescriptorLength(Buffer.from(bad)), -1, JSON.stringify(bad));
  }
  // A keyframe start: S=1, PID=0, frame tag P=0, start code, 640x360 (scaling bits set, ignored).
  const key = Buffer.from([0x10, 0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0xc1]);
  assert.deepEqual(parseVp8FrameStart(key), { keyframe: true, width: 640, height: 360 });
  assert.deepEqual(parseVp8FrameStart(Buffer.from([0x10, 0x51, 0x00, 0x00])), { keyframe: false });
  assert.equal(parseVp8FrameStart(Buffer.from([0x00, 0x50, 0x2a, 0x00])), undefined, 'not a frame start (S=0)');
  assert.equal(parseVp8FrameStart(Buffer.from([0x11, 0x50, 0x2a, 0x00])), undefined, 'a later partition');
  assert.deepEqual(parseVp8FrameStart(Buffer.from([0x10, 0x50, 0x2a, 0x00, 0x00])), { keyframe: true }, 'no start code: no size');
  // Garbage never throws and is counted.
  const pipeline = new Vp8Pipeline(() => undefined);
  const rtp = (payload: number[], marker = true): RtpPacketView => ({
    version: 2, padding: false, extension: false, marker, payloadType: 96, sequenceNumber: 1, timestamp: 9, ssrc: 1, csrcs: [], payload: Buffer.from(payload),
  });
  for (const payload of [[], [0x80], [0xff, 0xff], [0x90, 0xc0]]) pipeline.push(rtp(payload), false);
  assert.equal(pipeline.counters.malformed, 4);
});
