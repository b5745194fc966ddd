/**
 * One Source per camera: the only thing that talks to the camera's upstream session, and the only
 * place media work happens. Every packet is parsed, depacketised, timed and re-packetised once here;
 * viewers and other outputs receive the same immutable `MediaFrame` objects, so adding a subscriber
 * costs one `write` call per frame and nothing per packet.
 *
 * Responsibilities, in the order a packet meets them:
 * - pull on demand (first subscriber starts it, `idleTimeoutMs` after the last one stops it) or
 *   always (`alwaysOn`), reconnecting with exponential backoff and jitter when the camera fails,
 *   refuses, or goes silent;
 * - per track: RTP parse, SSRC/sequence tracking (loss statistics), depacketising into frames,
 *   mapping into an output timeline that never jumps back across reconnects;
 * - a GOP cache so new subscribers (and keyframe requests) start with a keyframe at once;
 * - fan-out with per-subscriber backpressure: a sink that refuses a frame is cut back to the next
 *   keyframe, counted, and never slows the others.
 *
 * This file is the facade and the lifecycle across sessions (connect, stall, retry, idle, close).
 * The parts are beside it: `reconnect-policy.ts` (backoff), `source-session.ts` (one session's
 * tracks and packet path), `track-receiver.ts` (sequence, reorder, SSRC), `kind-state.ts`
 * (timeline, counters, stats), `subscriber-set.ts` (fan-out, backpressure, GOP replay) and
 * `source-options.ts`. What is left stays together, at about 400 lines, because connect, fail,
 * stall, idle and close all turn on one session generation and its timers.
 */
