/**
 * The seconds before a motion event, kept per camera while HomeKit Secure Video recording is on.
 * It is one more subscriber of the camera's ONE shared Source (no second camera session): the
 * Source's GOP cache is replayed on subscribe, so it starts on a keyframe at once, and every later
 * frame is appended to the GOP it belongs to.
 *
 * Trimmed GOP-wise by media time: the oldest GOP kept is the newest one whose keyframe is at least
 * `seconds` older than the newest frame, so a recording can always begin on a keyframe at least
 * that far back (never a cut inside a GOP, which would not decode). Times come from the frames'
 * own 90 kHz timestamps, not the wall clock, so a stall in delivery does not shorten it.
 *
 * HomeKit wants the seconds before the *event*, but the hub opens the recording stream only after
 * it saw the event (a fraction of a second to a second or two later). `markEvent()` holds the
 * event's moment for up to `EVENT_HOLD_SECONDS`: trimming then counts from it instead of from the
 * newest frame, so the GOP that reaches `seconds` before the event is still there when the hub
 * asks, and the recording starts from it (`eventTimestamp`).
 *
 * Memory: a 1080p camera at 4 Mbit/s sends about 0.5 MB/s, so 4 s is about 2 MB, plus up to one
 * GOP more (the oldest keyframe sits up to a GOP before the 4 s mark): 2-2.5 MB with a 1 s GOP,
 * about 4 MB with a 4 s GOP. The byte cap (`prebufferByteCap`: the seconds plus a 4 s GOP at
 * 8 Mbit/s, 8 MiB for 4 s) bounds a camera that sends far more; past it the oldest GOPs go first,
 * and a single GOP larger than the cap is dropped whole until the next keyframe. When recording
 * is turned off the subscription ends and every frame is released. An event held adds the frames
 * since the event, at most `EVENT_HOLD_SECONDS` (about 2.5 MB more at 4 Mbit/s), within the cap.
 */
import type { Logger } from '../../util/logger.js';
import { frameByteLength } from '../../media/frame.js';
import type { FrameSink, MediaFrame, Subscribable } from '../../media/types.js';

/** HomeKit requires a pre-buffer of at least 4000 ms; HAP-NodeJS calls 4-8 s sensible. */
export const PREBUFFER_SECONDS = { default: 4, min: 4, max: 8 } as const;

const MIB = 1024 * 1024;
/** Bytes per second of an 8 Mbit/s camera: the upper end of what 1080p cameras send. */
const HIGH_RATE_BYTES_PER_SECOND = MIB;
/** The longest GOP planned for, beyond the pre-buffer's own seconds. */
const LONGEST_PLANNED_GOP_SECONDS = 4;
/** How long (media time) an event's pre-buffer is held for the hub to open its recording stream. */
export const EVENT_HOLD_SECONDS = 5;

/** The default byte cap: `seconds` plus one 4 s GOP at 8 Mbit/s (8 MiB for 4 s). */
export function prebufferByteCap(seconds: number): number {
  return (seconds + LONGEST_PLANNED_GOP_SECONDS) * HIGH_RATE_BYTES_PER_SECOND;
}

/** The setting clamped to what HomeKit accepts; a missing or non-numeric value is the default. */
export function prebufferSecondsFrom(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value)) return PREBUFFER_SECONDS.default;
  return Math.min(PREBUFFER_SECONDS.max, Math.max(PREBUFFER_SECONDS.min, value));
}

interface Gop {
  frames: MediaFrame[];
  bytes: number;
  /** The keyframe's timestamp (90 kHz, wraps at 2^32). */
  keyTimestamp: number;
}

export interface PrebufferOptions {
  source: Subscribable;
  /** The camera's logger (prefixed with its name, as every HomeKit part's is). */
  log: Logger;
  /** The `prebufferSeconds` setting; clamped here (`prebufferSecondsFrom`), default 4. */
  seconds?: number;
  /** Default `prebufferByteCap(seconds)`. */
  maxBytes?: number;
}

export interface PrebufferStats {
  active: boolean;
  frames: number;
  bytes: number;
  gops: number;
  /** From the oldest kept keyframe to the newest video frame. */
  seconds: number;
  /** GOPs dropped early because the byte cap was reached. */
  trimmedForBytes: number;
  /** Single GOPs larger than the whole cap (dropped until the next keyframe). */
  oversizedGops: number;
  /** Recordings following the live frames right now. */
  followers: number;
}

/** A live view of the frames: what was buffered, then every frame after it, with no gap or overlap. */
export interface PrebufferFollower {
  /** The buffered frames at the moment `follow` was called, oldest (a keyframe) first. */
  readonly frames: ReadonlyArray<MediaFrame>;
  stop(): void;
}

export class Prebuffer implements FrameSink {
  private subscription: { unsubscribe(): void } | undefined;
  /** Set before subscribing: the Source replays its GOP cache from inside `subscribe`. */
  private running = false;
  private gops: Gop[] = [];
  private bytes = 0;
  private newestVideoTimestamp = 0;
  /** The newest video timestamp when the last event was marked, while it is held. */
  private event: number | undefined;
  private readonly followers = new Set<(frame: MediaFrame) => void>();
  private trimmedForBytes = 0;
  private oversizedGops = 0;
  private warnedOversized = false;
  readonly seconds: number;
  readonly maxBytes: number;

