// Issue 12, item 2: one machine must not be able to take the page down by holding idle TCP
// connections. Each address gets a share well below the global cap, and the last slots are kept
// for addresses that have signed in. Real sockets from several loopback source addresses.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import type { Principal } from '../../src/web/types.js';
import { registryOf, sampleCameras } from './fixtures.js';

const FAMILY: Principal = { name: 'family', cameras: 'all', admin: false };

/** Opens `count` idle connections from `localAddress`; resolves when each is open or refused. */
async function flood(port: number, localAddress: string, count: number): Promise<{ open: Socket[]; refused: number }> {
  const open: Socket[] = [];
  let refused = 0;
  await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<void>((resolve) => {
        const socket = connect({ port, host: '127.0.0.1', localAddress });
        socket.on('error', () => undefined);
        // A refused one is accepted by the kernel and then closed at once by the server; an
        // admitted one stays open, so it is told apart by a round trip on another connection.
        socket.once('connect', () => {
          open.push(socket);
          resolve();
        });
        socket.once('close', () => {
          const i = open.indexOf(socket);
          if (i >= 0) open.splice(i, 1);
          refused++;
          resolve();
        });
      }),
    ),
  );
  return { open, refused };
}

function get(port: number, localAddress: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/cameras', localAddress, headers, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until the server has dealt with every pending connection (a request on a fresh one answers). */
async function settle(sockets: Socket[]): Promise<number> {
  await new Promise((r) => setImmediate(r));
  // Each refused socket closes; count the ones still open after a server round trip.
  return sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
}

describe('connection limits per address, with a reserve for signed-in viewers', () => {
  let server: WebServer;
  let port: number;
  const sockets: Socket[] = [];

  before(async () => {
    server = createWebServer({
      port: 0,
      host: '127.0.0.1',
      registry: registryOf(sampleCameras()),
      authorize: (req) => (req.headers.authorization === 'Bearer family' ? FAMILY : undefined),
      limits: { maxConnections: 60, maxConnectionsPerAddress: 10, reservedForSignedIn: 20, headersTimeoutMs: 20_000, requestTimeoutMs: 30_000 },
    });
    ({ port } = await server.listen());
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await server.close();
  });

  it('one address holds at most its share; other visitors, and signed-in ones past a many-address flood, still get answers', async () => {
    // The family has signed in from 127.0.0.2 before the attack.
    assert.equal(await get(port, '127.0.0.2', { Authorization: 'Bearer family' }), 200);

    const one = await flood(port, '127.0.0.50', 100);
    sockets.push(...one.open);
    // Refusals close at once; give the server a round trip to close every refused one.
    assert.equal(await get(port, '127.0.0.3'), 401, 'an unknown visitor still gets an answer');
    const held = await settle(one.open);
    assert.ok(held <= 10, `one address holds ${held} connections`);

    // Now many addresses: unknown ones stop at the reserve (60 - 20 = 40 in all).
    for (let i = 0; i < 5; i++) {
      const more = await flood(port, `127.0.0.${60 + i}`, 10);
      sockets.push(...more.open);
    }
    assert.equal(await get(port, '127.0.0.2', { Authorization: 'Bearer family' }), 200, 'the signed-in address uses the reserve');
    const unknown = await flood(port, '127.0.0.90', 1);
    sockets.push(...unknown.open);
    await get(port, '127.0.0.2', { Authorization: 'Bearer family' });
    assert.equal(await settle(unknown.open), 0, 'a new unknown address gets no reserved slot');
    const total = await settle(sockets);
    assert.ok(total <= 40, `unknown addresses hold ${total}`);
  });
});
