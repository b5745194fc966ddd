/**
 * End to end in Chromium, with real signalling, WHEP and synthetic H.264 sources behind access
 * control: the page without credentials goes to the sign-in form; a viewer sees and plays exactly
 * its cameras; an admin makes a share link in the page's Share dialog; the link, clicked on another
 * site, opens camera B only (403 on A); revoking it stops the viewer already watching within 2 s;
 * an expired link shows the "no longer works" page; and over HTTPS with the self-signed certificate
 * the page plays and the session cookie is Secure (with the HTTP listener redirecting there).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, readRtcStats, waitForRtcStats, type ChromiumSession } from '../helpers/browser.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { createAccessControl, createHttpsRedirect, loadTlsCredentials, type AccessControl, type RedirectServer } from '../../src/web/auth/index.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { createSignallingHandler } from '../../src/webrtc/signalling.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import type { CameraRegistry } from '../../src/web/types.js';
import { recordingLogger } from '../web/auth-helpers.js';
import { registryOf } from '../web/fixtures.js';

const VIEWERS = [
  { username: 'ada', password: 'Ada-Admin-Secret-551', cameras: [], admin: true },
  { username: 'vera', password: 'Vera-Viewer-Secret-662', cameras: ['cam-a'], admin: false },
];

interface Stack {
  server: WebServer;
  access: AccessControl;
  whep: WhepEndpoint;
  base: string;
  port: number;
  clock: { now: number };
  logs: string[];
  close(): Promise<void>;
}

async function startStack(registry: CameraRegistry, storage: string, tls?: { cert: Buffer; key: Buffer }): Promise<Stack> {
  const logs: string[] = [];
  const log = recordingLogger(logs);
  const clock = { now: Date.now() };
  const access = await createAccessControl({
    viewers: VIEWERS,
    storagePath: storage,
    tls: tls !== undefined,
    log,
    now: () => clock.now,
    cameraIds: () => registry.list().map((s) => s.id),
    sweepIntervalMs: 200,
  });
  const limits = new ViewerLimiter();
  const whep = createWhepHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS, logger: log });
  const server = createWebServer({
    port: 0,
    host: '127.0.0.1',
    registry,
    tls,
    log,
    cameraExtras: (id) => ({ name: id === 'cam-a' ? 'Camera A' : 'Camera B' }),
    authorize: access.authorize,
    routes: access.routes,
    loginPath: access.loginPath,
    secrets: access.secrets,
    signalling: access.guardSignalling(createSignallingHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS, logger: log })),
    whep: access.guardWhep(whep),
  });
  access.onRevoke((predicate, reason) => server.disconnect(predicate, reason));
  const { port } = await server.listen();
  const base = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  return {
    server,
    access,
    whep,
    base,
    port,
    clock,
    logs,
    async close() {
      await whep.closeAll();
      await server.close();
      await access.stop();
    },
  };
}

async function signInWithForm(page: Page, base: string, username: string, password: string): Promise<void> {
  await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type=submit]')]);
}

async function tileIds(page: Page): Promise<string[]> {
  await page.waitForSelector('[data-camera] .tile-open');
  return page.$$eval('[data-camera]', (tiles) => tiles.map((t) => (t as HTMLElement).dataset.camera ?? '').sort());
}

async function watch(page: Page, camera: string, frames = 25): Promise<number> {
  await page.click(`[data-camera="${camera}"] .tile-open`);
  const stats = await waitForRtcStats(page, (all) => (all.at(-1)?.video?.framesDecoded ?? 0) >= frames, { timeoutMs: 25_000 });
  return stats.at(-1)!.video!.framesDecoded ?? 0;
}

describe('e2e security: the page in Chromium behind access control', () => {
  let storage: string;
  let a: SyntheticSource;
  let b: SyntheticSource;
  let stack: Stack;
  let admin: ChromiumSession;
  let viewer: ChromiumSession;
  let elsewhere: Server;
  let linkUrl = '';

  before(async () => {
    storage = await mkdtemp(join(tmpdir(), 'wrc-sec-e2e-'));
    a = await SyntheticSource.create({ id: 'cam-a', width: 640, height: 360, fps: 25, gop: 25 });
    b = await SyntheticSource.create({ id: 'cam-b', width: 640, height: 360, fps: 25, gop: 25 });
    stack = await startStack(registryOf([a, b]), storage);
    admin = await launchChromium();
    viewer = await launchChromium();
  });
  after(async () => {
    await admin?.close();
    await viewer?.close();
    await stack?.close();
    a?.close();
    b?.close();
    if (elsewhere) await new Promise((resolve) => elsewhere.close(resolve));
    if (storage) await rm(storage, { recursive: true, force: true });
  });

  it('sends a visitor without credentials to the sign-in form; API and WHEP answer 401 in the browser too', async () => {
    const page = await viewer.context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${stack.base}/`);
    assert.equal(new URL(page.url()).pathname, '/login');
    assert.equal(await page.isVisible('form[action="/login"] input[name=password]'), true);
    const statuses = await page.evaluate(async () => {
      const api = await fetch('/api/cameras');
      const whep = await fetch('/whep/cam-a', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' });
      const snapshot = await fetch('/api/cameras/cam-a/snapshot.jpg');
      const ws = await new Promise<string>((resolve) => {
        const socket = new WebSocket(`ws://${location.host}/signal`);
        socket.onopen = () => resolve('open');
        socket.onerror = () => resolve('refused');
      });
      return [api.status, whep.status, snapshot.status, ws];
    });
    assert.deepEqual(statuses, [401, 401, 401, 'refused']);
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('a viewer signs in with the form, sees exactly its camera, plays it, and can sign out', async () => {
    const page = await viewer.context.newPage();
    await signInWithForm(page, stack.base, 'vera', VIEWERS[1]!.password);
    assert.deepEqual(await tileIds(page), ['cam-a']);
    await page.waitForSelector('#account-name');
    assert.equal(await page.textContent('#account-name'), 'vera');
    assert.equal(await page.isVisible('#share-open'), false, 'no Share button for a non-admin');
    const cookies = await viewer.context.cookies(stack.base);
    const session = cookies.find((c) => c.name === 'wrc_session');
    assert.ok(session);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.secure, false);
    assert.ok(session.expires > Date.now() / 1000 + 3600);
    assert.ok(await watch(page, 'cam-a') >= 25);
    const forbidden = await page.evaluate(async () => (await fetch('/api/cameras/cam-b')).status);
    assert.equal(forbidden, 403);
    await page.click('#player-close');
    await Promise.all([page.waitForURL(`${stack.base}/login`), page.click('#sign-out')]);
    const after = await page.evaluate(async () => (await fetch('/api/cameras')).status);
    assert.equal(after, 401);
    await page.close();
  });

  it("an admin makes a share link for camera B in the page's Share dialog", async () => {
    const page = await admin.context.newPage();
    await signInWithForm(page, stack.base, 'ada', VIEWERS[0]!.password);
    assert.deepEqual(await tileIds(page), ['cam-a', 'cam-b']);
    await page.click('#share-open');
    await page.waitForSelector('#share-dialog input[value="cam-b"]');
    await page.check('#share-dialog input[value="cam-b"]');
    await page.selectOption('#share-expiry', '7d');
    await page.fill('#share-label', 'Grandma');
    await page.click('#share-dialog button[type=submit]');
    await page.waitForFunction(() => (document.querySelector('#share-url') as HTMLInputElement | null)?.value.includes('/s/wrc1.'));
    linkUrl = await page.inputValue('#share-url');
    assert.match(linkUrl, new RegExp(`^${stack.base}/s/wrc1\\.`));
    await page.waitForSelector('#share-links li[data-state="active"]');
    assert.match((await page.textContent('#share-links')) ?? '', /Grandma.*cam-b/);
    await page.screenshot({ path: '.test-artifacts/web/share-dialog.png' });
    await page.close();
  });

  it('the link, clicked on another site, opens the page with camera B only, which plays; A is 403', async () => {
    assert.ok(linkUrl);
    // A page on another site (127.0.0.2 is a different site from 127.0.0.1), like a web mail.
    elsewhere = createServer((_req, res) => {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><a id="go" href="${linkUrl}">Watch the garden</a>`);
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.2', resolve));
    const port = (elsewhere.address() as { port: number }).port;
    const page = await viewer.context.newPage();
    await page.goto(`http://127.0.0.2:${port}/`);
    await Promise.all([page.waitForURL(`${stack.base}/`), page.click('#go')]);
    assert.deepEqual(await tileIds(page), ['cam-b']);
    await page.waitForSelector('#account-name');
    assert.equal(await page.textContent('#account-name'), 'Shared: Grandma');
    const statuses = await page.evaluate(async () => [(await fetch('/api/cameras/cam-a')).status, (await fetch('/api/cameras/cam-a/snapshot.jpg')).status]);
    assert.deepEqual(statuses, [403, 403]);
    assert.ok(await watch(page, 'cam-b') >= 25);
    // Left open and playing for the next test.
    (globalThis as { linkPage?: Page }).linkPage = page;
  });

  it('revoking the link stops that viewer within 2 s and says why', async () => {
    const page = (globalThis as { linkPage?: Page }).linkPage!;
    const admins = await admin.context.newPage();
    await admins.goto(`${stack.base}/`);
    await admins.click('#share-open');
    await admins.waitForSelector('#share-links li[data-state="active"] button');
    const before = (await readRtcStats(page)).at(-1)?.video?.framesDecoded ?? 0;
    assert.ok(before > 0);
    const started = Date.now();
    await admins.click('#share-links li[data-state="active"] button');
    await page.waitForFunction(() => /access to this camera has ended/.test(document.querySelector('#player-message')?.textContent ?? ''), undefined, { timeout: 2000 });
    const elapsed = Date.now() - started;
    assert.ok(elapsed < 2000, `${elapsed} ms`);
    await admins.waitForSelector('#share-links li[data-state="revoked"]');
    const status = await page.evaluate(async () => (await fetch('/api/cameras')).status);
    assert.equal(status, 401);
    assert.equal(stack.server.signallingSockets, 0);
    await admins.close();
    await page.close();
  });

  it('an expired link shows the "does not work any more" page (401)', async () => {
    const link = await stack.access.shareLinks.create({ cameras: ['cam-a'], expiresIn: '1h', createdBy: 'ada' });
    stack.clock.now += 2 * 3_600_000;
    const page = await viewer.context.newPage();
    const response = await page.goto(`${stack.base}${link.path}`);
    assert.equal(response?.status(), 401);
    assert.match((await page.textContent('body')) ?? '', /does not work any more/);
    stack.clock.now = Date.now();
    await page.close();
  });

  it('put no password in any log line', () => {
    const text = stack.logs.join('\n');
    for (const viewerAccount of VIEWERS) assert.ok(!text.includes(viewerAccount.password));
    assert.ok(stack.logs.some((l) => /'ada' revoked share link/.test(l)));
  });
});

describe('e2e security: HTTPS with the self-signed certificate', () => {
  let storage: string;
  let a: SyntheticSource;
  let stack: Stack;
  let browser: ChromiumSession;
  let redirect: RedirectServer;
  let redirectPort: number;

  before(async () => {
    storage = await mkdtemp(join(tmpdir(), 'wrc-sec-tls-'));
    a = await SyntheticSource.create({ id: 'cam-a', width: 640, height: 360, fps: 25, gop: 25 });
    const tls = await loadTlsCredentials({ selfSigned: true }, { storagePath: storage });
    assert.ok(tls);
    stack = await startStack(registryOf([a]), storage, { cert: tls.cert, key: tls.key });
    redirect = createHttpsRedirect({ port: 0, host: '127.0.0.1', httpsPort: stack.port });
    ({ port: redirectPort } = await redirect.listen());
    // The test accepts the certificate the way a person clicks through the warning once.
    browser = await launchChromium({ extraArgs: ['--ignore-certificate-errors'] });
  });
  after(async () => {
    await browser?.close();
    await redirect?.close();
    await stack?.close();
    a?.close();
    if (storage) await rm(storage, { recursive: true, force: true });
  });

  it('redirects plain HTTP to the HTTPS sign-in, plays over HTTPS, and the session cookie is Secure', async () => {
    const page = await browser.context.newPage();
    await page.goto(`http://127.0.0.1:${redirectPort}/`);
    assert.equal(page.url(), `${stack.base}/login`);
    assert.equal(await page.evaluate(() => window.isSecureContext), true);
    await page.fill('input[name=username]', 'vera');
    await page.fill('input[name=password]', VIEWERS[1]!.password);
    await Promise.all([page.waitForURL(`${stack.base}/`), page.click('button[type=submit]')]);
    const cookies = await browser.context.cookies(stack.base);
    const session = cookies.find((c) => c.name === '__Host-wrc_session');
    assert.ok(session, JSON.stringify(cookies.map((c) => c.name)));
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
    assert.ok(await watch(page, 'cam-a', 50) >= 50);
    await page.close();
  });
});
