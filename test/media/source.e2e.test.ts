// The Source with the real RTSP client against the GStreamer fake camera: what a viewer gets from
// a real RTSP stack, including a camera reboot and parameter sets that exist only in the SDP.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Source } from '../../src/media/source.js';
import { QueuedSink } from '../../src/media/queued-sink.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import type { MediaFrame } from '../../src/media/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { runFfmpeg } from '../helpers/ffprobe.js';

const PASSWORD = 'pa:ss@word';

async function readUntil(queue: QueuedSink, done: (frame: MediaFrame, all: MediaFrame[]) => boolean, timeoutMs: number): Promise<MediaFrame[]> {
  const frames: MediaFrame[] = [];
  const signal = AbortSignal.timeout(timeoutMs);
  for (;;) {
    const frame = await queue.read(signal);
    if (!frame) throw new Error(`timed out after ${frames.length} frames`);
    frames.push(frame);
    if (done(frame, frames)) return frames;
  }
}

function assertContinuous(frames: MediaFrame[]): void {
  for (let i = 1; i < frames.length; i++) {
    const previous = frames[i - 1]!;
    assert.equal(frames[i]!.sequenceNumber, (previous.sequenceNumber + previous.packets.length) & 0xffff, `sequence continues at ${i}`);
    assert.ok(((frames[i]!.timestamp - previous.timestamp) | 0) > 0, `timestamp moves forward at ${i}`);
  }
}

describe('e2e: Source with the RTSP client and the GStreamer camera', { timeout: 120_000 }, () => {
  let camera: FakeCamera;
  let source: Source;

  before(async () => {
    camera = await FakeCamera.start({
      width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'pcmu', profile: 'main',
      auth: { method: 'digest', user: 'admin', password: PASSWORD },
      parameterSetsInBand: false, // SPS/PPS only in the SDP: the Source has to put them in front of every IDR
      keyframeOnPlay: false,
    });
    source = new Source({
      id: 'e2e',
      name: 'e2e camera',
      upstream: rtspUpstream({ url: camera.url, ...camera.credentials(), cameraName: 'e2e camera', logger: silentLogger }),
      idleTimeoutMs: 2000,
      backoff: { initialMs: 500, maxMs: 2000 },
    });
  });
  after(async () => {
    await source?.close();
    await camera?.close();
  });

  it('cold start, then a warm subscriber gets a decodable GOP at once; a reboot keeps the timeline', async () => {
    const cold = new QueuedSink();
    const coldStart = performance.now();
    const coldSubscription = source.subscribe(cold, { kinds: ['video'] });
    const first = await readUntil(cold, (f) => f.keyframe, 10_000);
    const coldMs = performance.now() - coldStart;
    assert.equal(first.length, 1, 'video starts at a keyframe');
    assert.deepEqual(first[0]!.units.slice(0, 2).map((u) => u[0]! & 0x1f), [7, 8], 'SPS+PPS from the SDP are prepended');
    const stats = source.stats();
    assert.deepEqual([stats.codec, stats.width, stats.height, stats.profile], ['H264', 640, 360, 'Main']);

    await readUntil(cold, (_f, all) => all.length >= 20, 5000);
    const warm = new QueuedSink();
    const warmStart = performance.now();
    const warmSubscription = source.subscribe(warm);
    const warmFirst = warm.tryRead();
    const warmMs = performance.now() - warmStart;
    assert.ok(warmFirst?.keyframe, 'the cached GOP starts with its keyframe, synchronously');
    console.log(`# time to first keyframe: cold ${coldMs.toFixed(0)} ms, warm ${(warmMs * 1000).toFixed(0)} µs`);

    // The replayed GOP, dumped as Annex B, decodes without errors.
    const gop: MediaFrame[] = [warmFirst];
    for (let f = warm.tryRead(); f; f = warm.tryRead()) if (f.kind === 'video') gop.push(f);
    const annexB = Buffer.concat(gop.flatMap((f) => f.units.flatMap((u) => [Buffer.from([0, 0, 0, 1]), u])));
    const file = join(tmpdir(), `source-e2e-${process.pid}.h264`);
    writeFileSync(file, annexB);
    const decoded = await runFfmpeg(['-hide_banner', '-v', 'error', '-xerror', '-f', 'h264', '-i', file, '-f', 'null', '-'], 20_000);
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.equal(decoded.stderr.trim(), '');

    // Camera reboot: new RTSP session, new SSRC and bases. Subscribers stay; output continues.
    const before = await readUntil(cold, (_f, all) => all.length >= 5, 5000);
    await camera.restart();
    const afterReboot = await readUntil(cold, (f) => f.keyframe && source.stats().reconnects >= 1, 20_000);
    await readUntil(cold, (_f, all) => all.length >= 10, 5000).then((more) => afterReboot.push(...more));
    assert.equal(coldSubscription.active, true);
    assert.equal(warmSubscription.active, true);
    assertContinuous([...before, ...afterReboot]);
    assert.ok(source.stats().reconnects >= 1);

    coldSubscription.unsubscribe();
    warmSubscription.unsubscribe();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(source.state.state, 'idle', 'stops pulling after the idle timeout');
    await camera.waitForSessionCount(0, 5000);
  });
});
