/**
 * e2e (Chromium): the watch page's doorbell banner. A viewer who turned doorbell alerts on is shown
 * "Someone is at the door" within a bound after a press, and the ringing camera's tile plays live
 * (frames decoded from a real synthetic H.264 source through the real signalling). The press takes
 * the product's path: the HTTP trigger route, the runtime's debounced DoorbellPresses, and the page's
 * event stream, on the project's real web server. Waits are on the DOM, the server and decoded
 * frames, with generous bounds, never fixed sleeps.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';

import { DoorbellPresses } from '../../src/runtime/doorbell.js';
import { silentLogger } from '../../src/util/logger.js';
import { webTriggerPath, webTriggerRoutes, type WebTrigger } from '../../src/web/web-trigger.js';
import { EventStream } from '../../src/web/event-stream.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { createSignallingHandler } from '../../src/webrtc/signalling.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { EVENT_SOURCE_RECORDER_SCRIPT, launchChromium, readEventSources, summarizeRtcStats, waitForRtcStats, type ChromiumSession } from '../helpers/browser.js';
import { until } from '../helpers/ptz-rig.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { registryOf } from './fixtures.js';

const CAMERA = 'front';
/** The tile (the banner carries the same data-camera while it rings). */
const TILE = `li.tile[data-camera="${CAMERA}"]`;
const TOKEN = 'T'.repeat(16) + 'k'.repeat(16);
/** Generous: the machine may be loaded. */
const BOUND_MS = 30_000;

describe('e2e: the doorbell banner on the watch page (Chromium)', () => {
  let server: WebServer;
  let base: string;
  let source: SyntheticSource;
  let stream: EventStream;
  let browser: ChromiumSession;
  let page: Page;
  let rings = 0;
  const problems: string[] = [];

  before(async () => {
    source = await SyntheticSource.create({ id: CAMERA, width: 640, height: 360, fps: 25, gop: 25 });
    const registry = registryOf([source]);
    stream = new EventStream();
    // As camera-runtime.ts wires a doorbell camera: a press (debounced) rings and tells the pages.
    const presses = new DoorbellPresses({
      log: silentLogger,
      ring: () => {
        rings++;
        stream.publish({ type: 'doorbell', camera: CAMERA, name: 'Front door', at: Date.now() });
      },
    });
    const trigger: WebTrigger = { token: TOKEN, fire: () => ({ rang: presses.press('http') }) };
    server = createWebServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      cameraExtras: () => ({ name: 'Front door' }),
      signalling: createSignallingHandler({ registry, limits: new ViewerLimiter(), ice: LOOPBACK_ICE_SETTINGS }),
      routes: [stream.route, ...webTriggerRoutes({ trigger: (kind, id) => (kind === 'doorbell' && id === CAMERA ? trigger : undefined) })],
      log: silentLogger,
    });
    base = (await server.listen()).url;
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    await page.addInitScript({ content: EVENT_SOURCE_RECORDER_SCRIPT });
    await page.goto(base);
    await page.waitForSelector(`${TILE} .tile-open`);
  });
  after(async () => {
    await browser?.close();
    stream?.close();
    await server?.close();
    source?.close();
  });

  it('with alerts on, a press through the HTTP trigger shows the banner and plays the camera live', async () => {
    assert.equal(await page.getAttribute('#doorbell-alerts', 'aria-pressed'), 'false', 'alerts are off until the viewer turns them on');
    assert.equal(stream.size, 0, 'no event stream while nothing on the page needs one');
    await page.click('#doorbell-alerts');
    assert.equal(await page.getAttribute('#doorbell-alerts', 'aria-pressed'), 'true');
    await until(() => stream.size === 1, 'the page\u2019s event stream', BOUND_MS);

    const response = await fetch(new URL(webTriggerPath('doorbell', CAMERA, TOKEN).slice(1), base), { method: 'POST' });
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { rang: true });
    assert.equal(rings, 1);

    await page.locator('#doorbell-banner').waitFor({ state: 'visible', timeout: BOUND_MS });
    assert.match((await page.textContent('#doorbell-text')) ?? '', /^Someone is at the door: Front door$/);
    assert.equal(await page.getAttribute('#doorbell-banner', 'data-camera'), CAMERA, 'the banner names the ringing camera');
    assert.match((await page.getAttribute(TILE, 'class')) ?? '', /\bringing\b/);
    // The ringing tile plays live although live tiles are off: frames decoded, and its video shown.
    const stats = await waitForRtcStats(page, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 10, { timeoutMs: BOUND_MS });
    assert.equal(stats.at(-1)?.video?.frameWidth, 640, summarizeRtcStats(stats));
    await page.waitForFunction((tile) => document.querySelector(`${tile} .tile-state`)?.textContent === 'Live', TILE, { timeout: BOUND_MS, polling: 100 });
    assert.equal(await page.isVisible(`${TILE} .tile-video`), true);
    assert.deepEqual((await readEventSources(page)).map((s) => s.path), ['/api/events'], 'one event stream');
  });

  it('dismissing hides the banner; turning alerts off closes the page\u2019s event stream', async () => {
    await page.click('#doorbell-dismiss');
    await page.locator('#doorbell-banner').waitFor({ state: 'hidden', timeout: BOUND_MS });
    assert.doesNotMatch((await page.getAttribute(TILE, 'class')) ?? '', /\bringing\b/);
    await page.click('#doorbell-alerts');
    await until(() => stream.size === 0, 'the stream closed on the server', BOUND_MS);
    assert.deepEqual((await readEventSources(page)).map((s) => s.readyState), [2], 'closed, as nothing else on this page listens');
    assert.deepEqual(problems, []);
  });
});
