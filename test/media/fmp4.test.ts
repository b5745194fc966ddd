import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fmp4Muxer, avcConfigFromKeyframe } from '../../src/media/fmp4/muxer.js';
import type { MediaFrame } from '../../src/media/types.js';
import { decodeVideo, probe, readFrames, runFfmpeg, runFfprobe } from '../helpers/ffprobe.js';
import { audioFrame, findBox, h264Frame, topLevelBoxes } from '../helpers/mp4.js';
import { encodeAacAdts, encodeStream, groupAccessUnits, splitAdts, splitAnnexB } from './helpers/streams.js';

const FPS = 25;
const FRAME = 90000 / FPS;
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmp4-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 4 s of real High-profile H.264 (1 s GOPs, AUDs and in-band SPS/PPS on every IDR, as the Source hands them on). */
function videoFrames(startTimestamp: number): MediaFrame[] {
  const stream = encodeStream({
    codec: 'h264', width: 640, height: 360, fps: FPS, seconds: 4, profile: 'high', preset: 'veryfast', gop: 25,
    params: 'bframes=0:repeat-headers=1:aud=1',
  });
  return groupAccessUnits('h264', splitAnnexB(stream)).map((units, i) => h264Frame(units, startTimestamp + i * FRAME));
}

/** Cuts frames into fragments at every `gopsPerFragment`-th keyframe. */
function cut(frames: MediaFrame[], gopsPerFragment: number): MediaFrame[][] {
  const out: MediaFrame[][] = [];
  let keyframes = 0;
  for (const frame of frames) {
    if (frame.kind === 'video' && frame.keyframe && keyframes++ % gopsPerFragment === 0) out.push([]);
    out.at(-1)?.push(frame);
  }
  return out;
}

