// PeerGuard: per-user and per-address viewer slots around the signalling and WHEP handlers, the
// reaping of WHEP sessions that ended without a DELETE, revocation, and the first-message timeout.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, it } from 'node:test';
import type { WebSocket } from 'ws';

import { silentLogger } from '../../src/util/logger.js';
import { CLOSE_TOO_MANY_PEERS, DEFAULT_PEER_LIMITS, PeerGuard, type PeerLimitSettings } from '../../src/web/auth/peer-guard.js';
import type { CallerContext, HandlerResponse, Principal, WhepHandler } from '../../src/web/types.js';

class FakeWs extends EventEmitter {
  sent: unknown[] = [];
  closed: { code: number; reason: string } | undefined;
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
    this.emit('close');
  }
}

const user = (name: string): Principal => ({ name, cameras: 'all', admin: false });
const ctx = (name: string, remoteAddress = '192.168.1.10'): CallerContext =>
  ({ principal: user(name), remoteAddress, request: {} as IncomingMessage, log: silentLogger });

/** A WHEP handler whose sessions the test can end "on their own" (PATCH then answers 404). */
function fakeWhep(withPatch = true) {
  let next = 1;
  const live = new Set<string>();
  const deleted: string[] = [];
  const handler: WhepHandler = {
    handlePost: (cameraId) => {
      const id = `s${next++}`;
      live.add(id);
      return { status: 201, headers: { Location: `/whep/${cameraId}/${id}` }, body: 'answer' };
    },
    handleDelete: (_camera, sessionId) => {
      deleted.push(sessionId);
      return { status: live.delete(sessionId) ? 200 : 404 };
    },
    ...(withPatch ? { handlePatch: (_c: string, sessionId: string): HandlerResponse => ({ status: live.has(sessionId) ? 204 : 404 }) } : {}),
  };
  return { handler, live, deleted };
}

const guards: PeerGuard[] = [];
function guard(settings: Partial<PeerLimitSettings> = {}): PeerGuard {
  const g = new PeerGuard({ maxPeersPerPrincipal: 2, maxPeersPerAddress: 3, ...settings });
  guards.push(g);
  return g;
}

