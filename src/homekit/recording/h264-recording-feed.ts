/**
 * What HomeKit Secure Video records of a camera whose video cannot go into a clip as it is: the
 * camera's frames from its one shared Source, with its video re-encoded to H.264 by one ffmpeg per
 * camera, for as long as the pre-buffer subscribes (recording on). It subscribes like a Source, so
 * the pre-buffer, the recording stream and the sound encoder work on it unchanged. Two cameras
 * need it: one that sends H.265 (always re-encoded), and, with `longGop`, one that sends H.264 with
 * keyframes further apart than the hub's fragments (each fragment must start on one). The second
 * passes through untouched until its keyframe interval is seen to be too long; then the
 * subscribers are told the stream changed (`onTracks`), and it is re-encoded from the camera's
 * newest keyframe (the Source's GOP cache), with a keyframe every `LONG_GOP_KEYFRAME_MS`.
 *
 * Frames keep the camera's clock. ffmpeg reads the camera's access units as Annex-B on stdin, in
 * order, and writes one H.264 access unit per frame in, in the same order (no B-frames, no frame
 * dropped or repeated, an access unit delimiter before each: ../../ffmpeg/recording-args.ts). The
 * n-th frame out takes the n-th camera frame's timestamp, capture time and damage flag. So the
 * camera's own sound (AAC passed through, G.711 encoded) stays in sync, and a motion event's
 * moment still points at the same pictures. Which frames out are keyframes is known in advance:
 * exactly the camera's keyframes (H.265, `-force_key_frames source`), or every n-th frame written
 * (long-GOP H.264). That also puts the count right again should ffmpeg ever drop a frame: an
 * H.264 keyframe is matched to the next frame that was to be one, and the frames between are lost.
 *
 * Order is the camera's too. An audio frame waits until the video frame that came before it is
 * back from the encoder (about 1-2 frames), so subscribers see the frames interleaved as the camera
 * sent them, which the recording's sound needs (it joins the video where it arrived).
 *
 * An encoder that falls behind (a camera frame waiting more than `MAX_BACKLOG_MS`) gets no more
 * video until it has caught up, and then from the camera's next keyframe: the recording loses
 * pictures, never its sync. One that exits is started again at the next keyframe after a pause
 * (1 s, doubling to 30 s), and the log says why in ffmpeg's words, once per cause.
 *
 * Without `longGop`, a camera that sends H.264 after all (its settings changed) passes through
 * untouched.
 */
import { FfmpegProcess, type FfmpegExit } from '../../ffmpeg/ffmpeg-process.js';
import { diagnoseFfmpeg } from '../../ffmpeg/ffmpeg-diagnosis.js';
import { recordingVideoArgs } from '../../ffmpeg/recording-args.js';
import { AnnexBSplitter } from '../../media/annexb.js';
import { h264NalType } from '../../media/h264-depacketizer.js';
import { packetizeH264 } from '../../media/h264-packetizer.js';
import type { FrameSink, MediaFrame, SourceState, Subscribable, TrackDescription } from '../../media/types.js';
import { toAnnexB } from '../../snapshots/keyframe-snapshot.js';
import type { Logger } from '../../util/logger.js';

/** The encoder's bitrate before the hub has chosen one (kbit/s), about what HomeKit asks for 1080p. */
export const DEFAULT_RECORDING_VIDEO_KBPS = 2000;
/** A camera frame waiting this long for its H.264 means the encoder cannot keep up. */
export const MAX_BACKLOG_MS = 2000;
/** Fed, and nothing back for this long: the encoder is stuck, and is started again. */
const STUCK_MS = 10_000;
/** The backlog is not judged this soon after a start (the cached GOP's burst, the decoder's start-up). */
const STARTUP_GRACE_MS = 5000;
const RESTART_FIRST_MS = 1000;
const RESTART_MAX_MS = 30_000;
/** An encoder that ran this long had worked: the next failure waits the first pause again. */
const RESTART_RESET_AFTER_MS = 60_000;
/** A camera whose frame rate cannot be read from two frames' timestamps counts as this. */
const DEFAULT_FPS = 25;
/** A long-GOP H.264 camera's re-encoding has a keyframe this often (at most half a fragment). */
export const LONG_GOP_KEYFRAME_MS = 2000;
/** A camera keyframe interval this much over the fragment length is long (not frame-timing jitter). */
const LONG_GOP_TOLERANCE = 1.1;

