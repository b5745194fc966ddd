/**
 * One camera's runtime (createCameraRuntime) with fake shared services: a stop() while start() still
 * waits for the doorbell trigger's secret starts nothing afterwards (nothing registered, HomeKit not
 * set up), and the trigger's secret never reaches the log, which says where to find it instead. The
 * motion web trigger (issue 16): the runtime's own trigger, called through the real route on a real
 * web server, sets the accessory's motion sensor (hap-nodejs) and lets it go after the reset time.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import hap from '@homebridge/hap-nodejs';
import type { API, PlatformAccessory } from 'homebridge';

import { loadConfig } from '../../src/config/load-config.js';
import type { CameraConfig } from '../../src/config/types.js';
import { createCameraRuntime } from '../../src/runtime/camera-runtime.js';
import type { TriggerToken } from '../../src/runtime/trigger-tokens.js';
import type { PluginServices, RegisteredCamera } from '../../src/runtime/types.js';
import { SnapshotRegistry } from '../../src/snapshots/snapshot-service.js';
import { createWebServer } from '../../src/web/server.js';
import { webTriggerPath, webTriggerRoutes } from '../../src/web/web-trigger.js';
import { ffmpegCapabilities } from '../helpers/fake-ffmpeg.js';
import { until } from '../helpers/ptz-rig.js';
import { registryOf, sampleCameras } from '../web/fixtures.js';
import { recordingLogger } from '../helpers/onvif-log.js';

const TOKEN = 'T0ken-of-the-doorbell-trigger-0123456789';
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function doorCamera(): CameraConfig {
  const { config } = loadConfig({ platform: 'WebRTCCameras', cameras: [{ name: 'Door', rtspUrl: 'rtsp://127.0.0.1:1/x', doorbell: { enabled: true, httpTrigger: true } }] });
  return config.cameras[0]!;
}

/** Shared services that record what the camera registers; the token arrives when the test says. */
function fakeServices(token: Promise<TriggerToken>, asked: string[] = []): { services: PluginServices; added: RegisteredCamera[] } {
  const added: RegisteredCamera[] = [];
  const services: PluginServices = {
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    addCamera: (camera) => void added.push(camera),
    removeCamera: () => undefined,
    restreamUrl: (id) => `rtsp://127.0.0.1:1/${id}`,
    snapshots: new SnapshotRegistry(),
    watchUrl: 'http://192.168.0.2:8080',
    triggerToken: (kind) => (asked.push(kind), token),
    publishDoorbell: () => undefined,
    publishPtzMover: () => undefined,
  };
  return { services, added };
}

function accessory(): PlatformAccessory {
  const inner = new hap.Accessory('Door', hap.uuid.generate('camera-runtime-test'));
  return Object.assign(inner, { context: {} }) as unknown as PlatformAccessory;
}

async function runtimeFor(token: Promise<TriggerToken>, cached = accessory()) {
  const storagePath = await mkdtemp(path.join(tmpdir(), 'camera-runtime-'));
  dirs.push(storagePath);
  const camera = doorCamera();
  const log = recordingLogger();
  const { services, added } = fakeServices(token);
  const config = loadConfig({ platform: 'WebRTCCameras', cameras: [] }).config;
  const runtime = createCameraRuntime(camera, {
    api: { hap } as unknown as API, log, config, ffmpeg: undefined, storagePath, secrets: new Set(), accessory: cached, services,
  });
  return { runtime, log, services, added, camera };
}

describe('createCameraRuntime', () => {
  it('stop() while start() waits for the doorbell secret: nothing is registered or started afterwards', async () => {
    let give: (token: TriggerToken) => void = () => undefined;
    const { runtime, log, services, added, camera } = await runtimeFor(new Promise<TriggerToken>((resolve) => { give = resolve; }));
    const starting = runtime.start();
    await runtime.stop();
    give({ token: TOKEN, created: false, file: '/storage/webrtc-cameras/doorbell-tokens.json' });
    await starting;
    assert.deepEqual(added, [], 'not added to the shared services');
    assert.equal(services.snapshots.get(camera.id), undefined, 'no snapshot service registered');
    assert.ok(!log.lines.some((l) => /Home app|is ready/.test(l)), `HomeKit was set up after stop:\n${log.lines.join('\n')}`);
  });

  it('the trigger secret is never logged; the log says where it is kept', async () => {
    for (const created of [true, false]) {
      const file = '/storage/webrtc-cameras/doorbell-tokens.json';
      const { runtime, log, added } = await runtimeFor(Promise.resolve({ token: TOKEN, created, file }));
      await runtime.start();
      await runtime.stop();
      assert.equal(added[0]?.triggers?.doorbell?.token, TOKEN, 'the trigger has its secret');
      assert.ok(!log.lines.some((l) => l.includes(TOKEN)), log.lines.join('\n'));
      const line = log.lines.find((l) => /Doorbell web trigger/.test(l));
      assert.ok(line?.includes(file), `the line names the file: ${line}`);
      assert.ok(line?.includes('http://192.168.0.2:8080/doorbell/door/<secret>'), line);
    }
  });

  it('a preset switch cached from an earlier config goes when the camera now has none (list emptied, or no ONVIF)', async () => {
    const cached = accessory();
    cached.addService(hap.Service.Switch, 'Door P1', 'ptz-preset:P1');
    const { runtime } = await runtimeFor(Promise.resolve({ token: TOKEN, created: false, file: 'f' }), cached);
    await runtime.start();
    await runtime.stop();
    assert.deepEqual(cached.services.filter((s) => s.UUID === hap.Service.Switch.UUID).map((s) => s.subtype), []);
  });
});

