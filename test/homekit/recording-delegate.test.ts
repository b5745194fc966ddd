import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import hap from '@homebridge/hap-nodejs';
import type { CameraRecordingConfiguration, HAP, RecordingPacket } from 'homebridge';
import { HomeKitRecordingDelegate } from '../../src/homekit/recording/recording-delegate.js';
import { recordingOptions } from '../../src/homekit/recording/recording-options.js';
import { resolutionsFor } from '../../src/homekit/streaming-options.js';
import { Source } from '../../src/media/source.js';
import type { MediaFrame } from '../../src/media/types.js';
import { FakeTime } from '../helpers/fake-time.js';
import { decodeVideo, probe, readFrames, runFfmpeg } from '../helpers/ffprobe.js';
import { findBox, firstSample, idrOf, sampleCount, topLevelBoxes } from '../helpers/mp4.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { ScriptedCamera, smallH264 } from '../media/helpers/scripted-camera.js';

const HAP_API = hap as unknown as HAP;
const FPS = 25;
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function configuration(overrides: Partial<CameraRecordingConfiguration> = {}): CameraRecordingConfiguration {
  return {
    prebufferLength: 4000,
    eventTriggerTypes: [hap.EventTriggerOption.MOTION],
    mediaContainerConfiguration: { type: hap.MediaContainerType.FRAGMENTED_MP4, fragmentLength: 4000 },
    videoCodec: {
      type: hap.VideoCodecType.H264,
      parameters: { profile: hap.H264Profile.HIGH, level: hap.H264Level.LEVEL4_0, bitRate: 2000, iFrameInterval: 4000 },
      resolution: [1280, 720, 30],
    },
    audioCodec: { type: hap.AudioRecordingCodecType.AAC_LC, samplerate: hap.AudioRecordingSamplerate.KHZ_16, bitrate: 64, audioChannels: 1 },
    ...overrides,
  };
}

interface Rig {
  time: FakeTime;
  source: SyntheticSource;
  delegate: HomeKitRecordingDelegate;
  log: ReturnType<typeof recordingLogger>;
  /** Every video frame the camera sent, in order. */
  seen: MediaFrame[];
}

async function rig(audio: 'PCMU' | 'AAC', recordingAudioActive?: () => boolean): Promise<Rig> {
  const time = new FakeTime();
  // 16 s of distinct pictures (1 s GOPs) so each IDR is found again by its bytes.
  const source = await SyntheticSource.create({ fps: FPS, gop: FPS, seconds: 16, audio, timers: time, now: time.clock, connectDelayMs: 0 });
  cleanup.push(() => source.close());
  const seen: MediaFrame[] = [];
  source.subscribe({ write: (frame) => (frame.kind === 'video' && seen.push(frame), true) });
  const log = recordingLogger();
  const delegate = new HomeKitRecordingDelegate({ hap: HAP_API, source, log, prebufferSeconds: 4, ...(recordingAudioActive ? { recordingAudioActive } : {}) });
  cleanup.push(() => delegate.close());
  delegate.updateRecordingConfiguration(configuration());
  delegate.updateRecordingActive(true);
  return { time, source, delegate, log, seen };
}

/** Pulls stream `id` the way HAP-NodeJS's data-stream side does, for `ms` of fake time, then closes it as the hub does. */
async function pull(r: Rig, id: number, ms: number): Promise<RecordingPacket[]> {
  const abort = new AbortController();
  const chunks: RecordingPacket[] = [];
  const pulled = (async () => {
    for await (const packet of r.delegate.handleRecordingStreamRequest(id, abort.signal)) chunks.push(packet);
  })();
  for (let t = 0; t < ms; t += 100) await r.time.advance(100);
  r.delegate.closeRecordingStream(id, hap.HDSProtocolSpecificErrorReason.NORMAL);
  await pulled;
  return chunks;
}

async function saved(chunks: RecordingPacket[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hksv-test-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'recording.mp4');
  await writeFile(file, Buffer.concat(chunks.map((c) => c.data)));
  return file;
}

