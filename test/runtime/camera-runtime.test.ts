/**
 * One camera's runtime (createCameraRuntime) with fake shared services: a stop() while start() still
 * waits for the doorbell trigger's secret starts nothing afterwards (nothing registered, HomeKit not
 * set up), and the trigger's secret never reaches the log, which says where to find it instead.
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
function fakeServices(token: Promise<TriggerToken>): { services: PluginServices; added: RegisteredCamera[] } {
  const added: RegisteredCamera[] = [];
  const services: PluginServices = {
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    addCamera: (camera) => void added.push(camera),
    removeCamera: () => undefined,
    restreamUrl: (id) => `rtsp://127.0.0.1:1/${id}`,
    snapshots: new SnapshotRegistry(),
    watchUrl: 'http://192.168.0.2:8080',
    triggerToken: () => token,
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
