import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FragmentCutter } from '../../src/homekit/recording/fragment-cutter.js';
import { prebufferStart } from '../../src/homekit/recording/recording-stream.js';
import type { MediaFrame } from '../../src/media/types.js';

const FPS = 25;
const TICK = 90000 / FPS;

function video(index: number, gopFrames: number, start = 0): MediaFrame {
  return {
    kind: 'video', codec: 'H264', clockRate: 90000, timestamp: (start + index * TICK) >>> 0, sequenceNumber: index,
    keyframe: index % gopFrames === 0, units: [], packets: [], receivedAt: 0,
  };
}

/** Fragment lengths (s) the cutter makes from `seconds` of video with `gopSeconds` GOPs. */
function cutLengths(gopSeconds: number, fragmentMs: number, seconds: number, start = 0): { lengths: number[]; overlong: number } {
  const cutter = new FragmentCutter(fragmentMs);
  const lengths: number[] = [];
  for (let i = 0; i < seconds * FPS; i++) {
    const done = cutter.push(video(i, gopSeconds * FPS, start));
    if (done) {
      assert.equal(done[0]!.keyframe, true);
      lengths.push(done.length / FPS);
    }
  }
  return { lengths, overlong: cutter.overlongFragments };
}

test('whole GOPs up to the fragment length, cut on keyframes, across the RTP timestamp wrap', () => {
  assert.deepEqual(cutLengths(1, 4000, 13, 0x1_0000_0000 - 90000), { lengths: [4, 4, 4], overlong: 0 });
  assert.deepEqual(cutLengths(2, 4000, 13), { lengths: [4, 4, 4], overlong: 0 });
  assert.deepEqual(cutLengths(3, 4000, 13), { lengths: [3, 3, 3, 3], overlong: 0 });
});

test('a GOP longer than the fragment length is its own fragment, counted as overlong', () => {
  assert.deepEqual(cutLengths(5, 4000, 16), { lengths: [5, 5, 5], overlong: 3 });
});

test('nothing before the first keyframe; audio rides in the fragment it arrived in', () => {
  const cutter = new FragmentCutter(1000);
  const audio = (ts: number): MediaFrame => ({ ...video(0, 1), kind: 'audio', codec: 'AAC', clockRate: 16000, timestamp: ts, keyframe: true });
  assert.equal(cutter.push(audio(0)), undefined);
  assert.equal(cutter.push(video(1, 25)), undefined, 'a non-keyframe before any keyframe is dropped');
  for (let i = 25; i < 50; i++) {
    assert.equal(cutter.push(video(i, 25)), undefined);
    if (i === 30) cutter.push(audio(1000));
  }
  const done = cutter.push(video(50, 25))!;
  assert.equal(done.length, 26);
  assert.equal(done.filter((f) => f.kind === 'audio').length, 1);
});

test('prebufferStart: the newest keyframe at least the hub\'s pre-buffer length back, else the oldest', () => {
  const frames = Array.from({ length: 10 * FPS }, (_, i) => video(i, FPS));
  assert.equal(prebufferStart(frames, 4000), 5 * FPS); // newest frame at 9.96 s: the keyframe at 5 s is 4.96 s back
  assert.equal(prebufferStart(frames.slice(0, 3 * FPS), 4000), 0);
  assert.equal(prebufferStart(frames.slice(1, 20), 4000), 19, 'no keyframe: nothing to send');
  assert.equal(prebufferStart([], 4000), 0);
});