test('a recording pulled as a hub does: init segment, the pre-buffer from a keyframe >= 4 s before the trigger, live fragments <= 4 s on keyframes, all decodable', async () => {
  const r = await rig('PCMU');
  const { source, delegate, log, seen } = r;
  assert.equal(source.subscriberCount, 2, 'the pre-buffer is one more subscriber of the same Source');
  await r.time.advance(7_000);

  const trigger = seen.at(-1)!.timestamp;
  const chunks = await pull(r, 1, 6_000);
  assert.equal(delegate.streamCount, 0);
  assert.equal(delegate.prebuffer.stats().followers, 0, 'the closed recording stopped following the live frames');
  assert.equal(delegate.prebuffer.active, true, 'recording stays on after one event');

  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  assert.ok(chunks.every((c) => !c.isLast));
  assert.deepEqual(topLevelBoxes(chunks[0]!.data).map((b) => b.type), ['ftyp', 'moov']);
  assert.ok(findBox(chunks[0]!.data, ['moov', 'mvex', 'trex']));
  for (const chunk of chunks.slice(1)) assert.deepEqual(topLevelBoxes(chunk.data).map((b) => b.type), ['moof', 'mdat']);

  // The recording's first picture is the camera's keyframe at least 4 s (and under a GOP more) before the trigger.
  const firstIdr = idrOf(firstSample(chunks[1]!.data));
  assert.ok(firstIdr, 'the first fragment starts with an IDR');
  const origin = seen.find((f) => f.keyframe && f.units.some((u) => u.equals(firstIdr)));
  assert.ok(origin, 'the first IDR is one the camera sent');
  const lead = ((trigger - origin.timestamp) >>> 0) / 90000;
  assert.ok(lead >= 4 && lead < 5, `pre-buffer reaches ${lead} s before the trigger`);

  const file = await saved(chunks);
  const info = await probe(file);
  assert.equal(info.video?.codecName, 'h264');
  assert.deepEqual([info.video?.width, info.video?.height], [640, 360]);
  assert.equal(info.audio, undefined, 'a PCMU camera records video only');
  const frames = chunks.slice(1).reduce((n, c) => n + sampleCount(c.data), 0);
  const decoded = await decodeVideo(file, { timeoutMs: 60_000 });
  assert.deepEqual(decoded.errors, []);
  assert.equal(decoded.videoFrames, frames);
  // Pre-buffer (>= 4 s) plus most of the 6 s pulled live, in whole fragments.
  assert.ok(frames >= 8 * FPS, `${frames} frames recorded`);
  const read = await readFrames(file, { seconds: 30 });
  let index = 0;
  const starts: number[] = [];
  for (const chunk of chunks.slice(1)) {
    assert.equal(read.video[index]?.keyFrame, true, `fragment at frame ${index} starts on a keyframe`);
    starts.push(read.video[index]!.time!);
    index += sampleCount(chunk.data);
  }
  starts.push(frames / FPS + read.video[0]!.time!);
  for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! - starts[i - 1]! <= 4 + 1e-6, `fragment ${i} lasts ${starts[i]! - starts[i - 1]!} s`);

  assert.equal(log.lines.filter((l) => l.includes('G.711 µ-law (PCMU)')).length, 1, log.lines.join('\n'));
  delegate.updateRecordingActive(false);
  assert.equal(source.subscriberCount, 1, 'recording off: the pre-buffer left the Source');
  assert.equal(delegate.prebuffer.stats().bytes, 0);
});

test('the hub opens the stream 1 s after the motion event: the recording still reaches >= 4 s before the event, not before the request', async () => {
  const r = await rig('PCMU');
  await r.time.advance(7_000);
  const trigger = r.seen.at(-1)!.timestamp;
  r.delegate.markEvent();
  // The hub sees the event and asks a second later (1 s GOPs: a keyframe passes the 4 s mark meanwhile).
  await r.time.advance(1_000);
  const chunks = await pull(r, 8, 2_000);
  const firstIdr = idrOf(firstSample(chunks[1]!.data));
  const origin = r.seen.find((f) => f.keyframe && firstIdr && f.units.some((u) => u.equals(firstIdr)));
  assert.ok(origin, 'the first IDR is one the camera sent');
  const lead = ((trigger - origin.timestamp) >>> 0) / 90000;
  assert.ok(lead >= 4 && lead < 5, `the recording starts ${lead} s before the event`);
});

