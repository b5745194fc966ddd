// Issue 12, item 1: offers that never complete ICE must not lock a camera. One principal (and one
// address) may hold only a few unconnected viewers, they are reaped after the connect timeout, and
// a viewer that is playing is never displaced. Real peers: werift receivers over WHEP.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../src/util/logger.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import type { Principal } from '../../src/webrtc/types.js';
import { WEB_DEFAULT_CONNECTING_LIMIT } from '../../src/config/view-limits.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import type { CallerContext } from '../../src/web/types.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { WebSocket } from 'ws';
import { registryOf, startSignallingServer } from './harness.js';
import { WeriftReceiver } from './werift-client.js';
import { recordingLogger } from '../helpers/onvif-log.js';

after(cleanupAll);

const here = dirname(fileURLToPath(import.meta.url));
// A real Chromium offer without its candidates: it can never connect, and costs the sender nothing.
const DEAD_OFFER = readFileSync(join(here, 'fixtures', 'chromium-recvonly-offer.sdp'), 'utf8').replace(/^a=candidate:[^\r\n]*\r?\n/gm, '');
const CONNECT_TIMEOUT_MS = 1_500;

function caller(name: string, remoteAddress: string): CallerContext {
  const principal: Principal = { name, cameras: 'all', admin: false };
  return { principal, remoteAddress, request: new IncomingMessage(new Socket()), log: silentLogger };
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('unconnected WHEP viewers cannot lock a camera', () => {
  let source: SyntheticSource;
  let whep: WhepEndpoint;
  let limits: ViewerLimiter;
  const receivers: WeriftReceiver[] = [];

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    limits = new ViewerLimiter({ maxViewersPerCamera: 10 });
    whep = createWhepHandler({ registry: registryOf([source]), limits, ice: LOOPBACK_ICE_SETTINGS, viewerOptions: { connectTimeoutMs: CONNECT_TIMEOUT_MS } });
  });
  after(async () => {
    await whep.closeAll();
    await Promise.all(receivers.map((r) => r.close()));
    source.close();
  });

  async function family(name: string, address: string): Promise<WeriftReceiver> {
    const receiver = new WeriftReceiver();
    receivers.push(receiver);
    const answer = await whep.handlePost('cam1', await receiver.offer(), caller(name, address));
    assert.equal(answer.status, 201, String(answer.body));
    await receiver.applyAnswer(String(answer.body));
    return receiver;
  }

  it('ten dead offers take at most the pending budget; a real viewer still plays, and is never displaced', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await whep.handlePost('cam1', DEAD_OFFER, caller('mallory', '127.0.0.9'))).status);
    assert.equal(statuses.filter((s) => s === 201).length, WEB_DEFAULT_CONNECTING_LIMIT, statuses.join(','));
    assert.ok(statuses.slice(WEB_DEFAULT_CONNECTING_LIMIT).every((s) => s === 429), statuses.join(','));
    // Another share link from the same address does not get a fresh budget.
    assert.equal((await whep.handlePost('cam1', DEAD_OFFER, caller('mallory-2', '127.0.0.9'))).status, 429);
    assert.equal(limits.count('cam1'), WEB_DEFAULT_CONNECTING_LIMIT);

    const mum = await family('family', '127.0.0.1');
    await mum.waitFor(() => mum.accessUnits >= 25, 15_000, 'frames for the real viewer');

    // The dead ones are reaped after the connect timeout; the playing viewer stays.
    await until(() => limits.count('cam1') === 1, CONNECT_TIMEOUT_MS + 8_000, 'the pending viewers to be reaped');
    // The attack again, repeatedly: the playing viewer keeps its slot and keeps receiving.
    for (let round = 0; round < 3; round++) {
      const again: number[] = [];
      for (let i = 0; i < 10; i++) again.push((await whep.handlePost('cam1', DEAD_OFFER, caller('mallory', '127.0.0.9'))).status);
      assert.ok(again.filter((s) => s === 201).length <= WEB_DEFAULT_CONNECTING_LIMIT, `round ${round}: ${again.join(',')}`);
      assert.ok(limits.pendingOf({ principal: 'mallory', address: '127.0.0.9' }) <= WEB_DEFAULT_CONNECTING_LIMIT);
      // A second family member still gets in while the attack is on.
      const dad = await family(`family-${round}`, '127.0.0.1');
      await dad.waitFor(() => dad.accessUnits >= 5, 15_000, 'frames for a second viewer');
      await dad.close();
    }
    const before = mum.accessUnits;
    await mum.waitFor(() => mum.accessUnits >= before + 25, 10_000, 'the first viewer still receiving');
    assert.equal(mum.damaged, 0);
    assert.equal(mum.pc.connectionState, 'connected');
  });
});

