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
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../util/logger.js';
import { prefixedLogger, silentLogger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import type {
  BroadcastSource,
  DepacketizerCounters,
  MediaKind,
  SourceStats,
  SubscribeOptions,
  Subscription,
  SubscriptionStats,
  TrackStats,
  FrameSink,
  MediaFrame,
  SourceState,
  TrackDescription,
  UpstreamFactory,
  UpstreamHandlers,
  UpstreamSession,
  CodecName,
  RtpPacketView,
} from './types.js';
import { DEFAULT_REORDER_WAIT_MS, ReorderBuffer } from './reorder-buffer.js';
import { Vp8Pipeline } from './vp8-pipeline.js';
import { parseRtp, seqDelta, timestampDelta } from './rtp.js';
import { GopCache, DEFAULT_GOP_CACHE_BYTES } from './gop-cache.js';
import { OutputTimeline } from './timeline.js';
import { RateMeter } from './rate-meter.js';
import { VideoPipeline, type VideoInfo } from './video-pipeline.js';
import { AacPipeline, PassthroughAudioPipeline } from './audio.js';
import type { PipelineFrame, TrackPipeline } from './pipeline.js';
import { newDepacketizerCounters } from './nal-assembler.js';

// Moved to types.ts (what outputs see of a camera); re-exported for the modules that import them from here.
export type { MediaKind, SourceStats, SubscribeOptions, Subscription, SubscriptionStats, TrackStats } from './types.js';
import { ReachabilityWatch } from './reachability-watch.js';
import { realTimers, type TimerHandle, type TimerSeam } from './timers.js';


export interface BackoffOptions {
  /** First retry delay (default 1000 ms). */
  initialMs?: number;
  /** Largest retry delay (default 30000 ms). */
  maxMs?: number;
  /** Random spread as a fraction of the delay, 0..1 (default 0.2 = ±20%), so cameras on one NVR do not retry in lockstep. */
  jitter?: number;
  /**
   * First retry delay after the camera refused the credentials (default 30000 ms). Many cameras
   * lock an account after a few wrong log-ins (Hikvision: 5 to 7, for 30 minutes), which also
   * locks the owner out of the camera's own web page; a wrong password never fixes itself anyway.
   */
  credentialInitialMs?: number;
  /** Largest retry delay after refused credentials (default 30 minutes). */
  credentialMaxMs?: number;
}

/**
 * Error codes that mean the camera refused our credentials (src/rtsp/errors.ts `RtspErrorCode`,
 * src/onvif/errors.ts `OnvifErrorCode`): retried on the slow credential schedule. Matched by value
 * so that media/ depends on neither protocol.
 */
const CREDENTIAL_ERROR_CODES: ReadonlySet<unknown> = new Set(['auth', 'forbidden', 'NOT_AUTHORIZED']);

function refusedCredentials(error: Error): boolean {
  return CREDENTIAL_ERROR_CODES.has((error as Error & { code?: unknown }).code);
}

export type { TimerHandle, TimerSeam } from './timers.js';

export interface SourceOptions {
  id: string;
  name?: string;
  upstream: UpstreamFactory;
  logger?: Logger;
  /** True when `logger` already names the camera in every line (the platform's per-camera logger). */
  logNamesCamera?: boolean;
  /** What the upstream is, in log lines ("lost the camera"); a transcoded variant says "the transcoder". */
  upstreamNoun?: string;
  /** Stop pulling this long after the last subscriber left (default 10000 ms). */
  idleTimeoutMs?: number;
  /** Keep the camera session open with no subscribers (instant start, costs camera bandwidth). */
  alwaysOn?: boolean;
  /** GOP cache bound in encoded bytes (default 4 MiB: 4 s at 8 Mbit/s). */
  gopCacheBytes?: number;
  backoff?: BackoffOptions;
  /** Reconnect when no packet arrived for this long (default 5000 ms). */
  stallTimeoutMs?: number;
  /** How long packets after a hole wait for a late (reordered) packet before it counts as lost (default 30 ms; 0 = never wait). */
  reorderWaitMs?: number;
  /** Give up on a connection attempt after this long (default 15000 ms). */
  connectTimeoutMs?: number;
  /** A session that delivered media this long resets the backoff to `initialMs` (default 10000 ms). */
  stableAfterMs?: number;
  /** At most one GOP replay per sink per this interval, so PLI storms cannot multiply traffic (default 1000 ms). */
  keyframeRequestIntervalMs?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
  timers?: TimerSeam;
  /** Random number in [0, 1) for jitter and initial sequence numbers (default Math.random). */
  random?: () => number;
}

export interface SourceEvents {
  state: [SourceState];
  tracks: [ReadonlyArray<TrackDescription>];
}

const VIDEO_CODECS: ReadonlySet<string> = new Set(['H264', 'H265', 'VP8']);
const AUDIO_CODECS: ReadonlySet<string> = new Set(['PCMU', 'PCMA', 'AAC', 'OPUS']);
/** A sequence jump larger than this is a resync (e.g. camera restart on the same SSRC), not loss. */
const MAX_SEQUENCE_GAP = 3000;
/** A hole wider than this is loss for sure (a burst, or a camera that skipped): not worth waiting for. */
const MAX_REORDER_GAP = 64;

/** Per-kind state that outlives sessions: the output timeline and cumulative counters. */
class KindState {
  readonly timeline: OutputTimeline;
  readonly bytes = new RateMeter();
  readonly frames = new RateMeter();
  readonly depacketizerTotals = newDepacketizerCounters();
  codec: CodecName;
  packetsReceived = 0;
  packetsLost = 0;
  packetsLate = 0;
  packetsMalformed = 0;
  framesOut = 0;
  framesDamaged = 0;
  keyframes = 0;
  info: VideoInfo | undefined;
  lastKeyframeAt = -1;
  keyframeIntervalMs: number | undefined;

  constructor(codec: CodecName, clockRate: number, initialSequence: number) {
    this.codec = codec;
    this.timeline = new OutputTimeline(clockRate, initialSequence);
  }
}

/** One track of one session. */
interface TrackRuntime {
  kind: MediaKind;
  state: KindState;
  pipeline: TrackPipeline;
  description: TrackDescription;
  ssrc: number;
  hasSsrc: boolean;
  expectedSequence: number;
  /** A packet that does not continue the stream (new SSRC, far sequence jump), until the next one confirms it. */
  held: RtpPacketView | undefined;
  /** Packets that arrived ahead of a hole, waiting for it to be filled (UDP reordering). */
  reorder: ReorderBuffer;
  /** Gives up on the hole `reorderWaitMs` after the first packet started waiting. */
  reorderTimer: TimerHandle | undefined;
  senderReport: { rtpTimestamp: number; wallClockMs: number } | undefined;
}

interface SessionRuntime {
  generation: number;
  controller: AbortController;
  upstream: UpstreamSession | undefined;
  tracks: Array<TrackRuntime | undefined>;
  startedAt: number;
  /** Last video packet (any packet for an audio-only camera): a camera whose video died while audio goes on is stalled too. */
  lastPacketAt: number;
  hasVideo: boolean;
  firstFrameAt: number;
  /** Video frames are dropped until the session's first keyframe: earlier ones reference frames we never had. */
  awaitingKeyframe: boolean;
  retry: boolean;
}

class SubscriptionImpl implements Subscription {
  active = true;
  delivered = 0;
  dropped = 0;
  dropsToKeyframe = 0;
  replays = 0;
  lastReplayAt = Number.NEGATIVE_INFINITY;
  /** Video held back until a keyframe. */
  waitingKeyframe = true;
  /** ...because the sink was congested (counts as drops) rather than because it just joined. */
  cutBack = false;
  private warnedThrow = false;

  constructor(
    readonly sink: FrameSink,
    readonly video: boolean,
    readonly audio: boolean,
    private readonly owner: Source,
    private readonly log: Logger,
  ) {}

  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.owner.detach(this);
  }

  stats(): SubscriptionStats {
    return {
      delivered: this.delivered,
      dropped: this.dropped,
      dropsToKeyframe: this.dropsToKeyframe,
      replays: this.replays,
      waitingForKeyframe: this.waitingKeyframe,
    };
  }

  /** The fan-out hot path: called once per frame per subscriber. */
  offer(frame: MediaFrame): void {
    if (!this.active) return; // unsubscribed by an earlier sink's write during this same frame
    if (frame.kind === 'video') {
      if (!this.video) return;
      if (this.waitingKeyframe) {
        if (!frame.keyframe) {
          if (this.cutBack) this.dropped++;
          return;
        }
        this.waitingKeyframe = false;
        this.cutBack = false;
      }
    } else if (!this.audio) {
      return;
    }
    let accepted: boolean;
    try {
      accepted = this.sink.write(frame);
    } catch (error) {
      // A throwing sink is treated as congested; it must not break delivery to the others.
      accepted = false;
      if (!this.warnedThrow) {
        this.warnedThrow = true;
        this.log.warn(`a subscriber's write failed: ${String(error)}`);
      }
    }
    if (accepted) {
      this.delivered++;
      return;
    }
    this.dropped++;
    if (frame.kind === 'video') {
      this.waitingKeyframe = true;
      this.cutBack = true;
      this.dropsToKeyframe++;
    }
  }

  notifyState(state: SourceState): void {
    try {
      this.sink.onState?.(state);
    } catch (error) {
      this.log.debug(`a subscriber's onState failed: ${String(error)}`);
    }
  }

  notifyTracks(tracks: ReadonlyArray<TrackDescription>): void {
    try {
      this.sink.onTracks?.(tracks);
    } catch (error) {
      this.log.debug(`a subscriber's onTracks failed: ${String(error)}`);
    }
  }
}

