/**
 * The loopback re-stream: every camera's Source served as `rtsp://127.0.0.1:<port>/<camera-id>`.
 * It is the only way the plugin's own ffmpeg processes (HomeKit streams, snapshots, transcodes) read
 * video, so however many of them run, the camera still sees one session (the Source's).
 *
 * Each client attaches as one more `FrameSink` on the Source and starts at the Source's cached
 * keyframe. Transports: TCP interleaved, and UDP unicast through one shared port pair. Serving the
 * LAN (for an NVR) is opt-in and then requires Digest credentials; Basic is refused from the LAN.
 * Every input is bounded (connections, sessions, header and body sizes, request and session
 * timeouts) and malformed requests get a 4xx answer, never a crash.
 *
 * With `requireAuthOnLoopback` (what the plugin runs) loopback is not trusted either: any local
 * process or container on host networking could otherwise read every camera. The plugin's own
 * ffmpeg processes then read a URL from `issueUrl`, whose first path segment is a random token
 * valid for one connection and a few seconds: it is on ffmpeg's command line (visible in `ps`), so
 * it is consumed by the first connection that presents it and useless afterwards. Everyone else
 * needs the configured Digest credentials (Basic too, on loopback).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { RemoteInfo } from 'node:dgram';
import type { BroadcastSource, FrameSink, MediaFrame, Subscribable } from '../media/types.js';
import { formatHost, isLoopback, normalizeAddress, stripCredentials } from '../util/address.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import { refusalLog } from '../util/summary-log.js';
import { RtspDigestAuthenticator, type RestreamCredentials } from './auth.js';
import { RtspRequestParser, type RtspRequest } from './request-parser.js';
import { buildSdp, parameterSetsFromTrack, parameterSetsFromUnits, planTracks, type ParameterSets, type ServedTrack } from './sdp.js';
import { RestreamSession, type SessionStats, type SessionTransport } from './session.js';
import { UdpPair } from './udp.js';

export type { RestreamCredentials } from './auth.js';
export type { SessionStats as RestreamSessionStats } from './session.js';

/**
 * What the re-stream needs from a camera's Source; the media core's `Source` satisfies it as is.
 * Tracks are learnt while the Source connects: the server subscribes (which starts the pull) and
 * waits for the sink's `onTracks` or for `tracks` to fill in.
 */
export type RestreamSource = Pick<BroadcastSource, 'id' | 'tracks'> & Subscribable;

export interface RestreamLimits {
  /** Open RTSP connections; more are refused with 503. */
  maxConnections: number;
  /** Sessions across all connections; SETUP beyond it gets 453. */
  maxSessions: number;
  maxHeaderBytes: number;
  maxBodyBytes: number;
  /** A request (or interleaved frame) must arrive whole within this time once it has started. */
  requestTimeoutMs: number;
  /** A session with no request or RTCP from its client for this long is reaped. */
  sessionTimeoutMs: number;
  /** A connection with no session that stays silent this long is closed. */
  idleConnectionTimeoutMs: number;
  /** How long DESCRIBE waits for an idle or reconnecting camera to deliver its tracks. */
  readyTimeoutMs: number;
  /** How long DESCRIBE waits for a first keyframe when the camera's SDP lacks parameter sets. */
  keyframeWaitMs: number;
  /** Per client: bytes waiting to be sent above which frames are dropped to the next keyframe. */
  maxQueuedBytes: number;
  senderReportIntervalMs: number;
  /** How long the GOP burst at PLAY may exceed `maxQueuedBytes` (it is bounded by the Source's GOP cache). */
  burstGraceMs: number;
}

export const DEFAULT_RESTREAM_LIMITS: Readonly<RestreamLimits> = {
  maxConnections: 64,
  maxSessions: 64,
  maxHeaderBytes: 8 * 1024,
  maxBodyBytes: 4 * 1024,
  requestTimeoutMs: 10_000,
  sessionTimeoutMs: 60_000,
  idleConnectionTimeoutMs: 60_000,
  readyTimeoutMs: 15_000,
  keyframeWaitMs: 5_000,
  maxQueuedBytes: 2 * 1024 * 1024,
  senderReportIntervalMs: 1_000,
  burstGraceMs: 5_000,
};

