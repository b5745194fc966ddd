/**
 * The plugin's own page inside the real Homebridge UI (homebridge-config-ui-x 5.28, Chromium via
 * playwright-core), end to end with real peers: the GStreamer camera (Digest auth) behind a
 * loopback ONVIF responder that answers WS-Discovery, Homebridge running the plugin, and the UI.
 *
 * A person's path: the camera is listed under Discovered; a wrong password says so in words after
 * one log-in attempt at the camera; the right one shows ONVIF, codec, resolution and a snapshot;
 * Save writes one camera entry; after a Homebridge restart the camera's live preview decodes 50
 * frames inside the UI's page; a share link made there (QR code read back by zbarimg) plays in a
 * second browser context and stops within 2 s of Revoke; the card's "Record to HomeKit" turns
 * HomeKit Secure Video on in that camera's own entry and, after a restart, says it is offered.
 * Screenshots of every tab, light and dark,
 * desktop and phone, are taken on the way (into WRC_SCREENSHOTS_DIR when set, e.g. docs/screenshots).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { chromium, type Browser, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH, RTC_RECORDER_SCRIPT, waitForRtcStats } from '../helpers/browser.js';
import { startConfigUi, type ConfigUi } from '../helpers/config-ui.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';
import { getFreePorts } from '../helpers/ports.js';
import { registerCleanup } from '../helpers/processes.js';

const run = promisify(execFile);
const USER = 'admin';
const PASSWORD = 'gate-Secret-31';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
type Theme = 'light' | 'dark';

describe('e2e: the custom UI page in the real Homebridge UI', () => {
  let camera: FakeCamera;
  let responder: OnvifResponder;
  let ui: ConfigUi;
  let browser: Browser;
  let adminContext: BrowserContext;
  let page: Page;
  let webPort: number;
  let shots: string;
  let ownShots = false;
  let scratch: string;

  const openCustomUi = async (theme: Theme = 'light', viewport = DESKTOP): Promise<Frame> => {
    await page.setViewportSize(viewport);
    await page.emulateMedia({ colorScheme: theme });
    const dialog = await ui.openPluginSettings(page);
    const element = await dialog.locator('iframe').first().elementHandle();
    const frame = await element?.contentFrame();
    assert.ok(frame, 'the dialog shows the plugin\u2019s own page');
    await frame.waitForSelector('#cameras-list article, #wrc-banner:not([hidden])');
    assert.equal(await frame.evaluate(() => document.body.classList.contains('dark-mode')), theme === 'dark');
    return frame;
  };
  const tab = async (frame: Frame, name: string): Promise<void> => {
    await frame.click(`.wrc-tabs button[data-tab="${name}"]`);
    await frame.waitForSelector(`[data-panel="${name}"]:not([hidden])`);
  };
  const shoot = async (name: string): Promise<void> => {
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };

  before(async () => {
    shots = process.env['WRC_SCREENSHOTS_DIR'] ? resolve(process.env['WRC_SCREENSHOTS_DIR']) : await mkdtemp(join(tmpdir(), 'wrc-shots-'));
    ownShots = !process.env['WRC_SCREENSHOTS_DIR'];
    scratch = await mkdtemp(join(tmpdir(), 'wrc-ui-e2e-'));
    camera = await FakeCamera.start({ width: 640, height: 360, audio: 'pcmu', auth: { method: 'digest', user: USER, password: PASSWORD } });
    responder = await startOnvifResponder({ username: USER, password: PASSWORD, streamUrl: camera.url, discovery: { name: 'Acme', hardware: 'Gate-Cam-2000' } });
    let restreamPort: number;
    [webPort, restreamPort] = (await getFreePorts(2)) as [number, number];
    ui = await startConfigUi({
      platform: {
        platform: 'WebRTCCameras',
        name: 'WebRTC Cameras',
        web: { port: webPort, bind: '127.0.0.1' },
        restream: { port: restreamPort },
        // Discovery on loopback only: the responder is asked directly, nothing leaves this machine.
        discovery: { enabled: true, interfaces: ['lo'], probeAddresses: [`127.0.0.1:${responder.discoveryTarget!.port}`] },
        viewers: [{ username: 'family', password: 'a long passphrase', admin: true }],
      },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS], headless: true });
    registerCleanup(() => browser.close());
    adminContext = await browser.newContext();
    await adminContext.addInitScript({ content: RTC_RECORDER_SCRIPT });
    page = await adminContext.newPage();
    await ui.signIn(page);
    await ui.homebridge!.waitForLog(/ONVIF camera found but not configured/, 20_000);
  });

  after(async () => {
    await browser?.close();
    await ui?.stop();
    await responder?.close();
    await camera?.close();
    if (ownShots && shots) await rm(shots, { recursive: true, force: true });
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('lists the discovered camera; a wrong password is named after one log-in attempt; Test shows the stream and a snapshot; Save writes one entry', async () => {
    const frame = await openCustomUi();
    await shoot('cameras-light');
    await tab(frame, 'discovered');
    await frame.waitForSelector('[data-discovered="127.0.0.1"]');
    // "Search again" asks the network once more and lists the same camera once.
    await frame.click('#discover-again');
    await frame.waitForSelector('#discover-again:not([disabled])');
    assert.equal(await frame.locator('[data-discovered="127.0.0.1"]').count(), 1);
    const card = await frame.waitForSelector('[data-discovered="127.0.0.1"]');
    assert.match(await card.innerText(), /Acme Gate-Cam-2000[\s\S]*127\.0\.0\.1:\d+/);
    await (await card.$('[data-action="add"]'))!.click();
    await frame.fill('[data-form="onvif"] input[name="name"]', 'Gate');
    await frame.fill('[data-form="onvif"] input[name="username"]', USER);

    await frame.fill('[data-form="onvif"] input[name="password"]', 'not-the-password');
    const seen = responder.requests.length;
    const rtspSeen = (await camera.requests()).length;
    await frame.click('[data-form="onvif"] [data-action="test"]');
    const reason = await frame.waitForSelector('[data-form="onvif"] li.wrc-fail');
    assert.match(await reason.innerText(), /Wrong user name or password/);
    const logins = responder.requests.slice(seen).filter((r) => r.authenticated !== undefined);
    assert.deepEqual(logins.map((r) => r.authenticated), [false], 'one refused log-in at the camera, no retry');
    assert.deepEqual((await camera.requests()).slice(rtspSeen), [], 'and no RTSP log-in with the wrong password');
    assert.equal(await frame.isDisabled('[data-form="onvif"] [data-action="save"]'), true);

    await frame.fill('[data-form="onvif"] input[name="password"]', PASSWORD);
    await frame.click('[data-form="onvif"] [data-action="test"]');
    const stream = await frame.waitForSelector('[data-form="onvif"] li[data-step="stream"]');
    assert.match(await stream.innerText(), /Stream found: H\.264 640x360.*audio PCMU/);
    assert.match(await frame.innerText('[data-form="onvif"] li[data-step="onvif"]'), /ONVIF reached/);
    const size = await frame.$eval('[data-form="onvif"] img[data-test-snapshot]', async (img: HTMLImageElement) => {
      await img.decode();
      return [img.naturalWidth, img.naturalHeight];
    });
    assert.deepEqual(size, [640, 360]);
    await shoot('discovered-light');
    await page.setViewportSize(PHONE);
    await shoot('discovered-light-phone');
    await page.setViewportSize(DESKTOP);

    const saved = page.waitForResponse((r) => r.url().includes('/api/config-editor/plugin/homebridge-webrtc-cameras') && r.request().method() === 'POST');
    await frame.click('[data-form="onvif"] [data-action="save"]');
    assert.equal((await saved).ok(), true);
    const [block] = ui.pluginBlocks();
    assert.deepEqual(block?.['cameras'], [{ name: 'Gate', onvif: { host: '127.0.0.1', port: responder.port, username: USER, password: PASSWORD } }]);
    // The page never shows a saved camera password: it is only in the form the user just typed.
    assert.equal((await frame.content()).includes(PASSWORD), false);

    // The same tab in the dark theme, on a phone too (the UI themes the frame at load).
    const dark = await openCustomUi('dark');
    await tab(dark, 'discovered');
    await dark.click('[data-discovered="127.0.0.1"] [data-action="add"]');
    await dark.fill('[data-form="onvif"] input[name="username"]', USER);
    await dark.fill('[data-form="onvif"] input[name="password"]', PASSWORD);
    await dark.click('[data-form="onvif"] [data-action="test"]');
    await dark.waitForSelector('[data-form="onvif"] img[data-test-snapshot]');
    await shoot('discovered-dark');
    await page.setViewportSize(PHONE);
    await shoot('discovered-dark-phone');
  });

  it('after a restart the new camera runs, and its live preview decodes 50 frames in the UI page', async () => {
    // Every Test closed its session at the camera: nothing lingers to load it.
    await camera.waitForSessionCount(0);
    await ui.homebridge!.restart();
    await ui.homebridge!.waitForLog(/Watch page: /, 20_000);
    const frame = await openCustomUi();
    const card = await frame.waitForSelector('article[data-camera="gate"]');
    assert.match(await card.innerText(), /Gate/);
    await frame.click('article[data-camera="gate"] [data-action="preview"]');
    const stats = await waitForRtcStats(frame, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 50, { timeoutMs: 30_000 });
    assert.ok((stats.at(-1)?.video?.framesDecoded ?? 0) >= 50);
    assert.equal(await frame.$eval('video[data-preview="gate"]', (v: HTMLVideoElement) => v.videoWidth), 640);
    // The card follows the camera: live, with codec and resolution, without reloading the page.
    await frame.waitForSelector('article[data-camera="gate"] [data-state="live"]', { timeout: 15_000 });
    await frame.waitForFunction(() => Array.from(document.querySelectorAll('article[data-camera="gate"] .wrc-facts li')).some((li) => li.textContent === '1 viewer'), undefined, { timeout: 15_000 });
    assert.match(await frame.innerText('article[data-camera="gate"] .wrc-facts'), /H\.264[\s\S]*640x360[\s\S]*audio PCMU/);
    await shoot('cameras-light');
    await page.setViewportSize(PHONE);
    await shoot('cameras-light-phone');
  });

  it('HomeKit Secure Video from the card: "Record to HomeKit" asks the pre-buffer and what starts a clip and writes them into that camera\'s entry; after a restart the card says it is offered; "Stop" turns it off and keeps the choices', async () => {
    const saveResponse = (): Promise<unknown> => page.waitForResponse((r) => r.url().includes('/api/config-editor/plugin/homebridge-webrtc-cameras') && r.request().method() === 'POST');
    let frame = await openCustomUi();
    assert.equal(await frame.locator('article[data-camera="gate"] .wrc-recording').count(), 0, 'no recording line while recording is off');
    // "Record to HomeKit" asks the two choices first: 6 s before the motion, what starts a clip left automatic.
    await frame.click('article[data-camera="gate"] [data-action="recording"]');
    await frame.waitForSelector('article[data-camera="gate"] form[data-recording-form="gate"]');
    await frame.selectOption('article[data-camera="gate"] select[name="prebufferSeconds"]', '6');
    assert.equal(await frame.$eval('article[data-camera="gate"] select[name="motionSource"]', (select: HTMLSelectElement) => select.value), '');
    let saved = saveResponse();
    await frame.click('article[data-camera="gate"] [data-action="recording-save"]');
    await saved;
    await frame.waitForSelector('article[data-camera="gate"] [data-recording-saved="true"]');
    const gate = (): Record<string, unknown> => (ui.pluginBlocks()[0]?.['cameras'] as Array<Record<string, unknown>>)[0]!;
    assert.deepEqual(gate()['recording'], { enabled: true, prebufferSeconds: 6 });
    assert.equal(gate()['name'], 'Gate', 'the same entry, not a new one');
    assert.equal((ui.pluginBlocks()[0]?.['cameras'] as unknown[]).length, 1);

    await ui.homebridge!.restart();
    await ui.homebridge!.waitForLog(/\[Gate\] Home app camera ready: .*HomeKit Secure Video offered \(6 s pre-buffer; recordings start on motion\)/, 30_000);
    frame = await openCustomUi();
    const line = await frame.waitForSelector('article[data-camera="gate"] .wrc-recording[data-recording="off"]', { timeout: 15_000 });
    assert.match(await line.innerText(), /HomeKit Secure Video offered: turn on recording for this camera in the Home app/);
    assert.equal(await frame.innerText('article[data-camera="gate"] [data-action="recording"]'), 'Stop HomeKit recording');
    // Its settings open with the saved choices.
    await frame.click('article[data-camera="gate"] [data-action="recording-settings"]');
    // The form appears once the saved entry has been read (an await in the page): wait for it.
    await frame.waitForSelector('article[data-camera="gate"] form[data-recording-form="gate"]');
    assert.equal(await frame.$eval('article[data-camera="gate"] select[name="prebufferSeconds"]', (select: HTMLSelectElement) => select.value), '6');

    saved = saveResponse();
    await frame.click('article[data-camera="gate"] [data-action="recording"]');
    await saved;
    await frame.waitForSelector('article[data-camera="gate"] [data-recording-saved="false"]');
    assert.deepEqual(gate()['recording'], { enabled: false, prebufferSeconds: 6 }, 'off, with the choice kept for next time');
  });

  it('a share link made in the UI (QR code readable) plays in a second browser context and stops within 2 s of Revoke', async () => {
    const frame = await openCustomUi();
    await tab(frame, 'share');
    await frame.check('#share-cameras input[value="gate"]');
    await frame.selectOption('#share-form select[name="expiresIn"]', '1h');
    await frame.fill('#share-form input[name="label"]', 'Grandma');
    await frame.click('#share-form button[type="submit"]');
    const url = await (await frame.waitForSelector('[data-share-url]')).inputValue();
    assert.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${webPort}/s/wrc1\\.`));
    const qr = join(scratch, 'qr.png');
    await (await frame.$('.wrc-qr'))!.screenshot({ path: qr });
    assert.equal((await run('zbarimg', ['-q', '--raw', qr])).stdout.trim(), url);
    await frame.waitForSelector('[data-link][data-state="active"]');
    assert.match(await frame.innerText('[data-link][data-state="active"]'), /Grandma[\s\S]*Gate/);
    await shoot('share-light');

    const viewerContext = await browser.newContext();
    await viewerContext.addInitScript({ content: RTC_RECORDER_SCRIPT });
    const viewer = await viewerContext.newPage();
    // The link's landing page sets the session and moves on to the watch page by itself.
    await viewer.goto(url);
    await viewer.waitForURL(`http://127.0.0.1:${webPort}/`);
    await viewer.click('[data-camera="gate"] .tile-open');
    await waitForRtcStats(viewer, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= 25, { timeoutMs: 25_000 });

    const started = Date.now();
    await frame.click('[data-link][data-state="active"] [data-action="revoke"]');
    await viewer.waitForFunction(() => /access to this camera has ended/.test(document.querySelector('#player-message')?.textContent ?? ''), undefined, { timeout: 2000 });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2000, `stopped after ${elapsed} ms`);
    await frame.waitForSelector('[data-link][data-state="revoked"]');
    await viewerContext.close();
  });

  it('viewers: add one with a hashed password; screenshots of every tab, light and dark, desktop and phone', async () => {
    let frame = await openCustomUi();
    await tab(frame, 'viewers');
    await frame.fill('#viewer-form input[name="username"]', 'grandpa');
    await frame.fill('#viewer-form input[name="password"]', 'correct horse battery');
    await frame.check('#viewer-cameras input[value="gate"]');
    const saved = page.waitForResponse((r) => r.url().includes('/api/config-editor/plugin/homebridge-webrtc-cameras') && r.request().method() === 'POST');
    await frame.click('#viewer-form button[type="submit"]');
    assert.equal((await saved).ok(), true);
    await frame.waitForSelector('[data-viewer="grandpa"]');
    const viewers = ui.pluginBlocks()[0]?.['viewers'] as Array<{ username: string; password: string; cameras: string[]; admin: boolean }>;
    const grandpa = viewers.find((v) => v.username === 'grandpa');
    assert.match(grandpa?.password ?? '', /^scrypt\$ln=15,r=8,p=1\$/);
    assert.deepEqual([grandpa?.cameras, grandpa?.admin], [['gate'], false]);
    assert.equal(ui.readConfigText().includes('correct horse battery'), false);

    for (const theme of ['light', 'dark'] as const) {
      for (const [suffix, viewport] of [['', DESKTOP], ['-phone', PHONE]] as const) {
        frame = await openCustomUi(theme, viewport);
        for (const name of ['cameras', 'share', 'viewers']) {
          if (theme === 'light' && suffix === '' && name === 'cameras') continue; // taken live above
          if (theme === 'light' && name === 'share' && suffix === '') continue;
          await tab(frame, name);
          if (name === 'cameras') await frame.waitForSelector('article[data-camera="gate"] img, article[data-camera="gate"] .wrc-placeholder');
          if (name === 'share') await frame.waitForSelector('[data-link]');
          if (name === 'viewers') await frame.waitForSelector('[data-viewer="grandpa"]');
          if (theme === 'light' && suffix === '-phone' && name === 'cameras') continue; // taken live above
          await shoot(`${name}-${theme}${suffix}`);
        }
      }
    }
  });
});
