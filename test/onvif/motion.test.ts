import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { MotionState } from '../../src/onvif/motion.js';

function track(state: MotionState): Array<{ detected: boolean; at: number }> {
  const changes: Array<{ detected: boolean; at: number }> = [];
  const t0 = Date.now();
  state.on('change', (detected) => changes.push({ detected, at: Date.now() - t0 }));
  return changes;
}

describe('MotionState', () => {
  it('turns on at once and off the reset timeout after the camera says no motion', async () => {
    const state = new MotionState({ resetTimeoutMs: 200 });
    const changes = track(state);
    state.update(true, 'a');
    assert.equal(state.detected, true);
    await sleep(100);
    state.update(false, 'a');
    assert.equal(state.detected, true, 'held for the reset timeout');
    await sleep(120);
    assert.equal(state.detected, true);
    await sleep(150);
    assert.equal(state.detected, false);
    assert.deepEqual(changes.map((c) => c.detected), [true, false]);
    assert.ok(changes[1]!.at >= 290, `off at ${changes[1]!.at} ms`);
    state.dispose();
  });

  it('a pulse (event without property state) turns off after the reset timeout; repeats extend it', async () => {
    const state = new MotionState({ resetTimeoutMs: 150 });
    const changes = track(state);
    state.update(true, 'p', true);
    await sleep(100);
    state.update(true, 'p', true);
    await sleep(100);
    assert.equal(state.detected, true);
    await sleep(100);
    assert.equal(state.detected, false);
    assert.deepEqual(changes.map((c) => c.detected), [true, false]);
    state.dispose();
  });

  it('stays on while any source (e.g. the second topic of the same motion) is active', async () => {
    const state = new MotionState({ resetTimeoutMs: 50 });
    state.update(true, 'cell');
    state.update(true, 'alarm');
    state.update(false, 'cell');
    await sleep(120);
    assert.equal(state.detected, true);
    state.update(false, 'alarm');
    await sleep(120);
    assert.equal(state.detected, false);
    state.dispose();
  });

  it('debounce ignores a glitch shorter than debounceMs and accepts sustained motion', async () => {
    const state = new MotionState({ resetTimeoutMs: 50, debounceMs: 100 });
    const changes = track(state);
    state.update(true, 'a');
    await sleep(30);
    state.update(false, 'a');
    await sleep(150);
    assert.equal(changes.length, 0);
    state.update(true, 'a');
    await sleep(60);
    assert.equal(state.detected, false);
    await sleep(80);
    assert.equal(state.detected, true);
    state.dispose();
  });

  it('drops a source stuck on longer than maxActiveMs', async () => {
    const state = new MotionState({ resetTimeoutMs: 50, maxActiveMs: 150 });
    state.update(true, 'stuck');
    await sleep(100);
    assert.equal(state.detected, true);
    await sleep(120);
    assert.equal(state.detected, false);
    state.dispose();
  });

  it('Initialized false for an unknown source changes nothing; clearSources lets the state run out', async () => {
    const state = new MotionState({ resetTimeoutMs: 50 });
    const changes = track(state);
    state.update(false, 'x');
    assert.equal(changes.length, 0);
    state.update(true, 'x');
    state.clearSources();
    await sleep(100);
    assert.deepEqual(changes.map((c) => c.detected), [true, false]);
    state.dispose();
    state.update(true, 'x');
    assert.equal(state.detected, false, 'disposed: no more changes');
  });
});
