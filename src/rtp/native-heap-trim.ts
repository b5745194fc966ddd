/**
 * Gives the C heap's freed memory back to the system a little while after the events that free a
 * lot of it: Homebridge's start-up, and viewers coming and going (a WebRTC handshake's OpenSSL
 * state, and the V8 compiles a first viewer sets off, are C heap that glibc keeps resident once
 * freed). `bench:webrtc` measured 12.5 MiB handed back after start-up, and 8-16 MiB after 10-50
 * viewers joined, each trim in 1-6 ms (`trimNativeHeap` in native/srtp-fanout.c).
 *
 * A trim is process-wide, so requests from every camera and viewer share one schedule: it runs
 * once they have been quiet for `quietMs`, no later than `maxDelayMs` after the first unserved
 * request (a steady trickle of viewers still gets trims), and never twice within `minIntervalMs`.
 * Without the native addon (another OS, 32-bit ARM, musl) there is nothing to trim, and requests
 * do nothing.
 */
import { realTimers, type TimerHandle, type TimerSeam } from '../media/timers.js';
import { nativeFanout } from './native-fanout.js';

export interface NativeHeapTrimOptions {
  /** Returns the C heap's freed pages to the system; undefined: the addon is not loaded. */
  trim: (() => boolean) | undefined;
  timers?: TimerSeam;
  now?: () => number;
  /** Resident memory in bytes, to log what a trim gave back. */
  rss?: () => number;
  quietMs?: number;
  maxDelayMs?: number;
  minIntervalMs?: number;
}

export interface NativeHeapTrimStats {
  trims: number;
  /** RSS before minus after the latest trim (may be 0 or negative when nothing was free). */
  lastReleasedBytes: number;
  /** Milliseconds the latest trim took. */
  lastTrimMs: number;
}

const DEFAULT_QUIET_MS = 5_000;
const DEFAULT_MAX_DELAY_MS = 30_000;
/** A trim costs 1-6 ms: at most one each 10 s bounds that at 0.06 % of a core, even under churn. */
const DEFAULT_MIN_INTERVAL_MS = 10_000;

export class NativeHeapTrimmer {
  private readonly timers: TimerSeam;
  private readonly now: () => number;
  private readonly rss: () => number;
  private readonly quietMs: number;
  private readonly maxDelayMs: number;
  private readonly minIntervalMs: number;
  private timer: TimerHandle | undefined;
  /** When the oldest request not yet served by a trim came. */
  private pendingSince: number | undefined;
  private lastTrimAt = Number.NEGATIVE_INFINITY;
  private debug: ((message: string) => void) | undefined;
  readonly stats: NativeHeapTrimStats = { trims: 0, lastReleasedBytes: 0, lastTrimMs: 0 };

  constructor(private readonly options: NativeHeapTrimOptions) {
    this.timers = options.timers ?? realTimers;
    this.now = options.now ?? (() => performance.now());
    this.rss = options.rss ?? (() => process.memoryUsage.rss());
    this.quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.minIntervalMs = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
  }

  /**
   * Something just freed (or is about to free) C memory: trim once things are quiet. `debug`, when
   * given, becomes where trims are logged (the platform's logger; viewers pass none, so that the
   * process-wide trimmer never keeps one of them alive).
   */
  request(debug?: (message: string) => void): void {
    if (!this.options.trim) return;
    if (debug) this.debug = debug;
    const now = this.now();
    this.pendingSince ??= now;
    const quiet = Math.min(now + this.quietMs, this.pendingSince + this.maxDelayMs);
    const due = Math.max(quiet, this.lastTrimAt + this.minIntervalMs);
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => this.run(), Math.max(0, due - now));
  }

  /** Cancels a scheduled trim (tests, shutdown). */
  stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.pendingSince = undefined;
  }

  /** Only ever scheduled by `request`, which needs `trim`. */
  private run(): void {
    this.timer = undefined;
    this.pendingSince = undefined;
    const before = this.rss();
    const started = this.now();
    try {
      this.options.trim?.();
    } catch (error) {
      // Never expected (the C call takes no arguments); a trim is an optimisation, not a duty.
      this.debug?.(`could not return freed native memory: ${String(error)}`);
      return;
    }
    this.lastTrimAt = this.now();
    this.stats.trims++;
    this.stats.lastTrimMs = this.lastTrimAt - started;
    this.stats.lastReleasedBytes = before - this.rss();
    this.debug?.(
      `returned ${(this.stats.lastReleasedBytes / 1048576).toFixed(1)} MiB of freed native memory to the system in ${this.stats.lastTrimMs.toFixed(1)} ms`,
    );
  }
}

let shared: NativeHeapTrimmer | undefined;

/** The process's trimmer (one schedule for every camera and viewer), on the addon when it loads. */
export function nativeHeapTrimmer(): NativeHeapTrimmer {
  if (!shared) {
    const status = nativeFanout();
    shared = new NativeHeapTrimmer({ trim: status.loaded ? () => status.fanout.trimNativeHeap() : undefined });
  }
  return shared;
}

/** Asks the process's trimmer for a trim once things are quiet; `debug` logs what it gave back. */
export function requestNativeHeapTrim(debug?: (message: string) => void): void {
  nativeHeapTrimmer().request(debug);
}
