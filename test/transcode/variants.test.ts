/**
 * The VP8 and H.264 variants with real parts: a GStreamer fake camera → the RTSP client → the
 * camera's Source → the loopback re-stream → libvpx or libx264 ffmpeg → the variant Source; and an
 * AAC camera's sound as Opus (the camera's Source → a pipe → libopus ffmpeg). Plus what happens when ffmpeg cannot
 * transcode, when the camera never answers, and when there is no libvpx at all.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildCapabilities, type FfmpegCapabilities } from '../../src/ffmpeg/capabilities.js';
import { probeFfmpeg } from '../../src/ffmpeg/find-ffmpeg.js';
import { runningFfmpegPids } from '../../src/ffmpeg/ffmpeg-process.js';
import { Source } from '../../src/media/source.js';
import type { FrameSink, MediaFrame, SourceState, TrackDescription } from '../../src/media/types.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { TranscodedVariants, type TranscodedVariantsOptions } from '../../src/transcode/variants.js';
import { isRtcp, variantTracks } from '../../src/transcode/variant-upstream.js';
import type { Logger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { assertDecodes, assertKeyframeWithParameterSets } from '../e2e/shared-source-helpers.js';

class Recorder implements FrameSink {
  frames: MediaFrame[] = [];
  tracks: Array<ReadonlyArray<TrackDescription>> = [];
  states: SourceState[] = [];
  write(frame: MediaFrame): boolean {
    this.frames.push(frame);
    return true;
  }
  onTracks(tracks: ReadonlyArray<TrackDescription>): void {
    this.tracks.push(tracks);
  }
  onState(state: SourceState): void {
    this.states.push(state);
  }
  video(): MediaFrame[] {
    return this.frames.filter((f) => f.kind === 'video');
  }
}

function lines(into: string[]): Logger {
  const record = (level: string) => (message: string) => into.push(`${level} ${message}`);
  return { info: record('info'), warn: record('warn'), error: record('error'), debug: record('debug') };
}

/**
 * The plugin's running ffmpeg processes by what they encode: a variant's picture (libvpx, libx264)
 * or its sound alone (`-allowed_media_types audio`), from their command lines.
 */
function encoders(): { picture: string[]; sound: number; other: number } {
  const found = { picture: [] as string[], sound: 0, other: 0 };
  for (const pid of runningFfmpegPids()) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    const video = args[args.indexOf('-c:v') + 1];
    if (args.includes('-c:v') && video) found.picture.push(video);
    else if (args[args.indexOf('-allowed_media_types') + 1] === 'audio' && args.includes('libopus')) found.sound++;
    else found.other++;
  }
  found.picture.sort();
  return found;
}

