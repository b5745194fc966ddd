import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Source, type SourceOptions } from '../../src/media/source.js';
import { QueuedSink } from '../../src/media/queued-sink.js';
import type { FrameSink, MediaFrame, SourceState, TrackDescription } from '../../src/media/types.js';
import { serializeRtp } from '../../src/media/rtp.js';
import { FakeTime, flush } from '../helpers/fake-time.js';
import { ScriptedCamera, smallH264 } from './helpers/scripted-camera.js';

const accessUnits = smallH264(10, 2); // 50 frames, an IDR every 10

/** A sink that records everything and can be told to refuse. */
class RecordingSink implements FrameSink {
  frames: MediaFrame[] = [];
  states: SourceState[] = [];
  tracks: Array<ReadonlyArray<TrackDescription>> = [];
  accept: (frame: MediaFrame) => boolean = () => true;
  write(frame: MediaFrame): boolean {
    if (!this.accept(frame)) return false;
    this.frames.push(frame);
    return true;
  }
  onState(state: SourceState): void {
    this.states.push(state);
  }
  onTracks(tracks: ReadonlyArray<TrackDescription>): void {
    this.tracks.push(tracks);
  }
  video(): MediaFrame[] {
    return this.frames.filter((f) => f.kind === 'video');
  }
  audio(): MediaFrame[] {
    return this.frames.filter((f) => f.kind === 'audio');
  }
}

function setup(options: Partial<SourceOptions> = {}): { time: FakeTime; camera: ScriptedCamera; source: Source } {
  const time = new FakeTime();
  const camera = new ScriptedCamera(time, accessUnits);
  const source = new Source({
    id: 'cam1',
    name: 'Front door',
    upstream: camera.factory,
    now: time.clock,
    timers: time,
    random: () => 0.5, // jitter factor exactly 1
    ...options,
  });
  return { time, camera, source };
}

/** Output sequence numbers continue frame to frame: each frame starts where the previous one's packets ended. */
function assertContinuous(frames: MediaFrame[]): void {
  for (let i = 1; i < frames.length; i++) {
    const previous = frames[i - 1]!;
    assert.equal(frames[i]!.sequenceNumber, (previous.sequenceNumber + previous.packets.length) & 0xffff, `sequence continues at frame ${i}`);
    const delta = (frames[i]!.timestamp - previous.timestamp) | 0;
    assert.ok(delta > 0, `timestamp moves forward at frame ${i} (delta ${delta})`);
  }
}

test('on demand: pulls with the first subscriber, stops idleTimeoutMs after the last', async () => {
  const { time, camera, source } = setup({ idleTimeoutMs: 10_000, stallTimeoutMs: 3_600_000 });
  await time.advance(1000);
  assert.equal(camera.attempts, 0, 'no subscriber, no pull');
  assert.equal(source.state.state, 'idle');
  const states: string[] = [];
  source.on('state', (s) => states.push(s.state));
  const sink = new RecordingSink();
  const subscription = source.subscribe(sink);
  await flush();
  assert.equal(camera.attempts, 1);
  assert.equal(source.state.state, 'live');
  await camera.play(20);
  assert.ok(sink.video().length > 0);
  subscription.unsubscribe();
  assert.equal(subscription.active, false);
  await camera.play(50); // 2 s: still pulling
  assert.equal(source.state.state, 'live');
  const again = source.subscribe(new RecordingSink());
  await time.advance(20_000);
  assert.equal(camera.attempts, 1, 'a subscriber inside the idle window reuses the session');
  again.unsubscribe();
  await time.advance(9_999);
  assert.equal(source.state.state, 'live');
  await time.advance(1);
  assert.equal(source.state.state, 'idle');
  assert.equal(camera.closes, 1);
  assert.deepEqual(states, ['connecting', 'live', 'idle']);
  source.subscribe(new RecordingSink());
  await flush();
  assert.equal(camera.attempts, 2);
  await source.close();
});

