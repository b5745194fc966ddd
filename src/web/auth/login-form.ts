/**
 * The sign-in form's own CSRF protection, before any session exists: a double-submit token (the
 * hidden field must equal the cookie) that is also an HMAC this server made, and fresh.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { safeEqual } from '../../util/safe-equal.js';
import { readCookie } from './cookies.js';

/** A sign-in form older than this must be reloaded (its CSRF token expired). */
export const LOGIN_FORM_MAX_AGE_MS = 2 * 3_600_000;

export class LoginFormTokens {
  constructor(
    private readonly key: Buffer,
    /** The name of the cookie that carries the token beside the form. */
    private readonly cookieName: string,
    private readonly now: () => number,
  ) {}

  /** A new token for a form (and its cookie). */
  issue(): string {
    const nonce = randomBytes(16).toString('base64url');
    const issued = this.now().toString(36);
    return `${nonce}.${issued}.${this.mac(nonce, issued)}`;
  }

  /** Double submit: the hidden field must equal the cookie, and be a fresh token this server made. */
  valid(req: IncomingMessage, given: string | undefined): boolean {
    const cookie = readCookie(req, this.cookieName);
    if (!given || !cookie || given.length > 128 || !safeEqual(given, cookie)) return false;
    const [nonce, issued, mac] = given.split('.');
    if (!nonce || !issued || !mac) return false;
    if (!safeEqual(mac, this.mac(nonce, issued))) return false;
    const age = this.now() - parseInt(issued, 36);
    return age >= 0 && age <= LOGIN_FORM_MAX_AGE_MS;
  }

  private mac(nonce: string, issued: string): string {
    return createHmac('sha256', this.key).update(`${nonce}.${issued}`).digest('base64url');
  }
}
