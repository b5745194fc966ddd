import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Prebuffer, prebufferByteCap, prebufferSecondsFrom } from '../../src/homekit/recording/prebuffer.js';
import { frameByteLength } from '../../src/media/frame.js';
import type { FrameSink, MediaFrame } from '../../src/media/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeTime } from '../helpers/fake-time.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';

const FPS = 25;
const open: SyntheticSource[] = [];
afterEach(() => {
  for (const source of open.splice(0)) source.close();
});

/** Real H.264 (1 s GOPs) + PCMU played out on a fake clock. */
async function camera(time: FakeTime): Promise<SyntheticSource> {
  const source = await SyntheticSource.create({ fps: FPS, gop: FPS, seconds: 4, timers: time, now: time.clock, connectDelayMs: 0 });
  open.push(source);
  return source;
}

/** A camera on a fake clock with a started 4 s pre-buffer on it. */
async function rig(): Promise<{ time: FakeTime; source: SyntheticSource; prebuffer: Prebuffer }> {
  const time = new FakeTime();
  const source = await camera(time);
  const prebuffer = new Prebuffer({ source, log: silentLogger, seconds: 4 });
  prebuffer.start();
  return { time, source, prebuffer };
}

const age = (newest: number, older: number): number => ((newest - older) >>> 0) / 90000;

/** Calls `check` after every frame the source delivers, once the pre-buffer has seen it. */
function afterEveryFrame(source: SyntheticSource, check: (frame: MediaFrame) => void): void {
  const sink: FrameSink = { write: (frame) => (check(frame), true) };
  source.subscribe(sink, { kinds: ['video', 'audio'] });
}

test('keeps the newest keyframe at least N s before the newest frame, and nothing older', async () => {
  const { time, source, prebuffer } = await rig();
  let checked = 0;
  afterEveryFrame(source, (frame) => {
    if (frame.kind !== 'video') return;
    const frames = prebuffer.frames();
    const first = frames[0]!;
    assert.equal(first.kind, 'video');
    assert.equal(first.keyframe, true, 'the pre-buffer starts on a keyframe');
    const keyframes = frames.filter((f) => f.kind === 'video' && f.keyframe);
    if (age(frame.timestamp, first.timestamp) >= 4) {
      // The second keyframe is younger than 4 s: the first is the newest one old enough.
      assert.ok(keyframes.length < 2 || age(frame.timestamp, keyframes[1]!.timestamp) < 4);
      checked++;
    }
  });
  await time.advance(10_000);
  assert.ok(checked > 100, `checked ${checked} frames with a full pre-buffer`);
  const stats = prebuffer.stats();
  assert.ok(stats.seconds >= 4 && stats.seconds < 5, `pre-buffer spans ${stats.seconds} s`);
  assert.equal(stats.gops, 5);
  // Audio between the kept keyframes is kept too (PCMU, 50 frames a second).
  assert.ok(prebuffer.frames().filter((f) => f.kind === 'audio').length >= 4 * 50);
  prebuffer.stop();
});

test('the byte cap holds after every frame; a GOP larger than the whole cap is dropped until the next keyframe', async () => {
  const { time, source, prebuffer: probe } = await rig();
  await time.advance(3_000);
  const gopBytes = Math.max(...groupGops(probe.frames()).map((g) => g.reduce((n, f) => n + frameByteLength(f), 0)));
  probe.stop();

  const cap = Math.round(gopBytes * 2.5);
  const capped = new Prebuffer({ source, log: silentLogger, seconds: 4, maxBytes: cap });
  capped.start();
  let peak = 0;
  afterEveryFrame(source, () => {
    peak = Math.max(peak, capped.stats().bytes);
    assert.ok(capped.stats().bytes <= cap, `${capped.stats().bytes} > cap ${cap}`);
  });
  await time.advance(8_000);
  const stats = capped.stats();
  assert.ok(stats.trimmedForBytes > 0, 'the cap, not the time, trimmed');
  assert.ok(stats.seconds < 4, `the cap shortened the pre-buffer (${stats.seconds} s)`);
  assert.ok(peak > gopBytes, 'more than one GOP was held');
  assert.equal(capped.frames()[0]?.keyframe, true);
  capped.stop();

  const log = recordingLogger();
  const tiny = new Prebuffer({ source, log, seconds: 4, maxBytes: Math.round(gopBytes / 2) });
  tiny.start();
  afterEveryFrame(source, () => assert.ok(tiny.stats().bytes <= tiny.maxBytes));
  await time.advance(3_000);
  assert.ok(tiny.stats().oversizedGops >= 2);
  assert.equal(log.lines.filter((l) => /one GOP is over/.test(l)).length, 1, 'warned once');
  tiny.stop();
});

