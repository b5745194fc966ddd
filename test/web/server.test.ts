/**
 * The web server over real sockets on 127.0.0.1: routes, headers, limits, origins, the auth seam,
 * WHEP routing to a stub handler and the /signal gateway. The real WHEP and signalling handlers are
 * tested in test/webrtc; here they are stubs that record what the server hands them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { createWebServer, type WebServer, type WebServerOptions } from '../../src/web/server.js';
import type { Logger } from '../../src/util/logger.js';
import type { CallerContext, HandlerResponse, Principal, WhepHandler } from '../../src/web/types.js';
import { FakeSource, rawRequest, registryOf, sampleCameras } from './fixtures.js';

const SECRET = 'hunter2-secret';

interface Running {
  server: WebServer;
  base: string;
  port: number;
  logs: string[];
}

function recordingLogger(lines: string[]): Logger {
  const record = (level: string) => (message: string, ...parameters: unknown[]) =>
    lines.push(`${level} ${message} ${parameters.map(String).join(' ')}`);
  return { info: record('info'), warn: record('warn'), error: record('error'), debug: record('debug') };
}

async function start(options: Partial<WebServerOptions> = {}): Promise<Running> {
  const logs: string[] = [];
  const server = createWebServer({
    port: 0,
    host: '127.0.0.1',
    registry: registryOf(sampleCameras()),
    log: recordingLogger(logs),
    ...options,
  });
  const { port } = await server.listen();
  return { server, base: `http://127.0.0.1:${port}`, port, logs };
}

const OFFER = 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n';

interface WhepCall {
  kind: 'post' | 'delete' | 'patch';
  camera: string;
  session?: string;
  body?: string;
  principal: Principal;
}

function stubWhep(calls: WhepCall[], withPatch = true): WhepHandler {
  const handler: WhepHandler = {
    handlePost(camera: string, offer: string, ctx: CallerContext): HandlerResponse {
      calls.push({ kind: 'post', camera, body: offer, principal: ctx.principal });
      return {
        status: 201,
        headers: { Location: `/whep/${camera}/sess-1`, ETag: '"e1"', 'Content-Type': 'application/sdp' },
        body: 'v=0\r\nanswer\r\n',
      };
    },
    async handleDelete(camera: string, session: string, ctx: CallerContext): Promise<HandlerResponse> {
      calls.push({ kind: 'delete', camera, session, principal: ctx.principal });
      return { status: 200 };
    },
  };
  if (withPatch) {
    handler.handlePatch = (camera, session, fragment, ctx) => {
      calls.push({ kind: 'patch', camera, session, body: fragment, principal: ctx.principal });
      return { status: 204 };
    };
  }
  return handler;
}

function openSocket(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Resolves with the HTTP status of a refused WebSocket handshake. */
function refusedUpgrade(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('open', () => reject(new Error('the upgrade was accepted')));
    ws.once('error', () => undefined);
  });
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('web server: page, static files and headers', () => {
  let run: Running;
  before(async () => {
    run = await start();
  });
  after(() => run.server.close());

  it('serves the watch page with the security headers', async () => {
    const response = await fetch(`${run.base}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /img-src 'self' data: blob:/);
    assert.match(csp, /media-src 'self' blob:/);
    assert.match(csp, /connect-src 'self' ws: wss:/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
    const html = await response.text();
    assert.match(html, /<script type="module" src="\/static\/app\.js"><\/script>/);
  });

  it('the page has no inline script, handlers or style attributes (so the CSP can stay strict)', async () => {
    const html = await (await fetch(`${run.base}/`)).text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, 'inline <script>');
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, 'inline event handler');
    assert.doesNotMatch(html, /\sstyle\s*=/i, 'style attribute');
    assert.doesNotMatch(html, /<style/i, '<style> element');
    assert.match(html, /playsinline/);
    assert.match(html, /muted/);
  });

  it('security headers are on errors too', async () => {
    const response = await fetch(`${run.base}/nope`);
    assert.equal(response.status, 404);
    assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.deepEqual(await response.json(), { error: 'not-found', message: 'Nothing here' });
  });

  it('serves assets with their content types and revalidation', async () => {
    const js = await fetch(`${run.base}/static/app.js`);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(js.headers.get('cache-control'), 'no-cache');
    const etag = js.headers.get('etag');
    assert.ok(etag);
    await js.arrayBuffer();
    const css = await fetch(`${run.base}/static/style.css`);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    await css.arrayBuffer();
    const svg = await fetch(`${run.base}/static/icon.svg`);
    assert.equal(svg.headers.get('content-type'), 'image/svg+xml');
    await svg.arrayBuffer();
    const again = await fetch(`${run.base}/static/app.js`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
  });

  it('the watch page is its body file under the shared head, one asset that revalidates', async () => {
    const response = await fetch(`${run.base}/`);
    const html = await response.text();
    assert.match(html, /^<!doctype html>\n<html lang="en">\n<head>\n/);
    assert.match(html, /<meta name="referrer" content="no-referrer">\n {2}<title>Cameras<\/title>/);
    assert.match(html, /<link rel="stylesheet" href="\/static\/style\.css">\n {2}<script type="module" src="\/static\/app\.js"><\/script>\n<\/head>/);
    assert.equal(html.match(/<head>/g)?.length, 1);
    assert.match(html, /<body>[\s\S]*id="grid"[\s\S]*<\/body>\n<\/html>\n$/);
    assert.equal(response.headers.get('cache-control'), 'no-cache');
    const etag = response.headers.get('etag');
    assert.ok(etag);
    assert.equal(Number(response.headers.get('content-length')), Buffer.byteLength(html));
    const again = await fetch(`${run.base}/`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
  });

  it('HEAD answers without a body', async () => {
    const response = await fetch(`${run.base}/`, { method: 'HEAD' });
    assert.equal(response.status, 200);
    assert.equal((await response.arrayBuffer()).byteLength, 0);
  });

  it('refuses path traversal, encoded or not', async () => {
    const targets = [
      '/static/../server.ts',
      '/static/../../package.json',
      '/static/..%2fserver.ts',
      '/static/%2e%2e/%2e%2e/package.json',
      '/static/%2e%2e%2f%2e%2e%2fpackage.json',
      '/static/..\\..\\package.json',
      '/static//etc/passwd',
      '/static/%00app.js',
      '/static/app.js%00',
      '/static/',
      '/static/index.html',
      '/static/.hidden',
      '/../../../../etc/passwd',
    ];
    for (const target of targets) {
      const response = await rawRequest(run.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.ok([400, 404].includes(response.status), `${target} -> ${response.status}`);
      assert.doesNotMatch(response.body, /"name"|root:|import /, target);
    }
  });

  it('refuses absolute-form request targets (never a proxy)', async () => {
    const response = await rawRequest(run.port, 'GET http://169.254.169.254/latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(response.status, 400);
  });

  it('answers 431 to oversized headers', async () => {
    const big = 'a'.repeat(20 * 1024);
    const response = await rawRequest(run.port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\nConnection: close\r\n\r\n`);
    assert.equal(response.status, 431);
  });

  it('answers 405 with Allow for a wrong method', async () => {
    const response = await fetch(`${run.base}/api/cameras`, { method: 'PUT' });
    assert.equal(response.status, 405);
    assert.match(response.headers.get('allow') ?? '', /GET/);
    const css = await fetch(`${run.base}/static/style.css`, { method: 'POST', body: 'x' });
    assert.equal(css.status, 405);
  });
});

