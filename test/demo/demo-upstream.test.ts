import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoUpstream } from '../../src/demo/demo-upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeTime } from '../helpers/fake-time.js';

test('the demo upstream describes H.264 + PCMU and delivers RTP on both tracks from a real ffmpeg', async () => {
  const counts = [0, 0];
  let closedWith: Error | undefined | 'open' = 'open';
  // Resolves on the packet that brings both tracks to 20 (about 0.8 s of ffmpeg's real-time output).
  let enough: () => void = () => undefined;
  const twentyEach = new Promise<void>((resolve) => (enough = resolve));
  const factory = demoUpstream({ ffmpegPath: 'ffmpeg', width: 320, height: 180, log: silentLogger });
  const session = await factory({
    onRtp: (track, packet) => {
      assert.equal(packet[0]! >> 6, 2, 'RTP version 2');
      counts[track]! += 1;
      if (counts[0]! >= 20 && counts[1]! >= 20) enough();
    },
    onClose: (error) => { closedWith = error; },
  }, new AbortController().signal);
  try {
    assert.deepEqual(session.tracks.map((t) => t.codec), ['H264', 'PCMU']);
    assert.equal(session.tracks[0]!.clockRate, 90000);
    let guard: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (guard = setTimeout(() => resolve('timeout'), 15_000)));
    const outcome = await Promise.race([twentyEach, timedOut]);
    clearTimeout(guard);
    assert.notEqual(outcome, 'timeout', `after 15 s: video packets ${counts[0]}, audio packets ${counts[1]}`);
  } finally {
    await session.close();
  }
  assert.equal(closedWith, undefined, 'closing on request reports no error');
});

test('a missing ffmpeg rejects with a clear error', async () => {
  const factory = demoUpstream({ ffmpegPath: '/nonexistent/ffmpeg', log: silentLogger });
  await assert.rejects(factory({ onRtp: () => undefined, onClose: () => undefined }, new AbortController().signal),
    /demo ffmpeg could not start|ENOENT/);
});

test('an ffmpeg that never describes its output fails after the start timeout, and is stopped', async () => {
  // A stand-in "ffmpeg" that starts and then says nothing; it records its pid so the test can see it go.
  const dir = mkdtempSync(join(tmpdir(), 'demo-silent-'));
  const pidFile = join(dir, 'pid');
  const fake = join(dir, 'ffmpeg');
  writeFileSync(fake, `#!/bin/sh\necho $$ > '${pidFile}'\nexec sleep 60\n`);
  chmodSync(fake, 0o755);
  const time = new FakeTime();
  try {
    const factory = demoUpstream({ ffmpegPath: fake, log: silentLogger, startTimeoutMs: 5000, timers: time });
    const opening = factory({ onRtp: () => undefined, onClose: () => undefined }, new AbortController().signal);
    let settled = false;
    const outcome = opening.then(() => 'opened', (e: unknown) => e).finally(() => { settled = true; });
    // The sockets are real: wait (on real I/O, not on a timer) until the start timeout is armed.
    for (let i = 0; i < 200 && time.pending === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(time.pending, 1, 'the start timeout is armed');
    // The stand-in must have run far enough to write its pid before the (fake) timeout stops it: on a
    // busy machine the timeout is otherwise reached before the shell ran its first line.
    const writtenPid = (): string => (existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : '');
    for (let i = 0; i < 1000 && !writtenPid().endsWith('\n'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(writtenPid().endsWith('\n'), 'the stand-in ffmpeg started');
    await time.advance(4999);
    assert.equal(settled, false, 'still waiting 1 ms before the limit');
    await time.advance(1);
    const error = await outcome;
    assert.ok(error instanceof Error && /did not start in time/.test(error.message), String(error));
    assert.equal(time.pending, 0);
    // The process is real, so its end is waited for in real time.
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 200 && alive(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(alive(), false, 'the silent ffmpeg was stopped');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
