/**
 * The seams of the web layer. The web server knows nothing about RTSP or accounts: it finds cameras
 * through a `CameraRegistry`, asks `authorize` who is calling, and hands sockets and WHEP requests to
 * handlers the platform plugs in (src/webrtc builds them).
 *
 * Each type has one home, re-exported here for the web layer's own files: `BroadcastSource` is the
 * media core's (src/media/types.ts); `Principal`, `Authorize` and `CallerContext` are src/access's,
 * which src/webrtc imports too; `CameraRegistry` and the signalling and WHEP handler shapes are
 * src/webrtc's, the layer below that implements them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../access/principal.js';
import type { Logger } from '../util/logger.js';

export type { BroadcastSource } from '../media/types.js';
export type { Authorize, CallerContext, Principal } from '../access/principal.js';
export type { CameraRegistry, HandlerResponse, SignallingHandler, WhepHandler } from '../webrtc/types.js';

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