export interface RestreamServerOptions {
  getSource(id: string): RestreamSource | undefined;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1, or 0.0.0.0 with `lanAccess`. Without `lanAccess` it must be a loopback address. */
  host?: string;
  /** Serve the LAN (e.g. an NVR). Off by default; requires `credentials`. */
  lanAccess?: boolean;
  /** Required from LAN clients (Digest only); from loopback clients only with `requireAuthOnLoopback`. */
  credentials?: RestreamCredentials;
  /** Loopback clients need a token from `issueUrl` or the credentials too (without credentials: a token). */
  requireAuthOnLoopback?: boolean;
  /** How long an issued token waits for its connection (default `TOKEN_TTL_MS`). */
  tokenTtlMs?: number;
  /** Offer UDP transport (default true); TCP interleaved is always offered. */
  udp?: boolean;
  limits?: Partial<RestreamLimits>;
  log?: Logger;
}

export interface RestreamStats {
  connections: number;
  sessions: SessionStats[];
}

export interface RestreamServer {
  readonly host: string;
  readonly port: number;
  /** The URL a local consumer (the plugin's ffmpeg) reads a camera from; credentials only when asked. */
  url(cameraId: string, options?: { withCredentials?: boolean }): string;
  /**
   * A loopback URL for one of the plugin's own processes: it carries a fresh single-use token, so
   * it works for exactly one connection, opened within `tokenTtlMs`. Call it per process start.
   */
  issueUrl(cameraId: string): string;
  stats(): RestreamStats;
  close(): Promise<void>;
}

/**
 * A token only has to survive from ffmpeg's spawn to its first request (well under a second, a few
 * seconds on a loaded Raspberry Pi); the first connection that presents it consumes it, so the TTL
 * only bounds tokens of processes that never connected.
 */
export const TOKEN_TTL_MS = 10_000;
const MAX_TOKENS = 256;
const TOKEN_SEGMENT = /^tk_[A-Za-z0-9_-]{22}$/;

const PUBLIC_METHODS = 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER';
const SERVER_NAME = 'homebridge-webrtc-cameras';
const MAX_QUEUED_REQUESTS = 16;
const HOLD_TIMEOUT_MS = 30_000;
const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Request Entity Too Large', 451: 'Parameter Not Understood',
  453: 'Not Enough Bandwidth', 454: 'Session Not Found', 455: 'Method Not Valid in This State',
  459: 'Aggregate Operation Not Allowed', 461: 'Unsupported Transport', 500: 'Internal Server Error',
  501: 'Not Implemented', 503: 'Service Unavailable', 505: 'RTSP Version Not Supported',
};

export async function createRestreamServer(options: RestreamServerOptions): Promise<RestreamServer> {
  const lanAccess = options.lanAccess ?? false;
  const host = options.host ?? (lanAccess ? '0.0.0.0' : '127.0.0.1');
  if (!lanAccess && !isLoopback(host)) {
    throw new Error(`re-stream host ${host} is not a loopback address; set lanAccess to serve the LAN`);
  }
  if (lanAccess && (!options.credentials?.username || !options.credentials.password)) {
    throw new Error('re-stream LAN access requires credentials (username and password)');
  }
  const server = new RestreamServerImpl(options, host, lanAccess);
  await server.start(options.port ?? 0);
  return server;
}

/** Where a request points: a camera, and a track when the URL ends in `trackID=N`. */
interface Target {
  cameraId: string;
  /** The single-use token segment in front of the camera id, if any. */
  token?: string;
  trackId?: number;
  /** The request URL without credentials, query or trailing slash, for Content-Base. */
  base: string;
}

/** A DESCRIBE's preparation: the plan offered, and a subscription that keeps the Source pulling until PLAY. */
interface Prepared {
  source: RestreamSource;
  hold: HoldSink | undefined;
  plan: ServedTrack[];
  videoSets: ParameterSets | undefined;
  heldSince: number;
}

/**
 * A sink that only watches: it keeps the Source pulling between DESCRIBE and PLAY, and remembers the
 * parameter sets of the newest keyframe so the SDP carries the camera's current SPS/PPS.
 */
class HoldSink implements FrameSink {
  videoSets: ParameterSets | undefined;
  private readonly listeners = new Set<() => void>();
  subscription: { unsubscribe(): void } | undefined;

  write(frame: MediaFrame): boolean {
    if (frame.kind === 'video' && frame.keyframe) {
      const sets = parameterSetsFromUnits(frame.codec, frame.units);
      if (sets) {
        this.videoSets = sets;
        this.notify();
      }
    }
    return true;
  }

  onTracks(): void {
    this.notify();
  }

  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  release(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    this.listeners.clear();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

class HttpishError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Array<[string, string]> = []) {
    super(message);
  }
}

