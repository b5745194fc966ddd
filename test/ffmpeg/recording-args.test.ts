import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { recordingAudioArgs, recordingVideoArgs } from '../../src/ffmpeg/recording-args.js';
import { AdtsReader } from '../../src/media/adts.js';
import { AnnexBSplitter } from '../../src/media/annexb.js';

test('the recording-audio ffmpeg turns 8 kHz PCM on stdin into AAC-LC ADTS at the hub\'s rate and channels (real ffmpeg)', () => {
  const args = recordingAudioArgs({ inputSampleRate: 8000, inputChannels: 1, outputSampleRate: 32000, outputChannels: 2, bitrateKbps: 0 });
  const after = (flag: string, from = 0): string => args[args.indexOf(flag, from) + 1]!;
  assert.equal(after('-i'), 'pipe:0');
  assert.equal(after('-f'), 's16le', 'raw PCM in');
  assert.equal(after('-c:a'), 'aac');
  assert.equal(after('-b:a'), '32k', 'no bitrate from the hub: 32 kbit/s');
  assert.equal(args.at(-1), 'pipe:1');
  // 1 s of a 440 Hz tone as s16le at 8 kHz.
  const pcm = Buffer.alloc(8000 * 2);
  for (let i = 0; i < 8000; i++) pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), i * 2);
  const result = spawnSync('ffmpeg', args, { input: pcm });
  assert.equal(result.status, 0, result.stderr.toString());
  const frames = new AdtsReader().push(result.stdout);
  // 1 s at 32 kHz is 31.25 frames of 1024 samples, plus the priming frame and the tail.
  assert.ok(frames.length >= 32 && frames.length <= 34, `${frames.length} frames`);
  assert.ok(frames.every((f) => f.objectType === 2 && f.sampleRate === 32000 && f.channelConfiguration === 2));
});

test('the recording-video ffmpeg, keyframes by count: a long-GOP H.264 camera in, one H.264 access unit per frame out, an IDR exactly every 25th (real ffmpeg)', () => {
  // The camera: 100 frames of H.264 with one keyframe (a GOP longer than 4 s).
  const camera = spawnSync('ffmpeg', ['-hide_banner', '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-frames:v', '100', '-c:v', 'libx264', '-g', '1000', '-bf', '0', '-f', 'h264', 'pipe:1'], { maxBuffer: 64 << 20 });
  assert.equal(camera.status, 0, String(camera.stderr));
  const args = recordingVideoArgs({ inputFormat: 'h264', keyframes: { everyFrames: 25 }, fps: 25, bitrateKbps: 500, ffmpegVersion: '5.1.6' });
  assert.equal(args[args.indexOf('-force_key_frames') + 1], 'expr:eq(mod(n,25),0)');
  const result = spawnSync('ffmpeg', args, { input: camera.stdout, maxBuffer: 64 << 20 });
  assert.equal(result.status, 0, String(result.stderr));
  const splitter = new AnnexBSplitter();
  const all = [...splitter.push(result.stdout), ...splitter.flush()];
  // Access units: from one delimiter (type 9) to the next.
  const frames: number[][] = [];
  for (const unit of all) {
    const type = unit[0]! & 0x1f;
    if (type === 9) frames.push([]);
    else frames.at(-1)?.push(type);
  }
  assert.equal(frames.length, 100, 'one frame out per frame in');
  const idrs = frames.flatMap((types, index) => (types.includes(5) ? [index] : []));
  assert.deepEqual(idrs, [0, 25, 50, 75]);
  assert.ok(frames.every((types, index) => idrs.includes(index) === types.includes(7)), 'SPS before each IDR and only there');
});
