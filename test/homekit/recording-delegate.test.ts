import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import hap from '@homebridge/hap-nodejs';
import type { CameraRecordingConfiguration, HAP, RecordingPacket } from 'homebridge';
import { HomeKitRecordingDelegate } from '../../src/homekit/recording/recording-delegate.js';
import { recordingOptions } from '../../src/homekit/recording/recording-options.js';
import { resolutionsFor } from '../../src/homekit/streaming-options.js';
import { Source } from '../../src/media/source.js';
import type { FfmpegCapabilities } from '../../src/ffmpeg/capabilities.js';
import { runningFfmpegPids } from '../../src/ffmpeg/ffmpeg-process.js';
import { findFfmpeg } from '../../src/ffmpeg/find-ffmpeg.js';
import type { MediaFrame, Subscribable, TrackDescription } from '../../src/media/types.js';
import { ffmpegCapabilities } from '../helpers/fake-ffmpeg.js';
import { FakeTime } from '../helpers/fake-time.js';
import { hubRecordingConfiguration } from './hub-configuration.js';
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

const configuration = hubRecordingConfiguration;

interface Rig {
  time: FakeTime;
  source: SyntheticSource;
  delegate: HomeKitRecordingDelegate;
  log: ReturnType<typeof recordingLogger>;
  /** Every video frame the camera sent, in order. */
  seen: MediaFrame[];
}

interface RigOptions {
  recordingAudioActive?: () => boolean;
  /** The ffmpeg that encodes G.711 for recordings (none by default). */
  ffmpeg?: FfmpegCapabilities | undefined;
  /** The hub's selected recording configuration (default `configuration()`). */
  configuration?: CameraRecordingConfiguration;
  /** Audio frames with timestamps in [from, to) never reach the recording (a hole in the camera's audio). */
  audioGap?: { from: number; to: number };
  encoderStartupGraceMs?: number;
}

/** The Source as the delegate sees it, less the audio frames inside `gap`. */
function withAudioGap(source: SyntheticSource, gap: { from: number; to: number }): Subscribable & { readonly tracks: ReadonlyArray<TrackDescription> } {
  const inGap = (frame: MediaFrame): boolean => frame.kind === 'audio' && frame.timestamp >= gap.from && frame.timestamp < gap.to;
  return {
    get tracks() {
      return source.tracks;
    },
    subscribe: (sink, options) =>
      source.subscribe({ ...sink, write: (frame) => inGap(frame) || sink.write(frame) }, options?.kinds ? { kinds: [...options.kinds] } : undefined),
  };
}