const NAL_AUD = 9;
const NAL_IDR = 5;
/**
 * An H.265 access unit delimiter (type 35, pic_type 2: any slice type), written after each frame:
 * ffmpeg's parser closes a frame only when it sees the next one begin, and this says so at once,
 * instead of one camera frame later.
 */
const HEVC_AUD_NEXT = Buffer.from([0, 0, 0, 1, 0x46, 0x01, 0x50]);
/** The same for an H.264 camera (type 9, primary_pic_type 7: any slice type). */
const H264_AUD_NEXT = Buffer.from([0, 0, 0, 1, 0x09, 0xf0]);

/** What the feed needs of its encoder process (`FfmpegProcess` is one; tests give a scripted one). */
export interface FeedEncoder {
  readonly stdin: { write(chunk: Buffer): unknown } | null;
  readonly running: boolean;
  stop(): Promise<unknown>;
  once(event: 'exit', listener: (exit: FfmpegExit) => void): unknown;
}

export interface H264RecordingFeedOptions {
  /** The camera's one shared Source. */
  source: Subscribable & { readonly tracks: ReadonlyArray<TrackDescription> };
  ffmpeg: { path: string; version?: string };
  /** The camera's logger (prefixed with its name). */
  log: Logger;
  /** kbit/s to encode at: the hub's selected bitrate once it has chosen. Read at each encoder start. */
  bitrateKbps: () => number;
  /** The `ffmpeg.debug` setting. */
  debug?: boolean;
  /** The first pause before starting a failed encoder again (tests). */
  restartDelayMs?: number;
  /** Starts the encoder with these ffmpeg arguments (tests); default an `FfmpegProcess`. */
  startEncoder?: (args: string[], onStdout: (chunk: Buffer) => void) => FeedEncoder;
  /** The clock, ms (tests); default performance.now. */
  now?: () => number;
  /**
   * Re-encode an H.264 camera too once its keyframes are seen further apart than
   * `maxKeyframeIntervalMs()` (the hub's fragment length, read at each keyframe); absent, H.264
   * always passes through.
   */
  longGop?: {
    maxKeyframeIntervalMs: () => number;
    /** The camera's keyframe interval as its Source measured it already (ms), to decide at once. */
    knownKeyframeIntervalMs?: () => number | undefined;
  };
}

export interface H264RecordingFeedStats {
  /** An encoder is running now. */
  encoding: boolean;
  /** Encoders started (the first one, and each restart). */
  starts: number;
  /** Camera frames written to the encoder, and H.264 frames delivered. */
  framesIn: number;
  framesOut: number;
  /** Camera frames the encoder never returned (matched away at a keyframe, or lost when it exited). */
  framesLost: number;
  /**
   * Camera frames not encoded: the encoder was behind (until it caught up and a keyframe came),
   * pausing after a failure, or waiting for a keyframe to start on.
   */
  framesSkipped: number;
  /** An H.264 camera's video is re-encoded now (its keyframes are too far apart). */
  longGop: boolean;
}

/** One camera frame in arrival order: audio as it is, video waiting for (or given) its H.264. */
interface Slot {
  frame: MediaFrame;
  /** Video: when it was written to the encoder (performance.now()). */
  writtenAt: number;
  /** Video: the H.264 frame, once back; `null` when it never will be. */
  encoded?: MediaFrame | null;
  /** Video written to the encoder: its frame out is to be a keyframe. */
  keyframeOut?: boolean;
}

interface FeedSink {
  sink: FrameSink;
  /** A subscriber that came in late starts at the next H.264 keyframe. */
  waitingForKeyframe: boolean;
}

function isWaiting(slot: Slot): boolean {
  return slot.frame.kind === 'video' && slot.encoded === undefined;
}

/** The track a subscriber sees in place of the camera's video: the H.264 this feed makes. */
function h264Track(track: TrackDescription): TrackDescription {
  return { kind: 'video', codec: 'H264', payloadType: track.payloadType, clockRate: 90000, fmtp: { 'packetization-mode': '1' }, controlUrl: track.controlUrl };
}

