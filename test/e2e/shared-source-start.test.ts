// Issue 3, "Done when: Instant start", end to end. The camera sends a keyframe every 4 s and ignores
// keyframe requests (like many real ones), so without a GOP cache a new viewer would wait up to 4 s
// for a picture. The Source is warm (alwaysOn); subscribers join at several points of the GOP and
// must get a decodable IDR (SPS + PPS + IDR) in under 100 ms. ffmpeg -xerror judges decodability.
// The loopback re-stream, which every ffmpeg of the plugin reads, starts its clients there too.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueuedSink } from '../../src/media/queued-sink.js';
import { Source } from '../../src/media/source.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { runFfmpeg } from '../helpers/ffprobe.js';
import { assertContinuous, assertDecodes, assertKeyframeWithParameterSets, RecordingSink, sleep, waitFor } from './shared-source-helpers.js';

const FPS = 25;

/** How long ago the cached keyframe arrived from the camera (a throw-away subscriber reads it). */
function cachedKeyframeAgeMs(source: Source): number {
  const probe = new RecordingSink();
  const subscription = source.subscribe(probe, { kinds: ['video'] });
  subscription.unsubscribe();
  const first = probe.of('video')[0];
  return first ? performance.now() - first.frame.receivedAt : 0;
}
const KEYFRAME_INTERVAL_S = 4;

