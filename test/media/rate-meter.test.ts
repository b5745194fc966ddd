// RateMeter: a sliding-window rate from a ring of time buckets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { RateMeter } from '../../src/media/rate-meter.js';

function near(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} ± ${tolerance}`);
}

describe('RateMeter', () => {
  it('is 0 before the first sample and right after it (no time has passed)', () => {
    const meter = new RateMeter();
    assert.equal(meter.perSecond(1000), 0);
    meter.add(1000, 500);
    assert.equal(meter.perSecond(1000), 0);
  });

  it('before a full window, averages over the time since the first sample', () => {
    const meter = new RateMeter(5000, 250);
    meter.add(0, 100);
    meter.add(500, 100);
    assert.equal(meter.spanMs(1000), 1000);
    assert.equal(meter.perSecond(1000), 200);
    assert.equal(meter.perSecond(2000), 100);
    assert.equal(meter.spanMs(60_000), 4750, 'the window once the meter has run longer: 19 whole buckets, the current one just begun');
  });

  it('a steady rate reads as that rate once the window is full, and stays there', () => {
    const meter = new RateMeter(5000, 250);
    for (let t = 0; t < 20_000; t += 100) {
      meter.add(t, 1000);
      if (t >= 6000 && t % 1000 === 0) near(meter.perSecond(t), 10_000, 600, `at ${t} ms`);
    }
  });

  it('forgets what is older than the window: a burst fades, silence reads 0', () => {
    const meter = new RateMeter(1000, 100);
    meter.add(0, 10_000);
    meter.add(50, 10_000);
    assert.ok(meter.perSecond(500) > 0);
    assert.equal(meter.perSecond(1200), 0, 'the burst left the window');
    // A jump far ahead clears every bucket, however long the gap.
    meter.add(1_000_000, 300);
    // The meter has run for long, so the whole window counts (9 full buckets and the current, just begun).
    near(meter.perSecond(1_000_500), 300 / 0.9, 0.001, 'only the new sample counts, spread over the window');
  });

  it('a rate change shows within one window', () => {
    const meter = new RateMeter(2000, 250);
    for (let t = 0; t < 4000; t += 100) meter.add(t, 100); // 1000/s
    for (let t = 4000; t < 6500; t += 100) meter.add(t, 400); // 4000/s
    near(meter.perSecond(6500), 4000, 250, 'after a full window at the new rate');
  });

  it('reset starts over', () => {
    const meter = new RateMeter();
    meter.add(0, 1000);
    meter.add(500, 1000);
    meter.reset();
    assert.equal(meter.perSecond(600), 0);
    meter.add(1000, 50);
    meter.add(1500, 50);
    assert.equal(meter.perSecond(2000), 100);
  });
});