describe('web server: camera API', () => {
  let run: Running;
  const snapshots = new Map<string, Buffer | Error | 'slow' | Promise<Buffer>>();
  const saved = new Map<string, { image: Buffer; capturedAt: number }>();
  before(async () => {
    run = await start({
      secrets: () => [SECRET],
      limits: { snapshotTimeoutMs: 200 },
      cameraExtras: (id) => (id === 'front-door' ? { viewers: 3 } : undefined),
      snapshots: {
        async getSnapshot(id) {
          const entry = snapshots.get(id);
          if (entry === 'slow') return new Promise((resolve) => setTimeout(() => resolve(Buffer.from('late')), 1000));
          if (entry instanceof Error) throw entry;
          return entry;
        },
        savedSnapshot: (id) => Promise.resolve(saved.get(id)),
      },
    });
  });
  after(() => run.server.close());

  it('lists cameras with status fields and nothing else', async () => {
    const response = await fetch(`${run.base}/api/cameras`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const list = (await response.json()) as Array<Record<string, unknown>>;
    assert.equal(list.length, 3);
    assert.deepEqual(list[0], {
      id: 'front-door',
      name: 'Front door',
      state: 'live',
      lastError: null,
      codec: 'H264',
      width: 1280,
      height: 720,
      fps: 25,
      bitrateKbps: 2150,
      audio: 'PCMU',
      viewers: 3,
      retryInMs: null,
    });
    assert.equal(list[1]!.state, 'retrying');
    assert.equal(list[1]!.retryInMs, 4000);
    assert.equal(list[2]!.codec, null);
  });

  it('never exposes a URL, host or credential, in the API or the page', async () => {
    const bodies = [
      await (await fetch(`${run.base}/api/cameras`)).text(),
      await (await fetch(`${run.base}/api/cameras/garden`)).text(),
      await (await fetch(`${run.base}/`)).text(),
      await (await fetch(`${run.base}/static/app.js`)).text(),
    ];
    for (const body of bodies) {
      assert.ok(!body.includes(SECRET), 'password leaked');
      assert.ok(!body.includes('rtsp://'), 'URL leaked');
      assert.ok(!body.includes('192.168.77.10'), 'camera host leaked');
      assert.ok(!body.includes('admin:'), 'user leaked');
    }
    const garden = JSON.parse(bodies[1]!) as { lastError: string };
    assert.match(garden.lastError, /ECONNREFUSED <camera url>/);
  });

  it('answers one camera, 404 for unknown and 400 for malformed ids', async () => {
    const one = await fetch(`${run.base}/api/cameras/garage`);
    assert.equal(one.status, 200);
    assert.equal(((await one.json()) as { name: string }).name, 'Garage');
    const missing = await fetch(`${run.base}/api/cameras/attic`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'not-found', message: 'No camera with id "attic"' });
    for (const bad of ['a%20b', 'x'.repeat(41), 'Front-Door', 'a_b', '.x', 'rtsp%3A%2F%2Fevil', '-lead', 'a%2Fb']) {
      const response = await fetch(`${run.base}/api/cameras/${bad}`);
      assert.equal(response.status, 400, bad);
      assert.equal(((await response.json()) as { error: string }).error, 'bad-request');
    }
    const badEncoding = await fetch(`${run.base}/api/cameras/%E0%A4%A`);
    assert.equal(badEncoding.status, 400);
  });

  it('serves snapshots; 204 when there is no picture yet', async () => {
    snapshots.set('front-door', Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
    const image = await fetch(`${run.base}/api/cameras/front-door/snapshot.jpg?width=640`);
    assert.equal(image.status, 200);
    assert.equal(image.headers.get('content-type'), 'image/jpeg');
    assert.equal(image.headers.get('cache-control'), 'no-store');
    assert.deepEqual(Buffer.from(await image.arrayBuffer()), Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
    const none = await fetch(`${run.base}/api/cameras/garage/snapshot.jpg`);
    assert.equal(none.status, 204);
    const missing = await fetch(`${run.base}/api/cameras/attic/snapshot.jpg`);
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
  });

  it('serves the saved snapshot at once, with its capture time and age, while the live one is still being taken', async () => {
    const live = Buffer.from([0xff, 0xd8, 0x01, 0xff, 0xd9]);
    const old = Buffer.from([0xff, 0xd8, 0x02, 0xff, 0xd9]);
    const capturedAt = Date.now() - 2 * 3600_000 - 5000;
    saved.set('front-door', { image: old, capturedAt });
    let release!: (image: Buffer) => void;
    snapshots.set('front-door', new Promise<Buffer>((resolve) => (release = resolve)));
    let liveDone = false;
    const liveRequest = fetch(`${run.base}/api/cameras/front-door/snapshot.jpg?width=640`).then((response) => {
      liveDone = true;
      return response;
    });
    const cached = await fetch(`${run.base}/api/cameras/front-door/last-snapshot.jpg`);
    assert.equal(liveDone, false, 'the saved picture does not wait for the live one');
    assert.equal(cached.status, 200);
    assert.equal(cached.headers.get('content-type'), 'image/jpeg');
    assert.equal(cached.headers.get('cache-control'), 'no-store');
    assert.equal(cached.headers.get('last-modified'), new Date(capturedAt).toUTCString());
    const age = Number(cached.headers.get('x-snapshot-age-seconds'));
    assert.ok(age >= 7205 && age <= 7205 + 60, `age ${age}`);
    assert.deepEqual(Buffer.from(await cached.arrayBuffer()), old);
    release(live);
    const fresh = await liveRequest;
    assert.deepEqual(Buffer.from(await fresh.arrayBuffer()), live);
    // HEAD: the headers, no body.
    const head = await fetch(`${run.base}/api/cameras/front-door/last-snapshot.jpg`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(old.length));
    // Nothing saved: 204, like the live snapshot's "no picture yet"; unknown 404; malformed 400.
    assert.equal((await fetch(`${run.base}/api/cameras/garage/last-snapshot.jpg`)).status, 204);
    const missing = await fetch(`${run.base}/api/cameras/attic/last-snapshot.jpg`);
    assert.equal(missing.status, 404);
    await missing.arrayBuffer();
    const bad = await fetch(`${run.base}/api/cameras/..%2Fsecret/last-snapshot.jpg`);
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
  });

  it('validates snapshot sizes and bounds the provider', async () => {
    for (const query of ['width=0', 'width=99999', 'width=-5', 'width=12.5', 'height=abc', 'width=1e3']) {
      const response = await fetch(`${run.base}/api/cameras/front-door/snapshot.jpg?${query}`);
      assert.equal(response.status, 400, query);
      await response.arrayBuffer();
    }
    snapshots.set('garden', 'slow');
    const slow = await fetch(`${run.base}/api/cameras/garden/snapshot.jpg`);
    assert.equal(slow.status, 504);
    await slow.arrayBuffer();
    snapshots.set('garden', new Error(`ffmpeg failed for rtsp://admin:${SECRET}@192.168.77.10/`));
    const failing = await fetch(`${run.base}/api/cameras/garden/snapshot.jpg`);
    assert.equal(failing.status, 503);
    const text = await failing.text();
    assert.ok(!text.includes(SECRET));
    assert.ok(run.logs.some((line) => line.includes('Snapshot for camera "garden" failed')));
    assert.ok(!run.logs.some((line) => line.includes(SECRET)), 'secret in the log');
  });

  it('survives a registry that throws, with a 500 that says nothing internal', async () => {
    const broken = await start({
      registry: {
        get: () => undefined,
        list: () => {
          throw new Error(`boom rtsp://admin:${SECRET}@10.0.0.1/`);
        },
      },
      secrets: () => [SECRET],
    });
    try {
      const response = await fetch(`${broken.base}/api/cameras`);
      assert.equal(response.status, 500);
      assert.deepEqual(await response.json(), { error: 'internal', message: 'Internal error' });
      assert.ok(broken.logs.some((line) => line.includes('GET /api/cameras failed')));
      assert.ok(!broken.logs.some((line) => line.includes(SECRET)));
      assert.equal((await fetch(`${broken.base}/static/app.js`)).status, 200);
    } finally {
      await broken.server.close();
    }
  });
});

describe('web server: WHEP routing', () => {
  let run: Running;
  const calls: WhepCall[] = [];
  before(async () => {
    run = await start({ whep: stubWhep(calls), allowedOrigins: ['https://player.example'] });
  });
  after(() => run.server.close());

  it('POST hands the offer to the handler and relays its answer', async () => {
    const response = await fetch(`${run.base}/whep/front-door`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: OFFER,
    });
    assert.equal(response.status, 201);
    assert.equal(response.headers.get('location'), '/whep/front-door/sess-1');
    assert.equal(response.headers.get('etag'), '"e1"');
    assert.equal(response.headers.get('content-type'), 'application/sdp');
    assert.equal(await response.text(), 'v=0\r\nanswer\r\n');
    const call = calls.at(-1)!;
    assert.equal(call.kind, 'post');
    assert.equal(call.camera, 'front-door');
    assert.equal(call.body, OFFER);
    assert.equal(call.principal.cameras, 'all');
  });

  it('refuses wrong types, garbage, unknown cameras and oversized offers before the handler', async () => {
    const before = calls.length;
    const post = (path: string, type: string, body: string) =>
      fetch(`${run.base}${path}`, { method: 'POST', headers: { 'Content-Type': type }, body });
    const wrongType = await post('/whep/front-door', 'application/json', '{}');
    assert.equal(wrongType.status, 415);
    const garbage = await post('/whep/front-door', 'application/sdp', 'hello');
    assert.equal(garbage.status, 400);
    const unknown = await post('/whep/attic', 'application/sdp', OFFER);
    assert.equal(unknown.status, 404);
    const badId = await post('/whep/..%2f..%2fetc', 'application/sdp', OFFER);
    assert.equal(badId.status, 400);
    const big = await post('/whep/front-door', 'application/sdp', OFFER + 'a=x\r\n'.repeat(20000));
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: string }).error, 'too-large');
    const notUtf8 = await fetch(`${run.base}/whep/front-door`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: Buffer.from([0x76, 0x3d, 0x30, 0xff, 0xfe]),
    });
    assert.equal(notUtf8.status, 400);
    assert.equal(calls.length, before, 'the handler saw a refused request');
  });

  it('refuses an oversized chunked offer without a Content-Length', async () => {
    const chunk = 'a'.repeat(8192);
    let request = 'POST /whep/front-door HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nTransfer-Encoding: chunked\r\n\r\n';
    for (let i = 0; i < 10; i++) request += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    request += '0\r\n\r\n';
    const response = await rawRequest(run.port, request);
    assert.equal(response.status, 413);
  });

  it('DELETE and PATCH reach the handler with the session', async () => {
    const deleted = await fetch(`${run.base}/whep/front-door/sess-1`, { method: 'DELETE' });
    assert.equal(deleted.status, 200);
    assert.deepEqual(
      { kind: calls.at(-1)!.kind, camera: calls.at(-1)!.camera, session: calls.at(-1)!.session },
      { kind: 'delete', camera: 'front-door', session: 'sess-1' },
    );
    const patched = await fetch(`${run.base}/whep/front-door/sess-1`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' },
      body: 'a=ice-ufrag:abcd\r\n',
    });
    assert.equal(patched.status, 204);
    assert.equal(calls.at(-1)!.kind, 'patch');
    assert.equal(calls.at(-1)!.body, 'a=ice-ufrag:abcd\r\n');
    const wrongType = await fetch(`${run.base}/whep/front-door/sess-1`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/sdp' },
      body: 'x',
    });
    assert.equal(wrongType.status, 415);
    const badSession = await fetch(`${run.base}/whep/front-door/bad%20session`, { method: 'DELETE' });
    assert.equal(badSession.status, 404);
  });

  it('answers CORS preflight for configured origins only', async () => {
    const allowed = await fetch(`${run.base}/whep/front-door`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://player.example', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://player.example');
    assert.match(allowed.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.match(allowed.headers.get('access-control-expose-headers') ?? '', /Location/);
    assert.equal(allowed.headers.get('accept-post'), 'application/sdp');
    const session = await fetch(`${run.base}/whep/front-door/sess-1`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://player.example' },
    });
    assert.match(session.headers.get('access-control-allow-methods') ?? '', /DELETE/);
    const foreign = await fetch(`${run.base}/whep/front-door`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(foreign.status, 204);
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  });

  it('an allowed origin can POST; a foreign origin gets 403 before the handler', async () => {
    const before = calls.length;
    const allowed = await fetch(`${run.base}/whep/front-door`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Origin: 'https://player.example' },
      body: OFFER,
    });
    assert.equal(allowed.status, 201);
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'https://player.example');
    const foreign = await fetch(`${run.base}/whep/front-door`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Origin: 'https://evil.example' },
      body: OFFER,
    });
    assert.equal(foreign.status, 403);
    const sameOrigin = await fetch(`${run.base}/whep/front-door`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp', Origin: run.base },
      body: OFFER,
    });
    assert.equal(sameOrigin.status, 201);
    assert.equal(calls.length, before + 2);
  });

  it('without a WHEP handler the routes answer 501; without PATCH support, 405', async () => {
    const bare = await start({ whep: stubWhep([], false) });
    const none = await start();
    try {
      const patch = await fetch(`${bare.base}/whep/front-door/sess-1`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' },
        body: 'x',
      });
      assert.equal(patch.status, 405);
      const post = await fetch(`${none.base}/whep/front-door`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: OFFER,
      });
      assert.equal(post.status, 501);
    } finally {
      await bare.server.close();
      await none.server.close();
    }
  });

  it('a handler that throws gives 500 and the server stays up', async () => {
    const throwing = await start({
      whep: {
        handlePost: () => {
          throw new Error('werift exploded');
        },
        handleDelete: () => ({ status: 999 }),
      },
    });
    try {
      const post = await fetch(`${throwing.base}/whep/front-door`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: OFFER,
      });
      assert.equal(post.status, 500);
      const del = await fetch(`${throwing.base}/whep/front-door/s1`, { method: 'DELETE' });
      assert.equal(del.status, 500);
      assert.equal((await fetch(`${throwing.base}/api/cameras`)).status, 200);
    } finally {
      await throwing.server.close();
    }
  });
});

