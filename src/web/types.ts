/**
 * The seams of the web layer. The web server knows nothing about WebRTC, RTSP or accounts: it finds
 * cameras through a `CameraRegistry`, asks `authorize` who is calling, and hands sockets and WHEP
 * requests to handlers the platform plugs in (src/webrtc builds them).
 *
 * `CameraRegistry` and `Principal` follow docs/design.md and are defined here (src/webrtc imports
 * them); `BroadcastSource` is defined in src/webrtc and re-exported, so each type has one home.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import type { Logger } from '../util/logger.js';
import type { BroadcastSource } from '../webrtc/broadcast-source.js';

/** What a viewer needs from a camera (docs/design.md, "Viewer-side seam"); defined once, in src/webrtc. */
export type { BroadcastSource } from '../webrtc/broadcast-source.js';

/** How the web layer finds cameras. `list()` is in display order. */
export interface CameraRegistry {
  get(id: string): BroadcastSource | undefined;
  list(): ReadonlyArray<BroadcastSource>;
  /**
   * The camera transcoded to VP8 + Opus, for viewers that cannot take its own video codec;
   * `undefined` when there is no such camera or ffmpeg cannot transcode. Same id, same limits.
   */
  transcoded?(id: string): BroadcastSource | undefined;
}

/** Who is calling (docs/design.md, "Auth seam"). */
export interface Principal {
  readonly name: string;
  readonly cameras: 'all' | ReadonlyArray<string>;
  readonly admin: boolean;
}

/**
 * Decides who is calling, from the request alone (cookie, bearer token, share link...).
 * `undefined` means "not authenticated": 401 (or a redirect to `loginPath` for the page).
 * It may be async so that access control can look sessions up or verify tokens without blocking.
 */
export type Authorize = (req: IncomingMessage) => Principal | undefined | Promise<Principal | undefined>;

/** Everything a handler learns about the caller. */
export interface CallerContext {
  principal: Principal;
  /** The peer address of the TCP connection (proxies are not trusted). */
  remoteAddress: string;
  /** The request that opened the socket or carried the WHEP call; read-only by convention. */
  request: IncomingMessage;
  log: Logger;
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

/**
 * One mechanism for snapshots, shared with HomeKit. Resolves `undefined` when no picture is available
 * yet (the page then shows a placeholder). Must not reject for an ordinary "camera offline".
 */
export interface SnapshotProvider {
  getSnapshot(cameraId: string, size: { width?: number; height?: number }): Promise<Buffer | undefined>;
  /**
   * The last good picture kept across restarts and when it was taken (ms since the epoch), from
   * memory: answers at once, so a tile is never empty while a fresh picture is on its way.
   */
  savedSnapshot?(cameraId: string): Promise<{ image: Buffer; capturedAt: number } | undefined>;
}

/** An ICE server the browser should use too (TURN for viewers outside the LAN); RTCIceServer's shape. */
export interface ClientIceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

/** Extra facts about a camera that a `BroadcastSource` does not carry (its display name, viewer count). */
export interface CameraExtras {
  name?: string;
  viewers?: number;
}

/** Per-request helpers handed to routes, including extra routes (login, share links...). */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Path parameters of the matched pattern, already validated where the pattern says so. */
  params: Readonly<Record<string, string>>;
  /** `undefined` only on `auth: 'public'` routes when the caller is anonymous. */
  principal: Principal | undefined;
  remoteAddress: string;
  log: Logger;
  /** Reads the body as text, refusing more than `limit` bytes (default: the JSON limit) with 413. */
  readText(limit?: number): Promise<string>;
  /** Reads and parses a JSON body (`application/json`), with 413 / 415 / 400 on bad input. */
  readJson(): Promise<unknown>;
  /** Sends a JSON body with no-store caching. */
  sendJson(status: number, body: unknown, headers?: Record<string, string>): void;
}

/**
 * A route added by another module (access control adds /login, /logout, share links...).
 * `path` is a pattern of literal segments and `:name` parameters, e.g. `/api/links/:link`.
 * `auth`: `public` runs without a principal, `viewer` needs one, `admin` needs `principal.admin`.
 */
export interface WebRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  auth: 'public' | 'viewer' | 'admin';
  /** Cross-origin requests that change state are refused unless the origin is allowed (default true for non-GET). */
  sameOriginOnly?: boolean;
  handle(ctx: RouteContext): Promise<void> | void;
}
