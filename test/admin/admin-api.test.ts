/**
 * The plugin side of the Homebridge UI page, against real peers: the shared services' web server,
 * the GStreamer camera (H.264 with Digest auth, and H.265), the loopback ONVIF responder, and a
 * werift WHEP client. It proves the trust bridge (admin.json, loopback only), the preview token
 * (one camera, cross-origin bearer WHEP without opening cookie routes), and Test in words.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { API } from 'homebridge';
import { loadConfig } from '../../src/config/load-config.js';
import { findFfmpeg } from '../../src/ffmpeg/find-ffmpeg.js';
import { Source } from '../../src/media/source.js';
import { cameraUpstream } from '../../src/runtime/camera-upstream.js';
import { createSharedServices, type SharedServices } from '../../src/runtime/plugin-services.js';
import { silentLogger } from '../../src/util/logger.js';
import type { AdminFile } from '../../src/admin/local-admin.js';
import type { TestResult } from '../../src/admin/connection-test.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { probeImage, startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';
import { getFreePort } from '../helpers/ports.js';
import { WeriftReceiver } from '../webrtc/werift-client.js';
import { request as webRequest, signIn } from '../web/auth-helpers.js';

const USER = 'admin';
const PASSWORD = 'cam-Secret-77';

describe('admin API for the Homebridge UI page (real web server, camera and ONVIF responder)', () => {
  let camera: FakeCamera;
  let hevc: FakeCamera;
  let responder: OnvifResponder;
  let storage: string;
  let services: SharedServices;
  let source: Source;
  let base: string;
  let admin: AdminFile;
  let htmlServer: Server;
  let htmlPort: number;

  const call = async (path: string, init: RequestInit = {}, token: string | null = `wrcadmin.${admin.secret}`): Promise<Response> =>
    fetch(`${base}${path}`, { ...init, headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(init.body ? { 'Content-Type': 'application/json' } : {}), ...init.headers } });
  const runTest = async (body: Record<string, unknown>): Promise<TestResult> => {
    const res = await call('/api/admin/test', { method: 'POST', body: JSON.stringify(body) });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as TestResult;
  };

  before(async () => {
    [camera, hevc] = await Promise.all([
      FakeCamera.start({ width: 640, height: 360, audio: 'pcmu', auth: { method: 'digest', user: USER, password: PASSWORD } }),
      FakeCamera.start({ width: 640, height: 360, codec: 'h265', audio: 'none' }),
    ]);
    responder = await startOnvifResponder({ username: USER, password: PASSWORD, streamUrl: camera.url, streamUriHost: '192.168.68.111' });
    storage = await mkdtemp(join(tmpdir(), 'wrc-admin-'));
    htmlServer = createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body>Router login</body></html>'));
    await new Promise<void>((resolve) => htmlServer.listen(0, '127.0.0.1', resolve));
    htmlPort = (htmlServer.address() as { port: number }).port;
    const port = await getFreePort();
    const { config, secrets } = loadConfig({
      platform: 'WebRTCCameras',
      web: { port, bind: '127.0.0.1' },
      restream: { port: await getFreePort() },
      cameras: [{ name: 'Porch', rtspUrl: camera.url, username: USER, password: PASSWORD }],
      viewers: [{ username: 'family', password: 'a long passphrase', admin: true }],
    });
    const ffmpeg = await findFfmpeg({ log: silentLogger, bundledPath: () => Promise.resolve(undefined) });
    services = createSharedServices({ api: {} as API, log: silentLogger, config, ffmpeg, storagePath: storage, secrets });
    const porch = config.cameras[0]!;
    source = new Source({ id: porch.id, name: porch.name, upstream: cameraUpstream(porch, { log: silentLogger, ffmpeg }), logger: silentLogger });
    // HomeKit Secure Video's status comes from the camera's HomeKit side; here its plumbing to the page.
    services.addCamera({ config: porch, source, recording: () => ({ state: 'buffering', prebufferSeconds: 4, bufferedSeconds: 4.5, bufferedBytes: 900_000, recordings: 0, problem: 'the hub asked for AAC-ELD audio, which needs an encoder; recordings are video-only' }) });
    await services.start();
    base = `http://127.0.0.1:${port}`;
    admin = JSON.parse(await readFile(join(storage, 'webrtc-cameras', 'admin.json'), 'utf8')) as AdminFile;
  });

  after(async () => {
    await services?.stop();
    await source?.close();
    await responder?.close();
    await Promise.all([camera?.close(), hevc?.close()]);
    await new Promise((resolve) => htmlServer?.close(resolve));
    if (storage) await rm(storage, { recursive: true, force: true });
  });

  it('publishes the port and a secret in a 0600 admin.json; the secret works from loopback only', async () => {
    const info = await stat(join(storage, 'webrtc-cameras', 'admin.json'));
    assert.equal(info.mode & 0o777, 0o600);
    assert.equal(admin.port, Number(new URL(base).port));
    assert.equal(admin.tls, false);
    assert.match(admin.secret, /^[A-Za-z0-9_-]{43}$/);
    const ok = await call('/api/admin/status');
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { cameras: Array<{ id: string; name: string; source: string; homekitStreams: number; configIndex: number; recording?: { state: string; problem?: string } }> };
    assert.deepEqual(body.cameras.map((c) => [c.id, c.name, c.source, c.homekitStreams]), [['porch', 'Porch', `RTSP 127.0.0.1:${camera.url.split(':')[2]!.split('/')[0]}`, 0]]);
    // Its place in the config's list (the page edits that entry) and its HomeKit Secure Video state by name.
    assert.equal(body.cameras[0]!.configIndex, 0);
    assert.equal(body.cameras[0]!.recording?.state, 'buffering');
    assert.match(body.cameras[0]!.recording?.problem ?? '', /AAC-ELD/);
    assert.ok(!JSON.stringify(body).includes(PASSWORD), 'no camera password in the status');
    assert.equal('gateways' in body, false, 'no scale-out configured: no gateway line on the page');
    assert.equal('scaleOut' in body.cameras[0]!, false);
    assert.equal((await call('/api/admin/status', {}, 'wrcadmin.wrong')).status, 401);
    assert.equal((await call('/api/admin/status', {}, null)).status, 401);
    // Through a proxy on this machine the caller is not this machine: refused.
    assert.equal((await call('/api/admin/status', { headers: { 'X-Forwarded-For': '192.168.0.9' } })).status, 401);
  });

  it('mints a preview token for one camera; WHEP works with it cross-origin, for that camera only', async () => {
    const origin = 'http://127.0.0.1:8581';
    const res = await call('/api/admin/preview', { method: 'POST', body: JSON.stringify({ camera: 'porch', origin }) });
    assert.equal(res.status, 200);
    const { token, expiresAt, whepPath } = (await res.json()) as { token: string; expiresAt: string; whepPath: string };
    const ttl = Date.parse(expiresAt) - Date.now();
    assert.ok(ttl > 60_000 && ttl <= 300_000, `expires within 5 minutes (${ttl} ms)`);
    assert.equal(whepPath, '/whep/porch');
    const preflight = await fetch(`${base}/whep/porch`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' } });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), origin);
    assert.equal(preflight.headers.get('access-control-allow-credentials'), null, 'never credentialed CORS');
    // Any other site gets no CORS answer and no WHEP, even holding the token.
    const foreign = 'https://evil.example.test';
    const foreignPreflight = await fetch(`${base}/whep/porch`, { method: 'OPTIONS', headers: { Origin: foreign, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' } });
    assert.equal(foreignPreflight.headers.get('access-control-allow-origin'), null);
    const foreignPost = await fetch(`${base}/whep/porch`, { method: 'POST', headers: { Origin: foreign, Authorization: `Bearer ${token}`, 'Content-Type': 'application/sdp' }, body: 'v=0\r\n' });
    assert.equal(foreignPost.status, 403);
    assert.equal((await call('/api/admin/preview', { method: 'POST', body: JSON.stringify({ camera: 'porch', origin: 'http://x/path' }) })).status, 400);
    // Cookie-authenticated routes stay closed to that origin.
    const shareFromUi = await fetch(`${base}/api/share-links`, { method: 'POST', headers: { Origin: origin, 'Content-Type': 'application/json' }, body: '{"cameras":"all"}' });
    assert.equal(shareFromUi.status, 403);
    const noBearerPreflight = await fetch(`${base}/api/share-links`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' } });
    assert.equal(noBearerPreflight.headers.get('access-control-allow-origin'), null);
    // The preview token is no admin and no other camera.
    assert.equal((await call('/api/admin/status', {}, token)).status, 403);
    assert.equal((await call('/api/cameras/other/snapshot.jpg', {}, token)).status, 403);

    const receiver = new WeriftReceiver();
    try {
      const offer = await receiver.offer();
      const answer = await fetch(`${base}/whep/porch`, { method: 'POST', headers: { Origin: origin, Authorization: `Bearer ${token}`, 'Content-Type': 'application/sdp' }, body: offer });
      assert.equal(answer.status, 201, await answer.clone().text());
      assert.equal(answer.headers.get('access-control-allow-origin'), origin);
      assert.match(answer.headers.get('access-control-expose-headers') ?? '', /Location/);
      await receiver.applyAnswer(await answer.text());
      await receiver.waitFor(() => receiver.keyframes >= 1 && receiver.accessUnits >= 10, 20_000, '10 frames over WHEP');
      const location = answer.headers.get('location')!;
      assert.equal((await fetch(`${base}${location}`, { method: 'DELETE', headers: { Origin: origin, Authorization: `Bearer ${token}` } })).status, 200);
    } finally {
      await receiver.close();
    }
  });

  it('Test by ONVIF: reached, stream (codec, resolution, audio) and a snapshot, in words', async () => {
    const result = await runTest({ kind: 'onvif', host: '127.0.0.1', port: responder.port, username: USER, password: PASSWORD });
    assert.equal(result.ok, true, JSON.stringify(result.steps));
    assert.match(result.steps[0]!.text, /^ONVIF reached: /);
    assert.equal(result.stream?.codec, 'H264');
    assert.equal(result.stream?.width, 640);
    assert.equal(result.stream?.height, 360);
    assert.equal(result.stream?.audio, 'PCMU');
    assert.match(result.steps[1]!.text, /^Stream found: H\.264 640x360 at 25 fps, audio PCMU$/);
    const image = await probeImage(Buffer.from(result.snapshot!, 'base64'));
    assert.equal(image.codec, 'mjpeg');
    assert.ok(!JSON.stringify(result).includes(PASSWORD));
  });

  it('a wrong ONVIF password is named in words after exactly one log-in attempt', async () => {
    const before = responder.requests.length;
    const result = await runTest({ kind: 'onvif', host: '127.0.0.1', port: responder.port, username: USER, password: 'wrong-password' });
    assert.equal(result.ok, false);
    assert.equal(result.failure?.code, 'wrong-password');
    assert.match(result.failure!.text, /Wrong user name or password/);
    const attempts = responder.requests.slice(before).filter((r) => r.authenticated !== undefined);
    assert.equal(attempts.length, 1, `one authenticated request: ${JSON.stringify(attempts)}`);
    assert.equal(attempts[0]!.authenticated, false);
  });

  it('a wrong RTSP password: one log-in attempt at the camera, the reason in words', async () => {
    const before = (await camera.requests()).length;
    const url = new URL(camera.url);
    const result = await runTest({ kind: 'rtsp', url: url.href, username: USER, password: 'nope' });
    assert.equal(result.failure?.code, 'wrong-password', JSON.stringify(result));
    const after = await camera.requests();
    const refused = after.slice(before).filter((r) => !r.authorized);
    // The first DESCRIBE has no credentials (the camera's challenge), the second is the one log-in.
    assert.ok(refused.length <= 2, `at most challenge + one log-in: ${JSON.stringify(refused)}`);
    const describes = after.slice(before).filter((r) => r.method === 'DESCRIBE');
    assert.equal(describes.length, 2);
  });

  it('port closed and not ONVIF are told apart', async () => {
    const closed = await runTest({ kind: 'rtsp', url: `rtsp://127.0.0.1:${await getFreePort()}/live` });
    assert.equal(closed.failure?.code, 'port-closed', JSON.stringify(closed));
    const html = await runTest({ kind: 'onvif', host: '127.0.0.1', port: htmlPort, username: USER, password: PASSWORD });
    assert.equal(html.failure?.code, 'not-onvif', JSON.stringify(html));
    assert.match(html.failure!.text, /^Not ONVIF/);
  });

  it('an H.265 camera is found, with the note that browsers need it transcoded', async () => {
    const result = await runTest({ kind: 'rtsp', url: hevc.url });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.stream?.codec, 'H265');
    assert.equal(result.stream?.needsTranscode, true);
    assert.match(result.steps.find((s) => s.step === 'stream')!.text, /browsers need H\.265 transcoded/);
  });

  it('a configured camera is tested through its running Source: no second session', async () => {
    const result = await runTest({ kind: 'camera', id: 'porch' });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.stream?.width, 640);
    assert.ok(result.snapshot);
    const sessions = await camera.sessionCount();
    assert.ok(sessions <= 1, `sessions at the camera: ${sessions}`);
  });

  it('a hand-entered address and log-in of a running camera is tested through its shared Source', async () => {
    await runTest({ kind: 'camera', id: 'porch' }); // the camera is live
    const describesBefore = (await camera.requests()).filter((r) => r.method === 'DESCRIBE').length;
    const result = await runTest({ kind: 'rtsp', url: camera.url, username: USER, password: PASSWORD });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.stream?.width, 640);
    const describesAfter = (await camera.requests()).filter((r) => r.method === 'DESCRIBE').length;
    assert.equal(describesAfter, describesBefore, 'no new session at the camera');
  });

  it('a watch-page administrator cannot use the admin routes (Test connects where the caller says)', async () => {
    const family = await signIn(base, 'family', 'a long passphrase');
    assert.equal(family.status, 200);
    const status = await webRequest(`${base}/api/admin/status`, { jar: family.jar });
    assert.equal(status.status, 403);
    const test = await webRequest(`${base}/api/admin/test`, {
      method: 'POST', jar: family.jar,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': family.csrf },
      body: JSON.stringify({ kind: 'rtsp', url: 'rtsp://192.168.0.1/' }),
    });
    assert.equal(test.status, 403);
  });

  it('"Search again" says in words that discovery is off', async () => {
    const res = await call('/api/admin/discover', { method: 'POST', body: '{}' });
    assert.equal(res.status, 409);
    assert.match(((await res.json()) as { message: string }).message, /Camera discovery is off/);
  });

  it('refuses malformed Test requests with a reason', async () => {
    const bad = await call('/api/admin/test', { method: 'POST', body: JSON.stringify({ kind: 'rtsp', url: 'http://example.com/' }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { message: string }).message, /rtsp:\/\//);
    const extra = await call('/api/admin/test', { method: 'POST', body: JSON.stringify({ kind: 'camera', id: 'porch', url: 'rtsp://x/' }) });
    assert.equal(extra.status, 400);
  });
});
