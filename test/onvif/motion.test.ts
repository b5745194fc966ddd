// MotionState on a manual clock: time moves only when the test advances it, so every boundary is
// checked exactly (1 ms before and at the reset timeout) instead of with sleeps and margins.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MotionState, type MotionStateOptions } from '../../src/onvif/motion.js';
import { FakeTime } from '../helpers/fake-time.js';

function setup(options: MotionStateOptions): { state: MotionState; time: FakeTime; changes: Array<{ detected: boolean; at: number }> } {
  const time = new FakeTime();
  const state = new MotionState({ ...options, now: time.clock, timers: time });
  const changes: Array<{ detected: boolean; at: number }> = [];
  state.on('change', (detected) => changes.push({ detected, at: time.now }));
  return { state, time, changes };
}

describe('MotionState', () => {
  it('turns on at once and off the reset timeout after the camera says no motion', async () => {
    const { state, time, changes } = setup({ resetTimeoutMs: 200 });
    state.update(true, 'a');
    assert.equal(state.detected, true);
    await time.advance(100);
    state.update(false, 'a');
    assert.equal(state.detected, true, 'held for the reset timeout');
    await time.advance(199);
    assert.equal(state.detected, true);
    await time.advance(1);
    assert.equal(state.detected, false);
    assert.deepEqual(changes, [{ detected: true, at: 0 }, { detected: false, at: 300 }]);
    state.dispose();
    assert.equal(time.pending, 0);
  });

  it('a pulse (event without property state) turns off after the reset timeout; repeats extend it', async () => {
    const { state, time, changes } = setup({ resetTimeoutMs: 150 });
    state.update(true, 'p', true);
    await time.advance(100);
    state.update(true, 'p', true);
    await time.advance(149);
    assert.equal(state.detected, true, 'the repeat extended it past the first pulse\'s 150 ms');
    await time.advance(1);
    assert.equal(state.detected, false);
    assert.deepEqual(changes, [{ detected: true, at: 0 }, { detected: false, at: 250 }]);
    state.dispose();
  });

  it('stays on while any source (e.g. the second topic of the same motion) is active', async () => {
    const { state, time, changes } = setup({ resetTimeoutMs: 50 });
    state.update(true, 'cell');
    state.update(true, 'alarm');
    state.update(false, 'cell');
    await time.advance(10_000);
    assert.equal(state.detected, true);
    state.update(false, 'alarm');
    await time.advance(49);
    assert.equal(state.detected, true);
    await time.advance(1);
    assert.equal(state.detected, false);
    assert.deepEqual(changes, [{ detected: true, at: 0 }, { detected: false, at: 10_050 }]);
    state.dispose();
  });

  it('debounce ignores a glitch shorter than debounceMs and accepts sustained motion', async () => {
    const { state, time, changes } = setup({ resetTimeoutMs: 50, debounceMs: 100 });
    state.update(true, 'a');
    await time.advance(30);
    state.update(false, 'a');
    await time.advance(150);
    assert.equal(changes.length, 0);
    state.update(true, 'a');
    await time.advance(99);
    assert.equal(state.detected, false);
    await time.advance(1);
    assert.equal(state.detected, true);
    assert.deepEqual(changes, [{ detected: true, at: 280 }]);
    state.dispose();
  });

  it('drops a source stuck on longer than maxActiveMs', async () => {
    const { state, time, changes } = setup({ resetTimeoutMs: 50, maxActiveMs: 150 });
    state.update(true, 'stuck');
    await time.advance(149);
    assert.equal(state.detected, true);
    await time.advance(1);
    assert.equal(state.detected, false);
    assert.deepEqual(changes, [{ detected: true, at: 0 }, { detected: false, at: 150 }]);
    state.dispose();
  });

  it('Initialized false for an unknown source changes nothing; clearSources lets the state run out', async () => {
    const { state, time, changes } = setup({ resetTimeoutMs: 50 });
    state.update(false, 'x');
    assert.equal(changes.length, 0);
    state.update(true, 'x');
    state.clearSources();
    await time.advance(50);
    assert.deepEqual(changes, [{ detected: true, at: 0 }, { detected: false, at: 50 }]);
    state.dispose();
    state.update(true, 'x');
    assert.equal(state.detected, false, 'disposed: no more changes');
    assert.equal(time.pending, 0);
  });

  it('end() turns motion off at once, whatever was active or pending, and a later pulse starts it again', async () => {
    const { state, time, changes } = setup({ resetTimeoutMs: 100 });
    state.update(true, 'web', true);
    state.update(true, 'topic');
    await time.advance(10);
    state.end();
    assert.equal(state.detected, false);
    assert.equal(time.pending, 0, 'no reset timer left behind');
    state.end();
    assert.equal(changes.length, 2, 'a second end() says nothing new');
    state.update(true, 'web', true);
    await time.advance(99);
    assert.equal(state.detected, true);
    await time.advance(1);
    assert.deepEqual(changes, [{ detected: true, at: 0 }, { detected: false, at: 10 }, { detected: true, at: 10 }, { detected: false, at: 110 }]);
    state.dispose();
  });

  it('uses the real clock and timers by default', async () => {
    const state = new MotionState({ resetTimeoutMs: 20 });
    const off = new Promise<boolean>((resolve) => state.on('change', (detected) => !detected && resolve(detected)));
    state.update(true, 'a');
    state.update(false, 'a');
    assert.equal(await off, false);
    state.dispose();
  });
});
