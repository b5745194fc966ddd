/**
 * Server side of RTSP authentication for the re-stream. Digest (RFC 7616: MD5 or SHA-256, with
 * `qop=auth` or the legacy no-qop form) is always accepted; Basic only where the caller allows it,
 * because on the LAN Basic would put the password on the wire in clear. Nonces are stateless (an
 * HMAC over their issue time with a per-process secret), so a flood of unauthenticated requests
 * costs no memory, and they expire so a captured one is useful only briefly.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { digestResponse } from '../util/http-digest.js';
import { safeEqual } from '../util/safe-equal.js';

export interface RestreamCredentials {
  username: string;
  password: string;
}

export type AuthResult = 'ok' | 'missing' | 'stale' | 'denied';

const DEFAULT_NONCE_TTL_MS = 5 * 60_000;

export class RtspDigestAuthenticator {
  private readonly secret = randomBytes(32);

  constructor(
    private readonly credentials: RestreamCredentials,
    readonly realm = 'homebridge-webrtc-cameras',
    private readonly nonceTtlMs = DEFAULT_NONCE_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The WWW-Authenticate values for a 401; Basic is offered only when it would be accepted. */
  challenge(options: { stale?: boolean; allowBasic: boolean }): string[] {
    const digest = `Digest realm="${this.realm}", nonce="${this.makeNonce()}", algorithm=MD5, qop="auth"` +
      (options.stale ? ', stale=true' : '');
    return options.allowBasic ? [digest, `Basic realm="${this.realm}"`] : [digest];
  }

  /** Checks an Authorization header against the request it came with. */
  check(method: string, requestUri: string, header: string | undefined, options: { allowBasic: boolean }): AuthResult {
    if (header === undefined || header.trim() === '') return 'missing';
    const space = header.indexOf(' ');
    const scheme = (space > 0 ? header.slice(0, space) : header).toLowerCase();
    const rest = space > 0 ? header.slice(space + 1) : '';
    if (scheme === 'basic') {
      if (!options.allowBasic) return 'denied';
      const decoded = Buffer.from(rest.trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return 'denied';
      const userOk = safeEqual(decoded.slice(0, colon), this.credentials.username);
      const passOk = safeEqual(decoded.slice(colon + 1), this.credentials.password);
      return userOk && passOk ? 'ok' : 'denied';
    }
    if (scheme !== 'digest') return 'denied';
    return this.checkDigest(method, requestUri, parseAuthParams(rest));
  }

  private checkDigest(method: string, requestUri: string, p: Map<string, string>): AuthResult {
    const username = p.get('username');
    const realm = p.get('realm');
    const nonce = p.get('nonce');
    const uri = p.get('uri');
    const response = p.get('response');
    if (!username || realm === undefined || !nonce || !uri || !response) return 'denied';
    if (!sameResource(uri, requestUri)) return 'denied';
    const algorithmName = (p.get('algorithm') ?? 'MD5').toUpperCase();
    const algorithm = algorithmName === 'MD5' ? 'MD5' : algorithmName === 'SHA-256' ? 'SHA-256' : undefined;
    if (!algorithm) return 'denied';
    // The expected answer, computed by the same code the plugin's own clients use (RFC 7616 3.4.1).
    const secret = { algorithm, username: this.credentials.username, password: this.credentials.password, realm: this.realm, nonce, method, uri } as const;
    const qop = p.get('qop');
    let expected: string;
    if (qop === undefined) {
      expected = digestResponse(secret);
    } else if (qop === 'auth') {
      const nc = p.get('nc');
      const cnonce = p.get('cnonce');
      if (!nc || !cnonce) return 'denied';
      expected = digestResponse({ ...secret, qop, nc, cnonce });
    } else {
      return 'denied';
    }
    const good = safeEqual(username, this.credentials.username) && realm === this.realm &&
      safeEqual(response.toLowerCase(), expected);
    if (!good) return 'denied';
    // Only a correct answer to an expired nonce is "stale": the client then retries silently.
    const age = this.nonceAge(nonce);
    if (age === undefined) return 'denied';
    return age > this.nonceTtlMs ? 'stale' : 'ok';
  }

  private makeNonce(): string {
    const issued = this.now().toString(16);
    return `${issued}.${this.sign(issued)}`;
  }

  /** Age in ms of a nonce we issued, or undefined when we did not issue it. */
  private nonceAge(nonce: string): number | undefined {
    const dot = nonce.indexOf('.');
    if (dot <= 0) return undefined;
    const issued = nonce.slice(0, dot);
    if (!/^[0-9a-f]{1,13}$/.test(issued) || !safeEqual(nonce.slice(dot + 1), this.sign(issued))) return undefined;
    const age = this.now() - parseInt(issued, 16);
    return age < -60_000 ? undefined : Math.max(0, age);
  }

  private sign(text: string): string {
    return createHmac('sha256', this.secret).update(text).digest('base64url').slice(0, 22);
  }
}

/** Parses `key=value, key="quoted, value"` lists, keys lower-cased. */
export function parseAuthParams(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  let match: RegExpExecArray | null;
  while ((match = re.exec(text)) !== null) {
    const value = match[2] !== undefined ? match[2].replace(/\\(.)/g, '$1') : (match[3] ?? '');
    out.set(match[1]!.toLowerCase(), value);
  }
  return out;
}

/** The digest's `uri` must name the requested resource: the full URL, or only its path. */
function sameResource(digestUri: string, requestUri: string): boolean {
  if (digestUri === requestUri) return true;
  try {
    const url = new URL(requestUri);
    return digestUri === `${url.pathname}${url.search}` || digestUri === url.pathname;
  } catch {
    return false;
  }
}

