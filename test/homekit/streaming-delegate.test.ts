// HomeKitStreamingDelegate without the Home app: what it answers HAP-NodeJS for snapshots, SetupEndpoints
// (prepare), START, RECONFIGURE and STOP, its stream limit, the release of a prepared stream that never
// starts, and shutdown. Sessions are real (they bind loopback UDP ports) but never start ffmpeg: START
// reaches a stand-in `begin`, so the test sees the parameters the delegate derived from HAP's request.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, describe, it, mock } from 'node:test';
import hap from '@homebridge/hap-nodejs';
import type { CameraController, HAP, PrepareStreamRequest, PrepareStreamResponse, StartStreamRequest, StreamingRequest } from 'homebridge';

import type { FfmpegCapabilities } from '../../src/ffmpeg/capabilities.js';
import { HomeKitStreamingDelegate, type StreamingDelegateOptions } from '../../src/homekit/streaming-delegate.js';
import type { StartParameters } from '../../src/homekit/stream-session.js';
import { memoryLogger, streamSessionDeps, type MemoryLogger, type SessionCamera } from './camera-rig.js';

const HAP_API = hap as unknown as HAP;

function delegate(overrides: Partial<StreamingDelegateOptions> = {}): { delegate: HomeKitStreamingDelegate; log: MemoryLogger } {
  const log = memoryLogger();
  const camera: SessionCamera = {
    ffmpeg: {} as FfmpegCapabilities,
    inputUrl: () => 'rtsp://127.0.0.1:1/cam',
    cameraVideo: () => ({ codec: 'H264', width: 1280, height: 720, bitrateBps: undefined }),
    cameraHasAudio: () => true,
  };
  const options: StreamingDelegateOptions = {
    hap: HAP_API,
    maxStreams: 2,
    snapshot: async () => Buffer.from('jpeg'),
    ...streamSessionDeps(camera, log),
    ...overrides,
  };
  return { delegate: new HomeKitStreamingDelegate(options), log };
}

function prepareRequest(): PrepareStreamRequest {
  const keys = () => ({ srtp_key: randomBytes(16), srtp_salt: randomBytes(14) });
  return {
    sessionID: randomUUID(),
    sourceAddress: '127.0.0.1',
    targetAddress: '127.0.0.1',
    addressVersion: 'ipv4',
    video: { port: 50_000, ...keys() },
    audio: { port: 50_002, ...keys() },
  } as unknown as PrepareStreamRequest;
}

function prepare(d: HomeKitStreamingDelegate, request = prepareRequest()): Promise<{ error?: Error; response?: PrepareStreamResponse; id: string }> {
  return new Promise((resolve) => d.prepareStream(request, (error, response) => resolve({ error, response, id: request.sessionID })));
}

function streamRequest(d: HomeKitStreamingDelegate, request: StreamingRequest): Promise<Error | undefined> {
  return new Promise((resolve) => d.handleStreamRequest(request, (error) => resolve(error)));
}

function startRequest(sessionID: string, video: Partial<StartStreamRequest['video']> = {}, audio: Partial<StartStreamRequest['audio']> = {}): StartStreamRequest {
  return {
    sessionID,
    type: hap.StreamRequestTypes.START,
    video: { codec: 0, profile: 1, level: 2, packetizationMode: 0, width: 1920, height: 1080, fps: 30, pt: 99, ssrc: 1, max_bit_rate: 299, rtcp_interval: 0.5, mtu: 1378, ...video },
    audio: { codec: hap.AudioStreamingCodecType.OPUS, channel: 1, bit_rate: 0, sample_rate: 16, packet_time: 20, pt: 110, ssrc: 2, max_bit_rate: 24, rtcp_interval: 0.5, comfort_pt: 13, comfortNoiseEnabled: false, ...audio },
  } as unknown as StartStreamRequest;
}

/** Replaces a prepared session's START (which would run ffmpeg) and records what it was given. */
function captureBegin(d: HomeKitStreamingDelegate, id: string, outcome: () => Promise<void> = async () => undefined): StartParameters[] {
  const seen: StartParameters[] = [];
  const session = d.session(id)!;
  session.begin = async (parameters) => {
    seen.push(parameters);
    await outcome();
  };
  return seen;
}

