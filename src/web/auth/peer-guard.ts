/**
 * Per-user and per-address limits on viewer connections, and the end of WHEP sessions whose access
 * was revoked. It wraps the handlers src/webrtc provides (the signalling handler and the WHEP
 * handler) without changing them: a signalling socket counts from acceptance to close (one socket
 * carries at most one viewer), a WHEP session from its 201 to its DELETE.
 *
 * The camera's own viewer limit (src/webrtc/viewer-limits.ts) protects the camera; these protect the
 * server from one account or one address taking every slot. Signalling sockets that never send a
 * request are closed after a short while (half-open signalling is reaped; the gateway's ping catches
 * peers that vanished).
 */
import type { WebSocket } from 'ws';
import { silentLogger, type Logger } from '../../util/logger.js';
import { refusalLog } from '../../util/summary-log.js';
import type { CallerContext, HandlerResponse, Principal, SignallingHandler, WhepHandler } from '../types.js';
import { clientKey } from '../../access/client-address.js';
import { WEB_DEFAULT_VIEWS_LIMIT } from '../../config/view-limits.js';

export interface PeerLimitSettings {
  maxPeersPerPrincipal: number;
  maxPeersPerAddress: number;
  /** A signalling socket that sends nothing for this long after opening is closed. */
  firstMessageTimeoutMs: number;
  /** How often WHEP sessions that ended on their own are looked for. */
  whepReapIntervalMs: number;
}

/** The caps the config loader fills in for empty web.maxViewsPerUser / maxViewsPerAddress, and the guard's own. */
export const DEFAULT_PEER_LIMITS: Readonly<PeerLimitSettings> = Object.freeze({
  maxPeersPerPrincipal: WEB_DEFAULT_VIEWS_LIMIT,
  maxPeersPerAddress: WEB_DEFAULT_VIEWS_LIMIT,
  firstMessageTimeoutMs: 15_000,
  whepReapIntervalMs: 60_000,
});

/** Close code for "over your connection limit" (application range; the page then waits and retries). */
export const CLOSE_TOO_MANY_PEERS = 4029;

class Counter {
  private readonly counts = new Map<string, number>();

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  add(key: string, delta: number): void {
    const next = this.get(key) + delta;
    if (next <= 0) this.counts.delete(key);
    else this.counts.set(key, next);
  }
}

interface TrackedWhep {
  handler: WhepHandler;
  cameraId: string;
  sessionId: string;
  ctx: CallerContext;
  release(): void;
}

export class PeerGuard {
  private readonly byPrincipal = new Counter();
  private readonly byAddress = new Counter();
  private readonly whepSessions = new Map<string, TrackedWhep>();
  private readonly settings: PeerLimitSettings;
  private readonly reapTimer: NodeJS.Timeout;

  constructor(
    settings: Partial<PeerLimitSettings> = {},
    private readonly log: Logger = silentLogger,
  ) {
    this.settings = { ...DEFAULT_PEER_LIMITS, ...settings };
    this.reapTimer = setInterval(() => void this.reapWhep(() => true), this.settings.whepReapIntervalMs);
    this.reapTimer.unref();
  }

  /** Takes a slot for this caller; returns its release (idempotent), or `undefined` when over a limit. */
  private acquire(ctx: CallerContext): (() => void) | undefined {
    const principal = ctx.principal.name;
    const address = clientKey(ctx.remoteAddress);
    if (this.byPrincipal.get(principal) >= this.settings.maxPeersPerPrincipal) return undefined;
    if (this.byAddress.get(address) >= this.settings.maxPeersPerAddress) return undefined;
    this.byPrincipal.add(principal, 1);
    this.byAddress.add(address, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.byPrincipal.add(principal, -1);
      this.byAddress.add(address, -1);
    };
  }

  count(ctx: Pick<CallerContext, 'principal' | 'remoteAddress'>): { principal: number; address: number } {
    return { principal: this.byPrincipal.get(ctx.principal.name), address: this.byAddress.get(clientKey(ctx.remoteAddress)) };
  }