test('alwaysOn pulls without subscribers and keeps pulling', async () => {
  const { time, camera, source } = setup({ alwaysOn: true, idleTimeoutMs: 1000, stallTimeoutMs: 3_600_000 });
  await flush();
  assert.equal(camera.attempts, 1);
  assert.equal(source.state.state, 'live');
  source.subscribe(new RecordingSink()).unsubscribe();
  await time.advance(60_000);
  assert.equal(source.state.state, 'live');
  assert.equal(camera.closes, 0);
  await source.close();
  assert.equal(camera.closes, 1);
});

test('a new subscriber gets the cached GOP at once, from the keyframe, then live frames, continuously numbered', async (t) => {
  const { camera, source } = setup();
  const first = new RecordingSink();
  source.subscribe(first);
  await flush();
  await camera.play(17); // IDR at 0 and 10: cache holds frames 10..16
  const late = new RecordingSink();
  let firstKeyframeAt = -1;
  const startedAt = performance.now();
  late.accept = (frame) => {
    if (frame.kind === 'video' && frame.keyframe && firstKeyframeAt < 0) firstKeyframeAt = performance.now();
    return true;
  };
  source.subscribe(late);
  const ttff = firstKeyframeAt - startedAt;
  assert.ok(firstKeyframeAt >= 0, 'keyframe delivered synchronously inside subscribe()');
  t.diagnostic(`time to first keyframe, warm: ${(ttff * 1000).toFixed(0)} µs`);
  const replayed = late.video();
  assert.equal(replayed.length, 7);
  assert.equal(replayed[0]!.keyframe, true);
  assert.deepEqual(replayed[0]!.units.slice(0, 2).map((u) => u[0]! & 0x1f), [7, 8], 'keyframe carries SPS and PPS');
  assert.equal(late.audio().length, 14, 'audio of the cached span comes too');
  assert.equal(late.frames[0]!.kind, 'video', 'the replay starts at the keyframe');
  await camera.play(20);
  assertContinuous(late.video());
  assertContinuous(first.video());
  assertContinuous(first.audio());
  assert.equal(late.video().at(-1), first.video().at(-1), 'both subscribers share the same frame objects');
  const stats = source.stats();
  assert.equal(stats.gopCacheFrames, 7 + 14, '37 frames played: the cache holds video 30..36 and their audio');
  assert.ok(stats.gopCacheBytes > 0);
  await source.close();
});

test('a keyframe that lost a packet is not cached: a new viewer waits for the next clean one instead of a smeared GOP', async () => {
  const { camera, source } = setup();
  const first = new RecordingSink();
  source.subscribe(first);
  await flush();
  camera.damageFrames.add(10); // the second IDR loses its first packet
  await camera.play(15);
  const damagedKeyframe = first.video().find((frame) => frame.keyframe && frame.damaged);
  assert.ok(damagedKeyframe, 'live viewers still get the damaged keyframe (it may partly decode), marked damaged');
  const late = new RecordingSink();
  source.subscribe(late);
  assert.equal(late.video().length, 0, 'nothing to replay: no clean keyframe since frame 10');
  assert.equal(source.stats().gopCacheFrames, 0);
  await camera.play(10); // frame 20 is the next IDR
  const replayed = late.video();
  assert.equal(replayed[0]?.keyframe, true, 'the new viewer starts at the next keyframe');
  assert.equal(replayed[0]?.damaged, undefined);
  assert.ok(source.stats().gopCacheFrames > 0, 'the clean GOP is cached again');
  await source.close();
});

test('UDP reordering: packets swapped inside a frame, or a packet late by a frame, lose nothing', async () => {
  const { time, camera, source } = setup();
  const sink = new RecordingSink();
  source.subscribe(sink);
  await flush();
  await camera.play(5);
  camera.swapFrames.add(10); // the IDR: its first two packets arrive swapped
  camera.lateFrames.add(12); // frame 12's first packet arrives after frame 13's packets
  for (let i = 5; i < 16; i++) {
    camera.sendFrame(); // frames 12 and 13 inside one reorder window (no time passes between them)
    if (i !== 12) await time.advance(40);
  }
  await camera.play(10);
  const stats = source.stats();
  assert.deepEqual([stats.video!.packetsLost, stats.video!.packetsLate, stats.video!.framesDamaged], [0, 0, 0]);
  const video = sink.video();
  assert.equal(video.length, 26, 'every frame arrived');
  assert.ok(video.every((frame) => !frame.damaged));
  assertContinuous(video);
  const idr = video.filter((frame) => frame.keyframe);
  assert.equal(idr.length, 3, 'IDRs at 0, 10 and 20, the swapped one whole');
  await source.close();
});

