/**
 * Gives freed memory back to the system a little while after the events that free a lot of it:
 * Homebridge's start-up, and viewers coming and going. Two kinds stay resident on their own:
 * - the C heap: a WebRTC handshake's OpenSSL state, and the V8 compiles a first viewer sets off,
 *   are memory glibc keeps once freed. `bench:webrtc` measured 12.5 MiB handed back after
 *   start-up, and 8-16 MiB after 10-50 viewers joined, each trim in 1-6 ms (`trimNativeHeap`);
 * - V8's own pages: a burst of handshakes grows V8's young generation to its maximum, and when it
 *   shrinks V8 keeps the pages pooled, resident, until its memory reducer runs, which it does only
 *   once the process allocates little. With 50 viewers watching it never did: about 16 MiB after
 *   50 joins (`bench:webrtc`, /proc/self/smaps). So a trim after viewers first asks V8 for that
 *   collection (`hintMemoryReduction`: incremental, as V8 runs it by itself when idle), and trims
 *   the C heap once that collection has ended (V8 reports its full collections as `gc` performance
 *   entries) and its sweeping and finalisers have freed what its dead objects held there, or
 *   `collectMs` after asking at the latest. The trim after Homebridge's start-up asks V8 too:
 *   with a camera running, V8 had not collected start-up's garbage 75 s later.
 *
 * A trim is process-wide, so requests from every camera and viewer share one schedule: it runs
 * once they have been quiet for `quietMs`, no later than `maxDelayMs` after the first unserved
 * request (a steady trickle of viewers still gets trims), and never twice within `minIntervalMs`.
 * Without the native addon (another OS, 32-bit ARM, musl) there is nothing to trim, and requests
 * do nothing.
 */
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import { realTimers, type TimerHandle, type TimerSeam } from '../media/timers.js';
import { nativeFanout } from './native-fanout.js';

export interface NativeHeapTrimOptions {
  /** Returns the C heap's freed pages to the system; undefined: the addon is not loaded. */
  trim: (() => boolean) | undefined;
  /** Asks V8 for a memory-reducing collection; true when it was asked. Undefined: none. */
  reduceV8?: (() => boolean) | undefined;
  /** How long after asking V8 the C heap is trimmed at the latest (its collection runs in steps meanwhile). */
  collectMs?: number;
  /**
   * Calls `listener` after each of V8's full collections, until the returned function is called
   * (`observeMajorCollections`); undefined: the trim waits `collectMs`.
   */
  majorCollections?: ((listener: () => void) => () => void) | undefined;
  /** How long after V8's full collection the C heap is trimmed: its sweeping and the finalisers it queued free C memory. */
  afterCollectionMs?: number;
  timers?: TimerSeam;
  now?: () => number;
  /** Resident memory in bytes, to log what a trim gave back. */
  rss?: () => number;
  quietMs?: number;
  maxDelayMs?: number;
  minIntervalMs?: number;
}

export interface TrimRequestOptions {
  /**
   * Whether the run should ask V8 for its collection too (default true: after start-up, and once
   * viewers settled or left, whose handshakes grew V8's young generation). An earlier schedule (a
   * trim 5 s after the last request, V8's collection given 3 s) put the start-up collection in the
   * middle of bench:janus's connect storms, which begin 5 s after start-up, so start-up once passed
   * false; with 1.5 s and the trim at the collection's end it is over before them (storm of 50:
   * slowest first keyframe 1.25-1.55 s, as without). Nothing in the plugin passes false now.
   */
  collectV8?: boolean;
}

export interface NativeHeapTrimStats {
  trims: number;
  /** Trims that asked V8 for a memory-reducing collection first. */
  v8Reductions: number;
  /** RSS before minus after the latest trim, V8's collection included (may be 0 or negative). */
  lastReleasedBytes: number;
  /** Milliseconds the latest trim took. */
  lastTrimMs: number;
}

