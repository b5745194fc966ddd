// Issue 3, "Done when: Reconnect", end to end. The real camera is switched off for 5 s and switched
// on again on the same port (a reboot: new RTSP session, new SSRC, new sequence and timestamp
// bases). Subscribers stay attached: they receive frames again within the backoff + 1 GOP, without
// re-subscribing, and what they receive continues the same output timeline (sequence numbers neither
// jump nor repeat, timestamps only move forward, by about the time that passed). An ffmpeg reading
// the loopback re-stream rides through the reboot on the same RTSP session and keeps decoding.
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { QueuedSink } from '../../src/media/queued-sink.js';
import { Source } from '../../src/media/source.js';
import type { MediaFrame } from '../../src/media/types.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { spawnTracked, type TrackedProcess } from '../helpers/processes.js';
import { assertContinuous, assertDecodes, RecordingSink, recordStates, sleep, waitFor } from './shared-source-helpers.js';

const FPS = 25;
const GOP_MS = 2000;
const OFF_MS = 5000;

/** An ffmpeg decoding the re-stream with -xerror, reporting its decoded frame count as it goes. */
function startDecoder(url: string): { proc: TrackedProcess; frames: () => number; samples: Array<{ at: number; frames: number }> } {
  const proc = spawnTracked('ffmpeg', [
    '-hide_banner', '-nostdin', '-v', 'error', '-xerror', '-nostats', '-stats_period', '0.2', '-progress', 'pipe:1',
    '-rtsp_transport', 'tcp', '-i', url, '-map', '0:v:0', '-f', 'null', '-',
  ], { name: 'ffmpeg-restream', stdin: 'ignore' });
  const samples: Array<{ at: number; frames: number }> = [];
  createInterface({ input: proc.child.stdout! }).on('line', (line) => {
    const m = /^frame=(\d+)$/.exec(line);
    if (m) samples.push({ at: performance.now(), frames: Number(m[1]) });
  });
  return { proc, samples, frames: () => samples.at(-1)?.frames ?? 0 };
}

