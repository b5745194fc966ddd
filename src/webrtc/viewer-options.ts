/**
 * What a viewer is configured with and what it reports: its options and their defaults, its
 * phases and close reasons, and its stats. Apart from viewer-peer.ts so that the negotiation and
 * media-out parts can share them without importing the peer.
 */
import type { TimerSeam } from '../media/timers.js';
import type { BroadcastSource } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import type { IceSettings } from './ice-config.js';
import { nativeFanout, type NativeFanoutStatus } from '../rtp/native-fanout.js';

export type ViewerCloseReason =
  | 'closed'
  | 'connect-timeout'
  | 'ice-failed'
  | 'disconnected'
  | 'tracks-changed'
  | 'unsupported-codec'
  | 'error';

export type ViewerPhase = 'new' | 'negotiating' | 'connected' | 'closed';

export interface ViewerPeerOptions {
  source: BroadcastSource;
  ice?: IceSettings;
  logger?: Logger;
  /** Shown in logs and stats; random when absent. */
  id?: string;
  /**
   * The address the viewer's HTTP/WebSocket connection came from: its remote ICE candidates may
   * name that address even when it is loopback or one of the server's own (remote-candidates.ts).
   */
  remoteAddress?: string;
  /**
   * The viewer may talk through the camera (the `talk` right, and a camera with a speaker): the
   * server's offer carries one more audio section, receive-only Opus, for its microphone.
   */
  talk?: boolean;
  /**
   * The viewer decodes H.265 over WebRTC (its browser's capabilities or its WHEP offer say so:
   * Safari 18 and later, Chrome with a hardware decoder): an H.265 camera's video then goes to it as
   * it is, with no transcoding.
   */
  receivesH265?: boolean;
  /** A peer that has not connected this long after the offer/answer is reaped (default `CONNECT_TIMEOUT_MS`). */
  connectTimeoutMs?: number;
  /** A peer that stays `disconnected` this long is released (default 8 s). */
  disconnectGraceMs?: number;
  /**
   * A connected viewer from which no RTCP arrived for this long is released (default 10 s).
   * Browsers report every second; werift alone notices a vanished peer only after the 30 s ICE
   * consent expiry, sending it media all the while.
   */
  silenceTimeoutMs?: number;
  /** Keyframe requests (PLI/FIR) answered at most this often (default 1000 ms). */
  keyframeRequestIntervalMs?: number;
  /** Bytes waiting to be sent above which the viewer counts as congested (default 4 MiB). */
  maxQueuedBytes?: number;
  /**
   * Bytes waiting to be sent, in place of the ICE transport's own figure: a seam for tests and
   * benches to simulate a congested viewer (loopback never pushes back).
   */
  congestionProbe?: () => number;
  /**
   * Video packets kept for NACK retransmission (default 2048; 0 disables NACK answers). Only
   * references to the Source's shared payloads are kept, so a long history is cheap, and it must
   * cover a whole GOP replay.
   */
  nackHistoryPackets?: number;
  /** Rate at which a GOP replay (and the live video queued behind it) is sent (default 40 Mbit/s). */
  replayPaceMbps?: number;
  /** A frame older than this is a replay (GOP cache) and is moved to the present (default 300 ms). */
  staleFrameMs?: number;
  /**
   * Monotonic clock in ms (default performance.now; frame ages compare it with the Source's
   * `receivedAt`, so both must use the same clock) and timers (default the real ones) for the
   * connect timeout, disconnect grace, silence check, sender reports, keyframe-request spacing and
   * the tracks wait. Tests drive time with them. Sender reports still carry the real wall clock.
   */
  now?: () => number;
  timers?: TimerSeam;
  /**
   * The native fan-out (default: this process's, loaded once by `nativeFanout()`). Tests and
   * benches pass `{ loaded: false, reason }` to run the JavaScript path beside it.
   */
  nativeFanout?: NativeFanoutStatus;
  /**
   * Let werift's peer connection go once the viewer has settled (default true; viewer-settle.ts).
   * bench/webrtc.bench.ts keeps it for its werift send path.
   */
  releaseWerift?: boolean;
}

