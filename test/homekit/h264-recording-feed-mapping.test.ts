/**
 * The H.264 recording feed's bookkeeping (src/homekit/recording/h264-recording-feed.ts) with a
 * scripted encoder and a manual clock, for what the real ffmpeg will not do on demand: drop a
 * frame, answer a camera keyframe with a plain frame, stall, hang, exit. The real encoder's side is
 * h264-recording-feed.test.ts. Each H.265 frame written is read back from the encoder's stdin, so
 * the tests also check what the feed writes: whole access units, parameter sets on keyframes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FfmpegExit } from '../../src/ffmpeg/ffmpeg-process.js';
import { H264RecordingFeed, MAX_BACKLOG_MS, type FeedEncoder } from '../../src/homekit/recording/h264-recording-feed.js';
import { AnnexBSplitter } from '../../src/media/annexb.js';
import type { FrameSink, MediaFrame, TrackDescription } from '../../src/media/types.js';
import { memoryLogger } from './camera-rig.js';

const START = Buffer.from([0, 0, 0, 1]);
const H264_AUD = Buffer.from([0x09, 0xf0]);
const H264_SPS = Buffer.from([0x67, 0x4d, 0x00, 0x28, 0xaa]);
const H264_PPS = Buffer.from([0x68, 0xee, 0x3c, 0x80]);
/** H.265 NAL headers (VPS 32, SPS 33, PPS 34, IDR_W_RADL 19, TRAIL_R 1) and a byte naming the frame (never 0: a unit cannot end in a zero byte). */
const hevc = (type: number, frame: number): Buffer => Buffer.from([type << 1, 0x01, 0xaf, 0x80 | (frame & 0x7f)]);

const TRACKS: TrackDescription[] = [
  { kind: 'video', codec: 'H265', payloadType: 96, clockRate: 90000, fmtp: {}, controlUrl: 'rtsp://cam/track1' },
  { kind: 'audio', codec: 'AAC', payloadType: 97, clockRate: 16000, channels: 1, fmtp: {}, controlUrl: 'rtsp://cam/track2' },
];

/** The camera's side: hands the feed its sink, and frames on demand. */
class Camera {
  sink: FrameSink | undefined;
  subscribed = 0;
  readonly tracks = TRACKS;
  private videoIndex = 0;
  private audioIndex = 0;

  subscribe(sink: FrameSink): { unsubscribe(): void } {
    this.sink = sink;
    this.subscribed++;
    return { unsubscribe: () => { this.sink = undefined; } };
  }

  /** Video frame n (3600 ticks apart: 25 fps); a keyframe carries VPS, SPS and PPS. */
  video(keyframe: boolean): MediaFrame {
    const n = this.videoIndex++;
    const units = keyframe ? [hevc(32, n), hevc(33, n), hevc(34, n), hevc(19, n)] : [hevc(1, n)];
    const frame: MediaFrame = { kind: 'video', codec: 'H265', clockRate: 90000, timestamp: 1000 + n * 3600, sequenceNumber: n, keyframe, units, packets: [], receivedAt: n, captureTime: 1_700_000_000_000 + n * 40 };
    this.sink?.write(frame);
    return frame;
  }

  audio(): MediaFrame {
    const n = this.audioIndex++;
    const frame: MediaFrame = { kind: 'audio', codec: 'AAC', clockRate: 16000, timestamp: 500 + n * 1024, sequenceNumber: n, keyframe: true, units: [Buffer.from([0x21, n & 0xff])], packets: [], receivedAt: n };
    this.sink?.write(frame);
    return frame;
  }
}

const H264_TRACKS: TrackDescription[] = [
  { kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90000, fmtp: { 'packetization-mode': '1' }, controlUrl: 'rtsp://cam/track1' },
  TRACKS[1]!,
];

/**
 * An H.264 camera as a Source: a subscription is told the tracks at once, then, asking
 * `fromKeyframe`, gets the frames from the newest keyframe (the GOP cache) first.
 */
class H264Camera extends Camera {
  override readonly tracks = H264_TRACKS;
  private cache: MediaFrame[] = [];
  private h264Index = 0;

