/**
 * Garbage on /signal, through this server's gateway into the real signalling handler (src/webrtc):
 * random bytes, broken JSON, wrong types, valid messages in the wrong order. The server must answer
 * or close, never crash, and keep serving everyone else.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { createSignallingHandler } from '../../src/webrtc/signalling.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { registryOf, sampleCameras } from './fixtures.js';

/** Deterministic pseudo-random numbers, so a failure can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function junk(random: () => number): string | Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const values: unknown[] = [null, 0, -1, 1e308, '', 'x'.repeat(300), [], {}, true, { $gt: '' }, 'front-door', '../etc'];
  switch (Math.floor(random() * 8)) {
    case 0:
      return randomBytes(Math.floor(random() * 200));
    case 1:
      return randomBytes(Math.floor(random() * 100)).toString('latin1');
    case 2:
      return JSON.stringify({ type: pick(['watch', 'answer', 'candidate', 'stop', 'offer', 'WATCH', '']), camera: pick(values), sdp: pick(values), candidate: pick(values) });
    case 3:
      return JSON.stringify({ type: 'candidate', candidate: { candidate: pick(['candidate:1 1 udp 1 1.2.3.4 9 typ host', 'x', '']), sdpMid: pick(values), sdpMLineIndex: pick(values) } });
    case 4:
      return JSON.stringify({ type: 'answer', sdp: `v=0\r\n${randomBytes(50).toString('base64')}` });
    case 5:
      return JSON.stringify(pick(values));
    case 6:
      return '{"type":"watch","camera":"' + 'a'.repeat(Math.floor(random() * 100)) + '"';
    default:
      return JSON.stringify({ type: 'watch', camera: pick(['front-door', 'garden', 'attic', 'FRONT']) });
  }
}

describe('signalling fuzz through the web server', () => {
  let server: WebServer;
  let base: string;
  let port: number;

  before(async () => {
    const registry = registryOf(sampleCameras());
    server = createWebServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      limits: { maxWsPayload: 8 * 1024 },
      signalling: createSignallingHandler({ registry, limits: new ViewerLimiter(), ice: LOOPBACK_ICE_SETTINGS, tracksTimeoutMs: 200 }),
    });
    ({ port } = await server.listen());
    base = `http://127.0.0.1:${port}`;
  });
  after(() => server?.close());

  it('answers 600 malformed or out-of-order messages on 6 sockets without crashing', async () => {
    const random = prng(42);
    let replies = 0;
    for (let socketIndex = 0; socketIndex < 6; socketIndex++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/signal`);
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.on('message', () => replies++);
      ws.on('error', () => undefined);
      const ended = new Promise((resolve) => ws.once('close', resolve));
      for (let i = 0; i < 100 && ws.readyState === WebSocket.OPEN; i++) {
        const message = junk(random);
        ws.send(message, { binary: Buffer.isBuffer(message) });
        if (i % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      ws.send(JSON.stringify({ type: 'stop' }));
      await new Promise((resolve) => setTimeout(resolve, 50));
      ws.close();
      await ended;
    }
    assert.ok(replies > 100, `only ${replies} replies`);
    const response = await fetch(`${base}/api/cameras`);
    assert.equal(response.status, 200);
    const deadline = Date.now() + 3000;
    while (server.signallingSockets > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.signallingSockets, 0);
  });
});
