/**
 * Web triggers (issue 17 doorbell, issue 16 motion) and the page's event stream on a real web server
 * (loopback). Wrong token or unknown camera: 403 and nothing fired, the same answer for both and for
 * either kind; right token: fired; a flood: capped per camera and kind (429), a doorbell's presses
 * debounced; wrong tokens from one address: 429 after a few, counted across kinds. The doorbell rings
 * on POST only; motion also answers GET, never HEAD, and takes `state=off`. The event stream:
 * signed-in viewers only, and only the cameras they may watch.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, describe, it } from 'node:test';

import type { Principal } from '../../src/access/principal.js';
import { DoorbellPresses } from '../../src/runtime/doorbell.js';
import { EVENTS_PATH, EventStream } from '../../src/web/event-stream.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { motionStateOf, webTriggerPath, webTriggerRoutes, type WebTrigger, type WebTriggerKind } from '../../src/web/web-trigger.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { registryOf, sampleCameras } from './fixtures.js';

const TOKEN = 'A'.repeat(20) + 'b'.repeat(12);
const MOTION_TOKEN = 'M'.repeat(20) + 'o'.repeat(12);
const servers: WebServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function start(options: Partial<Parameters<typeof createWebServer>[0]>): Promise<string> {
  const server = createWebServer({ port: 0, host: '127.0.0.1', registry: registryOf(sampleCameras()), log: recordingLogger(), ...options });
  servers.push(server);
  const { port } = await server.listen();
  return `http://127.0.0.1:${port}`;
}

function post(base: string, path: string): Promise<number> {
  return call(base, path, 'POST');
}

function call(base: string, path: string, method: string): Promise<number> {
  const body = method === 'POST' ? { body: '<EventNotificationAlert/>', headers: { 'content-type': 'application/xml' } } : {};
  return fetch(`${base}${path}`, { method, ...body }).then(async (r) => {
    await r.arrayBuffer();
    return r.status;
  });
}

/** Triggers of one camera 'front' by kind; every other camera and kind has none. */
function frontOnly(triggers: Partial<Record<WebTriggerKind, WebTrigger>>): (kind: WebTriggerKind, id: string) => WebTrigger | undefined {
  return (kind, id) => (id === 'front' ? triggers[kind] : undefined);
}

/** A motion trigger that records what it was asked (true: motion, false: over). */
function motionRecorder(): WebTrigger & { calls: boolean[] } {
  const calls: boolean[] = [];
  return { token: MOTION_TOKEN, calls, fire: (query) => (calls.push(motionStateOf(query)), { motion: calls.at(-1) }) };
}

describe('web triggers: doorbell', () => {
  it('refuses a wrong token and an unknown camera alike (403, no press), rings with the right one', async () => {
    let presses = 0;
    const trigger: WebTrigger = { token: TOKEN, fire: () => (++presses, { rang: true }) };
    const base = await start({ routes: webTriggerRoutes({ trigger: frontOnly({ doorbell: trigger }) }) });
    assert.equal(await post(base, webTriggerPath('doorbell', 'front', 'A'.repeat(20) + 'b'.repeat(11) + 'c')), 403);
    assert.equal(await post(base, webTriggerPath('doorbell', 'front', TOKEN.slice(0, -1))), 403);
    assert.equal(await post(base, webTriggerPath('doorbell', 'back', TOKEN)), 403);
    assert.equal(presses, 0);
    const response = await fetch(`${base}${webTriggerPath('doorbell', 'front', TOKEN)}`, { method: 'POST' });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { rang: true });
    assert.equal(presses, 1);
    // Only POST rings: a link preview or prefetch (GET) must not.
    const get = await fetch(`${base}${webTriggerPath('doorbell', 'front', TOKEN)}`);
    assert.equal(get.status, 405);
    assert.equal(presses, 1);
  });

  it('a flood with the right token rings once (debounced) and is then refused with 429', async () => {
    let rings = 0;
    const presses = new DoorbellPresses({ ring: () => rings++, log: recordingLogger() });
    const trigger: WebTrigger = { token: TOKEN, fire: () => ({ rang: presses.press('http') }) };
    const base = await start({ routes: webTriggerRoutes({ trigger: () => trigger, maxPerWindow: 5, windowMs: 60_000 }) });
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push(await post(base, webTriggerPath('doorbell', 'front', TOKEN)));
    assert.equal(rings, 1);
    assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
    assert.ok(statuses.slice(5).every((s) => s === 429), statuses.join(','));
  });

  it('throttles an address that keeps guessing: 429 after a few wrong tokens, even for the right one', async () => {
    let presses = 0;
    const trigger: WebTrigger = { token: TOKEN, fire: () => (++presses, { rang: true }) };
    const base = await start({ routes: webTriggerRoutes({ trigger: () => trigger }) });
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push(await post(base, webTriggerPath('doorbell', 'front', `guess-${i}-${'x'.repeat(30)}`)));
    assert.deepEqual(statuses.slice(0, 4), [403, 403, 403, 403]);
    assert.equal(statuses.at(-1), 429);
    assert.equal(await post(base, webTriggerPath('doorbell', 'front', TOKEN)), 429);
    assert.equal(presses, 0);
  });
});