/**
 * Viewers settle within a second of each other in a storm of joins (each a request), so 1.5 s
 * without one means the burst is over; the memory it left is handed back a few seconds later,
 * instead of being what the process weighs while the viewers watch.
 */
const DEFAULT_QUIET_MS = 1_500;
const DEFAULT_MAX_DELAY_MS = 30_000;
/** A trim costs 1-6 ms: at most one each 10 s bounds that at 0.06 % of a core, even under churn. */
const DEFAULT_MIN_INTERVAL_MS = 10_000;
/** V8's incremental collection finishes within a second or two, in steps on the event loop. */
const DEFAULT_COLLECT_MS = 3_000;
/** Concurrent sweeping frees backing stores, and finalisers run, within a few event-loop turns. */
const DEFAULT_AFTER_COLLECTION_MS = 250;

/** Calls `listener` after each of V8's full (mark-compact) collections, until the returned function is called. */
export function observeMajorCollections(listener: () => void): () => void {
  const observer = new PerformanceObserver((list) => {
    // A gc entry's `detail.kind` (Node ≥ 16) says which collection it was.
    const isMajor = (entry: object): boolean => (Reflect.get(entry, 'detail') as { kind?: number } | null | undefined)?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR;
    if (list.getEntries().some(isMajor)) listener();
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

export class NativeHeapTrimmer {
  private readonly timers: TimerSeam;
  private readonly now: () => number;
  private readonly rss: () => number;
  private readonly quietMs: number;
  private readonly maxDelayMs: number;
  private readonly minIntervalMs: number;
  private readonly collectMs: number;
  private readonly afterCollectionMs: number;
  /** Stops watching for V8's full collection (set while a trim waits for it). */
  private stopWatching: (() => void) | undefined;
  private timer: TimerHandle | undefined;
  /** When the oldest request not yet served by a trim came. */
  private pendingSince: number | undefined;
  /** Whether a request since the last run asked for V8's collection. */
  private pendingV8 = false;
  /** The C heap's trim due once V8 has collected (see `run`); requests meanwhile leave it be. */
  private finishing: TimerHandle | undefined;
  /** When the latest run started (V8 asked, or the C heap trimmed): runs are minIntervalMs apart. */
  private lastRunAt = Number.NEGATIVE_INFINITY;
  private debug: ((message: string) => void) | undefined;
  readonly stats: NativeHeapTrimStats = { trims: 0, v8Reductions: 0, lastReleasedBytes: 0, lastTrimMs: 0 };

  constructor(private readonly options: NativeHeapTrimOptions) {
    this.timers = options.timers ?? realTimers;
    this.now = options.now ?? (() => performance.now());
    this.rss = options.rss ?? (() => process.memoryUsage.rss());
    this.quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.minIntervalMs = options.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
    this.collectMs = options.collectMs ?? DEFAULT_COLLECT_MS;
    this.afterCollectionMs = options.afterCollectionMs ?? DEFAULT_AFTER_COLLECTION_MS;
  }

  /**
   * Something just freed (or is about to free) C memory: trim once things are quiet. `debug`, when
   * given, becomes where trims are logged (the platform's logger; viewers pass none, so that the
   * process-wide trimmer never keeps one of them alive).
   */
  request(debug?: (message: string) => void, options: TrimRequestOptions = {}): void {
    if (!this.options.trim) return;
    if (debug) this.debug = debug;
    if (options.collectV8 !== false) this.pendingV8 = true;
    const now = this.now();
    this.pendingSince ??= now;
    const quiet = Math.min(now + this.quietMs, this.pendingSince + this.maxDelayMs);
    const due = Math.max(quiet, this.lastRunAt + this.minIntervalMs);
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = this.timers.setTimeout(() => this.run(), Math.max(0, due - now));
  }

  /** Whether a trim is scheduled, or waiting for V8's collection (benchmarks measure after it). */
  get pending(): boolean {
    return this.timer !== undefined || this.finishing !== undefined;
  }

  /** Cancels a scheduled trim, and one waiting for V8's collection (tests, shutdown). */
  stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    if (this.finishing !== undefined) this.timers.clearTimeout(this.finishing);
    this.timer = this.finishing = undefined;
    this.unwatch();
    this.pendingSince = undefined;
    this.pendingV8 = false;
  }

  /** Only ever scheduled by `request`, which needs `trim`: V8's collection first, when there is one. */
  private run(): void {
    this.timer = undefined;
    this.pendingSince = undefined;
    this.lastRunAt = this.now();
    const before = this.rss();
    const askV8 = this.pendingV8;
    this.pendingV8 = false;
    let reducing = false;
    try {
      reducing = askV8 && this.options.reduceV8?.() === true;
    } catch (error) {
      // Never expected (the C call takes no arguments); the C heap is still trimmed.
      this.debug?.(`could not ask V8 to reduce its memory: ${String(error)}`);
    }
    if (!reducing) {
      this.trimNow(before, false);
      return;
    }
    this.stats.v8Reductions++;
    // minIntervalMs is longer than collectMs, so no earlier trim can still be waiting here.
    const finish = (): void => {
      this.finishing = undefined;
      this.unwatch();
      this.trimNow(before, true);
    };
    this.finishing = this.timers.setTimeout(finish, this.collectMs);
    try {
      this.stopWatching = this.options.majorCollections?.(() => {
        this.unwatch();
        if (this.finishing !== undefined) this.timers.clearTimeout(this.finishing);
        this.finishing = this.timers.setTimeout(finish, this.afterCollectionMs);
      });
    } catch (error) {
      // Only the timer then: the trim still comes collectMs after asking.
      this.debug?.(`could not watch for V8's collection: ${String(error)}`);
    }
  }

  private unwatch(): void {
    const stop = this.stopWatching;
    this.stopWatching = undefined;
    stop?.();
  }

  private trimNow(rssBefore: number, afterV8: boolean): void {
    const started = this.now();
    try {
      this.options.trim?.();
    } catch (error) {
      // Never expected (the C call takes no arguments); a trim is an optimisation, not a duty.
      this.debug?.(`could not return freed native memory: ${String(error)}`);
      return;
    }
    this.stats.trims++;
    this.stats.lastTrimMs = this.now() - started;
    this.stats.lastReleasedBytes = rssBefore - this.rss();
    this.debug?.(
      `returned ${(this.stats.lastReleasedBytes / 1048576).toFixed(1)} MiB of freed ${afterV8 ? 'V8 and native' : 'native'} memory to the system (the C heap's trim took ${this.stats.lastTrimMs.toFixed(1)} ms)`,
    );
  }
}

let shared: NativeHeapTrimmer | undefined;

/** The process's trimmer (one schedule for every camera and viewer), on the addon when it loads. */
export function nativeHeapTrimmer(): NativeHeapTrimmer {
  if (!shared) {
    const status = nativeFanout();
    shared = new NativeHeapTrimmer(
      status.loaded
        ? { trim: () => status.fanout.trimNativeHeap(), reduceV8: () => status.fanout.hintMemoryReduction(), majorCollections: observeMajorCollections }
        : { trim: undefined },
    );
  }
  return shared;
}

/**
 * Makes `trimmer` the process's trimmer, before anything asked for the shared one (a benchmark
 * measuring the trim without V8's collection). Throws once the shared one exists.
 */
export function useNativeHeapTrimmer(trimmer: NativeHeapTrimmer): void {
  if (shared) throw new Error('the native heap trimmer is already in use');
  shared = trimmer;
}

/** Asks the process's trimmer for a trim once things are quiet; `debug` logs what it gave back. */
export function requestNativeHeapTrim(debug?: (message: string) => void, options?: TrimRequestOptions): void {
  nativeHeapTrimmer().request(debug, options);
}
