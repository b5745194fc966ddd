/**
 * Issue 12 item 13, through the real product: a real Homebridge with a GStreamer fake camera takes
 * a snapshot once (the camera was watched), which the plugin keeps in its storage folder. Homebridge
 * restarts and the camera is gone. The watch page in Chromium then shows that saved picture at once,
 * marked with its age, instead of "No picture yet" while the live snapshot finds nothing.
 */
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Request } from 'playwright-core';
import { launchChromium, signInWithForm, type ChromiumSession } from '../helpers/browser.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { platformConfig, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { getFreePort } from '../helpers/ports.js';
import { cleanupAll } from '../helpers/processes.js';
import { signIn } from '../web/auth-helpers.js';

const VIEWER = { username: 'family', password: 'Family-Viewer-Secret-7', admin: false };
const TILE = '[data-camera="porch"]';

after(cleanupAll);

describe('e2e: the last good snapshot survives a restart and fills the tile at once', { timeout: 240_000 }, () => {
  let camera: FakeCamera;
  let hb: HomebridgeProcess;
  let chromium: ChromiumSession | undefined;
  let base: string;

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'none' });
    hb = await startHomebridge({
      platform: platformConfig({
        cameras: [{ name: 'Porch', id: 'porch', rtspUrl: camera.url }],
        web: { port: await getFreePort() },
        viewers: [VIEWER],
      }),
    });
    const line = await hb.waitForLog(/Watch page: (\S+)/, 20_000);
    base = /Watch page: (\S+)/.exec(line)![1]!.replace(/\/$/, '');
  });

  after(async () => {
    await chromium?.close();
    await stopAllHomebridges();
    await hb?.stop({ removeStorage: true });
    await camera?.close();
  });

  it('e2e: watched once, restarted with the camera gone: the tile shows the saved picture with its age within 1 s of page load', async (t) => {
    // Watched once: a live snapshot from the running camera.
    const session = await signIn(base, VIEWER.username, VIEWER.password);
    assert.equal(session.status, 200, 'the viewer signs in');
    const since = hb.lines.length;
    const live = await fetch(`${base}/api/cameras/porch/snapshot.jpg?width=640`, { headers: { Cookie: session.jar.header() } });
    assert.equal(live.status, 200);
    const picture = Buffer.from(await live.arrayBuffer());
    assert.equal(picture.subarray(0, 2).toString('hex'), 'ffd8');
    await hb.waitForLog(/\[Porch\] snapshot: saved the last good picture/, 15_000, { since });

    const file = join(hb.storagePath, 'webrtc-cameras', 'snapshots', 'porch.jpg');
    assert.deepEqual(await readFile(file), picture, 'the picture the viewer saw, byte for byte');
    assert.equal((await stat(file)).mode & 0o777, 0o600, 'private: a picture of someone\'s home');

    // The camera is gone and Homebridge starts again from the same storage.
    await camera.close();
    await hb.restart();
    await hb.waitForLog(/Watch page: /, 20_000);

    chromium = await launchChromium();
    const page = await chromium.openPage(`${base}/login`);
    await signInWithForm(page, base, VIEWER.username, VIEWER.password);
    // A fresh load to time: the page after sign-in may have shown the picture before it was watched.
    // Only requests the reloaded page makes count: the page shown after sign-in makes its own,
    // which can still be under way. Once the reload has committed, the old document is gone.
    const savedAnswers: Array<{ status: number; age: string | undefined }> = [];
    const savedRequests = new Set<Request>();
    let reloadCommitted = false;
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) reloadCommitted = true;
    });
    page.on('request', (r) => {
      if (reloadCommitted && r.url().includes('/api/cameras/porch/last-snapshot.jpg')) savedRequests.add(r);
    });
    page.on('response', (r) => {
      if (savedRequests.has(r.request())) savedAnswers.push({ status: r.status(), age: r.headers()['x-snapshot-age-seconds'] });
    });
    await page.reload();
    // The live snapshot of the unreachable camera (it takes seconds), to see that the saved picture outlives its answer.
    const liveAnswer = page.waitForResponse((r) => r.url().includes('/api/cameras/porch/snapshot.jpg'), { timeout: 30_000 });
    liveAnswer.catch(() => undefined); // awaited below; a failure before then must not go unhandled
    const shown = await page.waitForFunction((tile) => {
      const img = document.querySelector<HTMLImageElement>(`${tile} .tile-snapshot`);
      const age = document.querySelector<HTMLElement>(`${tile} .tile-age`);
      if (!img || img.hidden || !img.complete || img.naturalWidth === 0 || !age || age.hidden) return undefined;
      const navigation = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return {
        msAfterLoadStart: performance.now(),
        msAfterDomReady: performance.now() - navigation.domContentLoadedEventEnd,
        age: age.textContent,
        placeholderHidden: document.querySelector<HTMLElement>(`${tile} .placeholder`)!.hidden,
        size: [img.naturalWidth, img.naturalHeight],
        src: img.src,
      };
    }, TILE, { timeout: 20_000, polling: 'raf' });
    const result = (await shown.jsonValue())!;
    t.diagnostic(`saved picture shown ${result.msAfterLoadStart.toFixed(0)} ms after navigation start, ${result.msAfterDomReady.toFixed(0)} ms after DOMContentLoaded; label "${result.age}"`);
    assert.ok(result.msAfterDomReady < 1000, `shown ${result.msAfterDomReady.toFixed(0)} ms after DOMContentLoaded`);
    assert.match(result.age ?? '', /^Saved picture, (just now|\d+ s ago|\d+ min ago)$/);
    assert.equal(result.placeholderHidden, true, '"No picture yet" is not shown');
    assert.deepEqual(result.size, [640, 360]);
    assert.deepEqual(savedAnswers.map((a) => a.status), [200], 'one request for the saved picture');
    assert.match(savedAnswers[0]!.age ?? '', /^[0-9]+$/);
    // The pixels on screen are the saved file's: the tile's image and the file, decoded by the same browser, match exactly.
    assert.match(result.src, /^blob:/);
    const same = await page.evaluate(async ({ tile, bytes }) => {
      const img = document.querySelector<HTMLImageElement>(`${tile} .tile-snapshot`)!;
      const expected = await createImageBitmap(new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }));
      // (No named helper functions in here: the test's compiler would wrap them in a helper the page lacks.)
      const [a, b] = [[img, img.naturalWidth, img.naturalHeight] as const, [expected, expected.width, expected.height] as const].map(([source, width, height]) => {
        const canvas = document.createElement('canvas');
        canvas.width = width;
        canvas.height = height;
        const context = canvas.getContext('2d')!;
        context.drawImage(source, 0, 0);
        return context.getImageData(0, 0, width, height).data;
      });
      return a!.length === b!.length && a!.every((value, i) => value === b![i]);
    }, { tile: TILE, bytes: [...picture] });
    assert.equal(same, true, 'the tile shows the saved picture');

    // The live snapshot finds nothing (camera gone): the saved picture and its label stay.
    assert.equal((await liveAnswer).status(), 204);
    const after = await page.evaluate((tile) => ({
      img: !document.querySelector<HTMLImageElement>(`${tile} .tile-snapshot`)!.hidden,
      age: document.querySelector<HTMLElement>(`${tile} .tile-age`)!.textContent,
      ageShown: !document.querySelector<HTMLElement>(`${tile} .tile-age`)!.hidden,
    }), TILE);
    assert.deepEqual([after.img, after.ageShown], [true, true]);
    assert.match(after.age ?? '', /^Saved picture, /);
  });
});
