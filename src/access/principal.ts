/**
 * Who is calling, and the one rule every camera endpoint applies. This sits just above src/util so
 * that both the web server (which decides who is calling) and src/webrtc (which checks, camera by
 * camera, a caller the server already authenticated) import it without importing each other.
 * Access control (src/web/auth) replaces `allowEveryone`; `canWatch` stays the single place that
 * decides camera by camera.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../util/logger.js';

/** Who is calling (docs/design.md, "Auth seam"). */
export interface Principal {
  readonly name: string;
  readonly cameras: 'all' | ReadonlyArray<string>;
  readonly admin: boolean;
  /**
   * May move PTZ cameras (among those it may watch). Absent means no: share links, previews and
   * anonymous viewers never carry it; admins have the right whatever this says (`canMoveCamera`).
   */
  readonly ptz?: boolean;
  /**
   * May talk through cameras with a speaker (two-way audio), among those it may watch. Absent means
   * no, as for `ptz`: a share link never carries it; admins have it (`canTalk`).
   */
  readonly talk?: boolean;
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

/** Until accounts exist everyone may watch every camera, but nobody gets admin powers by default. */
export const EVERYONE: Principal = Object.freeze({ name: 'everyone', cameras: 'all', admin: false });

export const allowEveryone: Authorize = () => EVERYONE;

export function canWatch(principal: Principal, cameraId: string): boolean {
  return principal.cameras === 'all' || principal.cameras.includes(cameraId);
}

/**
 * The PTZ right (issue 17): pan/tilt/zoom, presets and home move a camera for everyone watching it,
 * so watching is not enough; an admin or a viewer granted `ptz` in the config may, for the cameras
 * it may watch. The one place that decides it, like `canWatch` for watching.
 */
export function canMoveCamera(principal: Principal, cameraId: string): boolean {
  return canWatch(principal, cameraId) && (principal.admin || principal.ptz === true);
}

/**
 * The talk right (two-way audio): a voice out of the camera's speaker reaches whoever stands at
 * the door, so watching is not enough; an admin or a viewer granted `talk` in the config may.
 */
export function canTalk(principal: Principal, cameraId: string): boolean {
  return canWatch(principal, cameraId) && (principal.admin || principal.talk === true);
}