test('off unsubscribes from the Source and releases every frame; on again starts from a keyframe', async () => {
  const { time, source, prebuffer } = await rig();
  prebuffer.start(); // idempotent: still one subscriber
  assert.equal(source.counters.subscribes, 1);
  await time.advance(5_000);
  assert.ok(prebuffer.stats().bytes > 0);
  const followed: MediaFrame[] = [];
  prebuffer.follow((frame) => followed.push(frame));
  prebuffer.stop();
  assert.deepEqual(
    { ...prebuffer.stats() },
    { active: false, frames: 0, bytes: 0, gops: 0, seconds: 0, trimmedForBytes: 0, oversizedGops: 0, followers: 0 },
  );
  assert.equal(source.subscriberCount, 0, 'no subscription left on the Source');
  assert.equal(source.counters.unsubscribes, 1);
  await time.advance(2_000);
  assert.equal(prebuffer.frames().length, 0);
  assert.equal(followed.length, 0, 'a follower gets nothing once recording is off');

  prebuffer.start();
  assert.equal(prebuffer.frames()[0]?.keyframe, true, 'the GOP cache replay starts it on a keyframe');
  prebuffer.stop();
});

test('follow: the buffered frames, then every later frame, with no gap and no repeat', async () => {
  const { time, prebuffer } = await rig();
  await time.advance(6_000);
  const live: MediaFrame[] = [];
  const follower = prebuffer.follow((frame) => live.push(frame));
  await time.advance(3_000);
  follower.stop();
  await time.advance(1_000);
  const video = [...follower.frames, ...live].filter((f) => f.kind === 'video');
  assert.ok(video.length >= (4 + 3) * FPS);
  for (let i = 1; i < video.length; i++) assert.equal((video[i]!.timestamp - video[i - 1]!.timestamp) >>> 0, 90000 / FPS);
  assert.equal(live.filter((f) => f.kind === 'video').length, 3 * FPS, 'stop() ends the follower');
  prebuffer.stop();
});

test('the setting is clamped to 4-8 s and the default cap is the seconds plus a 4 s GOP at 8 Mbit/s', () => {
  assert.deepEqual([undefined, 1, 4, 6, 30, Number.NaN].map(prebufferSecondsFrom), [4, 4, 4, 6, 8, 4]);
  assert.equal(prebufferByteCap(4), 8 * 1024 * 1024);
});

function groupGops(frames: MediaFrame[]): MediaFrame[][] {
  const gops: MediaFrame[][] = [];
  for (const frame of frames) {
    if (frame.kind === 'video' && frame.keyframe) gops.push([]);
    gops.at(-1)?.push(frame);
  }
  return gops;
}

test('a marked event holds the GOP that reaches N s before it until the hub can ask, then at most EVENT_HOLD_SECONDS', async () => {
  const { time, source, prebuffer } = await rig();
  let newest = 0;
  afterEveryFrame(source, (frame) => { if (frame.kind === 'video') newest = frame.timestamp; });
  await time.advance(7_000);
  prebuffer.markEvent();
  const event = newest;
  assert.equal(prebuffer.eventTimestamp, event);
  // Long after a pre-buffer counted from the newest frame would have dropped it, the GOP that
  // reaches 4 s before the event is still the first one kept.
  await time.advance(3_000);
  const keyframes = prebuffer.frames().filter((f) => f.kind === 'video' && f.keyframe);
  assert.ok(age(event, keyframes[0]!.timestamp) >= 4, `first kept keyframe ${age(event, keyframes[0]!.timestamp)} s before the event`);
  assert.ok(age(event, keyframes[1]!.timestamp) < 4, 'and nothing older than needed');
  // Released EVENT_HOLD_SECONDS (5 s) after the event: back to N s from the newest frame.
  await time.advance(2_500);
  assert.equal(prebuffer.eventTimestamp, undefined);
  const stats = prebuffer.stats();
  assert.ok(stats.seconds >= 4 && stats.seconds < 5, `pre-buffer spans ${stats.seconds} s after the hold`);
  prebuffer.stop();
  assert.equal(prebuffer.eventTimestamp, undefined);
});