describe('HomeKitStreamingDelegate', () => {
  const open: HomeKitStreamingDelegate[] = [];
  afterEach(async () => {
    mock.timers.reset();
    await Promise.all(open.splice(0).map((d) => d.close()));
  });
  const make = (overrides: Partial<StreamingDelegateOptions> = {}) => {
    const made = delegate(overrides);
    open.push(made.delegate);
    return made;
  };

  it('answers a snapshot request with the picture, or with an error when there is none or it failed', async () => {
    const sizes: Array<{ width: number; height: number }> = [];
    const pictures = [Buffer.from('jpeg'), undefined];
    const { delegate: d } = make({
      snapshot: async (size) => {
        sizes.push(size);
        if (pictures.length === 0) throw new Error('snapshot exploded');
        return pictures.shift();
      },
    });
    const ask = () => new Promise<{ error?: unknown; image?: Buffer }>((resolve) =>
      d.handleSnapshotRequest({ width: 640, height: 360 } as Parameters<HomeKitStreamingDelegate['handleSnapshotRequest']>[0], (error, image) => resolve({ error, image })));
    const first = await ask();
    assert.equal(first.error, undefined);
    assert.equal(first.image?.toString(), 'jpeg');
    const none = (await ask()).error;
    assert.ok(none instanceof Error && /no snapshot available yet/.test(none.message), String(none));
    const failed = (await ask()).error;
    assert.ok(failed instanceof Error && /snapshot exploded/.test(failed.message), String(failed));
    assert.deepEqual(sizes[0], { width: 640, height: 360 });
  });

  it('prepares a session on two fresh loopback ports, handing back the controller\'s SRTP keys', async () => {
    const { delegate: d } = make();
    const request = prepareRequest();
    const { error, response } = await prepare(d, request);
    assert.equal(error, undefined);
    const video = response!.video as { port: number; ssrc: number; srtp_key: Buffer };
    const audio = response!.audio as { port: number; ssrc: number; srtp_key: Buffer };
    assert.ok(video.port > 0 && audio.port > 0 && video.port !== audio.port);
    assert.ok(video.srtp_key.equals(request.video.srtp_key));
    assert.ok(audio.srtp_key.equals(request.audio.srtp_key));
    assert.equal(d.sessionCount, 1);
    assert.ok(d.session(request.sessionID));
  });

  it('turns away a viewer beyond maxStreams, with one warning', async () => {
    const { delegate: d, log } = make({ maxStreams: 1 });
    assert.equal((await prepare(d)).error, undefined);
    const refused = await prepare(d);
    assert.match(refused.error?.message ?? '', /too many streams/);
    assert.equal(d.sessionCount, 1);
    assert.equal(log.lines.filter((l) => /turned away: 1 stream\(s\) already run \(maxHomeKitStreams\)/.test(l)).length, 1);
  });

  it('releases a prepared session that never STARTs after prepareTimeoutMs, but not one that started', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const { delegate: d } = make({ prepareTimeoutMs: 5000 });
    const idle = await prepare(d);
    const started = await prepare(d);
    captureBegin(d, started.id);
    assert.equal(await streamRequest(d, startRequest(started.id)), undefined);
    mock.timers.tick(4999);
    assert.equal(d.sessionCount, 2);
    mock.timers.tick(1);
    assert.equal(d.session(idle.id), undefined, 'the idle session was dropped');
    assert.ok(d.session(started.id), 'START cancelled the release of the other');
  });

  it('START derives ffmpeg\'s parameters from HAP\'s request', async () => {
    const { delegate: d } = make();
    const { id } = await prepare(d);
    const seen = captureBegin(d, id);
    assert.equal(await streamRequest(d, startRequest(id)), undefined);
    assert.deepEqual(seen[0], {
      video: { width: 1920, height: 1080, fps: 30, maxBitrateKbps: 299, profile: 'main', level: '4.0', payloadType: 99, mtu: 1378, rtcpIntervalMs: 500 },
      audio: { codec: 'opus', sampleRateHz: 16_000, channels: 1, bitrateKbps: 24, vbr: true, packetTimeMs: 20, payloadType: 110 },
    });
  });

  it('START clamps odd values: RTCP at least every 200 ms, one channel, 16 kbit/s audio; AAC-ELD and other codecs named', async () => {
    const { delegate: d } = make({ maxStreams: 3 });
    const cases: Array<[Partial<StartStreamRequest['audio']>, StartParameters['audio']['codec']]> = [
      [{ codec: hap.AudioStreamingCodecType.AAC_ELD }, 'aac-eld'],
      [{ codec: hap.AudioStreamingCodecType.PCMU }, 'other'],
    ];
    for (const [audio, codec] of cases) {
      const { id } = await prepare(d);
      const seen = captureBegin(d, id);
      await streamRequest(d, startRequest(id, { rtcp_interval: 0.01, profile: 2, level: 0 }, { ...audio, channel: 0, max_bit_rate: 8, bit_rate: 1, sample_rate: 24 }));
      const p = seen[0]!;
      assert.equal(p.audio.codec, codec);
      assert.equal(p.video.rtcpIntervalMs, 200);
      assert.equal(p.video.profile, 'high');
      assert.equal(p.video.level, '3.1');
      assert.equal(p.audio.channels, 1);
      assert.equal(p.audio.bitrateKbps, 16);
      assert.equal(p.audio.vbr, false);
      assert.equal(p.audio.sampleRateHz, 24_000);
    }
  });

  it('a START that fails is answered with the error and the session is dropped', async () => {
    const { delegate: d, log } = make();
    const { id } = await prepare(d);
    captureBegin(d, id, async () => {
      throw new Error('ffmpeg missing');
    });
    const error = await streamRequest(d, startRequest(id));
    assert.match(error?.message ?? '', /ffmpeg missing/);
    assert.equal(d.session(id), undefined);
    assert.ok(log.lines.some((l) => /Could not start a Home app stream: ffmpeg missing/.test(l)));
  });

  it('START of an unknown session is an error; STOP and RECONFIGURE of one are answered and ignored', async () => {
    const { delegate: d } = make();
    assert.match((await streamRequest(d, startRequest('nope')))?.message ?? '', /unknown stream session/);
    assert.equal(await streamRequest(d, { sessionID: 'nope', type: hap.StreamRequestTypes.STOP } as StreamingRequest), undefined);
    const reconfigure = { sessionID: 'nope', type: hap.StreamRequestTypes.RECONFIGURE, video: { width: 640, height: 360, fps: 15, max_bit_rate: 300 } };
    assert.equal(await streamRequest(d, reconfigure as unknown as StreamingRequest), undefined);
  });

  it('RECONFIGURE hands the new size, rate and bitrate to the session', async () => {
    const { delegate: d } = make();
    const { id } = await prepare(d);
    const asked: unknown[] = [];
    d.session(id)!.reconfigure = async (video) => void asked.push(video);
    const reconfigure = { sessionID: id, type: hap.StreamRequestTypes.RECONFIGURE, video: { width: 640, height: 360, fps: 15, max_bit_rate: 300 } };
    assert.equal(await streamRequest(d, reconfigure as unknown as StreamingRequest), undefined);
    assert.deepEqual(asked, [{ width: 640, height: 360, fps: 15, maxBitrateKbps: 300 }]);
  });

  it('STOP drops the session', async () => {
    const { delegate: d } = make();
    const { id } = await prepare(d);
    assert.equal(await streamRequest(d, { sessionID: id, type: hap.StreamRequestTypes.STOP } as StreamingRequest), undefined);
    await d.close(); // waits for the drop in flight too
    assert.equal(d.sessionCount, 0);
  });

  it('a session that ends by itself is forgotten and HAP is told, even when HAP throws', async () => {
    const { delegate: d, log } = make();
    const stopped: string[] = [];
    d.attach({
      forceStopStreamingSession: (id: string) => {
        stopped.push(id);
        throw new Error('HAP said no');
      },
    } as unknown as CameraController);
    const { id } = await prepare(d);
    const session = d.session(id)!;
    session.emit('ended', 'the Home app went silent');
    assert.deepEqual(stopped, [id]);
    assert.equal(d.sessionCount, 0);
    assert.ok(log.lines.some((l) => /forceStopStreamingSession failed: Error: HAP said no/.test(l)));
    // A real session stops itself before it says 'ended'; this one only pretended to.
    await session.stop();
  });

  it('close stops every session and refuses new ones', async () => {
    const { delegate: d } = make();
    await prepare(d);
    await prepare(d);
    assert.equal(d.sessionCount, 2);
    await d.close();
    assert.equal(d.sessionCount, 0);
    assert.match((await prepare(d)).error?.message ?? '', /shutting down/);
  });
});
