// Issue 3, "Done when: Slow subscriber", end to end over 30 s of a real camera. Next to two fast
// consumers sit three bad ones: a QueuedSink nobody ever reads, a FrameSink that refuses every frame
// after the first few, and a reader that only wakes up every 3 s. The bad ones are cut back to the
// keyframe policy (after a refusal, video resumes only at a keyframe); the fast ones lose nothing
// (no gap in their frame sequence); the process's memory stays flat.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { QueuedSink } from '../../src/media/queued-sink.js';
import { Source } from '../../src/media/source.js';
import type { FrameSink, MediaFrame } from '../../src/media/types.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { liveMemory, mib, sleep, waitFor } from './shared-source-helpers.js';

const RUN_MS = 30_000;
const FPS = 25;

/**
 * Checks the output timeline frame by frame and keeps nothing: a fast consumer whose own memory
 * must not hide a leak elsewhere. Per kind, each frame must start where the previous one ended.
 */
class ContinuityChecker {
  frames = 0;
  bytes = 0;
  readonly problems: string[] = [];
  private readonly last: Partial<Record<'video' | 'audio', MediaFrame>> = {};

  check(frame: MediaFrame): void {
    this.frames++;
    this.bytes += frame.byteLength ?? 0;
    const previous = this.last[frame.kind];
    this.last[frame.kind] = frame;
    if (!previous || this.problems.length > 10) return;
    const expected = (previous.sequenceNumber + previous.packets.length) & 0xffff;
    if (frame.sequenceNumber !== expected) this.problems.push(`${frame.kind}: sequence ${frame.sequenceNumber}, expected ${expected}`);
    if (((frame.timestamp - previous.timestamp) | 0) <= 0) this.problems.push(`${frame.kind}: timestamp did not move forward`);
  }
}

/**
 * Accepts the first `acceptFirst` frames, then refuses everything. Records what it is offered after
 * its first refused video frame (a refused audio frame does not cut video back: audio is small and
 * a viewer's audio gap heals by itself).
 */
class RefusingSink implements FrameSink {
  accepted = 0;
  offeredAfterRefusal = { video: 0, keyframes: 0, audio: 0 };
  private videoRefused = false;
  constructor(private readonly acceptFirst: number) {}

  write(frame: MediaFrame): boolean {
    if (this.accepted < this.acceptFirst) {
      this.accepted++;
      return true;
    }
    if (this.videoRefused) {
      if (frame.kind === 'audio') this.offeredAfterRefusal.audio++;
      else {
        this.offeredAfterRefusal.video++;
        if (frame.keyframe) this.offeredAfterRefusal.keyframes++;
      }
    } else if (frame.kind === 'video') {
      this.videoRefused = true;
    }
    return false;
  }
}