export class H264RecordingFeed implements Subscribable {
  private readonly sinks = new Set<FeedSink>();
  private subscription: { unsubscribe(): void } | undefined;
  private encoder: FeedEncoder | undefined;
  private splitter = new AnnexBSplitter();
  /** The units of the H.264 access unit being read (until the next delimiter). */
  private unitsOut: Buffer[] = [];
  private slots: Slot[] = [];
  /** Video is not written until the next camera keyframe (start, restart, or after falling behind). */
  private waitForKeyframe = true;
  /** Behind: no video is written until every frame written so far is back. */
  private catchingUp = false;
  /** A keyframe (and the frame after it) waiting for an encoder to start: the rate comes from the two. */
  private startFrames: Slot[] = [];
  private launchedAt = 0;
  /** Access units the running encoder returned. */
  private encoderOutput = 0;
  private restartAt = 0;
  private restartDelay: number;
  private lastOutputAt = 0;
  private sequence = 0;
  private readonly said = new Set<string>();
  /** What is wrong now, for the Homebridge UI's card (the log said it once). */
  private current: string | undefined;
  private readonly counters: Omit<H264RecordingFeedStats, 'encoding' | 'longGop'> = { starts: 0, framesIn: 0, framesOut: 0, framesLost: 0, framesSkipped: 0 };
  /** An H.264 camera's keyframes were seen too far apart: its video is re-encoded (until the stream changes). */
  private encodesH264 = false;
  /** Frames of the subscription being replaced (the switch to re-encoding) are not used. */
  private switching = false;
  /** The newest H.264 camera keyframe's timestamp, while passing through (the interval check). */
  private lastCameraKeyframe: number | undefined;
  /** The running encoder's keyframe spacing in frames, when it is not the camera's own ('source'). */
  private keyframeEvery: number | undefined;
  /** Frames written to the running encoder, which counts them the same way for its keyframes. */
  private writtenToEncoder = 0;
  /** The arrival time of the newest frame handed on, and after a switch the one to go on from. */
  private lastDeliveredAt: number | undefined;
  private deliveredUntil: number | undefined;
  /** Counts the camera subscription's ends and stream changes: a switch planned before one is off. */
  private epoch = 0;
  /** Inside the Source's subscribe call. */
  private subscribing = false;

  private readonly now: () => number;

  constructor(private readonly options: H264RecordingFeedOptions) {
    this.restartDelay = options.restartDelayMs ?? RESTART_FIRST_MS;
    this.now = options.now ?? (() => performance.now());
  }

  /** The camera's tracks as recordings see them: its video as H.264. */
  get tracks(): ReadonlyArray<TrackDescription> {
    return this.mapTracks(this.options.source.tracks);
  }

  /** The encoder's H.264 in place of the camera's video, when it is re-encoded. */
  private mapTracks(tracks: ReadonlyArray<TrackDescription>): TrackDescription[] {
    return tracks.map((t) => (t.kind === 'video' && (t.codec !== 'H264' || this.encodesH264) ? h264Track(t) : t));
  }

  /** The encoder's trouble now (behind, or exited and not yet back), in the log's words; undefined when it is fine. */
  get problem(): string | undefined {
    return this.current;
  }

  stats(): H264RecordingFeedStats {
    return { encoding: this.encoder?.running === true, longGop: this.encodesH264, ...this.counters };
  }

  subscribe(sink: FrameSink): { unsubscribe(): void } {
    const entry: FeedSink = { sink, waitingForKeyframe: this.subscription !== undefined };
    this.sinks.add(entry);
    if (!this.subscription) {
      // An H.264 camera already known to have long GOPs is re-encoded from the start.
      const known = this.options.longGop?.knownKeyframeIntervalMs?.();
      if (known !== undefined && this.isLongGop(known * 90)) this.encodesH264 = true;
      // The camera's GOP cache first: the encoder starts on its newest keyframe at once.
      this.subscription = this.subscribeToCamera();
    }
    return {
      unsubscribe: () => {
        if (!this.sinks.delete(entry) || this.sinks.size > 0) return;
        this.subscription?.unsubscribe();
        this.subscription = undefined;
        this.epoch++;
        this.reset();
        this.encodesH264 = false;
      },
    };
  }

