/**
 * Snapshots for one camera, for the Home app and the watch page's tiles alike.
 *
 * Sources, in order: the latest keyframe of the camera's own stream (decoded by one ffmpeg, scaled
 * to the requested size), then the camera's still-image URL (ONVIF GetSnapshotUri or the configured
 * snapshotUrl), then the last good picture. Requests that arrive together share one decode, a
 * result is reused for a few seconds, and an answer always comes before HomeKit's 5 s limit: a
 * stale picture beats an error tile.
 *
 * `SnapshotRegistry` is the one provider the web server gets: src/runtime makes one with the shared
 * services, hands it to the web server, and registers each camera's service into it by id.
 */
import type { SourceStateName } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import { decodeToJpeg, isJpeg, takeKeyframe, type EncodedKeyframe, type SnapshotFrameSource } from './keyframe-snapshot.js';
import type { SavedSnapshot, SnapshotStore } from './snapshot-store.js';

export interface SnapshotSize {
  width?: number;
  height?: number;
}

/** A still-image source other than the stream: ONVIF's snapshot URI or the configured snapshotUrl. */
export interface StillImageSource {
  name: string;
  fetch(signal: AbortSignal): Promise<Buffer>;
}

export interface SnapshotServiceOptions {
  source: SnapshotFrameSource;
  /** undefined: no ffmpeg, so only still-image sources (unscaled) and the last picture. */
  ffmpegPath: string | undefined;
  stillSources: StillImageSource[];
  log: Logger;
  debug?: boolean;
  /** A picture is reused for this long (default 4000 ms). */
  cacheMs?: number;
  /** Always answer within this (default 4500 ms, under HomeKit's 5 s). */
  deadlineMs?: number;
  /** Try the still-image sources when the stream has not given a picture after this long (default 2500 ms). */
  fallbackAfterMs?: number;
  /**
   * Where fresh pictures are kept across restarts, for the page's tiles (shown at once, with their
   * age). Only the tiles read it back: the Home app has no way to show a picture's age.
   */
  store?: SnapshotStore;
}

interface CachedImage {
  image: Buffer;
  at: number;
}

export interface SnapshotResult {
  image: Buffer;
  /** Where it came from: 'cache' | 'stream' | a still source's name | 'last good'. */
  origin: string;
  ms: number;
}

/**
 * Pictures asked for narrower than this (the Apple Watch's, notification thumbnails) are not kept on
 * disk: the saved picture fills a page tile, and a 320-pixel one would replace a sharp 640-pixel one.
 */
export const MIN_SAVED_WIDTH = 480;

function sizeKey(size: SnapshotSize): string {
  return `${size.width ?? 0}x${size.height ?? 0}`;
}

export class SnapshotService {
  private readonly cache = new Map<string, CachedImage>();
  private readonly inflight = new Map<string, Promise<SnapshotResult | undefined>>();
  private keyframeInflight: Promise<EncodedKeyframe | undefined> | undefined;
  private lastGood: Buffer | undefined;
  private readonly cacheMs: number;
  private readonly deadlineMs: number;
  private readonly fallbackAfterMs: number;
  private readonly closing = new AbortController();

  constructor(private readonly options: SnapshotServiceOptions) {
    this.cacheMs = options.cacheMs ?? 4000;
    this.deadlineMs = options.deadlineMs ?? 4500;
    this.fallbackAfterMs = options.fallbackAfterMs ?? 2500;
  }

  /** The picture, or undefined when there has never been one. Never rejects, never exceeds the deadline. */
  async getSnapshot(size: SnapshotSize = {}): Promise<Buffer | undefined> {
    return (await this.take(size))?.image;
  }

  /** Like getSnapshot, with where the picture came from and how long it took (tests, the bench). */
  take(size: SnapshotSize = {}): Promise<SnapshotResult | undefined> {
    const started = performance.now();
    const key = sizeKey(size);
    const cached = this.cache.get(key);
    if (cached && Date.now() - cached.at < this.cacheMs) {
      return Promise.resolve({ image: cached.image, origin: 'cache', ms: performance.now() - started });
    }
    const running = this.inflight.get(key);
    if (running) return running;
    const promise = this.produce(size, started).finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return promise;
  }

  /** The last good picture kept across restarts, with its capture time; undefined without a store. */
  saved(): Promise<SavedSnapshot | undefined> {
    return this.options.store ? this.options.store.last() : Promise.resolve(undefined);
  }

  /** Stops work in flight; resolves when a picture still waiting to be saved is on disk. */
  close(): Promise<void> {
    this.closing.abort();
    return this.options.store ? this.options.store.close() : Promise.resolve();
  }

