import net from 'node:net';
import type { Logger } from '../util/logger.js';
import { normalizeAddress } from '../util/address.js';
import { Authorizer, chooseChallenge, isStale, parseChallenges, type Credentials } from '../util/http-digest.js';
import { describeSocketError, RtspError, type RtspErrorFactory } from './errors.js';
import type { RtspHeaders } from './headers.js';
import { RtspStreamParser, StreamParseError, type ParsedRequest, type StreamItem, type StreamParserLimits } from './stream-parser.js';
import type { RtspTarget } from './url.js';

/**
 * One TCP control connection to a camera: sends requests, matches answers by CSeq, answers the
 * server's own requests, handles 401 challenges (including stale nonces) and hands interleaved
 * frames to the owner. Every wait is bounded by a timeout.
 */

export interface RtspResponse {
  status: number;
  reason: string;
  headers: RtspHeaders;
  body: Buffer;
}

export interface RtspConnectionOptions {
  target: RtspTarget;
  errors: RtspErrorFactory;
  logger: Logger;
  credentials?: Credentials;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  userAgent: string;
  limits?: Partial<StreamParserLimits>;
  /** Interleaved RTP/RTCP frames. */
  onInterleaved?: (channel: number, data: Buffer) => void;
  /** The connection ended without `close()` being called: camera hung up, socket error, garbage. */
  onLost?: (error: RtspError) => void;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Do not retry on 401 (TEARDOWN on the way out). */
  noAuthRetry?: boolean;
}

interface Pending {
  cseq: number;
  method: string;
  resolve: (r: RtspResponse) => void;
  reject: (e: RtspError) => void;
  timer: NodeJS.Timeout;
}

/** A stale nonce may be renewed this many times in a row for one request before we call it a loop. */
const MAX_STALE_RETRIES = 3;

export class RtspConnection {
  private readonly socket: net.Socket;
  private readonly parser: RtspStreamParser;
  private readonly pending = new Map<number, Pending>();
  private cseq = 0;
  private authorizer: Authorizer | undefined;
  private ended: RtspError | undefined;
  private closedByUs = false;
  private warnedMissingCseq = false;
  /** Reading in bursts (`readInBursts`): the socket is paused between them, unless an answer is awaited. */
  private bursts = false;

