/**
 * When a variant encoder steps down (src/transcode/keep-up.ts): the arithmetic on frame counters and
 * a clock. The encoder doing it for real is in variants.test.ts ("a slow encoder steps down").
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstStep, KeepUpWatch, VARIANT_STEPS } from '../../src/transcode/keep-up.js';

const SETTINGS = { windowMs: 1000, warmUpMs: 2000, behindRatio: 0.8, windowsBehind: 2, stepUpAfterMs: 10_000 };

/** Drives a watch second by second: the camera sends 25 frames a second, the encoder `rate(t)` of them. */
function drive(watch: KeepUpWatch, seconds: number, rate: (t: number) => number, from = 0) {
  let input = 0;
  let output = 0;
  const steps: Array<{ t: number; to: number; reason: string }> = [];
  for (let t = from; t <= from + seconds; t++) {
    const decision = watch.check(t * 1000, input, output);
    if (decision.action === 'step') {
      steps.push({ t, to: decision.to, reason: decision.reason });
      watch.restarted(t * 1000);
    }
    input += 25;
    output += rate(t);
  }
  return steps;
}

describe('KeepUpWatch', () => {
  it('an encoder at half the camera rate steps down after the warm-up and two windows behind; one that keeps up never does', () => {
    const slow = new KeepUpWatch(0, 0, SETTINGS);
    // Warm-up until 2 s, the first window starts at 2 s, behind at 3 s and at 4 s: step at 4 s.
    assert.deepEqual(drive(slow, 4, () => 12), [{ t: 4, to: 1, reason: 'behind' }]);
    const fine = new KeepUpWatch(0, 0, SETTINGS);
    assert.deepEqual(drive(fine, 60, () => 24), [], '96% of the frames is keeping up');
  });

  it('steps down one step at a time, each after its own warm-up, and stops at the last step', () => {
    const watch = new KeepUpWatch(0, 0, SETTINGS);
    const steps = drive(watch, 40, () => 5);
    assert.deepEqual(steps.map((s) => s.to), [1, 2, 3, 4], 'never past the last step');
    assert.deepEqual(steps.map((s) => s.t), [4, 8, 12, 16], 'a warm-up and two windows between steps');
    assert.equal(watch.step, VARIANT_STEPS.length - 1);
  });

  it('a frame-rate cap is measured against the frames it lets through, not the camera\'s', () => {
    // Step 3 caps at 15 fps: 15 of the camera's 25 frames is keeping up.
    const capped = new KeepUpWatch(3, 0, SETTINGS);
    assert.deepEqual(drive(capped, 30, () => 15), []);
    const behind = new KeepUpWatch(3, 0, SETTINGS);
    assert.deepEqual(drive(behind, 4, () => 10).map((s) => s.to), [4]);
  });

  it('a camera that sends nothing says nothing about the encoder', () => {
    const watch = new KeepUpWatch(0, 0, SETTINGS);
    for (let t = 0; t < 30; t++) assert.equal(watch.check(t * 1000, 5, 0).action, 'none');
  });

  it('after keeping up for a while at a reduced step it tries one step up; a failed try doubles the wait', () => {
    // A machine on which step 0 gives 10 of 25 frames and step 1 all of them.
    const watch = new KeepUpWatch(0, 0, SETTINGS);
    const steps = drive(watch, 100, () => (watch.step === 0 ? 10 : 25));
    assert.deepEqual(steps.map((s) => [s.t, s.to, s.reason]), [
      [4, 1, 'behind'],
      // Restarted at 4 s, warm until 6 s, the first good window ends at 7 s: 10 s later, one step up.
      [17, 0, 'recovered'],
      [21, 1, 'behind'],
      // The try failed: the next one waits 20 s from the first good window (24 s).
      [44, 0, 'recovered'],
      [48, 1, 'behind'],
      // ...and the one after 40 s from 51 s.
      [91, 0, 'recovered'],
      [95, 1, 'behind'],
    ]);
  });

  it('never steps to a step that changes nothing for this camera: a 640x360 camera started in the 1280x720 box goes straight to 15 fps, and back up to full rate', () => {
    // Steps 0-2 all give a 640x360 camera its whole picture at full rate.
    const same = (a: number, b: number): boolean => Math.max(a, 2) === Math.max(b, 2);
    const watch = new KeepUpWatch(0, 0, SETTINGS);
    let input = 0;
    let output = 0;
    const seen: number[] = [];
    for (let t = 0; t <= 40; t++) {
      const decision = watch.check(t * 1000, input, output, same);
      if (decision.action === 'step') {
        seen.push(decision.to);
        watch.restarted(t * 1000);
      }
      input += 25;
      // Full rate is too much for this machine (10 of 25 frames); 15 fps it manages.
      output += watch.step <= 2 ? 10 : 15;
    }
    assert.deepEqual(seen.slice(0, 3), [3, 2, 3], 'down to step 3, up to 2 (not 1 or 0, the same picture), down again');
  });

  it('starts at the smallest full-rate box that holds the whole picture, inside the configured box', () => {
    assert.equal(firstStep(1280, 720, { width: 1920, height: 1080 }), 0);
    assert.equal(firstStep(1280, 720, { width: 1280, height: 720 }), 0);
    assert.equal(firstStep(1280, 720, { width: 640, height: 360 }), 2, 'a 640x360 camera: its first step down is fewer frames');
    assert.equal(firstStep(1280, 720, { width: 800, height: 600 }), 0, 'taller than 960x540: needs the 1280x720 box');
    assert.equal(firstStep(1280, 720), 0, 'unknown picture: the largest');
    assert.equal(firstStep(960, 540, { width: 1920, height: 1080 }), 1);
    assert.equal(firstStep(320, 180), VARIANT_STEPS.length - 1, 'nothing fits: the smallest');
  });
});