  /** Subscribes to the camera's Source from its cached GOP (the tracks it tells at once are no change). */
  private subscribeToCamera(): { unsubscribe(): void } {
    this.subscribing = true;
    try {
      return this.options.source.subscribe(this.cameraSink, { fromKeyframe: true });
    } finally {
      this.subscribing = false;
    }
  }

  /** What the camera's Source delivers to. */
  private readonly cameraSink: FrameSink = {
    write: (frame) => {
      if (!this.switching) this.onCameraFrame(frame);
      return true;
    },
    onTracks: (tracks) => {
      if (!this.subscribing) {
        // New stream parameters: what the encoder holds belongs to the old stream, and a camera
        // whose settings changed may have short GOPs now. (A subscription is told the tracks at
        // once too: that is no change.)
        this.epoch++;
        this.reset();
        this.encodesH264 = false;
      }
      const mapped = this.mapTracks(tracks);
      for (const { sink } of this.sinks) sink.onTracks?.(mapped);
    },
    onState: (state: SourceState) => {
      for (const { sink } of this.sinks) sink.onState?.(state);
    },
  };

  private onCameraFrame(frame: MediaFrame): void {
    const passThrough = frame.kind === 'audio' || (frame.codec === 'H264' && !this.encodesH264);
    if (passThrough && frame.kind === 'video' && this.longGopSeen(frame)) {
      this.switchToReencoding();
      return;
    }
    if (passThrough) {
      // Sound, or H.264 that needs no encoder: in order, behind the video still being encoded.
      this.slots.push({ frame, writtenAt: 0, ...(frame.kind === 'video' ? { encoded: frame } : {}) });
      this.deliverReady();
      return;
    }
    if (frame.codec !== 'H265' && frame.codec !== 'H264') return;
    const now = this.now();
    this.checkEncoder(now);
    if (this.catchingUp) {
      if (this.slots.some(isWaiting)) {
        this.counters.framesSkipped++;
        return;
      }
      this.catchingUp = false;
      this.waitForKeyframe = true;
      this.current = undefined;
    }
    if (!this.encoder) {
      this.prepareStart(frame, now);
      return;
    }
    if (this.waitForKeyframe && !frame.keyframe) {
      this.counters.framesSkipped++;
      return;
    }
    this.waitForKeyframe = false;
    this.writeFrame(this.encoder, frame, now);
  }

  /** Whether keyframes `ticks` (90 kHz) apart are too far apart for the hub's fragments. */
  private isLongGop(ticks: number): boolean {
    const longGop = this.options.longGop;
    return longGop !== undefined && ticks > longGop.maxKeyframeIntervalMs() * 90 * LONG_GOP_TOLERANCE;
  }

  /** The re-encoding's keyframe spacing: `LONG_GOP_KEYFRAME_MS`, or half a shorter fragment. */
  private longGopKeyframeMs(): number {
    const fragmentMs = this.options.longGop?.maxKeyframeIntervalMs() ?? LONG_GOP_KEYFRAME_MS * 2;
    return Math.min(LONG_GOP_KEYFRAME_MS, fragmentMs / 2);
  }

  /**
   * A passed-through H.264 camera frame: is the camera's keyframe interval too long? Known at the
   * keyframe that ends a long GOP, or sooner: as soon as a frame is that far past the last one.
   */
  private longGopSeen(frame: MediaFrame): boolean {
    if (!this.options.longGop || frame.kind !== 'video') return false;
    const last = this.lastCameraKeyframe;
    if (frame.keyframe) this.lastCameraKeyframe = frame.timestamp;
    return last !== undefined && this.isLongGop((frame.timestamp - last) >>> 0);
  }