describe('PeerGuard', () => {
  afterEach(() => guards.splice(0).forEach((g) => g.stop()));

  it('signalling: a slot per socket until it closes; over the limit the socket is told why and closed', () => {
    const g = guard();
    const accepted: FakeWs[] = [];
    const handler = g.signalling((ws) => accepted.push(ws as unknown as FakeWs));
    const sockets = [new FakeWs(), new FakeWs(), new FakeWs()];
    for (const ws of sockets) handler(ws as unknown as WebSocket, ctx('ann'));
    assert.equal(accepted.length, 2);
    assert.deepEqual(sockets[2]!.sent, [{ type: 'error', code: 'too-many-viewers', message: 'You have too many camera views open at once. Close some and try again.' }]);
    assert.equal(sockets[2]!.closed?.code, CLOSE_TOO_MANY_PEERS);
    assert.deepEqual(g.count(ctx('ann')), { principal: 2, address: 2 });
    sockets[0]!.close(1000, 'bye');
    sockets[0]!.close(1000, 'again'); // a second close event releases nothing more
    assert.deepEqual(g.count(ctx('ann')), { principal: 1, address: 1 });
  });

  it('counts addresses across users (an IPv6 /64 as one), and users across addresses', () => {
    const g = guard({ maxPeersPerPrincipal: 10, maxPeersPerAddress: 2 });
    const handler = g.signalling(() => undefined);
    const open = (name: string, address: string) => {
      const ws = new FakeWs();
      handler(ws as unknown as WebSocket, ctx(name, address));
      return ws.closed === undefined;
    };
    assert.equal(open('ann', '2001:db8:0:1::a'), true);
    assert.equal(open('bob', '2001:db8:0:1::b'), true);
    assert.equal(open('cat', '2001:db8:0:1::c'), false, 'same /64, third connection');
    assert.equal(open('cat', '2001:db8:0:2::c'), true);
  });

  it('closes a signalling socket that sends nothing within firstMessageTimeoutMs; a message cancels that', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    const g = guard({ firstMessageTimeoutMs: 1000 });
    const handler = g.signalling(() => undefined);
    const silent = new FakeWs();
    const talking = new FakeWs();
    handler(silent as unknown as WebSocket, ctx('ann'));
    handler(talking as unknown as WebSocket, ctx('bob'));
    talking.emit('message', '{"type":"watch"}');
    t.mock.timers.tick(999);
    assert.equal(silent.closed, undefined);
    t.mock.timers.tick(1);
    assert.deepEqual(silent.closed, { code: 1008, reason: 'No request received' });
    assert.equal(talking.closed, undefined);
    assert.equal(g.count(ctx('ann')).principal, 0, 'the closed socket gave its slot back');
  });

  it('WHEP: a 201 holds a slot until DELETE; other answers and throws give it back at once', async () => {
    const g = guard();
    const whep = fakeWhep();
    let mode: 'ok' | 'refuse' | 'throw' = 'ok';
    const inner: WhepHandler = {
      ...whep.handler,
      handlePost: (cameraId, offer, c) => {
        if (mode === 'refuse') return { status: 404 };
        if (mode === 'throw') throw new Error('boom');
        return whep.handler.handlePost(cameraId, offer, c);
      },
    };
    const guarded = g.whep(inner);
    const first = await guarded.handlePost('cam', 'sdp', ctx('ann'));
    assert.equal(first.status, 201);
    assert.equal(g.whepSessionCount, 1);
    mode = 'refuse';
    assert.equal((await guarded.handlePost('cam', 'sdp', ctx('ann'))).status, 404);
    mode = 'throw';
    await assert.rejects(Promise.resolve(guarded.handlePost('cam', 'sdp', ctx('ann'))), /boom/);
    assert.deepEqual(g.count(ctx('ann')), { principal: 1, address: 1 });
    assert.equal((await guarded.handleDelete('cam', 's1', ctx('ann'))).status, 200);
    assert.deepEqual(g.count(ctx('ann')), { principal: 0, address: 0 });
    assert.equal(g.whepSessionCount, 0);
  });

  it('WHEP over the limit: sessions that ended without a DELETE are found first, else 429 with Retry-After', async () => {
    const g = guard();
    const whep = fakeWhep();
    const guarded = g.whep(whep.handler);
    await guarded.handlePost('cam', 'sdp', ctx('ann'));
    await guarded.handlePost('cam', 'sdp', ctx('ann'));
    const refused = await guarded.handlePost('cam', 'sdp', ctx('ann'));
    assert.equal(refused.status, 429);
    assert.equal(refused.headers?.['Retry-After'], '30');
    whep.live.delete('s1'); // the tab closed: the session ended on the server without a DELETE
    assert.equal((await guarded.handlePost('cam', 'sdp', ctx('ann'))).status, 201);
    assert.equal(g.whepSessionCount, 2);
  });

  it('honours configured limits (web.maxViewsPerUser / maxViewsPerAddress) above and below the default of 32', async () => {
    const fill = async (g: PeerGuard, who: (i: number) => CallerContext, n: number): Promise<number[]> => {
      const guarded = g.whep(fakeWhep().handler);
      const statuses: number[] = [];
      for (let i = 0; i < n; i++) statuses.push((await guarded.handlePost('cam', 'sdp', who(i))).status);
      return statuses;
    };
    const created = (statuses: number[]): number => statuses.filter((s) => s === 201).length;
    assert.equal(DEFAULT_PEER_LIMITS.maxPeersPerPrincipal, 32);
    assert.equal(DEFAULT_PEER_LIMITS.maxPeersPerAddress, 32);
    const byDefault = new PeerGuard();
    guards.push(byDefault);
    // One link from many addresses (the bench's share link), then many users from one address.
    assert.equal(created(await fill(byDefault, (i) => ctx('link', `10.0.0.${i + 1}`), 40)), 32);
    assert.equal(created(await fill(byDefault, (i) => ctx(`user${i}`, '192.168.1.50'), 40)), 32);
    const raised = guard({ maxPeersPerPrincipal: 50, maxPeersPerAddress: 45 });
    const perUser = await fill(raised, (i) => ctx('link', `10.0.0.${i + 1}`), 60);
    assert.equal(created(perUser), 50);
    assert.equal(perUser[50], 429);
    assert.equal(created(await fill(raised, (i) => ctx(`user${i}`, '192.168.1.50'), 60)), 45);
    const lowered = guard({ maxPeersPerPrincipal: 1, maxPeersPerAddress: 100 });
    assert.deepEqual(await fill(lowered, () => ctx('ann'), 2), [201, 429]);
  });

  it('without PATCH support a WHEP session is held until its DELETE', async () => {
    const g = guard({ maxPeersPerPrincipal: 1 });
    const whep = fakeWhep(false);
    const guarded = g.whep(whep.handler);
    assert.equal(guarded.handlePatch, undefined);
    await guarded.handlePost('cam', 'sdp', ctx('ann'));
    whep.live.clear();
    assert.equal((await guarded.handlePost('cam', 'sdp', ctx('ann'))).status, 429);
  });

  it('closeWhep ends the sessions of matching principals through the handler', async () => {
    const g = guard();
    const whep = fakeWhep();
    const guarded = g.whep(whep.handler);
    await guarded.handlePost('cam', 'sdp', ctx('link:1'));
    await guarded.handlePost('cam', 'sdp', ctx('ann'));
    assert.equal(await g.closeWhep((p) => p.name.startsWith('link:')), 1);
    assert.deepEqual(whep.deleted, ['s1']);
    assert.equal(g.whepSessionCount, 1);
    assert.equal(g.count(ctx('link:1')).principal, 0);
  });

  it('the periodic reap frees the slots of WHEP sessions that ended on their own', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
    const g = guard({ whepReapIntervalMs: 60_000 });
    const whep = fakeWhep();
    const guarded = g.whep(whep.handler);
    await guarded.handlePost('cam', 'sdp', ctx('ann'));
    whep.live.clear();
    t.mock.timers.tick(60_000);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(g.whepSessionCount, 0);
    assert.equal(g.count(ctx('ann')).principal, 0);
  });
});