  signalling(inner: SignallingHandler): SignallingHandler {
    return (ws: WebSocket, ctx: CallerContext) => {
      const release = this.acquire(ctx);
      if (!release) {
        refusalLog(this.log).note('info', 'Viewer connections refused over the per-user or per-address limit', `Viewer connection refused: '${ctx.principal.name}' or its address has too many open already`);
        ws.send(
          JSON.stringify({ type: 'error', code: 'too-many-viewers', message: 'You have too many camera views open at once. Close some and try again.' }),
        );
        ws.close(CLOSE_TOO_MANY_PEERS, 'Too many connections');
        return;
      }
      const idle = setTimeout(() => ws.close(1008, 'No request received'), this.settings.firstMessageTimeoutMs);
      idle.unref();
      ws.once('message', () => clearTimeout(idle));
      ws.once('close', () => {
        clearTimeout(idle);
        release();
      });
      inner(ws, ctx);
    };
  }

  whep(inner: WhepHandler): WhepHandler {
    const guarded: WhepHandler = {
      handlePost: async (cameraId, offer, ctx) => {
        let release = this.acquire(ctx);
        if (!release) {
          // Sessions that ended without a DELETE (closed tab, lost network) still hold slots: look first.
          await this.reapWhep((tracked) => tracked.ctx.principal.name === ctx.principal.name || clientKey(tracked.ctx.remoteAddress) === clientKey(ctx.remoteAddress));
          release = this.acquire(ctx);
        }
        if (!release) {
          return text(429, 'You have too many camera views open at once. Close some and try again.', { 'Retry-After': '30' });
        }
        let answer: HandlerResponse;
        try {
          answer = await inner.handlePost(cameraId, offer, ctx);
        } catch (error) {
          release();
          throw error;
        }
        const sessionId = answer.status === 201 ? /\/([^/]+)$/.exec(header(answer, 'location') ?? '')?.[1] : undefined;
        if (!sessionId) {
          release();
          return answer;
        }
        this.whepSessions.set(sessionId, { handler: inner, cameraId, sessionId, ctx, release });
        return answer;
      },
      handleDelete: async (cameraId, sessionId, ctx) => {
        const answer = await inner.handleDelete(cameraId, sessionId, ctx);
        if (answer.status >= 200 && answer.status < 300) this.untrack(sessionId);
        return answer;
      },
    };
    if (inner.handlePatch) {
      const patch = inner.handlePatch.bind(inner);
      guarded.handlePatch = (cameraId, sessionId, fragment, ctx) => patch(cameraId, sessionId, fragment, ctx);
    }
    return guarded;
  }

  /** Ends the WHEP sessions of matching principals (revoked links, logouts); returns how many. */
  async closeWhep(predicate: (principal: Principal) => boolean): Promise<number> {
    const matching = [...this.whepSessions.values()].filter((tracked) => predicate(tracked.ctx.principal));
    await Promise.all(
      matching.map(async (tracked) => {
        this.untrack(tracked.sessionId);
        try {
          await tracked.handler.handleDelete(tracked.cameraId, tracked.sessionId, tracked.ctx);
        } catch (error) {
          this.log.warn(`Could not end a WHEP session: ${error instanceof Error ? error.message : String(error)}`);
        }
      }),
    );
    return matching.length;
  }

  get whepSessionCount(): number {
    return this.whepSessions.size;
  }

  stop(): void {
    clearInterval(this.reapTimer);
  }

  /**
   * Whether a tracked WHEP session still exists. The handler has no "list sessions" call, so it is
   * asked with an empty trickle-ICE PATCH, which changes nothing and answers 404 for a gone session.
   * Without PATCH support a session is held until its DELETE.
   */
  private async alive(tracked: TrackedWhep): Promise<boolean> {
    if (!tracked.handler.handlePatch) return true;
    const answer = await tracked.handler.handlePatch(tracked.cameraId, tracked.sessionId, '', tracked.ctx);
    return answer.status !== 404;
  }

  private untrack(sessionId: string): void {
    const tracked = this.whepSessions.get(sessionId);
    if (!tracked) return;
    this.whepSessions.delete(sessionId);
    tracked.release();
  }

  private async reapWhep(filter: (tracked: TrackedWhep) => boolean): Promise<void> {
    const candidates = [...this.whepSessions.values()].filter(filter);
    await Promise.all(
      candidates.map(async (tracked) => {
        let alive = true;
        try {
          alive = await this.alive(tracked);
        } catch {
          alive = true;
        }
        if (!alive) this.untrack(tracked.sessionId);
      }),
    );
  }
}

function text(status: number, body: string, headers: Record<string, string> = {}): HandlerResponse {
  return { status, headers: { 'Content-Type': 'text/plain; charset=utf-8', ...headers }, body };
}

function header(answer: HandlerResponse, name: string): string | undefined {
  for (const [key, value] of Object.entries(answer.headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
}
