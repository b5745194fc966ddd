/**
 * Issue 11: the plugin's settings form in the real Homebridge UI (homebridge-config-ui-x 5.28, in
 * Chromium) round-trips. A fresh install: first-run admin set-up in the page, an untouched form
 * saves no camera and no viewer, one camera typed by hand, one admin viewer and one TURN server save
 * as exactly one entry each with the typed values (and Homebridge then runs them without a config complaint),
 * and reopening and saving unchanged leaves config.json byte-for-byte the same.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import { CAMERA_BLANK_DEFAULTS, isBlankEntry } from '../../src/config/defaults.js';
import { launchChromium, type ChromiumSession } from '../helpers/browser.js';
import { startConfigUi, type ConfigUi } from '../helpers/config-ui.js';
import { PLUGIN_DIR } from '../helpers/homebridge.js';
import { getFreePort } from '../helpers/ports.js';

const ARTIFACTS = join(PLUGIN_DIR, '.test-artifacts/ui-form');
const CAMERA_PASSWORD = 'porch-Secret-77';
const VIEWER_PASSWORD = 'a long passphrase 42';
const TURN_PASSWORD = 'relay-pass-9';

/** Opens a collapsed section of the form by its title, like a person clicking it. */
async function expand(dialog: Locator, title: string): Promise<void> {
  await dialog.locator('label.legend', { hasText: title }).first().click();
}