  private constructor(
    private readonly options: RtspConnectionOptions,
    socket: net.Socket,
  ) {
    this.socket = socket;
    this.parser = new RtspStreamParser(options.limits);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const { code, text } = describeSocketError(err);
      this.end(options.errors.create(code, text, { cause: err }));
    });
    socket.on('close', () => this.end(options.errors.create('transport', 'the camera closed the connection')));
  }

  /** Connects, bounded by `connectTimeoutMs` and the signal. */
  static open(options: RtspConnectionOptions, signal?: AbortSignal): Promise<RtspConnection> {
    const { target, errors } = options;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(errors.create('aborted', 'connecting was aborted'));
        return;
      }
      // A paused socket (`readInBursts`) must stop reading at once and leave the camera's packets
      // in the kernel; with the default high-water mark Node would go on reading 16 KiB into the
      // stream first, one read per packet. Flowing, it passes each read on without buffering anyway.
      // (Node's Socket takes every stream option; @types/node lists only the socket's own.)
      const socketOptions: net.NetConnectOpts & { readableHighWaterMark: number } = { host: target.hostname, port: target.port, readableHighWaterMark: 1024 };
      const socket = net.connect(socketOptions);
      let settled = false;
      const finish = (err?: RtspError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        socket.removeListener('error', onError);
        socket.removeListener('connect', onConnect);
        if (err) {
          socket.destroy();
          reject(err);
          return;
        }
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 10_000);
        resolve(new RtspConnection(options, socket));
      };
      const onAbort = (): void => finish(errors.create('aborted', 'connecting was aborted'));
      const onError = (err: NodeJS.ErrnoException): void => {
        const { code, text } = describeSocketError(err);
        finish(errors.create(code, text, { cause: err }));
      };
      const onConnect = (): void => finish();
      const timer = setTimeout(
        () => finish(errors.create('timeout', `TCP connect to port ${target.port} timed out after ${seconds(options.connectTimeoutMs)}`)),
        options.connectTimeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('error', onError);
      socket.once('connect', onConnect);
    });
  }

  get alive(): boolean {
    return this.ended === undefined;
  }

  /** The camera's address as connected (IPv4-mapped IPv6 unwrapped), for filtering UDP. */
  get remoteAddress(): string | undefined {
    return normalizeAddress(this.socket.remoteAddress);
  }

  get localAddress(): string | undefined {
    return normalizeAddress(this.socket.localAddress);
  }

  /** The authentication in use, for logs ("Digest MD5"), once the camera asked for one. */
  get authDescription(): string | undefined {
    return this.authorizer?.description;
  }

  /**
   * Sends a request and resolves with the final answer, whatever its status, except 401: that is
   * answered with the credentials (once, plus stale-nonce renewals) and then becomes an 'auth' error.
   */
  async request(method: string, url: string, opts: RequestOptions = {}): Promise<RtspResponse> {
    const { errors } = this.options;
    let authTried = false;
    let staleRetries = 0;
    for (;;) {
      const headers: Record<string, string> = { ...opts.headers };
      if (this.authorizer) headers['Authorization'] = this.authorizer.authorization(method, url);
      const response = await this.send(method, url, headers, opts.timeoutMs ?? this.options.requestTimeoutMs);
      if (response.status !== 401 || opts.noAuthRetry) return response;

      const credentials = this.options.credentials;
      const challenges = parseChallenges(response.headers.getAll('www-authenticate'));
      if (!credentials) {
        throw errors.create('auth', `${method} answered 401: the camera requires a user name and password, and none is configured`, {
          status: 401,
          method,
        });
      }
      const challenge = chooseChallenge(challenges);
      if (!challenge) {
        const offered = challenges.map((c) => c.scheme).join(', ') || 'no challenge at all';
        throw errors.create('auth', `${method} answered 401 with an authentication method this client does not support (${offered})`, {
          status: 401,
          method,
        });
      }
      if (this.authorizer && isStale(challenge) && challenge.scheme === 'digest') {
        // The password was right; only the nonce expired. Not a failure.
        if (++staleRetries > MAX_STALE_RETRIES) {
          throw errors.create('auth', `${method}: the camera keeps declaring the nonce stale`, { status: 401, method });
        }
        this.options.logger.debug(`${method}: nonce stale, retrying with the new one`);
        this.authorizer = new Authorizer(challenge, credentials);
        continue;
      }
      if (authTried) {
        throw errors.create('auth', `${method} answered 401 again after authenticating (${this.authorizer?.description ?? '?'}): wrong user name or password`, {
          status: 401,
          method,
        });
      }
      authTried = true;
      this.authorizer = new Authorizer(challenge, credentials);
      this.options.logger.debug(`authenticating with ${this.authorizer.description}`);
    }
  }

  private send(method: string, url: string, headers: Record<string, string>, timeoutMs: number): Promise<RtspResponse> {
    const { errors } = this.options;
    if (this.ended) return Promise.reject(this.ended);
    // A CR or LF in the request line or a header would let a URL inject headers.
    const unsafe = (s: string): boolean => /[\r\n]/.test(s);
    if (unsafe(url) || /\s/.test(url) || Object.entries(headers).some(([k, v]) => unsafe(k) || unsafe(v))) {
      return Promise.reject(errors.create('protocol', `refusing to send ${method}: the URL or a header contains whitespace or line breaks`, { method }));
    }
    const cseq = ++this.cseq;
    let text = `${method} ${url} RTSP/1.0\r\nCSeq: ${cseq}\r\nUser-Agent: ${this.options.userAgent}\r\n`;
    for (const [k, v] of Object.entries(headers)) text += `${k}: ${v}\r\n`;
    text += '\r\n';
    return new Promise<RtspResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(cseq);
        reject(errors.create('timeout', `${method} got no answer within ${seconds(timeoutMs)}`, { method }));
      }, timeoutMs);
      this.pending.set(cseq, { cseq, method, resolve, reject, timer });
      this.options.logger.debug(`> ${method} ${url} (CSeq ${cseq})`);
      this.socket.write(text);
      if (this.bursts) this.socket.resume(); // the answer must not wait for the next burst
    });
  }

  /**
   * While nobody watches, media interleaved in this connection need not wake the process for every
   * read: `readInBursts(true)` pauses the socket, and each `readBurst()` takes what the kernel holds
   * then pauses again (the camera's packets wait in the socket buffer, as a UDP camera's wait in
   * the native receiver). `false` reads as data comes again. An awaited answer is read at once.
   */
  readInBursts(on: boolean): void {
    if (this.ended || this.bursts === on) return;
    this.bursts = on;
    if (on) this.socket.pause();
    else this.socket.resume();
  }

  /** Reads what the socket holds now, then (after this loop turn's reads) pauses again. */
  readBurst(): void {
    if (!this.bursts || this.ended) return;
    this.socket.resume();
    setImmediate(() => {
      if (this.bursts && !this.ended && this.pending.size === 0) this.socket.pause();
    });
  }

  /** Writes one interleaved frame; false when the connection is gone. */
  sendInterleaved(channel: number, data: Buffer): boolean {
    if (this.ended || data.length > 65535) return false;
    const header = Buffer.from([0x24, channel & 0xff, (data.length >> 8) & 0xff, data.length & 0xff]);
    this.socket.write(Buffer.concat([header, data]));
    return true;
  }

  /** Closes without reporting to `onLost`; pending requests fail. */
  close(): void {
    this.closedByUs = true;
    this.end(this.options.errors.create('transport', 'the connection was closed'));
  }

  /** Ends the connection with a given error (e.g. aborted); reported to pending requests, not to `onLost`. */
  destroy(error: RtspError): void {
    this.closedByUs = true;
    this.end(error);
  }

  private end(error: RtspError): void {
    if (this.ended) return;
    this.ended = error;
    this.socket.destroy();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(
        error.code === 'transport' && !this.closedByUs
          ? this.options.errors.create('transport', `the camera closed the connection while waiting for the answer to ${p.method}`, {
              method: p.method,
            })
          : error,
      );
    }
    this.pending.clear();
    if (!this.closedByUs) this.options.onLost?.(error);
  }

  private onData(chunk: Buffer): void {
    try {
      this.parser.push(chunk, (item) => this.onItem(item));
    } catch (err) {
      if (err instanceof StreamParseError) {
        this.end(this.options.errors.create('protocol', err.message, { cause: err }));
        return;
      }
      if (err instanceof RtspError) {
        this.end(err);
        return;
      }
      throw err;
    }
  }

  private onItem(item: StreamItem): void {
    if (item.kind === 'interleaved') {
      this.options.onInterleaved?.(item.channel, item.data);
      return;
    }
    if (item.kind === 'request') {
      this.answerServerRequest(item);
      return;
    }
    const cseqText = item.headers.get('cseq')?.trim();
    let pending: Pending | undefined;
    if (cseqText !== undefined && /^\d+$/.test(cseqText)) {
      pending = this.pending.get(Number(cseqText));
      if (!pending) {
        // Typically the late answer to a request that already timed out.
        this.options.logger.debug(`ignoring an answer with unknown CSeq ${cseqText} (${item.status})`);
        return;
      }
    } else {
      // Some cameras drop or mangle CSeq; answers still come in order, so take the oldest request.
      pending = this.pending.values().next().value;
      if (!pending) {
        this.options.logger.debug(`ignoring an unsolicited answer without CSeq (${item.status})`);
        return;
      }
      if (!this.warnedMissingCseq) {
        this.warnedMissingCseq = true;
        this.options.logger.debug('the camera answers without a usable CSeq; matching answers in order');
      }
    }
    this.pending.delete(pending.cseq);
    clearTimeout(pending.timer);
    this.options.logger.debug(`< ${item.status} ${item.reason} (${pending.method}, CSeq ${pending.cseq})`);
    pending.resolve({ status: item.status, reason: item.reason, headers: item.headers, body: item.body });
  }

  /** Cameras may ask us things (OPTIONS as a ping, GET_PARAMETER, ANNOUNCE); answer so they do not hang. */
  private answerServerRequest(req: ParsedRequest): void {
    const cseq = req.headers.get('cseq')?.trim() ?? '0';
    const ok = req.method === 'OPTIONS' || req.method === 'GET_PARAMETER' || req.method === 'SET_PARAMETER';
    this.options.logger.debug(`the camera sent a ${req.method} request; answering ${ok ? 200 : 501}`);
    if (this.ended || !/^\d+$/.test(cseq)) return;
    this.socket.write(`RTSP/1.0 ${ok ? '200 OK' : '501 Not Implemented'}\r\nCSeq: ${cseq}\r\nUser-Agent: ${this.options.userAgent}\r\n\r\n`);
  }
}

export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