  override subscribe(sink: FrameSink, options?: { fromKeyframe?: boolean }): { unsubscribe(): void } {
    const subscription = super.subscribe(sink);
    sink.onTracks?.(this.tracks);
    if (options?.fromKeyframe) for (const frame of this.cache) sink.write(frame);
    return subscription;
  }

  /** H.264 frame n (25 fps); a keyframe carries SPS and PPS. */
  h264(keyframe: boolean): MediaFrame {
    const n = this.h264Index++;
    const slice = Buffer.from([keyframe ? 0x65 : 0x41, 0x9a, 0x80 | (n & 0x7f)]);
    const frame: MediaFrame = { kind: 'video', codec: 'H264', clockRate: 90000, timestamp: 1000 + n * 3600, sequenceNumber: n, keyframe, units: keyframe ? [H264_SPS, H264_PPS, slice] : [slice], packets: [], receivedAt: n };
    if (keyframe) this.cache = [];
    if (this.cache.length > 0 || keyframe) this.cache.push(frame);
    this.sink?.write(frame);
    return frame;
  }
}

/** What the test's subscriber records when it is told the stream changed. */
const TRACKS_CHANGED: MediaFrame = { kind: 'audio', codec: 'AAC', clockRate: 16000, timestamp: 0, sequenceNumber: -1, keyframe: false, units: [], packets: [], receivedAt: -1 };

/** The scripted ffmpeg: records what it is given, answers with the H.264 the test asks for. */
class ScriptedEncoder implements FeedEncoder {
  running = true;
  stopped = false;
  readonly written: Buffer[][] = [];
  private readonly reader = new AnnexBSplitter();
  private exitListener: ((exit: FfmpegExit) => void) | undefined;

  constructor(readonly args: string[], private readonly onStdout: (chunk: Buffer) => void) {}

  readonly stdin = {
    write: (chunk: Buffer): boolean => {
      // One write per frame: its NAL units, the trailing H.265 or H.264 delimiter apart.
      const units = [...this.reader.push(chunk), ...this.reader.flush()].filter((u) => ((u[0]! >> 1) & 0x3f) !== 35 && !u.equals(H264_AUD));
      this.written.push(units);
      return true;
    },
  };

  /** One H.264 access unit out, behind its delimiter (the feed sees it once the next one begins). */
  emit(keyframe: boolean, tag: number): void {
    const slice = Buffer.from([keyframe ? 0x65 : 0x41, 0x88, 0x80 | tag]);
    const units = keyframe ? [H264_AUD, H264_SPS, H264_PPS, slice] : [H264_AUD, slice];
    this.onStdout(Buffer.concat(units.flatMap((u) => [START, u])));
  }

  /**
   * Closes the last access unit emitted: a delimiter after it, and a second one, because a unit is
   * known to be complete only when the next start code comes.
   */
  flush(): void {
    this.onStdout(Buffer.concat([START, H264_AUD, START, H264_AUD]));
  }

  once(_event: 'exit', listener: (exit: FfmpegExit) => void): this {
    this.exitListener = listener;
    return this;
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.running = false;
    return Promise.resolve();
  }

  die(line: string): void {
    this.running = false;
    this.exitListener?.({ code: 1, signal: null, requested: false, lines: [line], ranMs: 1000 });
  }
}