class RestreamServerImpl implements RestreamServer {
  readonly limits: RestreamLimits;
  readonly log: Logger;
  readonly auth: RtspDigestAuthenticator | undefined;
  private readonly net: Server;
  private readonly connections = new Set<ClientConnection>();
  private readonly tokens = new Map<string, { cameraId: string; expiresAt: number }>();
  private udp: UdpPair | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private boundPort = 0;
  private closing = false;

  constructor(readonly options: RestreamServerOptions, readonly host: string, readonly lanAccess: boolean) {
    this.limits = { ...DEFAULT_RESTREAM_LIMITS, ...options.limits };
    this.log = options.log ?? silentLogger;
    this.auth = options.credentials ? new RtspDigestAuthenticator(options.credentials) : undefined;
    this.net = createServer((socket) => this.accept(socket));
    this.net.maxConnections = this.limits.maxConnections + 1; // the +1 lets us answer 503 before closing
  }

  get port(): number {
    return this.boundPort;
  }

  get udpPorts(): UdpPair | undefined {
    return this.udp;
  }

  async start(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.net.once('error', reject);
      this.net.listen(port, this.host, () => {
        this.net.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.net.address() as AddressInfo).port;
    this.net.on('error', (error) => this.log.error(`re-stream server error: ${error.message}`));
    if (this.options.udp !== false) {
      try {
        this.udp = await UdpPair.bind(this.host, { onPacket: (from, rtcp) => this.onUdp(from, rtcp) });
      } catch (error) {
        this.log.warn(`re-stream UDP disabled, clients will use TCP: ${(error as Error).message}`);
      }
    }
    const tick = Math.max(50, Math.min(1000, this.limits.requestTimeoutMs / 4, this.limits.sessionTimeoutMs / 4));
    this.reaper = setInterval(() => this.reap(), tick);
    this.reaper.unref();
    this.log.info(`re-stream serving cameras at rtsp://${formatHost(this.host)}:${this.boundPort}/<camera-id>` +
      (this.lanAccess ? ' (LAN access on, Digest credentials required)' : ''));
  }

  url(cameraId: string, options?: { withCredentials?: boolean }): string {
    const host = this.lanAccess || this.host === '0.0.0.0' ? '127.0.0.1' : this.host === '::' ? '::1' : this.host;
    const credentials = options?.withCredentials && this.options.credentials
      ? `${encodeURIComponent(this.options.credentials.username)}:${encodeURIComponent(this.options.credentials.password)}@`
      : '';
    return `rtsp://${credentials}${formatHost(host)}:${this.boundPort}/${encodeURIComponent(cameraId)}`;
  }

  issueUrl(cameraId: string): string {
    const now = performance.now();
    for (const [token, entry] of this.tokens) if (entry.expiresAt <= now) this.tokens.delete(token);
    // Bounded: the oldest unused token goes first (a process that never connected).
    while (this.tokens.size >= MAX_TOKENS) this.tokens.delete(this.tokens.keys().next().value!);
    const token = `tk_${randomBytes(16).toString('base64url')}`;
    this.tokens.set(token, { cameraId, expiresAt: now + (this.options.tokenTtlMs ?? TOKEN_TTL_MS) });
    const host = this.lanAccess || this.host === '0.0.0.0' ? '127.0.0.1' : this.host === '::' ? '::1' : this.host;
    return `rtsp://${formatHost(host)}:${this.boundPort}/${token}/${encodeURIComponent(cameraId)}`;
  }

  /** Consumes `token` when it is live and names `cameraId`; true when the connection may proceed. */
  redeem(token: string, cameraId: string): boolean {
    const entry = this.tokens.get(token);
    if (!entry) return false;
    this.tokens.delete(token);
    return entry.expiresAt > performance.now() && entry.cameraId === cameraId;
  }

  stats(): RestreamStats {
    const sessions: SessionStats[] = [];
    for (const connection of this.connections) for (const session of connection.sessions.values()) sessions.push(session.stats());
    return { connections: this.connections.size, sessions };
  }

  sessionCount(): number {
    let count = 0;
    for (const connection of this.connections) count += connection.sessions.size;
    return count;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.reaper) clearInterval(this.reaper);
    for (const connection of [...this.connections]) connection.destroy('server closing');
    this.udp?.close();
    await new Promise<void>((resolve) => this.net.close(() => resolve()));
  }

  forget(connection: ClientConnection): void {
    this.connections.delete(connection);
  }