describe('web triggers: motion', () => {
  it('POST or GET with an empty body is motion, state=off ends it, HEAD does nothing; a bad state is 400 only behind the right token', async () => {
    const motion = motionRecorder();
    const base = await start({ routes: webTriggerRoutes({ trigger: frontOnly({ motion }) }) });
    const path = webTriggerPath('motion', 'front', MOTION_TOKEN);
    const response = await fetch(`${base}${path}`, { method: 'POST' });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { motion: true });
    assert.equal(await call(base, path, 'GET'), 200);
    assert.equal(await post(base, `${path}?state=off`), 200);
    assert.equal(await call(base, `${path}?state=on`, 'GET'), 200);
    assert.equal(await call(base, `${path}?state=OFF`, 'GET'), 200);
    assert.deepEqual(motion.calls, [true, true, false, true, false]);
    // HEAD (a link checker) asks about the address: it must not set anything off.
    assert.equal(await call(base, path, 'HEAD'), 405);
    assert.equal(await call(base, `${path}?state=maybe`, 'POST'), 400);
    assert.equal(motion.calls.length, 5);
    // A wrong token with a bad state still gets the plain 403 (nothing is parsed before the token).
    assert.equal(await call(base, `${webTriggerPath('motion', 'front', 'x'.repeat(32))}?state=maybe`, 'POST'), 403);
  });

  it('wrong token and unknown camera answer the same 403 for GET and POST; a doorbell secret does not work as a motion one', async () => {
    const motion = motionRecorder();
    const doorbell: WebTrigger = { token: TOKEN, fire: () => ({ rang: true }) };
    const base = await start({ routes: webTriggerRoutes({ trigger: frontOnly({ motion, doorbell }) }) });
    const answers = await Promise.all([
      fetch(`${base}${webTriggerPath('motion', 'front', MOTION_TOKEN.slice(0, -1) + 'x')}`, { method: 'POST' }),
      fetch(`${base}${webTriggerPath('motion', 'back', MOTION_TOKEN)}`),
      fetch(`${base}${webTriggerPath('motion', 'front', TOKEN)}`, { method: 'POST' }),
    ]);
    const bodies = await Promise.all(answers.map(async (r) => [r.status, await r.text()]));
    assert.deepEqual(bodies, Array(3).fill([403, '{"error":"forbidden","message":"Unknown motion address"}']));
    assert.deepEqual(motion.calls, []);
  });

  it('caps one camera per window (429 with Retry-After), and counts wrong guesses across kinds', async () => {
    const motion = motionRecorder();
    const base = await start({ routes: webTriggerRoutes({ trigger: frontOnly({ motion }), maxPerWindow: 3, windowMs: 60_000 }) });
    const path = webTriggerPath('motion', 'front', MOTION_TOKEN);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await call(base, path, i % 2 ? 'GET' : 'POST'));
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const capped = await fetch(`${base}${path}`, { method: 'POST' });
    assert.equal(capped.status, 429);
    assert.ok(Number(capped.headers.get('retry-after')) > 0);
    assert.equal(motion.calls.length, 3);

    const other = motionRecorder();
    const guarded = await start({ routes: webTriggerRoutes({ trigger: frontOnly({ motion: other }) }) });
    // Guesses at the doorbell and at motion add up: the address is throttled for both.
    for (let i = 0; i < 3; i++) assert.equal(await post(guarded, webTriggerPath('doorbell', 'front', `guess-${i}-${'x'.repeat(30)}`)), 403);
    const more: number[] = [];
    for (let i = 0; i < 4; i++) more.push(await call(guarded, webTriggerPath('motion', 'front', `guess-${i}-${'y'.repeat(30)}`), 'GET'));
    assert.equal(more.at(-1), 429);
    assert.equal(await call(guarded, webTriggerPath('motion', 'front', MOTION_TOKEN), 'GET'), 429);
    assert.deepEqual(other.calls, []);
  });
});