describe('e2e: shared source, instant start from the GOP cache (keyframes every 4 s)', { timeout: 90_000 }, () => {
  let camera: FakeCamera;
  let source: Source;
  let server: RestreamServer;

  before(async () => {
    camera = await FakeCamera.start({
      width: 640, height: 360, fps: FPS, audio: 'pcmu',
      keyframeIntervalFrames: KEYFRAME_INTERVAL_S * FPS,
      keyframeOnPlay: false, // no IDR on PLAY, keyframe requests ignored: only the cache can help
    });
    source = new Source({
      id: 'garden',
      name: 'Garden',
      upstream: rtspUpstream({ url: camera.url, cameraName: 'Garden', logger: silentLogger }),
      alwaysOn: true, // warm: the GOP cache fills without any subscriber
    });
    server = await createRestreamServer({ getSource: (id) => (id === source.id ? source : undefined) });
  });
  after(async () => {
    await server?.close();
    await source?.close();
    await camera?.close();
  });

  it('e2e: a new subscriber gets a decodable IDR with SPS/PPS in < 100 ms wherever it joins the 4 s GOP', async () => {
    // Warm: live, and a full GOP seen so the camera's keyframe interval is measured.
    await waitFor(() => source.stats().keyframeIntervalMs !== undefined, 15_000, 'two keyframes from the camera');
    const interval = source.stats().keyframeIntervalMs!;
    assert.ok(Math.abs(interval - KEYFRAME_INTERVAL_S * 1000) < 500, `camera keyframe interval ${interval.toFixed(0)} ms`);

    // Without the cache: a subscriber that asks for no replay waits for the camera's next keyframe.
    const uncached = new RecordingSink();
    const uncachedStart = performance.now();
    const uncachedSubscription = source.subscribe(uncached, { kinds: ['video'], fromKeyframe: false });

    const joins: Array<{ gopFrames: number; syncMs: number; queuedMs: number; decoded: number }> = [];
    // Join at different points of the GOP: right after a keyframe up to nearly 4 s into it.
    const phasesMs = [100, 1000, 2000, 3000, 3700];
    for (const [i, phaseMs] of phasesMs.entries()) {
      await waitFor(() => {
        const age = cachedKeyframeAgeMs(source);
        return age >= phaseMs && age < phaseMs + 250;
      }, 10_000, `the cached keyframe ${phaseMs} ms old`);

      // A FrameSink (how WebRTC viewers and the re-stream attach): the cached GOP arrives inside subscribe().
      const sink = new RecordingSink();
      const t0 = performance.now();
      const subscription = source.subscribe(sink);
      const first = sink.of('video')[0];
      assert.ok(first, 'the IDR is delivered during subscribe()');
      const syncMs = first.at - t0;
      const gop = sink.of('video').map((r) => r.frame);

      // A QueuedSink read asynchronously (how snapshots and in-process consumers read).
      const queue = new QueuedSink();
      const t1 = performance.now();
      const queuedSubscription = source.subscribe(queue, { kinds: ['video'] });
      const queuedFirst = await queue.read(AbortSignal.timeout(5000));
      const queuedMs = performance.now() - t1;

      assertKeyframeWithParameterSets(first.frame, `join ${i}, FrameSink`);
      assertKeyframeWithParameterSets(queuedFirst, `join ${i}, QueuedSink`);
      assert.ok(syncMs < 100, `first IDR after ${syncMs.toFixed(2)} ms`);
      assert.ok(queuedMs < 100, `first IDR read after ${queuedMs.toFixed(2)} ms`);

      // Let live frames follow the replay, then decode replay + live from a fresh decoder.
      await sleep(300);
      const delivered = sink.of('video').map((r) => r.frame);
      assertContinuous(delivered, `join ${i}`);
      const decoded = await assertDecodes(delivered, `join ${i}`);
      joins.push({ gopFrames: gop.length, syncMs, queuedMs, decoded });
      subscription.unsubscribe();
      queuedSubscription.unsubscribe();
    }

    await waitFor(() => uncached.count('video') > 0, 5000, 'the next live keyframe');
    const uncachedWaitMs = uncached.of('video')[0]!.at - uncachedStart;
    uncachedSubscription.unsubscribe();
    assert.ok(Math.max(...joins.map((j) => j.gopFrames)) >= 85, `one join came late in the GOP: ${joins.map((j) => j.gopFrames).join(', ')} frames`);

    for (const [i, j] of joins.entries()) {
      console.log(`# join ${i}: GOP of ${j.gopFrames} frames replayed; first IDR after ${(j.syncMs * 1000).toFixed(0)} µs (FrameSink), ${(j.queuedMs * 1000).toFixed(0)} µs (QueuedSink.read); ffmpeg decoded ${j.decoded} frames`);
    }
    console.log(`# without the cache (fromKeyframe: false) the first keyframe came after ${uncachedWaitMs.toFixed(0)} ms`);
  });

  it('e2e: an ffmpeg reading the loopback re-stream starts at the cached keyframe, not the camera\'s next one', async () => {
    // A decoder needs a keyframe: when ffmpeg decoded its 10 frames before the camera sent its next
    // one (the Source's keyframe counter did not move), they started from the cached keyframe. A
    // run slow enough to straddle the camera's next keyframe proves nothing and is repeated; how
    // fast it is belongs to the benchmarks.
    const keyframes = (): number => source.stats().video?.keyframes ?? 0;
    const runs: string[] = [];
    for (let attempt = 1; ; attempt++) {
      // Join late in the GOP so the camera's next keyframe is seconds away.
      await waitFor(() => cachedKeyframeAgeMs(source) >= 1000 && cachedKeyframeAgeMs(source) < 2000, 10_000, 'a cached keyframe 1-2 s old');
      const cacheAgeS = cachedKeyframeAgeMs(source) / 1000;
      const before = keyframes();
      const started = performance.now();
      const r = await runFfmpeg([
        '-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-rtsp_transport', 'tcp',
        '-i', server.url(source.id), '-map', '0:v:0', '-frames:v', '10', '-f', 'null', '-',
      ], 20_000);
      const tookMs = performance.now() - started;
      const frames = Number([...r.stdout.matchAll(/^frame=(\d+)$/gm)].at(-1)?.[1] ?? 0);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(frames, 10);
      assert.doesNotMatch(r.stderr, /non-existing PPS|no frame!|decode_slice_header/, r.stderr);
      const straddled = keyframes() !== before;
      runs.push(`joined ~${cacheAgeS.toFixed(1)} s into the GOP, 10 frames in ${tookMs.toFixed(0)} ms${straddled ? ' (a camera keyframe came meanwhile)' : ''}`);
      if (!straddled) break;
      assert.ok(attempt < 5, `every run straddled a camera keyframe: ${runs.join('; ')}`);
    }
    console.log(`# re-stream client: ${runs.join('; ')} (camera keyframes every ${KEYFRAME_INTERVAL_S} s)`);
  });
});
