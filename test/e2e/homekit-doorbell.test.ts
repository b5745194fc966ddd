/**
 * Issue 17, end to end (Homebridge + hap-controller; not run in the session that wrote it): a camera
 * configured as a doorbell is a Video Doorbell accessory; a DigitalInput press from the loopback ONVIF
 * responder reaches the paired controller as a ProgrammableSwitchEvent SINGLE_PRESS event on the
 * Doorbell service, the snapshot the Home app then asks for is a real picture, and the HTTP trigger
 * (its secret read from the token file the log names; the log never carries it) rings too, after
 * the debounce time.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeCamera } from '../helpers/fake-camera.js';
import { platformConfig, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';
import { getFreePort } from '../helpers/ports.js';
import { HapCameraClient, type CameraAccessory, type ServiceRef } from '../homekit/hap-camera-client.js';
import { checkImage } from '../homekit/inspect.js';

const ONVIF_PASSWORD = 'Onvif-Pass-9';
/** HAP's Doorbell service and its ProgrammableSwitchEvent characteristic (short UUIDs). */
const DOORBELL_SERVICE = 0x121;
const PROGRAMMABLE_SWITCH_EVENT = 0x73;
const SINGLE_PRESS = 0;

interface HapEvent {
  characteristics?: Array<{ aid: number; iid: number; value: unknown }>;
}

describe('e2e: a doorbell camera rings a paired HomeKit controller', { timeout: 300_000 }, () => {
  let camera: FakeCamera;
  let onvif: OnvifResponder;
  let hb: HomebridgeProcess;
  let hap: HapCameraClient;
  let door: CameraAccessory;
  let doorbell: ServiceRef;
  const presses: Array<{ value: unknown; at: number }> = [];

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'none' });
    onvif = await startOnvifResponder({ password: ONVIF_PASSWORD, streamUrl: camera.url });
    const webPort = await getFreePort();
    hb = await startHomebridge({
      platform: platformConfig({
        cameras: [
          {
            name: 'Door',
            rtspUrl: camera.url,
            onvif: { host: '127.0.0.1', port: onvif.port, username: 'admin', password: ONVIF_PASSWORD },
            doorbell: { enabled: true, httpTrigger: true },
          },
        ],
        web: { port: webPort },
      }),
    });
    await hb.waitForLog(/\[Door\] Home app camera ready: .*; video doorbell\./, 30_000);
    hap = await HapCameraClient.pair(hb.bridgePort, hb.pin);
    door = await hap.camera('Door');
    const found = door.services.find((s) => s.type === DOORBELL_SERVICE);
    assert.ok(found, `a Doorbell service on the camera accessory (services: ${door.services.map((s) => s.type.toString(16)).join(', ')})`);
    doorbell = found;
    const ref = HapCameraClient.characteristic(doorbell, PROGRAMMABLE_SWITCH_EVENT);
    hap.client.on('event', (event: HapEvent) => {
      for (const c of event.characteristics ?? []) {
        if (c.aid === ref.aid && c.iid === ref.iid) presses.push({ value: c.value, at: Date.now() });
      }
    });
    await hap.client.subscribeCharacteristics([`${ref.aid}.${ref.iid}`]);
  });

  after(async () => {
    await hap?.client.unsubscribeCharacteristics().catch(() => undefined);
    await hap?.close().catch(() => undefined);
    await hb?.stop({ removeStorage: true });
    await stopAllHomebridges();
    await Promise.all([camera?.close(), onvif?.close()]);
  });

  async function waitForPresses(count: number, timeoutMs: number): Promise<number> {
    const started = Date.now();
    while (presses.length < count) {
      if (Date.now() - started > timeoutMs) assert.fail(`${presses.length} doorbell event(s), expected ${count} within ${timeoutMs} ms`);
      await sleep(50);
    }
    return Date.now() - started;
  }

  it('an ONVIF DigitalInput press is one SINGLE_PRESS event, and the snapshot is a real picture', async () => {
    await hb.waitForLog(/\[Door\] ONVIF events: following doorbell presses/, 15_000);
    const deadline = Date.now() + 15_000;
    while (onvif.activeSubscriptions() === 0 && Date.now() < deadline) await sleep(100);
    const pulls = onvif.counters.pulls;
    while (onvif.counters.pulls === pulls && Date.now() < deadline) await sleep(50);
    onvif.emitDoorbell({ release: true });
    const ms = await waitForPresses(1, 10_000);
    assert.equal(presses[0]!.value, SINGLE_PRESS);
    console.log(`doorbell: ProgrammableSwitchEvent ${ms} ms after the ONVIF event`);
    // What the Home app does as it rings: ask for the picture.
    const started = performance.now();
    const image = await checkImage(await hap.getImage(640, 360, door.aid));
    assert.equal(image.width, 640);
    assert.ok(image.variance > 200, `a real picture (variance ${image.variance.toFixed(0)})`);
    assert.ok(performance.now() - started < 5000, 'within HomeKit\'s 5 s');
    // The release and any later pull ring nothing more.
    await sleep(1500);
    assert.equal(presses.length, 1);
    assert.match(hb.output(), /\[Door\] ONVIF event topic from the camera: Device\/Trigger\/DigitalInput \(doorbell\)/);
  });

  it('the HTTP trigger (secret from the token file the log names, never from the log) rings after the debounce time; a wrong token does not', async () => {
    const line = await hb.waitForLog(/\[Door\] Doorbell web trigger made: let the doorbell POST to (\S+)<secret>, the secret being this camera's entry \("door"\) in (\S+) \(/, 5000);
    const [, base, file] = /POST to (\S+)<secret>, .* in (\S+) \(/.exec(line)!;
    assert.equal(file, join(hb.storagePath, 'webrtc-cameras', 'doorbell-tokens.json'));
    const tokens = JSON.parse(await readFile(file!, 'utf8')) as Record<string, string>;
    const token = tokens['door']!;
    assert.ok(token);
    assert.equal(hb.output().includes(token), false, 'the secret is never in the Homebridge log');
    const url = `${base}${token}`;
    assert.doesNotMatch(url, new RegExp(ONVIF_PASSWORD), 'no camera credentials in the address');
    const wrong = await fetch(url.replace(/\/[^/]+$/, '/' + 'x'.repeat(32)), { method: 'POST' });
    assert.equal(wrong.status, 403);
    // Past the 3 s debounce of the ONVIF press.
    const since = Date.now() - presses[0]!.at;
    if (since < 3100) await sleep(3100 - since);
    const right = await fetch(url, { method: 'POST' });
    assert.equal(right.status, 200);
    assert.deepEqual(await right.json(), { rang: true });
    await waitForPresses(2, 10_000);
    assert.equal(presses[1]!.value, SINGLE_PRESS);
  });
});