/** Opens the event stream and collects its text until `until` matches (or the timeout). */
function readEvents(base: string, user: string | undefined, until: RegExp, timeoutMs = 1500): Promise<{ status: number; text: string; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${EVENTS_PATH}`, { headers: user ? { authorization: `Bearer ${user}` } : {} }, (res) => {
      let text = '';
      const done = (): void => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, text, retryAfter: res.headers['retry-after'] });
      };
      const timer = setTimeout(done, timeoutMs);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (until.test(text)) done();
      });
      res.on('end', done);
    });
    req.on('error', (error) => (error.message === 'socket hang up' ? undefined : reject(error)));
    req.end();
  });
}

describe('watch page event stream', () => {
  it('delivers a doorbell event to signed-in viewers of that camera only; anonymous callers get 401', async () => {
    const stream = new EventStream();
    const principals: Record<string, Principal> = {
      alice: { name: 'alice', cameras: 'all', admin: false },
      bob: { name: 'bob', cameras: ['back'], admin: false },
    };
    const base = await start({
      routes: [stream.route],
      authorize: (req) => principals[(req.headers.authorization ?? '').replace(/^Bearer /, '')],
    });
    after(() => stream.close());
    const anonymous = await readEvents(base, undefined, /never/, 500);
    assert.equal(anonymous.status, 401);
    const alice = readEvents(base, 'alice', /event: doorbell/);
    const bob = readEvents(base, 'bob', /event: doorbell/, 800);
    const deadline = Date.now() + 2000;
    while (stream.size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(stream.size, 2);
    assert.equal(stream.publish({ type: 'doorbell', camera: 'front', name: 'Front', at: 1 }), 1);
    const [a, b] = await Promise.all([alice, bob]);
    assert.equal(a.status, 200);
    assert.match(a.text, /event: doorbell\ndata: \{"type":"doorbell","camera":"front","name":"Front","at":1\}/);
    assert.equal(b.status, 200);
    assert.doesNotMatch(b.text, /doorbell/);
  });

  it('ends the streams of a revoked principal', async () => {
    const stream = new EventStream();
    after(() => stream.close());
    const base = await start({ routes: [stream.route], authorize: () => ({ name: 'carol', cameras: 'all', admin: false }) });
    const carol = readEvents(base, 'carol', /never/, 3000);
    const deadline = Date.now() + 2000;
    while (stream.size < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    assert.equal(stream.disconnect((p) => p.name === 'carol'), 1);
    const result = await carol;
    assert.ok(Date.now() - started < 2000, 'the stream ended at once');
    assert.equal(stream.size, 0);
    assert.equal(stream.publish({ type: 'doorbell', camera: 'front', name: 'Front', at: 2 }), 0);
    assert.doesNotMatch(result.text, /doorbell/);
  });

  it('caps streams per principal and per client address: 429 with Retry-After, so one share link cannot take every slot', async () => {
    const stream = new EventStream({ maxPerPrincipal: 2, maxPerAddress: 3 });
    after(() => stream.close());
    const base = await start({ routes: [stream.route], authorize: (req) => ({ name: (req.headers.authorization ?? '').replace(/^Bearer /, ''), cameras: 'all', admin: false }) });
    const open = [readEvents(base, 'link:a', /never/, 1500), readEvents(base, 'link:a', /never/, 1500)];
    const deadline = Date.now() + 2000;
    while (stream.size < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(stream.size, 2);
    const third = await readEvents(base, 'link:a', /never/, 500);
    assert.equal(third.status, 429);
    assert.equal(third.retryAfter, '30');
    // Someone else from the same address gets the address's last slot, then the address is full.
    open.push(readEvents(base, 'bob', /never/, 1500));
    while (stream.size < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(stream.size, 3);
    assert.equal((await readEvents(base, 'carol', /never/, 500)).status, 429);
    for (const result of await Promise.all(open)) assert.equal(result.status, 200);
  });
});
