// The reason re-broadcasting exists: however many consumers there are, the camera serves exactly one
// RTSP session. Real GStreamer camera → real RTSP client → Source → 5 in-process subscribers and
// 2 real ffmpeg processes reading the loopback re-stream, counted on the camera side.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QueuedSink } from '../../src/media/queued-sink.js';
import { Source } from '../../src/media/source.js';
import type { MediaFrame } from '../../src/media/types.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { runFfmpeg } from '../helpers/ffprobe.js';

/** Reads a QueuedSink until stopped; counts video frames. */
function drain(sink: QueuedSink, signal: AbortSignal): { videoFrames: () => number; done: Promise<void> } {
  let video = 0;
  const done = (async () => {
    for (;;) {
      const frame: MediaFrame | undefined = await sink.read(signal).catch(() => undefined);
      if (!frame) return;
      if (frame.kind === 'video') video++;
    }
  })();
  return { videoFrames: () => video, done };
}

describe('e2e: one camera session for every consumer', { timeout: 120_000 }, () => {
  let camera: FakeCamera;
  let source: Source;
  let server: RestreamServer;

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'pcmu' });
    source = new Source({
      id: 'front-door',
      upstream: rtspUpstream({ url: camera.url, cameraName: 'front door', logger: silentLogger }),
      idleTimeoutMs: 3000,
    });
    server = await createRestreamServer({ getSource: (id) => (id === source.id ? source : undefined) });
  });

  after(async () => {
    await server?.close();
    await source?.close();
    await camera?.close();
  });

  it('5 in-process subscribers + 2 ffmpeg re-stream clients = exactly 1 RTSP session at the camera', async () => {
    const stop = new AbortController();
    const readers = Array.from({ length: 5 }, () => {
      const sink = new QueuedSink();
      const subscription = source.subscribe(sink);
      return { subscription, ...drain(sink, stop.signal) };
    });

    const url = server.url(source.id);
    const ffmpeg = (transport: 'tcp' | 'udp') => runFfmpeg([
      '-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1',
      '-rtsp_transport', transport, '-i', url, '-map', '0:v:0', '-frames:v', '60', '-f', 'null', '-',
    ], 60_000);
    const runs = Promise.all([ffmpeg('tcp'), ffmpeg('udp')]);

    // Sample the camera's session count while everything runs.
    const counts: number[] = [];
    let finished = false;
    void runs.finally(() => (finished = true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    while (!finished) {
      counts.push(await camera.sessionCount());
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const results = await runs;

    for (const [i, r] of results.entries()) {
      const frames = Number([...r.stdout.matchAll(/^frame=(\d+)$/gm)].at(-1)?.[1] ?? 0);
      assert.equal(r.code, 0, `ffmpeg ${i}: ${r.stderr}`);
      assert.ok(frames >= 50, `ffmpeg ${i} decoded ${frames} frames: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /non-existing PPS|no frame!|decode_slice_header/, `ffmpeg ${i}: ${r.stderr}`);
    }
    assert.ok(counts.length >= 3, 'sampled during the run');
    assert.deepEqual([...new Set(counts)], [1], `camera sessions seen: ${counts.join(',')}`);
    assert.equal(await camera.sessionCount(), 1);
    const requests = await camera.requests();
    assert.equal(requests.filter((r) => r.method === 'PLAY').length, 1, 'the camera was played once');

    for (const [i, reader] of readers.entries()) {
      assert.ok(reader.videoFrames() >= 50, `subscriber ${i} got ${reader.videoFrames()} video frames`);
      assert.equal(reader.subscription.active, true);
      reader.subscription.unsubscribe();
    }
    stop.abort();
    await Promise.all(readers.map((r) => r.done));
    console.log(`camera sessions sampled ${counts.length}x: always 1; ffmpeg clients: 2; in-process subscribers: 5`);
  });
});
