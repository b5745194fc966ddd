/**
 * Cookie parsing and the two cookies access control sets. Under TLS the names carry the `__Host-`
 * prefix, which browsers only accept with `Secure; Path=/` and no Domain: a sibling host on the LAN
 * (or a plain-HTTP page on the same name) then cannot plant or overwrite them.
 */
import type { IncomingMessage } from 'node:http';

const MAX_COOKIES = 50;

/** The value of cookie `name`, or `undefined`. Tolerates junk; never throws. */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header || header.length > 8192) return undefined;
  const parts = header.split(';');
  for (let i = 0; i < parts.length && i < MAX_COOKIES; i++) {
    const part = parts[i]!;
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    return value;
  }
  return undefined;
}

export interface CookieNames {
  session: string;
  login: string;
  /**
   * `1` while signed in, readable by the page (not HttpOnly, no secret in it): the page only asks
   * for /api/session when it is set, so a server without access control sees no stray 404.
   */
  marker: string;
}

export function cookieNames(secure: boolean): CookieNames {
  return secure
    ? { session: '__Host-wrc_session', login: '__Host-wrc_login', marker: 'wrc_account' }
    : { session: 'wrc_session', login: 'wrc_login', marker: 'wrc_account' };
}

export interface CookieOptions {
  secure: boolean;
  /** Seconds; 0 deletes the cookie. */
  maxAgeSeconds: number;
  /** Default true; only the marker cookie is readable by scripts. */
  httpOnly?: boolean;
}

/**
 * `HttpOnly` (page scripts never see it), `SameSite=Strict` (no other site's page can make the
 * browser send it, which also closes cross-site WebSocket hijacking), `Path=/`, `Secure` under TLS.
 */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  const parts = [`${name}=${value}`, 'Path=/'];
  if (options.httpOnly !== false) parts.push('HttpOnly');
  parts.push('SameSite=Strict', `Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}`);
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}
