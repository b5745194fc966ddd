import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import hap from '@homebridge/hap-nodejs';
import type { API, Logging, PlatformAccessory, PlatformConfig } from 'homebridge';
import { cameraUuid, WebRTCCamerasPlatform, type PlatformHooks } from '../../src/platform.js';
import type { CameraConfig } from '../../src/config/types.js';
import type { CameraRuntimeDeps } from '../../src/runtime/types.js';
import { SnapshotRegistry } from '../../src/snapshots/snapshot-service.js';
import pluginInit from '../../src/index.js';
import { FakeTime } from '../helpers/fake-time.js';

/** A stand-in for Homebridge's PlatformAccessory, with real HAP services behind it. */
class FakeAccessory {
  context: Record<string, unknown> = {};
  readonly hapAccessory: InstanceType<typeof hap.Accessory>;
  constructor(public displayName: string, public UUID: string, public category?: number) {
    this.hapAccessory = new hap.Accessory(displayName, UUID);
  }
  getService(service: Parameters<InstanceType<typeof hap.Accessory>['getService']>[0]) {
    return this.hapAccessory.getService(service);
  }
  addService(service: typeof hap.Service.AccessoryInformation) {
    return this.hapAccessory.addService(service);
  }
  updateDisplayName(name: string) {
    this.displayName = name;
  }
}

interface Calls {
  registered: FakeAccessory[][];
  unregistered: FakeAccessory[][];
  updated: FakeAccessory[][];
}

class FakeApi extends EventEmitter {
  readonly hap = hap;
  readonly platformAccessory = FakeAccessory;
  readonly user = { storagePath: () => '/tmp/hb-fake' };
  readonly calls: Calls = { registered: [], unregistered: [], updated: [] };
  registeredPlatform: unknown;
  registerPlatform(name: string, ctor: unknown) {
    this.registeredPlatform = [name, ctor];
  }
  registerPlatformAccessories(plugin: string, platform: string, accessories: FakeAccessory[]) {
    assert.equal(plugin, 'homebridge-webrtc-cameras');
    assert.equal(platform, 'WebRTCCameras');
    this.calls.registered.push(accessories);
  }
  unregisterPlatformAccessories(_plugin: string, _platform: string, accessories: FakeAccessory[]) {
    this.calls.unregistered.push(accessories);
  }
  updatePlatformAccessories(accessories: FakeAccessory[]) {
    this.calls.updated.push(accessories);
  }
  asApi(): API {
    return this as unknown as API;
  }
}

interface FakeLog {
  lines: Array<{ level: string; text: string }>;
  logging: Logging;
}

function fakeLog(): FakeLog {
  const lines: Array<{ level: string; text: string }> = [];
  const at = (level: string) => (text: string, ...params: unknown[]) => lines.push({ level, text: [text, ...params.map(String)].join(' ') });
  const logging = Object.assign(at('log'), { prefix: 'WebRTC Cameras', info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), success: at('success'), log: at('log') });
  return { lines, logging: logging as unknown as Logging };
}

interface Harness {
  api: FakeApi;
  log: FakeLog;
  platform: WebRTCCamerasPlatform;
  started: Array<{ camera: CameraConfig; deps: CameraRuntimeDeps }>;
  stopped: string[];
  events: string[];
}