export interface ViewerStats {
  id: string;
  cameraId: string;
  phase: ViewerPhase;
  /** Wall-clock creation time (ms since the epoch). */
  createdAt: number;
  /** Milestones in ms after creation, for time-to-first-frame breakdowns. */
  timeline: {
    tracks?: number;
    offer?: number;
    answer?: number;
    iceConnected?: number;
    connected?: number;
    firstVideoPacket?: number;
    /** werift's peer connection was let go (viewer-settle.ts). */
    weriftReleased?: number;
  };
  /** How packets reach the viewer: `udp` straight, `turn` through a TURN server's channel, `generic` by werift (TCP, or TURN without a channel). */
  transport?: 'udp' | 'turn' | 'generic';
  /** How live packets leave: `native`, a frame per sendmmsg (native-fanout.ts), or `javascript`, a send per packet. */
  sendPath?: 'native' | 'javascript';
  srtpProfile?: number;
  packetsSent: number;
  bytesSent: number;
  framesSent: number;
  framesDropped: number;
  congestionEvents: number;
  keyframeRequests: number;
  keyframeRequestsAnswered: number;
  nacks: number;
  retransmissions: number;
  /** NACKed packets not resent: over the viewer's retransmission budget (retransmission-budget.ts). */
  retransmissionsRefused: number;
  /** NACKed packets not resent: too far behind the newest frame to be of use. */
  retransmissionsTooOld: number;
  /** The viewer's RTCP packets refused: failed SRTCP authentication, a replay, or too short. */
  rtcpRefused: number;
  /** STUN consent checks and keepalives answered by the project (the rest went to werift). */
  consentChecksAnswered: number;
  /** werift's peer connection was let go: the viewer runs on the settled UDP path (viewer-settle.ts). */
  weriftReleased: boolean;
  /** Datagrams the settled path dropped: from another address, or neither STUN, RTCP nor an authentic alert. */
  settledDatagramsDropped?: number;
  /** Times the settled path followed the viewer to a new address (its NAT changed it; viewer-settle.ts). */
  pathChanges?: number;
  /** Last fraction lost the viewer reported for video (0..1). */
  videoFractionLost?: number;
}

/**
 * ICE and DTLS finish in well under a second on a LAN and in a second or two through TURN; an
 * unconnected viewer holds one of the camera's few slots, and offers that never connect are free
 * to send, so they are reaped after a few seconds rather than the 20 s this once was. The page
 * simply retries a viewer that was reaped.
 */
export const CONNECT_TIMEOUT_MS = 5_000;

const DEFAULTS = {
  connectTimeoutMs: CONNECT_TIMEOUT_MS,
  disconnectGraceMs: 8_000,
  silenceTimeoutMs: 10_000,
  keyframeRequestIntervalMs: 1_000,
  maxQueuedBytes: 4 * 1024 * 1024,
  nackHistoryPackets: 2048,
  replayPaceMbps: 40,
  staleFrameMs: 300,
};

/** How long `waitForTracks` waits by default before giving up on a camera that does not answer. */
export const DEFAULT_TRACKS_TIMEOUT_MS = 15_000;


/** The options with their defaults filled in. */
export type ViewerSettings = typeof DEFAULTS & { congestionProbe: (() => number) | undefined; nativeFanout: NativeFanoutStatus; releaseWerift: boolean };

export function viewerSettings(options: ViewerPeerOptions): ViewerSettings {
  return {
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    disconnectGraceMs: options.disconnectGraceMs ?? DEFAULTS.disconnectGraceMs,
    silenceTimeoutMs: options.silenceTimeoutMs ?? DEFAULTS.silenceTimeoutMs,
    keyframeRequestIntervalMs: options.keyframeRequestIntervalMs ?? DEFAULTS.keyframeRequestIntervalMs,
    maxQueuedBytes: options.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes,
    nackHistoryPackets: options.nackHistoryPackets ?? DEFAULTS.nackHistoryPackets,
    replayPaceMbps: options.replayPaceMbps ?? DEFAULTS.replayPaceMbps,
    staleFrameMs: options.staleFrameMs ?? DEFAULTS.staleFrameMs,
    congestionProbe: options.congestionProbe,
    nativeFanout: options.nativeFanout ?? nativeFanout(),
    releaseWerift: options.releaseWerift ?? true,
  };
}
