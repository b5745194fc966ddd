/**
 * Accepts `/signal` WebSocket upgrades: path, Origin, capacity and `authorize` are checked before the
 * handshake completes, then the socket goes to the signalling handler (src/webrtc). The gateway keeps
 * every open socket with its principal, so access control can close the sessions of a revoked link,
 * and it pings them so that sockets of vanished phones do not linger.
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../util/logger.js';
import type { ClientAddressOf } from '../access/client-address.js';
import type { OriginPolicy } from './origin-policy.js';
import type { Authorize, Principal, SignallingHandler } from './types.js';

export const SIGNAL_PATH = '/signal';

/** Close code the page understands as "your access ended; do not retry" (4000-4999 are ours). */
export const CLOSE_ACCESS_REVOKED = 4001;

export interface GatewayOptions {
  handler: SignallingHandler | undefined;
  authorize: Authorize;
  origins: OriginPolicy;
  clientAddress: ClientAddressOf;
  log: Logger;
  maxPayload: number;
  maxSockets: number;
  heartbeatMs: number;
}

interface Session {
  principal: Principal;
  alive: boolean;
}

export class SignallingGateway {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<WebSocket, Session>();
  private readonly heartbeat: NodeJS.Timeout;
  /** Upgrades still being authorised count against the limit too, so a flood cannot overshoot it. */
  private pending = 0;

  constructor(private readonly options: GatewayOptions) {
    // Compression is off: SDP is small, and permessage-deflate has a history of memory blow-ups.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload, perMessageDeflate: false });
    this.heartbeat = setInterval(() => this.sweep(), options.heartbeatMs);
    this.heartbeat.unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Entry point for the HTTP server's `upgrade` event. Never throws. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (error) => this.options.log.debug(`Signalling socket error before upgrade: ${error.message}`));
    this.upgrade(req, socket, head).catch((error: unknown) => {
      this.options.log.error(`Signalling upgrade failed: ${error instanceof Error ? error.message : String(error)}`);
      reject(socket, 500, 'internal', 'Internal error');
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const pathname = (req.url ?? '').split('?')[0];
    if (pathname !== SIGNAL_PATH) return reject(socket, 404, 'not-found', 'No WebSocket endpoint here');
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return reject(socket, 400, 'bad-request', 'Only WebSocket upgrades are accepted');
    }
    if (!this.options.handler) return reject(socket, 503, 'unavailable', 'Live view is not available on this server');
    // Browsers always send Origin on WebSocket handshakes; a foreign one means another site is
    // trying to ride on this viewer's cookies.
    if (!this.options.origins.permits(req)) return reject(socket, 403, 'forbidden-origin', 'This origin is not allowed');
    if (this.sessions.size + this.pending >= this.options.maxSockets) {
      return reject(socket, 503, 'too-many-sockets', 'Too many open viewer connections');
    }
    this.pending++;
    let principal: Principal | undefined;
    try {
      principal = await this.options.authorize(req);
    } finally {
      this.pending--;
    }
    if (!principal) return reject(socket, 401, 'unauthorized', 'Sign in first');
    if (socket.destroyed) return;
    const granted = principal;
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, granted));
  }

  private accept(ws: WebSocket, req: IncomingMessage, principal: Principal): void {
    const session: Session = { principal, alive: true };
    this.sessions.set(ws, session);
    const remoteAddress = this.options.clientAddress(req);
    // Without an 'error' listener, an oversized or malformed frame would be an uncaught exception.
    ws.on('error', (error) => this.options.log.debug(`Signalling socket from ${remoteAddress}: ${error.message}`));
    ws.on('pong', () => {
      session.alive = true;
    });
    ws.on('close', () => this.sessions.delete(ws));
    try {
      this.options.handler!(ws, { principal, remoteAddress, request: req, log: this.options.log });
    } catch (error) {
      this.options.log.error(`Signalling handler failed: ${error instanceof Error ? error.message : String(error)}`);
      ws.close(1011, 'Internal error');
    }
  }

  /** Closes every socket whose principal matches; returns how many were closed. */
  disconnect(predicate: (principal: Principal) => boolean, reason = 'Access revoked'): number {
    let closed = 0;
    for (const [ws, session] of this.sessions) {
      if (!predicate(session.principal)) continue;
      ws.close(CLOSE_ACCESS_REVOKED, reason.slice(0, 120));
      // A peer that ignores the close handshake is cut off anyway.
      setTimeout(() => ws.terminate(), 1000).unref();
      closed++;
    }
    return closed;
  }

  private sweep(): void {
    for (const [ws, session] of this.sessions) {
      if (!session.alive) {
        ws.terminate();
        continue;
      }
      session.alive = false;
      try {
        ws.ping();
      } catch {
        ws.terminate();
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const ws of this.sessions.keys()) ws.close(1001, 'Server shutting down');
    const deadline = Date.now() + 1000;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.sessions.keys()) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}

/** Answers a refused upgrade with a plain HTTP response (the handshake never happened). */
function reject(socket: Duplex, status: number, code: string, message: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      (status === 401 ? 'WWW-Authenticate: Bearer realm="cameras"\r\n' : '') +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
