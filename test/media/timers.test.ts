// The clock seam's repeating timer, on the manual clock: ticks at each whole interval, none after stop.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { every, realTimers, type TimerSeam } from '../../src/media/timers.js';
import { FakeTime } from '../helpers/fake-time.js';

it('every() ticks once per interval through the seam and stops for good', async () => {
  const time = new FakeTime();
  const ticks: number[] = [];
  const stop = every(time, 250, () => ticks.push(time.now));
  await time.advance(249);
  assert.deepEqual(ticks, []);
  await time.advance(751);
  assert.deepEqual(ticks, [250, 500, 750, 1000]);
  stop();
  assert.equal(time.pending, 0);
  await time.advance(10_000);
  assert.deepEqual(ticks, [250, 500, 750, 1000]);
});

it('every() stopped from inside its own callback does not tick again', async () => {
  const time = new FakeTime();
  let count = 0;
  const stop = every(time, 100, () => {
    count++;
    if (count === 2) stop();
  });
  await time.advance(1000);
  assert.equal(count, 2);
  assert.equal(time.pending, 0);
});

it('every() on the real timers keeps one timer object for all its ticks, and stops for good', async () => {
  let made = 0;
  let cleared = 0;
  const counting: TimerSeam = {
    setTimeout: (callback, ms) => {
      made++;
      return realTimers.setTimeout(callback, ms);
    },
    clearTimeout: (handle) => {
      cleared++;
      realTimers.clearTimeout(handle);
    },
    rearm: (handle) => realTimers.rearm!(handle),
  };
  const at: number[] = [];
  const started = performance.now();
  const stop = every(counting, 20, () => at.push(performance.now() - started));
  await new Promise((resolve) => setTimeout(resolve, 150));
  stop();
  const ticks = at.length;
  assert.ok(ticks >= 3, `ticked ${ticks} times in 150 ms at 20 ms`);
  assert.ok(at.every((t, i) => t >= 20 * (i + 1) - 2), `never early: ${at.map((t) => t.toFixed(0)).join(', ')}`);
  assert.equal(made, 1, 'one timer object');
  assert.equal(cleared, 1);
  await new Promise((resolve) => setTimeout(resolve, 80));
  assert.equal(at.length, ticks, 'no tick after stop');
});
