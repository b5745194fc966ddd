/**
 * The per-track processing a Source runs once per camera: RTP payloads in, whole frames (already
 * cut for WebRTC) out. The Source owns timing (output timestamps and sequence numbers); pipelines
 * only know the camera's own timeline.
 */
import type { CodecName, PacketizedPayload, RtpPacketView } from './types.js';
import type { DepacketizerCounters } from './nal-assembler.js';
import type { NalPacketizer } from './nal-packetizer.js';

interface PipelineFrameFields {
  /** RTP timestamp in the camera's timeline. */
  timestamp: number;
  keyframe: boolean;
  units: Buffer[];
  /** Encoded size: the sum of `units` lengths. */
  byteLength: number;
  /** Part of the frame was lost upstream. */
  damaged: boolean;
}

/**
 * A pipeline's frame, with its RTP payloads either cut already (audio and VP8, whose payloads are
 * the camera's) or left to `cut` (H.264 and H.265, re-cut for WebRTC's MTU): the Source cuts those
 * only once somebody reads them, so a camera nobody watches is never re-cut.
 */
export type PipelineFrame = PipelineFrameFields &
  ({ packets: PacketizedPayload[]; cut?: undefined } | { packets?: undefined; cut: NalPacketizer });

export interface TrackPipeline {
  readonly kind: 'video' | 'audio';
  readonly codec: CodecName;
  readonly counters: DepacketizerCounters;
  /** `lossBefore`: sequence numbers are missing just before this packet. */
  push(packet: RtpPacketView, lossBefore: boolean): void;
  /** Emits whatever complete data is pending (end of session). */
  flush(): void;
  /** Drops partial state (new SSRC, new session). */
  reset(): void;
}

export type FrameCallback = (frame: PipelineFrame) => void;