export class Source extends EventEmitter<SourceEvents> implements BroadcastSource {
  readonly id: string;
  readonly name: string;
  private readonly upstream: UpstreamFactory;
  private readonly log: Logger;
  private readonly idleTimeoutMs: number;
  private readonly alwaysOn: boolean;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly backoffJitter: number;
  private readonly credentialInitialMs: number;
  private readonly credentialMaxMs: number;
  private readonly stallTimeoutMs: number;
  private readonly reorderWaitMs: number;
  private readonly upstreamNoun: string;
  private readonly connectTimeoutMs: number;
  private readonly stableAfterMs: number;
  private readonly keyframeRequestIntervalMs: number;
  private readonly now: () => number;
  private readonly timers: TimerSeam;
  private readonly random: () => number;

  private readonly gop: GopCache;
  private readonly subscriptionsBySink = new Map<FrameSink, SubscriptionImpl>();
  /** Copy-on-write list iterated by the fan-out, so (un)subscribing inside a write is safe. */
  private subscriptions: ReadonlyArray<SubscriptionImpl> = [];
  private readonly kinds: Partial<Record<MediaKind, KindState>> = {};

  private currentState: SourceState = { state: 'idle' };
  private currentTracks: ReadonlyArray<TrackDescription> = [];
  private generation = 0;
  private session: SessionRuntime | undefined;
  private attempt = 0;
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
  /** `now` of the packet being processed, shared by the frames it completes. */
  private packetNow = 0;

