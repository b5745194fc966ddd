/**
 * Shared shapes of src/webrtc, and the seams it offers the web server above it: `CameraRegistry`
 * (how a viewer names cameras), and the signalling and WHEP handlers src/web routes requests to.
 * Who is calling (`Principal`, `CallerContext`) comes from src/access, which both layers import.
 */
import type { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import type { CallerContext } from '../access/principal.js';
import type { BroadcastSource } from '../media/types.js';
import type { TalkChannel } from '../media/talk-channel.js';

export type { Principal } from '../access/principal.js';
export type { TalkChannel, TalkHolder, TalkTurn } from '../media/talk-channel.js';

/** How viewers (and the web layer) find cameras. `list()` is in display order. */
export interface CameraRegistry {
  get(id: string): BroadcastSource | undefined;
  list(): ReadonlyArray<BroadcastSource>;
  /**
   * The camera transcoded to `codec` (default VP8) + Opus, for viewers that cannot take its own
   * video codec: VP8 for browsers without H.264, H.264 for an H.265 camera's viewers that take it;
   * `undefined` when there is no such camera or ffmpeg cannot encode it. Same id, same limits.
   */
  transcoded?(id: string, codec?: 'VP8' | 'H264'): BroadcastSource | undefined;
  /**
   * The camera as a browser that takes its video gets it: that video, and its AAC sound (which no
   * browser plays over WebRTC) as Opus from one encoder per camera; other sound passes as it is.
   * `undefined` when ffmpeg has no libopus: such viewers get `get(id)`.
   */
  withOpusSound?(id: string): BroadcastSource | undefined;
  /**
   * The camera's talk channel (two-way audio), when it is set up for one (`twoWayAudio`); whether
   * the caller may use it is `canTalk`'s to say.
   */
  talk?(id: string): TalkChannel | undefined;
}

/**
 * Takes over one accepted `/signal` WebSocket (docs/design.md, "WebSocket signalling protocol").
 * The server has already authenticated the caller, checked Origin and set `maxPayload`; the handler
 * must check `canWatch(ctx.principal, camera)` itself, because the camera is named in a message.
 */
export type SignallingHandler = (ws: WebSocket, ctx: CallerContext) => void;

/** A framework-agnostic HTTP answer, as the WHEP handler gives it. */
export interface HandlerResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** WHEP (draft-ietf-wish-whep) without HTTP plumbing: the server validates ids, types and sizes first. */
export interface WhepHandler {
  /** `offer` is the client's SDP (`application/sdp`, size-limited). Expected: 201 + Location + answer. */
  handlePost(cameraId: string, offer: string, ctx: CallerContext): Promise<HandlerResponse> | HandlerResponse;
  handleDelete(cameraId: string, sessionId: string, ctx: CallerContext): Promise<HandlerResponse> | HandlerResponse;
  /** Trickle ICE / ICE restart (`application/trickle-ice-sdpfrag`). Optional: 405 when missing. */
  handlePatch?(
    cameraId: string,
    sessionId: string,
    fragment: string,
    ctx: CallerContext,
  ): Promise<HandlerResponse> | HandlerResponse;
}

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
  codec: 'H264' | 'VP8' | 'H265' | null;
  width?: number;
  height?: number;
  audio: string | null;
  /** Plain-language remark, e.g. why there is no sound. */
  message?: string;
}

/** Events of a viewer a scale-out gateway serves. */
export interface RelayedViewerEvents {
  /** The gateway's PeerConnection with the viewer is up. */
  connected: [];
  /** Ended on the gateway's side (hang-up, the gateway went away) or by `close()`. */
  closed: [reason: string];
}

/** A viewer whose media a scale-out gateway serves instead of this process (src/scaleout/). */
export interface RelayedViewer extends EventEmitter<RelayedViewerEvents> {
  /** Which gateway serves it (for logs; no secret). */
  readonly gateway: string;
  /** The gateway's offer (its ICE candidates are in it). */
  readonly offer: string;
  answer(sdp: string): Promise<void>;
  candidate(candidate: IceCandidateJson | null): Promise<void>;
  close(): Promise<void>;
}

/** What the signalling asks the scale-out: a gateway's viewer of this camera, or undefined to serve it here. */
export interface ViewerRelays {
  relay(cameraId: string): Promise<RelayedViewer> | undefined;
}