test('a real loss: the packets after the hole wait at most reorderWaitMs, then go on with the loss counted', async () => {
  const { time, camera, source } = setup({ reorderWaitMs: 30 });
  const sink = new RecordingSink();
  source.subscribe(sink);
  await flush();
  await camera.play(10);
  camera.damageFrames.add(11); // first packet of frame 11 never comes
  camera.sendFrame(); // frame 10
  camera.sendFrame(); // frame 11, minus its first packet
  const before = sink.video().length;
  await time.advance(29);
  assert.equal(sink.video().length, before, 'frame 11 still waits for its hole');
  assert.equal(source.stats().video!.packetsLost, 0);
  await time.advance(2);
  assert.equal(source.stats().video!.packetsLost, 1, 'the hole is a loss after 30 ms');
  const released = sink.video().slice(before);
  assert.equal(released.length, 1);
  assert.equal(released[0]!.damaged, true);
  // Duplicates are counted as late and dropped: frame 12 goes out once, whole.
  camera.duplicateFrames.add(12);
  camera.sendFrame();
  await time.advance(40);
  assert.ok(source.stats().video!.packetsLate >= 1);
  const twelve = sink.video().slice(before + 1);
  assert.equal(twelve.length, 1);
  assert.equal(twelve[0]!.damaged, undefined);
  await source.close();
});

test('reorderWaitMs 0 turns the window off: a hole is a loss at once', async () => {
  const { camera, source } = setup({ reorderWaitMs: 0 });
  const sink = new RecordingSink();
  source.subscribe(sink);
  await flush();
  await camera.play(10);
  camera.swapFrames.add(10);
  camera.sendFrame();
  const stats = source.stats();
  assert.equal(stats.video!.packetsLost, 1, 'the first packet of the pair looked lost');
  assert.equal(stats.video!.packetsLate, 1, 'and the second then came too late');
  await source.close();
});

test('cold start mid-GOP: video starts at the first keyframe; time to first frame is measured', async () => {
  const { time, camera, source } = setup();
  camera.connectDelayMs = 300;
  camera.seekBeforeKeyframe(4);
  const sink = new RecordingSink();
  source.subscribe(sink);
  await time.advance(300);
  assert.equal(source.state.state, 'live');
  await camera.play(4);
  assert.equal(sink.video().length, 0, 'P-frames before the first keyframe are not delivered');
  assert.ok(sink.audio().length > 0, 'audio flows meanwhile');
  await camera.play(1);
  assert.equal(sink.video().length, 1);
  assert.equal(sink.video()[0]!.keyframe, true);
  assert.equal(source.stats().timeToFirstFrameMs, 300 + 4 * 40);
  await source.close();
});

test('camera reboot: reconnect with backoff; the subscriber stays attached and the timeline continues', async () => {
  const { time, camera, source } = setup({ backoff: { initialMs: 1000, maxMs: 30_000, jitter: 0 } });
  const sink = new RecordingSink();
  const subscription = source.subscribe(sink);
  await flush();
  await camera.play(12);
  const before = sink.video().length;
  const lastBefore = sink.video().at(-1)!;
  camera.drop();
  assert.equal(source.state.state, 'retrying');
  assert.equal(source.state.retryInMs, 1000);
  assert.match(source.state.lastError ?? '', /connection reset/);
  camera.reboot();
  await time.advance(1000);
  assert.equal(camera.attempts, 2);
  assert.equal(source.state.state, 'live');
  await camera.play(15);
  assert.equal(subscription.active, true);
  const video = sink.video();
  assert.ok(video.length > before);
  assertContinuous(video);
  assertContinuous(sink.audio());
  const firstAfter = video[before]!;
  assert.equal(firstAfter.keyframe, true);
  const gap = ((firstAfter.timestamp - lastBefore.timestamp) | 0) / 90;
  assert.ok(gap >= 1000 && gap <= 1100, `output timestamps jump by the wall-clock gap (${gap} ms)`);
  assert.equal(source.stats().reconnects, 1);
  assert.ok(sink.states.some((s) => s.state === 'retrying'));
  await source.close();
});