  constructor(options: SourceOptions) {
    super();
    this.id = options.id;
    this.name = options.name ?? options.id;
    this.upstream = options.upstream;
    this.log = options.logNamesCamera ? (options.logger ?? silentLogger) : prefixedLogger(options.logger ?? silentLogger, this.name);
    this.idleTimeoutMs = options.idleTimeoutMs ?? 10_000;
    this.alwaysOn = options.alwaysOn ?? false;
    this.backoffInitialMs = options.backoff?.initialMs ?? 1000;
    this.backoffMaxMs = options.backoff?.maxMs ?? 30_000;
    this.backoffJitter = Math.min(1, Math.max(0, options.backoff?.jitter ?? 0.2));
    this.credentialInitialMs = options.backoff?.credentialInitialMs ?? 30_000;
    this.credentialMaxMs = options.backoff?.credentialMaxMs ?? 30 * 60_000;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 5000;
    this.reorderWaitMs = options.reorderWaitMs ?? DEFAULT_REORDER_WAIT_MS;
    this.upstreamNoun = options.upstreamNoun ?? 'the camera';
    this.connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
    this.stableAfterMs = options.stableAfterMs ?? 10_000;
    this.keyframeRequestIntervalMs = options.keyframeRequestIntervalMs ?? 1000;
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? realTimers;
    this.random = options.random ?? Math.random;
    this.gop = new GopCache(options.gopCacheBytes ?? DEFAULT_GOP_CACHE_BYTES);
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
    return this.subscriptions.length;
  }