describe('web server: auth seam and extra routes', () => {
  const onlyFront: Principal = { name: 'grandma', cameras: ['front-door'], admin: false };
  let run: Running;
  let login: Running;
  const whepCalls: WhepCall[] = [];
  before(async () => {
    // A stand-in for access control: a bearer token picks the principal.
    const authorize = (req: { headers: Record<string, string | string[] | undefined> }) => {
      const auth = req.headers.authorization;
      if (auth === 'Bearer grandma') return onlyFront;
      if (auth === 'Bearer admin') return { name: 'admin', cameras: 'all' as const, admin: true };
      return undefined;
    };
    const routes: WebServerOptions['routes'] = [
      {
        method: 'POST',
        path: '/login',
        auth: 'public',
        async handle(ctx) {
          const body = (await ctx.readJson()) as { user?: unknown };
          ctx.sendJson(200, { hello: typeof body.user === 'string' ? body.user : null });
        },
      },
      {
        method: 'GET',
        path: '/api/admin/links/:link',
        auth: 'admin',
        handle(ctx) {
          ctx.sendJson(200, { link: ctx.params.link });
        },
      },
    ];
    run = await start({ authorize, routes, whep: stubWhep(whepCalls), signalling: () => undefined });
    login = await start({ authorize: () => undefined, loginPath: '/login' });
  });
  after(async () => {
    await run.server.close();
    await login.server.close();
  });

  it('anonymous callers get 401 everywhere but static files and public routes', async () => {
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/api/cameras'],
      ['GET', '/api/cameras/front-door'],
      ['GET', '/api/cameras/front-door/snapshot.jpg'],
      ['GET', '/api/cameras/front-door/last-snapshot.jpg'],
      ['DELETE', '/whep/front-door/s1'],
    ] as const) {
      const response = await fetch(`${run.base}${path}`, { method });
      assert.equal(response.status, 401, `${method} ${path}`);
      assert.match(response.headers.get('www-authenticate') ?? '', /Bearer/);
      await response.arrayBuffer();
    }
    const post = await fetch(`${run.base}/whep/front-door`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/sdp' },
      body: OFFER,
    });
    assert.equal(post.status, 401);
    assert.equal((await fetch(`${run.base}/static/app.js`)).status, 200);
    assert.equal(await refusedUpgrade(`ws://127.0.0.1:${run.port}/signal`), 401);
    assert.equal(whepCalls.length, 0);
  });

  it('redirects the page to loginPath when one is configured', async () => {
    const response = await fetch(`${login.base}/`, { redirect: 'manual' });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), '/login');
    assert.equal((await fetch(`${login.base}/api/cameras`)).status, 401);
  });

  it('a principal sees only its cameras and gets 403 on the others', async () => {
    const headers = { Authorization: 'Bearer grandma' };
    const list = (await (await fetch(`${run.base}/api/cameras`, { headers })).json()) as Array<{ id: string }>;
    assert.deepEqual(list.map((camera) => camera.id), ['front-door']);
    assert.equal((await fetch(`${run.base}/api/cameras/front-door`, { headers })).status, 200);
    const other = await fetch(`${run.base}/api/cameras/garden`, { headers });
    assert.equal(other.status, 403);
    // Permission is decided before existence, so ids cannot be probed.
    assert.equal((await fetch(`${run.base}/api/cameras/attic`, { headers })).status, 403);
    assert.equal((await fetch(`${run.base}/api/cameras/garden/snapshot.jpg`, { headers })).status, 403);
    assert.equal((await fetch(`${run.base}/api/cameras/garden/last-snapshot.jpg`, { headers })).status, 403);
    assert.equal((await fetch(`${run.base}/api/cameras/attic/last-snapshot.jpg`, { headers })).status, 403);
    const whep = await fetch(`${run.base}/whep/garden`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/sdp' },
      body: OFFER,
    });
    assert.equal(whep.status, 403);
    const ok = await fetch(`${run.base}/whep/front-door`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/sdp' },
      body: OFFER,
    });
    assert.equal(ok.status, 201);
    assert.equal(whepCalls.at(-1)!.principal.name, 'grandma');
  });

  it('extra routes: public JSON with limits; admin routes need admin', async () => {
    const hello = await fetch(`${run.base}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: 'grandma' }),
    });
    assert.deepEqual(await hello.json(), { hello: 'grandma' });
    const big = await fetch(`${run.base}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: 'x'.repeat(64 * 1024) }),
    });
    assert.equal(big.status, 413);
    const malformed = await fetch(`${run.base}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"user":',
    });
    assert.equal(malformed.status, 400);
    const form = await fetch(`${run.base}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: 'user=x',
    });
    assert.equal(form.status, 415);
    const crossSite = await fetch(`${run.base}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Origin: 'https://evil.example' },
      body: '{}',
    });
    assert.equal(crossSite.status, 403);
    const viewer = await fetch(`${run.base}/api/admin/links/abc`, { headers: { Authorization: 'Bearer grandma' } });
    assert.equal(viewer.status, 403);
    const admin = await fetch(`${run.base}/api/admin/links/abc`, { headers: { Authorization: 'Bearer admin' } });
    assert.deepEqual(await admin.json(), { link: 'abc' });
  });

  it('does not log raw paths (they may carry tokens)', async () => {
    await fetch(`${run.base}/api/admin/links/secret-token-123`, { headers: { Authorization: 'Bearer admin' } });
    assert.ok(run.logs.some((line) => line.includes('GET /api/admin/links/:link -> 200')));
    assert.ok(!run.logs.some((line) => line.includes('secret-token-123')));
  });
});

describe('web server: /signal WebSocket gateway', () => {
  let run: Running;
  const accepted: Array<{ ws: WebSocket; ctx: CallerContext }> = [];
  before(async () => {
    run = await start({
      limits: { maxWsPayload: 1024, maxSignallingSockets: 20 },
      authorize: (req) =>
        req.headers.authorization === 'Bearer admin'
          ? { name: 'admin', cameras: 'all', admin: true }
          : { name: 'guest', cameras: 'all', admin: false },
      signalling: (ws, ctx) => {
        accepted.push({ ws, ctx });
        // A minimal protocol handler: echo what it understood, answer bad-request otherwise.
        ws.on('message', (data, isBinary) => {
          let message: unknown;
          try {
            message = isBinary ? undefined : JSON.parse(data.toString());
          } catch {
            message = undefined;
          }
          if (message && typeof message === 'object' && 'type' in message) ws.send(JSON.stringify({ echo: message }));
          else ws.send(JSON.stringify({ type: 'error', code: 'bad-request', message: 'Malformed message' }));
        });
      },
    });
  });
  after(() => run.server.close());

  const url = () => `ws://127.0.0.1:${run.port}/signal`;

  it('hands the socket to the signalling handler with the caller', async () => {
    const ws = await openSocket(url());
    const reply = new Promise<string>((resolve) => ws.once('message', (data) => resolve(data.toString())));
    ws.send(JSON.stringify({ type: 'watch', camera: 'front-door' }));
    assert.deepEqual(JSON.parse(await reply), { echo: { type: 'watch', camera: 'front-door' } });
    const { ctx } = accepted.at(-1)!;
    assert.equal(ctx.principal.name, 'guest');
    assert.equal(ctx.remoteAddress, '127.0.0.1');
    assert.equal(run.server.signallingSockets, 1);
    ws.close();
    await closed(ws);
  });

  it('refuses other paths, foreign origins and plain GETs', async () => {
    assert.equal(await refusedUpgrade(`ws://127.0.0.1:${run.port}/other`), 404);
    assert.equal(await refusedUpgrade(url(), { Origin: 'https://evil.example' }), 403);
    const same = await openSocket(url(), { Origin: `http://127.0.0.1:${run.port}` });
    same.close();
    const plain = await fetch(`${run.base}/signal`);
    assert.equal(plain.status, 404);
  });

  it('malformed and oversized messages never take the server down', async () => {
    const ws = await openSocket(url());
    const replies: string[] = [];
    ws.on('message', (data) => replies.push(data.toString()));
    for (const junk of ['', 'not json', '{', '[]', 'null', '{"type":', '\u0000\u0001', '{"type":"watch","camera":{"$gt":""}}']) {
      ws.send(junk);
    }
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(replies.length >= 8);
    const tooBig = closed(ws);
    ws.send('x'.repeat(4096));
    assert.equal((await tooBig).code, 1009);

    // Invalid UTF-8 in a text frame is a protocol error (1007), not a crash.
    const raw = await openSocket(url());
    const invalid = closed(raw);
    (raw as unknown as { _sender: { sendFrame(list: Buffer[], cb?: () => void): void } })._sender.sendFrame([
      Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xc3, 0x28]),
    ]);
    assert.equal((await invalid).code, 1007);

    const fresh = await openSocket(url());
    const reply = new Promise<string>((resolve) => fresh.once('message', (data) => resolve(data.toString())));
    fresh.send('{"type":"stop"}');
    assert.match(await reply, /stop/);
    fresh.close();
    assert.equal((await fetch(`${run.base}/api/cameras`)).status, 200);
  });

  it('disconnect() closes matching sessions with the revoked code', async () => {
    const guest = await openSocket(url());
    const admin = await openSocket(url(), { Authorization: 'Bearer admin' });
    const guestClosed = closed(guest);
    assert.equal(run.server.disconnect((principal) => principal.name === 'guest', 'Link revoked'), 1);
    assert.deepEqual(await guestClosed, { code: 4001, reason: 'Link revoked' });
    assert.equal(admin.readyState, WebSocket.OPEN);
    admin.close();
    await closed(admin);
  });

  it('caps open sockets', async () => {
    const sockets: WebSocket[] = [];
    while (run.server.signallingSockets < 20) sockets.push(await openSocket(url()));
    assert.equal(await refusedUpgrade(url()), 503);
    for (const ws of sockets) ws.close();
    await Promise.all(sockets.map((ws) => (ws.readyState === WebSocket.CLOSED ? undefined : closed(ws))));
  });

  it('a handler that throws closes that socket with 1011', async () => {
    const throwing = await start({
      signalling: () => {
        throw new Error('handler bug');
      },
    });
    try {
      const ws = await openSocket(`ws://127.0.0.1:${throwing.port}/signal`);
      assert.equal((await closed(ws)).code, 1011);
    } finally {
      await throwing.server.close();
    }
  });

  it('without a signalling handler the upgrade answers 503', async () => {
    const bare = await start();
    try {
      assert.equal(await refusedUpgrade(`ws://127.0.0.1:${bare.port}/signal`), 503);
    } finally {
      await bare.server.close();
    }
  });

  it('close() ends open sockets with 1001', async () => {
    const temp = await start({ signalling: () => undefined });
    const ws = await openSocket(`ws://127.0.0.1:${temp.port}/signal`);
    const ended = closed(ws);
    await temp.server.close();
    assert.equal((await ended).code, 1001);
  });
});