test('camera reboot with a probe: reconnects on the first probe that reaches the camera, not when the backoff ends', async () => {
  const time = new FakeTime();
  const camera = new ScriptedCamera(time, accessUnits);
  let up = true;
  let probes = 0;
  const upstream = Object.assign((handlers: Parameters<typeof camera.factory>[0], signal: AbortSignal) => camera.factory(handlers, signal), {
    probe: () => {
      probes++;
      return Promise.resolve(up);
    },
  });
  const refused = (): Error => Object.assign(new Error('connection refused'), { code: 'refused' });
  const source = new Source({ id: 'cam1', upstream, now: time.clock, timers: time, random: () => 0.5, backoff: { initialMs: 1000, maxMs: 30_000, jitter: 0 } });
  const sink = new RecordingSink();
  source.subscribe(sink);
  await flush();
  await camera.play(12);
  // The camera goes down for 3 s: the backoff alone would try at 1, 3 and 7 s.
  up = false;
  camera.script.push({ kind: 'reject', error: refused() }, { kind: 'reject', error: refused() }); // the attempts at 1 and 3 s
  camera.drop();
  const downAt = time.now;
  await time.advance(3_000);
  assert.equal(source.state.state, 'retrying');
  const attemptsWhileDown = camera.attempts;
  up = true;
  camera.reboot();
  await time.advance(500);
  assert.equal(source.state.state, 'live', `live ${time.now - downAt} ms after the drop (probes: ${probes})`);
  assert.equal(camera.attempts, attemptsWhileDown + 1, 'one log-in when it is back');
  await camera.play(12);
  const probesWhenLive = probes;
  await time.advance(2_000); // less than the 5 s stall timeout
  assert.equal(source.state.state, 'live');
  assert.equal(probes, probesWhenLive, 'no probing while live');
  await source.close();
});

test('refused credentials are not probed past: the slow credential schedule stands', async () => {
  const time = new FakeTime();
  const camera = new ScriptedCamera(time, accessUnits);
  let probes = 0;
  const upstream = Object.assign((handlers: Parameters<typeof camera.factory>[0], signal: AbortSignal) => camera.factory(handlers, signal), {
    probe: () => {
      probes++;
      return Promise.resolve(probes > 2);
    },
  });
  camera.script.push({ kind: 'reject', error: Object.assign(new Error('401 Unauthorized'), { code: 'auth' }) });
  const source = new Source({ id: 'cam1', upstream, now: time.clock, timers: time, random: () => 0.5, backoff: { jitter: 0 } });
  source.subscribe(new RecordingSink());
  await time.advance(20_000);
  assert.equal(probes, 0);
  assert.equal(camera.attempts, 1, 'still waiting out the 30 s credential delay');
  await source.close();
});

test('sequence numbers and timestamps also continue across an SSRC change inside one session', async () => {
  const { camera, source } = setup();
  const sink = new RecordingSink();
  source.subscribe(sink);
  await flush();
  await camera.play(12);
  camera.reboot();
  await camera.play(12);
  assertContinuous(sink.video());
  assertContinuous(sink.audio());
  assert.equal(camera.attempts, 1);
  await source.close();
});

test('backoff doubles to the cap, with jitter, and a failing camera does not hot-loop', async () => {
  const { time, camera, source } = setup({ backoff: { initialMs: 1000, maxMs: 8000, jitter: 0.2 }, random: () => 0.99 });
  for (let i = 0; i < 100; i++) camera.script.push({ kind: 'reject', error: new Error('401 Unauthorized (camera Front door)') });
  source.subscribe(new RecordingSink());
  await flush();
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    assert.equal(source.state.state, 'retrying');
    delays.push(source.state.retryInMs!);
    await time.advance(source.state.retryInMs!);
  }
  // base 1000, 2000, 4000, 8000 (cap); jitter 0.99 -> x1.196, never above the cap
  assert.deepEqual(delays, [1196, 2392, 4784, 8000, 8000, 8000]);
  const attemptsBefore = camera.attempts;
  await time.advance(60_000);
  assert.ok(camera.attempts - attemptsBefore <= 8, `about one attempt per 8 s (${camera.attempts - attemptsBefore})`);
  assert.match(source.state.lastError ?? '', /401/);
  await source.close();
});

