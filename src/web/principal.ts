/**
 * The default `authorize` and the one rule every camera endpoint applies. Access control (a later
 * issue) replaces `allowEveryone`; `canWatch` stays the single place that decides camera by camera.
 */
import type { Authorize, Principal } from './types.js';

/** Until accounts exist everyone may watch every camera, but nobody gets admin powers by default. */
export const EVERYONE: Principal = Object.freeze({ name: 'everyone', cameras: 'all', admin: false });

export const allowEveryone: Authorize = () => EVERYONE;

export function canWatch(principal: Principal, cameraId: string): boolean {
  return principal.cameras === 'all' || principal.cameras.includes(cameraId);
}