async function until(what: string, check: () => boolean, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('transcoded variants (real camera, re-stream and ffmpeg)', { timeout: 200_000 }, () => {
  let ffmpeg: FfmpegCapabilities;
  let withAudio: FakeCamera;
  let silent: FakeCamera;
  let hevc: FakeCamera;
  let aac: FakeCamera;
  const sources: Source[] = [];
  const restreams: RestreamServer[] = [];
  let scratch: string;

  before(async () => {
    ffmpeg = await probeFfmpeg('ffmpeg', 'PATH');
    assert.equal(ffmpeg.has.libvpx, true, 'this ffmpeg has libvpx');
    [withAudio, silent, hevc, aac] = await Promise.all([
      FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'pcmu' }),
      FakeCamera.start({ width: 320, height: 240, fps: 25, keyframeIntervalFrames: 50, audio: 'none' }),
      FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, codec: 'h265', audio: 'aac' }),
      FakeCamera.start({ width: 320, height: 240, fps: 25, keyframeIntervalFrames: 50, audio: 'aac' }),
    ]);
    scratch = await mkdtemp(join(tmpdir(), 'wrc-transcode-'));
  });

  after(async () => {
    await Promise.allSettled(sources.map((s) => s.close()));
    await Promise.allSettled(restreams.map((r) => r.close()));
    await Promise.allSettled([withAudio?.close(), silent?.close(), hevc?.close(), aac?.close()]);
    await rm(scratch, { recursive: true, force: true });
  });

  async function chain(camera: FakeCamera, caps: FfmpegCapabilities, log: Logger, more: Partial<TranscodedVariantsOptions> = {}): Promise<{ main: Source; variants: TranscodedVariants }> {
    const main = new Source({ id: 'cam', name: 'Cam', upstream: rtspUpstream({ url: camera.url, cameraName: 'Cam', logger: log }), logger: log, idleTimeoutMs: 300 });
    sources.push(main);
    // Every camera id the test names is this one camera.
    const restream = await createRestreamServer({ getSource: () => main, log });
    restreams.push(restream);
    const variants = new TranscodedVariants({ ffmpeg: caps, restreamUrl: (id) => restream.url(id), log, idleTimeoutMs: 300, ...more });
    return { main, variants };
  }

  it('three sinks share one encoder and one camera session; VP8 + Opus frames, keyframe first; all of it ends after the last sink', async () => {
    const logs: string[] = [];
    const { main, variants } = await chain(withAudio, ffmpeg, lines(logs));
    const variant = variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: main })!;
    assert.equal(variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: main }), variant, 'one variant per camera');
    const sinks = [new Recorder(), new Recorder(), new Recorder()];
    const subscriptions = sinks.map((sink) => variant.subscribe(sink));
    await until('50 VP8 frames at every sink', () => sinks.every((s) => s.video().length >= 50));
    for (const sink of sinks) {
      assert.equal(sink.video()[0]!.keyframe, true, 'video starts at a keyframe');
      assert.ok(sink.video().every((f) => f.codec === 'VP8'));
      assert.ok(sink.frames.some((f) => f.kind === 'audio' && f.codec === 'OPUS'), 'Opus from the camera\'s PCMU');
    }
    assert.deepEqual(sinks[0]!.tracks.at(-1)!.map((t) => `${t.kind} ${t.codec}`), ['video VP8', 'audio OPUS']);
    assert.equal(await withAudio.sessionCount(), 1, 'camera sessions');
    assert.deepEqual(encoders(), { picture: ['libvpx'], sound: 1, other: 0 }, 'one picture encoder and its sound beside it, for three sinks');
    const stats = variant.stats();
    // The encoder's speed depends on the CPU it gets (bench:transcode measures it); here: it runs.
    assert.ok(stats.fps! > 0, `fps ${stats.fps}`);
    console.log(`# VP8 variant: ${stats.fps} fps with three sinks`);
    // Loopback UDP loses nothing on a quiet machine; allow 1 % for a machine starved of CPU.
    assert.ok(stats.packetsLost <= stats.packetsReceived / 100, `lost ${stats.packetsLost} of ${stats.packetsReceived}`);
    assert.equal(stats.video!.packetsMalformed, 0, 'RTCP from ffmpeg is not taken for media');
    for (const subscription of subscriptions) subscription.unsubscribe();
    await until('the encoder to stop', () => runningFfmpegPids().length === 0);
    await until('the variant to idle', () => variant.state.state === 'idle');
    await withAudio.waitForSessionCount(0, 30_000);
    assert.equal(main.state.state, 'idle', 'the camera is released too');
    await variants.closeAll();
  });

  it('an H.265 + AAC camera: an H.264 variant (Constrained Baseline, SPS/PPS with every keyframe, decodes) and a VP8 one at once, one encoder each, one camera session', async () => {
    const logs: string[] = [];
    const { main, variants } = await chain(hevc, ffmpeg, lines(logs));
    const h264 = variants.variantFor('H264', { id: 'cam', name: 'Cam', source: main })!;
    const vp8 = variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: main })!;
    assert.notEqual(h264, vp8);
    assert.equal(variants.variantFor('H264', { id: 'cam', name: 'Cam', source: main }), h264, 'one H.264 variant per camera');
    const [h264Sink, vp8Sink] = [new Recorder(), new Recorder()];
    const subscriptions = [h264.subscribe(h264Sink), vp8.subscribe(vp8Sink)];
    await until('75 frames of each variant', () => h264Sink.video().length >= 75 && vp8Sink.video().length >= 25);
    assert.deepEqual(h264Sink.tracks.at(-1)!.map((t) => `${t.kind} ${t.codec}`), ['video H264', 'audio OPUS']);
    const video = h264Sink.video();
    assert.ok(video.every((f) => f.codec === 'H264'));
    const keyframes = video.filter((f) => f.keyframe);
    assert.ok(keyframes.length >= 2, `${keyframes.length} keyframes in 3 s (one every 2 s)`);
    for (const keyframe of keyframes) assertKeyframeWithParameterSets(keyframe, 'H.264 variant keyframe');
    const sps = keyframes[0]!.units.find((u) => (u[0]! & 0x1f) === 7)!;
    assert.equal(sps[1], 66, 'profile_idc 66: Baseline');
    assert.ok((sps[2]! & 0x40) !== 0, 'constraint_set1: Constrained Baseline, what browsers are offered (42e01f)');
    await assertDecodes(video, 'H.264 variant');
    assert.ok(h264Sink.frames.some((f) => f.kind === 'audio' && f.codec === 'OPUS'), "Opus from the camera's AAC");
    assert.deepEqual(encoders(), { picture: ['libvpx', 'libx264'], sound: 2, other: 0 }, 'one encoder per variant, each with its sound');
    assert.equal(await hevc.sessionCount(), 1, 'camera sessions');
    assert.equal(logs.filter((l) => /transcoding to H\.264/.test(l)).length, 1);
    for (const subscription of subscriptions) subscription.unsubscribe();
    await until('both encoders to stop', () => runningFfmpegPids().length === 0);
    await variants.closeAll();
  });

  it("an H.264 + AAC camera seen through withOpusSound: the camera's own H.264 frames and Opus sound with capture times, one sound encoder for two viewers, one camera session", async () => {
    const logs: string[] = [];
    const { main, variants } = await chain(aac, ffmpeg, lines(logs));
    const dubbed = variants.withOpusSound({ id: 'cam', name: 'Cam', source: main })!;
    assert.equal(variants.withOpusSound({ id: 'cam', name: 'Cam', source: main }), dubbed);
    const sinks = [new Recorder(), new Recorder()];
    const direct = new Recorder();
    const subscriptions = [...sinks.map((sink) => dubbed.subscribe(sink)), main.subscribe(direct)];
    await until('2 s of Opus at both viewers', () => sinks.every((s) => s.frames.filter((f) => f.codec === 'OPUS').length >= 100));
    for (const sink of sinks) {
      assert.ok(sink.frames.every((f) => f.codec === 'H264' || f.codec === 'OPUS'), 'no AAC reaches a dubbed viewer');
      assert.deepEqual(sink.tracks.at(-1)!.map((t) => t.codec), ['H264', 'OPUS']);
      assert.ok(sink.frames.filter((f) => f.codec === 'OPUS').every((f) => f.captureTime !== undefined), 'every Opus frame carries its capture time');
    }
    // The video is the camera's own frame objects, not a copy or a re-encode.
    const shared = sinks[0]!.video().filter((f) => direct.video().includes(f));
    assert.ok(shared.length >= 25, `${shared.length} identical video frames`);
    assert.ok(direct.frames.some((f) => f.codec === 'AAC'), 'the camera itself still gives AAC to who wants it');
    assert.equal(runningFfmpegPids().length, 1, 'one sound encoder for both viewers');
    assert.equal(await aac.sessionCount(), 1, 'the encoder is fed from the Source, not a second session');
    for (const subscription of subscriptions) subscription.unsubscribe();
    await until('the sound encoder to stop', () => runningFfmpegPids().length === 0);
    await variants.closeAll();
  });

  it('a slow encoder steps down: fewer frames than the camera for two windows, then it runs again at 640x360 and 15 fps, says so in the log and the counters, and keeps delivering', async () => {
    // A real ffmpeg that reads the re-stream at half speed while it encodes the full frame rate:
    // what an encoder too slow for its machine looks like from outside (half the frames, later and later).
    const slow = join(scratch, 'ffmpeg-slow-at-full-rate');
    await writeFile(slow, [
      '#!/bin/sh',
      `printf '%s\\n' "$*" >> '${slow}.starts'`,
      'case " $* " in',
      '  *fps=15*) exec ffmpeg "$@";;',
      'esac',
      'exec ffmpeg -readrate 0.5 "$@"',
      '',
    ].join('\n'));
    await chmod(slow, 0o755);
    const logs: string[] = [];
    const log = lines(logs);
    const main = new Source({ id: 'cam', name: 'Cam', upstream: rtspUpstream({ url: withAudio.url, cameraName: 'Cam', logger: log }), logger: log, idleTimeoutMs: 300 });
    sources.push(main);
    const restream = await createRestreamServer({ getSource: (id) => (id === 'cam' ? main : undefined), log });
    restreams.push(restream);
    const variants = new TranscodedVariants({
      ffmpeg: { ...ffmpeg, path: slow },
      restreamUrl: (id) => restream.url(id),
      log,
      idleTimeoutMs: 300,
      keepUp: { windowMs: 1000, warmUpMs: 3000, windowsBehind: 2 },
    });
    const variant = variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: main })!;
    const sink = new Recorder();
    const subscription = variant.subscribe(sink);
    await until('the encoder to step down', () => logs.some((l) => /gave \d+% of the camera's frames/.test(l)), 60_000);
    const stepped = logs.find((l) => /gave \d+% of the camera's frames/.test(l))!;
    assert.match(stepped, /^warn \[Cam \(VP8\)\] the VP8 encoder gave \d+% of the camera's frames \(the machine is too busy for it\); encoding at 640x360 at 15 fps from now on$/);
    const percent = Number(/gave (\d+)%/.exec(stepped)![1]);
    assert.ok(percent < 80, `${percent}% of the frames`);
    const atStep = sink.video().length;
    await until('30 more frames after the step', () => sink.video().length >= atStep + 30, 30_000);
    // Starts: the full-rate one (perhaps twice, when its fast probe missed the picture size), then
    // the one at 15 fps; one step only.
    const starts = readFileSync(`${slow}.starts`, 'utf8').trim().split('\n').filter((line) => line.includes('libvpx'));
    assert.ok(!starts[0]!.includes('-vf fps='), starts.join('\n'));
    assert.ok(starts.at(-1)!.includes("-vf fps=15,scale='min(640,iw)':'min(360,ih)'"), starts.join('\n'));
    assert.equal(starts.filter((line) => line.includes('-vf fps=')).length, 1, starts.join('\n'));
    assert.equal(logs.filter((l) => /gave \d+% of the camera's frames/.test(l)).length, 1, 'one step down');
    assert.equal(variants.reducedSteps('cam'), 1);
    assert.deepEqual(variants.encoders('cam'), [{ codec: 'VP8', picture: '640x360 at 15 fps', stepsDown: 1 }], 'what the Homebridge UI card shows');
    assert.deepEqual(encoders(), { picture: ['libvpx'], sound: 1, other: 0 }, 'the slow run ended before the new one started; the sound ran on');
    assert.equal(await withAudio.sessionCount(), 1);
    subscription.unsubscribe();
    await until('the encoder to stop', () => runningFfmpegPids().length === 0);
    assert.equal(variants.reducedSteps('cam'), undefined, 'no encoder, no figure');
    assert.deepEqual(variants.encoders('cam'), []);
    await variants.closeAll();
  });

  it('a hardware encoder whose trial worked is used; when it fails while encoding, the variant goes on in libx264 and later variants skip it', async () => {
    // No GPU here. This ffmpeg "has" h264_vaapi: in a variant run with it, it fails as a machine
    // whose render node went away does; everything else is the real ffmpeg.
    const gpu = join(scratch, 'ffmpeg-with-vaapi');
    await writeFile(gpu, [
      '#!/bin/sh',
      `printf '%s\\n' "$*" >> '${gpu}.starts'`,
      'case " $* " in',
      '  *" h264_vaapi "*) echo "[AVHWDeviceContext @ 0x55d0] [error] No VA display found for device /dev/dri/renderD128." >&2; exit 1;;',
      'esac',
      'exec ffmpeg "$@"',
      '',
    ].join('\n'));
    await chmod(gpu, 0o755);
    const logs: string[] = [];
    const log = lines(logs);
    const caps: FfmpegCapabilities = { ...ffmpeg, path: gpu, encoders: new Set([...ffmpeg.encoders, 'h264_vaapi']), hardwareH264Encoders: ['h264_vaapi'] };
    const trials: string[] = [];
    const { main, variants } = await chain(hevc, caps, log, {
      // Debian's ffmpeg also lists h264_v4l2m2m (a Raspberry Pi's), tried first: it fails here.
      hardwareTrial: async (encoder) => {
        trials.push(encoder.name);
        return encoder.name === 'h264_vaapi' ? { ok: true } : { ok: false, reason: 'no such device' };
      },
    });
    const variant = variants.variantFor('H264', { id: 'cam', name: 'Cam', source: main })!;
    const sink = new Recorder();
    const subscription = variant.subscribe(sink);
    await until('50 H.264 frames', () => sink.video().length >= 50);
    assert.equal(trials.at(-1), 'h264_vaapi');
    assert.equal(new Set(trials).size, trials.length, 'each tried once');
    // The picture's runs (the sound's own ffmpeg starts beside them).
    const pictureStarts = (): string[] => readFileSync(`${gpu}.starts`, 'utf8').trim().split('\n').filter((line) => line.includes('-c:v'));
    const starts = pictureStarts();
    assert.ok(starts[0]!.includes('-vaapi_device /dev/dri/renderD128') && starts[0]!.includes('-c:v h264_vaapi'), starts[0]);
    assert.ok(starts[1]!.includes('-c:v libx264') && !starts[1]!.includes('vaapi'), starts[1]);
    assert.ok(logs.some((l) => /^info using the hardware encoder h264_vaapi for H\.264 variants/.test(l)), logs.join('\n'));
    assert.ok(logs.some((l) => /^warn the hardware encoder h264_vaapi failed \(.*cannot reach its device.*\); libx264 encodes from now on$/.test(l)), logs.join('\n'));
    assert.equal(variant.state.state, 'live', 'the viewers never saw the variant fail');
    await assertDecodes(sink.video().slice(sink.video().findIndex((f) => f.keyframe)), 'H.264 variant after the fallback');
    subscription.unsubscribe();
    await until('the encoder to stop', () => runningFfmpegPids().length === 0);
    // A variant started after that goes straight to software, without another trial.
    const again = variants.variantFor('H264', { id: 'other', name: 'Other', source: main })!;
    const second = new Recorder();
    const otherSubscription = again.subscribe(second);
    await until('25 H.264 frames', () => second.video().length >= 25);
    const later = pictureStarts();
    assert.equal(later.length, 3);
    assert.ok(later[2]!.includes('-c:v libx264'));
    assert.equal(trials.filter((t) => t === 'h264_vaapi').length, 1, 'no second trial');
    otherSubscription.unsubscribe();
    await until('the encoder to stop', () => runningFfmpegPids().length === 0);
    await variants.closeAll();
  });

  it('a camera without audio gives a video-only variant', async () => {
    const { main, variants } = await chain(silent, ffmpeg, lines([]));
    const variant = variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: main })!;
    const sink = new Recorder();
    const subscription = variant.subscribe(sink);
    await until('25 VP8 frames', () => sink.video().length >= 25);
    assert.deepEqual(variant.tracks.map((t) => t.codec), ['VP8']);
    assert.ok(sink.frames.every((f) => f.kind === 'video'));
    subscription.unsubscribe();
    await variants.closeAll();
  });

  it('an ffmpeg that cannot transcode: the variant retries with ffmpeg\'s own reason; the camera\'s Source is untouched', async () => {
    const fake = join(scratch, 'ffmpeg-without-vp8');
    await writeFile(fake, '#!/bin/sh\necho "[error] Unknown encoder \'libvpx\'" >&2\nexit 1\n');
    await chmod(fake, 0o755);
    const caps = buildCapabilities(fake, 'videoProcessor', 'ffmpeg version 6.1', ' ------\n V....D libvpx  libvpx VP8', ' --\n E rtp  RTP output');
    const logs: string[] = [];
    const { main, variants } = await chain(withAudio, caps, lines(logs));
    const direct = new Recorder();
    const mainSubscription = main.subscribe(direct);
    const variant = variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: main })!;
    const sink = new Recorder();
    const subscription = variant.subscribe(sink);
    await until('the variant to retry', () => variant.state.state === 'retrying');
    assert.match(variant.state.lastError ?? '', /VP8 transcoder stopped: this ffmpeg has no VP8 encoder \(libvpx\).*ffmpeg said: "Unknown encoder 'libvpx'"/);
    assert.ok(logs.some((l) => /^warn \[Cam \(VP8\)\] (could not connect|lost the transcoder): the VP8 transcoder stopped/.test(l)), logs.join('\n'));
    // The variant fails at once, before the camera's session may have delivered its first frame:
    // only a flow that has started can be seen to go on.
    await until('the camera\'s own frames', () => direct.video().length > 0);
    const before = direct.video().length;
    await sleep(500);
    assert.ok(direct.video().length > before, 'the camera\'s own viewers still get frames');
    assert.equal(main.state.state, 'live');
    assert.equal(sink.video().length, 0);
    subscription.unsubscribe();
    mainSubscription.unsubscribe();
    await variants.closeAll();
  });

  it('no libvpx: no variant (viewers get the plain refusal instead)', () => {
    const caps = buildCapabilities('/usr/bin/ffmpeg', 'PATH', 'ffmpeg version 6.1', ' ------\n V....D libx264  H.264', ' --\n E rtp  RTP output');
    const variants = new TranscodedVariants({ ffmpeg: caps, restreamUrl: () => 'rtsp://127.0.0.1:1/cam', log: lines([]) });
    assert.equal(variants.available('VP8'), false);
    assert.equal(variants.available('H264'), true, 'libx264 makes the H.264 variant');
    assert.equal(variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: { tracks: [], subscribe: () => ({ unsubscribe: () => undefined }), on: () => undefined, off: () => undefined } }), undefined);
    assert.equal(new TranscodedVariants({ ffmpeg: undefined, restreamUrl: () => '', log: lines([]) }).available('H264'), false);
  });
});

describe('transcoded VP8 variant: units', () => {
  it('tells RTCP from RTP, and describes the tracks it asks ffmpeg for', () => {
    assert.equal(isRtcp(Buffer.from([0x80, 200, 0, 6])), true, 'sender report');
    assert.equal(isRtcp(Buffer.from([0x81, 204, 0, 1])), true);
    assert.equal(isRtcp(Buffer.from([0x80, 96, 0, 1])), false, 'VP8 RTP, payload type 96');
    assert.equal(isRtcp(Buffer.from([0x80, 0xe0, 0, 1])), false, 'marker + payload type 96');
    assert.equal(isRtcp(Buffer.from([0x80])), false);
    assert.deepEqual(variantTracks('VP8', true).map((t) => [t.codec, t.payloadType, t.clockRate]), [['VP8', 96, 90000], ['OPUS', 111, 48000]]);
    assert.deepEqual(variantTracks('VP8', false).map((t) => t.codec), ['VP8']);
  });
});