test('refused credentials retry on the slow schedule (camera account lock-outs); other errors stay quick', async () => {
  const { time, camera, source } = setup({ backoff: { initialMs: 1000, maxMs: 8000, jitter: 0 } });
  const refused = (code: string) => Object.assign(new Error(`401 Unauthorized (${code})`), { code });
  camera.script.push(
    { kind: 'reject', error: refused('auth') },
    { kind: 'reject', error: refused('auth') },
    { kind: 'reject', error: refused('forbidden') },
    { kind: 'reject', error: Object.assign(new Error('connection refused'), { code: 'refused' }) },
  );
  source.subscribe(new RecordingSink());
  await flush();
  const delays: number[] = [];
  for (let i = 0; i < 4; i++) {
    assert.equal(source.state.state, 'retrying');
    delays.push(source.state.retryInMs!);
    await time.advance(source.state.retryInMs!);
  }
  // 30 s, 60 s, 120 s for the credentials; then a network error is back on the quick cap (8 s).
  assert.deepEqual(delays, [30_000, 60_000, 120_000, 8000]);
  assert.equal(camera.attempts, 5, 'five attempts in 218 s (the last one connects), not dozens');
  await source.close();
});

test('nobody watching: the upstream holds packets; a subscriber gets them first, with their arrival times, and an instant start', async () => {
  const { time, camera, source } = setup({ alwaysOn: true, stallTimeoutMs: 1000 });
  camera.supportsHold = true;
  await flush();
  assert.equal(source.state.state, 'live');
  assert.deepEqual(camera.holdCalls, [250], 'live with nobody watching: hold, delivered every 250 ms');
  camera.seekBeforeKeyframe(3);
  const startedAt = time.clock();
  await camera.play(26); // 1.04 s, past the stall timeout: held packets are not silence
  assert.equal(source.state.state, 'live', 'the stall check took what was held before judging');
  assert.equal(camera.attempts, 1);
  const held = camera.held.length;
  await camera.play(5);
  assert.ok(camera.held.length > 0 && camera.held.length >= held - 20, `packets wait in the upstream (${camera.held.length})`);

  const sink = new RecordingSink();
  const subscription = source.subscribe(sink);
  assert.deepEqual(camera.holdCalls.slice(1), [0], 'a subscriber ends the hold');
  assert.equal(camera.held.length, 0, 'what was held went on before the replay');
  const video = sink.video();
  // 31 frames from 3 before a keyframe, a keyframe every 10: the GOP since the last one is 8 frames.
  assert.equal(video.length, 8, 'the GOP so far is replayed at once');
  assert.equal(video[0]!.keyframe, true);
  assertContinuous(video);
  // Each frame carries its own arrival time, 40 ms apart, not the moment the hold ended.
  const arrivals = video.map((f) => f.receivedAt);
  assert.ok(arrivals.every((at, i) => i === 0 || at - arrivals[i - 1]! === 40), `arrivals ${arrivals.slice(0, 5).join(', ')}...`);
  assert.ok(arrivals.at(-1)! < time.clock() && arrivals[0]! >= startedAt);

  await camera.play(3);
  assert.equal(camera.held.length, 0, 'while watched, each packet goes on at once');
  assert.equal(sink.video().length, video.length + 3);
  subscription.unsubscribe();
  assert.deepEqual(camera.holdCalls.slice(2), [250], 'the last subscriber gone: hold again');
  await camera.play(3);
  assert.ok(camera.held.length > 0);
  const framesBefore = source.stats().video?.framesOut ?? 0;
  assert.equal(camera.held.length, 0, 'stats take what was held first, so the counters are current');
  assert.ok(framesBefore > video.length + 3);
  await source.close();
});