async function rig(audio: 'PCMU' | 'PCMA' | 'AAC', options: RigOptions = {}): Promise<Rig> {
  const time = new FakeTime();
  // 16 s of distinct pictures (1 s GOPs) so each IDR is found again by its bytes.
  const source = await SyntheticSource.create({ fps: FPS, gop: FPS, seconds: 16, audio, timers: time, now: time.clock, connectDelayMs: 0 });
  cleanup.push(() => source.close());
  const seen: MediaFrame[] = [];
  source.subscribe({ write: (frame) => (frame.kind === 'video' && seen.push(frame), true) });
  const log = recordingLogger();
  const delegate = new HomeKitRecordingDelegate({
    hap: HAP_API,
    source: options.audioGap ? withAudioGap(source, options.audioGap) : source,
    log,
    prebufferSeconds: 4,
    ...(options.recordingAudioActive ? { recordingAudioActive: options.recordingAudioActive } : {}),
    ...('ffmpeg' in options ? { ffmpeg: options.ffmpeg } : {}),
    ...(options.encoderStartupGraceMs !== undefined ? { encoderStartupGraceMs: options.encoderStartupGraceMs } : {}),
  });
  cleanup.push(() => delegate.close());
  delegate.updateRecordingConfiguration(options.configuration ?? configuration());
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
  const r = await rig('AAC', { recordingAudioActive: () => audioActive });
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
  assert.match(delegate.status().problem ?? '', /^the camera sends H265; recordings need H\.264/, 'the Homebridge UI names it too');

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

test('status() for the Homebridge UI: off, buffering with the pre-buffer held, recording while pulled, the count, and the newest problem by name', async () => {
  const r = await rig('AAC');
  r.delegate.updateRecordingActive(false);
  assert.deepEqual(r.delegate.status(), { state: 'off', prebufferSeconds: 4, bufferedSeconds: 0, bufferedBytes: 0, recordings: 0 });
  r.delegate.updateRecordingActive(true);
  await r.time.advance(7_000);
  const buffering = r.delegate.status();
  assert.equal(buffering.state, 'buffering');
  assert.ok(buffering.bufferedSeconds >= 4 && buffering.bufferedSeconds <= 5.1, `${buffering.bufferedSeconds} s held (4 s plus at most one 1 s GOP)`);
  assert.equal(buffering.bufferedBytes, r.delegate.prebuffer.stats().bytes);
  assert.ok(buffering.bufferedBytes > 0);

  const abort = new AbortController();
  const generator = r.delegate.handleRecordingStreamRequest(9, abort.signal);
  await generator.next();
  const recording = r.delegate.status();
  assert.equal(recording.state, 'recording');
  assert.equal(recording.recordings, 1);
  assert.equal(typeof recording.lastRecordingAt, 'number');
  assert.equal(recording.problem, undefined, 'an AAC-LC camera records with nothing missing');
  await generator.return(undefined);
  assert.equal(r.delegate.status().state, 'buffering');
  // A hub asking for AAC-ELD: the next recording is video-only, and the UI is told why in the log's words.
  r.delegate.updateRecordingConfiguration(configuration({ audioCodec: { type: hap.AudioRecordingCodecType.AAC_ELD, samplerate: hap.AudioRecordingSamplerate.KHZ_16, bitrate: 64, audioChannels: 1 } }));
  const eld = r.delegate.handleRecordingStreamRequest(10, abort.signal);
  await eld.next();
  const problem = r.delegate.status().problem;
  assert.match(problem ?? '', /the hub asked for AAC-ELD audio/);
  assert.ok(r.log.lines.some((l) => l.includes(`HomeKit Secure Video: ${problem!}.`)), r.log.lines.join('\n'));
  await eld.return(undefined);
  assert.equal(r.delegate.status().recordings, 2);
});

/**
 * Like `pull`, but paced so the recording's real ffmpeg (real time) keeps step with the fake clock:
 * 100 ms of fake time, then `realMs` of real time; before the hub closes the stream, the last
 * fragment gets `settleMs` of real time to take its audio.
 */
async function pullPaced(r: Rig, id: number, ms: number, during?: (elapsedMs: number) => void): Promise<RecordingPacket[]> {
  const abort = new AbortController();
  const chunks: RecordingPacket[] = [];
  const pulled = (async () => {
    for await (const packet of r.delegate.handleRecordingStreamRequest(id, abort.signal)) chunks.push(packet);
  })();
  for (let t = 0; t < ms; t += 100) {
    await r.time.advance(100);
    await delay(25);
    during?.(t);
  }
  await delay(800);
  r.delegate.closeRecordingStream(id, hap.HDSProtocolSpecificErrorReason.NORMAL);
  await pulled;
  return chunks;
}

/** The recording's sound decoded to mono 16-bit PCM at `rate` by ffmpeg. */
function decodedSound(file: string, rate: number): Int16Array {
  const result = spawnSync('ffmpeg', ['-hide_banner', '-v', 'error', '-i', file, '-map', '0:a:0', '-ac', '1', '-ar', String(rate), '-f', 's16le', 'pipe:1'], {
    maxBuffer: 64 * 1024 * 1024,
  });
  assert.equal(result.status, 0, result.stderr.toString());
  const pcm = result.stdout;
  return new Int16Array(pcm.buffer, pcm.byteOffset, Math.floor(pcm.length / 2));
}

/** Sign changes in [from, to) seconds: twice the tone's frequency per second. */
function zeroCrossings(pcm: Int16Array, rate: number, from: number, to: number): number {
  let crossings = 0;
  for (let i = Math.round(from * rate) + 1; i < Math.round(to * rate); i++) if ((pcm[i - 1]! < 0) !== (pcm[i]! < 0)) crossings++;
  return crossings;
}

function rms(pcm: Int16Array, rate: number, from: number, to: number): number {
  let sum = 0;
  const start = Math.round(from * rate);
  const end = Math.round(to * rate);
  for (let i = start; i < end; i++) sum += pcm[i]! * pcm[i]!;
  return Math.sqrt(sum / Math.max(1, end - start));
}

/** The synthetic camera's audio clock (8 kHz) starts at 8000 at the same moment its video clock (90 kHz) is at 90000. */
const SYNTH_AUDIO_START = 8000;
/** A hole in the camera's G.711: 0.5 s of audio, 5 s after the camera started. */
const GAP = { from: SYNTH_AUDIO_START + 5 * 8000, to: SYNTH_AUDIO_START + 5.5 * 8000 };

/**
 * A G.711 camera recorded with the real ffmpeg at the hub's `rate`: AAC-LC at that rate, decodable,
 * the 440 Hz tone where it was, silence where the camera's audio had a hole, audio as long as the
 * video; ffmpeg gone after the stream. Returns the measured audio-video offsets.
 */
async function recordG711(codec: 'PCMU' | 'PCMA', samplerate: number, rate: number): Promise<{ startOffset: number; endOffset: number }> {
  const ffmpeg = await findFfmpeg({ log: recordingLogger() });
  assert.ok(ffmpeg, 'the test needs a real ffmpeg (system or ffmpeg-for-homebridge)');
  const r = await rig(codec, {
    ffmpeg,
    audioGap: GAP,
    configuration: configuration({ audioCodec: { type: hap.AudioRecordingCodecType.AAC_LC, samplerate, bitrate: 32, audioChannels: 1 } }),
  });
  await r.time.advance(7_000);
  const before = new Set(runningFfmpegPids());
  let encoderPids: number[] = [];
  const chunks = await pullPaced(r, 11, 6_000, () => {
    if (encoderPids.length === 0) encoderPids = runningFfmpegPids().filter((pid) => !before.has(pid));
  });
  assert.equal(encoderPids.length, 1, 'one ffmpeg for the recording stream');
  assert.ok(!runningFfmpegPids().includes(encoderPids[0]!), 'the recording ended its ffmpeg');
  assert.throws(() => process.kill(encoderPids[0]!, 0), { code: 'ESRCH' }, 'no ffmpeg process is left');

  const file = await saved(chunks);
  const info = await probe(file);
  assert.deepEqual([info.audio?.codecName, info.audio?.profile, info.audio?.sampleRate, info.audio?.channels], ['aac', 'LC', rate, 1]);
  const all = await runFfmpeg(['-hide_banner', '-v', 'error', '-i', file, '-map', '0', '-f', 'null', '-'], 60_000);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stderr.trim(), '', 'ffmpeg reported errors decoding the recording');

  const read = await readFrames(file, { seconds: 30 });
  const videoStart = read.video[0]!.time!;
  const videoEnd = read.video.at(-1)!.time! + 1 / FPS;
  const audioStart = read.audio[0]!.time!;
  const audioEnd = read.audio.at(-1)!.time! + read.audio.at(-1)!.nbSamples! / rate;
  const offsets = { startOffset: audioStart - videoStart, endOffset: audioEnd - videoEnd };
  assert.ok(videoEnd - videoStart >= 8, `${videoEnd - videoStart} s of video`);
  assert.ok(Math.abs(offsets.startOffset) <= 0.1, `audio starts ${offsets.startOffset} s after the video`);
  assert.ok(Math.abs(offsets.endOffset) <= 0.1, `audio ends ${offsets.endOffset} s after the video`);

  // Where the camera's clocks put the hole, in the recording's time: its first video frame is its origin.
  const originIdr = idrOf(firstSample(chunks[1]!.data));
  const origin = r.seen.find((f) => f.keyframe && f.units.some((u) => originIdr && u.equals(originIdr)));
  assert.ok(origin);
  const originSeconds = (origin.timestamp - 90000) / 90000;
  const gapAt = (GAP.from - SYNTH_AUDIO_START) / 8000 - originSeconds + videoStart;
  assert.ok(gapAt > 1.5 && gapAt < 4, `the hole is ${gapAt} s into the recording`);
  const pcm = decodedSound(file, rate);
  const before1s = zeroCrossings(pcm, rate, gapAt - 1.2, gapAt - 0.2);
  const after1s = zeroCrossings(pcm, rate, gapAt + 0.7, gapAt + 1.7);
  for (const crossings of [before1s, after1s]) assert.ok(Math.abs(crossings - 880) <= 10, `${crossings} zero crossings in 1 s: not a 440 Hz tone`);
  const tone = rms(pcm, rate, gapAt - 1.2, gapAt - 0.2);
  const hole = rms(pcm, rate, gapAt + 0.1, gapAt + 0.4);
  assert.ok(tone > 1000, `tone RMS ${tone}`);
  assert.ok(hole < tone / 20, `the hole is silence (RMS ${hole} against the tone's ${tone}): the gap was filled in place`);
  // Its edges are where the camera's clock puts them, within 20 ms.
  const edges = [rms(pcm, rate, gapAt - 0.1, gapAt - 0.02), rms(pcm, rate, gapAt + 0.02, gapAt + 0.1), rms(pcm, rate, gapAt + 0.52, gapAt + 0.6)];
  assert.ok(edges[0]! > tone / 2 && edges[1]! < tone / 20 && edges[2]! > tone / 2, `RMS around the hole's edges: ${edges.join(', ')}`);

  assert.equal(r.log.lines.filter((l) => l.includes(`audio is encoded to AAC-LC ${rate / 1000} kHz`)).length, 1, r.log.lines.join('\n'));
  assert.deepEqual(r.log.lines.filter((l) => l.startsWith('warn')), [], 'no encoder failure');
  return offsets;
}