function harness(config: PlatformConfig | undefined, cached: FakeAccessory[] = [], hooks: Partial<PlatformHooks> = {}): Harness {
  const api = new FakeApi();
  const log = fakeLog();
  const started: Harness['started'] = [];
  const stopped: string[] = [];
  const events: string[] = [];
  const platform = new WebRTCCamerasPlatform(log.logging, config, api.asApi(), {
    findFfmpeg: async () => undefined,
    createPluginServices: () => ({
      start: async () => void events.push('services start'),
      stop: async () => void events.push('services stop'),
      addCamera: () => undefined,
      removeCamera: () => undefined,
      restreamUrl: (id) => `rtsp://127.0.0.1:1/${id}`,
      snapshots: new SnapshotRegistry(),
      watchUrl: undefined,
      triggerToken: () => Promise.reject(new Error('no web triggers in these tests')),
      publishDoorbell: () => undefined,
      publishPtzMover: () => undefined,
    }),
    createCameraRuntime: (camera, deps) => ({
      start: async () => {
        started.push({ camera, deps });
        events.push(`start ${camera.id}`);
      },
      stop: async () => {
        stopped.push(camera.id);
        events.push(`stop ${camera.id}`);
      },
    }),
    ...hooks,
  });
  for (const accessory of cached) platform.configureAccessory(accessory as unknown as PlatformAccessory);
  return { api, log, platform, started, stopped, events };
}

/** Fires didFinishLaunching and waits for the launch to finish (not for a guessed time). */
async function launch(h: Harness): Promise<void> {
  h.api.emit('didFinishLaunching');
  await h.platform.whenLaunched();
}

const cam = (name: string, extra: Record<string, unknown> = {}) => ({ name, rtspUrl: 'rtsp://user:topsecret@127.0.0.1:1/x', ...extra });

