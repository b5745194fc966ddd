/**
 * A real Homebridge 2.x loads the built plugin (dist/) from a temporary storage directory, with the
 * bridge and mDNS on 127.0.0.1 and debug logging on (-D), so every captured line, debug included,
 * is checked for passwords. Cameras point at 127.0.0.1:1, where nothing answers: the plugin must
 * neither crash nor spin on an unreachable camera.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startHomebridge, stopAllHomebridges, type CachedAccessory, type HomebridgeProcess, type PlatformBlock } from '../helpers/homebridge.js';

const SECRETS = ['Front-Secret-1', 'Back-Secret-2', 'Bad-Secret-3', 'Onvif-Secret-4', 'Viewer-Secret-5', 'Turn-Secret-6'];

const front = { name: 'Front', rtspUrl: `rtsp://admin:${SECRETS[0]}@127.0.0.1:1/live1.sdp` };
const back = {
  name: 'Back',
  rtspUrl: 'rtsp://127.0.0.1:1/live1.sdp',
  username: 'admin',
  password: SECRETS[1],
  manufacturer: 'D-Link',
  model: 'DCS-7010L',
  onvif: { host: '127.0.0.1', port: 1, password: SECRETS[3] },
};
const bad = { name: 'Broken', rtspUrl: `http://admin:${SECRETS[2]}@127.0.0.1:1/live1.sdp` };

function block(cameras: unknown[], extra: Record<string, unknown> = {}): PlatformBlock {
  return {
    platform: 'WebRTCCameras',
    name: 'WebRTC Cameras',
    cameras,
    web: { bind: '127.0.0.1', port: 0 },
    viewers: [{ username: 'viewer', password: SECRETS[4] }],
    ice: { turnServers: [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: SECRETS[5] }] },
    ...extra,
  };
}

/** Start-up is finished once the ffmpeg search has been reported either way. */
async function launched(hb: HomebridgeProcess): Promise<void> {
  await hb.waitForLog(/Using ffmpeg|ffmpeg was not found|No camera to run/, 15_000);
}

function characteristic(accessory: CachedAccessory, name: string): unknown {
  for (const service of accessory.services) {
    const found = service.characteristics.find((c) => c.displayName === name);
    if (found) return found.value;
  }
  return undefined;
}

function assertNoSecrets(hb: HomebridgeProcess): void {
  assert.ok(hb.lines.length > 20, 'too few lines captured to be meaningful');
  for (const line of hb.lines) {
    for (const secret of SECRETS) {
      assert.ok(!line.includes(secret) && !line.includes(encodeURIComponent(secret)), `a password reached the log: ${line}`);
    }
  }
}

