/**
 * A minimal HTTP client with Basic and Digest authentication (RFC 7616: MD5, SHA-256, the -sess
 * variants, qop=auth or none). Cameras protect snapshot URLs (and sometimes the SOAP endpoint itself)
 * with HTTP authentication; Node has no built-in Digest support and `fetch` hides the 401 exchange,
 * so this does the one round trip itself. Failures are reported as `HttpTransportError` with a kind,
 * which the ONVIF layer turns into a per-camera `OnvifError`.
 */
import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

export interface HttpCredentials {
  username: string;
  password: string;
}

export interface HttpRequestOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Deadline for the whole exchange, including an authentication round trip. */
  timeoutMs: number;
  /** Used only when the server answers 401 with a Basic or Digest challenge. */
  credentials?: HttpCredentials;
  /** Replies larger than this are cut off with an error (a camera streaming MJPEG at a snapshot URL). */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Every `WWW-Authenticate` header separately (Node joins them in `headers`). */
  challenges: string[];
  body: Buffer;
}

export type HttpTransportErrorKind = 'timeout' | 'unreachable' | 'aborted' | 'too-large' | 'invalid-url';

export class HttpTransportError extends Error {
  constructor(
    readonly kind: HttpTransportErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HttpTransportError';
  }
}

const DEFAULT_MAX_BYTES = 8 * 1024 * 1024;

/** One HTTP exchange; on a 401 challenge with credentials available, one authenticated retry. */
export async function httpRequest(options: HttpRequestOptions): Promise<HttpResponse> {
  const deadline = Date.now() + options.timeoutMs;
  let url: URL;
  try {
    url = new URL(options.url);
  } catch (error) {
    throw new HttpTransportError('invalid-url', 'invalid URL', { cause: error });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new HttpTransportError('invalid-url', `unsupported URL scheme ${url.protocol}`);
  }
  // Credentials never travel in the URL; they are only offered in answer to a challenge.
  url.username = '';
  url.password = '';

  const first = await exchange(url, options, undefined, deadline);
  if (first.status !== 401 || !options.credentials) return first;
  const authorization = authorizationFor(first.challenges, options.credentials, options.method ?? 'GET', url);
  if (!authorization) return first;
  return exchange(url, options, authorization, deadline);
}

function exchange(url: URL, options: HttpRequestOptions, authorization: string | undefined, deadline: number): Promise<HttpResponse> {
  return new Promise<HttpResponse>((resolve, reject) => {
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      reject(new HttpTransportError('timeout', `no answer within ${options.timeoutMs} ms`));
      return;
    }
    if (options.signal?.aborted) {
      reject(new HttpTransportError('aborted', 'aborted'));
      return;
    }
    const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body, 'utf8');
    const headers: Record<string, string> = { ...options.headers, connection: 'close' };
    if (body) headers['content-length'] = String(body.length);
    if (authorization) headers.authorization = authorization;
    const transport = url.protocol === 'https:' ? https : http;
    let settled = false;
    const finish = (error: Error | undefined, response?: HttpResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else if (response) resolve(response);
    };
    const req = transport.request(
      url,
      {
        method: options.method ?? 'GET',
        headers,
        // Cameras commonly use self-signed certificates; ONVIF over HTTPS is rare and the alternative
        // is no connection at all. The payload (a digest token) is not replayable anyway.
        ...(url.protocol === 'https:' ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const limit = options.maxBytes ?? DEFAULT_MAX_BYTES;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > limit) {
            finish(new HttpTransportError('too-large', `reply larger than ${limit} bytes`));
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          finish(undefined, {
            status: res.statusCode ?? 0,
            headers: res.headers,
            challenges: res.headersDistinct['www-authenticate'] ?? [],
            body: Buffer.concat(chunks),
          });
        });
        res.on('error', (error) => finish(new HttpTransportError('unreachable', `connection lost: ${error.message}`, { cause: error })));
        res.on('close', () => {
          if (!res.complete) finish(new HttpTransportError('unreachable', 'connection closed before the reply was complete'));
        });
      },
    );
    const timer = setTimeout(() => {
      finish(new HttpTransportError('timeout', `no answer within ${options.timeoutMs} ms`));
      req.destroy();
    }, remaining);
    const onAbort = (): void => {
      finish(new HttpTransportError('aborted', 'aborted'));
      req.destroy();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (error: NodeJS.ErrnoException) => {
      const code = error.code ? ` (${error.code})` : '';
      finish(new HttpTransportError('unreachable', `${error.message.split('\n')[0] ?? 'connection failed'}${code}`, { cause: error }));
    });
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------------
// Authentication