  /**
   * The camera's keyframes are too far apart for the hub's fragments: from now on its video is
   * re-encoded, starting again from its newest keyframe (the Source's GOP cache, after a fresh
   * subscription), so that the encoder need not wait a whole long GOP for the next one. The
   * subscribers are told the stream changed first: what they hold is the camera's own H.264, whose
   * parameter sets are not the encoder's.
   */
  private switchToReencoding(): void {
    this.encodesH264 = true;
    this.switching = true;
    this.lastCameraKeyframe = undefined;
    const fragmentMs = this.options.longGop?.maxKeyframeIntervalMs() ?? 0;
    this.options.log.info(
      `HomeKit Secure Video: the camera's keyframes are more than ${(fragmentMs / 1000).toFixed(1)} s apart (the hub's fragment length), ` +
        `so recordings are re-encoded to H.264 by one ffmpeg (libx264, a keyframe every ${(this.longGopKeyframeMs() / 1000).toFixed(1)} s) while recording is on; ` +
        "setting the camera's I-frame interval to 1-2 s saves that CPU.",
    );
    const handedOnUntil = this.lastDeliveredAt;
    this.reset();
    // The encoder starts on the cached keyframe (it cannot start between keyframes), but the
    // subscribers go on from where they are, at its first keyframe after that: a recording in
    // progress must not go back in time.
    this.deliveredUntil = handedOnUntil;
    const tracks = this.tracks;
    for (const entry of this.sinks) {
      entry.waitingForKeyframe = true;
      entry.sink.onTracks?.(tracks);
    }
    // Not from inside the Source's delivery of the frame that told (which may be the replay inside
    // our own first subscribe): subscribing again replays its cache. Unless, meanwhile, the last
    // subscriber left or the stream changed.
    const epoch = this.epoch;
    queueMicrotask(() => {
      this.switching = false;
      const current = this.subscription;
      if (epoch !== this.epoch || !current) return;
      current.unsubscribe();
      this.subscription = this.subscribeToCamera();
    });
  }

  /**
   * No encoder runs: it starts at a keyframe, once the next frame has said the frame rate (raw
   * video carries none). The two wait in order meanwhile, and are the encoder's first frames.
   */
  private prepareStart(frame: MediaFrame, now: number): void {
    if (now < this.restartAt || (!frame.keyframe && this.startFrames.length === 0)) {
      // Pausing after a failure, or waiting for a keyframe to start on.
      this.counters.framesSkipped++;
      return;
    }
    if (frame.keyframe) {
      // A newer keyframe replaces one still waiting for its next frame.
      const stale = new Set(this.startFrames);
      this.slots = this.slots.filter((s) => !stale.has(s));
      this.startFrames = [];
    }
    const slot: Slot = { frame, writtenAt: now };
    this.startFrames.push(slot);
    this.slots.push(slot);
    if (this.startFrames.length < 2) return;
    const [first, second] = this.startFrames as [Slot, Slot];
    const ticks = (second.frame.timestamp - first.frame.timestamp) >>> 0;
    const measured = ticks > 0 ? 90000 / ticks : 0;
    const fps = measured >= 1 && measured <= 120 ? Math.round(measured * 100) / 100 : DEFAULT_FPS;
    const encoder = this.launch(fps, first.frame.codec === 'H264' ? 'H264' : 'H265', now);
    for (const waiting of this.startFrames) this.writeFrame(encoder, waiting.frame, now, waiting);
    this.startFrames = [];
    this.waitForKeyframe = false;
  }

  /** One camera frame to the encoder, as Annex-B with its parameter sets when it is a keyframe. */
  private writeFrame(encoder: FeedEncoder, frame: MediaFrame, now: number, slot?: Slot): void {
    const annexB = toAnnexB(frame, this.options.source.tracks);
    if (!annexB || !encoder.stdin) {
      if (slot) slot.encoded = null;
      return;
    }
    // Written whatever the pipe's buffer says: the backlog check (checkEncoder) is what bounds it.
    encoder.stdin.write(Buffer.concat([annexB.annexB, frame.codec === 'H264' ? H264_AUD_NEXT : HEVC_AUD_NEXT]));
    // Which frame out is to be a keyframe: the camera's keyframes, or every n-th frame written.
    const keyframeOut = this.keyframeEvery ? this.writtenToEncoder % this.keyframeEvery === 0 : frame.keyframe === true;
    this.writtenToEncoder++;
    if (slot) Object.assign(slot, { writtenAt: now, keyframeOut });
    else this.slots.push({ frame, writtenAt: now, keyframeOut });
    this.counters.framesIn++;
  }