test('a G.711 µ-law camera records with sound: AAC-LC at the hub\'s 16 kHz, the tone and the hole in place, as long as the video, ffmpeg gone after', async (t) => {
  const offsets = await recordG711('PCMU', hap.AudioRecordingSamplerate.KHZ_16, 16000);
  t.diagnostic(`PCMU -> AAC-LC 16 kHz: audio starts ${(offsets.startOffset * 1000).toFixed(0)} ms, ends ${(offsets.endOffset * 1000).toFixed(0)} ms after the video`);
});

test('a G.711 A-law camera records with sound at the hub\'s 24 kHz (resampled by ffmpeg)', async (t) => {
  const offsets = await recordG711('PCMA', hap.AudioRecordingSamplerate.KHZ_24, 24000);
  t.diagnostic(`PCMA -> AAC-LC 24 kHz: audio starts ${(offsets.startOffset * 1000).toFixed(0)} ms, ends ${(offsets.endOffset * 1000).toFixed(0)} ms after the video`);
});

test('no ffmpeg: a G.711 camera records video only, and the log says why once', async () => {
  const found = await findFfmpeg({ log: recordingLogger(), searchPath: '', bundledPath: () => Promise.resolve(undefined) });
  assert.equal(found, undefined);
  const r = await rig('PCMU', { ffmpeg: found });
  await r.time.advance(6_000);
  const before = runningFfmpegPids().length;
  for (const id of [21, 22]) {
    const info = await probe(await saved(await pull(r, id, 3_000)));
    assert.equal(info.video?.codecName, 'h264');
    assert.equal(info.audio, undefined, 'video only');
  }
  assert.equal(runningFfmpegPids().length, before, 'no ffmpeg was started');
  const message = "HomeKit Secure Video: the camera's audio is G.711 µ-law (PCMU); recordings are video-only because ffmpeg was not found (see the message above), and it encodes the sound to AAC.";
  // Said once; the second recording repeats it only at debug level.
  assert.deepEqual(r.log.lines.filter((l) => l.includes('G.711 µ-law (PCMU)')), [`info ${message}`, `debug ${message}`]);
});