function rig(options: { restartDelayMs?: number; camera?: Camera; longGop?: { maxKeyframeIntervalMs: () => number; knownKeyframeIntervalMs?: () => number | undefined } } = {}): {
  camera: Camera;
  feed: H264RecordingFeed;
  encoders: ScriptedEncoder[];
  out: MediaFrame[];
  clock: { now: number };
  log: ReturnType<typeof memoryLogger>;
  unsubscribe: () => void;
} {
  const camera = options.camera ?? new Camera();
  const encoders: ScriptedEncoder[] = [];
  const clock = { now: 0 };
  const log = memoryLogger();
  const feed = new H264RecordingFeed({
    source: camera,
    ffmpeg: { path: '/usr/bin/ffmpeg', version: '5.1.6' },
    log,
    bitrateKbps: () => 1500,
    now: () => clock.now,
    startEncoder: (args, onStdout) => {
      const encoder = new ScriptedEncoder(args, onStdout);
      encoders.push(encoder);
      return encoder;
    },
    ...(options.restartDelayMs !== undefined ? { restartDelayMs: options.restartDelayMs } : {}),
    ...(options.longGop ? { longGop: options.longGop } : {}),
  });
  const out: MediaFrame[] = [];
  const subscription = feed.subscribe({ write: (frame) => (out.push(frame), true), onTracks: () => out.push(TRACKS_CHANGED) });
  return { camera, feed, encoders, out, clock, log, unsubscribe: () => subscription.unsubscribe() };
}

const tag = (frame: MediaFrame): number => frame.units.at(-1)!.at(-1)! & 0x7f;
const describeOut = (frames: MediaFrame[]): string[] =>
  frames.map((f) => (f === TRACKS_CHANGED ? 'tracks' : f.kind === 'audio' ? `a${f.sequenceNumber}` : `${f.keyframe ? 'K' : 'P'}${(f.timestamp - 1000) / 3600}#${tag(f)}`));

