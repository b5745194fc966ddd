/**
 * Waiting on an event the test can only poll (a counter, a state, a file): the one `waitFor`
 * every test uses, so a timeout always says what it waited for, how long, and (when asked) what it
 * saw instead.
 */
import assert from 'node:assert/strict';

/** Polls `check` every 20 ms until it is true; fails naming `what` (and `details()`) after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
  what = 'condition',
  details?: () => string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${details ? `: ${details()}` : ''}`);
    await sleep(20);
  }
}

/** A plain pause, for the few places that wait on the clock itself (a timeout to pass, a pacing gap). */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
