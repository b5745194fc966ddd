/**
 * What access control offers the web server and the platform (`AccessControl`), what it is built
 * from (`AccessControlOptions`), and the share-link views it returns. Apart from the code so the
 * state (access-state.ts) and the routes (access-routes.ts) can name them without a cycle.
 */
import type { Logger } from '../../util/logger.js';
import type { Authorize, Principal, SignallingHandler, WebRoute, WhepHandler } from '../types.js';
import type { ViewerAccountConfig } from './accounts.js';
import type { ClientAddressOf } from '../../access/client-address.js';
import type { PeerLimitSettings } from './peer-guard.js';
import type { RateLimitSettings } from './rate-limiter.js';
import type { SessionSettings } from './sessions.js';
import type { ShareLinkState } from './share-links.js';

export const LOGIN_PATH = '/login';
export const CSRF_HEADER = 'x-csrf-token';

export type RevokeListener = (predicate: (principal: Principal) => boolean, reason: string) => void;

export interface AccessControlOptions {
  /** The configured viewers (config `viewers`). Passwords may be plaintext or `scrypt$...`. */
  viewers: ReadonlyArray<ViewerAccountConfig>;
  /** Homebridge's storage path; files go to `<storagePath>/webrtc-cameras/` and nowhere else. */
  storagePath: string;
  /** The page is served over HTTPS (or a TLS proxy): cookies get `Secure` and `__Host-` names. */
  tls?: boolean;
  log?: Logger;
  /** The clock (tests). */
  now?: () => number;
  /**
   * Let requests from this machine (127.0.0.0/8, ::1, to a loopback Host) in without credentials,
   * as a viewer of every camera (never admin). For the demo on 127.0.0.1 only: behind a reverse
   * proxy on the same machine every visitor would look local.
   */
  allowAnonymousLoopback?: boolean;
  /** Expiry of a new share link when the request names none (config `shareLinks.defaultExpiryMs`; `null`: never). */
  defaultLinkExpiryMs?: number | null;
  /** The page's public address (config `web.publicUrl`), to return absolute share-link URLs. */
  publicUrl?: string;
  /** The camera ids that exist; share links naming others are refused. */
  cameraIds?: () => Iterable<string>;
  /** Who a request comes from (trusted reverse proxies); default the TCP peer. */
  clientAddress?: ClientAddressOf;
  sessions?: Partial<SessionSettings>;
  rateLimit?: Partial<RateLimitSettings>;
  peers?: Partial<PeerLimitSettings>;
  /** How often expired links and sessions are looked for (their sockets closed). Default 1 s. */
  sweepIntervalMs?: number;
  maxShareLinks?: number;
}

export interface ShareLinkView {
  id: string;
  label: string;
  cameras: 'all' | ReadonlyArray<string>;
  createdAt: string;
  expiresAt: string | null;
  createdBy: string;
  revokedAt: string | null;
  state: ShareLinkState;
}

export interface CreatedShareLink extends ShareLinkView {
  /** The bearer token (also the last part of `path`). Shown once, at creation. */
  token: string;
  /** `/s/<token>`: opens the page as this link. */
  path: string;
  /** Absolute URL when `publicUrl` is known. */
  url?: string;
}

export interface AccessControl {
  /** For `createWebServer({ authorize })`. May throw HttpError 403 (CSRF) or 429 (guessing). */
  readonly authorize: Authorize;
  /** For `createWebServer({ routes })`: /login, /logout, /s/:token, /api/session, /api/share-links. */
  readonly routes: ReadonlyArray<WebRoute>;
  /** For `createWebServer({ loginPath })`. */
  readonly loginPath: string;
  /** Viewer passwords, for `createWebServer({ secrets })` (they are masked in anything sent or logged). */
  secrets(): Iterable<string>;
  /** Called with "these principals lost access"; pass it to the web server's `disconnect`. Returns an unsubscribe. */
  onRevoke(listener: RevokeListener): () => void;
  /** Wraps the signalling handler with per-user/per-address limits and the idle-socket reaper. */
  guardSignalling(handler: SignallingHandler): SignallingHandler;
  /** Wraps the WHEP handler with the same limits, and ends a revoked principal's WHEP sessions. */
  guardWhep(handler: WhepHandler): WhepHandler;
  /** Share links without HTTP (a future Homebridge UI, tests). */
  readonly shareLinks: {
    create(input: { cameras: 'all' | ReadonlyArray<string>; expiresIn?: unknown; label?: string; createdBy: string }): Promise<CreatedShareLink>;
    list(): ShareLinkView[];
    revoke(id: string): Promise<boolean>;
  };
  readonly accountCount: number;
  /** Stops the timers and writes pending state. */
  stop(): Promise<void>;
}
