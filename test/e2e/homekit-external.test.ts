/**
 * A camera with `external: true` is published as its own HAP accessory, outside the bridge: a real
 * HAP client pairs with it on its own port and finds the camera services there, and the bridge
 * does not carry it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FakeCamera } from '../helpers/fake-camera.js';
import { platformConfig, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { getFreePorts } from '../helpers/ports.js';
import { HapCameraClient } from '../homekit/hap-camera-client.js';

describe('e2e: a camera published as an external accessory', () => {
  let camera: FakeCamera;
  let hb: HomebridgeProcess;
  let externalPort: number;
  const clients: HapCameraClient[] = [];

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, audio: 'pcmu' });
    const [webPort, port] = await getFreePorts(2);
    externalPort = port!;
    hb = await startHomebridge({
      // External accessories get ports from this range; one port makes it predictable.
      extraConfig: { ports: { start: externalPort, end: externalPort } },
      platform: platformConfig({
        cameras: [
          { name: 'Drive', rtspUrl: camera.url, external: true },
          { name: 'Hall', rtspUrl: camera.url },
        ],
        web: { port: webPort },
        viewers: [{ username: 'family', password: 'family-password-1' }],
      }),
    });
    await hb.waitForLog(/\[Drive\] Published as its own accessory/, 30_000);
    await hb.waitForLog(/Drive \S+ is running on port/, 10_000);
  });

  after(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await hb?.stop({ removeStorage: true });
    await stopAllHomebridges();
    await camera?.close();
  });

  it('pairs on its own port with the bridge code, carries the camera services, and is not on the bridge', async () => {
    const external = await HapCameraClient.pair(externalPort, hb.pin);
    clients.push(external);
    const own = await external.cameras();
    // HAP-NodeJS suffixes an external accessory's name with part of its id ("Drive C272").
    assert.equal(own.length, 1);
    assert.match(own[0]!.name, /^Drive\b/);
    assert.equal(own[0]!.streamManagements.length, 4, 'RTP Stream Management services on the external accessory');

    const bridge = await HapCameraClient.pair(hb.bridgePort, hb.pin);
    clients.push(bridge);
    const bridged = (await bridge.cameras()).map((c) => c.name);
    assert.ok(bridged.includes('Hall'), `the bridged camera is on the bridge: ${bridged}`);
    assert.ok(!bridged.some((name) => name.startsWith('Drive')), `the external camera is not on the bridge: ${bridged}`);
    assert.equal(hb.cachedAccessories().filter((a) => a.displayName === 'Drive').length, 0, 'external accessories are not cached');
  });
});
