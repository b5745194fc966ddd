/**
 * The contracts of the media core. Everything upstream (the RTSP client, the demo camera) produces
 * `UpstreamSession`s; everything downstream (WebRTC viewers, the loopback re-stream, snapshots,
 * HomeKit ffmpeg) consumes `MediaFrame`s through a `FrameSink` attached to a camera's `Source`.
 */

/** VP8 only ever comes from the plugin's own transcoder (src/transcode/), never from a camera. */
export type VideoCodecName = 'H264' | 'H265' | 'VP8';
export type AudioCodecName = 'PCMU' | 'PCMA' | 'AAC' | 'OPUS';
export type CodecName = VideoCodecName | AudioCodecName;
export type MediaKind = 'video' | 'audio';

/** One media track as described by the camera's SDP. */
export interface TrackDescription {
  kind: 'video' | 'audio';
  /** Upper-case codec name; `undefined` for a codec we do not understand (the track is skipped). */
  codec: CodecName;
  payloadType: number;
  clockRate: number;
  channels?: number;
  /** Raw fmtp parameters, keys lower-cased. */
  fmtp: Record<string, string>;
  /** Absolute control URL used for SETUP. */
  controlUrl: string;
  /** H.264: parameter sets from sprop-parameter-sets (NAL units without start codes). */
  parameterSets?: Buffer[];
  /** True when this plugin cannot pass the codec to browsers as is (H.265, AAC). */
  needsTranscoding?: boolean;
}

/** An RTP packet as received, parsed. `payload` is a view into the received buffer. */
export interface RtpPacketView {
  version: number;
  padding: boolean;
  extension: boolean;
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  csrcs: number[];
  payload: Buffer;
}

/** A packet payload already cut for WebRTC (<= 1200 bytes), shared by every viewer. */
export interface PacketizedPayload {
  payload: Buffer;
  marker: boolean;
}

/**
 * One access unit (video) or audio frame, in the Source's own continuous timeline.
 * Frames are immutable once emitted: every subscriber receives the same object.
 */
export interface MediaFrame {
  kind: 'video' | 'audio';
  codec: CodecName;
  /** Clock rate of `timestamp`. */
  clockRate: number;
  /** RTP timestamp in the Source's output timeline: continuous across camera reconnects. */
  timestamp: number;
  /** Output sequence number base of `packets[0]`: continuous across reconnects. */
  sequenceNumber: number;
  /** Video: an IDR access unit that carries (or had prepended) SPS and PPS. Audio: always true. */
  keyframe: boolean;
  /** H.264/H.265: NAL units without start codes. Audio: one element, the codec payload. */
  units: Buffer[];
  /** The frame cut once for WebRTC; `packets.length` sequence numbers are used from `sequenceNumber`. */
  packets: PacketizedPayload[];
  /** Encoded size in bytes (the sum of `units` lengths); set by the Source so sinks need not add it up. */
  byteLength?: number;
  /** performance.now() when the frame's last packet arrived from the camera. */
  receivedAt: number;
  /** Wall-clock capture time (ms since epoch) from the camera's RTCP sender reports, when known. */
  captureTime?: number;
  /** Packets were lost inside or just before this frame: some of it may be missing. */
  damaged?: boolean;
}

/**
 * Where a Source delivers frames. `write` is synchronous and must not block. Returning false means
 * "I am congested": the Source then stops sending this sink video until the next keyframe, counts
 * the drop, and never lets one slow sink hold back the others.
 */
export interface FrameSink {
  write(frame: MediaFrame): boolean;
  /** The Source's tracks changed (first connect, or a camera restart with new parameters). */
  onTracks?(tracks: ReadonlyArray<TrackDescription>): void;
  /** The Source changed state (live, retrying...). */
  onState?(state: SourceState): void;
}

export type SourceStateName = 'idle' | 'connecting' | 'live' | 'retrying' | 'stopped';

export interface SourceState {
  state: SourceStateName;
  lastError?: string;
  /** When retrying: ms until the next attempt. */
  retryInMs?: number;
}

/** Callbacks an upstream (an RTSP session) uses to feed a Source. */
export interface UpstreamHandlers {
  /**
   * An RTP packet for track `trackIndex` (index into `UpstreamSession.tracks`). The Source copies
   * what it keeps, so the upstream may reuse `packet`'s memory once this returns. `ageMs`: how long
   * before this call it arrived, when the upstream held it (see `UpstreamSession.holdDelivery`).
   */
  onRtp(trackIndex: number, packet: Buffer, ageMs?: number): void;
  /** An RTCP sender report: maps an RTP timestamp of the track to wall-clock time (ms since epoch). */
  onSenderReport?(trackIndex: number, rtpTimestamp: number, wallClockMs: number): void;
  /** The session ended, with the reason when it was not asked to. */
  onClose(error?: Error): void;
}

export interface UpstreamSession {
  readonly tracks: ReadonlyArray<TrackDescription>;
  close(): Promise<void>;
  /**
   * Optional. Nobody watches (`everyMs` > 0): the upstream may hold packets and deliver them every
   * `everyMs`, each with its age, which saves a camera's CPU; 0: deliver each at once again, what
   * was held first, before this returns.
   */
  holdDelivery?(everyMs: number): void;
  /** Optional. Delivers what is held before returning. */
  flushDelivery?(): void;
}