  private accept(socket: Socket): void {
    const remote = socket.remoteAddress ?? '';
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (!this.lanAccess && !isLoopback(remote)) {
      // Belt and braces: the listener is bound to loopback without lanAccess anyway.
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.limits.maxConnections) {
      refusalLog(this.log).note('warn', 're-stream: clients refused at the connection limit', `re-stream refused a client from ${remote}: ${this.limits.maxConnections} connections already open`);
      socket.on('error', () => undefined);
      socket.end(`RTSP/1.0 503 Service Unavailable\r\nServer: ${SERVER_NAME}\r\nContent-Length: 0\r\n\r\n`);
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    this.connections.add(new ClientConnection(this, socket));
  }

  private onUdp(from: RemoteInfo, _rtcp: boolean): void {
    for (const connection of this.connections) {
      for (const session of connection.sessions.values()) {
        if (session.ownsUdpPeer(normalizeAddress(from.address), from.port)) session.touch();
      }
    }
  }

  private reap(): void {
    const now = performance.now();
    for (const connection of [...this.connections]) connection.reap(now);
  }
}

class ClientConnection {
  readonly sessions = new Map<string, RestreamSession>();
  private readonly prepared = new Map<string, Prepared>();
  private readonly parser: RtspRequestParser;
  private readonly remoteAddress: string;
  private readonly remote: string;
  private readonly loopback: boolean;
  private readonly log: Logger;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private lastActivity = performance.now();
  private partialSince: number | undefined;
  private closed = false;
  private authWarned = false;
  /** The camera a single-use token opened this connection for; it may read only that camera. */
  private tokenCamera: string | undefined;

  constructor(private readonly server: RestreamServerImpl, private readonly socket: Socket) {
    this.remoteAddress = normalizeAddress(socket.remoteAddress ?? '');
    this.remote = `${formatHost(this.remoteAddress)}:${socket.remotePort ?? 0}`;
    this.loopback = isLoopback(this.remoteAddress);
    this.log = server.log;
    this.parser = new RtspRequestParser({
      maxHeaderBytes: server.limits.maxHeaderBytes,
      maxBodyBytes: server.limits.maxBodyBytes,
      maxHeaderLines: 64,
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.log.debug(`re-stream client ${this.remote}: ${error.message}`));
    socket.on('close', () => this.destroy());
    this.log.debug(`re-stream client ${this.remote} connected`);
  }

  /**
   * Ends everything this connection holds at once. `graceful` lets a last response (400, 408)
   * reach the client: the socket is half-closed and destroyed a moment later.
   */
  destroy(reason?: string, graceful = false): void {
    if (this.closed) return;
    this.closed = true;
    for (const session of this.sessions.values()) this.endSession(session, reason ?? 'client disconnected');
    for (const prepared of this.prepared.values()) prepared.hold?.release();
    this.prepared.clear();
    if (graceful) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 1000).unref();
    } else {
      this.socket.destroy();
    }
    this.server.forget(this);
    this.log.debug(`re-stream client ${this.remote} disconnected${reason ? `: ${reason}` : ''}`);
  }

  reap(now: number): void {
    if (this.closed) return;
    const limits = this.server.limits;
    if (this.partialSince !== undefined && now - this.partialSince > limits.requestTimeoutMs) {
      this.sendRaw(408, undefined, []);
      this.destroy('request timed out', true);
      return;
    }
    for (const session of [...this.sessions.values()]) {
      const idle = Math.min(now - session.lastActivity, now - this.lastActivity);
      if (idle > limits.sessionTimeoutMs) {
        this.log.info(`re-stream session ${session.id} for ${session.cameraId} timed out (no keep-alive from ${this.remote})`);
        // A client silent for a whole session timeout is gone; its connection goes with it.
        this.destroy('session timed out');
        return;
      }
    }
    for (const [cameraId, prepared] of this.prepared) {
      if (prepared.hold && now - prepared.heldSince > HOLD_TIMEOUT_MS) {
        prepared.hold.release();
        prepared.hold = undefined;
        this.log.debug(`re-stream client ${this.remote} described ${cameraId} but never played it`);
      }
    }
    if (this.sessions.size === 0 && this.queued === 0 && now - this.lastActivity > limits.idleConnectionTimeoutMs) {
      this.destroy('idle');
    }
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActivity = performance.now();
    for (const session of this.sessions.values()) session.touch();
    for (const message of this.parser.push(chunk)) {
      if (message.type === 'interleaved') continue; // RTCP receiver reports: liveness only
      if (message.type === 'error') {
        this.log.debug(`re-stream client ${this.remote} sent a malformed request: ${message.reason}`);
        this.sendRaw(message.status, message.cseq, []);
        // The byte stream cannot be resynchronised after a framing error; finish politely.
        this.destroy('malformed request', true);
        return;
      }
      if (this.queued >= MAX_QUEUED_REQUESTS) {
        this.destroy('too many pipelined requests');
        return;
      }
      this.queued++;
      const request = message.request;
      this.queue = this.queue
        .then(() => (this.closed ? undefined : this.handle(request)))
        .catch((error: unknown) => this.fail(request, error))
        .finally(() => {
          this.queued--;
        });
    }
    this.partialSince = this.parser.pendingBytes > 0 ? (this.partialSince ?? performance.now()) : undefined;
  }