describe('e2e: shared source, camera off for 5 s then back', { timeout: 90_000 }, () => {
  let camera: FakeCamera;
  let source: Source;
  let server: RestreamServer;

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, fps: FPS, audio: 'pcmu', keyframeIntervalFrames: (GOP_MS / 1000) * FPS });
    source = new Source({
      id: 'drive',
      name: 'Driveway',
      upstream: rtspUpstream({ url: camera.url, cameraName: 'Driveway', logger: silentLogger }),
      idleTimeoutMs: 1000, // default backoff: 1 s doubling, ±20 % jitter
    });
    server = await createRestreamServer({ getSource: (id) => (id === source.id ? source : undefined) });
  });
  after(async () => {
    await server?.close();
    await source?.close();
    await camera?.close();
  });

  it('e2e: subscribers resume within backoff + 1 GOP without re-subscribing; sequence numbers and timestamps continue', async () => {
    const states = recordStates(source);
    const recorder = new RecordingSink();
    const recorderSubscription = source.subscribe(recorder);
    const queue = new QueuedSink();
    const queueSubscription = source.subscribe(queue, { kinds: ['video'] });
    const queued: Array<{ frame: MediaFrame; at: number }> = [];
    const reading = new AbortController();
    const reader = (async () => {
      for (;;) {
        const frame = await queue.read(reading.signal);
        if (!frame) return;
        queued.push({ frame, at: performance.now() });
      }
    })();
    const decoder = startDecoder(server.url(source.id));

    await waitFor(() => recorder.count('video') >= 2 * FPS && decoder.frames() >= FPS, 15_000, 'two seconds of video everywhere',
      () => `${recorder.count('video')} frames, ffmpeg ${decoder.frames()}: ${decoder.proc.stderrText()}`);
    assert.equal(await camera.sessionCount(), 1, 'subscribers and the re-stream share one camera session');

    // Camera off.
    const stoppedAt = performance.now();
    const beforeCount = { recorder: recorder.frames.length, queued: queued.length, ffmpeg: decoder.frames() };
    await camera.stop();
    // Frames of the old session can still arrive while the camera shuts down; once stop() has
    // resolved, the next frame can only come from the new session.
    const cameraDownAt = performance.now();
    await sleep(OFF_MS);
    await camera.restart();
    const upAt = performance.now();
    const offMs = upAt - stoppedAt;

    // Camera back: every subscriber gets frames again on its own.
    const lastRetry = () => states.states.filter((s) => s.state.state === 'retrying' && s.at <= upAt).at(-1);
    const pendingDelay = Math.max(0, (lastRetry()?.at ?? upAt) + (lastRetry()?.state.retryInMs ?? 0) - upAt);
    const boundMs = pendingDelay + GOP_MS + 1500; // + 1 GOP, + connect/DESCRIBE/SETUP/PLAY and a loaded machine
    await waitFor(
      () => recorder.of('video').some((r) => r.at > upAt) && queued.some((r) => r.at > upAt) && decoder.frames() > beforeCount.ffmpeg + FPS,
      boundMs + 5000, 'frames after the reboot', () => `state ${JSON.stringify(source.state)}; ffmpeg ${decoder.frames()}: ${decoder.proc.stderrText()}`,
    );
    const recorderBackMs = recorder.of('video').find((r) => r.at > upAt)!.at - upAt;
    const queueBackMs = queued.find((r) => r.at > upAt)!.at - upAt;
    const ffmpegBackMs = decoder.samples.find((s) => s.frames > beforeCount.ffmpeg + 1 && s.at > upAt)!.at - upAt;
    assert.ok(recorderBackMs <= boundMs, `frames again ${recorderBackMs.toFixed(0)} ms after the camera came back (bound ${boundMs.toFixed(0)} ms)`);
    assert.ok(queueBackMs <= boundMs, `queued frames again after ${queueBackMs.toFixed(0)} ms`);

    // Two more seconds of live video after the reboot, then look at the whole run.
    await sleep(2000);
    states.stop();
    assert.equal(recorderSubscription.active, true);
    assert.equal(queueSubscription.active, true);
    assert.equal(decoder.proc.exitInfo(), undefined, `ffmpeg is still running: ${decoder.proc.stderrText()}`);
    assert.ok(decoder.frames() >= beforeCount.ffmpeg + 2 * FPS, `ffmpeg kept decoding on its session (${beforeCount.ffmpeg} → ${decoder.frames()})`);
    assert.equal(await camera.sessionCount(), 1, 'still exactly one camera session');
    assert.equal(source.stats().reconnects, 1);
    const seen = states.states.map((s) => s.state.state);
    // One drop, retries with a backoff while the camera is off, one recovery; never idle in between.
    assert.match(seen.join(' '), /^connecting live retrying (connecting retrying )*connecting live$/, seen.join(' → '));
    const attempts = states.states.filter((s) => s.state.state === 'connecting' && s.at > stoppedAt).length;
    assert.ok(attempts <= 4, `${attempts} connection attempts while the camera was off for ${(offMs / 1000).toFixed(1)} s (backoff, not a hot loop)`);

    const video = recorder.of('video').map((r) => r.frame);
    const audio = recorder.of('audio').map((r) => r.frame);
    const videoBefore = recorder.of('video').filter((r) => r.at <= cameraDownAt).length;
    assert.ok(video.length > videoBefore + FPS, 'video after the reboot');
    assert.ok(audio.some((f) => f.receivedAt > upAt), 'audio after the reboot');
    const firstAfter = video[videoBefore]!;
    assert.equal(firstAfter.keyframe, true, 'video resumes at a keyframe');
    // Continuity across the gap, for each kind and for the queued reader too.
    const { maxStepS } = assertContinuous(video, 'video');
    assertContinuous(audio, 'audio');
    assertContinuous(queued.map((r) => r.frame), 'queued video');
    const lastBefore = video[videoBefore - 1]!;
    const stepS = ((firstAfter.timestamp - lastBefore.timestamp) | 0) / 90_000;
    const wallS = (firstAfter.receivedAt - lastBefore.receivedAt) / 1000;
    assert.ok(Math.abs(stepS - wallS) < 0.2, `the timestamp step over the gap (${stepS.toFixed(2)} s) is the time that passed (${wallS.toFixed(2)} s)`);
    assert.equal(maxStepS, stepS);
    // And the whole run, before and after the reboot, is one stream a decoder plays from the start.
    const decoded = await assertDecodes(video, 'video across the reboot');

    reading.abort();
    await reader;
    recorderSubscription.unsubscribe();
    queueSubscription.unsubscribe();
    await decoder.proc.kill(2000);
    console.log(
      `# camera off ${(offMs / 1000).toFixed(1)} s (${attempts} connection attempts, the last one successful; backoff pending at restart ${pendingDelay.toFixed(0)} ms); ` +
      `frames again after ${recorderBackMs.toFixed(0)} ms (FrameSink), ${queueBackMs.toFixed(0)} ms (QueuedSink), ` +
      `${ffmpegBackMs.toFixed(0)} ms (ffmpeg on the re-stream); bound ${boundMs.toFixed(0)} ms; timestamp step ${stepS.toFixed(2)} s over ${wallS.toFixed(2)} s; ` +
      `${decoded} frames decode as one stream; ffmpeg decoded ${decoder.frames()} frames on one re-stream session`,
    );
  });
});
