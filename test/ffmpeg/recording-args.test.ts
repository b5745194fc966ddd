import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { recordingAudioArgs } from '../../src/ffmpeg/recording-args.js';
import { AdtsReader } from '../../src/media/adts.js';

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