  private fail(request: RtspRequest, error: unknown): void {
    if (this.closed) return;
    const cseq = request.headers.get('cseq');
    if (error instanceof HttpishError) {
      this.sendRaw(error.status, cseq, error.headers);
      return;
    }
    this.log.error(`re-stream: ${request.method} from ${this.remote} failed: ${(error as Error).message ?? String(error)}`);
    this.sendRaw(500, cseq, []);
  }

  private async handle(request: RtspRequest): Promise<void> {
    const { method } = request;
    this.log.debug(`re-stream ${this.remote} → ${method} ${redactUrl(request.uri)}`);
    if (method === 'OPTIONS') {
      this.reply(request, 200, [['Public', PUBLIC_METHODS]]);
      return;
    }
    if (!['DESCRIBE', 'SETUP', 'PLAY', 'PAUSE', 'TEARDOWN', 'GET_PARAMETER', 'SET_PARAMETER'].includes(method)) {
      const known = ['ANNOUNCE', 'RECORD', 'REDIRECT'].includes(method);
      this.reply(request, known ? 405 : 501, [['Allow', PUBLIC_METHODS]]);
      return;
    }
    if (!this.authorize(request)) return;
    switch (method) {
      case 'DESCRIBE': return this.describe(request);
      case 'SETUP': return this.setup(request);
      case 'PLAY': return this.play(request);
      case 'PAUSE': return this.pause(request);
      case 'TEARDOWN': return this.teardown(request);
      default: return this.parameter(request);
    }
  }

  /** Answers 401 and returns false unless the request may proceed. */
  private authorize(request: RtspRequest): boolean {
    const target = tryParseTarget(request.uri);
    if (this.tokenCamera !== undefined) {
      // Opened by a token: this connection reads its own camera and nothing else.
      if (!target || target.cameraId === this.tokenCamera) return true;
      this.reply(request, 403, []);
      return false;
    }
    if (target?.token !== undefined) {
      if (this.server.redeem(target.token, target.cameraId)) {
        this.tokenCamera = target.cameraId;
        return true;
      }
      refusalLog(this.log).note('warn', 're-stream: clients with an unknown, used or expired token refused', `re-stream client ${this.remote} gave an unknown, used or expired token`);
      this.reply(request, 401, []);
      return false;
    }
    const auth = this.server.auth;
    const requireAuth = !this.loopback || this.server.options.requireAuthOnLoopback === true;
    if (!requireAuth) return true;
    if (!auth) {
      refusalLog(this.log).note('warn', 're-stream: clients without a token refused', `re-stream client ${this.remote} refused: set restream.username and restream.password for programs other than the plugin`);
      this.reply(request, 401, []);
      return false;
    }
    // Basic sends the password in clear: acceptable on loopback, never across the LAN.
    const allowBasic = this.loopback;
    const result = auth.check(request.method, request.uri, request.headers.get('authorization'), { allowBasic });
    if (result === 'ok') return true;
    if (result === 'denied' && !this.authWarned) {
      this.authWarned = true;
      this.log.warn(`re-stream client ${this.remote} gave wrong credentials`);
    }
    const challenges = auth.challenge({ stale: result === 'stale', allowBasic });
    this.reply(request, 401, challenges.map((value): [string, string] => ['WWW-Authenticate', value]));
    return false;
  }

  private async describe(request: RtspRequest): Promise<void> {
    const target = parseTarget(request.uri);
    const prepared = await this.prepare(target.cameraId);
    const sdp = buildSdp({
      sessionId: String(Date.now()),
      name: target.cameraId,
      address: this.socket.localAddress ? normalizeAddress(this.socket.localAddress) : '127.0.0.1',
      tracks: prepared.plan,
    });
    this.reply(request, 200, [
      ['Content-Base', `${target.base}/`],
      ['Content-Type', 'application/sdp'],
    ], Buffer.from(sdp, 'utf8'));
  }

