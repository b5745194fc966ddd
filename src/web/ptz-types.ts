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

/** One camera's PTZ as the runtime provides it. */
export interface CameraPtzControl {
  view(viewerId: string): PtzView;
  command(viewer: { id: string; ptz: boolean }, command: PtzCommand): Promise<PtzOutcome>;
}

/** The PTZ of a camera, or undefined when it has none (or it is not known yet). */
export type PtzLookup = (cameraId: string) => CameraPtzControl | undefined;

/**
 * The id a principal moves a camera under: one lease per account or share link. Prefixed by kind
 * (`user:`, `link:`, ...; the Home app is `homekit:`, runtime/camera-ptz.ts), so that an account
 * named like a link or "Home app" cannot share another mover's lease.
 */
export function ptzViewerId(principal: Principal): string {
  return `${isAccessPrincipal(principal) ? principal.kind : 'other'}:${principal.name}`;
}

/** The camera's PTZ view for this caller, when it has the right; undefined otherwise (nothing is shown). */
export function ptzViewFor(lookup: PtzLookup | undefined, principal: Principal | undefined, cameraId: string): PtzView | undefined {
  if (!lookup || !principal || !canMoveCamera(principal, cameraId)) return undefined;
  return lookup(cameraId)?.view(ptzViewerId(principal));
}
