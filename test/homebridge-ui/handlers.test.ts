/**
 * The UI server's request handlers against the plugin's real web server over HTTPS (self-signed):
 * the admin secret reaches only the server whose certificate admin.json pins, no handler returns a
 * camera password, viewer passwords come back as scrypt hashes, and a stopped plugin is a clear
 * "not running" rather than an error.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { API } from 'homebridge';
import { loadConfig } from '../../src/config/load-config.js';
import { createUiHandlers } from '../../src/homebridge-ui/handlers.js';
import { Source } from '../../src/media/source.js';
import { cameraUpstream } from '../../src/runtime/camera-upstream.js';
import { createSharedServices, type SharedServices } from '../../src/runtime/plugin-services.js';
import { silentLogger } from '../../src/util/logger.js';
import { parsePasswordHash, verifyPassword } from '../../src/web/auth/password.js';
import { createSelfSignedCertificate } from '../../src/web/auth/self-signed.js';
import { createServer } from 'node:https';
import { FakeCamera } from '../helpers/fake-camera.js';
import { getFreePort } from '../helpers/ports.js';
import { request } from '../web/auth-helpers.js';

const PASSWORD = 'porch-Secret-9';

describe('UI server handlers against the plugin over HTTPS', () => {
  let camera: FakeCamera;
  let storage: string;
  let services: SharedServices;
  let source: Source;
  let handlers: ReturnType<typeof createUiHandlers>;
  let secrets: Set<string>;

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, audio: 'none', auth: { method: 'basic', user: 'admin', password: PASSWORD } });
    storage = await mkdtemp(join(tmpdir(), 'wrc-ui-handlers-'));
    const loaded = loadConfig({
      platform: 'WebRTCCameras',
      web: { port: await getFreePort(), bind: '127.0.0.1', tls: { selfSigned: true } },
      restream: { port: await getFreePort() },
      cameras: [{ name: 'Porch', rtspUrl: camera.url, username: 'admin', password: PASSWORD }],
    });
    const { config } = loaded;
    secrets = loaded.secrets;
    services = createSharedServices({ api: {} as API, log: silentLogger, config, ffmpeg: undefined, storagePath: storage, secrets });
    const porch = config.cameras[0]!;
    source = new Source({ id: porch.id, name: porch.name, upstream: cameraUpstream(porch, { log: silentLogger, ffmpeg: undefined }), logger: silentLogger });
    services.addCamera({ config: porch, source });
    await services.start();
    handlers = createUiHandlers({ storagePath: storage });
  });

  after(async () => {
    await services?.stop();
    await source?.close();
    await camera?.close();
    if (storage) await rm(storage, { recursive: true, force: true });
  });

  it('status: the cameras and where the page is, with no camera password anywhere', async () => {
    const status = (await handlers['/status']!(undefined)) as { running: boolean; web: { tls: boolean }; cameras: Array<{ id: string }> };
    assert.equal(status.running, true);
    assert.equal(status.web.tls, true);
    assert.deepEqual(status.cameras.map((c) => c.id), ['porch']);
    assert.equal(JSON.stringify(status).includes(PASSWORD), false);
  });

  it('triggers: each web trigger path, for the UI admin only (the log never shows it); its secret joins the masked ones', async () => {
    const door = loadConfig({ platform: 'WebRTCCameras', cameras: [{ name: 'Door', rtspUrl: camera.url, doorbell: { enabled: true, httpTrigger: true }, motionHttpTrigger: true }] }).config.cameras[0]!;
    const { token, file } = await services.triggerToken('doorbell', door.id);
    assert.equal(file, join(storage, 'webrtc-cameras', 'doorbell-tokens.json'));
    assert.ok(secrets.has(token), 'the redacting logger masks it from now on');
    const motion = await services.triggerToken('motion', door.id);
    assert.equal(motion.file, join(storage, 'webrtc-cameras', 'motion-tokens.json'));
    assert.notEqual(motion.token, token);
    assert.ok(secrets.has(motion.token), 'the motion secret is masked too');
    const doorSource = new Source({ id: door.id, name: door.name, upstream: cameraUpstream(door, { log: silentLogger, ffmpeg: undefined }), logger: silentLogger });
    services.addCamera({ config: door, source: doorSource, triggers: { doorbell: { token, fire: () => ({ rang: true }) }, motion: { token: motion.token, fire: () => ({ motion: true }) } } });
    try {
      assert.deepEqual(await handlers['/triggers']!(undefined), { triggers: [
        { camera: 'door', name: 'Door', kind: 'doorbell', path: `/doorbell/door/${token}` },
        { camera: 'door', name: 'Door', kind: 'motion', path: `/motion/door/${motion.token}` },
      ] });
      // Anyone else, a watch-page administrator included, is refused.
      const info = JSON.parse(await readFile(join(storage, 'webrtc-cameras', 'admin.json'), 'utf8')) as { port: number };
      const anonymous = await request(`https://127.0.0.1:${info.port}/api/admin/triggers`);
      assert.notEqual(anonymous.status, 200);
      assert.equal(anonymous.body.includes(token), false);
      assert.equal(anonymous.body.includes(motion.token), false);
    } finally {
      services.removeCamera(door.id);
      await doorSource.close();
    }
  });

  it('share links: create, list, revoke through the plugin', async () => {
    const made = (await handlers['/share-links/create']!({ cameras: ['porch'], expiresIn: '1h', label: 'Grandma' })) as { id: string; path: string; state: string };
    assert.match(made.path, /^\/s\/wrc1\./);
    const listed = (await handlers['/share-links/list']!(undefined)) as Array<{ id: string; state: string; label: string }>;
    assert.deepEqual(listed.map((l) => [l.id, l.state, l.label]), [[made.id, 'active', 'Grandma']]);
    assert.deepEqual(await handlers['/share-links/revoke']!({ id: made.id }), { revoked: made.id });
    await assert.rejects(handlers['/share-links/revoke']!({ id: '../../etc/passwd' }), /No such share link/);
    await assert.rejects(handlers['/share-links/create']!({ cameras: ['nope'] }), /No camera has the id "nope"/);
  });

  it('preview: a one-camera token and the port for WHEP', async () => {
    const preview = (await handlers['/preview']!({ camera: 'porch' })) as { token: string; whepPath: string; tls: boolean };
    assert.match(preview.token, /^wrcpv1\.porch\./);
    assert.equal(preview.whepPath, '/whep/porch');
    await assert.rejects(handlers['/preview']!({ camera: 'Porch!' }), /Choose a camera/);
  });

  it('hash-password: an scrypt hash that verifies, never the password', async () => {
    const { hash } = (await handlers['/hash-password']!({ password: 'correct horse' })) as { hash: string };
    assert.match(hash, /^scrypt\$ln=15,r=8,p=1\$/);
    assert.equal(await verifyPassword('correct horse', parsePasswordHash(hash)), true);
    await assert.rejects(handlers['/hash-password']!({ password: 'short' }), /8 to 256 characters/);
  });

  it('refuses to send the secret to a server whose certificate is not the pinned one', async () => {
    const file = join(storage, 'webrtc-cameras', 'admin.json');
    const real = await readFile(file, 'utf8');
    const impostorCert = createSelfSignedCertificate({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    let sawAuthorization: string | undefined;
    const impostor = createServer({ cert: impostorCert.certPem, key: impostorCert.keyPem }, (req, res) => {
      sawAuthorization = req.headers.authorization;
      res.end('{}');
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const info = JSON.parse(real) as { port: number };
      await writeFile(file, real.replace(`"port":${info.port}`, `"port":${(impostor.address() as { port: number }).port}`));
      const status = (await handlers['/status']!(undefined)) as { running: boolean; message: string };
      assert.equal(status.running, false);
      assert.match(status.message, /not the plugin/);
      assert.equal(sawAuthorization, undefined, 'the impostor never saw the admin token');
    } finally {
      await writeFile(file, real);
      await new Promise((resolve) => impostor.close(resolve));
    }
  });

  it('a stopped plugin is "not running", in words', async () => {
    const empty = createUiHandlers({ storagePath: await mkdtemp(join(tmpdir(), 'wrc-ui-none-')) });
    const status = (await empty['/status']!(undefined)) as { running: boolean; message: string };
    assert.equal(status.running, false);
    assert.match(status.message, /The plugin is not running/);
  });
});
