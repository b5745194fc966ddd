/**
 * Access control as a user gets it: the real plugin in a real Homebridge, a camera with a Digest
 * password, one viewer allowed one camera. Everything a stranger can reach answers 401 (or sends the
 * page to sign-in); the viewer sees exactly its camera; and neither password appears in Homebridge's
 * full debug log, in any API answer, or in the page.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { FakeCamera } from '../helpers/fake-camera.js';
import { platformConfig, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { getFreePort } from '../helpers/ports.js';
import { CookieJar, formToken, request, signIn } from '../web/auth-helpers.js';

const CAMERA_USER = 'admin';
const CAMERA_PASSWORD = 'Cam-Secret-7731';
const VIEWER = { username: 'grandma', password: 'Viewer-Pass-4402' };
const PUBLIC_URL = 'https://cameras.example.test/';
const DASHBOARD = 'https://dashboard.example.test:8443';
const FOREIGN = 'https://evil.example.test';

function upgradeStatus(url: string, origin = new URL(url.replace(/^ws/, 'http')).origin): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Origin: origin } });
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('open', () => { resolve(101); ws.close(); });
    ws.on('error', (error) => reject(error));
  });
}

/** The sign-in form's JSON POST as the viewer, with extra headers on both requests; the HTTP status. */
async function postSignIn(base: string, password: string, headers: Record<string, string>): Promise<number> {
  const jar = new CookieJar();
  const form = await request(`${base}/login`, { jar, headers });
  const answer = await request(`${base}/login`, {
    method: 'POST',
    jar,
    headers: { ...headers, 'Content-Type': 'application/json', 'X-CSRF-Token': formToken(form.body) },
    body: JSON.stringify({ username: VIEWER.username, password }),
  });
  return answer.status;
}

