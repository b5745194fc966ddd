// Handing freed memory back to the system (src/rtp/native-heap-trim.ts; trimNativeHeap and
// hintMemoryReduction in native/srtp-fanout.c): the real calls, on this process's own C heap and on
// a fresh Node's V8 heap, and the schedule on a manual clock.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, it } from 'node:test';

import { nativeFanout, nativeFanoutPath } from '../../src/rtp/native-fanout.js';
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
    // The small ones can land in holes the process freed earlier instead of after each large one.
    // Then the large ones lie together at the heap's top, and freed they merge into it, which glibc
    // gives back by itself on free (RSS fell without a trim: this test failed so, once in ~50 runs).
    // A live block carved from the top after them keeps them below it.
    const cap = Buffer.allocUnsafeSlow(64 * 1024).fill(0xa5);
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
    assert.ok(cap.every((byte) => byte === 0xa5), 'live memory is untouched');
  });
});

describe('hintMemoryReduction (the addon)', () => {
  it("has V8 collect and hand back the pages of a grown heap, which V8 otherwise keeps resident", async () => {
    const probe = fileURLToPath(new URL('v8-reduction-probe.mjs', import.meta.url));
    const run = async (hint: boolean): Promise<{ told: boolean; back: number; before: number; majorAfterMs: number | null }> => {
      const { stdout } = await promisify(execFile)(process.execPath, [probe, nativeFanoutPath(), hint ? '1' : '0'], { timeout: 60_000 });
      const report = JSON.parse(stdout.trim()) as { told: boolean; before: number; after: number; majorAfterMs: number | null };
      return { told: report.told, back: report.before - report.after, before: report.before, majorAfterMs: report.majorAfterMs };
    };
    const without = await run(false);
    const hinted = await run(true);
    assert.equal(hinted.told, true, "V8's API was found in this Node");
    const line = `${(hinted.back / MiB).toFixed(1)} MiB handed back with the hint, ${(without.back / MiB).toFixed(1)} without (RSS ${(hinted.before / MiB).toFixed(0)} MiB before)`;
    assert.ok(hinted.back > 32 * MiB, line);
    assert.ok(hinted.back > without.back + 32 * MiB, line);
    // What the trimmer waits for (observeMajorCollections): the full collection the hint started
    // ends as a gc performance entry, well within collectMs.
    assert.ok(hinted.majorAfterMs !== null && hinted.majorAfterMs < 2_500, `V8's full collection ended ${String(hinted.majorAfterMs)} ms after the hint`);
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

  it("asks V8 for its collection first and trims the C heap once it has run; a request meanwhile waits its turn", async () => {
    const time = new FakeTime();
    const calls: string[] = [];
    let rss = 150 * MiB;
    const lines: string[] = [];
    const t = new NativeHeapTrimmer({
      reduceV8: () => {
        calls.push(`v8 ${time.now}`);
        rss -= 20 * MiB;
        return true;
      },
      trim: () => {
        calls.push(`trim ${time.now}`);
        rss -= 5 * MiB;
        return true;
      },
      collectMs: 3_000,
      quietMs: 5_000,
      timers: time,
      now: () => time.now,
      rss: () => rss,
    });
    t.request((line) => lines.push(line));
    assert.equal(t.pending, true);
    await time.advance(5_000);
    assert.deepEqual(calls, ['v8 5000']);
    assert.equal(t.pending, true, 'the trim waits for V8');
    await time.advance(3_000);
    assert.equal(t.pending, false);
    assert.deepEqual(calls, ['v8 5000', 'trim 8000']);
    assert.deepEqual([t.stats.trims, t.stats.v8Reductions, t.stats.lastReleasedBytes], [1, 1, 25 * MiB]);
    assert.match(lines[0] ?? '', /returned 25\.0 MiB of freed V8 and native memory/);
    // A viewer comes while V8 collects: that trim still runs, and the new request gets a run of
    // its own, 10 s after the last one began.
    calls.length = 0;
    t.request();
    await time.advance(7_000);
    assert.deepEqual(calls, ['v8 15000'], 'quiet for 5 s, and 10 s after the last run began');
    t.request();
    await time.advance(3_000);
    assert.deepEqual(calls, ['v8 15000', 'trim 18000']);
    await time.advance(7_000 + 3_000);
    assert.deepEqual(calls, ['v8 15000', 'trim 18000', 'v8 25000', 'trim 28000']);
    t.request();
    await time.advance(7_000);
    t.stop();
    await time.advance(60_000);
    assert.equal(calls.at(-1), 'v8 35000', 'stop() drops the trim waiting for V8');
    assert.equal(time.pending, 0);
    // A request that does not ask for V8 trims the C heap alone, unless
    // another request since the last run asked for V8.
    calls.length = 0;
    t.request(undefined, { collectV8: false });
    await time.advance(20_000);
    assert.deepEqual(calls, ['trim 100000']);
    t.request(undefined, { collectV8: false });
    t.request();
    await time.advance(20_000);
    assert.deepEqual(calls, ['trim 100000', 'v8 120000', 'trim 123000']);
    // Where V8 cannot be asked, the trim runs at once.
    const plain: string[] = [];
    const noV8 = new NativeHeapTrimmer({ reduceV8: () => false, trim: () => plain.push(`trim ${time.now}`) > 0, timers: time, now: () => time.now, quietMs: 5_000 });
    noV8.request();
    await time.advance(5_000);
    assert.deepEqual(plain, [`trim ${time.now}`]);
    assert.equal(noV8.stats.v8Reductions, 0);
  });

  it("trims the C heap 250 ms after V8's full collection ends, not the whole collectMs, and stops watching for it", async () => {
    const time = new FakeTime();
    const calls: string[] = [];
    let listener: (() => void) | undefined;
    let watching = 0;
    const t = new NativeHeapTrimmer({
      reduceV8: () => calls.push(`v8 ${time.now}`) > 0,
      trim: () => calls.push(`trim ${time.now}`) > 0,
      majorCollections: (onMajor) => {
        listener = onMajor;
        watching++;
        return () => {
          listener = undefined;
          watching--;
        };
      },
      timers: time,
      now: () => time.now,
      rss: () => 100 * MiB,
    });
    t.request();
    await time.advance(1_500);
    assert.deepEqual(calls, ['v8 1500']);
    assert.equal(watching, 1, 'it watches for the collection');
    await time.advance(800);
    listener?.();
    assert.equal(watching, 0, 'one collection is enough');
    await time.advance(249);
    assert.deepEqual(calls, ['v8 1500'], "the collection's sweeping and finalisers get their 250 ms");
    await time.advance(1);
    assert.deepEqual(calls, ['v8 1500', 'trim 2550']);
    assert.equal(t.pending, false);
    // No collection seen: the trim comes collectMs (3 s) after asking, and the watch ends.
    t.request();
    await time.advance(20_000);
    assert.deepEqual(calls.slice(2), ['v8 11500', 'trim 14500']);
    assert.equal(watching, 0);
    // stop() while waiting ends the watch too.
    t.request();
    await time.advance(1_500);
    assert.deepEqual(calls.slice(4), ['v8 24050'], '1.5 s quiet, and 10 s after the last run began');
    assert.equal(watching, 1);
    t.stop();
    assert.equal(watching, 0);
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
    await time.advance(1_500);
    assert.equal(t.stats.lastReleasedBytes, 12 * MiB, 'by default a trim comes 1.5 s after the last request');
    assert.match(lines[0] ?? '', /returned 12\.0 MiB of freed native memory/);
  });
});