describe('the H.264 recording feed, with a scripted encoder', () => {
  it("maps each H.264 frame to the camera frame it came from, keeps the camera's order, and starts at a keyframe once the rate is known", () => {
    const { camera, feed, encoders, out } = rig();
    camera.video(false); // before any keyframe: nothing to start on
    const k0 = camera.video(true);
    camera.audio();
    assert.equal(encoders.length, 0, 'no encoder until the next frame says the frame rate');
    camera.video(false);
    assert.equal(encoders.length, 1);
    const encoder = encoders[0]!;
    assert.ok(encoder.args.includes('-r') && encoder.args[encoder.args.indexOf('-r') + 1] === '25', `the rate from the two frames: ${encoder.args.join(' ')}`);
    assert.equal(encoder.args[encoder.args.indexOf('-b:v') + 1], '1500k');
    assert.deepEqual(encoder.written.map((units) => units.length), [4, 1], 'the keyframe with VPS, SPS and PPS, then the next frame');
    assert.deepEqual(encoder.written[0], k0.units);
    camera.audio();
    camera.video(false);
    encoder.emit(true, 0);
    encoder.emit(false, 1);
    assert.deepEqual(describeOut(out), ['K1#0', 'a0'], 'a frame is known complete when the next begins; the sound waits behind the frame before it');
    encoder.emit(false, 2);
    encoder.flush();
    assert.deepEqual(describeOut(out), ['K1#0', 'a0', 'P2#1', 'a1', 'P3#2']);
    const key = out[0]!;
    assert.equal(key.codec, 'H264');
    assert.deepEqual(key.units.map((u) => u[0]! & 0x1f), [7, 8, 5], 'no delimiter in the frame; SPS and PPS on the keyframe');
    assert.equal(key.captureTime, k0.captureTime);
    assert.ok(key.packets.length > 0 && key.byteLength === key.units.reduce((n, u) => n + u.length, 0));
    assert.deepEqual(feed.stats(), { encoding: true, longGop: false, starts: 1, framesIn: 3, framesOut: 3, framesLost: 0, framesSkipped: 1 });
  });

  it("a frame the encoder drops: the next H.264 keyframe goes to the camera's next keyframe, and the frames between are counted lost", () => {
    const { camera, feed, encoders, out } = rig();
    camera.video(true); // 0
    camera.video(false); // 1
    camera.video(false); // 2
    camera.video(false); // 3
    camera.video(true); // 4
    camera.video(false); // 5
    const encoder = encoders[0]!;
    encoder.emit(true, 0);
    encoder.emit(false, 1);
    // Frame 2 never comes back; 3's H.264 is taken for 2's (nothing tells them apart) ...
    encoder.emit(false, 3);
    // ... until the keyframe: it is the camera's keyframe 4, and the frame left over (3) is lost.
    encoder.emit(true, 4);
    encoder.emit(false, 5);
    encoder.flush();
    assert.deepEqual(describeOut(out), ['K0#0', 'P1#1', 'P2#3', 'K4#4', 'P5#5']);
    assert.equal(feed.stats().framesLost, 1);
    // A plain frame out while the camera's keyframe is next cannot be that keyframe's: dropped.
    camera.video(true); // 6
    encoder.emit(false, 99);
    encoder.emit(true, 6);
    encoder.flush();
    assert.deepEqual(describeOut(out).slice(5), ['K6#6']);
  });

  it('an encoder that exits: its frames are lost, the sound goes on, the log says why once, and a new one starts at a keyframe after the pause', () => {
    const { camera, feed, encoders, out, clock, log } = rig({ restartDelayMs: 1000 });
    camera.video(true);
    camera.video(false);
    camera.audio();
    camera.video(false);
    camera.audio();
    encoders[0]!.emit(true, 0);
    encoders[0]!.die('[error] Conversion failed!');
    assert.deepEqual(describeOut(out), ['a0', 'a1'], 'the sound held behind the lost frames goes on');
    assert.equal(feed.stats().framesLost, 3);
    assert.match(feed.problem ?? '', /H\.264 encoder exited .*starts again in 1 s/);
    camera.audio();
    assert.deepEqual(describeOut(out), ['a0', 'a1', 'a2'], 'no encoder: the sound is not held');
    clock.now = 500;
    camera.video(true);
    camera.video(false);
    assert.equal(encoders.length, 1, 'still pausing');
    clock.now = 1000;
    camera.video(false);
    camera.video(true);
    assert.equal(encoders.length, 1, 'a start waits for a keyframe and the frame after it');
    camera.video(false);
    assert.equal(encoders.length, 2);
    encoders[1]!.emit(true, 6);
    encoders[1]!.flush();
    assert.deepEqual(describeOut(out).slice(3), ['K6#6']);
    assert.equal(feed.problem, undefined, 'back to normal: the UI stops saying it');
    // A second failure is said again on the card, not in the log.
    encoders[1]!.die('[error] Conversion failed!');
    assert.equal(log.lines.filter((line) => /H\.264 encoder exited/.test(line)).length, 1, log.text());
    assert.match(log.text(), /Conversion failed/);
  });

  it('an encoder that falls behind gets no video until it caught up, then from the next keyframe; a hung one is started again', () => {
    const { camera, feed, encoders, out, clock } = rig({ restartDelayMs: 1000 });
    camera.video(true); // 0
    camera.video(false); // 1
    const encoder = encoders[0]!;
    encoder.emit(true, 0);
    encoder.emit(false, 1);
    encoder.flush();
    // Past the start-up grace, frame 2 waits longer than the backlog limit.
    clock.now = 6000;
    camera.video(false); // 2
    clock.now = 6000 + MAX_BACKLOG_MS + 1;
    camera.video(false); // 3: behind, so not written
    camera.video(true); // 4: still behind
    assert.equal(encoder.written.length, 3);
    assert.match(feed.problem ?? '', /more than 2 s behind/);
    encoder.emit(false, 2);
    encoder.flush();
    camera.video(false); // 5: caught up, but not a keyframe
    camera.video(true); // 6
    assert.equal(encoder.written.length, 4, 'written again from the keyframe');
    assert.equal(feed.problem, undefined);
    assert.equal(feed.stats().framesSkipped, 3);
    encoder.emit(true, 6);
    encoder.flush();
    assert.deepEqual(describeOut(out), ['K0#0', 'P1#1', 'P2#2', 'K6#6']);
    // Now it hangs: frames go in, nothing comes out for 10 s.
    camera.video(false); // 7
    clock.now += 10_001;
    camera.video(false); // 8: the check runs, the encoder is dropped
    assert.equal(encoder.stopped, true);
    assert.match(feed.problem ?? '', /returned nothing for 10 s/);
    clock.now += 1000;
    camera.video(true);
    camera.video(false);
    assert.equal(encoders.length, 2);
  });

  it('a camera that sends H.264 passes untouched; a late subscriber starts at the next keyframe; the last one leaving stops the encoder', () => {
    const { camera, feed, encoders, out, unsubscribe } = rig();
    camera.video(true);
    camera.video(false);
    const encoder = encoders[0]!;
    encoder.emit(true, 0);
    encoder.emit(false, 1);
    assert.deepEqual(describeOut(out), ['K0#0']);
    const late: MediaFrame[] = [];
    const second = feed.subscribe({ write: (frame) => (late.push(frame), true) });
    assert.equal(camera.subscribed, 1, 'one camera subscription for both');
    camera.audio();
    camera.video(true);
    encoder.emit(true, 2);
    encoder.flush();
    assert.deepEqual(describeOut(out), ['K0#0', 'P1#1', 'a0', 'K2#2']);
    assert.deepEqual(describeOut(late), ['K2#2'], 'the late one begins at the next keyframe (the sound before it is not for it)');
    const h264: MediaFrame = { kind: 'video', codec: 'H264', clockRate: 90000, timestamp: 1, sequenceNumber: 0, keyframe: true, units: [H264_SPS, H264_PPS, Buffer.from([0x65, 1])], packets: [], receivedAt: 0 };
    camera.sink!.write(h264);
    assert.equal(out.at(-1), h264, 'the same frame object');
    second.unsubscribe();
    assert.equal(encoder.stopped, false, 'one subscriber left');
    unsubscribe();
    assert.equal(encoder.stopped, true);
    assert.equal(camera.sink, undefined, "the camera's Source is let go");
    assert.deepEqual(feed.tracks.map((t) => t.codec), ['H264', 'AAC']);
  });
});