  /**
   * Attaches a sink. It receives `onTracks`/`onState` at once when known, then (by default) the
   * cached GOP synchronously, then live frames. Starts pulling when the Source was idle.
   */
  subscribe(sink: FrameSink, options: SubscribeOptions = {}): Subscription {
    if (this.closed) throw new Error(`camera ${this.name}: source is closed`);
    if (this.subscriptionsBySink.has(sink)) throw new Error(`camera ${this.name}: this sink is already subscribed`);
    const kinds = options.kinds ?? ['video', 'audio'];
    const subscription = new SubscriptionImpl(sink, kinds.includes('video'), kinds.includes('audio'), this, this.log);
    this.subscriptionsBySink.set(sink, subscription);
    this.subscriptions = [...this.subscriptions, subscription];
    this.cancelIdleTimer();
    if (this.currentTracks.length > 0) subscription.notifyTracks(this.currentTracks);
    subscription.notifyState(this.currentState);
    if (options.fromKeyframe ?? true) this.replay(subscription, true);
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
    const subscription = this.subscriptionsBySink.get(sink);
    if (!subscription || !subscription.video) return false;
    const now = this.now();
    if (now - subscription.lastReplayAt < this.keyframeRequestIntervalMs) return false;
    subscription.lastReplayAt = now;
    if (!this.gop.hasKeyframe) {
      subscription.waitingKeyframe = true;
      return false;
    }
    subscription.replays++;
    this.replay(subscription, false);
    return true;
  }

  /** A snapshot of counters and measurements; O(1) in packets, O(subscribers) at most. */
  stats(): SourceStats {
    const now = this.now();
    const video = this.kinds.video;
    const audio = this.kinds.audio;
    const out: SourceStats = {
      id: this.id,
      name: this.name,
      state: this.currentState.state,
      subscribers: this.subscriptions.length,
      reconnects: this.reconnects,
      bitrateBps: 0,
      packetsReceived: 0,
      packetsLost: 0,
      gopCacheBytes: this.gop.byteLength,
      gopCacheFrames: this.gop.frameCount,
    };
    if (this.currentState.lastError !== undefined) out.lastError = this.currentState.lastError;
    if (this.timeToFirstFrameMs !== undefined) out.timeToFirstFrameMs = this.timeToFirstFrameMs;
    const primary = video ?? audio;
    if (primary) out.codec = primary.codec;
    if (video) {
      out.video = this.trackStats(video, now);
      out.fps = out.video.fps;
      const info = video.info;
      if (info) {
        out.width = info.width;
        out.height = info.height;
        out.profile = info.profileName;
        out.level = info.level;
        if (info.fps !== undefined) out.declaredFps = info.fps;
      }
      if (video.keyframeIntervalMs !== undefined) out.keyframeIntervalMs = video.keyframeIntervalMs;
    }
    if (audio) out.audio = this.trackStats(audio, now);
    for (const track of [out.video, out.audio]) {
      if (!track) continue;
      out.bitrateBps += track.bitrateBps;
      out.packetsReceived += track.packetsReceived;
      out.packetsLost += track.packetsLost;
    }
    return out;
  }

  /** Stops for good: closes the camera session and tells every sink `stopped`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cancelIdleTimer();
    this.reachability?.stop();
    const upstream = this.teardown();
    this.setState({ state: 'stopped' });
    for (const subscription of this.subscriptions) subscription.active = false;
    this.subscriptions = [];
    this.subscriptionsBySink.clear();
    await this.closeUpstream(upstream);
  }

  /** @internal Called by Subscription.unsubscribe. */
  detach(subscription: SubscriptionImpl): void {
    if (this.subscriptionsBySink.get(subscription.sink) !== subscription) return;
    this.subscriptionsBySink.delete(subscription.sink);
    this.subscriptions = this.subscriptions.filter((s) => s !== subscription);
    if (this.subscriptions.length === 0 && !this.alwaysOn && !this.closed && this.currentState.state !== 'idle') {
      this.cancelIdleTimer();
      this.idleTimer = this.timers.setTimeout(() => {
        this.idleTimer = undefined;
        if (this.subscriptions.length === 0 && !this.closed) this.goIdle();
      }, this.idleTimeoutMs);
    }
  }

