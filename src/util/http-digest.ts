import { createHash, randomBytes } from 'node:crypto';

/**
 * The one client-side HTTP authentication implementation, shared by RTSP (`rtsp/connection.ts`)
 * and HTTP (`onvif/http-client.ts`, snapshot URLs and SOAP): Basic (RFC 7617) and Digest (RFC 7616,
 * also the older RFC 2617/2069 forms cameras still answer with). Only the pure parts live here;
 * each protocol keeps its own retry logic.
 */

export interface AuthChallenge {
  /** Lower-cased scheme: "digest", "basic"... */
  scheme: string;
  /** Parameters, names lower-cased, values unquoted. */
  params: Record<string, string>;
}

export interface Credentials {
  username: string;
  password: string;
}

/**
 * Parses WWW-Authenticate values. One value can hold several challenges ("Digest realm=..., nonce=...,
 * Basic realm=..."), and a response can hold several values.
 */
export function parseChallenges(values: ReadonlyArray<string>): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  for (const value of values) out.push(...parseChallengeList(value));
  return out;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

function parseChallengeList(s: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  let current: AuthChallenge | undefined;
  let i = 0;
  const skipSpace = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && TOKEN.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  while (i < s.length) {
    skipSpace();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (!token) {
      i++; // a character that fits nowhere; skip it rather than give up on the header
      continue;
    }
    skipSpace();
    if (s[i] === '=' && current) {
      i++;
      skipSpace();
      let value: string;
      if (s[i] === '"') {
        i++;
        let v = '';
        while (i < s.length && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < s.length) i++;
          v += s[i];
          i++;
        }
        i++; // closing quote
        value = v;
      } else {
        // Unquoted: a token by the grammar, but some cameras write realm=IP Camera: take up to ",".
        const start = i;
        while (i < s.length && s[i] !== ',') i++;
        value = s.slice(start, i).trim();
      }
      current.params[token.toLowerCase()] = value;
      continue;
    }
    if (s[i] === '=' && !current) {
      // A parameter before any scheme: malformed; skip the value.
      while (i < s.length && s[i] !== ',') i++;
      continue;
    }
    current = { scheme: token.toLowerCase(), params: {} };
    out.push(current);
    // token68 form ("Negotiate abc==") is not used by cameras; its "=" padding is skipped above.
  }
  return out;
}

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

const ALGORITHMS: Record<string, DigestAlgorithm> = {
  'md5': 'MD5',
  'md5-sess': 'MD5-sess',
  'sha-256': 'SHA-256',
  'sha-256-sess': 'SHA-256-sess',
};

/** Higher is preferred. Basic ranks lowest: it sends the password itself. */
function strength(c: AuthChallenge): number {
  if (c.scheme === 'basic') return 1;
  if (c.scheme !== 'digest' || !c.params['nonce']) return 0;
  const alg = digestAlgorithmOf(c);
  if (!alg) return 0;
  const qop = c.params['qop'];
  if (qop !== undefined && !pickQop(qop)) return 0;
  return { 'MD5-sess': 2, 'MD5': 3, 'SHA-256-sess': 4, 'SHA-256': 5 }[alg];
}

function digestAlgorithmOf(c: AuthChallenge): DigestAlgorithm | undefined {
  const raw = c.params['algorithm'];
  return raw === undefined || raw === '' ? 'MD5' : ALGORITHMS[raw.toLowerCase()];
}

function pickQop(qop: string): 'auth' | 'auth-int' | undefined {
  const options = qop.split(',').map((q) => q.trim().toLowerCase());
  if (options.includes('auth')) return 'auth';
  if (options.includes('auth-int')) return 'auth-int';
  return undefined;
}

/** The strongest challenge this client supports, or undefined. */
export function chooseChallenge(challenges: ReadonlyArray<AuthChallenge>): AuthChallenge | undefined {
  let best: AuthChallenge | undefined;
  let bestStrength = 0;
  for (const c of challenges) {
    const s = strength(c);
    if (s > bestStrength) {
      best = c;
      bestStrength = s;
    }
  }
  return best;
}

export function isStale(c: AuthChallenge): boolean {
  return (c.params['stale'] ?? '').toLowerCase() === 'true';
}

function hashFor(algorithm: DigestAlgorithm): (data: string) => string {
  const name = algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
  return (data) => createHash(name).update(data, 'utf8').digest('hex');
}

export interface DigestInput {
  algorithm: DigestAlgorithm;
  username: string;
  password: string;
  realm: string;
  nonce: string;
  method: string;
  uri: string;
  qop?: 'auth' | 'auth-int';
  /** Required with qop and with the -sess algorithms. */
  cnonce?: string;
  /** 8 hex digits, e.g. "00000001". */
  nc?: string;
  /** For qop=auth-int. */
  body?: string;
}