  /**
   * Subscribes a HoldSink (starting the camera pull if it is idle) and waits until the Source knows
   * its tracks and, for video without parameter sets in its SDP, until a keyframe has shown them.
   */
  private async prepare(cameraId: string): Promise<Prepared> {
    // Reuse a preparation only while its hold is on (DESCRIBE → SETUP...); later, tracks may have changed.
    const existing = this.prepared.get(cameraId);
    if (existing?.hold) return existing;
    this.prepared.delete(cameraId);
    const source = this.server.options.getSource(cameraId);
    if (!source) throw new HttpishError(404, `No camera "${cameraId}"`);
    const hold = new HoldSink();
    hold.subscription = source.subscribe(hold, { kinds: ['video'] });
    const limits = this.server.limits;
    try {
      const ready = await this.waitFor(hold, () => source.tracks.length > 0, limits.readyTimeoutMs);
      if (!ready) {
        this.log.warn(`re-stream: camera ${cameraId} did not deliver its tracks within ${limits.readyTimeoutMs} ms`);
        throw new HttpishError(503, `Camera "${cameraId}" is not available`, [['Retry-After', '5']]);
      }
      const video = source.tracks.find((t) => t.kind === 'video' && (t.codec === 'H264' || t.codec === 'H265'));
      if (video && !hold.videoSets && !parameterSetsFromTrack(video)) {
        await this.waitFor(hold, () => hold.videoSets !== undefined, limits.keyframeWaitMs);
      }
    } catch (error) {
      hold.release();
      throw error;
    }
    if (this.closed) {
      hold.release();
      throw new HttpishError(503, 'connection closed');
    }
    const plan = planTracks(source.tracks, hold.videoSets);
    if (plan.length === 0) {
      hold.release();
      this.log.warn(`re-stream: camera ${cameraId} has no track the re-stream can serve`);
      throw new HttpishError(503, `Camera "${cameraId}" has no playable track`);
    }
    const result: Prepared = { source, hold, plan, videoSets: hold.videoSets, heldSince: performance.now() };
    this.prepared.set(cameraId, result);
    return result;
  }

