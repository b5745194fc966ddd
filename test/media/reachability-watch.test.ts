import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReachabilityWatch } from '../../src/media/reachability-watch.js';
import { FakeTime } from '../helpers/fake-time.js';

function watch(time: FakeTime, answers: () => boolean): { watch: ReachabilityWatch; probes: number[]; backs: number[] } {
  const probes: number[] = [];
  const backs: number[] = [];
  const w = new ReachabilityWatch({
    probe: () => {
      probes.push(time.now);
      return Promise.resolve(answers());
    },
    onBack: () => backs.push(time.now),
    now: time.clock,
    timers: time,
  });
  return { watch: w, probes, backs };
}

test('probes every 500 ms while the camera is down and reports the first answer after that', async () => {
  const time = new FakeTime();
  let up = false;
  const { watch: w, probes, backs } = watch(time, () => up);
  w.start();
  await time.advance(2_900);
  assert.deepEqual(probes, [0, 500, 1000, 1500, 2000, 2500]);
  assert.deepEqual(backs, []);
  up = true;
  await time.advance(50);
  assert.deepEqual(backs, [], 'nothing until the next probe');
  await time.advance(50);
  assert.deepEqual(backs, [3000], 'the probe right after the camera answers');
  w.stop();
  await time.advance(10_000);
  assert.equal(probes.length, 7, 'no probe after stop()');
});

test('a camera that answers all along (but fails later in the session) is never reported: it keeps its backoff', async () => {
  const time = new FakeTime();
  const { watch: w, probes, backs } = watch(time, () => true);
  w.start();
  await time.advance(5_000);
  assert.ok(probes.length >= 10);
  assert.deepEqual(backs, []);
  w.stop();
});

test('after 30 s of outage the probes slow to one every 5 s; a pause keeps the outage, stop() forgets it', async () => {
  const time = new FakeTime();
  const { watch: w, probes } = watch(time, () => false);
  w.start();
  await time.advance(30_000);
  const fast = probes.length;
  assert.equal(fast, 61);
  await time.advance(20_000);
  assert.equal(probes.length - fast, 4);
  w.pause();
  await time.advance(1_000);
  const paused = probes.length;
  w.start();
  await time.advance(9_999);
  assert.equal(probes.length - paused, 2, 'still slow: the outage began 51 s ago');
  w.stop();
  w.start();
  await time.advance(1_000);
  assert.equal(probes.length - paused, 5, 'fast again: a new outage');
  w.stop();
});

test('a probe that hangs does not stack up probes, and stop() abandons it', async () => {
  const time = new FakeTime();
  let started = 0;
  let aborted = 0;
  const w = new ReachabilityWatch({
    probe: (signal) => {
      started++;
      return new Promise((resolve) => signal.addEventListener('abort', () => { aborted++; resolve(false); }));
    },
    onBack: () => assert.fail('never back'),
    now: time.clock,
    timers: time,
  });
  w.start();
  await time.advance(10_000);
  assert.equal(started, 1);
  w.stop();
  assert.equal(aborted, 1);
});
