/**
 * A minimal HTTP client with Basic and Digest authentication (`util/http-digest.ts`, shared with
 * the RTSP client: MD5, SHA-256, the -sess variants, qop=auth, auth-int or none). Cameras protect snapshot URLs (and sometimes the SOAP endpoint itself)
 * with HTTP authentication; Node has no built-in Digest support and `fetch` hides the 401 exchange,
 * so this does the one round trip itself. Failures are reported as `HttpTransportError` with a kind,
 * which the ONVIF layer turns into a per-camera `OnvifError`.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { authorizationFor } from '../util/http-digest.js';

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
  // Digest's qop=auth-int hashes the body, so it goes along (as text; SOAP bodies are UTF-8).
  const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body.toString('utf8') : options.body;
  const authorization = authorizationFor(first.challenges, options.credentials, options.method ?? 'GET', `${url.pathname}${url.search}`, body);
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