interface Challenge {
  scheme: string;
  params: Map<string, string>;
}

/** Parses `Digest realm="x", nonce="y", qop="auth,auth-int"` (and Basic) challenges, several per header. */
export function parseChallenges(headers: readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  const isTokenChar = (ch: string | undefined): boolean => ch !== undefined && /[A-Za-z0-9!#$%&'*+.^_`|~-]/.test(ch);
  for (const header of headers) {
    let current: Challenge | undefined;
    let i = 0;
    while (i < header.length) {
      while (i < header.length && (header[i] === ' ' || header[i] === ',' || header[i] === '\t')) i++;
      const start = i;
      while (isTokenChar(header[i])) i++;
      if (i === start) {
        i++; // an unexpected character: skip it rather than loop forever
        continue;
      }
      const token = header.slice(start, i);
      let j = i;
      while (header[j] === ' ' || header[j] === '\t') j++;
      if (header[j] !== '=') {
        current = { scheme: token.toLowerCase(), params: new Map() };
        out.push(current);
        continue;
      }
      i = j + 1;
      while (header[i] === ' ' || header[i] === '\t') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < header.length) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const valueStart = i;
        while (i < header.length && header[i] !== ',') i++;
        value = header.slice(valueStart, i).trim();
      }
      current?.params.set(token.toLowerCase(), value);
    }
  }
  return out;
}

function hashHex(algorithm: string, value: string): string {
  return createHash(algorithm).update(value, 'utf8').digest('hex');
}

/** Builds the Authorization header answering the strongest challenge we support, or undefined. */
export function authorizationFor(challengeHeaders: readonly string[], credentials: HttpCredentials, method: string, url: URL): string | undefined {
  const challenges = parseChallenges(challengeHeaders);
  const digest = challenges.find((c) => c.scheme === 'digest' && /^(md5|sha-256)(-sess)?$/i.test(c.params.get('algorithm') ?? 'MD5'));
  if (digest) return digestAuthorization(digest.params, credentials, method, `${url.pathname}${url.search}`);
  if (challenges.some((c) => c.scheme === 'basic')) {
    return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
  }
  return undefined;
}

function digestAuthorization(params: Map<string, string>, credentials: HttpCredentials, method: string, uri: string): string {
  const realm = params.get('realm') ?? '';
  const nonce = params.get('nonce') ?? '';
  const opaque = params.get('opaque');
  const algorithmName = params.get('algorithm') ?? 'MD5';
  const sess = /-sess$/i.test(algorithmName);
  const hash = /^sha-256/i.test(algorithmName) ? 'sha256' : 'md5';
  const qopOffered = (params.get('qop') ?? '').split(',').map((q) => q.trim().toLowerCase());
  const qop = qopOffered.includes('auth') ? 'auth' : undefined;
  const cnonce = randomBytes(8).toString('hex');
  const nc = '00000001';

  let ha1 = hashHex(hash, `${credentials.username}:${realm}:${credentials.password}`);
  if (sess) ha1 = hashHex(hash, `${ha1}:${nonce}:${cnonce}`);
  const ha2 = hashHex(hash, `${method}:${uri}`);
  const response = qop
    ? hashHex(hash, `${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`)
    : hashHex(hash, `${ha1}:${nonce}:${ha2}`);

  const quote = (v: string): string => `"${v.replace(/(["\\])/g, '\\$1')}"`;
  const fields = [
    `username=${quote(credentials.username)}`,
    `realm=${quote(realm)}`,
    `nonce=${quote(nonce)}`,
    `uri=${quote(uri)}`,
    `algorithm=${algorithmName}`,
    `response=${quote(response)}`,
  ];
  if (qop) fields.push(`qop=${qop}`, `nc=${nc}`, `cnonce=${quote(cnonce)}`);
  if (opaque !== undefined) fields.push(`opaque=${quote(opaque)}`);
  return `Digest ${fields.join(', ')}`;
}