test('a silent camera (stall) and a hanging connect both lead to a retry', async () => {
  const { time, camera, source } = setup({ stallTimeoutMs: 3000, connectTimeoutMs: 5000, backoff: { jitter: 0 } });
  source.subscribe(new RecordingSink());
  await flush();
  await camera.play(5); // the last packet came 40 ms ago
  await time.advance(2959);
  assert.equal(source.state.state, 'live');
  await time.advance(1);
  assert.equal(source.state.state, 'retrying');
  assert.match(source.state.lastError ?? '', /no video/);
  camera.script.push({ kind: 'hang' });
  await time.advance(1000);
  assert.equal(source.state.state, 'connecting');
  await time.advance(5000);
  assert.equal(source.state.state, 'retrying');
  assert.match(source.state.lastError ?? '', /timed out/);
  assert.equal(camera.signals.at(-1)!.aborted, true, 'the hanging attempt was aborted');
  await time.advance(2000);
  assert.equal(source.state.state, 'live');
  await source.close();
});

test('video that dies while audio goes on counts as a stall', async () => {
  const { time, camera, source } = setup({ stallTimeoutMs: 3000 });
  source.subscribe(new RecordingSink());
  await flush();
  await camera.play(5);
  for (let i = 0; i < 80; i++) { // 3.2 s of audio only
    camera.handlers?.onRtp(1, Buffer.from([0x80, 0, 0, i, 0, 0, 0, i, 0, 0, 0x20, 0, 0xff, 0xff]));
    await time.advance(40);
  }
  assert.equal(source.state.state, 'retrying');
  assert.match(source.state.lastError ?? '', /no video/);
  await source.close();
});

test('a slow subscriber is cut back to the next keyframe; a fast one loses nothing; memory stays bounded', async () => {
  const { camera, source } = setup();
  const fast = new RecordingSink();
  const slow = new QueuedSink({ maxFrames: 8, maxBytes: 10 * 1024 * 1024 });
  source.subscribe(fast);
  const slowSubscription = source.subscribe(slow, { kinds: ['video'] });
  await flush();
  await camera.play(45);
  assert.equal(fast.video().length, 45);
  assertContinuous(fast.video());
  assert.ok(slow.length <= 8, 'the slow queue never grows beyond its bound');
  const stats = slowSubscription.stats();
  assert.ok(stats.dropsToKeyframe >= 1);
  assert.ok(stats.dropped > 0);
  assert.equal(stats.delivered, 8);
  // The reader catches up: what it gets next starts at a keyframe, never mid-GOP.
  while (slow.tryRead()) { /* drain */ }
  await camera.play(10);
  const resumed: MediaFrame[] = [];
  for (let f = slow.tryRead(); f; f = slow.tryRead()) resumed.push(f);
  assert.ok(resumed.length > 0);
  assert.equal(resumed[0]!.keyframe, true);
  await source.close();
});

test('requestKeyframe replays the cached GOP video to that sink only, rate-limited', async () => {
  const { time, camera, source } = setup({ keyframeRequestIntervalMs: 1000 });
  const a = new RecordingSink();
  const b = new RecordingSink();
  source.subscribe(a);
  source.subscribe(b);
  await flush();
  await camera.play(13);
  const aBefore = a.frames.length;
  const bBefore = b.frames.length;
  assert.equal(source.requestKeyframe(a), true);
  const replay = a.frames.slice(aBefore);
  assert.equal(replay.length, 3, 'frames 10..12, video only');
  assert.equal(replay[0]!.keyframe, true);
  assert.ok(replay.every((f) => f.kind === 'video'));
  assert.equal(b.frames.length, bBefore);
  assert.equal(source.requestKeyframe(a), false, 'rate-limited');
  await time.advance(1000);
  assert.equal(source.requestKeyframe(a), true);
  assert.equal(source.requestKeyframe(new RecordingSink()), false, 'unknown sink');
  await source.close();
});

