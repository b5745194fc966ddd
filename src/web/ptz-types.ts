/**
 * The seam between the web layer and a camera's PTZ (issue 17), and what a caller is shown of it.
 * The web layer knows no ONVIF: src/runtime/camera-ptz.ts implements `CameraPtzControl` over
 * src/onvif's `PtzController`; ptz-routes.ts and the camera list (api-routes.ts) use it.
 */
import { canMoveCamera } from '../access/principal.js';
import { isAccessPrincipal } from './auth/principals.js';
import type { Principal } from './types.js';

/** Why the controller refused a command (src/onvif's `PtzRefusalReason`). */
export type PtzRefusal = 'forbidden' | 'busy' | 'rate-limited' | 'invalid' | 'unsupported';

export type PtzCommand =
  | { kind: 'move'; pan: number; tilt: number; zoom: number }
  | { kind: 'stop' }
  | { kind: 'preset'; token: string }
  | { kind: 'home' };

export type PtzOutcome = { ok: true } | { ok: false; reason: PtzRefusal; message: string };

/** What a viewer with the right is shown of a camera's PTZ (in the camera list and at GET .../ptz). */
export interface PtzView {
  /** Moves while held (ContinuousMove); false: each move is one step (RelativeMove). */
  continuous: boolean;
  zoom: boolean;
  home: boolean;
  presets: Array<{ token: string; name: string }>;
  /** Who holds control now: this viewer, someone else, or nobody. Never the other viewer's name. */
  mover: 'you' | 'other' | null;
  moving: boolean;
}

/**
 * The `ptz` event of the page's event stream (web/event-stream.ts): a camera's mover changed (someone
 * took control, let it go, or their lease ran out), as this viewer may be told it.
 */
export interface PtzMoverEvent {
  type: 'ptz';
  camera: string;
  mover: PtzView['mover'];
  /**
   * Who moves it, for the page to name; null means "someone else". Only administrators (who manage
   * the accounts anyway) are told an account's name; the Home app is named to everyone, being nobody;
   * a share link is never named (its id is half of its address).
   */
  name: string | null;
  /** ms since the epoch. */
  at: number;
}

/** The `ptz` event for one viewer, from the mover's id (`ptzViewerId`, or undefined: nobody). */
export function ptzMoverEvent(camera: string, moverId: string | undefined, viewer: Principal, at = Date.now()): PtzMoverEvent {
  if (moverId === undefined) return { type: 'ptz', camera, mover: null, name: null, at };
  if (moverId === ptzViewerId(viewer)) return { type: 'ptz', camera, mover: 'you', name: null, at };
  const mover = parsePtzViewerId(moverId);
  let name: string | null = null;
  if (mover.kind === HOMEKIT_PTZ_KIND) name = 'The Home app';
  else if (viewer.admin && mover.kind === 'user') name = mover.name;
  return { type: 'ptz', camera, mover: 'other', name, at };
}

/** One camera's PTZ as the runtime provides it. */
export interface CameraPtzControl {
  view(viewerId: string): PtzView;
  command(viewer: { id: string; ptz: boolean }, command: PtzCommand): Promise<PtzOutcome>;
}

/** The PTZ of a camera, or undefined when it has none (or it is not known yet). */
export type PtzLookup = (cameraId: string) => CameraPtzControl | undefined;

/**
 * The id a principal moves a camera under: one lease per account or share link. Prefixed by kind
 * (`user:`, `link:`, ...; the Home app is `HOMEKIT_PTZ_VIEWER_ID`), so that an account
 * named like a link or "Home app" cannot share another mover's lease.
 */
export function ptzViewerId(principal: Principal): string {
  return `${isAccessPrincipal(principal) ? principal.kind : 'other'}:${principal.name}`;
}

/** The kind the Home app's preset switches move a camera under (no principal has it). */
const HOMEKIT_PTZ_KIND = 'homekit';
/** The Home app's mover id, in `ptzViewerId`'s form (runtime/camera-ptz.ts `HOMEKIT_VIEWER`). */
export const HOMEKIT_PTZ_VIEWER_ID = `${HOMEKIT_PTZ_KIND}:Home app`;

/** A mover id (`ptzViewerId`, or the Home app's) read back as its kind and name. */
function parsePtzViewerId(id: string): { kind: string; name: string } {
  const colon = id.indexOf(':');
  return colon < 0 ? { kind: '', name: id } : { kind: id.slice(0, colon), name: id.slice(colon + 1) };
}

/** The camera's PTZ view for this caller, when it has the right; undefined otherwise (nothing is shown). */
export function ptzViewFor(lookup: PtzLookup | undefined, principal: Principal | undefined, cameraId: string): PtzView | undefined {
  if (!lookup || !principal || !canMoveCamera(principal, cameraId)) return undefined;
  return lookup(cameraId)?.view(ptzViewerId(principal));
}
