/**
 * Shared shapes of src/webrtc. `CameraRegistry` and `Principal` are the web layer's (src/web/types.ts,
 * docs/design.md): imported, not duplicated, so both layers always agree.
 */
export type { CameraRegistry, Principal } from '../web/types.js';

/** Error codes of the signalling protocol (docs/design.md). */
export type ViewerErrorCode = 'not-found' | 'too-many-viewers' | 'unsupported-codec' | 'bad-request' | 'forbidden';

/** An ICE candidate as browsers serialise it (RTCIceCandidateInit). */
export interface IceCandidateJson {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** What the page shows about the stream. */
export interface StreamInfo {
  codec: 'H264' | 'VP8' | null;
  width?: number;
  height?: number;
  audio: string | null;
  /** Plain-language remark, e.g. why there is no sound. */
  message?: string;
}