describe('web server: client config', () => {
  it('gives the page its ICE servers, to signed-in viewers only', async () => {
    const turn = { urls: 'turn:turn.example:3478', username: 'u', credential: 'c' };
    const open = await start({ clientIceServers: () => [turn] });
    const closedDoor = await start({ authorize: () => undefined });
    try {
      assert.deepEqual(await (await fetch(`${open.base}/api/config`)).json(), { iceServers: [turn] });
      assert.equal((await fetch(`${closedDoor.base}/api/config`)).status, 401);
      const none = await start();
      assert.deepEqual(await (await fetch(`${none.base}/api/config`)).json(), { iceServers: [] });
      await none.server.close();
    } finally {
      await open.server.close();
      await closedDoor.server.close();
    }
  });
});

describe('web server: slow clients', () => {
  /** Opens a raw connection, sends `first`, then `drip` every 200 ms; resolves when the server closes it. */
  function trickle(port: number, first: string, drip: string): Promise<{ afterMs: number; answer: string }> {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      let answer = '';
      const socket = connect(port, '127.0.0.1', () => socket.write(first));
      const timer = setInterval(() => socket.writable && socket.write(drip), 200);
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(timer);
        resolve({ afterMs: Date.now() - started, answer });
      });
      setTimeout(() => {
        clearInterval(timer);
        socket.destroy();
        reject(new Error(`still open after 10 s; received: ${answer.slice(0, 200)}`));
      }, 10_000);
    });
  }

  it('cuts off a client trickling its headers (slowloris) or its body, and serves others meanwhile', async () => {
    const running = await start({ limits: { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 } });
    try {
      const headers = trickle(running.port, 'GET /api/cameras HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n');
      const body = trickle(running.port, 'POST /whep/cam1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/sdp\r\nContent-Length: 5000\r\n\r\n', 'v');
      const meanwhile = await fetch(`${running.base}/api/cameras`);
      assert.equal(meanwhile.status, 200, 'a normal request is served while the slow ones hang on');
      const [slowHeaders, slowBody] = await Promise.all([headers, body]);
      // Node answers 408 when it can; either way the connection is gone soon after the limit.
      assert.ok(slowHeaders.afterMs >= 900 && slowHeaders.afterMs < 3_000, `headers cut off after ${slowHeaders.afterMs} ms`);
      assert.match(slowHeaders.answer, /^(HTTP\/1\.1 408|$)/);
      assert.ok(slowBody.afterMs >= 1_900 && slowBody.afterMs < 4_500, `body cut off after ${slowBody.afterMs} ms`);
      assert.doesNotMatch(slowBody.answer, /^HTTP\/1\.1 2/, 'the WHEP handler never saw the half offer');
    } finally {
      await running.server.close();
    }
  });
});

describe('web server: listen', () => {
  it('reports a port conflict clearly', async () => {
    const first = await start();
    const second = createWebServer({ port: first.port, host: '127.0.0.1', registry: registryOf([]) });
    try {
      await assert.rejects(second.listen(), /cannot listen on 127\.0\.0\.1:\d+: the port is already in use/);
    } finally {
      await second.close();
      await first.server.close();
    }
  });

  it('gives a URL to open', async () => {
    const server = createWebServer({ port: 0, host: '127.0.0.1', registry: registryOf([new FakeSource('a', 'A')]) });
    const { url, port } = await server.listen();
    assert.equal(url, `http://127.0.0.1:${port}/`);
    await server.close();
  });
});
