// The clock seam's repeating timer, on the manual clock: ticks at each whole interval, none after stop.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { every } from '../../src/media/timers.js';
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
