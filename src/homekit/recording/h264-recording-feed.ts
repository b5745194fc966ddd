/**
 * What HomeKit Secure Video records of a camera that does not send H.264 (an H.265 camera): the
 * camera's frames from its one shared Source, with its video re-encoded to H.264 by one ffmpeg per
 * camera, for as long as the pre-buffer subscribes (recording on). It subscribes like a Source, so
 * the pre-buffer, the recording stream and the sound encoder work on it unchanged.
 *
 * Frames keep the camera's clock. ffmpeg reads the camera's access units as Annex-B on stdin, in
 * order, and writes one H.264 access unit per frame in, in the same order (no B-frames, no frame
 * dropped or repeated, an access unit delimiter before each: ../../ffmpeg/recording-args.ts). The
 * n-th frame out takes the n-th camera frame's timestamp, capture time and damage flag. So the
 * camera's own sound (AAC passed through, G.711 encoded) stays in sync, and a motion event's
 * moment still points at the same pictures. Keyframes out are exactly the camera's keyframes
 * (`-force_key_frames source`), which also puts the count right again should ffmpeg ever drop a
 * frame: an H.264 keyframe is matched to the next camera keyframe, and the frames between are lost.
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
 * A camera that sends H.264 after all (its settings changed) passes through untouched.
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

const NAL_AUD = 9;
const NAL_IDR = 5;
/**
 * An H.265 access unit delimiter (type 35, pic_type 2: any slice type), written after each frame:
 * ffmpeg's parser closes a frame only when it sees the next one begin, and this says so at once,
 * instead of one camera frame later.
 */
const HEVC_AUD_NEXT = Buffer.from([0, 0, 0, 1, 0x46, 0x01, 0x50]);

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
}

/** One camera frame in arrival order: audio as it is, video waiting for (or given) its H.264. */
interface Slot {
  frame: MediaFrame;
  /** Video: when it was written to the encoder (performance.now()). */
  writtenAt: number;
  /** Video: the H.264 frame, once back; `null` when it never will be. */
  encoded?: MediaFrame | null;
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
  private readonly counters: Omit<H264RecordingFeedStats, 'encoding'> = { starts: 0, framesIn: 0, framesOut: 0, framesLost: 0, framesSkipped: 0 };

  private readonly now: () => number;

  constructor(private readonly options: H264RecordingFeedOptions) {
    this.restartDelay = options.restartDelayMs ?? RESTART_FIRST_MS;
    this.now = options.now ?? (() => performance.now());
  }

  /** The camera's tracks as recordings see them: its video as H.264. */
  get tracks(): ReadonlyArray<TrackDescription> {
    return this.options.source.tracks.map((t) => (t.kind === 'video' && t.codec !== 'H264' ? h264Track(t) : t));
  }

  /** The encoder's trouble now (behind, or exited and not yet back), in the log's words; undefined when it is fine. */
  get problem(): string | undefined {
    return this.current;
  }

  stats(): H264RecordingFeedStats {
    return { encoding: this.encoder?.running === true, ...this.counters };
  }

  subscribe(sink: FrameSink): { unsubscribe(): void } {
    const entry: FeedSink = { sink, waitingForKeyframe: this.subscription !== undefined };
    this.sinks.add(entry);
    if (!this.subscription) {
      // The camera's GOP cache first: the encoder starts on its newest keyframe at once.
      this.subscription = this.options.source.subscribe(this.cameraSink, { fromKeyframe: true });
    }
    return {
      unsubscribe: () => {
        if (!this.sinks.delete(entry) || this.sinks.size > 0) return;
        this.subscription?.unsubscribe();
        this.subscription = undefined;
        this.reset();
      },
    };
  }

  /** What the camera's Source delivers to. */
  private readonly cameraSink: FrameSink = {
    write: (frame) => {
      this.onCameraFrame(frame);
      return true;
    },
    onTracks: (tracks) => {
      // New stream parameters: what the encoder holds belongs to the old stream.
      this.reset();
      const mapped = tracks.map((t) => (t.kind === 'video' && t.codec !== 'H264' ? h264Track(t) : t));
      for (const { sink } of this.sinks) sink.onTracks?.(mapped);
    },
    onState: (state: SourceState) => {
      for (const { sink } of this.sinks) sink.onState?.(state);
    },
  };

  private onCameraFrame(frame: MediaFrame): void {
    if (frame.kind === 'audio' || frame.codec === 'H264') {
      // Sound, or a camera that sends H.264 now: in order, behind the video still being encoded.
      this.slots.push({ frame, writtenAt: 0, ...(frame.kind === 'video' ? { encoded: frame } : {}) });
      this.deliverReady();
      return;
    }
    if (frame.codec !== 'H265') return;
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
    const encoder = this.launch(fps, now);
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
    encoder.stdin.write(Buffer.concat([annexB.annexB, HEVC_AUD_NEXT]));
    if (slot) slot.writtenAt = now;
    else this.slots.push({ frame, writtenAt: now });
    this.counters.framesIn++;
  }

  private launch(fps: number, now: number): FeedEncoder {
    const { ffmpeg, log } = this.options;
    const bitrateKbps = this.options.bitrateKbps();
    const args = recordingVideoArgs({ inputFormat: 'hevc', fps, bitrateKbps, ...(ffmpeg.version ? { ffmpegVersion: ffmpeg.version } : {}), ...(this.options.debug ? { debug: true } : {}) });
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
    if (this.counters.starts === 1) {
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
    // A keyframe out is the next camera keyframe in, and frames before it that never came back are
    // lost; a frame out that is not a keyframe cannot be a camera keyframe's (nor one nobody wrote).
    const index = keyframe ? waiting.findIndex((s) => s.frame.keyframe) : waiting.length > 0 && !waiting[0]!.frame.keyframe ? 0 : -1;
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
  }

  private sayOnce(key: string, message: string): void {
    this.current = message.replace(/^HomeKit Secure Video: /, '');
    if (this.said.has(key)) return;
    this.said.add(key);
    this.options.log.warn(message);
  }
}