test('the encoder\'s ffmpeg dying mid-recording: the recording goes on video-only, the log says why once', async () => {
  const ffmpeg = await findFfmpeg({ log: recordingLogger() });
  assert.ok(ffmpeg);
  const r = await rig('PCMU', { ffmpeg });
  await r.time.advance(6_000);
  const before = new Set(runningFfmpegPids());
  let killed: number | undefined;
  const chunks = await pullPaced(r, 31, 8_000, (elapsed) => {
    if (killed !== undefined || elapsed < 2_000) return;
    killed = runningFfmpegPids().find((pid) => !before.has(pid));
    if (killed !== undefined) process.kill(killed, 'SIGKILL');
  });
  assert.ok(killed !== undefined, 'the encoder ran');
  const warnings = r.log.lines.filter((l) => l.startsWith('warn'));
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /G\.711 µ-law \(PCMU\) to AAC-LC encoder \(ffmpeg .*\) exited .*; this recording continues without sound\./);
  const file = await saved(chunks);
  const read = await readFrames(file, { seconds: 30 });
  const frames = chunks.slice(1).reduce((n, c) => n + sampleCount(c.data), 0);
  assert.equal(read.video.length, frames, 'every recorded video frame decodes');
  // The pre-buffer and about 2 s live had sound; the video went on for the whole 8 s.
  const videoEnd = read.video.at(-1)!.time!;
  const audioEnd = read.audio.at(-1)!.time!;
  assert.ok(videoEnd - audioEnd > 3, `video runs ${videoEnd - audioEnd} s past the sound`);
  assert.ok(frames >= 10 * FPS, `${frames} frames recorded`);
});

