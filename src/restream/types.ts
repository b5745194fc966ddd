/**
 * What the re-stream reads from a camera and the limits it enforces; shared by the server, its
 * client connections and the camera preparation, so none of them imports another's internals.
 */
import type { BroadcastSource, Subscribable } from '../media/types.js';

/**
 * What the re-stream needs from a camera's Source; the media core's `Source` satisfies it as is.
 * Tracks are learnt while the Source connects: the server subscribes (which starts the pull) and
 * waits for the sink's `onTracks` or for `tracks` to fill in.
 */
export type RestreamSource = Pick<BroadcastSource, 'id' | 'tracks'> & Subscribable;

export interface RestreamLimits {
  /** Open RTSP connections; more are refused with 503. */
  maxConnections: number;
  /** Sessions across all connections; SETUP beyond it gets 453. */
  maxSessions: number;
  maxHeaderBytes: number;
  maxBodyBytes: number;
  /** A request (or interleaved frame) must arrive whole within this time once it has started. */
  requestTimeoutMs: number;
  /** A session with no request or RTCP from its client for this long is reaped. */
  sessionTimeoutMs: number;
  /** A connection with no session that stays silent this long is closed. */
  idleConnectionTimeoutMs: number;
  /** How long DESCRIBE waits for an idle or reconnecting camera to deliver its tracks. */
  readyTimeoutMs: number;
  /** How long DESCRIBE waits for a first keyframe when the camera's SDP lacks parameter sets. */
  keyframeWaitMs: number;
  /** Per client: bytes waiting to be sent above which frames are dropped to the next keyframe. */
  maxQueuedBytes: number;
  senderReportIntervalMs: number;
  /** How long the GOP burst at PLAY may exceed `maxQueuedBytes` (it is bounded by the Source's GOP cache). */
  burstGraceMs: number;
}

export const DEFAULT_RESTREAM_LIMITS: Readonly<RestreamLimits> = {
  maxConnections: 64,
  maxSessions: 64,
  maxHeaderBytes: 8 * 1024,
  maxBodyBytes: 4 * 1024,
  requestTimeoutMs: 10_000,
  sessionTimeoutMs: 60_000,
  idleConnectionTimeoutMs: 60_000,
  readyTimeoutMs: 15_000,
  keyframeWaitMs: 5_000,
  maxQueuedBytes: 2 * 1024 * 1024,
  senderReportIntervalMs: 1_000,
  burstGraceMs: 5_000,
};