test('an AAC-LC camera records its audio as is (mp4a/esds), decodable; with RecordingAudioActive off, video only', async () => {
  let audioActive = true;
  const r = await rig('AAC', () => audioActive);
  await r.time.advance(6_000);
  const chunks = await pull(r, 2, 5_000);
  const init = chunks[0]!.data;
  assert.ok(findBox(init, ['moov', 'trak', 'mdia', 'minf', 'stbl', 'stsd']));
  const file = await saved(chunks);
  const info = await probe(file);
  assert.equal(info.audio?.codecName, 'aac');
  assert.equal(info.audio?.profile, 'LC');
  assert.deepEqual([info.audio?.sampleRate, info.audio?.channels], [16000, 1]);
  const all = await runFfmpeg(['-hide_banner', '-v', 'error', '-i', file, '-map', '0', '-f', 'null', '-'], 60_000);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stderr.trim(), '', 'ffmpeg reported errors decoding the recording');
  const read = await readFrames(file, { seconds: 30 });
  // 16 kHz / 1024 samples: 15.6 AAC frames a second of video, give or take the fragment edges.
  const seconds = read.video.length / FPS;
  assert.ok(Math.abs(read.audio.length - seconds * 15.625) <= 2 * 15.625, `${read.audio.length} audio frames for ${seconds} s`);
  assert.ok(Math.abs(read.audio[0]!.time! - read.video[0]!.time!) <= 1 / FPS + 1e-6, 'audio starts with the video');

  audioActive = false;
  const silent = await probe(await saved(await pull(r, 3, 2_000)));
  assert.equal(silent.audio, undefined);
  assert.equal(silent.video?.codecName, 'h264');
});

test('with the real Source: one camera session feeds a viewer and the pre-buffer, and the recording decodes', async () => {
  const time = new FakeTime();
  // SPS/PPS only in the stream's first access unit: the Source puts them in front of every later IDR.
  const camera = new ScriptedCamera(time, smallH264(25, 4));
  const source = new Source({ id: 'cam', name: 'Cam', upstream: camera.factory, now: time.clock, timers: time, random: () => 0.5 });
  cleanup.push(() => source.close());
  let viewerFrames = 0;
  source.subscribe({ write: () => (viewerFrames++, true) });
  const log = recordingLogger();
  const delegate = new HomeKitRecordingDelegate({ hap: HAP_API, source, log, prebufferSeconds: 4 });
  cleanup.push(() => delegate.close());
  delegate.updateRecordingConfiguration(configuration());
  delegate.updateRecordingActive(true);
  await time.advance(10);
  await camera.play(6 * FPS);

  const chunks: RecordingPacket[] = [];
  const pulled = (async () => {
    for await (const packet of delegate.handleRecordingStreamRequest(5, new AbortController().signal)) chunks.push(packet);
  })();
  await camera.play(5 * FPS);
  delegate.closeRecordingStream(5, hap.HDSProtocolSpecificErrorReason.NORMAL);
  await pulled;
  assert.equal(camera.attempts, 1, 'the viewer and the recording share one camera session');
  assert.ok(viewerFrames > 11 * FPS);

  const file = await saved(chunks);
  const info = await probe(file);
  assert.deepEqual([info.video?.codecName, info.video?.width, info.video?.height], ['h264', 320, 240]);
  const frames = chunks.slice(1).reduce((n, c) => n + sampleCount(c.data), 0);
  assert.ok(frames >= 8 * FPS, `${frames} frames recorded`);
  const decoded = await decodeVideo(file, { timeoutMs: 60_000 });
  assert.deepEqual(decoded.errors, []);
  assert.equal(decoded.videoFrames, frames);
});

