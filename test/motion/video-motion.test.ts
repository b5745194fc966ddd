/**
 * The motion detector (src/motion/video-motion.ts) with real parts: a GStreamer camera whose test
 * pattern scrolls or stands still → the RTSP client → the camera's Source → the loopback re-stream
 * → the detector's ffmpeg → pictures compared in the plugin. And what it does when the re-stream
 * cannot be read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runningFfmpegPids } from '../../src/ffmpeg/ffmpeg-process.js';
import { Source } from '../../src/media/source.js';
import { VideoMotionDetector } from '../../src/motion/video-motion.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { recordingLogger } from '../helpers/onvif-log.js';

async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('motion from the picture (real camera, re-stream and ffmpeg)', { timeout: 120_000 }, () => {
  let camera: FakeCamera;
  let source: Source;
  let restream: RestreamServer;

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'none' });
    // An empty room to begin with.
    await camera.setMoving(false);
    source = new Source({ id: 'cam', name: 'Cam', upstream: rtspUpstream({ url: camera.url, cameraName: 'Cam', logger: silentLogger }), idleTimeoutMs: 300 });
    restream = await createRestreamServer({ getSource: (id) => (id === 'cam' ? source : undefined) });
  });
  after(async () => {
    await restream?.close();
    await source?.close();
    await camera?.close();
  });

  it('a still scene gives no motion; the scene moving gives pulses within seconds; still again, they stop; one camera session', async () => {
    const pulses: number[] = [];
    const log = recordingLogger();
    const detector = new VideoMotionDetector({
      ffmpegPath: 'ffmpeg',
      inputUrl: () => restream.issueUrl('cam'),
      sensitivity: 50,
      onMotion: () => pulses.push(Date.now()),
      log,
    });
    detector.start();
    try {
      // 5 s of a still scene (10 pictures compared): nothing.
      await until('10 pictures', () => detector.pictures >= 11);
      assert.deepEqual(pulses, [], 'no motion in a still scene');
      assert.equal(await camera.sessionCount(), 1);
      assert.equal(await camera.setMoving(true), true);
      const movedAt = Date.now();
      await until('a motion pulse', () => pulses.length > 0, 15_000);
      const delay = pulses[0]! - movedAt;
      console.log(`# motion seen ${delay} ms after the scene started moving`);
      await until('a few more pulses', () => pulses.length >= 4, 15_000);
      await camera.setMoving(false);
      // Allow for the pictures already in the pipe, then none for 3 s.
      await sleep(2000);
      const settled = pulses.length;
      const at = detector.pictures;
      await until('6 more pictures', () => detector.pictures >= at + 6);
      assert.equal(pulses.length, settled, 'no motion once the scene is still again');
      assert.equal(await camera.sessionCount(), 1, 'the detector reads the re-stream: still one camera session');
      assert.ok(!log.lines.some((l) => l.startsWith('warn')), log.lines.join('\n'));
    } finally {
      await detector.stop();
    }
    assert.equal(runningFfmpegPids().length, 0, 'stop ends ffmpeg');
  });

  it('a re-stream it cannot read: says why once at warn, then retries quietly with a back-off, and stop ends it', async () => {
    const log = recordingLogger();
    let starts = 0;
    const detector = new VideoMotionDetector({
      ffmpegPath: 'ffmpeg',
      inputUrl: () => {
        starts++;
        return 'rtsp://127.0.0.1:1/nothing/cam';
      },
      sensitivity: 50,
      onMotion: () => assert.fail('no picture, no motion'),
      log,
      firstRetryMs: 100,
    });
    detector.start();
    await until('three starts', () => starts >= 3, 20_000);
    await detector.stop();
    const warnings = log.lines.filter((l) => l.startsWith('warn'));
    assert.equal(warnings.length, 1, log.lines.join('\n'));
    assert.match(warnings[0]!, /^warn Motion from the picture: the detector stopped \(.*\); starting it again in 0 s$/);
    assert.ok(log.lines.some((l) => /^debug Motion from the picture: the detector stopped/.test(l)));
    const after = starts;
    await sleep(500);
    assert.equal(starts, after, 'nothing after stop');
    assert.equal(runningFfmpegPids().length, 0);
  });
});