  private async produce(size: SnapshotSize, started: number): Promise<SnapshotResult | undefined> {
    const attempt = new AbortController();
    const stopAttempt = (): void => attempt.abort();
    this.closing.signal.addEventListener('abort', stopAttempt, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.deadlineMs);
    });
    try {
      const fresh = await Promise.race([this.firstSuccess(size, attempt.signal), deadline]);
      if (fresh) {
        this.lastGood = fresh.image;
        if (size.width === undefined || size.width >= MIN_SAVED_WIDTH) this.options.store?.offer(fresh.image);
        this.cache.set(sizeKey(size), { image: fresh.image, at: Date.now() });
        return { ...fresh, ms: performance.now() - started };
      }
      if (this.lastGood) {
        this.options.log.debug(`snapshot: no fresh picture within ${this.deadlineMs} ms; answering with the last good one`);
        return { image: this.lastGood, origin: 'last good', ms: performance.now() - started };
      }
      this.options.log.debug('snapshot: no picture yet (the camera has not delivered one)');
      return undefined;
    } finally {
      clearTimeout(timer);
      attempt.abort();
      this.closing.signal.removeEventListener('abort', stopAttempt);
    }
  }

  /**
   * The stream first; the still sources start when the stream cannot help (no ffmpeg, camera down)
   * or has not delivered after `fallbackAfterMs`. The first picture wins.
   */
  private firstSuccess(size: SnapshotSize, signal: AbortSignal): Promise<Omit<SnapshotResult, 'ms'> | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      let pending = 0;
      let fallbackStarted = false;
      let fallbackTimer: NodeJS.Timeout | undefined;
      const source = this.options.source;
      const onState = (...args: unknown[]): void => {
        // The camera just failed to connect (it was idle when asked): it will not give a keyframe soon.
        if ((args[0] as { state?: SourceStateName } | undefined)?.state === 'retrying') startFallback();
      };
      const finish = (result: Omit<SnapshotResult, 'ms'> | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(fallbackTimer);
        source.off?.('state', onState);
        resolve(result);
      };
      const track = (work: Promise<Omit<SnapshotResult, 'ms'> | undefined>): void => {
        pending++;
        work.then(
          (result) => {
            pending--;
            if (result) finish(result);
            else if (pending === 0 && fallbackStarted) finish(undefined);
            else if (pending === 0) startFallback();
          },
          () => {
            pending--;
            if (pending === 0 && fallbackStarted) finish(undefined);
            else if (pending === 0) startFallback();
          },
        );
      };
      const startFallback = (): void => {
        if (fallbackStarted || settled) return;
        fallbackStarted = true;
        clearTimeout(fallbackTimer);
        if (this.options.stillSources.length === 0) {
          if (pending === 0) finish(undefined);
          return;
        }
        track(this.fromStillSources(size, signal));
      };
      signal.addEventListener('abort', () => finish(undefined), { once: true });
      const state = this.options.source.state.state;
      const streamUsable = this.options.ffmpegPath !== undefined && state !== 'stopped';
      if (streamUsable) track(this.fromStream(size, signal));
      // A camera that is failing right now will not give a keyframe soon: ask the still URL at once.
      if (!streamUsable || state === 'retrying') startFallback();
      else {
        fallbackTimer = setTimeout(startFallback, this.fallbackAfterMs);
        source.on?.('state', onState);
      }
    });
  }

  private async fromStream(size: SnapshotSize, signal: AbortSignal): Promise<Omit<SnapshotResult, 'ms'> | undefined> {
    const ffmpegPath = this.options.ffmpegPath;
    if (!ffmpegPath) return undefined;
    // Every size waiting at the same moment shares one keyframe subscription.
    this.keyframeInflight ??= takeKeyframe(this.options.source, this.deadlineMs, this.closing.signal).finally(() => {
      this.keyframeInflight = undefined;
    });
    const keyframe = await this.keyframeInflight;
    if (!keyframe || signal.aborted) return undefined;
    try {
      const image = await decodeToJpeg({
        ffmpegPath,
        codec: keyframe.codec,
        input: keyframe.annexB,
        ...size,
        log: this.options.log,
        ...(this.options.debug ? { debug: true } : {}),
      });
      return { image, origin: 'stream' };
    } catch (error) {
      this.options.log.warn(`snapshot from the stream failed: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    }
  }

  private async fromStillSources(size: SnapshotSize, signal: AbortSignal): Promise<Omit<SnapshotResult, 'ms'> | undefined> {
    for (const still of this.options.stillSources) {
      if (signal.aborted) return undefined;
      try {
        const raw = await still.fetch(signal);
        if (!isJpeg(raw)) throw new Error('the answer is not a JPEG picture');
        let image = raw;
        if (this.options.ffmpegPath && (size.width || size.height)) {
          // Same size as asked for, like the stream's pictures; a failed resize still leaves a picture.
          image = await decodeToJpeg({ ffmpegPath: this.options.ffmpegPath, codec: 'mjpeg', input: raw, ...size, log: this.options.log }).catch(() => raw);
        }
        return { image, origin: still.name };
      } catch (error) {
        if (!signal.aborted) this.options.log.debug(`snapshot from ${still.name} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return undefined;
  }
}

/**
 * One provider for the web server (it satisfies src/web's `SnapshotProvider`), dispatching by camera
 * id to each camera's service.
 */
export class SnapshotRegistry {
  private readonly services = new Map<string, SnapshotService>();

  register(cameraId: string, service: SnapshotService): () => void {
    this.services.set(cameraId, service);
    return () => {
      if (this.services.get(cameraId) === service) this.services.delete(cameraId);
    };
  }

  get(cameraId: string): SnapshotService | undefined {
    return this.services.get(cameraId);
  }

  getSnapshot(cameraId: string, size: { width?: number; height?: number }): Promise<Buffer | undefined> {
    const service = this.services.get(cameraId);
    return service ? service.getSnapshot(size) : Promise.resolve(undefined);
  }

  /** Only registered (configured, running) cameras: a removed camera's file is never served. */
  savedSnapshot(cameraId: string): Promise<SavedSnapshot | undefined> {
    const service = this.services.get(cameraId);
    return service ? service.saved() : Promise.resolve(undefined);
  }
}
