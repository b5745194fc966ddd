// The helpers' shared "print the logs under a failed test" hooks (print-on-failure.ts), run on a
// fixture test file whose tests pass and fail.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, args, { timeout: 30_000, env, cwd: ROOT }, (_error, out) => resolve({ code: child.exitCode, stdout: out }));
  });
}

test('a failed test gets the lines logged during it, a passed one nothing; the same reports are kept for the digest', async (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/print-on-failure.fixture.ts', import.meta.url));
  const scratch = await mkdtemp(join(tmpdir(), 'wrc-failure-log-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const kept = join(scratch, 'failure-logs.txt');
  // Without our NODE_TEST_CONTEXT the child runs as a top-level test run and prints TAP.
  const env: NodeJS.ProcessEnv = { ...process.env, WRC_FAILURE_LOG_FILE: kept };
  delete env.NODE_TEST_CONTEXT;
  const { code, stdout } = await run(['--import', 'tsx', '--test', '--test-reporter=tap', fixture], env);
  assert.equal(code, 1, stdout);
  const printed = stdout.split('\n').filter((line) => line.includes('LOG '));
  const expected = ['LOG early under "fails after logging": during', 'LOG late under "fails with a log made inside it": first,second'];
  assert.deepEqual(printed.map((line) => line.slice(line.indexOf('LOG '))), expected);
  assert.deepEqual((await readFile(kept, 'utf8')).split('\n').filter(Boolean), expected);
});

test('the digest scripts/test.sh prints after a failed run: each log\'s notable lines and its last ones, with the gaps marked', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'wrc-failure-digest-'));
  t.after(() => rm(scratch, { recursive: true, force: true }));
  const file = join(scratch, 'failure-logs.txt');
  const quiet = Array.from({ length: 30 }, (_, i) => `PLAY CSeq=${i}`);
  await writeFile(file, [
    '----- fake camera :8554 log during the failed test "plays" -----',
    ...quiet.slice(0, 10),
    'video stalled for 2 s: in the last second 0 raw frames',
    ...quiet.slice(10),
    '----- end of fake camera log -----',
    '----- Homebridge log (/tmp/hb) during the failed test "plays" -----',
    '[Gate] lost the camera: no video from the camera for 5.0 s',
    '----- end of Homebridge log -----',
    '',
  ].join('\n'));
  const { code, stdout } = await run(['scripts/failure-digest.mjs', file], process.env);
  assert.equal(code, 0, stdout);
  assert.deepEqual(stdout.trimEnd().split('\n').slice(1), [
    '----- fake camera :8554 log during the failed test "plays" -----',
    '  …',
    '  video stalled for 2 s: in the last second 0 raw frames',
    '  …',
    ...quiet.slice(-6).map((line) => `  ${line}`),
    '----- Homebridge log (/tmp/hb) during the failed test "plays" -----',
    '  [Gate] lost the camera: no video from the camera for 5.0 s',
  ]);
  // No file (a run that failed before any test): nothing printed.
  assert.deepEqual(await run(['scripts/failure-digest.mjs', join(scratch, 'none.txt')], process.env), { code: 0, stdout: '' });
});