  constructor(private readonly options: PrebufferOptions) {
    this.seconds = prebufferSecondsFrom(options.seconds);
    this.maxBytes = options.maxBytes ?? prebufferByteCap(this.seconds);
  }

  get active(): boolean {
    return this.running;
  }

  /** Starts buffering (recording turned on). Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    // fromKeyframe: the Source replays its GOP cache first, so buffering starts on a keyframe at once.
    this.subscription = this.options.source.subscribe(this, { fromKeyframe: true });
  }

  /** Stops buffering and releases every frame (recording turned off). Idempotent. */
  stop(): void {
    const subscription = this.subscription;
    this.subscription = undefined;
    this.running = false;
    subscription?.unsubscribe();
    this.clear();
    this.followers.clear();
  }

  /**
   * A recording trigger (motion, a doorbell press) happened now: keep what reaches `seconds` before
   * this moment until the hub opens its stream (at most `EVENT_HOLD_SECONDS`). Nothing to mark
   * before the first video frame.
   */
  markEvent(): void {
    if (this.running && this.gops.length > 0) this.event = this.newestVideoTimestamp;
  }

  /** The marked event's timestamp (90 kHz) while it is held, for a recording to count back from. */
  get eventTimestamp(): number | undefined {
    return this.event;
  }

  write(frame: MediaFrame): boolean {
    if (!this.running) return true;
    if (frame.kind === 'video') {
      this.newestVideoTimestamp = frame.timestamp;
      if (this.event !== undefined && mediaSeconds(frame.timestamp, this.event) > EVENT_HOLD_SECONDS) this.event = undefined;
      if (frame.keyframe) this.gops.push({ frames: [], bytes: 0, keyTimestamp: frame.timestamp });
    }
    const gop = this.gops.at(-1);
    if (gop) {
      // Before the first keyframe nothing can be kept: a recording must begin on one.
      const size = frameByteLength(frame);
      gop.frames.push(frame);
      gop.bytes += size;
      this.bytes += size;
      this.trim();
    }
    for (const follower of [...this.followers]) follower(frame);
    // Never congested: the buffer is bounded by its own trimming, and a cut-back would leave a hole.
    return true;
  }

  /** The stream changed (new parameters): what was buffered no longer matches it. */
  onTracks(): void {
    this.clear();
  }

  /** The buffered frames, oldest (a keyframe) first. */
  frames(): MediaFrame[] {
    return this.gops.flatMap((g) => g.frames);
  }

  /**
   * The buffered frames now, then every later frame through `listener`, synchronously from the
   * Source's delivery, so nothing is lost or repeated between the two (a recording's start).
   */
  follow(listener: (frame: MediaFrame) => void): PrebufferFollower {
    const frames = this.frames();
    this.followers.add(listener);
    return { frames, stop: () => this.followers.delete(listener) };
  }

  stats(): PrebufferStats {
    const oldest = this.gops[0];
    return {
      active: this.active,
      frames: this.gops.reduce((n, g) => n + g.frames.length, 0),
      bytes: this.bytes,
      gops: this.gops.length,
      seconds: oldest ? ((this.newestVideoTimestamp - oldest.keyTimestamp) >>> 0) / 90000 : 0,
      trimmedForBytes: this.trimmedForBytes,
      oversizedGops: this.oversizedGops,
      followers: this.followers.size,
    };
  }

  private trim(): void {
    // By time: drop the oldest GOP while the next one alone already reaches back far enough (from
    // the held event, if any: a GOP after the event has a negative age there and is never enough).
    const reference = this.event ?? this.newestVideoTimestamp;
    while (this.gops.length >= 2 && mediaSeconds(reference, this.gops[1]!.keyTimestamp) >= this.seconds) this.dropOldest();
    // By bytes: the oldest GOPs go first; a lone GOP over the cap goes whole.
    while (this.bytes > this.maxBytes && this.gops.length > 1) {
      this.dropOldest();
      this.trimmedForBytes++;
    }
    if (this.bytes > this.maxBytes) {
      this.oversizedGops++;
      if (!this.warnedOversized) {
        this.warnedOversized = true;
        this.options.log.warn(
          `Recording pre-buffer: one GOP is over ${(this.maxBytes / MIB).toFixed(1)} MiB; ` +
            'it is dropped until the next keyframe (a shorter keyframe interval on the camera fixes this)',
        );
      }
      this.clear();
    }
  }

  private dropOldest(): void {
    const gop = this.gops.shift()!;
    this.bytes -= gop.bytes;
  }

  private clear(): void {
    this.gops = [];
    this.bytes = 0;
    this.event = undefined;
  }
}

/**
 * Seconds from 90 kHz timestamp `from` to `to` (later minus earlier), negative when `to` is
 * earlier; the 32-bit timestamps wrap, so the difference is taken as a signed 32-bit number.
 */
export function mediaSeconds(to: number, from: number): number {
  return ((to - from) | 0) / 90000;
}
