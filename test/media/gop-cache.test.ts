import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GopCache } from '../../src/media/gop-cache.js';
import type { MediaFrame } from '../../src/media/types.js';

let sequence = 0;
function frame(kind: 'video' | 'audio', bytes: number, keyframe = false): MediaFrame {
  return {
    kind, codec: kind === 'video' ? 'H264' : 'PCMU', clockRate: kind === 'video' ? 90000 : 8000, timestamp: 0,
    sequenceNumber: sequence++, keyframe: kind === 'audio' || keyframe, units: [Buffer.alloc(bytes)], packets: [],
    byteLength: bytes, receivedAt: 0,
  };
}

test('holds nothing until the first keyframe, then the GOP with its audio', () => {
  const cache = new GopCache(10_000);
  cache.push(frame('video', 100));
  cache.push(frame('audio', 10));
  assert.equal(cache.frameCount, 0);
  const key = frame('video', 1000, true);
  cache.push(key);
  cache.push(frame('audio', 10));
  cache.push(frame('video', 100));
  assert.equal(cache.frameCount, 3);
  assert.equal(cache.byteLength, 1110);
  assert.equal(cache.frames[0], key);
  const next = frame('video', 900, true);
  cache.push(next);
  assert.deepEqual([cache.frameCount, cache.byteLength, cache.frames[0] === next], [1, 900, true]);
});

test('a GOP that outgrows the bound empties the cache until the next keyframe (no undecodable tail)', () => {
  const cache = new GopCache(1000);
  cache.push(frame('video', 600, true));
  cache.push(frame('video', 300));
  cache.push(frame('video', 200)); // 1100 > 1000
  assert.equal(cache.frameCount, 0);
  assert.equal(cache.hasKeyframe, false);
  assert.equal(cache.overflows, 1);
  cache.push(frame('video', 10));
  cache.push(frame('audio', 10));
  assert.equal(cache.frameCount, 0, 'stays empty until a keyframe');
  cache.push(frame('video', 400, true));
  assert.equal(cache.frameCount, 1);
  assert.ok(cache.byteLength <= 1000);
});

test('a single keyframe bigger than the bound is still kept (it decodes alone), its tail is not', () => {
  const cache = new GopCache(1000);
  cache.push(frame('video', 5000, true));
  assert.equal(cache.frameCount, 1);
  cache.push(frame('video', 10));
  assert.equal(cache.frameCount, 0);
});

test('replacing the GOP leaves an array being iterated intact', () => {
  const cache = new GopCache(10_000);
  cache.push(frame('video', 10, true));
  cache.push(frame('video', 10));
  const view = cache.frames;
  cache.push(frame('video', 10, true));
  assert.equal(view.length, 2);
});

test('a damaged keyframe is not cached, and empties the cache until a clean one', () => {
  const cache = new GopCache(10_000);
  cache.push(frame('video', 500, true));
  cache.push(frame('video', 100));
  assert.equal(cache.frameCount, 2);
  cache.push({ ...frame('video', 500, true), damaged: true });
  assert.deepEqual([cache.frameCount, cache.hasKeyframe, cache.damagedKeyframes], [0, false, 1]);
  cache.push(frame('video', 100));
  cache.push(frame('audio', 10));
  assert.equal(cache.frameCount, 0, 'the frames after it depend on it');
  const clean = frame('video', 500, true);
  cache.push(clean);
  cache.push({ ...frame('video', 100), damaged: true });
  assert.equal(cache.frames[0], clean);
  assert.equal(cache.frameCount, 2, 'a damaged delta frame is kept: live viewers see the same frames');
});