  private launch(fps: number, codec: 'H264' | 'H265', now: number): FeedEncoder {
    const { ffmpeg, log } = this.options;
    const bitrateKbps = this.options.bitrateKbps();
    // An H.265 camera's keyframes suit the fragments; a long-GOP H.264 camera's do not.
    this.keyframeEvery = codec === 'H264' ? Math.max(1, Math.round((fps * this.longGopKeyframeMs()) / 1000)) : undefined;
    this.writtenToEncoder = 0;
    const args = recordingVideoArgs({
      inputFormat: codec === 'H264' ? 'h264' : 'hevc',
      keyframes: this.keyframeEvery ? { everyFrames: this.keyframeEvery } : 'source',
      fps,
      bitrateKbps,
      ...(ffmpeg.version ? { ffmpegVersion: ffmpeg.version } : {}),
      ...(this.options.debug ? { debug: true } : {}),
    });
    const onStdout = (chunk: Buffer): void => {
      if (this.encoder === encoder) this.onOutput(chunk);
    };
    const encoder: FeedEncoder = this.options.startEncoder
      ? this.options.startEncoder(args, onStdout)
      : new FfmpegProcess({
        ffmpegPath: ffmpeg.path,
        args,
        label: 'HomeKit Secure Video H.264 encoder',
        log,
        stdin: true,
        onStdout,
        ...(this.options.debug ? { debug: true } : {}),
      });
    this.encoder = encoder;
    this.splitter = new AnnexBSplitter();
    this.unitsOut = [];
    this.lastOutputAt = now;
    this.launchedAt = now;
    this.encoderOutput = 0;
    this.counters.starts++;
    const startedAt = now;
    encoder.once('exit', (exit) => {
      if (this.encoder !== encoder) return;
      this.onEncoderExit(exit, this.now() - startedAt);
    });
    if (this.counters.starts === 1 && codec === 'H265') {
      log.info(`HomeKit Secure Video: the camera sends H.265, so recordings are re-encoded to H.264 by one ffmpeg (libx264, ${fps} fps, ${bitrateKbps} kbit/s) while recording is on.`);
    }
    return encoder;
  }

  private onOutput(chunk: Buffer): void {
    let units: Buffer[];
    try {
      units = this.splitter.push(chunk);
    } catch (error) {
      this.fail('output', `wrote something that is not H.264 (${error instanceof Error ? error.message : String(error)})`);
      return;
    }
    for (const unit of units) {
      if (h264NalType(unit) === NAL_AUD) {
        this.onAccessUnit(this.unitsOut);
        this.unitsOut = [];
      } else {
        this.unitsOut.push(unit);
      }
    }
    this.deliverReady();
  }

  /** One H.264 access unit from the encoder: it belongs to the oldest camera frame still waiting. */
  private onAccessUnit(units: Buffer[]): void {
    if (units.length === 0) return;
    this.lastOutputAt = this.now();
    if (this.encoderOutput === 0) this.current = undefined;
    this.encoderOutput++;
    const keyframe = units.some((u) => h264NalType(u) === NAL_IDR);
    const waiting = this.slots.filter(isWaiting);
    // A keyframe out is the next frame that was to be one, and frames before it that never came back
    // are lost; a frame out that is not a keyframe cannot be one that was (nor one nobody wrote).
    const index = keyframe ? waiting.findIndex((s) => s.keyframeOut) : waiting.length > 0 && !waiting[0]!.keyframeOut ? 0 : -1;
    if (index < 0) return;
    for (const lost of waiting.slice(0, index)) {
      lost.encoded = null;
      this.counters.framesLost++;
    }
    const slot = waiting[index]!;
    const camera = slot.frame;
    const packets = packetizeH264(units);
    let byteLength = 0;
    for (const unit of units) byteLength += unit.length;
    slot.encoded = {
      kind: 'video',
      codec: 'H264',
      clockRate: 90000,
      timestamp: camera.timestamp,
      sequenceNumber: this.sequence,
      keyframe,
      units,
      packets,
      byteLength,
      receivedAt: camera.receivedAt,
      ...(camera.captureTime !== undefined ? { captureTime: camera.captureTime } : {}),
      ...(camera.damaged ? { damaged: true } : {}),
    };
    this.sequence = (this.sequence + packets.length) & 0xffff;
  }

