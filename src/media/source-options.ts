/** What a Source is built from (`SourceOptions`) and the events it emits (`SourceEvents`). */
import type { Logger } from '../util/logger.js';
import type { BackoffOptions } from './reconnect-policy.js';
import type { TimerSeam } from './timers.js';
import type { SourceState, TrackDescription, UpstreamFactory } from './types.js';

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
  /**
   * While nobody subscribes, the upstream may hold the camera's packets and hand them on this often
   * (default 250 ms; 0: never hold). They only feed the GOP cache then, and keep their arrival
   * times; a new subscriber takes what is held before anything else.
   */
  unwatchedDeliveryMs?: number;
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
