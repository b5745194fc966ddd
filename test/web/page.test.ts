/**
 * The watch page in real Chromium against a server whose registry holds fake cameras (no media):
 * the grid, words for states, snapshots, the player's error messages, phone layout, accessibility,
 * and no console errors or CSP violations throughout.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, type ChromiumSession } from '../helpers/browser.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import type { SignallingHandler } from '../../src/web/types.js';
import { registryOf, sampleCameras } from './fixtures.js';

const ARTIFACTS = '.test-artifacts/web';

/** A real JPEG (ffmpeg's test pattern) so the tile shows an actual picture. */
async function testJpeg(): Promise<Buffer> {
  const { stdout } = await promisify(execFile)(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360', '-frames:v', '1', '-f', 'mjpeg', '-'],
    { encoding: 'buffer', maxBuffer: 8 * 1024 * 1024 },
  );
  return stdout;
}

/** Stub signalling: plays the protocol's error and state messages without any media. */
const stubSignalling: SignallingHandler = (ws) => {
  ws.on('message', (data) => {
    let message: { type?: unknown; camera?: unknown };
    try {
      message = JSON.parse(data.toString()) as typeof message;
    } catch {
      ws.send(JSON.stringify({ type: 'error', code: 'bad-request', message: 'Malformed message' }));
      return;
    }
    if (message.type !== 'watch') return;
    if (message.camera === 'garage') {
      ws.send(JSON.stringify({
        type: 'error',
        code: 'unsupported-codec',
        message: 'This camera sends H.265 video, which this browser cannot play.',
      }));
    } else if (message.camera === 'garden') {
      ws.send(JSON.stringify({ type: 'error', code: 'too-many-viewers', message: 'Too many viewers (20 of 20).' }));
      ws.close();
    } else {
      ws.send(JSON.stringify({ type: 'state', state: 'offline', message: 'camera unreachable' }));
    }
  });
};

interface PageProblems {
  console: string[];
  csp: string[];
}

