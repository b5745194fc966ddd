// Handing freed C heap back to the system (src/rtp/native-heap-trim.ts, trimNativeHeap in
// native/srtp-fanout.c): the real call on this process's own heap, and the schedule on a manual clock.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, it } from 'node:test';

import { nativeFanout } from '../../src/rtp/native-fanout.js';
import { NativeHeapTrimmer } from '../../src/rtp/native-heap-trim.js';
import { FakeTime } from '../helpers/fake-time.js';

const MiB = 1048576;

function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('trimNativeHeap (the addon)', () => {
  it('gives back the pages of C heap that was freed but kept by glibc, and keeps what is live', async () => {
    const status = nativeFanout();
    assert.ok(status.loaded, `the native addon loads on this machine: ${status.loaded ? '' : status.reason}`);
    // 64 MiB in 64 KiB backing stores (malloc'd by Node below glibc's mmap threshold), each followed
    // by a small live one: freeing the large ones leaves holes that glibc keeps, resident.
    let large: Buffer[] = [];
    const live: Buffer[] = [];
    const base = process.memoryUsage.rss();
    for (let i = 0; i < 1024; i++) {
      large.push(Buffer.alloc(64 * 1024, i & 0xff));
      live.push(Buffer.allocUnsafeSlow(64).fill(i & 0xff));
    }
    const filled = process.memoryUsage.rss();
    assert.ok(filled - base > 48 * MiB, `64 MiB touched: RSS grew ${((filled - base) / MiB).toFixed(1)} MiB`);
    large = [];
    collectGarbage();
    await new Promise((resolve) => setTimeout(resolve, 200)); // V8 frees backing stores after the GC
    collectGarbage();
    const freed = process.memoryUsage.rss();
    const kept = freed - base;
    assert.ok(kept > 16 * MiB, `glibc kept freed holes resident: RSS ${(kept / MiB).toFixed(1)} MiB above the start`);
    assert.equal(status.fanout.trimNativeHeap(), true, 'some memory went back');
    const trimmed = process.memoryUsage.rss();
    assert.ok(freed - trimmed > kept * 0.6, `RSS fell ${((freed - trimmed) / MiB).toFixed(1)} of the ${(kept / MiB).toFixed(1)} MiB kept`);
    assert.ok(live.every((b, i) => b.every((byte) => byte === (i & 0xff))), 'live memory is untouched');
  });
});

describe('NativeHeapTrimmer (when to trim)', () => {
  function trimmer(time: FakeTime): { trims: number[]; t: NativeHeapTrimmer } {
    const trims: number[] = [];
    const t = new NativeHeapTrimmer({
      trim: () => {
        trims.push(time.now);
        return true;
      },
      timers: time,
      now: () => time.now,
      rss: () => 100 * MiB,
      quietMs: 5_000,
      maxDelayMs: 30_000,
      minIntervalMs: 30_000,
    });
    return { trims, t };
  }

  it('trims once requests have been quiet for 5 s, however many came', async () => {
    const time = new FakeTime();
    const { trims, t } = trimmer(time);
    for (let i = 0; i < 10; i++) {
      t.request();
      await time.advance(1_000);
    }
    assert.deepEqual(trims, []);
    await time.advance(4_000);
    assert.deepEqual(trims, [14_000]);
    assert.equal(t.stats.trims, 1);
    await time.advance(60_000);
    assert.deepEqual(trims, [14_000], 'nothing more without a request');
  });

  it('does not wait past 30 s for quiet when requests keep coming, and never trims twice within 30 s', async () => {
    const time = new FakeTime();
    const { trims, t } = trimmer(time);
    for (let i = 0; i < 100; i++) {
      t.request();
      await time.advance(1_000);
    }
    // A request every second for 100 s: trims at 30 s after the first, then 30 s apart.
    assert.deepEqual(trims, [30_000, 60_000, 90_000]);
    // The last requests (up to 99 s) are served 30 s after the last trim, not 5 s after them.
    await time.advance(19_000);
    assert.deepEqual(trims.length, 3);
    await time.advance(1_000);
    assert.deepEqual(trims, [30_000, 60_000, 90_000, 120_000]);
    t.request();
    await time.advance(29_000);
    assert.equal(trims.length, 4, 'within 30 s of the last trim it waits');
    await time.advance(1_000);
    assert.deepEqual(trims, [30_000, 60_000, 90_000, 120_000, 150_000]);
    t.stop();
  });

  it('does nothing where the addon is not loaded, and stop() cancels a pending trim', async () => {
    const time = new FakeTime();
    const none = new NativeHeapTrimmer({ trim: undefined, timers: time, now: () => time.now });
    none.request();
    assert.equal(time.pending, 0);
    const { trims, t } = trimmer(time);
    t.request();
    t.stop();
    await time.advance(60_000);
    assert.deepEqual(trims, []);
    assert.equal(time.pending, 0);
  });

  it('logs what a trim gave back through the latest requester', async () => {
    const time = new FakeTime();
    let rss = 120 * MiB;
    const lines: string[] = [];
    const t = new NativeHeapTrimmer({
      trim: () => {
        rss -= 12 * MiB;
        return true;
      },
      timers: time,
      now: () => time.now,
      rss: () => rss,
    });
    t.request((line) => lines.push(line));
    await time.advance(5_000);
    assert.equal(t.stats.lastReleasedBytes, 12 * MiB);
    assert.match(lines[0] ?? '', /returned 12\.0 MiB of freed native memory/);
  });
});