async function formatDuration(file: string): Promise<number> {
  const r = await runFfprobe(['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
  return Number(r.stdout.trim());
}

test('H.264 fragments: ffprobe reads avc1 High 640x360, every frame decodes, each fragment starts on a keyframe', async () => {
  // Starts half a second before the 32-bit RTP timestamp wraps: decode times must keep counting.
  const frames = videoFrames(0x1_0000_0000 - 45000);
  assert.equal(frames.length, 100);
  const muxer = new Fmp4Muxer({ video: avcConfigFromKeyframe(frames[0]!) });
  const fragments = cut(frames, 2);
  assert.equal(fragments.length, 2);
  const data = Buffer.concat([muxer.initSegment(), ...fragments.map((f) => muxer.fragment(f))]);
  assert.deepEqual(topLevelBoxes(data).map((b) => b.type), ['ftyp', 'moov', 'moof', 'mdat', 'moof', 'mdat']);
  assert.ok(findBox(data, ['moov', 'mvex', 'trex']), 'moov has mvex/trex');
  assert.ok(findBox(data, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd']), 'sample description present');
  const file = join(dir, 'video.mp4');
  await writeFile(file, data);

  const info = await probe(file);
  assert.equal(info.streams.length, 1);
  assert.equal(info.video?.codecName, 'h264');
  assert.equal(info.video?.profile, 'High');
  assert.deepEqual([info.video?.width, info.video?.height], [640, 360]);
  assert.equal(info.video?.raw.codec_tag_string, 'avc1');

  const decoded = await decodeVideo(file, { timeoutMs: 60_000 });
  assert.equal(decoded.code, 0, decoded.stderr);
  assert.deepEqual(decoded.errors, []);
  assert.equal(decoded.videoFrames, 100);

  const read = await readFrames(file, { seconds: 10 });
  assert.equal(read.video.length, 100);
  const keyIndices = read.video.flatMap((f, i) => (f.keyFrame ? [i] : []));
  assert.deepEqual(keyIndices, [0, 25, 50, 75]);
  // Fragment starts (frames 0 and 50) land on decoded keyframes at the right times.
  assert.equal(read.video[50]!.time, 2);
  assert.ok(Math.abs((await formatDuration(file)) - 4) <= 1 / FPS + 1e-6);
});

test('H.264 + AAC-LC: the mp4a/esds track carries the AudioSpecificConfig and both tracks decode with no error', async () => {
  const adts = splitAdts(encodeAacAdts({ sampleRate: 16000, channels: 1, seconds: 4 }));
  const video = videoFrames(123_456);
  // Interleave by time, as the Source delivers them.
  const audio = adts.frames.map((au, i) => audioFrame('AAC', au, 5000 + i * 1024, adts.sampleRate));
  const frames = [...video, ...audio].sort((a, b) => a.timestamp / a.clockRate - b.timestamp / b.clockRate);
  // Audio that arrived before the first keyframe cannot be placed: recordings start on video.
  const firstKey = frames.findIndex((f) => f.kind === 'video');
  const muxer = new Fmp4Muxer({
    video: avcConfigFromKeyframe(video[0]!),
    audio: { audioSpecificConfig: adts.audioSpecificConfig, sampleRate: adts.sampleRate, channels: adts.channels },
  });
  const recorded = frames.slice(firstKey);
  const audioMuxed = recorded.filter((f) => f.kind === 'audio').length;
  assert.ok(audioMuxed > 40);
  const data = Buffer.concat([muxer.initSegment(), ...cut(recorded, 1).map((f) => muxer.fragment(f))]);
  assert.equal(topLevelBoxes(data).filter((b) => b.type === 'moof').length, 4);
  const file = join(dir, 'av.mp4');
  await writeFile(file, data);

  const info = await probe(file);
  assert.equal(info.audio?.codecName, 'aac');
  assert.equal(info.audio?.profile, 'LC');
  assert.equal(info.audio?.sampleRate, 16000);
  assert.equal(info.audio?.channels, 1);
  assert.equal(info.video?.codecName, 'h264');
  const all = await runFfmpeg(['-hide_banner', '-v', 'error', '-i', file, '-map', '0', '-f', 'null', '-'], 60_000);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stderr.trim(), '', 'ffmpeg reported errors decoding the fragments');
  const read = await readFrames(file, { seconds: 10 });
  assert.equal(read.video.length, 100);
  assert.equal(read.audio.length, audioMuxed);
  // The audio track starts where the video's clock stood when audio first came (within a video frame).
  assert.ok(Math.abs(read.audio[0]!.time! - read.video[0]!.time!) <= 1 / FPS + 1e-6, `audio starts at ${read.audio[0]!.time}, video at ${read.video[0]!.time}`);
});

test('malformed input gets a clear error: no SPS, no PPS, a fragment not starting on a keyframe', () => {
  const frames = videoFrames(0);
  const key = frames[0]!;
  const withoutSps = { ...key, units: key.units.filter((u) => (u[0]! & 0x1f) !== 7) };
  assert.throws(() => avcConfigFromKeyframe(withoutSps), /carries no SPS/);
  const withoutPps = { ...key, units: key.units.filter((u) => (u[0]! & 0x1f) !== 8) };
  assert.throws(() => avcConfigFromKeyframe(withoutPps), /carries no PPS/);
  assert.throws(() => avcConfigFromKeyframe(frames[1]!), /needs a keyframe/);
  const muxer = new Fmp4Muxer({ video: avcConfigFromKeyframe(key) });
  assert.throws(() => muxer.fragment(frames.slice(1, 25)), /does not start on a keyframe/);
  assert.throws(() => muxer.fragment([audioFrame('AAC', Buffer.alloc(10), 0, 16000)]), /at least one video frame/);
  // A changed SPS (another picture size) cannot be passed under the old avcC.
  const other = groupAccessUnits('h264', splitAnnexB(encodeStream({
    codec: 'h264', width: 320, height: 180, fps: FPS, seconds: 1, gop: 25, params: 'repeat-headers=1',
  })));
  assert.throws(() => muxer.fragment([h264Frame(other[0]!, 0)]), /changed its SPS\/PPS/);
});