import { EventEmitter } from 'node:events';
import { prefixedLogger, silentLogger, type Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import type { BroadcastSource, FrameSink, MediaKind, SourceState, SourceStats, SubscribeOptions, Subscription, TrackDescription } from './types.js';
import type { UpstreamFactory, UpstreamHandlers, UpstreamSession } from './types.js';
import { DEFAULT_REORDER_WAIT_MS } from './reorder-buffer.js';
import { GopCache, DEFAULT_GOP_CACHE_BYTES } from './gop-cache.js';
import { ReachabilityWatch } from './reachability-watch.js';
import { realTimers, type TimerHandle, type TimerSeam } from './timers.js';
import { buildSourceStats, sameTracks, type KindState } from './kind-state.js';
import { SourceSession } from './source-session.js';
import { SubscriberSet } from './subscriber-set.js';
import { ReconnectPolicy, describeDelay, refusedCredentials } from './reconnect-policy.js';
import type { SourceEvents, SourceOptions } from './source-options.js';

// Moved to types.ts (what outputs see of a camera); re-exported for the modules that import them from here.
export type { MediaKind, SourceStats, SubscribeOptions, Subscription, SubscriptionStats, TrackStats } from './types.js';
export type { TimerHandle, TimerSeam } from './timers.js';
export type { BackoffOptions } from './reconnect-policy.js';
export type { SourceEvents, SourceOptions } from './source-options.js';

/** See `SourceOptions.unwatchedDeliveryMs`: 4 trips into JavaScript a second instead of ~300. */
export const DEFAULT_UNWATCHED_DELIVERY_MS = 250;

export class Source extends EventEmitter<SourceEvents> implements BroadcastSource {
  readonly id: string;
  readonly name: string;
  private readonly upstream: UpstreamFactory;
  private readonly log: Logger;
  private readonly idleTimeoutMs: number;
  private readonly alwaysOn: boolean;
  private readonly policy: ReconnectPolicy;
  private readonly stallTimeoutMs: number;
  private readonly reorderWaitMs: number;
  private readonly upstreamNoun: string;
  private readonly connectTimeoutMs: number;
  private readonly stableAfterMs: number;
  private readonly keyframeRequestIntervalMs: number;
  private readonly unwatchedDeliveryMs: number;
  private readonly now: () => number;
  private readonly timers: TimerSeam;
  private readonly random: () => number;

  private readonly gop: GopCache;
  private readonly subscribers: SubscriberSet;
  private readonly kinds: Partial<Record<MediaKind, KindState>> = {};

  private currentState: SourceState = { state: 'idle' };
  private currentTracks: ReadonlyArray<TrackDescription> = [];
  private generation = 0;
  private session: SourceSession | undefined;
  private reconnects = 0;
  private timeToFirstFrameMs: number | undefined;
  /**
   * The error of the last failed attempt since the camera was last live. Kept apart from the state
   * because every retry passes through 'connecting', which carries no error: a camera refusing
   * with the same reason for hours must be one warning, not one per retry.
   */
  private lastFailure: string | undefined;
  private closed = false;
  private idleTimer: TimerHandle | undefined;
  private retryTimer: TimerHandle | undefined;
  private connectTimer: TimerHandle | undefined;
  private stallTimer: TimerHandle | undefined;
  /** While the camera is unreachable: probes it, so the reconnect follows its return at once. */
  private readonly reachability: ReachabilityWatch | undefined;
  constructor(options: SourceOptions) {
    super();
    this.id = options.id;
    this.name = options.name ?? options.id;
    this.upstream = options.upstream;
    this.log = options.logNamesCamera ? (options.logger ?? silentLogger) : prefixedLogger(options.logger ?? silentLogger, this.name);
    this.idleTimeoutMs = options.idleTimeoutMs ?? 10_000;
    this.alwaysOn = options.alwaysOn ?? false;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 5000;
    this.reorderWaitMs = options.reorderWaitMs ?? DEFAULT_REORDER_WAIT_MS;
    this.upstreamNoun = options.upstreamNoun ?? 'the camera';
    this.connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    this.stableAfterMs = options.stableAfterMs ?? 10_000;
    this.keyframeRequestIntervalMs = options.keyframeRequestIntervalMs ?? 1000;
    this.unwatchedDeliveryMs = options.unwatchedDeliveryMs ?? DEFAULT_UNWATCHED_DELIVERY_MS;
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? realTimers;
    this.random = options.random ?? Math.random;
    this.policy = new ReconnectPolicy(options.backoff, this.random);
    this.gop = new GopCache(options.gopCacheBytes ?? DEFAULT_GOP_CACHE_BYTES);
    this.subscribers = new SubscriberSet(this.log, () => this.onLastUnsubscribed());
    const probe = options.upstream.probe;
    if (probe) {
      this.reachability = new ReachabilityWatch({ probe, onBack: () => this.onUpstreamBack(), now: this.now, timers: this.timers });
    }
    if (this.alwaysOn) {
      // Deferred so the creator can attach 'state' listeners first.
      queueMicrotask(() => {
        if (!this.closed && this.currentState.state === 'idle') this.connect();
      });
    }
  }

  get state(): SourceState {
    return this.currentState;
  }

  /** The tracks in use: at most one video and one audio, with current parameter sets. */
  get tracks(): ReadonlyArray<TrackDescription> {
    return this.currentTracks;
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Attaches a sink. It receives `onTracks`/`onState` at once when known, then (by default) the
   * cached GOP synchronously, then live frames. Starts pulling when the Source was idle.
   */
  subscribe(sink: FrameSink, options: SubscribeOptions = {}): Subscription {
    if (this.closed) throw new Error(`camera ${this.name}: source is closed`);
    if (this.subscribers.has(sink)) throw new Error(`camera ${this.name}: this sink is already subscribed`);
    // What the upstream held while nobody watched goes into the GOP cache before the replay below,
    // and from now on each packet at once.
    if (this.subscribers.size === 0) this.holdWhileUnwatched(0);
    const subscription = this.subscribers.add(sink, options);
    this.cancelIdleTimer();
    if (this.currentTracks.length > 0) subscription.notifyTracks(this.currentTracks);
    subscription.notifyState(this.currentState);
    if (options.fromKeyframe ?? true) subscription.replay(this.gop.frames, true);
    if (this.currentState.state === 'idle') this.connect();
    return subscription;
  }

  /**
   * Answers a keyframe request (PLI/FIR) from the cache: re-sends the cached GOP's video to this
   * sink, rate-limited per sink. The replayed frames keep their original timestamps and sequence
   * numbers (frames are shared and immutable), so a sink that needs a strictly increasing sequence
   * (a WebRTC sender) must rewrite them. When nothing is cached, the sink's video is held until the
   * next keyframe instead. Returns true when a GOP was replayed.
   */
  requestKeyframe(sink: FrameSink): boolean {
    const subscription = this.subscribers.get(sink);
    if (!subscription || !subscription.video) return false;
    const now = this.now();
    if (now - subscription.lastReplayAt < this.keyframeRequestIntervalMs) return false;
    subscription.lastReplayAt = now;
    if (!this.gop.hasKeyframe) {
      subscription.waitingKeyframe = true;
      return false;
    }
    subscription.replays++;
    subscription.replay(this.gop.frames, false);
    return true;
  }

  /** A snapshot of counters and measurements; O(1) in packets, O(subscribers) at most. */
  stats(): SourceStats {
    if (this.subscribers.size === 0) this.session?.upstream?.flushDelivery?.();
    const session = this.session;
    return buildSourceStats(
      {
        id: this.id,
        name: this.name,
        state: this.currentState,
        subscribers: this.subscribers.size,
        reconnects: this.reconnects,
        gopCacheBytes: this.gop.byteLength,
        gopCacheFrames: this.gop.frameCount,
        timeToFirstFrameMs: this.timeToFirstFrameMs,
      },
      this.kinds,
      this.now(),
      (state) => session?.counters(state) ?? [],
    );
  }

  /** Stops for good: closes the camera session and tells every sink `stopped`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelIdleTimer();
    this.reachability?.stop();
    const upstream = this.teardown();
    this.setState({ state: 'stopped' });
    this.subscribers.clear();
    await this.closeUpstream(upstream);
  }

  /** The last subscriber unsubscribed: stop pulling after `idleTimeoutMs` unless someone comes back. */
  private onLastUnsubscribed(): void {
    this.holdWhileUnwatched();
    if (this.alwaysOn || this.closed || this.currentState.state === 'idle') return;
    this.cancelIdleTimer();
    this.idleTimer = this.timers.setTimeout(() => {
      this.idleTimer = undefined;
      if (this.subscribers.size === 0 && !this.closed) this.goIdle();
    }, this.idleTimeoutMs);
  }

  // ---- connection lifecycle ----

  private connect(): void {
    this.clearTimer('retryTimer');
    this.reachability?.pause();
    const generation = ++this.generation;
    const session = new SourceSession({
      generation,
      retry: this.policy.retrying,
      kinds: this.kinds,
      reorderWaitMs: this.reorderWaitMs,
      now: this.now,
      timers: this.timers,
      random: this.random,
      log: this.log,
      onFrame: (frame) => {
        this.gop.push(frame);
        this.subscribers.offer(frame);
      },
      onFirstFrame: (ms) => {
        this.timeToFirstFrameMs = ms;
      },
      onTrackChanged: (old, updated) => this.publishTracks(this.currentTracks.map((t) => (t === old ? updated : t))),
    });
    this.session = session;
    this.setState({ state: 'connecting' });
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = undefined;
      this.fail(generation, new Error(`connecting timed out after ${Math.round(this.connectTimeoutMs / 1000)} s`));
    }, this.connectTimeoutMs);
    const handlers: UpstreamHandlers = {
      onRtp: (trackIndex, packet, ageMs) => {
        if (this.session?.generation === generation) this.session.onRtp(trackIndex, packet, ageMs ?? 0);
      },
      onSenderReport: (trackIndex, rtpTimestamp, wallClockMs) => {
        if (this.session?.generation === generation) this.session.onSenderReport(trackIndex, rtpTimestamp, wallClockMs);
      },
      onClose: (error) => this.fail(generation, error ?? new Error('the camera ended the session')),
    };
    let opening: Promise<UpstreamSession>;
    try {
      opening = this.upstream(handlers, session.controller.signal);
    } catch (error) {
      opening = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const asError = (error: unknown): Error => (error instanceof Error ? error : new Error(String(error)));
    opening
      .then(
        (upstream) => this.onConnected(generation, upstream),
        (error: unknown) => this.fail(generation, asError(error)),
      )
      // A bug in our own set-up must become a retry with a reason, not an unhandled rejection.
      .catch((error: unknown) => this.fail(generation, asError(error)));
  }

  private onConnected(generation: number, upstream: UpstreamSession): void {
    const session = this.session;
    if (!session || session.generation !== generation || this.generation !== generation) {
      // We gave up on this attempt (stopped, timed out, or it closed while opening): do not leak it.
      void this.closeUpstream(upstream);
      return;
    }
    this.clearTimer('connectTimer');
    session.upstream = upstream;
    const published = session.setupTracks(upstream.tracks);
    if (!published) {
      const offered = upstream.tracks.map((t) => t.codec ?? 'unknown').join(', ') || 'none';
      this.fail(generation, new Error(`the camera offers no supported track (offered: ${offered})`));
      return;
    }
    if (session.retry) this.reconnects++;
    this.reachability?.stop();
    this.publishTracks(published);
    this.lastFailure = undefined;
    this.setState({ state: 'live' });
    this.log.info(`live: ${published.map((t) => `${t.kind} ${t.codec}`).join(', ')}`);
    this.armStallTimer(generation);
    this.holdWhileUnwatched();
  }

  /**
   * Nobody subscribes: lets the upstream hold packets (see `unwatchedDeliveryMs`); with `everyMs`
   * 0 (someone subscribes), makes it deliver what it held and each packet at once from then on.
   */
  private holdWhileUnwatched(everyMs = this.unwatchedDeliveryMs): void {
    if ((everyMs > 0 && this.subscribers.size > 0) || this.unwatchedDeliveryMs <= 0) return;
    try {
      this.session?.upstream?.holdDelivery?.(everyMs);
    } catch (error) {
      this.log.debug(`could not hold the camera's packets: ${String(error)}`);
    }
  }

  /** Ends the current attempt or session after an error, then retries (or idles when nobody is watching). */
  private fail(generation: number, error: Error): void {
    if (this.closed || generation !== this.generation || !this.session) return;
    const session = this.session;
    const wasLive = this.currentState.state === 'live';
    const stable = session.firstFrameAt >= 0 && this.now() - session.firstFrameAt >= this.stableAfterMs;
    const upstream = this.teardown();
    void this.closeUpstream(upstream);
    const message = redactText(error.message);
    if (this.subscribers.size === 0 && !this.alwaysOn) {
      this.cancelIdleTimer();
      this.reachability?.stop();
      this.log.debug(`session ended with nobody watching: ${message}`);
      this.setState({ state: 'idle', lastError: message });
      return;
    }
    const delay = this.policy.nextDelay(error, stable);
    const repeated = this.lastFailure === message && !wasLive;
    this.lastFailure = message;
    const text = `${wasLive ? `lost ${this.upstreamNoun}` : 'could not connect'}: ${message}; retrying in ${describeDelay(delay)}`;
    if (repeated) this.log.debug(text);
    else this.log.warn(text);
    this.setState({ state: 'retrying', lastError: message, retryInMs: delay });
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.closed && this.currentState.state === 'retrying') this.connect();
    }, delay);
    // A refused password is not fixed by the camera coming back; everything else may be.
    if (refusedCredentials(error)) this.reachability?.stop();
    else this.reachability?.start();
  }

  /** The camera was unreachable and answers again: reconnect now rather than when the backoff ends. */
  private onUpstreamBack(): void {
    if (this.closed || this.currentState.state !== 'retrying') return;
    this.log.debug(`${this.upstreamNoun} answers again; reconnecting now`);
    this.connect();
  }

  /** Stops pulling because nobody watches (idle timeout). */
  private goIdle(): void {
    if (this.currentState.state === 'idle' || this.closed) return;
    this.reachability?.stop();
    const upstream = this.teardown();
    this.policy.reset();
    this.lastFailure = undefined; // the next pull reports its first failure again
    this.setState({ state: 'idle' });
    this.log.debug('idle: stopped pulling');
    void this.closeUpstream(upstream);
  }

  /** Invalidates the current session (late callbacks are ignored) and releases its resources. */
  private teardown(): UpstreamSession | undefined {
    this.generation++;
    this.clearTimer('retryTimer');
    this.clearTimer('connectTimer');
    this.clearTimer('stallTimer');
    const session = this.session;
    this.session = undefined;
    this.gop.clear(); // a stale picture must not be served as current after the session is gone
    if (!session) return undefined;
    session.close();
    return session.upstream;
  }

  private async closeUpstream(upstream: UpstreamSession | undefined): Promise<void> {
    if (!upstream) return;
    try {
      await upstream.close();
    } catch (error) {
      this.log.debug(`closing the camera session failed: ${redactText(String(error))}`);
    }
  }

  private armStallTimer(generation: number): void {
    const check = (): void => {
      this.stallTimer = undefined;
      const session = this.session;
      if (!session || session.generation !== generation || this.generation !== generation) return;
      session.upstream?.flushDelivery?.(); // held packets are not silence
      if (this.session !== session) return; // what was held ended the session
      const silentFor = this.now() - session.lastPacketAt;
      if (silentFor >= this.stallTimeoutMs) {
        const what = session.hasVideo ? 'video' : 'media';
        this.fail(generation, new Error(`no ${what} from the camera for ${(silentFor / 1000).toFixed(1)} s`));
        return;
      }
      this.stallTimer = this.timers.setTimeout(check, this.stallTimeoutMs - silentFor);
    };
    this.stallTimer = this.timers.setTimeout(check, this.stallTimeoutMs);
  }

  // ---- helpers ----

  private publishTracks(tracks: ReadonlyArray<TrackDescription>): void {
    if (sameTracks(this.currentTracks, tracks)) {
      this.currentTracks = tracks;
      return;
    }
    this.currentTracks = tracks;
    this.emit('tracks', tracks);
    this.subscribers.notifyTracks(tracks);
  }

  private setState(state: SourceState): void {
    this.currentState = state;
    this.emit('state', state);
    this.subscribers.notifyState(state);
  }

  private cancelIdleTimer(): void {
    this.clearTimer('idleTimer');
  }

  private clearTimer(name: 'idleTimer' | 'retryTimer' | 'connectTimer' | 'stallTimer'): void {
    const handle = this[name];
    if (handle !== undefined) {
      this.timers.clearTimeout(handle);
      this[name] = undefined;
    }
  }
}