/** Opens one session to the camera. Rejects with a clear, credential-free error. */
export interface UpstreamFactory {
  (handlers: UpstreamHandlers, signal: AbortSignal): Promise<UpstreamSession>;
  /**
   * Whether the camera answers at all, without logging in (a TCP connect to its RTSP port).
   * While a camera is down the Source probes with it and reconnects the moment it is back.
   */
  probe?: (signal: AbortSignal) => Promise<boolean>;
}

// ---- What outputs see of a camera ----

export interface DepacketizerCounters {
  packets: number;
  accessUnits: number;
  /** Access units closed by a timestamp change because their marker packet never came. */
  accessUnitsWithoutMarker: number;
  /** Fragments (FU) that arrived without their start fragment; dropped until the next start. */
  fragmentsWithoutStart: number;
  /** Partly received fragmented NAL units discarded because a fragment was lost. */
  fragmentedNalsLost: number;
  /** Payloads that contradict their own structure (bad sizes, forbidden bit...). */
  malformed: number;
  /** Valid RTP payload formats we do not implement (interleaved mode, PACI...). */
  unsupported: number;
  /** Access units dropped because they exceeded the size limit. */
  oversized: number;
}

export interface SubscribeOptions {
  /** Which kinds to deliver (default both). */
  kinds?: ReadonlyArray<MediaKind>;
  /**
   * true (default): deliver the cached GOP at once, so video starts with the last keyframe.
   * false: no replay; video starts at the next live keyframe.
   */
  fromKeyframe?: boolean;
}

export interface SubscriptionStats {
  /** Frames accepted by the sink. */
  delivered: number;
  /** Frames refused by the sink or skipped while cut back to a keyframe. */
  dropped: number;
  /** Times the sink refused a video frame and was cut back to the next keyframe. */
  dropsToKeyframe: number;
  /** GOP replays done for `requestKeyframe`. */
  replays: number;
  /** Video is currently held back until the next keyframe. */
  waitingForKeyframe: boolean;
}

export interface Subscription {
  readonly sink: FrameSink;
  /** False once unsubscribed or the Source is closed. */
  readonly active: boolean;
  unsubscribe(): void;
  stats(): SubscriptionStats;
}

export interface TrackStats {
  codec: CodecName;
  clockRate: number;
  packetsReceived: number;
  /** From sequence-number gaps. */
  packetsLost: number;
  /** Duplicated or reordered packets that came too late and were dropped. */
  packetsLate: number;
  /** RTP that failed to parse, with an unexpected payload type, or a stray far outside the stream's sequence/SSRC. */
  packetsMalformed: number;
  framesOut: number;
  /** Keyframes received from the camera (video). */
  keyframes: number;
  /** Frames emitted with a part missing because of loss. */
  framesDamaged: number;
  /** Measured over the last 5 s. */
  bitrateBps: number;
  fps: number;
  depacketizer: DepacketizerCounters;
}

export interface SourceStats {
  id: string;
  name: string;
  state: SourceStateName;
  lastError?: string;
  subscribers: number;
  /** Sessions established after a failure. */
  reconnects: number;
  /** The video codec, or the audio codec for an audio-only camera. */
  codec?: CodecName;
  width?: number;
  height?: number;
  profile?: string;
  level?: number;
  /** Measured frame rate (video). */
  fps?: number;
  /** Frame rate the SPS declares, when it does. */
  declaredFps?: number;
  /** Measured keyframe interval. */
  keyframeIntervalMs?: number;
  /** All tracks, measured over the last 5 s. */
  bitrateBps: number;
  packetsReceived: number;
  packetsLost: number;
  gopCacheBytes: number;
  gopCacheFrames: number;
  /** Latest session: from starting to connect to the first video keyframe (first frame if audio-only). */
  timeToFirstFrameMs?: number;
  video?: TrackStats;
  audio?: TrackStats;
}

/** The one subscribe call every output makes; narrower than `BroadcastSource` for outputs that need no more. */
export interface Subscribable {
  subscribe(sink: FrameSink, options?: SubscribeOptions): Pick<Subscription, 'unsubscribe'>;
}

/**
 * What every output (WebRTC viewers, the re-stream, HomeKit, snapshots, transcoded variants) needs
 * from a camera. `Source` satisfies it, and so does a transcoded variant: an output never knows
 * which one it is fed from.
 */
export interface BroadcastSource extends Subscribable {
  /** The camera id, the only name a viewer ever uses. */
  readonly id: string;
  /** Empty until the first connect. */
  readonly tracks: ReadonlyArray<TrackDescription>;
  readonly state: SourceState;
  /** Re-send the cached GOP to that sink (the answer to a viewer's PLI/FIR). */
  requestKeyframe(sink: FrameSink): void;
  stats(): SourceStats;
  on(event: 'tracks' | 'state', listener: (...args: unknown[]) => void): this;
  off(event: 'tracks' | 'state', listener: (...args: unknown[]) => void): this;
}