describe('e2e: Homebridge loads the plugin', () => {
  after(stopAllHomebridges);

  it('registers one accessory per valid camera, skips the bad one with a clear message, and survives restarts', async () => {
    const hb = await startHomebridge({ platform: block([front, back, bad]) });
    try {
      await hb.waitForLog(/Loaded plugin: homebridge-webrtc-cameras@\d/);
      const badLine = await hb.waitForLog(/Camera 'Broken' \(cameras\[2\]\)/);
      assert.match(badLine, /rtspUrl must start with rtsp:\/\/ .*e\.g\. rtsp:\/\/.*This camera is skipped until that is fixed; the other cameras run\./);
      await hb.waitForLog(/Camera 'Back' \(cameras\[1\]\): adding accessory/);
      await launched(hb);

      let cached = hb.cachedAccessories();
      assert.deepEqual(cached.map((a) => a.displayName).sort(), ['Back', 'Front']);
      for (const accessory of cached) {
        assert.equal(accessory.plugin, 'homebridge-webrtc-cameras');
        assert.equal(accessory.platform, 'WebRTCCameras');
        assert.equal(accessory.category, 17);
      }
      const backAccessory = cached.find((a) => a.displayName === 'Back')!;
      assert.deepEqual(backAccessory.context, { cameraId: 'back' });
      assert.equal(characteristic(backAccessory, 'Manufacturer'), 'D-Link');
      assert.equal(characteristic(backAccessory, 'Model'), 'DCS-7010L');
      assert.equal(characteristic(backAccessory, 'Serial Number'), 'back');
      const frontUuid = cached.find((a) => a.displayName === 'Front')!.UUID;

      // An unreachable camera must not crash Homebridge or make the plugin spin.
      const before = hb.lines.length;
      await sleep(2000);
      assert.ok(hb.running, 'Homebridge stopped');
      assert.ok(hb.lines.length - before < 20, `the log grew by ${hb.lines.length - before} lines in 2 s:\n${hb.lines.slice(before).join('\n')}`);

      // Restart with Back removed: it is unregistered, Front comes back from the cache.
      await hb.restart(block([front]));
      await hb.waitForLog(/Loaded 2 cached accessories/);
      await hb.waitForLog(/Removing the accessory 'Back': its camera is no longer in the configuration/);
      await hb.waitForLog(/Camera 'Front' \(cameras\[0\]\): restored accessory/);
      await launched(hb);
      cached = hb.cachedAccessories();
      assert.deepEqual(cached.map((a) => a.displayName), ['Front']);
      assert.equal(cached[0]!.UUID, frontUuid);

      // Same config again: no duplicates, nothing added or removed.
      await hb.restart();
      await launched(hb);
      assert.ok(!hb.runLines().some((l) => /adding accessory|Removing the accessory|Skipping duplicate/.test(l)), hb.runLines().join('\n'));
      await hb.stop();
      assert.deepEqual(hb.cachedAccessories().map((a) => a.UUID), [frontUuid]);

      const hapWarnings = hb.lines.filter((l) => /HAP-NodeJS WARNING.*'(Front|Back)'|^\[(Front|Back)@@/.test(l));
      assert.deepEqual(hapWarnings, [], 'HAP warned about one of the accessories');
      assertNoSecrets(hb);
    } finally {
      await hb.stop({ removeStorage: true });
    }
  });

  it('does nothing without a platform block, shows the demo camera with an empty block, and removes it with demo: false', async () => {
    const hb = await startHomebridge({ platform: null });
    try {
      await hb.waitForLog(/Loaded plugin: homebridge-webrtc-cameras@\d/);
      await sleep(300);
      const ours = hb.runLines().filter((l) => /\[WebRTC ?Cameras\]/.test(l));
      assert.ok(ours.length <= 1, ours.join('\n'));
      assert.deepEqual(hb.cachedAccessories(), []);

      await hb.restart({ platform: 'WebRTCCameras' });
      await hb.waitForLog(/Camera 'Demo Camera' \(demo\): adding accessory, source built-in demo picture/);
      await launched(hb);
      assert.deepEqual(hb.cachedAccessories().map((a) => [a.displayName, a.context['cameraId']]), [['Demo Camera', 'demo']]);

      await hb.restart({ platform: 'WebRTCCameras', demo: false });
      await hb.waitForLog(/Removing the accessory 'Demo Camera'/);
      await hb.waitForLog(/No camera to run: none is configured and the demo camera is off/);
      assert.deepEqual(hb.cachedAccessories(), []);
    } finally {
      await hb.stop({ removeStorage: true });
    }
  });

  it('logs a bad global section as a warning and keeps the cameras running', async () => {
    const hb = await startHomebridge({ platform: block([front], { web: { port: 99999 }, ice: { udpPortMin: 50000 } }) });
    try {
      await hb.waitForLog(/web\.port must be between 0 and 65535 \(it is 99999\).*Using the default 'web' settings/);
      await hb.waitForLog(/ice\.udpPortMin and ice\.udpPortMax must be set together/);
      await hb.waitForLog(/Camera 'Front' \(cameras\[0\]\): adding accessory/);
      await launched(hb);
      assert.deepEqual(hb.cachedAccessories().map((a) => a.displayName), ['Front']);
      assertNoSecrets(hb);
    } finally {
      await hb.stop({ removeStorage: true });
    }
  });
});