test('an encoder that falls behind (an ffmpeg that reads but never answers): video-only from then on, said once, the process ended', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hksv-slow-ffmpeg-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'ffmpeg');
  await writeFile(script, '#!/bin/sh\nexec cat > /dev/null\n', { mode: 0o755 });
  // No start-up grace: this stand-in never answers, so its lag is real from the start.
  const r = await rig('PCMU', { ffmpeg: { ...ffmpegCapabilities(), path: script }, encoderStartupGraceMs: 0 });
  await r.time.advance(6_000);
  const before = new Set(runningFfmpegPids());
  let stuck: number | undefined;
  const chunks = await pullPaced(r, 41, 5_000, () => {
    stuck ??= runningFfmpegPids().find((pid) => !before.has(pid));
  });
  assert.ok(stuck !== undefined, 'the stand-in encoder ran');
  assert.throws(() => process.kill(stuck!, 0), { code: 'ESRCH' }, 'the stuck encoder was ended');
  const warnings = r.log.lines.filter((l) => l.startsWith('warn'));
  assert.equal(warnings.length, 1, warnings.join('\n'));
  assert.match(warnings[0]!, /G\.711 µ-law \(PCMU\) to AAC-LC encoder \(ffmpeg .*\) fell \d+\.\d s behind; this recording continues without sound\./);
  const file = await saved(chunks);
  const decoded = await decodeVideo(file, { timeoutMs: 60_000 });
  assert.deepEqual(decoded.errors, []);
  assert.equal(decoded.videoFrames, chunks.slice(1).reduce((n, c) => n + sampleCount(c.data), 0));
  assert.ok(decoded.videoFrames >= 8 * FPS, `${decoded.videoFrames} frames recorded`);
});

test('a hub asking for AAC-ELD gets video only, and the log says why once (with and without libfdk_aac)', async () => {
  const eld = configuration({ audioCodec: { type: hap.AudioRecordingCodecType.AAC_ELD, samplerate: hap.AudioRecordingSamplerate.KHZ_16, bitrate: 32, audioChannels: 1 } });
  for (const libfdkAac of [false, true]) {
    const r = await rig('PCMU', { ffmpeg: ffmpegCapabilities({ libfdkAac }), configuration: eld });
    await r.time.advance(6_000);
    for (const id of [51, 52]) {
      const info = await probe(await saved(await pull(r, id, 2_000)));
      assert.equal(info.video?.codecName, 'h264');
      assert.equal(info.audio, undefined);
    }
    const said = r.log.lines.filter((l) => l.includes('AAC-ELD') && !l.startsWith('debug'));
    assert.equal(said.length, 1, said.join('\n'));
    assert.match(said[0]!, libfdkAac ? /this ffmpeg has libfdk_aac, but encoding AAC-ELD for recordings is not built/ : /it needs libfdk_aac, which this ffmpeg lacks/);
  }
});

test('an encoder slow to start (1.5 s, a busy Raspberry Pi) keeps the recording\'s sound: its lag counts only after the start-up grace', async () => {
  const real = await findFfmpeg({ log: recordingLogger() });
  assert.ok(real);
  const dir = await mkdtemp(join(tmpdir(), 'hksv-slow-start-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const script = join(dir, 'ffmpeg');
  await writeFile(script, `#!/bin/sh\nsleep 1.5\nexec '${real.path}' "$@"\n`, { mode: 0o755 });
  const r = await rig('PCMU', { ffmpeg: { ...real, path: script } });
  await r.time.advance(6_000);
  const chunks = await pullPaced(r, 61, 8_000);
  const warnings = r.log.lines.filter((l) => l.startsWith('warn'));
  assert.deepEqual(warnings, [], 'no "fell behind": the pre-buffer\'s sound waited for ffmpeg to start');
  const read = await readFrames(await saved(chunks), { seconds: 30 });
  assert.ok(read.audio.length > 0, 'the recording has sound');
  const videoEnd = read.video.at(-1)!.time!;
  const audioEnd = read.audio.at(-1)!.time!;
  assert.ok(Math.abs(videoEnd - audioEnd) < 1, `sound runs to the end (video ${videoEnd} s, audio ${audioEnd} s)`);
});