test('HAP-NodeJS closing a stream with generator.return() while a fragment is held releases the follower', async () => {
  const r = await rig('PCMU');
  await r.time.advance(6_000);
  const generator = r.delegate.handleRecordingStreamRequest(4, new AbortController().signal);
  const init = await generator.next();
  assert.equal(init.done, false);
  assert.deepEqual(topLevelBoxes(init.value!.data).map((b) => b.type), ['ftyp', 'moov']);
  assert.equal(r.delegate.prebuffer.stats().followers, 1);
  // The hub reads nothing more for a while; live frames wait in the bounded queue meanwhile.
  await r.time.advance(2_000);
  await generator.return(undefined);
  assert.equal(r.delegate.prebuffer.stats().followers, 0);
  assert.equal(r.delegate.streamCount, 0);
});

test('a camera that does not send H.264 is refused by name; the recording options offer H.264 Main/High and AAC-LC', async () => {
  const time = new FakeTime();
  const source = await SyntheticSource.create({
    timers: time, now: time.clock, connectDelayMs: 0,
    tracksOverride: [{ kind: 'video', codec: 'H265', payloadType: 96, clockRate: 90000, fmtp: {}, controlUrl: 'x' }],
  });
  cleanup.push(() => source.close());
  const log = recordingLogger();
  const delegate = new HomeKitRecordingDelegate({ hap: HAP_API, source, log });
  cleanup.push(() => delegate.close());
  await assert.rejects(
    delegate.handleRecordingStreamRequest(6).next(),
    (error: unknown) => error instanceof hap.HDSProtocolError && error.reason === hap.HDSProtocolSpecificErrorReason.INVALID_CONFIGURATION,
  );
  delegate.updateRecordingConfiguration(configuration());
  delegate.updateRecordingActive(true);
  await time.advance(100);
  await assert.rejects(
    delegate.handleRecordingStreamRequest(7).next(),
    (error: unknown) => error instanceof hap.HDSProtocolError && error.reason === hap.HDSProtocolSpecificErrorReason.UNSUPPORTED,
  );
  assert.ok(log.lines.some((l) => l.startsWith('error') && l.includes('the camera sends H265; recordings need H.264')), log.lines.join('\n'));

  const options = recordingOptions(HAP_API, { resolutions: resolutionsFor(1920, 1080), prebufferSeconds: 4, aacSampleRate: 16000 });
  assert.equal(options.prebufferLength, 4000);
  assert.deepEqual(options.mediaContainerConfiguration, [{ type: hap.MediaContainerType.FRAGMENTED_MP4, fragmentLength: 4000 }]);
  assert.deepEqual(options.video.parameters.profiles, [hap.H264Profile.MAIN, hap.H264Profile.HIGH]);
  assert.ok(options.video.resolutions.some(([w, h, fps]) => w === 1920 && h === 1080 && fps === 15));
  assert.ok(options.video.resolutions.some(([w, h, fps]) => w === 1280 && h === 720 && fps === 30));
  assert.deepEqual(options.audio.codecs, [{ type: hap.AudioRecordingCodecType.AAC_LC, audioChannels: 1, samplerate: hap.AudioRecordingSamplerate.KHZ_16 }]);
  assert.equal(recordingOptions(HAP_API, { resolutions: [], prebufferSeconds: 20 }).prebufferLength, 8000);
  assert.deepEqual(
    recordingOptions(HAP_API, { resolutions: [], prebufferSeconds: 4, aacSampleRate: 48000, aacChannels: 2 }).audio.codecs,
    [{ type: hap.AudioRecordingCodecType.AAC_LC, audioChannels: 2, samplerate: hap.AudioRecordingSamplerate.KHZ_48 }],
  );
  // The resolutions list has each size at 30 and 15 fps once, even where the input already had a 15 fps entry.
  const sizes = options.video.resolutions.map((r) => r.join('x'));
  assert.equal(new Set(sizes).size, sizes.length);
});