/** The `response` value of RFC 7616 section 3.4.1 (and RFC 2069 when there is no qop). */
export function digestResponse(input: DigestInput): string {
  const H = hashFor(input.algorithm);
  let ha1 = H(`${input.username}:${input.realm}:${input.password}`);
  if (input.algorithm.endsWith('-sess')) ha1 = H(`${ha1}:${input.nonce}:${input.cnonce ?? ''}`);
  const a2 = input.qop === 'auth-int' ? `${input.method}:${input.uri}:${H(input.body ?? '')}` : `${input.method}:${input.uri}`;
  const ha2 = H(a2);
  if (input.qop) return H(`${ha1}:${input.nonce}:${input.nc ?? '00000001'}:${input.cnonce ?? ''}:${input.qop}:${ha2}`);
  return H(`${ha1}:${input.nonce}:${ha2}`);
}

export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
}

function quote(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Answers one chosen challenge for every request that follows it: keeps the nonce count, and makes
 * the Authorization value. A new challenge (stale nonce, expired session) needs a new Authorizer.
 */
export class Authorizer {
  readonly scheme: 'basic' | 'digest';
  private nc = 0;
  private readonly cnonce: string;

  constructor(
    readonly challenge: AuthChallenge,
    private readonly credentials: Credentials,
    cnonce: string = randomBytes(16).toString('hex'),
  ) {
    this.scheme = challenge.scheme === 'basic' ? 'basic' : 'digest';
    this.cnonce = cnonce;
  }

  /** A short description for logs, e.g. "Digest SHA-256". */
  get description(): string {
    return this.scheme === 'basic' ? 'Basic' : `Digest ${digestAlgorithmOf(this.challenge) ?? '?'}`;
  }

  /** `body` is hashed only for qop=auth-int (RTSP requests carry none; an HTTP POST may). */
  authorization(method: string, uri: string, body?: string): string {
    if (this.scheme === 'basic') return basicAuthorization(this.credentials);
    const p = this.challenge.params;
    const algorithm = digestAlgorithmOf(this.challenge) ?? 'MD5';
    const realm = p['realm'] ?? '';
    const nonce = p['nonce'] ?? '';
    const qop = p['qop'] !== undefined ? pickQop(p['qop']) : undefined;
    const H = hashFor(algorithm);
    const userhash = (p['userhash'] ?? '').toLowerCase() === 'true';
    const nc = (++this.nc).toString(16).padStart(8, '0');
    const response = digestResponse({
      algorithm,
      username: this.credentials.username,
      password: this.credentials.password,
      realm,
      nonce,
      method,
      uri,
      ...(qop ? { qop, nc, cnonce: this.cnonce } : algorithm.endsWith('-sess') ? { cnonce: this.cnonce } : {}),
      ...(qop === 'auth-int' && body !== undefined ? { body } : {}),
    });
    const parts: string[] = [];
    const user = this.credentials.username;
    if (userhash) parts.push(`username=${quote(H(`${user}:${realm}`))}`);
    else if (/[^\x20-\x7e]/.test(user)) parts.push(`username*=UTF-8''${encodeURIComponent(user)}`);
    else parts.push(`username=${quote(user)}`);
    parts.push(`realm=${quote(realm)}`, `nonce=${quote(nonce)}`, `uri=${quote(uri)}`, `response=${quote(response)}`);
    // Echo the algorithm only when the camera named one: some old cameras reject an unknown field.
    if (p['algorithm'] !== undefined) parts.push(`algorithm=${p['algorithm']}`);
    if (p['opaque'] !== undefined) parts.push(`opaque=${quote(p['opaque'])}`);
    if (qop) parts.push(`qop=${qop}`, `nc=${nc}`, `cnonce=${quote(this.cnonce)}`);
    else if (algorithm.endsWith('-sess')) parts.push(`cnonce=${quote(this.cnonce)}`);
    if (userhash) parts.push('userhash=true');
    return `Digest ${parts.join(', ')}`;
  }
}

/**
 * The Authorization value answering the strongest challenge of a 401 (`WWW-Authenticate` values),
 * for a one-shot retry; undefined when none is supported.
 */
export function authorizationFor(challengeHeaders: ReadonlyArray<string>, credentials: Credentials, method: string, uri: string, body?: string): string | undefined {
  const challenge = chooseChallenge(parseChallenges(challengeHeaders));
  return challenge ? new Authorizer(challenge, credentials).authorization(method, uri, body) : undefined;
}