  /** Resolves true once `ready()` holds (checked on every Source event and on a slow poll), false on timeout. */
  private waitFor(hold: HoldSink, ready: () => boolean, timeoutMs: number): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (value: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timeout);
        clearInterval(poll);
        unlisten();
        resolve(value);
      };
      const check = (): void => {
        if (this.closed) finish(false);
        else if (ready()) finish(true);
      };
      const unlisten = hold.listen(check);
      // The poll covers Sources that fill in `tracks` without calling the sink's onTracks.
      const poll = setInterval(check, 100);
      const timeout = setTimeout(() => finish(false), timeoutMs);
    });
  }

  private async setup(request: RtspRequest): Promise<void> {
    const target = parseTarget(request.uri);
    const sessionHeader = sessionIdOf(request);
    let session = sessionHeader !== undefined ? this.sessions.get(sessionHeader) : undefined;
    if (sessionHeader !== undefined && !session) throw new HttpishError(454, 'Session not found');
    if (session && session.cameraId !== target.cameraId) {
      throw new HttpishError(459, 'A session carries one camera');
    }
    if (session?.isPlaying) throw new HttpishError(455, 'Session is already playing');
    const prepared = await this.prepare(target.cameraId);
    const served = target.trackId === undefined
      ? (prepared.plan.length === 1 ? prepared.plan[0] : undefined)
      : prepared.plan.find((t) => t.trackId === target.trackId);
    if (!served) throw new HttpishError(404, 'No such track');
    if (session?.isSetUp(served.trackId)) throw new HttpishError(455, 'Track already set up');

    const transportHeader = request.headers.get('transport') ?? '';
    const choice = chooseTransport(transportHeader, this.server.udpPorts !== undefined);
    if (!choice) {
      this.reply(request, 461, []);
      return;
    }
    if (!session) {
      if (this.server.sessionCount() >= this.server.limits.maxSessions) {
        refusalLog(this.log).note('warn', 're-stream: sessions refused at the session limit', `re-stream refused a session for ${target.cameraId}: ${this.server.limits.maxSessions} sessions already open`);
        throw new HttpishError(453, 'Too many sessions');
      }
      session = this.createSession(target.cameraId, prepared);
    }
    let transport: SessionTransport;
    let transportReply: string;
    if (choice.type === 'tcp') {
      const [rtpChannel, rtcpChannel] = this.pickChannels(choice.channels);
      transport = { type: 'tcp', rtpChannel, rtcpChannel };
      transportReply = `RTP/AVP/TCP;unicast;interleaved=${rtpChannel}-${rtcpChannel}`;
    } else {
      const udp = this.server.udpPorts!;
      transport = { type: 'udp', address: this.remoteAddress, rtpPort: choice.ports[0], rtcpPort: choice.ports[1] };
      transportReply = `RTP/AVP;unicast;client_port=${choice.ports[0]}-${choice.ports[1]};server_port=${udp.rtpPort}-${udp.rtcpPort}`;
    }
    const ssrc = session.setupTrack(served, transport, stripCredentials(request.uri));
    this.reply(request, 200, [
      ['Transport', `${transportReply};ssrc=${ssrc.toString(16).toUpperCase().padStart(8, '0')}`],
      ['Session', `${session.id};timeout=${Math.round(this.server.limits.sessionTimeoutMs / 1000)}`],
    ]);
  }

  private createSession(cameraId: string, prepared: Prepared): RestreamSession {
    const limits = this.server.limits;
    const session: RestreamSession = new RestreamSession(
      cameraId,
      this.remote,
      prepared.videoSets,
      this.socket,
      this.server.udpPorts,
      {
        maxQueuedBytes: limits.maxQueuedBytes,
        senderReportIntervalMs: limits.senderReportIntervalMs,
        burstGraceMs: limits.burstGraceMs,
        udpBytesPerTick: 64 * 1024,
      },
      this.log,
      (reason) => {
        this.log.info(`re-stream session ${session.id} for ${cameraId} ended: ${reason}`);
        this.sessions.delete(session.id);
        // The client would otherwise wait for packets that never come; closing makes it reconnect.
        this.destroy(reason);
      },
    );
    this.sessions.set(session.id, session);
    return session;
  }

  /** Interleaved channels must be unique on the connection; keep the client's choice when free. */
  private pickChannels(requested: [number, number] | undefined): [number, number] {
    const used = new Set<number>();
    for (const session of this.sessions.values()) {
      for (const t of session.transports) if (t.type === 'tcp') used.add(t.rtpChannel).add(t.rtcpChannel);
    }
    if (requested && !used.has(requested[0]) && !used.has(requested[1])) return requested;
    for (let channel = 0; channel < 254; channel += 2) {
      if (!used.has(channel) && !used.has(channel + 1)) return [channel, channel + 1];
    }
    throw new HttpishError(453, 'No interleaved channel left');
  }

  private async play(request: RtspRequest): Promise<void> {
    const session = this.requireSession(request);
    if (!session.hasTracks) throw new HttpishError(455, 'No track set up');
    const headers: Array<[string, string]> = [['Session', session.id], ['Range', 'npt=0.000-']];
    if (session.isPlaying) {
      this.reply(request, 200, headers);
      return;
    }
    const source = this.server.options.getSource(session.cameraId);
    if (!source) throw new HttpishError(404, `No camera "${session.cameraId}"`);
    const rtpInfo = session.play(source);
    // Only now drop the hold: the session's own subscription keeps the Source pulling.
    const prepared = this.prepared.get(session.cameraId);
    prepared?.hold?.release();
    if (prepared) prepared.hold = undefined;
    if (rtpInfo) headers.push(['RTP-Info', rtpInfo]);
    this.reply(request, 200, headers);
    session.startFlow();
    const kind = session.transports.some((t) => t.type === 'udp') ? 'UDP' : 'TCP';
    // Debug, not info: snapshot ffmpegs come and go every few seconds.
    this.log.debug(`re-stream: ${this.remote} is playing ${session.cameraId} over ${kind} (session ${session.id})`);
  }

  private async pause(request: RtspRequest): Promise<void> {
    const session = this.requireSession(request);
    session.pause();
    this.reply(request, 200, [['Session', session.id]]);
  }

  private async teardown(request: RtspRequest): Promise<void> {
    const session = this.requireSession(request);
    this.endSession(session, 'teardown');
    this.reply(request, 200, [['Session', session.id]]);
  }

  /** GET_PARAMETER / SET_PARAMETER: keep-alives. We expose no parameters. */
  private async parameter(request: RtspRequest): Promise<void> {
    const id = sessionIdOf(request);
    const headers: Array<[string, string]> = [];
    if (id !== undefined) {
      const session = this.requireSession(request);
      session.touch();
      headers.push(['Session', session.id]);
    }
    if (request.method === 'SET_PARAMETER' && request.body.length > 0) {
      this.reply(request, 451, headers);
      return;
    }
    this.reply(request, 200, headers);
  }

  private requireSession(request: RtspRequest): RestreamSession {
    const id = sessionIdOf(request);
    const session = id !== undefined ? this.sessions.get(id) : undefined;
    if (!session) throw new HttpishError(454, 'Session not found');
    session.touch();
    return session;
  }

  private endSession(session: RestreamSession, reason: string): void {
    const stats = session.stats();
    session.close();
    this.sessions.delete(session.id);
    this.log.debug(`re-stream session ${session.id} for ${session.cameraId} closed (${reason}): ` +
      `${stats.framesSent} frames sent, ${stats.framesDropped} dropped`);
  }

  private reply(request: RtspRequest, status: number, headers: Array<[string, string]>, body?: Buffer): void {
    this.sendRaw(status, request.headers.get('cseq'), headers, body);
  }

  private sendRaw(status: number, cseq: string | undefined, headers: Array<[string, string]>, body?: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const lines = [`RTSP/1.0 ${status} ${STATUS_TEXT[status] ?? 'Error'}`];
    if (cseq !== undefined) lines.push(`CSeq: ${cseq}`);
    lines.push(`Server: ${SERVER_NAME}`, `Date: ${new Date().toUTCString()}`);
    for (const [name, value] of headers) lines.push(`${name}: ${value}`);
    if (body && body.length > 0) lines.push(`Content-Length: ${body.length}`);
    else if (status >= 400) lines.push('Content-Length: 0');
    const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
    this.socket.write(body && body.length > 0 ? Buffer.concat([head, body]) : head);
  }
}