describe('the H.264 recording feed for an H.264 camera with long GOPs (longGop)', () => {
  /** The hub's 4 s fragments: keyframes more than 4.4 s apart are too long; the encoder's come every 2 s (50 frames). */
  const longGop = { maxKeyframeIntervalMs: (): number => 4000 };
  /** The frames the subscriber got, and how often it was told the stream changed. */
  const split = (out: MediaFrame[]): { frames: MediaFrame[]; told: number } => ({ frames: out.filter((f) => f !== TRACKS_CHANGED), told: out.filter((f) => f === TRACKS_CHANGED).length });

  it('keyframes 2 s apart: passed through untouched, no encoder', () => {
    const camera = new H264Camera();
    const { feed, encoders, out } = rig({ camera, longGop });
    const sent: MediaFrame[] = [];
    for (let n = 0; n < 300; n++) sent.push(camera.h264(n % 50 === 0));
    assert.equal(encoders.length, 0);
    assert.deepEqual(split(out), { frames: sent, told: 1 }, 'the same frame objects, in order; the tracks told once, at the start');
    assert.equal(feed.stats().longGop, false);
    assert.deepEqual(feed.tracks, H264_TRACKS, "the camera's own track");
  });

  it('keyframes 8 s apart: passed through until a frame is 4.4 s past the keyframe; then the subscriber is told, and the camera is re-encoded from its cached keyframe with a keyframe every 50 frames, going on where it was', async () => {
    const camera = new H264Camera();
    const { feed, encoders, out, log } = rig({ camera, longGop });
    for (let n = 0; n <= 110; n++) camera.h264(n % 200 === 0); // 110: 4.40 s after the keyframe, not more
    assert.equal(encoders.length, 0);
    assert.deepEqual([split(out).frames.length, split(out).told], [111, 1]);
    camera.h264(false); // 111: 4.44 s
    assert.equal(describeOut(out).at(-1), 'tracks', 'told before anything of the new stream, and 111 not passed through');
    assert.equal(split(out).told, 2);
    assert.equal(feed.stats().longGop, true);
    assert.match(log.text(), /keyframes are more than 4\.0 s apart .* a keyframe every 2\.0 s/);
    assert.equal(feed.tracks[0]!.codec, 'H264');
    assert.equal(feed.tracks[0]!.fmtp['sprop-parameter-sets'], undefined, "no longer the camera's parameter sets");
    await Promise.resolve(); // the fresh subscription, after the Source's delivery
    assert.equal(camera.subscribed, 2);
    assert.equal(feed.stats().longGop, true, 'the tracks the fresh subscription is told are no change');
    assert.equal(encoders.length, 1, 'started on the cached keyframe');
    const encoder = encoders[0]!;
    assert.equal(encoder.args[encoder.args.indexOf('-f') + 1], 'h264', 'H.264 in');
    assert.equal(encoder.args[encoder.args.indexOf('-force_key_frames') + 1], 'expr:eq(mod(n,50),0)');
    assert.equal(encoder.written.length, 112, 'the cached GOP, 0 to 111');
    assert.deepEqual(encoder.written[0]!.map((u) => u[0]! & 0x1f), [7, 8, 5], 'SPS, PPS and the IDR first');
    for (let n = 112; n < 160; n++) camera.h264(false);
    for (let n = 0; n < 160; n++) encoder.emit(n % 50 === 0, n & 0x7f);
    encoder.flush();
    const after = describeOut(split(out).frames).slice(111);
    assert.equal(after[0], 'K150#22', 'from the first keyframe after what was handed on (frame 110), not back in time');
    assert.deepEqual(after.slice(1, 4), ['P151#23', 'P152#24', 'P153#25']);
    assert.equal(after.length, 10);
    assert.equal(feed.stats().framesLost, 0);
  });

  it("a camera whose cached GOP shows it already: found during the first subscription's replay, then re-encoded from that same cache", async () => {
    const camera = new H264Camera();
    for (let n = 0; n < 120; n++) camera.h264(n === 0); // before anyone subscribes: the cache holds 0 to 119
    const { feed, encoders, out } = rig({ camera, longGop });
    assert.deepEqual([split(out).frames.length, split(out).told], [111, 2], '0 to 110 passed through, then told');
    assert.equal(describeOut(out).at(-1), 'tracks');
    assert.equal(encoders.length, 0);
    await Promise.resolve();
    assert.equal(camera.subscribed, 2);
    assert.equal(encoders.length, 1);
    assert.equal(encoders[0]!.written.length, 120, 'the whole cache, from its keyframe');
    assert.equal(feed.stats().longGop, true);
  });

  it('a long GOP the Source measured already: re-encoded from the first frame, the subscriber never told of a change', () => {
    const camera = new H264Camera();
    const { encoders, out } = rig({ camera, longGop: { ...longGop, knownKeyframeIntervalMs: () => 8000 } });
    camera.h264(true);
    camera.h264(false);
    assert.equal(encoders.length, 1);
    assert.equal(encoders[0]!.args[encoders[0]!.args.indexOf('-f') + 1], 'h264');
    encoders[0]!.emit(true, 0);
    encoders[0]!.emit(false, 1);
    encoders[0]!.flush();
    assert.deepEqual(describeOut(out), ['tracks', 'K0#0', 'P1#1'], 'told the tracks once, at the start');
  });

  it('an H.264 keyframe out where none was to be: the frames up to the next one that was are lost, and the count is right again', () => {
    const camera = new H264Camera();
    const { feed, encoders, out } = rig({ camera, longGop: { ...longGop, knownKeyframeIntervalMs: () => 8000 } });
    for (let n = 0; n < 55; n++) camera.h264(n === 0);
    const encoder = encoders[0]!;
    encoder.emit(true, 0);
    for (let n = 1; n < 48; n++) encoder.emit(false, n);
    // The encoder loses frame 48: its 49 takes 48's place (nothing tells them apart), and its
    // keyframe goes to 50, the next frame that was to be one, so 49 is counted lost.
    encoder.emit(false, 49);
    encoder.emit(true, 50);
    encoder.flush();
    const described = describeOut(out);
    assert.equal(described.at(-1), 'K50#50');
    assert.equal(described.at(-2), 'P48#49');
    assert.equal(feed.stats().framesLost, 1, 'frame 49 never came back');
  });
});
