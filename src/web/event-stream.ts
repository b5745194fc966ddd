/**
 * Server-sent events for the watch page (issue 17): `GET /api/events` stays open and carries
 * `doorbell` events for the cameras the caller may watch, so a viewer who turned doorbell alerts on
 * sees "Someone is at the door" without watching that camera, and `ptz` events (a camera's mover
 * changed), so another viewer's PTZ controls say at once that someone else is moving it. The page
 * opens one stream for both (src/web/page/events.js). The page's other channel, the
 * `/signal` WebSocket, exists only while a camera is being watched, so it cannot carry this. Signed-in
 * viewers only (the route's `auth: 'viewer'`); a revoked or expired session's stream is closed with its
 * sockets (access control's revoke listeners). Besides the global cap, one account or share link and
 * one client address may hold only a few streams (429 with Retry-After, which EventSource answers by
 * retrying later, unlike the 503 of the global cap), so one share link cannot take every slot.
 * A comment line every `heartbeatMs` keeps proxies from closing an idle stream.
 */
import type { ServerResponse } from 'node:http';
import { clientKey } from '../access/client-address.js';
import { canWatch, type Principal } from '../access/principal.js';
import type { PtzMoverEvent } from './ptz-types.js';
import type { WebRoute } from './types.js';

export const EVENTS_PATH = '/api/events';

export interface DoorbellEvent {
  type: 'doorbell';
  camera: string;
  name: string;
  /** ms since the epoch. */
  at: number;
}

/** What the stream carries; each has a `camera`, and only viewers who may watch it get the event. */
export type PageEvent = DoorbellEvent | PtzMoverEvent;

export interface EventStreamOptions {
  /** Streams open at once, all viewers together; more get 503. Default 256. */
  maxClients?: number;
  /** Streams one account or share link (default 4), and one client address (default 16: a household behind one NAT), may hold at once. */
  maxPerPrincipal?: number;
  maxPerAddress?: number;
  heartbeatMs?: number;
}

interface Client {
  res: ServerResponse;
  principal: Principal;
  address: string;
}

export class EventStream {
  private readonly clients = new Set<Client>();
  private readonly heartbeat: NodeJS.Timeout;
  readonly route: WebRoute;

  constructor(private readonly options: EventStreamOptions = {}) {
    this.heartbeat = setInterval(() => this.write(() => true, () => ': keep-alive\n\n'), options.heartbeatMs ?? 25_000);
    this.heartbeat.unref();
    this.route = {
      method: 'GET',
      path: EVENTS_PATH,
      auth: 'viewer',
      handle: (ctx) => {
        if (this.clients.size >= (this.options.maxClients ?? 256)) {
          ctx.sendJson(503, { error: 'unavailable', message: 'Too many event streams' });
          return;
        }
        const principal = ctx.principal!;
        const address = clientKey(ctx.remoteAddress);
        if (this.count((c) => c.principal.name === principal.name) >= (this.options.maxPerPrincipal ?? 4)
          || this.count((c) => c.address === address) >= (this.options.maxPerAddress ?? 16)) {
          ctx.sendJson(429, { error: 'too-many-requests', message: 'Too many event streams open for you; close a tab' }, { 'Retry-After': '30' });
          return;
        }
        const client: Client = { res: ctx.res, principal, address };
        ctx.res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
        // Reconnect after 5 s when the stream drops (EventSource does it by itself).
        ctx.res.write('retry: 5000\n\n');
        this.clients.add(client);
        const forget = (): void => {
          this.clients.delete(client);
        };
        ctx.res.on('close', forget);
        ctx.req.on('close', forget);
      },
    };
  }

  get size(): number {
    return this.clients.size;
  }

  private count(match: (client: Client) => boolean): number {
    let n = 0;
    for (const client of this.clients) if (match(client)) n++;
    return n;
  }

  /** Sends the event to every open stream whose viewer may watch the camera. */
  publish(event: DoorbellEvent): number {
    // The same event for every viewer: written out once, not once per open stream.
    const text = eventText(event);
    return this.write((principal) => canWatch(principal, event.camera), () => text);
  }

  /**
   * Sends every open stream whose viewer may watch `camera` the event made for that viewer (a `ptz`
   * event tells the mover "you", and names the mover to some viewers only).
   */
  publishFor(camera: string, eventFor: (principal: Principal) => PageEvent): number {
    return this.write((principal) => canWatch(principal, camera), (principal) => eventText(eventFor(principal)));
  }

  /** Ends the streams of matching principals (revoked links, logouts); returns how many. */
  disconnect(predicate: (principal: Principal) => boolean): number {
    let closed = 0;
    for (const client of [...this.clients]) {
      if (!predicate(client.principal)) continue;
      this.clients.delete(client);
      client.res.end();
      closed++;
    }
    return closed;
  }

  close(): void {
    clearInterval(this.heartbeat);
    this.disconnect(() => true);
  }

  private write(filter: (principal: Principal) => boolean, text: (principal: Principal) => string): number {
    let sent = 0;
    for (const client of this.clients) {
      if (!filter(client.principal) || client.res.writableEnded) continue;
      client.res.write(text(client.principal));
      sent++;
    }
    return sent;
  }
}

/** One event in the server-sent-events wire form. */
function eventText(event: PageEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
