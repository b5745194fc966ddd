// The helpers' shared "print the logs under a failed test" hooks (print-on-failure.ts), run on a
// fixture test file whose tests pass and fail.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

test('a failed test gets the lines logged during it, a passed one nothing', async () => {
  const fixture = fileURLToPath(new URL('./fixtures/print-on-failure.fixture.ts', import.meta.url));
  // Without our NODE_TEST_CONTEXT the child runs as a top-level test run and prints TAP.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = execFile(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', fixture], { timeout: 30_000, env }, (_error, out) => resolve({ code: child.exitCode, stdout: out }));
  });
  assert.equal(code, 1, stdout);
  const printed = stdout.split('\n').filter((line) => line.includes('LOG '));
  assert.deepEqual(printed.map((line) => line.slice(line.indexOf('LOG '))), [
    'LOG early under "fails after logging": during',
    'LOG late under "fails with a log made inside it": first,second',
  ]);
});
