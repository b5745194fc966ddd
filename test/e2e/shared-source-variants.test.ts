// Issue 3, "Done when: Camera variants", end to end with real cameras: parameter sets only in the SDP
// (IDRs arrive bare), a High-profile encoder, and a camera without audio. For each, what the Source
// hands a subscriber decodes from a fresh decoder (ffmpeg -xerror), and the loopback re-stream
// serves it to ffmpeg/ffprobe as it is.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Source, type SourceStats } from '../../src/media/source.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera, type FakeCameraOptions } from '../helpers/fake-camera.js';
import { decodeVideo, probe } from '../helpers/ffprobe.js';
import { captureRtp, h264NalTypes } from '../helpers/rtsp-client.js';
import { assertContinuous, assertDecodes, assertKeyframeWithParameterSets, RecordingSink, waitFor } from './shared-source-helpers.js';

const VARIANTS = {
  'sdp-only': { keyframeIntervalFrames: 25, parameterSetsInBand: false, keyframeOnPlay: false, profile: 'main' },
  high: { profile: 'high' },
  'no-audio': { audio: 'none' },
} satisfies Record<string, FakeCameraOptions>;
type Variant = keyof typeof VARIANTS;

describe('e2e: shared source, camera variants', { timeout: 90_000 }, () => {
  const cameras = new Map<Variant, FakeCamera>();
  const sources = new Map<Variant, Source>();
  let server: RestreamServer;

  before(async () => {
    await Promise.all(
      (Object.keys(VARIANTS) as Variant[]).map(async (variant) => {
        const camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, audio: 'pcmu', ...VARIANTS[variant] });
        cameras.set(variant, camera);
        sources.set(variant, new Source({
          id: variant,
          upstream: rtspUpstream({ url: camera.url, cameraName: variant, logger: silentLogger }),
          idleTimeoutMs: 500,
        }));
      }),
    );
    server = await createRestreamServer({ getSource: (id) => sources.get(id as Variant) });
  });
  after(async () => {
    await server?.close();
    await Promise.all([...sources.values()].map((s) => s.close()));
    await Promise.all([...cameras.values()].map((c) => c.close()));
  });

  /** Subscribes until `keyframes` keyframes and 30+ video frames arrived; checks and decodes them. */
  /**
   * Subscribes until `keyframes` keyframes and 30 frames arrived. `stats` is read while still
   * subscribed: afterwards the Source may go idle (idleTimeoutMs 500) while a slow machine decodes.
   */
  async function play(variant: Variant, keyframes: number): Promise<{ sink: RecordingSink; stats: SourceStats }> {
    const source = sources.get(variant)!;
    const sink = new RecordingSink();
    const subscription = source.subscribe(sink);
    await waitFor(() => sink.of('video').filter((r) => r.frame.keyframe).length >= keyframes && sink.count('video') >= 30, 15_000,
      `${keyframes} keyframes from the ${variant} camera`, () => JSON.stringify(source.state));
    const stats = source.stats();
    subscription.unsubscribe();
    const video = sink.of('video').map((r) => r.frame);
    assert.equal(video[0]!.keyframe, true);
    for (const frame of video.filter((f) => f.keyframe)) assertKeyframeWithParameterSets(frame, `${variant} keyframe`);
    assertContinuous(video, `${variant} video`);
    await assertDecodes(video, variant);
    return { sink, stats };
  }

  it('e2e: SPS/PPS only in the SDP (bare IDRs on the wire) still give decodable IDRs, to subscribers and to the re-stream', async () => {
    const camera = cameras.get('sdp-only')!;
    // The premise: on the wire the camera's IDRs come without parameter sets.
    const wire = await captureRtp(camera.url, 1500);
    const onWire = new Set(wire.packets.filter((p) => p.payloadType === 96).flatMap((p) => h264NalTypes(p.payload)));
    assert.ok(onWire.has(5) && !onWire.has(7) && !onWire.has(8), `NAL types on the wire: ${[...onWire].join(',')}`);

    const { sink, stats } = await play('sdp-only', 3);
    const keyframes = sink.of('video').filter((r) => r.frame.keyframe).length;
    assert.ok((sink.tracks[0]?.parameterSets?.length ?? 0) >= 2, 'the published track carries the parameter sets');
    assert.equal(stats.profile, 'Main');

    const decoded = await decodeVideo(server.url('sdp-only'), { videoFrames: 30, timeoutMs: 20_000 });
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.equal(decoded.videoFrames, 30);
    assert.deepEqual(decoded.errors, [], 'ffmpeg on the re-stream reported no errors');
    console.log(`# SDP-only parameter sets: ${keyframes} bare IDRs from the camera became SPS+PPS+IDR; ${sink.count('video')} frames decode; re-stream decoded 30 frames`);
  });

  it('e2e: a High-profile camera works: stats say High, frames decode, ffprobe sees High on the re-stream', async () => {
    const { sink, stats } = await play('high', 1);
    assert.equal(stats.profile, 'High');
    assert.deepEqual([stats.codec, stats.width, stats.height], ['H264', 640, 360]);
    const sps = sink.of('video')[0]!.frame.units.find((u) => (u[0]! & 0x1f) === 7)!;
    assert.equal(sps[1], 100, 'profile_idc 100');
    assert.ok(sink.count('audio') > 0);

    const probed = await probe(server.url('high'), { timeoutMs: 20_000 });
    assert.equal(probed.video?.codecName, 'h264');
    assert.equal(probed.video?.profile, 'High');
    assert.equal(probed.audio?.codecName, 'pcm_mulaw');
    const decoded = await decodeVideo(server.url('high'), { videoFrames: 30, timeoutMs: 20_000 });
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.deepEqual(decoded.errors, []);
    console.log(`# High profile: stats.profile ${stats.profile} level ${stats.level}, ${sink.count('video')} frames decode; ffprobe on the re-stream: ${probed.video?.profile}`);
  });

  it('e2e: a camera without audio works: one video track, live, no stall, served video-only', async () => {
    const { sink, stats } = await play('no-audio', 1);
    assert.deepEqual(sink.tracks.map((t) => `${t.kind}/${t.codec}`), ['video/H264']);
    assert.equal(sink.count('audio'), 0);
    assert.equal(stats.audio, undefined);
    assert.equal(stats.state, 'live');
    assert.equal(stats.reconnects, 0);

    const probed = await probe(server.url('no-audio'), { timeoutMs: 20_000 });
    assert.deepEqual(probed.streams.map((s) => s.codecType), ['video']);
    const decoded = await decodeVideo(server.url('no-audio'), { videoFrames: 30, timeoutMs: 20_000 });
    assert.equal(decoded.code, 0, decoded.stderr);
    assert.deepEqual(decoded.errors, []);
    assert.equal(await cameras.get('no-audio')!.sessionCount(), 1, 're-stream clients share the one camera session');
    console.log(`# no audio: tracks ${sink.tracks.map((t) => t.codec).join(',')}, ${sink.count('video')} frames decode, re-stream streams: ${probed.streams.map((s) => s.codecType).join(',')}`);
  });
});
