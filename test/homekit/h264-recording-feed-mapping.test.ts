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
      // One write per frame: its NAL units, the trailing H.265 delimiter apart.
      const units = [...this.reader.push(chunk), ...this.reader.flush()].filter((u) => ((u[0]! >> 1) & 0x3f) !== 35);
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

function rig(options: { restartDelayMs?: number } = {}): {
  camera: Camera;
  feed: H264RecordingFeed;
  encoders: ScriptedEncoder[];
  out: MediaFrame[];
  clock: { now: number };
  log: ReturnType<typeof memoryLogger>;
  unsubscribe: () => void;
} {
  const camera = new Camera();
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
  });
  const out: MediaFrame[] = [];
  const subscription = feed.subscribe({ write: (frame) => (out.push(frame), true) });
  return { camera, feed, encoders, out, clock, log, unsubscribe: () => subscription.unsubscribe() };
}

const tag = (frame: MediaFrame): number => frame.units.at(-1)!.at(-1)! & 0x7f;
const describeOut = (frames: MediaFrame[]): string[] => frames.map((f) => (f.kind === 'audio' ? `a${f.sequenceNumber}` : `${f.keyframe ? 'K' : 'P'}${(f.timestamp - 1000) / 3600}#${tag(f)}`));

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
    assert.deepEqual(feed.stats(), { encoding: true, starts: 1, framesIn: 3, framesOut: 3, framesLost: 0, framesSkipped: 1 });
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