describe('e2e: the settings form in the real Homebridge UI', () => {
  let ui: ConfigUi;
  let browser: ChromiumSession;
  let page: Page;
  let cameraPort: number;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // Nothing listens here: the typed camera stays on loopback and is never reached.
    cameraPort = await getFreePort();
    [ui, browser] = await Promise.all([startConfigUi({ setup: 'none' }), launchChromium()]);
    page = await browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  after(async () => {
    await browser?.close();
    await ui?.stop();
  });

  it('does the first-run admin set-up in the page', async () => {
    await ui.completeSetupInBrowser(page);
    // The account works for the API too, and the set-up cannot be run again.
    assert.match(await ui.token(), /^ey/);
    await assert.rejects(ui.createAdminWithApi(), /HTTP 403/);
    assert.deepEqual(ui.pluginBlocks(), []);
  });

  it('saves a form with only a global tick and no camera or viewer touched, and shows it valid', async () => {
    const dialog = await ui.openSchemaForm(page);
    // The form starts with one empty camera and one empty viewer.
    assert.equal(await dialog.getByLabel('Camera name', { exact: true }).count(), 1);
    // Config-ui-x marks a form that fails the schema with this icon beside Save.
    assert.equal(await dialog.locator('.modal-footer .fa-circle-exclamation').count(), 0);
    // As in the issue, one global checkbox is ticked (not discovery: Homebridge runs this config
    // later, and discovery would probe the real network).
    await expand(dialog, 'Connections from outside your home');
    await dialog.getByLabel('Also offer TCP', { exact: true }).check();
    await ui.waitForFormData(page, (block) => (block['ice'] as Record<string, unknown> | undefined)?.['iceTcp'] === true, 'ice.iceTcp true');
    await ui.saveSettings(page, dialog);
    const blocks = ui.pluginBlocks();
    assert.equal(blocks.length, 1);
    const [block] = blocks;
    assert.equal(block?.['cameras'], undefined, JSON.stringify(block));
    assert.equal(block?.['viewers'], undefined, JSON.stringify(block));
    assert.equal(block?.['demo'], true);
    assert.equal((block?.['ice'] as Record<string, unknown> | undefined)?.['iceTcp'], true);
  });

  it('saves one camera typed by hand and one admin viewer as exactly one entry each', async () => {
    const dialog = await ui.openSchemaForm(page);
    const invalid = dialog.locator('.modal-footer .fa-circle-exclamation');
    await dialog.getByLabel('Camera name', { exact: true }).fill('Porch');
    // A camera with a name but neither an RTSP address nor ONVIF fails the schema, in the UI too.
    await invalid.waitFor();
    await dialog.getByLabel('RTSP address', { exact: true }).fill(`rtsp://127.0.0.1:${cameraPort}/live1.sdp`);
    await invalid.waitFor({ state: 'detached' });
    await dialog.getByLabel('Camera user name', { exact: true }).fill('admin');
    await dialog.getByLabel('Camera password', { exact: true }).fill(CAMERA_PASSWORD);
    // The entry is titled with the camera's name as soon as it has one.
    await dialog.locator('label.legend', { hasText: /^Porch$/ }).waitFor();
    // Ports are plain number inputs (not sliders); keep this test's plugin on loopback.
    await expand(dialog, 'Web page');
    const webPort = dialog.getByLabel('Web page port', { exact: true });
    assert.equal(await webPort.getAttribute('type'), 'number');
    await webPort.fill('0');
    await dialog.getByLabel('Listen on address (advanced)', { exact: true }).fill('127.0.0.1');
    await expand(dialog, 'RTSP re-stream');
    await dialog.getByLabel('Re-stream port', { exact: true }).fill('0');
    await expand(dialog, 'Connections from outside your home');
    await dialog.getByLabel('TURN address', { exact: true }).fill('turn:127.0.0.1:3478');
    await dialog.getByLabel('TURN user name', { exact: true }).fill('relay');
    await dialog.getByLabel('TURN password', { exact: true }).fill(TURN_PASSWORD);
    await dialog.locator('label.legend', { hasText: /^turn:127\.0\.0\.1:3478$/ }).waitFor();
    await expand(dialog, 'Viewers and share links');
    await dialog.getByLabel('User name', { exact: true }).fill('family');
    await dialog.getByLabel('Password', { exact: true }).fill(VIEWER_PASSWORD);
    await dialog.getByLabel('Administrator', { exact: true }).check();
    await dialog.locator('label.legend', { hasText: /^family$/ }).waitFor();
    await invalid.waitFor({ state: 'detached' });
    // For docs/screenshots/: the viewer, then the camera in the light and the dark theme.
    await page.screenshot({ path: join(ARTIFACTS, 'settings-form-viewer.png') });
    await dialog.locator('label.legend', { hasText: /^Porch$/ }).scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(ARTIFACTS, 'settings-form-light.png') });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(ARTIFACTS, 'settings-form-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    await ui.waitForFormData(
      page,
      (block) => {
        const viewer = (block['viewers'] as Array<Record<string, unknown>> | undefined)?.[0];
        return viewer?.['admin'] === true && viewer['password'] === VIEWER_PASSWORD;
      },
      'the admin viewer with its password',
    );
    await ui.saveSettings(page, dialog);

    const [block, ...others] = ui.pluginBlocks();
    assert.equal(others.length, 0);
    const cameras = block?.['cameras'] as Array<Record<string, unknown>>;
    assert.equal(cameras.length, 1, JSON.stringify(cameras));
    const { name, rtspUrl, username, password, ...rest } = cameras[0] ?? {};
    assert.deepEqual({ name, rtspUrl, username, password }, { name: 'Porch', rtspUrl: `rtsp://127.0.0.1:${cameraPort}/live1.sdp`, username: 'admin', password: CAMERA_PASSWORD });
    // Whatever else the form saved is a default value (its checkboxes save false once shown, the
    // doorbell's inside its object), the same defaults the loader reads as "not set".
    for (const [key, value] of Object.entries(rest)) assert.ok(isBlankEntry({ [key]: value }, CAMERA_BLANK_DEFAULTS), `cameras[0].${key} = ${JSON.stringify(value)}`);
    // The PTZ and talk rights' checkboxes are shown beside Administrator, so they save their default (false) too.
    assert.deepEqual(block?.['viewers'], [{ username: 'family', password: VIEWER_PASSWORD, admin: true, ptz: false, talk: false }]);
    assert.deepEqual(block?.['web'], { port: 0, bind: '127.0.0.1', tls: { selfSigned: false } });
    assert.deepEqual(block?.['ice'], { turnServers: [{ urls: 'turn:127.0.0.1:3478', username: 'relay', credential: TURN_PASSWORD }], iceTcp: true });
  });

  it('runs what the form saved: Homebridge starts the camera and the viewer without a config message', async () => {
    const hb = ui.homebridge;
    assert.ok(hb);
    await hb.restart();
    await hb.waitForLog(/Camera 'Porch' \(cameras\[0\]\): adding accessory, source rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/live1\.sdp/, 20_000);
    const log = hb.runLines().join('\n');
    assert.doesNotMatch(log, /is required|skipped|unknown setting|is ignored|Using the default/);
    assert.equal(log.includes(CAMERA_PASSWORD), false);
    assert.equal(log.includes(VIEWER_PASSWORD), false);
    assert.equal(log.includes(TURN_PASSWORD), false);
  });

  it('reopens with the saved values and saves them back byte-for-byte', async () => {
    const before = ui.readConfigText();
    const dialog = await ui.openSchemaForm(page);
    assert.equal(await dialog.getByLabel('Camera name', { exact: true }).inputValue(), 'Porch');
    assert.equal(await dialog.getByLabel('Camera name', { exact: true }).count(), 1);
    await expand(dialog, 'Viewers and share links');
    assert.equal(await dialog.getByLabel('User name', { exact: true }).inputValue(), 'family');
    assert.equal(await dialog.getByLabel('Administrator', { exact: true }).isChecked(), true);
    await ui.saveSettings(page, dialog);
    assert.equal(ui.readConfigText(), before);
  });
});
