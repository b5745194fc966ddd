/**
 * PTZ preset switches in the Home app: one Switch per chosen preset on the camera's accessory; turning
 * one on sends the camera to the preset (GotoPreset with its token, found by token or name, through
 * the runtime's CameraPtz and the loopback responder) and the switch turns itself off again.
 * Switches of presets no longer chosen leave the cached accessory.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import hap from '@homebridge/hap-nodejs';
import type { HAP, PlatformAccessory } from 'homebridge';

import { PtzPresetSwitches } from '../../src/homekit/ptz-switches.js';
import { textAt } from '../../src/onvif/xml.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { startPtzRig, until, type PtzRig } from '../helpers/ptz-rig.js';

const HAP_API = hap as unknown as HAP;
const { Characteristic, Service } = hap;

/** A hap-nodejs accessory behind the PlatformAccessory calls the switches use. */
function accessory(inner = new hap.Accessory('Dome', hap.uuid.generate('ptz-switch-test'))): { accessory: PlatformAccessory; inner: hap.Accessory } {
  const wrapped = {
    get services() {
      return inner.services;
    },
    getServiceById: (s: typeof Service.Switch, subtype: string) => inner.getServiceById(s, subtype),
    addService: (s: typeof Service.Switch, name: string, subtype: string) => inner.addService(s, name, subtype),
    removeService: (s: hap.Service) => inner.removeService(s),
  } as unknown as PlatformAccessory;
  return { accessory: wrapped, inner };
}

const rigs: PtzRig[] = [];
after(async () => {
  await Promise.all(rigs.map((r) => r.close()));
});

describe('PTZ preset switches', () => {
  it('one switch per preset; on → GotoPreset with the token (by token or by name), then off by itself', async () => {
    const rig = await startPtzRig();
    rigs.push(rig);
    const { accessory: a, inner } = accessory();
    const log = recordingLogger();
    const switches = new PtzPresetSwitches({
      hap: HAP_API,
      accessory: a,
      cameraName: 'Dome',
      presets: ['P004', 'home'],
      goto: (entry) => rig.ptz.gotoConfiguredPreset(entry),
      log,
      resetMs: 50,
    });
    const made = inner.services.filter((s) => s.UUID === Service.Switch.UUID);
    assert.equal(made.length, 2);
    assert.equal(switches.service('P004')?.getCharacteristic(Characteristic.ConfiguredName).value, 'Dome P004');

    const byToken = switches.service('P004')!;
    await byToken.getCharacteristic(Characteristic.On).handleSetRequest(true);
    await until(() => rig.ptzCalls('GotoPreset').length === 1, 'the switch');
    assert.equal(textAt(rig.ptzCalls('GotoPreset')[0]?.element, 'PresetToken'), 'P004');
    await until(() => byToken.getCharacteristic(Characteristic.On).value === false, 'the switch');
    assert.equal(await byToken.getCharacteristic(Characteristic.On).handleGetRequest(), false, 'reads as off: a button, not a state');

    // "home" is a name ("Home", token Home): found case-insensitively (the rig sets no rate limit).
    await switches.service('home')!.getCharacteristic(Characteristic.On).handleSetRequest(true);
    await until(() => rig.ptzCalls('GotoPreset').length === 2, 'the switch');
    assert.equal(textAt(rig.ptzCalls('GotoPreset')[1]?.element, 'PresetToken'), 'Home');
    switches.stop();
  });

  it('an unknown preset is logged with the camera\u2019s list and sends nothing; stale switches are removed', async () => {
    const rig = await startPtzRig();
    rigs.push(rig);
    const { accessory: a, inner } = accessory();
    const log = recordingLogger();
    const first = new PtzPresetSwitches({ hap: HAP_API, accessory: a, cameraName: 'Dome', presets: ['Nowhere', 'P001'], goto: (e) => rig.ptz.gotoConfiguredPreset(e), log, resetMs: 20 });
    await first.service('Nowhere')!.getCharacteristic(Characteristic.On).handleSetRequest(true);
    await until(() => log.lines.some((l) => /preset "Nowhere" from the Home app failed: the camera has no preset "Nowhere"; it lists "P001"/.test(l)), 'the log line');
    assert.equal(rig.ptzCalls('GotoPreset').length, 0);
    first.stop();

    // Restart with another choice: the cached accessory keeps P001, loses Nowhere.
    const second = new PtzPresetSwitches({ hap: HAP_API, accessory: a, cameraName: 'Dome', presets: ['P001'], goto: () => Promise.resolve(), log, resetMs: 20 });
    const left = inner.services.filter((s) => s.UUID === Service.Switch.UUID).map((s) => s.subtype);
    assert.deepEqual(left, ['ptz-preset:P001']);
    second.stop();

    // The list emptied (or ONVIF removed): the runtime makes no switches, and the cached one goes too.
    PtzPresetSwitches.removeStale(HAP_API, a);
    assert.deepEqual(inner.services.filter((s) => s.UUID === Service.Switch.UUID), []);
  });
});