async function watchProblems(page: Page): Promise<PageProblems> {
  const problems: PageProblems = { console: [], csp: [] };
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.console.push(`${message.type()}: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.console.push(`pageerror: ${error.message}`));
  await page.exposeFunction('__reportCsp', (text: string) => problems.csp.push(text));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      (window as unknown as { __reportCsp(text: string): void }).__reportCsp(`${event.violatedDirective} ${event.blockedURI}`);
    });
  });
  return problems;
}

describe('watch page in Chromium', () => {
  let server: WebServer;
  let base: string;
  let browser: ChromiumSession;
  const cameras = sampleCameras();

  before(async () => {
    const jpeg = await testJpeg();
    server = createWebServer({
      port: 0,
      host: '127.0.0.1',
      registry: registryOf(cameras),
      signalling: stubSignalling,
      snapshots: { getSnapshot: async (id) => (id === 'front-door' ? jpeg : undefined) },
    });
    base = (await server.listen()).url;
    browser = await launchChromium();
    await mkdir(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('renders a tile per camera with names, states and details, without console errors or CSP violations', async () => {
    const page = await browser.context.newPage();
    const problems = await watchProblems(page);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(base);
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 3);
    const tiles = await page.$$eval('#grid .tile', (elements) =>
      elements.map((element) => ({
        id: (element as HTMLElement).dataset.camera,
        name: element.querySelector('.tile-name')?.textContent,
        state: element.querySelector('.tile-state')?.textContent,
        meta: element.querySelector('.tile-meta')?.textContent,
      })),
    );
    assert.deepEqual(tiles.map((t) => [t.id, t.name, t.state]), [
      ['front-door', 'Front door', 'Live'],
      ['garden', 'Garden', 'Camera offline, retrying'],
      ['garage', 'Garage', 'Standby'],
    ]);
    assert.match(tiles[0]!.meta ?? '', /1280\u00d7720/);
    assert.match(tiles[0]!.meta ?? '', /2\.\d Mbit\/s/);
    assert.match(tiles[0]!.meta ?? '', /25 fps/);
    assert.match(tiles[1]!.meta ?? '', /ECONNREFUSED <camera url>/);

    // The live camera's snapshot is shown; the others keep the placeholder.
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('[data-camera="front-door"] .tile-snapshot');
      return img !== null && !img.hidden && img.complete && img.naturalWidth === 640;
    });
    assert.equal(await page.isVisible('[data-camera="garage"] .placeholder'), true);
    assert.equal(await page.isVisible('[data-camera="garage"] .tile-snapshot'), false);

    const png = await page.screenshot({ path: `${ARTIFACTS}/watch-page.png`, fullPage: true });
    assert.ok(png.length > 10_000, 'the screenshot looks blank');

    // State changes reach the grid through the periodic refresh.
    cameras[2]!.setState({ state: 'live' });
    await page.waitForFunction(
      () => document.querySelector('[data-camera="garage"] .tile-state')?.textContent === 'Live',
      undefined,
      { timeout: 10_000 },
    );
    cameras[2]!.setState({ state: 'idle' });

    assert.deepEqual(problems.csp, []);
    assert.deepEqual(problems.console, []);
    await page.close();
  });

  it('the player says plainly when a camera cannot be played, and why', async () => {
    const page = await browser.context.newPage();
    const problems = await watchProblems(page);
    await page.goto(base);
    await page.waitForSelector('[data-camera="garage"] .tile-open');

    await page.click('[data-camera="garage"] .tile-open');
    await page.waitForFunction(() => (document.getElementById('player') as HTMLDialogElement).open);
    assert.equal(await page.textContent('#player-title'), 'Garage');
    await page.waitForFunction(() => /H\.265/.test(document.getElementById('player-message')?.textContent ?? ''));
    assert.equal(await page.textContent('#player-state'), 'Cannot play');
    assert.equal(await page.isVisible('#player-message'), true);
    assert.match(page.url(), /#camera=garage$/);

    await page.click('#player-close');
    await page.waitForFunction(() => !(document.getElementById('player') as HTMLDialogElement).open);
    // The dialog's close event is dispatched after close() returns; the hash goes with it.
    await page.waitForFunction(() => window.location.hash === '');

    await page.click('[data-camera="garden"] .tile-open');
    await page.waitForFunction(() => /Too many viewers/.test(document.getElementById('player-message')?.textContent ?? ''));
    assert.match((await page.textContent('#player-message')) ?? '', /Trying again in \d+ s/);
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => !(document.getElementById('player') as HTMLDialogElement).open);

    await page.click('[data-camera="front-door"] .tile-open');
    await page.waitForFunction(() => /Camera offline, retrying/.test(document.getElementById('player-message')?.textContent ?? ''));
    // Camera resolution and audio from the list are shown until the stream's own info arrives.
    assert.match((await page.textContent('#player-info')) ?? '', /1280\u00d7720/);
    assert.equal(await page.getAttribute('#player-mute', 'aria-label'), 'Unmute');
    assert.equal(await page.$eval('#player-video', (video) => (video as HTMLVideoElement).muted), true);
    await page.click('#player-stats-toggle');
    assert.equal(await page.getAttribute('#player-stats-toggle', 'aria-pressed'), 'true');
    await page.click('#player-close');

    // The signalling sockets of closed players are gone.
    const deadline = Date.now() + 5000;
    while (server.signallingSockets > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.signallingSockets, 0);

    assert.deepEqual(problems.csp, []);
    assert.deepEqual(problems.console, []);
    await page.close();
  });

  it('opens the player from a #camera= link', async () => {
    const page = await browser.context.newPage();
    await page.goto(`${base}#camera=front-door`);
    await page.waitForFunction(() => (document.getElementById('player') as HTMLDialogElement).open);
    assert.equal(await page.textContent('#player-title'), 'Front door');
    await page.close();
  });

  it('fits a phone: one column, full-width player, every button named', async () => {
    const page = await browser.context.newPage();
    const problems = await watchProblems(page);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(base);
    await page.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 3);
    const lefts = await page.$$eval('#grid .tile', (elements) => elements.map((e) => Math.round(e.getBoundingClientRect().left)));
    assert.equal(new Set(lefts).size, 1, 'tiles should stack in one column');
    const gridWidth = await page.$eval('#grid', (e) => e.getBoundingClientRect().width);
    const tileWidth = await page.$eval('#grid .tile', (e) => e.getBoundingClientRect().width);
    assert.ok(tileWidth >= gridWidth - 1);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert.equal(overflow, false, 'horizontal scrolling on a phone');
    assert.equal(await page.getAttribute('#player-video', 'playsinline'), '');

    await page.click('[data-camera="garage"] .tile-open');
    await page.waitForFunction(() => (document.getElementById('player') as HTMLDialogElement).open);
    const dialogWidth = await page.$eval('#player', (e) => e.getBoundingClientRect().width);
    assert.ok(dialogWidth >= 389, `player is ${dialogWidth}px wide on a 390px phone`);
    const unnamed = await page.$$eval('button', (buttons) =>
      buttons
        .filter((b) => !(b as HTMLButtonElement).hidden)
        .filter((b) => !(b.getAttribute('aria-label') ?? b.textContent ?? '').trim())
        .map((b) => b.outerHTML),
    );
    assert.deepEqual(unnamed, []);
    await page.screenshot({ path: `${ARTIFACTS}/watch-page-phone.png` });
    assert.deepEqual(problems.csp, []);
    assert.deepEqual(problems.console, []);
    await page.close();
  });

  it('keeps the snapshot image out of the DOM as a URL: nothing but blob: sources', async () => {
    const page = await browser.context.newPage();
    await page.goto(base);
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('[data-camera="front-door"] .tile-snapshot');
      return img !== null && img.src.startsWith('blob:');
    });
    await writeFile(`${ARTIFACTS}/watch-page.html`, await page.content());
    await page.close();
  });
});
