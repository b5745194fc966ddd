/**
 * e2e: Chromium drags on a PTZ camera's tile of the watch page, and the loopback ONVIF responder
 * records what reached the camera: ContinuousMove in the drag's direction while held, then Stop on
 * release; a preset button sends GotoPreset with its token. The page talks to the project's real web
 * server and the runtime's CameraPtz (test/helpers/ptz-rig.ts); the caller is a viewer with the right.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';

import { attr, child, textAt } from '../../src/onvif/xml.js';
import { launchChromium, type ChromiumSession } from '../helpers/browser.js';
import { PTZ_CAMERA_ID, startPtzRig, until, type PtzRig } from '../helpers/ptz-rig.js';
import type { RecordedRequest } from '../helpers/onvif-responder.js';

const TILE = `[data-camera="${PTZ_CAMERA_ID}"]`;

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
});