test('hostile RTP never crashes the Source; good packets still get through', async () => {
  const { camera, source } = setup();
  const sink = new RecordingSink();
  source.subscribe(sink);
  await flush();
  let seed = 42;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let frame = 0; frame < 30; frame++) {
    camera.sendFrame();
    const handlers = camera.handlers!;
    for (let i = 0; i < 50; i++) {
      const garbage = Buffer.alloc(Math.floor(random() * 1500));
      for (let j = 0; j < garbage.length; j++) garbage[j] = Math.floor(random() * 256);
      if (garbage.length > 12 && random() < 0.5) {
        garbage[0] = 0x80; // valid RTP header, payload type of the video track, hostile payload
        garbage[1] = 96 | (random() < 0.3 ? 0x80 : 0);
        garbage.writeUInt32BE(camera.ssrc, 8);
      }
      handlers.onRtp(Math.floor(random() * 3), garbage); // index 2 is no track
    }
    handlers.onRtp(7, Buffer.alloc(20));
    handlers.onRtp(-1, Buffer.alloc(0));
  }
  assert.ok(sink.video().some((f) => f.keyframe), 'keyframes still reach the subscriber');
  assert.ok(source.stats().video!.packetsMalformed > 0);
  assert.equal(source.state.state, 'live');
  await source.close();
});

test("stats: the bitrate is 0 (unknown) until a second of the camera's stream is in, not its first keyframe's burst", async () => {
  const { camera, source } = setup();
  source.subscribe(new RecordingSink());
  await flush();
  await camera.play(3); // 0.12 s: the keyframe and two frames after it
  assert.equal(source.stats().bitrateBps, 0);
  await camera.play(25); // past 1 s
  const known = source.stats().bitrateBps;
  assert.ok(known > 0, `${known} bit/s after 1.12 s`);
});

test('stats: resolution, profile, measured fps and bitrate, loss from sequence gaps', async () => {
  const { camera, source } = setup();
  source.subscribe(new RecordingSink());
  await flush();
  camera.dropEvery = 25;
  await camera.play(50);
  const stats = source.stats();
  assert.equal(stats.codec, 'H264');
  assert.deepEqual([stats.width, stats.height], [320, 240]);
  assert.equal(stats.profile, 'Constrained Baseline');
  assert.equal(stats.declaredFps, 25);
  assert.ok(stats.fps! >= 23 && stats.fps! <= 27, `fps ${stats.fps}`);
  assert.ok(stats.bitrateBps > 0);
  assert.ok(stats.packetsLost > 0);
  assert.equal(stats.packetsLost, stats.video!.packetsLost);
  assert.equal(stats.keyframeIntervalMs, 400);
  assert.equal(stats.subscribers, 1);
  assert.equal(stats.audio?.codec, 'PCMU');
  assert.ok(stats.video!.framesDamaged > 0);
  await source.close();
});

test('tracks: published on connect, updated when in-band parameter sets arrive', async () => {
  const { camera, source } = setup();
  camera.withSprop = false;
  const events: Array<ReadonlyArray<TrackDescription>> = [];
  source.on('tracks', (tracks) => events.push(tracks));
  const sink = new RecordingSink();
  source.subscribe(sink);
  await flush();
  assert.equal(events.length, 1);
  assert.equal(events[0]![0]!.parameterSets, undefined);
  await camera.play(2);
  assert.equal(events.length, 2);
  assert.deepEqual(events[1]![0]!.parameterSets!.map((p) => p[0]! & 0x1f), [7, 8]);
  assert.equal(sink.tracks.length, 2);
  assert.deepEqual(source.tracks, events[1]);
  await source.close();
});

test('close() stops for good: sinks hear "stopped", queued readers end, late sessions are closed', async () => {
  const { time, camera, source } = setup();
  camera.connectDelayMs = 500;
  const queue = new QueuedSink();
  source.subscribe(queue);
  await flush();
  assert.equal(source.state.state, 'connecting');
  const ended = (async () => {
    let count = 0;
    for await (const _frame of queue) count++;
    return count;
  })();
  await source.close();
  assert.equal(source.state.state, 'stopped');
  assert.equal(await ended, 0);
  await time.advance(500); // the attempt resolves after close: its session must be closed, not leaked
  assert.equal(camera.closes, 1);
  assert.throws(() => source.subscribe(new RecordingSink()), /closed/);
});

test('a sink that throws is treated as congested and does not affect the others', async () => {
  const { camera, source } = setup();
  const good = new RecordingSink();
  const bad: FrameSink = {
    write: () => {
      throw new Error('boom');
    },
  };
  source.subscribe(bad);
  source.subscribe(good);
  await flush();
  await camera.play(20);
  assert.equal(good.video().length, 20);
  await source.close();
});

