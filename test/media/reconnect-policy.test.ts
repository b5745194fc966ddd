/** The Source's retry schedule on its own (src/media/reconnect-policy.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReconnectPolicy, describeDelay, refusedCredentials } from '../../src/media/reconnect-policy.js';

const plain = new Error('connection refused');
const refused = Object.assign(new Error('401'), { code: 'auth' });

test('delays double up to the maximum, and a stable session starts over', () => {
  const policy = new ReconnectPolicy({ initialMs: 1000, maxMs: 5000, jitter: 0 }, () => 0.5);
  assert.equal(policy.retrying, false);
  assert.deepEqual([1, 2, 3, 4].map(() => policy.nextDelay(plain, false)), [1000, 2000, 4000, 5000]);
  assert.equal(policy.retrying, true);
  assert.equal(policy.nextDelay(plain, true), 1000);
  policy.reset();
  assert.equal(policy.retrying, false);
});

test('refused credentials wait on the slow schedule; jitter spreads the delay both ways', () => {
  assert.equal(refusedCredentials(refused), true);
  assert.equal(refusedCredentials(plain), false);
  const slow = new ReconnectPolicy({ jitter: 0 }, () => 0.5);
  assert.equal(slow.nextDelay(refused, false), 30_000);
  const low = new ReconnectPolicy({ initialMs: 1000, jitter: 0.2 }, () => 0);
  const high = new ReconnectPolicy({ initialMs: 1000, jitter: 0.2 }, () => 0.999999);
  assert.equal(low.nextDelay(plain, false), 800);
  assert.equal(high.nextDelay(plain, false), 1200);
});

test('delays read as log lines say them', () => {
  assert.equal(describeDelay(2000), '2.0 s');
  assert.equal(describeDelay(30 * 60_000), '30 min');
});