describe('WebRTCCamerasPlatform', () => {
  it('is what the plugin entry point registers', () => {
    const api = new FakeApi();
    pluginInit(api.asApi());
    assert.deepEqual(api.registeredPlatform, ['WebRTCCameras', WebRTCCamerasPlatform]);
  });

  it('with no config logs one line and does nothing', async () => {
    for (const config of [undefined, {} as PlatformConfig]) {
      const h = harness(config);
      assert.equal(h.api.listenerCount('didFinishLaunching'), 0);
      assert.equal(h.api.listenerCount('shutdown'), 0);
      await launch(h);
      assert.equal(h.log.lines.length, 1);
      assert.match(h.log.lines[0]!.text, /not configured/);
      assert.deepEqual(h.api.calls, { registered: [], unregistered: [], updated: [] });
    }
  });

  it('registers one camera accessory per valid camera, in one call, with accessory information', async () => {
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('Front'), cam('Bad', { rtspUrl: 'http://x' }), cam('Back', { manufacturer: 'D-Link', model: 'DCS-7010L' })] });
    await launch(h);
    assert.equal(h.api.calls.registered.length, 1);
    const accessories = h.api.calls.registered[0]!;
    assert.deepEqual(accessories.map((a) => a.displayName), ['Front', 'Back']);
    assert.deepEqual(accessories.map((a) => a.UUID), [cameraUuid(h.api.asApi(), 'front'), cameraUuid(h.api.asApi(), 'back')]);
    assert.equal(accessories[0]!.category, hap.Categories.CAMERA);
    assert.deepEqual(accessories[1]!.context, { cameraId: 'back' });
    const info = accessories[1]!.getService(hap.Service.AccessoryInformation)!;
    assert.equal(info.getCharacteristic(hap.Characteristic.Manufacturer).value, 'D-Link');
    assert.equal(info.getCharacteristic(hap.Characteristic.Model).value, 'DCS-7010L');
    assert.equal(info.getCharacteristic(hap.Characteristic.SerialNumber).value, 'back');
    assert.match(String(info.getCharacteristic(hap.Characteristic.FirmwareRevision).value), /^\d+\.\d+\.\d+$/);
    const frontInfo = accessories[0]!.getService(hap.Service.AccessoryInformation)!;
    assert.equal(frontInfo.getCharacteristic(hap.Characteristic.Manufacturer).value, 'WebRTC Cameras');
    assert.equal(frontInfo.getCharacteristic(hap.Characteristic.Model).value, 'RTSP camera');

    assert.deepEqual(h.started.map((s) => s.camera.id), ['front', 'back']);
    assert.equal(h.started[0]!.deps.accessory, accessories[0] as unknown);
    assert.equal(h.started[0]!.deps.storagePath, '/tmp/hb-fake');
    assert.match(h.log.lines.find((l) => l.level === 'error')!.text, /^Camera 'Bad' \(cameras\[1\]\): rtspUrl must start with rtsp:\/\//);
  });

  it('keeps serial numbers at least two characters long, as HAP requires', async () => {
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('A')] });
    await launch(h);
    const info = h.api.calls.registered[0]![0]!.getService(hap.Service.AccessoryInformation)!;
    assert.equal(info.getCharacteristic(hap.Characteristic.SerialNumber).value, 'SN-a');
  });

  it('restores cached accessories without duplicates, renames them, and removes cameras that left', async () => {
    const api = new FakeApi();
    const front = new FakeAccessory('Old Front Name', cameraUuid(api.asApi(), 'front'));
    const gone = new FakeAccessory('Garage', cameraUuid(api.asApi(), 'garage'));
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('Front Door', { id: 'front' }), cam('New')] }, [front, gone]);
    await launch(h);
    assert.deepEqual(h.api.calls.registered.map((list) => list.map((a) => a.displayName)), [['New']]);
    assert.deepEqual(h.api.calls.updated, [[front]]);
    assert.deepEqual(h.api.calls.unregistered, [[gone]]);
    assert.equal(front.displayName, 'Front Door');
    assert.equal(h.started[0]!.deps.accessory, front as unknown);
    assert.ok(h.log.lines.some((l) => /Removing the accessory 'Garage'/.test(l.text)));
  });

  it('registers the demo camera when no camera is configured, and nothing with demo: false', async () => {
    const demo = harness({ platform: 'WebRTCCameras' });
    await launch(demo);
    assert.deepEqual(demo.api.calls.registered.map((list) => list.map((a) => [a.displayName, a.UUID])), [[['Demo Camera', cameraUuid(demo.api.asApi(), 'demo')]]]);
    assert.deepEqual(demo.started.map((s) => s.camera.source), [{ kind: 'demo' }]);

    const api = new FakeApi();
    const cachedDemo = new FakeAccessory('Demo Camera', cameraUuid(api.asApi(), 'demo'));
    const off = harness({ platform: 'WebRTCCameras', demo: false }, [cachedDemo]);
    await launch(off);
    assert.deepEqual(off.api.calls.registered, []);
    assert.deepEqual(off.api.calls.unregistered, [[cachedDemo]]);
    assert.equal(off.started.length, 0);
    assert.ok(off.log.lines.some((l) => /No camera to run/.test(l.text)));
  });

  it('with no camera but discovery on, still starts the shared services (discovery, the Homebridge UI page)', async () => {
    const h = harness({ platform: 'WebRTCCameras', demo: false, discovery: { enabled: true } });
    await launch(h);
    assert.deepEqual(h.events, ['services start']);
    assert.equal(h.started.length, 0);
    assert.ok(h.log.lines.some((l) => /No camera configured yet: camera discovery runs/.test(l.text)));
  });

  it('never logs a configured password', async () => {
    const h = harness({
      platform: 'WebRTCCameras',
      cameras: [cam('A'), cam('B', { rtspUrl: 'http://u:topsecret@h/' }), cam('C', { username: 'u', password: 'pass-two', rtspUrl: 'rtsp://h/x' })],
    }, [], {
      createCameraRuntime: (camera, deps) => ({
        start: async () => deps.log.debug(`connecting to ${camera.source.kind === 'rtsp' ? camera.source.url : ''} with pass-two / topsecret`),
        stop: async () => undefined,
      }),
    });
    await launch(h);
    assert.ok(h.log.lines.length > 3);
    for (const { text } of h.log.lines) {
      assert.ok(!text.includes('topsecret') && !text.includes('pass-two'), text);
    }
    assert.ok(h.log.lines.some((l) => l.text.includes('rtsp://user:***@127.0.0.1:1/x')));
  });

  it('survives a camera runtime that throws or rejects, and one that fails to be created', async () => {
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('Throws'), cam('Rejects'), cam('Fine')] }, [], {
      createCameraRuntime: (camera) => {
        if (camera.id === 'throws') throw new Error('constructor exploded');
        return {
          start: async () => {
            if (camera.id === 'rejects') throw new Error('start exploded');
          },
          stop: async () => {
            throw new Error('stop exploded');
          },
        };
      },
    });
    await launch(h);
    const errors = h.log.lines.filter((l) => l.level === 'error').map((l) => l.text);
    assert.equal(errors.length, 2);
    assert.match(errors[0]!, /Camera 'Throws' \(cameras\[0\]\) could not start: constructor exploded\. The other cameras are not affected\./);
    assert.match(errors[1]!, /Camera 'Rejects' \(cameras\[1\]\) could not start: start exploded/);
    await h.platform.shutdown();
    assert.equal(h.log.lines.filter((l) => /did not stop cleanly: stop exploded/.test(l.text)).length, 2);
  });

  it('catches a failing start-up (ffmpeg search, shared services) without throwing', async () => {
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('A')] }, [], {
      findFfmpeg: async () => {
        throw new Error('probe crashed');
      },
    });
    await launch(h);
    assert.match(h.log.lines.find((l) => l.level === 'error')!.text, /Start-up failed: probe crashed\. The cameras stay off; Homebridge keeps running\./);
    assert.equal(h.started.length, 0);
    h.api.emit('shutdown');
  });

  it('passes ffmpeg capabilities and the ffmpeg setting through', async () => {
    let asked: string | undefined;
    const caps = { path: '/x/ffmpeg', source: 'PATH' } as const;
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('A')], ffmpeg: { videoProcessor: '/x/ffmpeg' } }, [], {
      findFfmpeg: async (options) => {
        asked = options.videoProcessor;
        return caps as unknown as Awaited<ReturnType<PlatformHooks['findFfmpeg']>>;
      },
    });
    await launch(h);
    assert.equal(asked, '/x/ffmpeg');
    assert.equal(h.started[0]!.deps.ffmpeg, caps as unknown);
  });

  it('stops every camera, then the shared services, once, on shutdown', async () => {
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('A'), cam('B')] });
    await launch(h);
    h.api.emit('shutdown');
    // The event's shutdown and this one are the same, single shutdown.
    await h.platform.shutdown();
    assert.deepEqual(h.events, ['services start', 'start a', 'start b', 'stop a', 'stop b', 'services stop']);
  });

  it('stops what a start-up in progress started when shutdown comes early', async () => {
    let release: () => void = () => undefined;
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('A')] }, [], {
      findFfmpeg: () => new Promise((resolve) => {
        release = () => resolve(undefined);
      }),
    });
    h.api.emit('didFinishLaunching');
    const stopping = h.platform.shutdown();
    release();
    await stopping;
    assert.deepEqual(h.events, []);
  });

  it('waits at most 3 s for a camera start that never settles, then stops everything', async () => {
    const time = new FakeTime();
    const h = harness({ platform: 'WebRTCCameras', cameras: [cam('A')] }, [], {
      timers: time,
      createCameraRuntime: (camera) => ({
        start: () => new Promise<void>(() => undefined),
        stop: async () => void h.events.push(`stop ${camera.id}`),
      }),
    });
    h.api.emit('didFinishLaunching');
    // Let the start-up reach the camera whose start() hangs.
    await time.advance(0);
    assert.deepEqual(h.events, ['services start']);
    let stopped = false;
    const stopping = h.platform.shutdown().then(() => { stopped = true; });
    await time.advance(2999);
    assert.equal(stopped, false, 'still waiting for the start-up 1 ms before the limit');
    assert.deepEqual(h.events, ['services start']);
    await time.advance(1);
    await stopping;
    assert.deepEqual(h.events, ['services start', 'stop a', 'services stop']);
    assert.equal(time.pending, 0);
  });
});