test('an upstream that reports close before it resolved is retried once, not twice', async () => {
  const { time, camera, source } = setup({ backoff: { jitter: 0 } });
  const original = camera.factory;
  let first = true;
  const factory: SourceOptions['upstream'] = async (handlers, signal) => {
    if (first) {
      first = false;
      handlers.onClose(new Error('RTSP PLAY failed'));
    }
    return original(handlers, signal);
  };
  const { source: s2 } = { source: new Source({ id: 'c', upstream: factory, now: time.clock, timers: time, random: () => 0.5, backoff: { jitter: 0 } }) };
  s2.subscribe(new RecordingSink());
  await flush();
  assert.equal(s2.state.state, 'retrying');
  assert.equal(camera.closes, 1, 'the session that resolved after the failure was closed');
  await time.advance(1000);
  assert.equal(s2.state.state, 'live');
  assert.equal(camera.attempts, 2);
  await s2.close();
  await source.close();
});

test('the same refusal on every retry is one warning, not one per retry; a new reason or a new loss warns again', async () => {
  const warnings: string[] = [];
  const logger = { info: () => undefined, debug: () => undefined, error: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m) };
  const { time, camera, source } = setup({ logger, backoff: { initialMs: 1000, maxMs: 4000, jitter: 0 } });
  const wrongPassword = new Error('Camera "Front door" (rtsp://admin:***@cam/): DESCRIBE answered 401: wrong user name or password');
  for (let i = 0; i < 5; i++) camera.script.push({ kind: 'reject', error: wrongPassword });
  camera.script.push({ kind: 'reject', error: new Error('connection refused') });
  source.subscribe(new RecordingSink());
  await flush();
  for (let i = 0; i < 5; i++) await time.advance(source.state.retryInMs!);
  assert.equal(camera.attempts, 6);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings[0]!, /could not connect: .*wrong user name or password; retrying in 1\.0 s/);
  assert.match(warnings[1]!, /could not connect: connection refused/);
  await time.advance(source.state.retryInMs!);
  assert.equal(source.state.state, 'live');
  await camera.play(3);
  camera.drop();
  assert.equal(warnings.length, 3);
  assert.match(warnings[2]!, /lost the camera: connection reset by camera/);
  await source.close();
});

test('a stray packet far outside the sequence, or from another SSRC, is dropped and counted, not taken for a camera restart', async () => {
  const { camera, source } = setup();
  const sink = new RecordingSink();
  source.subscribe(sink, { kinds: ['video'] });
  await flush();
  await camera.play(12);
  const slice = Buffer.from([0x41, 0x9a, 0x00, 0x11]); // a plausible P-slice NAL
  const stray = (sequenceNumber: number, ssrc: number): Buffer =>
    serializeRtp({ marker: true, payloadType: 96, sequenceNumber, timestamp: camera.timestamp + 900_000, ssrc }, slice);
  camera.handlers!.onRtp(0, stray((camera.sequence + 20_000) & 0xffff, camera.ssrc));
  await camera.play(3);
  camera.handlers!.onRtp(0, stray(camera.sequence, 0xdead));
  await camera.play(5);
  // Before: each stray reset the stream to "wait for a keyframe" and frames 12..19 were lost.
  assert.equal(sink.video().length, 20);
  assertContinuous(sink.video());
  const video = source.stats().video!;
  assert.equal(video.packetsMalformed, 2);
  assert.equal(video.packetsLost, 0);
  assert.equal(video.framesDamaged, 0);

  // A real renumbering (two packets in a row confirm it) still resyncs, and its first packet, held
  // until confirmed, is not lost: the keyframe it starts arrives whole.
  camera.seekBeforeKeyframe(0);
  camera.frameIndex += 10; // the next frame is a keyframe (every 10th)
  camera.sequence = (camera.sequence + 30_000) & 0xffff;
  await camera.play(3);
  const after = sink.video().slice(20);
  assert.equal(after.length, 3);
  assert.equal(after[0]!.keyframe, true);
  assert.equal(source.stats().video!.framesDamaged, 0, 'the held first packet was delivered');
  assertContinuous(sink.video());
  await source.close();
});
