/**
 * Attacks on the access-controlled server, over real sockets: password guessing (429, while another
 * address still signs in), foreign origins, oversized input of every kind, too many connections
 * per user and per address, half-open and silent signalling sockets, SSRF attempts (proved with a
 * TCP listener nothing may connect to), and the explicit anonymous-loopback option.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createSignallingHandler } from '../../src/webrtc/signalling.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import type { HandlerResponse, WhepHandler } from '../../src/web/types.js';
import { CookieJar, VIEWERS, formToken, openSocket, request, signIn, startSecured, type SecuredServer } from './auth-helpers.js';
import { rawRequest, registryOf, sampleCameras } from './fixtures.js';

const OFFER = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n';

function okWhep(): WhepHandler {
  let n = 0;
  const live = new Set<string>();
  return {
    handlePost(camera): HandlerResponse {
      const id = `w${++n}`;
      live.add(id);
      return { status: 201, headers: { Location: `/whep/${camera}/${id}` }, body: 'v=0\r\n' };
    },
    handleDelete(_camera, session): HandlerResponse {
      return { status: live.delete(session) ? 200 : 404 };
    },
    handlePatch(_camera, session): HandlerResponse {
      return { status: live.has(session) ? 204 : 404 };
    },
  };
}

describe('hardening: password guessing', () => {
  let run: SecuredServer;
  before(async () => {
    run = await startSecured({ registry: registryOf(sampleCameras()) });
  });
  after(() => run?.close());

  async function attempt(password: string, localAddress: string, jar = new CookieJar()): Promise<{ status: number; retryAfter?: string }> {
    const form = await request(`${run.base}/login`, { jar, localAddress });
    const answer = await request(`${run.base}/login`, {
      method: 'POST',
      jar,
      localAddress,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: formToken(form.body), username: 'bob', password }).toString(),
    });
    return { status: answer.status, retryAfter: answer.headers['retry-after'] as string | undefined };
  }

  it('answers 429 to 20 wrong passwords from one address, while another address still signs in', async () => {
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 20; i++) {
      const result = await attempt(`wrong-${i}`, '127.0.0.1');
      statuses.push(result.status);
      retryAfter ??= result.retryAfter;
    }
    assert.deepEqual(statuses.slice(0, 5), [401, 401, 401, 401, 401]);
    assert.ok(statuses.slice(5).every((s) => s === 429), statuses.join(','));
    assert.match(retryAfter ?? '', /^\d+$/);
    // Even the right password waits out the backoff on that address...
    assert.equal((await attempt(VIEWERS.bob.password, '127.0.0.1')).status, 429);
    // ...while a family member on another address is not locked out.
    assert.equal((await attempt(VIEWERS.bob.password, '127.0.0.2')).status, 303);
    const json = await signIn(run.base, 'bob', VIEWERS.bob.password, { localAddress: '127.0.0.3' });
    assert.equal(json.status, 200);
  });

  it('does not let parallel guesses slip past the counter', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_v, i) => attempt(`parallel-${i}`, '127.0.0.4')));
    const wrong = results.filter((r) => r.status === 401).length;
    assert.ok(wrong <= 5, `${wrong} guesses were checked`);
    assert.ok(results.some((r) => r.status === 429));
  });

  it('counts wrong share-link tokens and bearer tokens too', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push((await request(`${run.base}/s/wrc1.${randomBytes(16).toString('base64url')}.0.${randomBytes(32).toString('base64url')}`, { localAddress: '127.0.0.5' })).status);
    }
    assert.equal(statuses.at(-1), 429, statuses.join(','));
    const bearer = await request(`${run.base}/api/cameras`, { headers: { Authorization: 'Bearer guess' }, localAddress: '127.0.0.5' });
    assert.equal(bearer.status, 429);
  });

  it('counts wrong tokens apart from wrong passwords, so a stale share link does not lock out sign-in (issue 12, item 8)', async () => {
    const address = '127.0.0.6';
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      statuses.push((await request(`${run.base}/api/cameras`, { headers: { Authorization: `Bearer stale-${i}` }, localAddress: address })).status);
      statuses.push((await request(`${run.base}/s/wrc1.${randomBytes(16).toString('base64url')}.0.${randomBytes(32).toString('base64url')}`, { localAddress: address })).status);
    }
    assert.equal(statuses.at(-1), 429, `tokens are still throttled: ${statuses.join(',')}`);
    // The family's password still works from that address...
    assert.equal((await attempt(VIEWERS.bob.password, address)).status, 303);
    // ...and wrong passwords there do not push the token counter further either way.
    const other = '127.0.0.7';
    for (let i = 0; i < 8; i++) await attempt(`wrong-${i}`, other);
    assert.equal((await attempt(VIEWERS.bob.password, other)).status, 429);
    const bearer = await request(`${run.base}/api/cameras`, { headers: { Authorization: 'Bearer one-guess' }, localAddress: other });
    assert.equal(bearer.status, 401, 'a token from an address locked for passwords is checked, not 429');
  });

  it('takes about as long for an unknown user name as for a known one (no user enumeration by timing)', async () => {
    const time = async (username: string, localAddress: string): Promise<number> => {
      const jar = new CookieJar();
      const form = await request(`${run.base}/login`, { jar, localAddress });
      const started = process.hrtime.bigint();
      await request(`${run.base}/login`, {
        method: 'POST',
        jar,
        localAddress,
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': formToken(form.body) },
        body: JSON.stringify({ username, password: 'not-the-password' }),
      });
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 5; i++) {
      known.push(await time('bob', `127.0.1.${i + 1}`));
      unknown.push(await time(`nobody-${i}`, `127.0.2.${i + 1}`));
    }
    const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const ratio = median(unknown) / median(known);
    // Loose bounds (other test files run in parallel); without the dummy hash the ratio would be ~0.01.
    assert.ok(ratio > 0.5 && ratio < 2, `known ${median(known).toFixed(1)} ms, unknown ${median(unknown).toFixed(1)} ms`);
    assert.ok(median(known) > 10, 'a check runs scrypt');
  });
});

describe('hardening: origins, sizes, limits and reaping', () => {
  let run: SecuredServer;
  let bob: { jar: CookieJar; csrf: string };

  before(async () => {
    const registry = registryOf(sampleCameras());
    run = await startSecured({
      registry,
      whep: okWhep(),
      signalling: createSignallingHandler({ registry, limits: new ViewerLimiter(), ice: LOOPBACK_ICE_SETTINGS, tracksTimeoutMs: 200 }),
      access: { peers: { maxPeersPerPrincipal: 3, maxPeersPerAddress: 4, firstMessageTimeoutMs: 400 } },
      web: { limits: { wsHeartbeatMs: 300 } },
    });
    bob = await signIn(run.base, 'bob', VIEWERS.bob.password);
  });
  after(() => run?.close());

  it('refuses a WebSocket from a foreign Origin even with a valid session cookie', async () => {
    const signal = `ws://127.0.0.1:${run.port}/signal`;
    assert.equal((await openSocket(signal, { Cookie: bob.jar.header(), Origin: 'http://evil.example' })).status, 403);
    assert.equal((await openSocket(signal, { Cookie: bob.jar.header(), Origin: `http://localhost:${run.port}` })).status, 403);
    const same = await openSocket(signal, { Cookie: bob.jar.header(), Origin: `http://127.0.0.1:${run.port}` });
    assert.equal(same.status, 101);
    if (same.status === 101) same.ws.close();
  });

  it('refuses cross-origin state changes (sign-in, WHEP) before looking at credentials', async () => {
    const jar = new CookieJar();
    const form = await request(`${run.base}/login`, { jar });
    const login = await request(`${run.base}/login`, {
      method: 'POST',
      jar,
      headers: { Origin: 'http://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: formToken(form.body), username: 'bob', password: VIEWERS.bob.password }).toString(),
    });
    assert.equal(login.status, 403);
    const whep = await request(`${run.base}/whep/front-door`, {
      method: 'POST',
      jar: bob.jar,
      headers: { Origin: 'http://evil.example', 'Content-Type': 'application/sdp', 'X-CSRF-Token': bob.csrf },
      body: OFFER,
    });
    assert.equal(whep.status, 403);
    // No CORS grant for an origin that is not configured.
    const preflight = await request(`${run.base}/whep/front-door`, { method: 'OPTIONS', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
  });

  it('answers 413, 431 or closes on oversized input, and keeps serving', async () => {
    const alice = await signIn(run.base, 'alice', VIEWERS.alice.password);
    const bigJson = JSON.stringify({ cameras: ['front-door'], label: 'x'.repeat(20_000) });
    const json = await request(`${run.base}/api/share-links`, {
      method: 'POST',
      jar: alice.jar,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': alice.csrf },
      body: bigJson,
    });
    assert.equal(json.status, 413);
    const sdp = await request(`${run.base}/whep/front-door`, {
      method: 'POST',
      jar: bob.jar,
      headers: { 'Content-Type': 'application/sdp', 'X-CSRF-Token': bob.csrf },
      body: `v=0\r\n${'a=x\r\n'.repeat(20_000)}`,
    });
    assert.equal(sdp.status, 413);
    const jar = new CookieJar();
    const form = await request(`${run.base}/login`, { jar });
    const login = await request(`${run.base}/login`, {
      method: 'POST',
      jar,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: `csrf=${formToken(form.body)}&username=bob&password=${'p'.repeat(8000)}`,
    });
    assert.equal(login.status, 413);
    const header = await rawRequest(run.port, `GET /api/cameras HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.equal(header.status, 431);
    const socket = await openSocket(`ws://127.0.0.1:${run.port}/signal`, { Cookie: bob.jar.header() });
    assert.equal(socket.status, 101);
    if (socket.status === 101) {
      socket.ws.send('x'.repeat(70 * 1024));
      assert.equal((await socket.closed).code, 1009);
    }
    assert.equal((await request(`${run.base}/api/cameras`, { jar: bob.jar })).status, 200);
  });

  it('limits open viewer connections per user and per address', async () => {
    const signal = `ws://127.0.0.1:${run.port}/signal`;
    const open: WebSocket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const socket = await openSocket(signal, { Cookie: bob.jar.header() });
        assert.equal(socket.status, 101);
        if (socket.status === 101) {
          open.push(socket.ws);
          socket.ws.send(JSON.stringify({ type: 'stop' })); // not idle
        }
      }
      const fourth = await openSocket(signal, { Cookie: bob.jar.header() });
      assert.equal(fourth.status, 101);
      if (fourth.status === 101) {
        assert.equal((await fourth.closed).code, 4029);
        assert.equal(JSON.parse(fourth.messages[0]!).code, 'too-many-viewers');
      }
      // WHEP counts against the same budget.
      const whep = await request(`${run.base}/whep/front-door`, {
        method: 'POST',
        jar: bob.jar,
        headers: { 'Content-Type': 'application/sdp', 'X-CSRF-Token': bob.csrf },
        body: OFFER,
      });
      assert.equal(whep.status, 429);
      // Another user on the same address gets one more (the address limit is 4), then no more.
      const carol = await signIn(run.base, 'carol', VIEWERS.carol.password);
      const fifth = await openSocket(signal, { Cookie: carol.jar.header() });
      assert.equal(fifth.status, 101);
      if (fifth.status === 101) {
        open.push(fifth.ws);
        fifth.ws.send(JSON.stringify({ type: 'stop' }));
      }
      const sixth = await openSocket(signal, { Cookie: carol.jar.header() });
      assert.equal(sixth.status, 101);
      if (sixth.status === 101) assert.equal((await sixth.closed).code, 4029);
      // From another address carol is fine.
      const elsewhere = await openSocket(signal, { Cookie: carol.jar.header() }, { localAddress: '127.0.0.2' });
      assert.equal(elsewhere.status, 101);
      if (elsewhere.status === 101) open.push(elsewhere.ws);
    } finally {
      for (const ws of open) ws.close();
    }
    // Slots come back when sockets close.
    await new Promise((r) => setTimeout(r, 100));
    const again = await openSocket(signal, { Cookie: bob.jar.header() });
    assert.equal(again.status, 101);
    if (again.status === 101) again.ws.close();
  });

  it('closes a signalling socket that never sends a request, and reaps one whose peer vanished', async () => {
    const silent = await openSocket(`ws://127.0.0.1:${run.port}/signal`, { Cookie: bob.jar.header() });
    assert.equal(silent.status, 101);
    if (silent.status === 101) {
      const started = Date.now();
      const { code } = await silent.closed;
      assert.equal(code, 1008);
      assert.ok(Date.now() - started < 2000);
    }
    // A hand-made client that completes the handshake, sends one message, then never answers a ping.
    const deadline = Date.now() + 3000;
    while (run.server.signallingSockets > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(run.server.signallingSockets, 0);
    const raw: Socket = connect(run.port, '127.0.0.1');
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write(
      'GET /signal HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nCookie: ${bob.jar.header()}\r\n\r\n`,
    );
    await new Promise((resolve) => raw.once('data', resolve));
    // One masked text frame, {"type":"stop"}, so the idle rule does not apply.
    const payload = Buffer.from('{"type":"stop"}');
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    raw.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(run.server.signallingSockets, 1);
    const ended = new Promise((resolve) => raw.once('close', resolve));
    raw.on('data', () => undefined); // reads pings, never pongs
    const started = Date.now();
    await ended;
    assert.ok(Date.now() - started < 2000);
    // The server forgets it when its own side of the socket has closed, a moment later.
    const forgotten = Date.now() + 1000;
    while (run.server.signallingSockets > 0 && Date.now() < forgotten) await new Promise((r) => setTimeout(r, 10));
    assert.equal(run.server.signallingSockets, 0);
  });
});

describe('hardening: no endpoint connects anywhere (no SSRF)', () => {
  let run: SecuredServer;
  let trap: Server;
  let trapPort: number;
  const connections: string[] = [];

  before(async () => {
    trap = createServer((socket) => {
      connections.push(`${socket.remoteAddress}:${socket.remotePort}`);
      socket.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
    trapPort = (trap.address() as { port: number }).port;
    const registry = registryOf(sampleCameras());
    run = await startSecured({
      registry,
      whep: okWhep(),
      signalling: createSignallingHandler({ registry, limits: new ViewerLimiter(), ice: LOOPBACK_ICE_SETTINGS, tracksTimeoutMs: 200 }),
    });
  });
  after(async () => {
    await run?.close();
    await new Promise((resolve) => trap.close(resolve));
  });

  it('ignores or refuses every URL, host or address a client offers, and nothing connects to the trap', async () => {
    const alice = await signIn(run.base, 'alice', VIEWERS.alice.password);
    const target = `http://127.0.0.1:${trapPort}/`;
    const rtsp = `rtsp://127.0.0.1:${trapPort}/stream`;
    const headers = { 'X-CSRF-Token': alice.csrf };
    const statuses: Record<string, number> = {};
    const hit = async (label: string, url: string, options: Parameters<typeof request>[1] = {}) => {
      statuses[label] = (await request(url, { jar: alice.jar, ...options, headers: { ...headers, ...options.headers } })).status;
    };
    await hit('api ?url', `${run.base}/api/cameras?url=${encodeURIComponent(target)}&host=127.0.0.1&port=${trapPort}`);
    await hit('snapshot ?url', `${run.base}/api/cameras/front-door/snapshot.jpg?url=${encodeURIComponent(target)}&src=${encodeURIComponent(rtsp)}`);
    await hit('config ?url', `${run.base}/api/config?stun=${encodeURIComponent(target)}`);
    await hit('camera named by URL', `${run.base}/api/cameras/${encodeURIComponent(rtsp)}`);
    await hit('whep to an rtsp URL', `${run.base}/whep/${encodeURIComponent(rtsp)}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: OFFER });
    await hit('whep to a host:port', `${run.base}/whep/127.0.0.1:${trapPort}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: OFFER });
    await hit('whep ?url', `${run.base}/whep/front-door?url=${encodeURIComponent(rtsp)}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: OFFER });
    await hit('share link with url', `${run.base}/api/share-links`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ cameras: ['front-door'], url: rtsp, host: '127.0.0.1', port: trapPort }),
    });
    await hit('share link camera = url', `${run.base}/api/share-links`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ cameras: [rtsp] }),
    });
    await hit('login with url', `${run.base}/login?next=${encodeURIComponent(target)}`, { headers: { Cookie: '' } });
    const absolute = await rawRequest(run.port, `GET ${target}api/cameras HTTP/1.1\r\nHost: 127.0.0.1:${trapPort}\r\nCookie: ${alice.jar.header()}\r\n\r\n`);
    statuses['absolute-form target'] = absolute.status;
    const hostHeader = await rawRequest(run.port, `GET /api/cameras HTTP/1.1\r\nHost: 127.0.0.1:${trapPort}\r\nCookie: ${alice.jar.header()}\r\nConnection: close\r\n\r\n`);
    statuses['foreign Host header'] = hostHeader.status;

    const socket = await openSocket(`ws://127.0.0.1:${run.port}/signal`, { Cookie: alice.jar.header() });
    assert.equal(socket.status, 101);
    if (socket.status === 101) {
      const replies: string[] = [];
      socket.ws.on('message', (d) => replies.push(String(d)));
      for (const camera of [rtsp, target, `127.0.0.1:${trapPort}`, `//127.0.0.1:${trapPort}`]) {
        socket.ws.send(JSON.stringify({ type: 'watch', camera }));
        socket.ws.send(JSON.stringify({ type: 'watch', camera: 'front-door', url: rtsp, host: '127.0.0.1', port: trapPort }));
      }
      await new Promise((r) => setTimeout(r, 300));
      socket.ws.close();
      assert.ok(replies.filter((r) => r.includes('bad-request')).length >= 4, replies.join('\n'));
    }

    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(connections, [], 'something connected to the trap');
    assert.equal(statuses['camera named by URL'], 400);
    assert.equal(statuses['whep to an rtsp URL'], 400);
    assert.equal(statuses['share link with url'], 400);
    assert.equal(statuses['share link camera = url'], 400);
    assert.equal(statuses['absolute-form target'], 400);
    assert.equal(statuses['whep to a host:port'], 400);
    // Unknown query parameters are simply not read: the answers are the ordinary ones.
    assert.equal(statuses['api ?url'], 200);
  });
});

describe('hardening: anonymous loopback access is explicit', () => {
  it('is off by default', async () => {
    const run = await startSecured({ registry: registryOf(sampleCameras()), access: { viewers: [] } });
    try {
      assert.equal((await request(`${run.base}/api/cameras`)).status, 401);
      assert.equal((await request(`${run.base}/`)).status, 303);
      const form = await request(`${run.base}/login`);
      assert.match(form.body, /No viewer accounts are set up yet/);
      assert.ok(run.logs.some((l) => /^warn No viewer accounts are configured.*Viewers and share links/.test(l)), run.logs.join('\n'));
    } finally {
      await run.close();
    }
  });

  it('when on, lets this computer watch without signing in, never as admin, and only under a loopback Host name', async () => {
    const run = await startSecured({
      registry: registryOf(sampleCameras()),
      signalling: () => undefined,
      access: { viewers: [], allowAnonymousLoopback: true },
    });
    try {
      assert.equal((await request(`${run.base}/api/cameras`)).status, 200);
      assert.equal((await request(`http://localhost:${run.port}/api/cameras`)).status, 200);
      assert.equal((await request(`${run.base}/`)).status, 200);
      assert.equal((await request(`${run.base}/api/share-links`)).status, 403);
      // DNS rebinding: a foreign site's name pointed at 127.0.0.1 does not count as local.
      assert.equal((await request(`${run.base}/api/cameras`, { headers: { Host: `evil.example:${run.port}` } })).status, 401);
      // A reverse proxy on this machine connects from 127.0.0.1 too; its visitors are not local.
      for (const header of ['X-Forwarded-For', 'Forwarded', 'X-Real-IP', 'Via']) {
        assert.equal((await request(`${run.base}/api/cameras`, { headers: { [header]: '203.0.113.9' } })).status, 401, header);
      }
      const socket = await openSocket(`ws://127.0.0.1:${run.port}/signal`, { Host: `rebind.example:${run.port}` });
      assert.equal(socket.status, 401);
      const local = await openSocket(`ws://127.0.0.1:${run.port}/signal`);
      assert.equal(local.status, 101);
      if (local.status === 101) local.ws.terminate();
    } finally {
      await run.close();
    }
  });
});
