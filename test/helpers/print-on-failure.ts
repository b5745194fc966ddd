/**
 * Prints what a helper's peers (Homebridge instances, fake cameras) logged during a test, under
 * that test, when it fails: a failure on CI then names its cause instead of only its symptom.
 *
 * A helper calls `printLogsOnFailure(everyInstance, log)` once at module level. That registers
 * file-wide hooks in every test file importing the helper: before each test they note how much each
 * instance has logged so far, after a failed one they print what each logged since.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterEach, beforeEach } from 'node:test';

/**
 * Where every report is also appended when `scripts/test.sh` names a file (it sets
 * `WRC_FAILURE_LOG_FILE`), so that it can end a failed run with a digest of them: CI keeps only the
 * end of a long run's output, where the runner's summary names a failure and its error but not what
 * the peers logged around it. The fixture test names its own file for its deliberate failures.
 */
const FAILURE_LOG_FILE = process.env['WRC_FAILURE_LOG_FILE'];

function keepForDigest(report: string): void {
  if (!FAILURE_LOG_FILE) return;
  try {
    mkdirSync(dirname(FAILURE_LOG_FILE), { recursive: true });
    appendFileSync(FAILURE_LOG_FILE, `${report}\n`);
  } catch {
    // The report has been printed already; the digest is a convenience.
  }
}

export interface FailureLog<T> {
  /** How much `instance` has logged so far (lines, characters): the start of the next test's share. */
  logged(instance: T): number;
  /**
   * What to print for `instance` under the failed test `testName`, given where its share starts;
   * undefined prints nothing (it logged nothing during the test).
   */
  report(instance: T, since: number, testName: string): string | undefined;
}

/** `instances` is read at every hook, so pass the live collection (instances made later count too). */
export function printLogsOnFailure<T>(instances: Iterable<T>, log: FailureLog<T>): void {
  const loggedAtTestStart = new Map<T, number>();

  beforeEach(() => {
    loggedAtTestStart.clear();
    for (const instance of instances) loggedAtTestStart.set(instance, log.logged(instance));
  });

  afterEach((context) => {
    // `passed` is newer than this @types/node; Node 22's test runner has it.
    if ((context as { passed?: boolean }).passed !== false) return;
    for (const instance of instances) {
      // An instance made inside the failed test logged everything during it.
      const report = log.report(instance, loggedAtTestStart.get(instance) ?? 0, context.name);
      if (report === undefined) continue;
      console.log(report);
      keepForDigest(report);
    }
  });
}