describe('a raised web.maxConnectingViews over WHEP (issue 14: a connect storm from one address)', () => {
  it('admits a storm of offers from one address at once; one more is refused with the reason and the setting', async () => {
    const source = await SyntheticSource.create({ id: 'cam1', gop: 25, seconds: 2 });
    const limits = new ViewerLimiter({ maxViewersPerCamera: 20, maxPendingPerOwner: 12 });
    const logger = recordingLogger();
    const whep = createWhepHandler({ registry: registryOf([source]), limits, ice: LOOPBACK_ICE_SETTINGS, logger, viewerOptions: { connectTimeoutMs: CONNECT_TIMEOUT_MS } });
    try {
      // Twelve people behind one router open the page together (offers that have not connected yet).
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => whep.handlePost('cam1', DEAD_OFFER, caller(`member-${i}`, '127.0.0.5'))));
      assert.deepEqual(answers.map((a) => a.status), Array<number>(12).fill(201), answers.map((a) => String(a.body)).join(' | '));
      const refused = await whep.handlePost('cam1', DEAD_OFFER, caller('member-12', '127.0.0.5'));
      assert.equal(refused.status, 429);
      assert.match(String(refused.body), /still connecting/);
      assert.equal(refused.headers?.['Retry-After'], '5');
      assert.ok(logger.lines.some((line) => /has 12 viewers still connecting \(web\.maxConnectingViews\)/.test(line)), logger.lines.join('\n'));
      assert.equal(limits.count('cam1'), 12);
    } finally {
      await whep.closeAll();
      source.close();
    }
  });
});

describe('unconnected signalling viewers cannot lock a camera', () => {
  it('ten sockets that never answer the offer get at most the pending budget; the rest are told why', async () => {
    const source = await SyntheticSource.create({ id: 'cam1', gop: 25, seconds: 2 });
    const limits = new ViewerLimiter({ maxViewersPerCamera: 10 });
    const server = await startSignallingServer({ sources: [source], limits, viewerOptions: { connectTimeoutMs: CONNECT_TIMEOUT_MS } });
    const sockets: WebSocket[] = [];
    try {
      const firsts = await Promise.all(
        Array.from({ length: 10 }, () =>
          new Promise<{ type: string; code?: string }>((resolve, reject) => {
            const ws = new WebSocket(server.url);
            sockets.push(ws);
            ws.once('open', () => ws.send(JSON.stringify({ type: 'watch', camera: 'cam1' })));
            ws.on('message', (data) => {
              const message = JSON.parse(String(data)) as { type: string; code?: string };
              if (message.type === 'offer' || message.type === 'error') resolve(message);
            });
            ws.once('error', reject);
          }),
        ),
      );
      const offers = firsts.filter((m) => m.type === 'offer').length;
      assert.equal(offers, WEB_DEFAULT_CONNECTING_LIMIT, JSON.stringify(firsts));
      assert.ok(firsts.filter((m) => m.type === 'error').every((m) => m.code === 'too-many-viewers'));
      // Nobody answers: the offers are reaped and the camera is free again.
      await until(() => limits.count('cam1') === 0, CONNECT_TIMEOUT_MS + 8_000, 'the unanswered viewers to be reaped');
    } finally {
      for (const ws of sockets) ws.terminate();
      await server.close();
      source.close();
    }
  });
});
