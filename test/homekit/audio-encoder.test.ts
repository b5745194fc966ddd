import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findFfmpeg } from '../../src/ffmpeg/find-ffmpeg.js';
import { runningFfmpegPids } from '../../src/ffmpeg/ffmpeg-process.js';
import { AAC_FRAME_SAMPLES, RecordingAudioEncoder, anchorFor } from '../../src/homekit/recording/audio-encoder.js';
import type { MediaFrame } from '../../src/media/types.js';
import { recordingLogger } from '../helpers/onvif-log.js';

test('the first G.711 frame is anchored to the video frame before it, moved by their capture times when both are known', () => {
  assert.equal(anchorFor(90_000, undefined, 1_000), 90_000);
  assert.equal(anchorFor(90_000, 1_000, undefined), 90_000);
  assert.equal(anchorFor(90_000, 1_000, 1_300), 90_000 + 27_000, 'captured 300 ms after the video frame');
  assert.equal(anchorFor(10, 1_000, 900), (10 - 9_000) >>> 0, 'earlier, across the 32-bit wrap');
  assert.equal(anchorFor(90_000, 1_000, 5_000), 90_000, 'a 4 s skew is a broken sender report: ignored');
});

function frame(kind: 'video' | 'audio', timestamp: number, captureTime: number, payload: Buffer): MediaFrame {
  return {
    kind, codec: kind === 'video' ? 'H264' : 'PCMU', clockRate: kind === 'video' ? 90000 : 8000, timestamp, sequenceNumber: 0,
    keyframe: true, units: [payload], packets: [], receivedAt: 0, captureTime,
  };
}

test('with the real ffmpeg: AAC frames are timed from the anchor by sample count, and close() ends the process', async () => {
  const ffmpeg = await findFfmpeg({ log: recordingLogger() });
  assert.ok(ffmpeg);
  const log = recordingLogger();
  const before = new Set(runningFfmpegPids());
  const encoder = new RecordingAudioEncoder({
    plan: { codec: 'PCMU', inputSampleRate: 8000, inputChannels: 1, outputSampleRate: 16000, outputChannels: 1, bitrateKbps: 32 },
    ffmpeg, log, label: 'test audio',
  });
  const pid = runningFfmpegPids().find((p) => !before.has(p));
  assert.ok(pid !== undefined);
  const origin = 1_000_000;
  // G.711 frames before any keyframe are not the recording's: dropped.
  encoder.observe(frame('audio', 100, 0, Buffer.alloc(160, 0xff)));
  encoder.observe(frame('video', origin, 50_000, Buffer.from([0x65])));
  // The sound was captured 250 ms after that video frame (the camera sends audio late).
  for (let i = 0; i < 150; i++) encoder.observe(frame('audio', 8000 + i * 160, 50_250 + i * 20, Buffer.alloc(160, 0xff)));
  const end = 2 * 16000;
  await encoder.until(origin, end, 5_000, new AbortController().signal);
  assert.ok((encoder.coveredUntil(origin) ?? 0) >= end, `covered ${encoder.coveredUntil(origin)} of ${end} samples`);
  const frames = encoder.take(origin, end);
  const start = 0.25 * 16000;
  assert.equal(frames[0]!.timestamp, start, 'the first AAC frame starts at the anchor (the priming frame dropped)');
  assert.deepEqual(frames.map((f) => f.timestamp), frames.map((_, i) => start + i * AAC_FRAME_SAMPLES), 'one frame every 1024 samples');
  assert.ok(frames.at(-1)!.timestamp < end && frames.at(-1)!.timestamp + AAC_FRAME_SAMPLES >= end, 'the frames up to the end, no more');
  assert.ok(frames.every((f) => f.codec === 'AAC' && f.clockRate === 16000 && f.units[0]!.length > 0));
  assert.deepEqual(encoder.take(origin, end), [], 'taken once');
  await encoder.close();
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  assert.deepEqual(log.lines.filter((l) => !l.startsWith('debug')), []);
});