describe('e2e: shared source, slow subscribers for 30 s', { timeout: 90_000 }, () => {
  let camera: FakeCamera;
  let source: Source;

  before(async () => {
    // 3 Mbit/s so that 30 s of video (~11 MB) would show in the memory figures if anything kept it.
    camera = await FakeCamera.start({ width: 640, height: 360, fps: FPS, audio: 'pcmu', keyframeIntervalFrames: 2 * FPS, bitrateKbps: 3000 });
    source = new Source({ id: 'yard', name: 'Yard', upstream: rtspUpstream({ url: camera.url, cameraName: 'Yard', logger: silentLogger }) });
  });
  after(async () => {
    await source?.close();
    await camera?.close();
  });

  it('e2e: a never-read subscriber is cut back to keyframes, the others lose nothing, memory stays bounded over 30 s', async () => {
    const stop = new AbortController();

    // Fast 1: a FrameSink that checks each frame and keeps nothing.
    const direct = new ContinuityChecker();
    const directSubscription = source.subscribe({ write: (frame) => (direct.check(frame), true) });
    // Fast 2: a QueuedSink read as fast as frames come.
    const fastQueue = new QueuedSink();
    const fastSubscription = source.subscribe(fastQueue);
    const queued = new ContinuityChecker();
    const fastReader = (async () => {
      for (let f = await fastQueue.read(); f; f = await fastQueue.read()) queued.check(f);
    })();

    // Slow 1: a QueuedSink never drained (default bounds: 8 MiB, 512 frames).
    const neverRead = new QueuedSink();
    const neverReadSubscription = source.subscribe(neverRead);
    // Slow 2: refuses everything after its first 20 frames.
    const refusing = new RefusingSink(20);
    const refusingSubscription = source.subscribe(refusing);
    // Slow 3: a small queue read in bursts every 3 s; after each overflow it must resume at a keyframe.
    const bursty = new QueuedSink({ maxFrames: 32 });
    const burstySubscription = source.subscribe(bursty, { kinds: ['video'] });
    const burstyResumes: MediaFrame[] = [];
    let burstyFrames = 0;
    const burstyReader = (async () => {
      while (!stop.signal.aborted) {
        await delay(3000, undefined, { signal: stop.signal }).catch(() => undefined);
        if (stop.signal.aborted) return;
        const rejectedBefore = bursty.rejected;
        for (let f = bursty.tryRead(); f; f = bursty.tryRead()) burstyFrames++;
        // The frame that arrives after an overflow was drained is where it resumes.
        if (rejectedBefore > 0) {
          const next = await bursty.read(AbortSignal.any([stop.signal, AbortSignal.timeout(5000)]));
          if (next) {
            burstyFrames++;
            burstyResumes.push(next);
          }
        }
      }
    })();

    await waitFor(() => source.state.state === 'live' && direct.frames > 0, 15_000, 'live');
    const samples: Array<{ t: number; rss: number; heap: number; external: number; neverReadBytes: number; neverReadFrames: number }> = [];
    const started = performance.now();
    let baseline: NodeJS.MemoryUsage | undefined;
    while (performance.now() - started < RUN_MS) {
      await sleep(1000);
      const t = performance.now() - started;
      // After 8 s the never-read queue is full (512 frames at ~75 frames/s): memory should be flat from then on.
      if (!baseline && t >= 8000) baseline = await liveMemory();
      const m = process.memoryUsage();
      samples.push({ t, rss: m.rss, heap: m.heapUsed, external: m.arrayBuffers, neverReadBytes: neverRead.byteLength, neverReadFrames: neverRead.length });
    }
    const end = await liveMemory();
    const stats = source.stats();
    // Stop every subscriber at the same instant, so the fast consumers' counts compare exactly.
    const subscriptions = [directSubscription, fastSubscription, neverReadSubscription, refusingSubscription, burstySubscription];
    const directStats = directSubscription.stats();
    const fastStats = fastSubscription.stats();
    const neverStats = neverReadSubscription.stats();
    const refusingStats = refusingSubscription.stats();
    const burstyStats = burstySubscription.stats();
    for (const s of subscriptions) s.unsubscribe();
    fastQueue.close(); // the reader gets what is queued, then the end
    stop.abort();
    await Promise.all([fastReader, burstyReader]);

    // The fast ones lose nothing: continuous numbering, nothing refused or dropped, every frame the camera gave.
    assert.deepEqual(direct.problems, [], 'direct subscriber gaps');
    assert.deepEqual(queued.problems, [], 'queued subscriber gaps');
    assert.equal(directStats.dropped, 0);
    assert.equal(fastStats.dropped, 0);
    assert.equal(fastQueue.rejected, 0);
    assert.ok(direct.frames >= (RUN_MS / 1000) * FPS * 2.5, `the fast subscriber got ${direct.frames} frames in 30 s`);
    assert.equal(direct.frames, queued.frames, `both fast consumers got the same frames (${direct.frames} / ${queued.frames})`);

    // The never-read one: its queue sits at its bound and it is cut back to keyframes.
    assert.ok(samples.every((s) => s.neverReadFrames <= neverRead.maxFrames && s.neverReadBytes <= neverRead.maxBytes), 'the queue never exceeds its bounds');
    assert.equal(neverRead.length, neverRead.maxFrames, 'full, and no more');
    assert.ok(neverStats.dropsToKeyframe >= 1 && neverStats.waitingForKeyframe, JSON.stringify(neverStats));
    assert.ok(neverStats.dropped > 1000, `${neverStats.dropped} frames dropped for it`);

    // The refusing one: after its first refusal it is only offered keyframes (each refused again), and audio.
    const offered = refusing.offeredAfterRefusal;
    assert.equal(refusing.accepted, 20);
    assert.equal(offered.video, offered.keyframes, `only keyframes offered after a refusal: ${JSON.stringify(offered)}`);
    assert.ok(offered.keyframes >= 10, `${offered.keyframes} keyframes offered in 30 s (one per 2 s GOP)`);
    assert.ok(refusingStats.dropsToKeyframe >= offered.keyframes);

    // The bursty one: each time it catches up, video resumes at a keyframe, never mid-GOP.
    assert.ok(burstyResumes.length >= 5, `${burstyResumes.length} resumes`);
    assert.ok(burstyResumes.every((f) => f.keyframe), 'resumes at keyframes');
    assert.ok(burstyStats.dropsToKeyframe >= 5);

    // Memory: flat once the never-read queue is full (live data after GC), RSS bounded.
    assert.ok(baseline);
    const liveGrowth = end.heapUsed + end.arrayBuffers - (baseline.heapUsed + baseline.arrayBuffers);
    const later = samples.filter((s) => s.t >= 8000);
    const rssMax = Math.max(...later.map((s) => s.rss));
    const rssGrowth = rssMax - baseline.rss;
    const delivered = direct.bytes * ((RUN_MS - 8000) / RUN_MS);
    assert.ok(liveGrowth < 4 * 1024 * 1024, `live heap + buffers grew ${mib(liveGrowth)} while ~${mib(delivered)} of video went through`);
    assert.ok(rssGrowth < 32 * 1024 * 1024, `RSS grew ${mib(rssGrowth)} (from ${mib(baseline.rss)} to at most ${mib(rssMax)})`);

    console.log(
      `# 30 s at ${(stats.bitrateBps / 1e6).toFixed(1)} Mbit/s: fast subscribers ${direct.frames} / ${queued.frames} frames, 0 gaps, 0 drops; ` +
      `never-read queue ${neverRead.length} frames / ${mib(neverRead.byteLength)}, ${neverStats.dropped} dropped; ` +
      `refusing sink offered ${offered.keyframes} keyframes and no other video after its refusal; bursty reader read ${burstyFrames} frames, resumed ${burstyResumes.length}x at keyframes`,
    );
    console.log(
      `# memory after GC, 8 s → 30 s: heap ${mib(baseline.heapUsed)} → ${mib(end.heapUsed)}, buffers ${mib(baseline.arrayBuffers)} → ${mib(end.arrayBuffers)} ` +
      `(live growth ${mib(liveGrowth)} while ${mib(delivered)} went through); RSS ${mib(baseline.rss)} → max ${mib(rssMax)}, end ${mib(samples.at(-1)!.rss)}`,
    );
  });
});
