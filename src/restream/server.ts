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
import { formatHost, isLoopback, normalizeAddress, withCredentials } from '../util/address.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { refusalLog } from '../util/summary-log.js';
import { RtspDigestAuthenticator, type RestreamCredentials } from './auth.js';
import { ClientConnection, type ConnectionHost } from './connection.js';
import { SERVER_NAME } from './protocol.js';
import type { SessionStats } from './session.js';
import { DEFAULT_RESTREAM_LIMITS, type RestreamLimits, type RestreamSource } from './types.js';
import { UdpPair } from './udp.js';

export type { RestreamCredentials } from './auth.js';
export type { SessionStats as RestreamSessionStats } from './session.js';
export { DEFAULT_RESTREAM_LIMITS, type RestreamLimits, type RestreamSource } from './types.js';

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

class RestreamServerImpl implements RestreamServer, ConnectionHost {
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

  get requireAuthOnLoopback(): boolean {
    return this.options.requireAuthOnLoopback === true;
  }

  getSource(id: string): RestreamSource | undefined {
    return this.options.getSource(id);
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
    const url = new URL(`rtsp://${formatHost(host)}:${this.boundPort}/${encodeURIComponent(cameraId)}`);
    const credentials = options?.withCredentials ? this.options.credentials : undefined;
    return withCredentials(url, credentials?.username, credentials?.password);
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
