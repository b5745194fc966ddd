/**
 * End to end: Chromium opens the watch page, the page speaks the real signalling handler
 * (src/webrtc) over /signal, and a real synthetic H.264 + PCMU source plays. Then the page is made
 * to lose its connection, and its camera, and must recover on its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { WebSocket } from 'ws';
import { launchChromium, readRtcStats, summarizeRtcStats, waitForRtcStats, type ChromiumSession } from '../helpers/browser.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { createSignallingHandler } from '../../src/webrtc/signalling.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { registryOf } from './fixtures.js';

/**
 * Waits until the text of `selector` matches `pattern`. A function predicate, not a string: the
 * page's CSP (no 'unsafe-eval') rightly refuses playwright's string predicates.
 */
async function waitForText(page: Page, selector: string, pattern: RegExp, timeout = 15_000): Promise<void> {
  await page.waitForFunction(
    ({ selector, source, flags }) => new RegExp(source, flags).test(document.querySelector(selector)?.textContent ?? ''),
    { selector, source: pattern.source, flags: pattern.flags },
    { timeout },
  );
}

describe('e2e: the watch page plays a real source through real signalling', () => {
  let server: WebServer;
  let base: string;
  let browser: ChromiumSession;
  let source: SyntheticSource;
  let whep: WhepEndpoint;
  const sockets = new Set<WebSocket>();
  const problems: string[] = [];

  before(async () => {
    source = await SyntheticSource.create({ id: 'synthetic', width: 640, height: 360, fps: 25, gop: 25 });
    const registry = registryOf([source]);
    const limits = new ViewerLimiter();
    const signalling = createSignallingHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS });
    whep = createWhepHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS });
    server = createWebServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      cameraExtras: () => ({ name: 'Synthetic camera' }),
      whep,
      // Keep hold of the sockets so the test can cut them like a network drop would.
      signalling: (ws, ctx) => {
        sockets.add(ws);
        ws.on('close', () => sockets.delete(ws));
        signalling(ws, ctx);
      },
    });
    base = (await server.listen()).url;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await whep?.closeAll();
    await server?.close();
    source?.close();
  });

  async function openWatching(): Promise<Page> {
    const page = await browser.context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(base);
    await page.waitForSelector('[data-camera="synthetic"] .tile-open');
    await page.click('[data-camera="synthetic"] .tile-open');
    return page;
  }

  it('plays video and audio, says "Live", and shows resolution and stats', async () => {
    const page = await openWatching();
    const stats = await waitForRtcStats(page, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 50, { timeoutMs: 20_000 });
    const pc = stats.at(-1)!;
    assert.equal(pc.video?.frameWidth, 640, summarizeRtcStats(stats));
    assert.equal(pc.video?.frameHeight, 360);
    assert.match(pc.video?.mimeType ?? '', /H264/i);
    assert.ok((pc.audio?.packetsReceived ?? 0) > 0, 'no audio packets');

    await waitForText(page, '#player-state', /^Live$/);
    assert.equal(await page.isVisible('#player-message'), false);
    await waitForText(page, '#player-info', /640\u00d7360/);
    assert.equal(await page.isEnabled('#player-mute'), true, 'the camera has audio: mute must be usable');
    await page.click('#player-mute');
    assert.equal(await page.$eval('#player-video', (v) => (v as HTMLVideoElement).muted), false);

    if ((await page.getAttribute('#player-stats-toggle', 'aria-pressed')) !== 'true') await page.click('#player-stats-toggle');
    await waitForText(page, '#player-stats', /Latency \(est\.\)\d+ ms/);
    const overlay = (await page.textContent('#player-stats')) ?? '';
    assert.match(overlay, /640\u00d7360/);
    assert.match(overlay, /Frame rate\s*\d+(\.\d)? fps/);
    await page.close();
  });

  it('reconnects by itself after the connection drops', async () => {
    const page = await openWatching();
    await waitForRtcStats(page, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 10, { timeoutMs: 20_000 });
    const before = (await readRtcStats(page)).length;
    for (const ws of sockets) ws.terminate();
    await waitForText(page, '#player-message', /Trying again in/, 5000);
    // A new peer connection (backoff ~1 s) decodes again, without a reload.
    const stats = await waitForRtcStats(
      page,
      (all) => all.length > before && (all.at(-1)?.video?.framesDecoded ?? 0) >= 10,
      { timeoutMs: 20_000 },
    );
    assert.ok(stats.length > before);
    await waitForText(page, '#player-state', /^Live$/);
    await page.close();
  });

  it('says the camera is offline while it is, and plays again when it returns', async () => {
    const page = await openWatching();
    await waitForRtcStats(page, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 10, { timeoutMs: 20_000 });
    source.stop();
    await waitForText(page, '#player-message', /Camera offline/, 10_000);
    assert.equal(await page.textContent('#player-state'), 'Camera offline, retrying');
    // The camera comes back (the synthetic source reconnects like a Source would).
    (source as unknown as { connect(): void }).connect();
    const decodedBefore = (await readRtcStats(page)).at(-1)?.video?.framesDecoded ?? 0;
    await waitForRtcStats(
      page,
      (all) => (all.at(-1)?.video?.framesDecoded ?? 0) > decodedBefore + 25,
      { timeoutMs: 30_000 },
    );
    await waitForText(page, '#player-state', /^Live$/);
    await page.close();
  });

  it('live tiles play in the grid', async () => {
    const page = await browser.context.newPage();
    await page.goto(base);
    await page.waitForSelector('[data-camera="synthetic"] .tile-open');
    await page.click('#live-tiles');
    await waitForRtcStats(page, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 10, { timeoutMs: 20_000 });
    await waitForText(page, '[data-camera="synthetic"] .tile-state', /^Live$/);
    assert.equal(await page.isVisible('[data-camera="synthetic"] .tile-video'), true);
    await page.screenshot({ path: '.test-artifacts/web/watch-page-live.png' });
    await page.click('#live-tiles'); // leave the setting off for the other pages of this profile
    await page.close();
  });

  it('WHEP through this server: a browser offer gets 201, an answer and video; DELETE ends it', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${base}static/icon.svg`); // same origin, without the watch page's own viewers
    const posted = await page.evaluate(async () => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
        setTimeout(resolve, 2000);
      });
      const response = await fetch('/whep/synthetic', {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription!.sdp,
      });
      const answer = await response.text();
      if (response.status === 201) await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      return { status: response.status, location: response.headers.get('Location'), type: response.headers.get('Content-Type') };
    });
    assert.equal(posted.status, 201);
    assert.match(posted.location ?? '', /^\/whep\/synthetic\/[A-Za-z0-9-]+$/);
    assert.equal(posted.type, 'application/sdp');
    await waitForRtcStats(page, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 25, { timeoutMs: 20_000 });
    assert.equal(whep.sessionCount, 1);
    const deleted = await page.evaluate(async (location) => (await fetch(location, { method: 'DELETE' })).status, posted.location!);
    assert.equal(deleted, 200);
    assert.equal(whep.sessionCount, 0);
    await page.close();
  });

  it('left no console errors behind', () => {
    assert.deepEqual(problems, []);
  });
});
