import { test } from 'node:test';
import assert from 'node:assert/strict';
import { demoUpstream } from '../../src/demo/demo-upstream.js';
import { silentLogger } from '../../src/util/logger.js';

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