describe('createCameraRuntime: motion from a web address (issue 16)', () => {
  it('its motion trigger, called through the real route, sets the motion sensor; off at state=off, and by itself after motionResetSeconds', async () => {
    const storagePath = await mkdtemp(path.join(tmpdir(), 'camera-runtime-'));
    dirs.push(storagePath);
    const camera = loadConfig({ platform: 'WebRTCCameras', cameras: [{ name: 'Yard', rtspUrl: 'rtsp://127.0.0.1:1/x', motionHttpTrigger: true, motionResetSeconds: 1 }] }).config.cameras[0]!;
    const file = '/storage/webrtc-cameras/motion-tokens.json';
    const asked: string[] = [];
    const { services, added } = fakeServices(Promise.resolve({ token: TOKEN, created: true, file }), asked);
    // A picture size remembered from an earlier start: the camera controller is configured at once.
    const cached = accessory();
    (cached.context as Record<string, unknown>)['homekitVideo'] = { width: 1280, height: 720, codec: 'H264' };
    const log = recordingLogger();
    const runtime = createCameraRuntime(camera, {
      api: { hap } as unknown as API, log, config: loadConfig({ platform: 'WebRTCCameras', cameras: [] }).config,
      ffmpeg: ffmpegCapabilities(), storagePath, secrets: new Set(), accessory: cached, services,
    });
    const server = createWebServer({
      port: 0, host: '127.0.0.1', registry: registryOf(sampleCameras()), log: recordingLogger(),
      routes: webTriggerRoutes({ trigger: (kind, id) => added.find((c) => c.config.id === id)?.triggers?.[kind] }),
    });
    try {
      await runtime.start();
      await runtime.homekitReady?.();
      assert.deepEqual(asked, ['motion'], 'a motion secret only (no doorbell)');
      assert.deepEqual(Object.keys(added[0]?.triggers ?? {}), ['motion']);
      const sensor = (cached as unknown as hap.Accessory).getService(hap.Service.MotionSensor);
      assert.ok(sensor, 'a motion sensor without ONVIF');
      const detected = (): unknown => sensor.getCharacteristic(hap.Characteristic.MotionDetected).value;
      const { port } = await server.listen();
      const url = `http://127.0.0.1:${port}${webTriggerPath('motion', camera.id, TOKEN)}`;

      const on = await fetch(url, { method: 'POST' });
      assert.deepEqual([on.status, await on.json()], [200, { motion: true }]);
      assert.equal(detected(), true);
      const off = await fetch(`${url}?state=off`, { method: 'POST' });
      assert.deepEqual([off.status, await off.json()], [200, { motion: false }]);
      assert.equal(detected(), false);

      const wrong = await fetch(url.replace(TOKEN, 'x'.repeat(TOKEN.length)), { method: 'POST' });
      assert.equal(wrong.status, 403);
      assert.equal(detected(), false);

      const again = await fetch(url);
      assert.equal(again.status, 200);
      const calledAt = Date.now();
      assert.equal(detected(), true);
      await until(() => detected() === false, 'the motion sensor to reset by itself', 5000);
      assert.ok(Date.now() - calledAt >= 950, `held about motionResetSeconds (1 s), not ${Date.now() - calledAt} ms`);

      assert.ok(!log.lines.some((l) => l.includes(TOKEN)), log.lines.join('\n'));
      const line = log.lines.find((l) => /Motion web trigger made/.test(l));
      assert.ok(line?.includes(file), `the line names the file: ${line}`);
      assert.ok(line?.includes('http://192.168.0.2:8080/motion/yard/<secret>'), line);
    } finally {
      await runtime.stop();
      await server.close();
    }
  });
});