/** Parses a request URL into camera id and track; absolute rtsp:// URLs and bare paths both work. */
function parseTarget(uri: string): Target {
  let path: string;
  let base: string;
  if (/^rtsps?:\/\//i.test(uri)) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new HttpishError(400, 'Malformed URL');
    }
    path = url.pathname;
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    base = url.toString();
  } else if (uri.startsWith('/')) {
    path = uri.split('?')[0]!;
    base = path;
  } else {
    throw new HttpishError(400, 'Malformed URL');
  }
  const segments = path.split('/').filter((s) => s.length > 0);
  const token = segments.length > 1 && TOKEN_SEGMENT.test(segments[0]!) ? segments.shift() : undefined;
  let trackId: number | undefined;
  const last = segments[segments.length - 1];
  const track = last !== undefined ? /^trackID=(\d{1,3})$/i.exec(last) : null;
  if (track) {
    trackId = Number(track[1]);
    segments.pop();
    base = base.replace(/\/+$/, '').replace(/\/[^/]*$/, '');
  }
  base = base.replace(/\/+$/, '');
  let cameraId: string;
  try {
    cameraId = segments.map((s) => decodeURIComponent(s)).join('/');
  } catch {
    throw new HttpishError(400, 'Malformed URL');
  }
  if (cameraId.length === 0) throw new HttpishError(404, 'No camera in the URL');
  return { cameraId, base, ...(trackId !== undefined ? { trackId } : {}), ...(token !== undefined ? { token } : {}) };
}

/** `parseTarget` for the auth check, which also sees `*` and other camera-less URLs. */
function tryParseTarget(uri: string): Target | undefined {
  try {
    return parseTarget(uri);
  } catch {
    return undefined;
  }
}

type TransportChoice = { type: 'tcp'; channels?: [number, number] } | { type: 'udp'; ports: [number, number] };

/** Picks the first transport in the client's list that we serve (unicast RTP over TCP or UDP). */
export function chooseTransport(header: string, udpAvailable: boolean): TransportChoice | undefined {
  for (const spec of header.split(',')) {
    const params = spec.split(';').map((p) => p.trim()).filter((p) => p.length > 0);
    const protocol = (params[0] ?? '').toUpperCase();
    if (params.some((p) => p.toLowerCase() === 'multicast')) continue;
    const value = (name: string): string | undefined => {
      const found = params.find((p) => p.toLowerCase().startsWith(`${name}=`));
      return found?.slice(name.length + 1);
    };
    if (protocol === 'RTP/AVP/TCP') {
      const channels = parseRange(value('interleaved'), 255);
      return channels ? { type: 'tcp', channels } : { type: 'tcp' };
    }
    if ((protocol === 'RTP/AVP' || protocol === 'RTP/AVP/UDP') && udpAvailable) {
      const ports = parseRange(value('client_port'), 65535);
      if (ports && ports[0] > 0) return { type: 'udp', ports };
    }
  }
  return undefined;
}

function parseRange(text: string | undefined, max: number): [number, number] | undefined {
  if (!text) return undefined;
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!match) return undefined;
  const a = Number(match[1]);
  const b = match[2] !== undefined ? Number(match[2]) : a + 1;
  if (a > max || b > max) return undefined;
  return [a, b];
}

function sessionIdOf(request: RtspRequest): string | undefined {
  const header = request.headers.get('session');
  if (header === undefined) return undefined;
  return header.split(';')[0]!.trim();
}

