// Issue 3, "Done when: Transports and auth", end to end: the real GStreamer camera (gst-rtsp-server)
// → rtspUpstream → Source → a subscriber. Live video and audio over TCP and over UDP, Digest and
// Basic, a wrong password (one clear error, then a slow backoff, counted on the camera side) and a bad
// path (a clear 404).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Source } from '../../src/media/source.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { assertContinuous, assertKeyframeWithParameterSets, recordingLogger, RecordingSink, recordStates, sleep, waitFor } from './shared-source-helpers.js';

const PASSWORD = 'pa:ss@w0rd/#1';
const WRONG = 'Wr0ng-Secret!';
const TIMEOUTS = { connectMs: 3000, requestMs: 8000, teardownMs: 1000, stallMs: 5000, udpFirstPacketMs: 4000 };

describe('e2e: shared source, transports and auth (real camera, real RTSP client)', { timeout: 90_000 }, () => {
  let digest: FakeCamera;
  let basic: FakeCamera;
  const sources: Source[] = [];

  before(async () => {
    [digest, basic] = await Promise.all([
      FakeCamera.start({ width: 640, height: 360, audio: 'pcmu', auth: { method: 'digest', user: 'admin', password: PASSWORD } }),
      FakeCamera.start({ width: 640, height: 360, audio: 'pcma', path: '/h264/ch1/main', auth: { method: 'basic', user: 'viewer', password: PASSWORD } }),
    ]);
  });
  after(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await Promise.all([digest?.close(), basic?.close()]);
  });

  /**
   * Plays a camera through a Source until 30 video frames (from a keyframe) and 30 audio frames
   * arrived, checks the camera saw exactly one session meanwhile, and returns what an operator and
   * a viewer would see.
   */
  async function play(camera: FakeCamera, login: { username: string; password: string }, transport: 'tcp' | 'udp', audioCodec: 'PCMU' | 'PCMA') {
    const log = recordingLogger();
    const source = new Source({
      id: `cam-${transport}`,
      name: `Porch ${transport}`,
      upstream: rtspUpstream({ url: camera.url, ...login, cameraName: `Porch ${transport}`, transport, logger: log, timeouts: TIMEOUTS }),
      logger: log,
      idleTimeoutMs: 200,
    });
    sources.push(source);
    const sink = new RecordingSink();
    const started = performance.now();
    const subscription = source.subscribe(sink);
    await waitFor(() => sink.count('video') >= 30 && sink.count('audio') >= 30, 10_000, `video and audio over ${transport}`,
      () => `${sink.count('video')} video, ${sink.count('audio')} audio frames; state ${JSON.stringify(source.state)}; log:\n${log.lines.join('\n')}`);
    const elapsedMs = performance.now() - started;
    assert.equal(await camera.sessionCount(), 1, 'one session at the camera');

    const video = sink.of('video').map((r) => r.frame);
    const audio = sink.of('audio').map((r) => r.frame);
    assertKeyframeWithParameterSets(video[0], `${transport}: video starts at a keyframe`);
    assert.ok(video.every((f) => f.codec === 'H264' && f.clockRate === 90_000));
    assert.ok(audio.every((f) => f.codec === audioCodec && f.clockRate === 8000 && f.units[0]!.length === 160), '20 ms G.711 frames');
    assertContinuous(video, `${transport} video`);
    assertContinuous(audio, `${transport} audio`);
    assert.deepEqual(sink.tracks.map((t) => `${t.kind}/${t.codec}`), ['video/H264', `audio/${audioCodec}`]);
    const stats = source.stats();
    assert.equal(stats.state, 'live');
    assert.deepEqual([stats.width, stats.height], [640, 360]);

    subscription.unsubscribe();
    await source.close();
    await camera.waitForSessionCount(0, 5000); // TEARDOWN (or the closed connection) frees it
    const text = log.lines.join('\n');
    assert.ok(!text.includes(PASSWORD), 'no password in the log');
    return { text, elapsedMs, lost: stats.packetsLost };
  }

  it('e2e: live video and audio over TCP, Digest', async () => {
    const { text, elapsedMs, lost } = await play(digest, digest.credentials(), 'tcp', 'PCMU');
    assert.match(text, /playing H264 video, PCMU audio over TCP \(Digest MD5\)/);
    assert.equal(lost, 0, 'nothing lost over TCP');
    console.log(`# TCP + Digest: 30 video + 30 audio frames after ${elapsedMs.toFixed(0)} ms`);
  });

  it('e2e: live video and audio over UDP, Digest', async () => {
    const { text, elapsedMs, lost } = await play(digest, digest.credentials(), 'udp', 'PCMU');
    assert.match(text, /playing H264 video, PCMU audio over UDP \(Digest MD5\)/);
    assert.doesNotMatch(text, /falling back to TCP/);
    console.log(`# UDP + Digest: 30 video + 30 audio frames after ${elapsedMs.toFixed(0)} ms, ${lost} packets lost`);
  });

  it('e2e: Basic auth (credentials from the URL, percent-decoded)', async () => {
    const { text } = await play(basic, basic.credentials('viewer', PASSWORD), 'tcp', 'PCMA');
    assert.match(text, /playing H264 video, PCMA audio over TCP \(Basic\)/);
  });

  it('e2e: a wrong password gives one clear error and a backoff, not a hot retry loop', async () => {
    const log = recordingLogger();
    const source = new Source({
      id: 'porch',
      name: 'Porch',
      // Default backoff, as in production: 30 s (±20 %) doubling to 30 min for refused credentials.
      upstream: rtspUpstream({ url: digest.url, ...digest.credentials('admin', WRONG), cameraName: 'Porch', logger: log, timeouts: TIMEOUTS }),
      logger: log,
    });
    sources.push(source);
    const states = recordStates(source);
    const requestsBefore = (await digest.requests()).length;
    const sink = new RecordingSink();
    const subscription = source.subscribe(sink);
    await sleep(5000);
    const requests = (await digest.requests()).slice(requestsBefore);
    states.stop();

    const state = source.state;
    assert.equal(state.state, 'retrying', JSON.stringify(state));
    const lastError = state.lastError ?? '';
    assert.match(lastError, /^Camera "Porch" \(rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/live1\.sdp\): .*401.*wrong user name or password/, lastError);
    assert.ok(!lastError.includes(WRONG), `password in the error: ${lastError}`);

    // Refused credentials retry on the slow schedule (30 s ±20 %, doubling): many cameras lock the
    // account after a few wrong log-ins. So one attempt in these 5 s: OPTIONS (which this camera
    // answers without credentials), DESCRIBE → 401, one DESCRIBE with credentials → 401.
    const attempts = states.states.filter((s) => s.state.state === 'connecting').length;
    const delays = states.states.filter((s) => s.state.state === 'retrying').map((s) => s.state.retryInMs ?? 0);
    assert.equal(attempts, 1, `${attempts} connection attempts in 5 s`);
    assert.equal(delays.length, 1);
    assert.ok(delays[0]! >= 24_000 && delays[0]! <= 36_000, `next try in ${delays[0]} ms`);
    const methods = requests.map((r) => `${r.method}${r.authorized ? '' : '(401)'}`).join(',');
    assert.equal(methods, 'OPTIONS,DESCRIBE(401),DESCRIBE(401)');
    assert.equal(await digest.sessionCount(), 0);

    // One clear error for the operator, not one per retry; never the password.
    const warnings = log.lines.filter((l) => l.startsWith('warn') || l.startsWith('error'));
    assert.equal(warnings.length, 1, `warnings:\n${warnings.join('\n')}`);
    assert.match(warnings[0]!, /\[Porch\] could not connect: Camera "Porch" .*wrong user name or password; retrying in \d+\.\d s/);
    assert.ok(!log.lines.join('\n').includes(WRONG), 'no password in the log');
    assert.equal(sink.frames.length, 0);
    assert.equal(sink.states.at(-1)!.state.state, 'retrying', 'the subscriber is told too');
    subscription.unsubscribe();
    await source.close();
    console.log(`# wrong password: ${attempts} attempts, ${requests.length} camera requests in 5 s; backoff ${delays.join(' ms, ')} ms; error: ${lastError}`);
  });

  it('e2e: a bad path gives a clear 404 message', async () => {
    const source = new Source({
      id: 'porch-404',
      name: 'Porch',
      upstream: rtspUpstream({ url: basic.url.replace('/h264/ch1/main', '/no/such/stream'), ...basic.credentials('viewer', PASSWORD), cameraName: 'Porch', logger: recordingLogger(), timeouts: TIMEOUTS }),
    });
    sources.push(source);
    const sink = new RecordingSink();
    const subscription = source.subscribe(sink);
    await waitFor(() => source.state.state === 'retrying', 5000, 'the 404');
    const lastError = source.state.lastError ?? '';
    assert.match(lastError, /^Camera "Porch" \(rtsp:\/\/viewer:\*\*\*@127\.0\.0\.1:\d+\/no\/such\/stream\): DESCRIBE answered 404 Not Found: the stream path does not exist on the camera$/, lastError);
    assert.ok(!lastError.includes(PASSWORD));
    subscription.unsubscribe();
    await source.close();
    console.log(`# bad path: ${lastError}`);
  });
});
