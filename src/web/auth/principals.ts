/**
 * The principals access control hands to the web server. They extend the seam's `Principal` with
 * where the access came from, so that revocation can find the sockets it must close: the gateway
 * keeps the very object `authorize` returned, and `disconnect(predicate)` receives it back.
 */
import type { Principal } from '../types.js';

export type PrincipalKind = 'user' | 'link' | 'anonymous';

export interface AccessPrincipal extends Principal {
  readonly kind: PrincipalKind;
  /** For share-link access (cookie or bearer): the link's id. */
  readonly linkId?: string;
  /** For cookie sessions: the session's key (a hash of its id), so logout closes that browser only. */
  readonly sessionKey?: string;
}

export function isAccessPrincipal(principal: Principal): principal is AccessPrincipal {
  const kind = (principal as Partial<AccessPrincipal>).kind;
  return kind === 'user' || kind === 'link' || kind === 'anonymous';
}

/** Link principals are named `link:<id>`; the label is free text and never used as a name. */
export function linkPrincipalName(linkId: string): string {
  return `link:${linkId}`;
}

export const ANONYMOUS_LOOPBACK: AccessPrincipal = Object.freeze({
  name: 'anonymous',
  kind: 'anonymous',
  cameras: 'all',
  admin: false,
});
