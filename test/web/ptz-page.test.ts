/**
 * e2e: Chromium drags on a PTZ camera's tile of the watch page, and the loopback ONVIF responder
 * records what reached the camera: ContinuousMove in the drag's direction while held, then Stop on
 * release; a preset button sends GotoPreset with its token. The page talks to the project's real web
 * server and the runtime's CameraPtz (test/helpers/ptz-rig.ts); the caller is a viewer with the right.
 * Then a second page, another viewer with the right, watches the same camera with its camera list
 * frozen: only the live `ptz` event can tell it that the first page is dragging, and that control is
 * free again after the release (the lease runs out). Every wait is on the DOM or the camera's
 * requests, with generous bounds, never a fixed sleep, so it holds under load.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';

import { attr, child, textAt } from '../../src/onvif/xml.js';
import { EVENT_SOURCE_RECORDER_SCRIPT, launchChromium, readEventSources, type ChromiumSession } from '../helpers/browser.js';
import { PTZ_CAMERA_ID, startPtzRig, until, type PtzRig } from '../helpers/ptz-rig.js';
import type { RecordedRequest } from '../helpers/onvif-responder.js';

const TILE = `[data-camera="${PTZ_CAMERA_ID}"]`;
/** Generous: the machine may be loaded; the lease the release waits for is 5 s of it. */
const LIVE_BOUND_MS = 30_000;

/** Waits until the tile's "someone else is moving" notice is shown (with this text) or hidden. */
async function waitForBusy(page: Page, shown: boolean): Promise<void> {
  await page.waitForFunction(({ tile, shown }) => {
    const notice = document.querySelector<HTMLElement>(`${tile} .ptz-busy`);
    const pad = document.querySelector<HTMLElement>(`${tile} .ptz-pad`);
    if (!notice || !pad) return false;
    return shown
      ? !notice.hidden && /Someone else is moving this camera/.test(notice.textContent ?? '') && pad.getAttribute('aria-disabled') === 'true'
      : notice.hidden && !pad.hasAttribute('aria-disabled');
  }, { tile: TILE, shown }, { timeout: LIVE_BOUND_MS, polling: 100 });
}

function panTilt(q: RecordedRequest | undefined): { x: number; y: number } {
  const v = child(child(q?.element, 'Velocity'), 'PanTilt');
  return { x: Number(attr(v, 'x')), y: Number(attr(v, 'y')) };
}

describe('e2e: PTZ on the watch page (Chromium)', () => {
  let rig: PtzRig;
  let browser: ChromiumSession;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    // The real rate limit, as in production: the page must pace itself.
    rig = await startPtzRig({ minIntervalMs: 250 });
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(rig.base);
    await page.waitForSelector(`${TILE} .ptz-toggle`);
  });
  after(async () => {
    await browser?.close();
    await rig?.close();
  });

  it('dragging right and up moves the camera right and up while held, and stops on release', async () => {
    await page.click(`${TILE} .ptz-toggle`);
    const pad = page.locator(`${TILE} .ptz-pad`);
    await pad.waitFor({ state: 'visible' });
    const box = await pad.boundingBox();
    assert.ok(box, 'the pad is on screen');
    const start = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    await page.mouse.move(start.x, start.y);
    await page.mouse.down();
    await page.mouse.move(start.x + box.width * 0.3, start.y - box.height * 0.2, { steps: 8 });
    await until(() => rig.ptzCalls('ContinuousMove').length > 0, 'ContinuousMove');
    // Held for a while: keep-alives, and no Stop yet.
    await new Promise((resolve) => setTimeout(resolve, 700));
    assert.equal(rig.ptzCalls('Stop').length, 0, 'no Stop while the button is held');
    await page.mouse.up();
    await until(() => rig.ptzCalls('Stop').length > 0, 'Stop');

    const calls = rig.ptzCalls();
    const moves = calls.filter((q) => q.command === 'ContinuousMove');
    const last = moves.at(-1);
    assert.ok(panTilt(last).x > 0, `pan right (x ${panTilt(last).x})`);
    assert.ok(panTilt(last).y > 0, `tilt up (y ${panTilt(last).y})`);
    assert.equal(calls.at(-1)?.command, 'Stop', 'the last thing the camera heard is Stop');
    assert.deepEqual(problems, []);
  });

  it('a preset button sends GotoPreset with that preset\u2019s token', async () => {
    await new Promise((resolve) => setTimeout(resolve, 300)); // past the rate limit after the Stop
    await page.click(`${TILE} .ptz-buttons button[aria-label$="preset P003"]`);
    await until(() => rig.ptzCalls('GotoPreset').length > 0, 'GotoPreset');
    assert.equal(textAt(rig.ptzCalls('GotoPreset')[0]?.element, 'PresetToken'), 'P003');
    assert.deepEqual(problems, []);
  });

  it('a second viewer’s page says "someone else is moving" while the first drags, live, and clears after the release', async () => {
    const other = await browser.context.newPage();
    other.on('pageerror', (e) => problems.push(`page B: ${e.message}`));
    await other.setExtraHTTPHeaders({ 'x-test-user': 'other' });
    await other.addInitScript({ content: EVENT_SOURCE_RECORDER_SCRIPT });
    try {
      await other.goto(rig.base);
      await other.waitForSelector(`${TILE} .ptz-toggle`);
      // From now on page B's camera list never refreshes (the request is held, unanswered): what it
      // shows next can only come from the event stream.
      await other.route('**/api/cameras', () => undefined);
      await other.click(`${TILE} .ptz-toggle`);
      await other.locator(`${TILE} .ptz-pad`).waitFor({ state: 'visible' });
      // Page A's preset (the test above) may still hold the lease: wait until B hears it is free.
      await waitForBusy(other, false);
      // One event stream per page, shared: doorbell alerts turned on open no second one.
      await other.evaluate(() => (window as unknown as { watchPage: { setDoorbellAlerts(on: boolean): void } }).watchPage.setDoorbellAlerts(true));
      await other.evaluate(() => (window as unknown as { watchPage: { setDoorbellAlerts(on: boolean): void } }).watchPage.setDoorbellAlerts(false));
      const sources = await readEventSources(other);
      assert.deepEqual(sources.map((s) => s.path), ['/api/events'], 'one EventSource for the PTZ panel and the doorbell alerts');
      assert.notEqual(sources[0]?.readyState, 2, 'turning alerts off leaves the PTZ panel’s stream open');
      await until(() => rig.events.size === 2, 'one stream per page on the server', LIVE_BOUND_MS);

      const moves = rig.ptzCalls('ContinuousMove').length;
      const stops = rig.ptzCalls('Stop').length;
      const pad = page.locator(`${TILE} .ptz-pad`);
      const box = await pad.boundingBox();
      assert.ok(box, 'page A’s pad is on screen');
      const start = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
      await page.mouse.move(start.x, start.y);
      await page.mouse.down();
      await page.mouse.move(start.x - box.width * 0.3, start.y, { steps: 8 });
      await until(() => rig.ptzCalls('ContinuousMove').length > moves, 'page A’s ContinuousMove', LIVE_BOUND_MS);
      await waitForBusy(other, true);
      assert.equal(await page.isHidden(`${TILE} .ptz-busy`), true, 'the mover’s own page says nothing');

      await page.mouse.up();
      await until(() => rig.ptzCalls('Stop').length > stops, 'page A’s Stop', LIVE_BOUND_MS);
      await waitForBusy(other, false);
      assert.deepEqual(problems, []);
    } finally {
      await other.close();
    }
  });
});