  /** Hands on, in camera order, every frame at the head that is ready. */
  private deliverReady(): void {
    while (this.slots.length > 0) {
      const head = this.slots[0]!;
      if (head.frame.kind === 'video' && head.encoded === undefined) return;
      this.slots.shift();
      const frame = head.frame.kind === 'audio' ? head.frame : head.encoded;
      if (!frame) continue;
      if (this.deliveredUntil !== undefined) {
        // The camera's cached GOP, encoded after a switch: what was handed on already is not again.
        if (frame.receivedAt <= this.deliveredUntil) continue;
        this.deliveredUntil = undefined;
      }
      this.lastDeliveredAt = frame.receivedAt;
      if (frame.kind === 'video') this.counters.framesOut++;
      for (const entry of this.sinks) {
        if (entry.waitingForKeyframe) {
          if (frame.kind !== 'video' || !frame.keyframe) continue;
          entry.waitingForKeyframe = false;
        }
        entry.sink.write(frame);
      }
    }
  }

  /** The backlog and stuck checks, on each camera frame. */
  private checkEncoder(now: number): void {
    if (!this.encoder) return;
    const oldest = this.slots.find(isWaiting);
    if (oldest && now - this.lastOutputAt > STUCK_MS) {
      this.fail('stuck', `returned nothing for ${STUCK_MS / 1000} s`);
      return;
    }
    // Not in the first seconds: the camera's cached GOP arrives at once, and the decoder's start-up is slow.
    if (oldest && !this.catchingUp && now - this.launchedAt > STARTUP_GRACE_MS && now - oldest.writtenAt > MAX_BACKLOG_MS) {
      this.catchingUp = true;
      this.sayOnce('behind', `HomeKit Secure Video: the H.264 encoder is more than ${MAX_BACKLOG_MS / 1000} s behind the camera (this machine is too busy for it); recordings skip pictures until it catches up.`);
    }
  }

  private onEncoderExit(exit: FfmpegExit, ranMs: number): void {
    const diagnosis = diagnoseFfmpeg(exit);
    const said = exit.spawnError ? `could not be started (${exit.spawnError.message})` : `exited (${diagnosis.cause}${diagnosis.quote ? `: ${diagnosis.quote}` : ''})`;
    if (ranMs >= RESTART_RESET_AFTER_MS) this.restartDelay = this.options.restartDelayMs ?? RESTART_FIRST_MS;
    this.fail(exit.spawnError ? 'spawn' : 'exit', said);
  }

  /** Ends this encoder (its waiting frames are lost) and starts another at a keyframe after a pause. */
  private fail(kind: string, said: string): void {
    const encoder = this.encoder;
    if (!encoder) return;
    this.sayOnce(kind, `HomeKit Secure Video: the H.264 encoder ${said}; it starts again in ${(this.restartDelay / 1000).toFixed(0)} s, and recordings miss the pictures until then.`);
    this.dropEncoder();
    this.restartAt = this.now() + this.restartDelay;
    this.restartDelay = Math.min(RESTART_MAX_MS, this.restartDelay * 2);
  }

  /** Stops the encoder; the frames it still held are lost, and what waited behind them goes on. */
  private dropEncoder(): void {
    const encoder = this.encoder;
    this.encoder = undefined;
    if (encoder) void encoder.stop();
    for (const slot of this.slots) {
      if (!isWaiting(slot)) continue;
      slot.encoded = null;
      if (!this.startFrames.includes(slot)) this.counters.framesLost++;
    }
    this.startFrames = [];
    this.deliverReady();
    this.waitForKeyframe = true;
    this.catchingUp = false;
  }

  /** Back to nothing running (the last subscriber left, or the camera's stream changed). */
  private reset(): void {
    this.dropEncoder();
    this.slots.length = 0;
    this.restartAt = 0;
    this.lastCameraKeyframe = undefined;
    this.lastDeliveredAt = undefined;
    this.deliveredUntil = undefined;
  }

  private sayOnce(key: string, message: string): void {
    this.current = message.replace(/^HomeKit Secure Video: /, '');
    if (this.said.has(key)) return;
    this.said.add(key);
    this.options.log.warn(message);
  }
}