  // ---- connection lifecycle ----

  private connect(): void {
    this.clearTimer('retryTimer');
    this.reachability?.pause();
    const generation = ++this.generation;
    const controller = new AbortController();
    const startedAt = this.now();
    const session: SessionRuntime = {
      generation,
      controller,
      upstream: undefined,
      tracks: [],
      startedAt,
      lastPacketAt: startedAt,
      hasVideo: false,
      firstFrameAt: -1,
      awaitingKeyframe: true,
      retry: this.attempt > 0,
    };
    this.session = session;
    this.setState({ state: 'connecting' });
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = undefined;
      this.fail(generation, new Error(`connecting timed out after ${Math.round(this.connectTimeoutMs / 1000)} s`));
    }, this.connectTimeoutMs);
    const handlers: UpstreamHandlers = {
      onRtp: (trackIndex, packet) => this.onRtp(generation, trackIndex, packet),
      onSenderReport: (trackIndex, rtpTimestamp, wallClockMs) => {
        const track = this.session?.generation === generation ? this.session.tracks[trackIndex] : undefined;
        if (track) track.senderReport = { rtpTimestamp, wallClockMs };
      },
      onClose: (error) => this.fail(generation, error ?? new Error('the camera ended the session')),
    };
    let opening: Promise<UpstreamSession>;
    try {
      opening = this.upstream(handlers, controller.signal);
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
    const published = this.setupTracks(session, upstream.tracks);
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
  }

  /** Builds the session's track runtimes; returns the published descriptions, or undefined if none is usable. */
  private setupTracks(session: SessionRuntime, tracks: ReadonlyArray<TrackDescription>): TrackDescription[] | undefined {
    const result: TrackDescription[] = [];
    const used: Partial<Record<MediaKind, boolean>> = {};
    tracks.forEach((description, index) => {
      const kind = description.kind;
      const supported = kind === 'video' ? VIDEO_CODECS.has(description.codec) : AUDIO_CODECS.has(description.codec);
      if (!supported || used[kind]) {
        this.log.debug(`ignoring ${kind} track ${index} (${String(description.codec)})`);
        return;
      }
      used[kind] = true;
      let state = this.kinds[kind];
      if (!state) {
        state = new KindState(description.codec, description.clockRate, Math.floor(this.random() * 0x10000));
        this.kinds[kind] = state;
      }
      state.codec = description.codec;
      state.timeline.rebase(description.clockRate);
      // The pipeline's callbacks need the runtime, and the runtime holds the pipeline.
      const ref: { runtime?: TrackRuntime } = {};
      const onFrame = (frame: PipelineFrame): void => {
        if (ref.runtime) this.onFrame(session, ref.runtime, frame);
      };
      let pipeline: TrackPipeline;
      let published = description;
      if (kind === 'video' && description.codec === 'VP8') {
        pipeline = new Vp8Pipeline(onFrame);
      } else if (kind === 'video') {
        const video: VideoPipeline = new VideoPipeline(description, onFrame, () => {
          if (ref.runtime) this.onParameterSetsChanged(session, ref.runtime, video);
        });
        pipeline = video;
        state.info = video.info ?? state.info;
        const parameterSets = video.parameterSets();
        if (parameterSets.length > 0) published = { ...description, parameterSets };
      } else if (description.codec === 'AAC') {
        pipeline = new AacPipeline(description, onFrame);
      } else {
        pipeline = new PassthroughAudioPipeline(description.codec, onFrame);
      }
      const runtime: TrackRuntime = {
        kind,
        state,
        description: published,
        pipeline,
        ssrc: 0,
        hasSsrc: false,
        expectedSequence: -1,
        held: undefined,
        reorder: new ReorderBuffer(),
        reorderTimer: undefined,
        senderReport: undefined,
      };
      ref.runtime = runtime;
      session.tracks[index] = runtime;
      result.push(published);
    });
    session.hasVideo = used.video === true;
    session.awaitingKeyframe = session.hasVideo;
    return result.length > 0 ? result : undefined;
  }

  private onParameterSetsChanged(session: SessionRuntime, runtime: TrackRuntime, pipeline: VideoPipeline): void {
    if (this.session !== session) return;
    runtime.state.info = pipeline.info ?? runtime.state.info;
    const old = runtime.description;
    runtime.description = { ...old, parameterSets: pipeline.parameterSets() };
    this.publishTracks(this.currentTracks.map((t) => (t === old ? runtime.description : t)));
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
    if (this.subscriptions.length === 0 && !this.alwaysOn) {
      this.cancelIdleTimer();
      this.reachability?.stop();
      this.log.debug(`session ended with nobody watching: ${message}`);
      this.setState({ state: 'idle', lastError: message });
      return;
    }
    if (stable) this.attempt = 0;
    const [initialMs, maxMs] = refusedCredentials(error)
      ? [this.credentialInitialMs, this.credentialMaxMs]
      : [this.backoffInitialMs, this.backoffMaxMs];
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 30));
    const spread = 1 - this.backoffJitter + 2 * this.backoffJitter * this.random();
    const delay = Math.max(0, Math.round(Math.min(maxMs, base * spread)));
    this.attempt++;
    const repeated = this.lastFailure === message && !wasLive;
    this.lastFailure = message;
    const text = `${wasLive ? `lost ${this.upstreamNoun}` : 'could not connect'}: ${message}; retrying in ${delay < 60_000 ? `${(delay / 1000).toFixed(1)} s` : `${Math.round(delay / 60_000)} min`}`;
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
    this.attempt = 0;
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
    session.controller.abort();
    for (const track of session.tracks) {
      if (!track) continue;
      addCounters(track.state.depacketizerTotals, track.pipeline.counters);
      this.stopReorderTimer(track);
      track.reorder.clear();
      track.pipeline.reset();
    }
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

  // ---- the packet path ----

  private onRtp(generation: number, trackIndex: number, packet: Buffer): void {
    const session = this.session;
    if (!session || session.generation !== generation) return;
    const track = session.tracks[trackIndex];
    if (!track) return;
    const now = this.now();
    if (track.kind === 'video' || !session.hasVideo) session.lastPacketAt = now;
    const state = track.state;
    const rtp = parseRtp(packet);
    if (typeof rtp === 'string' || rtp.payloadType !== track.description.payloadType) {
      state.packetsMalformed++;
      return;
    }
    if (!track.hasSsrc) {
      track.ssrc = rtp.ssrc;
      track.hasSsrc = true;
      this.accept(track, rtp, false, now);
      return;
    }
    const gap = seqDelta(track.expectedSequence, rtp.sequenceNumber);
    if (rtp.ssrc === track.ssrc && gap > -MAX_SEQUENCE_GAP && gap < MAX_SEQUENCE_GAP) {
      if (track.held) {
        // The stream went on where it was: the packet held below was a stray.
        track.held = undefined;
        state.packetsMalformed++;
      }
      if (gap < 0) {
        state.packetsLate++; // duplicate, or later than the reorder window waited: its frame is gone
        return;
      }
      if (gap > 0) {
        if (gap < MAX_REORDER_GAP && this.reorderWaitMs > 0 && !track.reorder.full) {
          // Perhaps only reordered: wait a little for the hole to fill.
          if (!track.reorder.hold(rtp)) state.packetsLate++;
          else if (track.reorderTimer === undefined) {
            track.reorderTimer = this.timers.setTimeout(() => this.giveUpReorder(session, track), this.reorderWaitMs);
          }
          return;
        }
        // Too much is missing to wait for: what waits goes on now, then this packet.
        this.releaseReordered(track, now);
        this.acceptAfterHole(track, rtp, now);
        return;
      }
      this.accept(track, rtp, false, now);
      if (track.reorder.size > 0) {
        // The hole is filled: the packets that waited behind it follow on.
        let next: RtpPacketView | undefined;
        while ((next = track.reorder.take(track.expectedSequence)) !== undefined) this.accept(track, next, false, now);
        if (track.reorder.size === 0) this.stopReorderTimer(track);
      }
      return;
    }
    // A new SSRC or a sequence jump too far for loss: either the camera restarted its stream inside
    // the session, or this is one stray packet (corrupt or hostile), which must not throw every
    // viewer back to the next keyframe. As in RFC 3550 A.1, believe the jump only when the next
    // packet follows it; hold this one meanwhile so that a real restart loses nothing.
    const held = track.held;
    if (!held || held.ssrc !== rtp.ssrc || rtp.sequenceNumber !== ((held.sequenceNumber + 1) & 0xffff)) {
      if (held) state.packetsMalformed++;
      track.held = { ...rtp, payload: Buffer.from(rtp.payload) }; // the upstream may reuse `packet`
      return;
    }
    track.held = undefined;
    // The camera restarted its stream: what waited from the old one goes on first, then the
    // half-assembled rest of it is dropped.
    this.releaseReordered(track, now);
    track.pipeline.reset();
    if (rtp.ssrc !== track.ssrc) {
      this.log.debug(`${track.kind} SSRC changed`);
      state.timeline.rebase(); // new timestamp base too
      track.senderReport = undefined;
      track.ssrc = rtp.ssrc;
    }
    if (track.kind === 'video') session.awaitingKeyframe = true; // a resync, not loss: restart at a keyframe
    this.accept(track, held, false, now);
    this.accept(track, rtp, false, now);
  }

  /** The reorder window expired: the hole is a loss, and the packets after it go on. */
  private giveUpReorder(session: SessionRuntime, track: TrackRuntime): void {
    track.reorderTimer = undefined;
    if (this.session !== session) return;
    this.releaseReordered(track, this.now());
  }

  /** Feeds every waiting packet in sequence order, counting the holes between them as lost. */
  private releaseReordered(track: TrackRuntime, now: number): void {
    this.stopReorderTimer(track);
    if (track.reorder.size === 0) return;
    for (const rtp of track.reorder.drain(track.expectedSequence)) this.acceptAfterHole(track, rtp, now);
  }

  /** A packet no longer waited on: later than expected is dropped as late, a hole before it is lost. */
  private acceptAfterHole(track: TrackRuntime, rtp: RtpPacketView, now: number): void {
    const gap = seqDelta(track.expectedSequence, rtp.sequenceNumber);
    if (gap < 0) {
      track.state.packetsLate++;
      return;
    }
    if (gap > 0) track.state.packetsLost += gap;
    this.accept(track, rtp, gap > 0, now);
  }

  private stopReorderTimer(track: TrackRuntime): void {
    if (track.reorderTimer !== undefined) {
      this.timers.clearTimeout(track.reorderTimer);
      track.reorderTimer = undefined;
    }
  }

  /** Counts an in-sequence packet and feeds it to the track's depacketizer. */
  private accept(track: TrackRuntime, rtp: RtpPacketView, lossBefore: boolean, now: number): void {
    const state = track.state;
    track.expectedSequence = (rtp.sequenceNumber + 1) & 0xffff;
    state.packetsReceived++;
    state.bytes.add(now, rtp.payload.length);
    this.packetNow = now;
    try {
      track.pipeline.push(rtp, lossBefore);
    } catch (error) {
      // Pipelines validate their input; this is the last line of defence for the hot path.
      state.packetsMalformed++;
      track.pipeline.reset();
      this.log.debug(`dropped a packet that broke the ${track.kind} depacketizer: ${String(error)}`);
    }
  }

  private onFrame(session: SessionRuntime, track: TrackRuntime, input: PipelineFrame): void {
    if (this.session !== session) return;
    const now = this.packetNow;
    const state = track.state;
    if (track.kind === 'video') {
      if (session.awaitingKeyframe) {
        if (!input.keyframe) return;
        session.awaitingKeyframe = false;
      }
      if (input.keyframe) {
        state.keyframes++;
        if (state.lastKeyframeAt >= 0) state.keyframeIntervalMs = now - state.lastKeyframeAt;
        state.lastKeyframeAt = now;
      }
    }
    const timeline = state.timeline;
    const frame: MediaFrame = {
      kind: track.kind,
      codec: state.codec,
      clockRate: timeline.clockRate,
      timestamp: timeline.map(input.timestamp, now),
      sequenceNumber: timeline.takeSequence(input.packets.length),
      keyframe: input.keyframe,
      units: input.units,
      packets: input.packets,
      byteLength: input.byteLength,
      receivedAt: now,
    };
    const report = track.senderReport;
    if (report) {
      frame.captureTime = report.wallClockMs + (timestampDelta(report.rtpTimestamp, input.timestamp) * 1000) / timeline.clockRate;
    }
    if (input.damaged) {
      frame.damaged = true;
      state.framesDamaged++;
    }
    state.framesOut++;
    state.frames.add(now, 1);
    if (session.firstFrameAt < 0 && (track.kind === 'video' || !session.hasVideo)) {
      session.firstFrameAt = now;
      this.timeToFirstFrameMs = now - session.startedAt;
    }
    this.gop.push(frame);
    const subscriptions = this.subscriptions;
    for (let i = 0; i < subscriptions.length; i++) subscriptions[i]!.offer(frame);
  }

  // ---- helpers ----

  private replay(subscription: SubscriptionImpl, withAudio: boolean): void {
    const frames = this.gop.frames;
    if (!subscription.video || frames.length === 0) {
      // Nothing to start video from: hold it until the next live keyframe.
      subscription.waitingKeyframe = true;
      if (withAudio) for (const frame of frames) if (frame.kind === 'audio') subscription.offer(frame);
      return;
    }
    subscription.waitingKeyframe = true;
    subscription.cutBack = false;
    for (const frame of frames) {
      if (!subscription.active) return;
      if (frame.kind === 'audio' && !withAudio) continue;
      subscription.offer(frame);
    }
  }

  private trackStats(state: KindState, now: number): TrackStats {
    const session = this.session;
    const depacketizer = { ...state.depacketizerTotals };
    if (session) {
      for (const track of session.tracks) if (track && track.state === state) addCounters(depacketizer, track.pipeline.counters);
    }
    return {
      codec: state.codec,
      clockRate: state.timeline.clockRate,
      packetsReceived: state.packetsReceived,
      packetsLost: state.packetsLost,
      packetsLate: state.packetsLate,
      packetsMalformed: state.packetsMalformed,
      framesOut: state.framesOut,
      keyframes: state.keyframes,
      framesDamaged: state.framesDamaged,
      bitrateBps: Math.round(state.bytes.perSecond(now) * 8),
      fps: Math.round(state.frames.perSecond(now) * 10) / 10,
      depacketizer,
    };
  }

  private publishTracks(tracks: ReadonlyArray<TrackDescription>): void {
    if (sameTracks(this.currentTracks, tracks)) {
      this.currentTracks = tracks;
      return;
    }
    this.currentTracks = tracks;
    this.emit('tracks', tracks);
    for (const subscription of this.subscriptions) subscription.notifyTracks(tracks);
  }

  private setState(state: SourceState): void {
    this.currentState = state;
    this.emit('state', state);
    for (const subscription of this.subscriptions) subscription.notifyState(state);
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

function addCounters(into: DepacketizerCounters, from: DepacketizerCounters): void {
  for (const key of Object.keys(into) as Array<keyof DepacketizerCounters>) into[key] += from[key];
}

function sameTracks(a: ReadonlyArray<TrackDescription>, b: ReadonlyArray<TrackDescription>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.kind !== y.kind || x.codec !== y.codec || x.payloadType !== y.payloadType || x.clockRate !== y.clockRate) return false;
    if (x.channels !== y.channels || JSON.stringify(x.fmtp) !== JSON.stringify(y.fmtp)) return false;
    const px = x.parameterSets ?? [];
    const py = y.parameterSets ?? [];
    if (px.length !== py.length || px.some((p, j) => !p.equals(py[j]!))) return false;
  }
  return true;
}
