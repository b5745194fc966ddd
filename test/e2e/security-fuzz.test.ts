/**
 * Fuzz end to end, behind access control: while a signed-in viewer plays a camera in Chromium,
 * 1000 random and malformed messages go to the WebSocket signalling (on authenticated sockets, so
 * they reach the handler) and 1000 random and malformed requests go to WHEP (real offers mutated,
 * garbage, wrong types, wrong paths, oversized bodies, good and bad credentials). Checked: the
 * process stays up and answers, no request gets a 500, memory stays bounded, and the viewer's
 * framesDecoded keeps rising throughout. Then the whole run (every log line, every API answer the
 * fuzzers and the browser got, the page HTML) is grepped for the camera and viewer passwords.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Page } from 'playwright-core';
import { WebSocket } from 'ws';
import { launchChromium, readRtcStats, waitForRtcStats, type ChromiumSession } from '../helpers/browser.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { createAccessControl, type AccessControl } from '../../src/web/auth/index.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { createSignallingHandler } from '../../src/webrtc/signalling.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { CAMERA_PASSWORD, CookieJar, recordingLogger, request, signIn } from '../web/auth-helpers.js';
import { FakeSource, H264_TRACK } from '../web/fixtures.js';
import { registryOf } from '../web/fixtures.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const VIEWERS = [
  { username: 'ada', password: 'Ada-Admin-Secret-551', cameras: [], admin: true },
  { username: 'vera', password: 'Vera-Viewer-Secret-662', cameras: ['cam-a'], admin: false },
  { username: 'mallory', password: 'Mallory-Fuzz-Secret-773', cameras: ['cam-a', 'garden'], admin: false },
];
const PASSWORDS = [...VIEWERS.map((v) => v.password), CAMERA_PASSWORD];

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function heapMb(): number {
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

function mutateSdp(sdp: string, random: () => number): string {
  const lines = sdp.split('\r\n');
  const out: string[] = [];
  for (const line of lines) {
    const roll = random();
    if (roll < 0.05) continue; // drop
    if (roll < 0.1) {
      out.push(line, line); // duplicate
      continue;
    }
    if (roll < 0.15) {
      const chars = [...line];
      const at = Math.floor(random() * Math.max(1, chars.length));
      chars[at] = String.fromCharCode(Math.floor(random() * 128));
      out.push(chars.join(''));
      continue;
    }
    if (roll < 0.18) {
      out.push(`${line}${'9'.repeat(Math.floor(random() * 40))}`);
      continue;
    }
    out.push(line);
  }
  if (random() < 0.1) out.push(`a=candidate:1 1 udp 2122260223 127.0.0.1 ${Math.floor(random() * 65535)} typ host`);
  if (random() < 0.05) out.push('m=application 9 UDP/DTLS/SCTP webrtc-datachannel');
  return out.join(random() < 0.1 ? '\n' : '\r\n');
}

function junkMessage(random: () => number): string | Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const values: unknown[] = [null, 0, -1, 1e308, '', 'x'.repeat(500), [], {}, true, { $gt: '' }, 'cam-a', 'garden', '../etc/passwd', 'rtsp://127.0.0.1/x', '\u0000'];
  switch (Math.floor(random() * 11)) {
    case 0:
      return randomBytes(Math.floor(random() * 300));
    case 1:
      return randomBytes(Math.floor(random() * 200)).toString('latin1');
    case 2:
      return JSON.stringify({ type: pick(['watch', 'answer', 'candidate', 'stop', 'offer', 'WATCH', '', 'error']), camera: pick(values), sdp: pick(values), candidate: pick(values) });
    case 3:
      return JSON.stringify({ type: 'candidate', candidate: { candidate: pick(['candidate:1 1 udp 1 127.0.0.1 9 typ host', 'x', '', `candidate:${'9'.repeat(2000)}`]), sdpMid: pick(values), sdpMLineIndex: pick(values) } });
    case 4:
      return JSON.stringify({ type: 'answer', sdp: `v=0\r\n${randomBytes(200).toString('base64')}` });
    case 5:
      return JSON.stringify(pick(values));
    case 6:
      return '{"type":"watch","camera":"' + 'a'.repeat(Math.floor(random() * 300)) + '"';
    case 7:
      return '{"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}},"type":"watch","camera":"garden"}';
    case 8:
      return JSON.stringify({ type: 'watch', camera: pick(['cam-a', 'garden', 'attic', 'CAM-A', 'cam-a/../garden']) });
    case 9:
      return '['.repeat(5000) + ']'.repeat(5000);
    default:
      return JSON.stringify({ type: 'answer', sdp: `v=0\r\n${'a=x\r\n'.repeat(Math.floor(random() * 3000))}` });
  }
}

describe('e2e security: fuzzing signalling and WHEP while a viewer keeps playing', () => {
  let storage: string;
  let source: SyntheticSource;
  let server: WebServer;
  let access: AccessControl;
  let whep: WhepEndpoint;
  let browser: ChromiumSession;
  let page: Page;
  let base: string;
  let port: number;
  const logs: string[] = [];
  const answers: string[] = [];
  const statusCounts = new Map<number, number>();
  let realOffer = '';
  let linkToken = '';
  let mallory: { jar: CookieJar; csrf: string };

  async function decoded(): Promise<number> {
    // The most of any peer connection: the page also made one only to produce an offer.
    return Math.max(0, ...(await readRtcStats(page)).map((pc) => pc.video?.framesDecoded ?? 0));
  }

  before(async () => {
    storage = await mkdtemp(join(tmpdir(), 'wrc-sec-fuzz-'));
    source = await SyntheticSource.create({ id: 'cam-a', width: 640, height: 360, fps: 25, gop: 25 });
    // A camera whose state carries its RTSP URL with the password, as a real failing camera would.
    const garden = new FakeSource('garden', 'Garden', {
      state: { state: 'retrying', lastError: `connect ECONNREFUSED rtsp://admin:${CAMERA_PASSWORD}@192.168.77.10:554/stream1`, retryInMs: 4000 },
      tracks: [H264_TRACK],
    });
    const registry = registryOf([source, garden]);
    const log = recordingLogger(logs);
    access = await createAccessControl({ viewers: VIEWERS, storagePath: storage, log, cameraIds: () => registry.list().map((s) => s.id) });
    const limits = new ViewerLimiter();
    whep = createWhepHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS, logger: log, tracksTimeoutMs: 300, gatherTimeoutMs: 300, viewerOptions: { connectTimeoutMs: 3000 } });
    server = createWebServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      log,
      authorize: access.authorize,
      routes: access.routes,
      loginPath: access.loginPath,
      secrets: () => [...access.secrets(), CAMERA_PASSWORD],
      signalling: access.guardSignalling(createSignallingHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS, logger: log, tracksTimeoutMs: 300 })),
      whep: access.guardWhep(whep),
    });
    access.onRevoke((predicate, reason) => server.disconnect(predicate, reason));
    ({ port } = await server.listen());
    base = `http://127.0.0.1:${port}`;
    const link = await access.shareLinks.create({ cameras: ['cam-a'], expiresIn: '1d', createdBy: 'ada', label: 'fuzz' });
    linkToken = link.token;
    mallory = await signIn(base, 'mallory', VIEWERS[2]!.password);

    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('response', (response) => {
      const url = response.url();
      if (url.startsWith(base) && !url.includes('/static/')) void response.text().then((t) => answers.push(t), () => undefined);
    });
    await page.goto(`${base}/`);
    await page.fill('input[name=username]', 'vera');
    await page.fill('input[name=password]', VIEWERS[1]!.password);
    await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
    answers.push(await page.content());
    await page.click('[data-camera="cam-a"] .tile-open');
    await waitForRtcStats(page, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 25, { timeoutMs: 25_000 });
    // A real browser offer, to mutate.
    realOffer = await page.evaluate(async () => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      const sdp = pc.localDescription!.sdp;
      pc.close();
      return sdp;
    });
  });
  after(async () => {
    await browser?.close();
    await whep?.closeAll();
    await server?.close();
    await access?.stop();
    source?.close();
    if (storage) await rm(storage, { recursive: true, force: true });
  });

  it('1000 messages to signalling and 1000 requests to WHEP: no crash, no 500, bounded memory, the viewer keeps playing', async () => {
    const random = prng(20240605);
    const heapBefore = heapMb();
    const rssBefore = process.memoryUsage().rss / 1024 / 1024;
    const progress: number[] = [await decoded()];
    let wsReplies = 0;
    let wsMessages = 0;

    const fuzzSignalling = async (count: number): Promise<void> => {
      let sent = 0;
      while (sent < count) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/signal`, { headers: { Cookie: mallory.jar.header() } });
        ws.on('message', (data) => {
          wsReplies++;
          answers.push(String(data));
        });
        ws.on('error', () => undefined);
        const opened = await new Promise<boolean>((resolve) => {
          ws.once('open', () => resolve(true));
          ws.once('unexpected-response', () => resolve(false));
          ws.once('error', () => resolve(false));
        });
        assert.ok(opened, 'an authenticated socket must open');
        const ended = new Promise((resolve) => ws.once('close', resolve));
        for (let i = 0; i < 50 && sent < count && ws.readyState === WebSocket.OPEN; i++, sent++) {
          const message = junkMessage(random);
          ws.send(message, { binary: Buffer.isBuffer(message) });
          wsMessages++;
          if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
        ws.close();
        await ended;
      }
    };

    const whepRequest = async (): Promise<void> => {
      const roll = random();
      const camera = roll < 0.7 ? 'cam-a' : roll < 0.8 ? 'garden' : roll < 0.9 ? encodeURIComponent(randomBytes(6).toString('latin1')) : `${'a'.repeat(600)}`;
      const session = random() < 0.5 ? randomBytes(8).toString('hex') : encodeURIComponent('../../etc');
      const method = random() < 0.6 ? 'POST' : ['PATCH', 'DELETE', 'GET', 'PUT', 'OPTIONS'][Math.floor(random() * 5)]!;
      const path = method === 'POST' || method === 'GET' || method === 'PUT' ? `/whep/${camera}` : `/whep/${camera}/${session}`;
      const type = random() < 0.8 ? (method === 'PATCH' ? 'application/trickle-ice-sdpfrag' : 'application/sdp') : pick(random, ['text/plain', 'application/json', '', 'application/sdp; charset=x']);
      const bodyRoll = random();
      const body =
        bodyRoll < 0.45
          ? mutateSdp(realOffer, random)
          : bodyRoll < 0.6
            ? randomBytes(Math.floor(random() * 2000))
            : bodyRoll < 0.7
              ? `v=0\r\n${randomBytes(400).toString('base64')}`
              : bodyRoll < 0.75
                ? `v=0\r\n${'a=x\r\n'.repeat(15_000)}` // > 64 KiB
                : bodyRoll < 0.85
                  ? 'a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n'
                  : '';
      const authRoll = random();
      const headers: Record<string, string> = { 'Content-Type': type };
      if (authRoll < 0.5) headers['Authorization'] = `Bearer ${linkToken}`;
      else if (authRoll < 0.8) {
        headers['Cookie'] = mallory.jar.header();
        headers['X-CSRF-Token'] = mallory.csrf;
      } else if (authRoll < 0.9) headers['Cookie'] = mallory.jar.header(); // no CSRF token: 403
      else headers['Authorization'] = `Bearer wrc1.${randomBytes(16).toString('base64url')}.0.${randomBytes(32).toString('base64url')}`;
      const answer = await request(`${base}${path}`, { method, headers, body: method === 'GET' || method === 'OPTIONS' ? undefined : body, localAddress: `127.0.${Math.floor(random() * 4)}.9` });
      statusCounts.set(answer.status, (statusCounts.get(answer.status) ?? 0) + 1);
      answers.push(answer.body);
    };

    const fuzzWhep = async (count: number): Promise<void> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < count) {
            next++;
            await whepRequest();
          }
        }),
      );
    };

    for (let round = 0; round < 4; round++) {
      await Promise.all([fuzzSignalling(250), fuzzWhep(250)]);
      progress.push(await decoded());
      const up = await request(`${base}/api/cameras`, { jar: mallory.jar });
      assert.equal(up.status, 200, 'the server still answers');
      answers.push(up.body);
    }
    // The viewer is still playing: frames keep arriving after the storm, too.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    progress.push(await decoded());

    assert.equal(wsMessages, 1000);
    assert.ok(wsReplies > 300, `only ${wsReplies} replies`);
    const whepTotal = [...statusCounts.values()].reduce((a, b) => a + b, 0);
    assert.equal(whepTotal, 1000);
    const statuses = Object.fromEntries([...statusCounts].sort(([a], [b]) => a - b));
    assert.equal(statusCounts.get(500) ?? 0, 0, JSON.stringify(statuses));
    for (const status of statusCounts.keys()) assert.ok(status >= 200 && status < 600 && status !== 500, JSON.stringify(statuses));
    assert.ok((statusCounts.get(413) ?? 0) > 0 && (statusCounts.get(400) ?? 0) > 0 && (statusCounts.get(403) ?? 0) > 0, JSON.stringify(statuses));
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]! > progress[i - 1]!, `framesDecoded stalled: ${progress.join(' -> ')}`);

    await whep.closeAll();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const heapAfter = heapMb();
    const rssAfter = process.memoryUsage().rss / 1024 / 1024;
    assert.ok(heapAfter - heapBefore < 64, `heap ${heapBefore.toFixed(0)} -> ${heapAfter.toFixed(0)} MB`);
    assert.ok(rssAfter - rssBefore < 256, `rss ${rssBefore.toFixed(0)} -> ${rssAfter.toFixed(0)} MB`);
    console.log(`# fuzz: WHEP statuses ${JSON.stringify(statuses)}; ${wsReplies} signalling replies; frames ${progress.join(' -> ')}; heap ${heapBefore.toFixed(0)} -> ${heapAfter.toFixed(0)} MB`);
  });

  it('leaks no password: logs, every answer the fuzzers and the browser got, and the page HTML', async () => {
    answers.push(await page.content());
    answers.push(await page.evaluate(async () => (await fetch('/api/cameras')).text()));
    const camerasJson = (await request(`${base}/api/cameras`, { jar: mallory.jar })).body;
    answers.push(camerasJson);
    assert.match(camerasJson, /"lastError":"connect ECONNREFUSED [^"]+"/, 'the failing camera is described, without its URL');
    const haystack = [...logs, ...answers].join('\n');
    assert.ok(haystack.length > 10_000);
    for (const secret of PASSWORDS) {
      assert.ok(!haystack.includes(secret), `found a password: ${secret}`);
      assert.ok(!haystack.includes(encodeURIComponent(secret)));
    }
  });
});

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}
