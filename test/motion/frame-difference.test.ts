/**
 * What counts as motion between two small grey pictures (src/motion/frame-difference.ts), on
 * pictures made here: noise and a change of the whole picture's brightness are not; a thing moving
 * across it is, from the sensitivity's share of the picture on, two pictures in a row.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { changedShareFor, FrameDifference } from '../../src/motion/frame-difference.js';

const W = 160;
const H = 90;

/** A mid-grey picture with a little seeded noise, and optionally a bright square at (x, y). */
function picture(seed: number, square?: { x: number; y: number; size: number }, brightness = 0): Uint8Array {
  const out = new Uint8Array(W * H);
  let state = seed * 2654435761 + 1;
  for (let i = 0; i < out.length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = 110 + brightness + ((state >>> 16) % 21) - 10; // ±10: sensor grain, compression noise
  }
  if (square) {
    for (let y = square.y; y < square.y + square.size; y++) for (let x = square.x; x < square.x + square.size; x++) out[y * W + x] = 240;
  }
  return out;
}

describe('FrameDifference', () => {
  it('the sensitivity sets the share of the picture: 10 % at 1, about 1 % at 50, 0.1 % at 100', () => {
    assert.equal(changedShareFor(1), 0.1);
    assert.ok(Math.abs(changedShareFor(50) - 0.0102) < 0.0005, String(changedShareFor(50)));
    assert.ok(Math.abs(changedShareFor(100) - 0.001) < 1e-9);
    assert.equal(changedShareFor(0), changedShareFor(1), 'clamped');
    assert.equal(changedShareFor(1000), changedShareFor(100));
  });

  it('noise alone, and the whole picture getting brighter, are not motion', () => {
    const difference = new FrameDifference(100);
    for (let i = 0; i < 20; i++) {
      const result = difference.push(picture(i, undefined, i >= 10 ? 60 : 0));
      assert.equal(result.motion, false, `picture ${i}: ${result.changed}`);
      assert.ok(result.changed < 0.001, `picture ${i}: ${result.changed}`);
    }
  });

  it('a 20x20 square moving across: motion from the second picture it moved in, at 50 but not at 1', () => {
    const at50 = new FrameDifference(50);
    const at1 = new FrameDifference(1);
    const results50: boolean[] = [];
    const results1: boolean[] = [];
    for (let i = 0; i < 6; i++) {
      // Still for 2 pictures, then moving 25 px a picture.
      const frame = picture(i, { x: 10 + Math.max(0, i - 1) * 25, y: 30, size: 20 });
      results50.push(at50.push(frame).motion);
      results1.push(at1.push(frame).motion);
    }
    // Pictures 2-5 moved (old and new place: 800 px, 5.6 %); motion needs two in a row.
    assert.deepEqual(results50, [false, false, false, true, true, true]);
    assert.deepEqual(results1, [false, false, false, false, false, false], '5.6 % is below 10 %');
  });

  it('one odd picture is not motion; a picture of another size starts over', () => {
    const difference = new FrameDifference(100);
    difference.push(picture(1));
    assert.equal(difference.push(picture(2, { x: 0, y: 0, size: 40 })).motion, false);
    assert.equal(difference.push(picture(3)).motion, false, 'the square went away again: two changes, but back to the picture before');
    assert.equal(difference.push(new Uint8Array(10)).changed, 0);
  });
});