describe('e2e: access control in the plugin under Homebridge', () => {
  let porch: FakeCamera;
  let garage: FakeCamera;
  let hb: HomebridgeProcess;
  let base: string;
  const answers: string[] = [];

  before(async () => {
    porch = await FakeCamera.start({ width: 640, height: 360, auth: { method: 'digest', user: CAMERA_USER, password: CAMERA_PASSWORD } });
    garage = await FakeCamera.start({ width: 640, height: 360, audio: 'none' });
    const webPort = await getFreePort();
    hb = await startHomebridge({
      platform: platformConfig({
        cameras: [
          { name: 'Porch', rtspUrl: porch.urlWithCredentials(CAMERA_USER, CAMERA_PASSWORD) },
          { name: 'Garage', rtspUrl: garage.url },
        ],
        // As behind a TLS-terminating reverse proxy, with a family dashboard allowed to embed the API.
        web: { port: webPort, publicUrl: PUBLIC_URL, allowedOrigins: ['https://Dashboard.example.test:8443/'], trustedProxies: ['127.0.0.1'] },
        viewers: [{ ...VIEWER, cameras: ['porch'] }],
      }),
    });
    await hb.waitForLog(/Watch page: /, 20_000);
    base = `http://127.0.0.1:${webPort}`;
  });

  after(async () => {
    await hb?.stop({ removeStorage: true });
    await stopAllHomebridges();
    await Promise.all([porch?.close(), garage?.close()]);
  });

  it('refuses a stranger everywhere: page → sign-in, API, snapshot, metrics, WHEP and WebSocket → 401', async () => {
    const page = await request(`${base}/`);
    assert.ok(page.status === 303 || page.status === 302, `page status ${page.status}`);
    assert.match(String(page.headers.location), /\/login/);
    for (const path of ['/api/cameras', '/api/cameras/porch', '/api/cameras/porch/snapshot.jpg', '/metrics']) {
      const answer = await request(`${base}${path}`);
      assert.equal(answer.status, 401, path);
      answers.push(answer.body);
    }
    const whep = await request(`${base}/whep/porch`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(whep.status, 401);
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${new URL(base).port}/signal`), 401);
  });

  it('lets the viewer in to exactly its camera (API and Prometheus metrics)', async () => {
    const session = await signIn(base, VIEWER.username, VIEWER.password);
    assert.equal(session.status, 200);
    const list = await request(`${base}/api/cameras`, { jar: session.jar });
    assert.equal(list.status, 200);
    answers.push(list.body);
    assert.deepEqual((JSON.parse(list.body) as Array<{ id: string }>).map((c) => c.id), ['porch']);
    const other = await request(`${base}/api/cameras/garage`, { jar: session.jar });
    assert.equal(other.status, 403);
    const detail = await request(`${base}/api/cameras/porch`, { jar: session.jar });
    answers.push(detail.body);
    const metrics = await request(`${base}/metrics`, { jar: session.jar });
    assert.equal(metrics.status, 200);
    answers.push(metrics.body);
    assert.match(metrics.body, /^webrtc_cameras_state\{camera="porch",state="\w+"\} 1$/m, metrics.body);
    assert.doesNotMatch(metrics.body, /camera="garage"/, 'metrics only for the cameras the viewer may watch');
    const page = await request(`${base}/`, { jar: session.jar });
    assert.equal(page.status, 200);
    answers.push(page.body);
    // The camera is pulled for the snapshot, so its URL has been used (and could have leaked) by now.
    const snapshot = await request(`${base}/api/cameras/porch/snapshot.jpg`, { jar: session.jar });
    assert.ok(snapshot.status === 200 || snapshot.status === 204, `snapshot ${snapshot.status}`);
  });

  it('browser origins: the public address (reverse proxy) and the configured dashboard are allowed; any other site is refused', async () => {
    // Signing in through the proxy: the browser's Origin is the public address, not this server's.
    const signInFrom = (origin: string) => postSignIn(base, VIEWER.password, { Origin: origin });
    assert.equal(await signInFrom(new URL(PUBLIC_URL).origin), 200, 'sign-in through the reverse proxy');
    assert.equal(await signInFrom(FOREIGN), 403, 'sign-in posted from another site');
    // WHEP preflight: CORS answers only the configured dashboard.
    const preflight = (origin: string) => request(`${base}/whep/porch`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' },
    });
    const fromDashboard = await preflight(DASHBOARD);
    assert.equal(fromDashboard.headers['access-control-allow-origin'], DASHBOARD);
    assert.match(String(fromDashboard.headers['access-control-allow-headers']), /Authorization/);
    const fromForeign = await preflight(FOREIGN);
    assert.equal(fromForeign.headers['access-control-allow-origin'], undefined);
    // The WebSocket: the dashboard gets as far as authentication (401); another site is refused first (403).
    const socketUrl = `ws://127.0.0.1:${new URL(base).port}/signal`;
    assert.equal(await upgradeStatus(socketUrl, DASHBOARD), 401);
    assert.equal(await upgradeStatus(socketUrl, FOREIGN), 403);
  });

  it('behind a trusted proxy, the lock-out follows X-Forwarded-For: the guesser is blocked, the family is not, and a forged header does not help', async () => {
    const signInAs = (forwardedFor: string, password: string) => postSignIn(base, password, { 'X-Forwarded-For': forwardedFor });
    const since = hb.lines.length;
    const statuses: number[] = [];
    for (let i = 0; i < 20 && !statuses.includes(429); i++) statuses.push(await signInAs('203.0.113.9', 'wrong-guess'));
    assert.equal(statuses.at(-1), 429, `the guesser is locked out: ${statuses.join(',')}`);
    // Right after the lock-out, while it lasts (the first one is 1 s: a scrypt check of another
    // visitor's password on a busy machine can take longer than that, so this comes first).
    assert.equal(await signInAs('198.51.100.7, 203.0.113.9', VIEWER.password), 429, 'a forged left part of the header changes nothing');
    assert.ok(statuses.slice(0, -1).every((status) => status === 401), statuses.join(','));
    await hb.waitForLog(/Sign-in failed for 'grandma' from 203\.0\.113\.9/, 5_000, { since });
    assert.equal(await signInAs('198.51.100.7', VIEWER.password), 200, 'another visitor behind the same proxy still signs in');
    assert.equal(await signInAs('127.0.0.1', VIEWER.password), 200, 'the proxy itself is not locked out');
  });

  it('never shows either password in the log, the API or the page', async () => {
    await hb.waitForLog(/\[Porch\].*(live|Home app camera ready)/, 20_000);
    const everything = [hb.output(), ...answers].join('\n');
    assert.ok(everything.length > 1000, 'there is output to search');
    for (const secret of [CAMERA_PASSWORD, VIEWER.password, encodeURIComponent(CAMERA_PASSWORD)]) {
      assert.ok(!everything.includes(secret), `"${secret}" leaked`);
    }
  });
});
