// Accessory Information: the config's values, HAP's two-character serial minimum, and ONVIF's
// details replacing only the placeholders the config loader filled in.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import hap from '@homebridge/hap-nodejs';
import type { HAP, PlatformAccessory } from 'homebridge';

import type { CameraConfig } from '../../src/config/types.js';
import { applyAccessoryInformation, applyOnvifInformation } from '../../src/homekit/accessory-info.js';

const HAP_API = hap as unknown as HAP;
const { Characteristic, Service } = hap;

function accessory(): { accessory: PlatformAccessory; value: (c: typeof Characteristic.Model) => unknown } {
  const inner = new hap.Accessory('Porch', hap.uuid.generate('accessory-info-test'));
  const wrapped = {
    getService: (s: typeof Service.AccessoryInformation) => inner.getService(s),
    addService: (s: typeof Service.AccessoryInformation) => inner.addService(s),
  } as unknown as PlatformAccessory;
  return { accessory: wrapped, value: (c) => inner.getService(Service.AccessoryInformation)!.getCharacteristic(c).value };
}

/** A camera as the config loader leaves it when the user typed nothing (the placeholders). */
function camera(extra: Partial<CameraConfig> = {}): CameraConfig {
  return { id: 'porch', name: 'Porch', manufacturer: 'WebRTC Cameras', model: 'ONVIF camera', serialNumber: 'porch', ...extra } as CameraConfig;
}

describe('applyAccessoryInformation', () => {
  it('writes the configured values and the plugin version', () => {
    const a = accessory();
    applyAccessoryInformation(HAP_API, a.accessory, camera({ manufacturer: 'D-Link', model: 'DCS-7010L', serialNumber: 'Q1' }), '1.2.3');
    assert.equal(a.value(Characteristic.Manufacturer), 'D-Link');
    assert.equal(a.value(Characteristic.Model), 'DCS-7010L');
    assert.equal(a.value(Characteristic.SerialNumber), 'Q1');
    assert.equal(a.value(Characteristic.FirmwareRevision), '1.2.3');
  });

  it('fills empty fields, and lengthens a one-character serial number', () => {
    const a = accessory();
    applyAccessoryInformation(HAP_API, a.accessory, camera({ id: 'x', manufacturer: '', model: '', serialNumber: '' }), '0.1.0');
    assert.equal(a.value(Characteristic.Manufacturer), 'WebRTC Cameras');
    assert.equal(a.value(Characteristic.Model), 'Camera');
    assert.equal(a.value(Characteristic.SerialNumber), 'SN-x', 'falls back to the camera id, made two characters long');
  });
});

describe('applyOnvifInformation', () => {
  it('replaces the placeholders with what the camera reports, trimmed and cut to 64 characters', () => {
    const a = accessory();
    applyAccessoryInformation(HAP_API, a.accessory, camera(), '0.1.0');
    const changed = applyOnvifInformation(HAP_API, a.accessory, camera(), {
      manufacturer: '  Hikvision ',
      model: 'M'.repeat(80),
      serialNumber: 'DS-2CD-123',
    });
    assert.deepEqual(changed, ['manufacturer Hikvision', `model ${'M'.repeat(64)}`, 'serial number DS-2CD-123']);
    assert.equal(a.value(Characteristic.Manufacturer), 'Hikvision');
    assert.equal(a.value(Characteristic.Model), 'M'.repeat(64));
    assert.equal(a.value(Characteristic.SerialNumber), 'DS-2CD-123');
  });

  it('never overrides what the user typed; the RTSP placeholder model counts as a placeholder too', () => {
    const a = accessory();
    const typed = camera({ manufacturer: 'Mine', model: 'RTSP camera', serialNumber: 'S-1' });
    applyAccessoryInformation(HAP_API, a.accessory, typed, '0.1.0');
    const changed = applyOnvifInformation(HAP_API, a.accessory, typed, { manufacturer: 'Theirs', model: 'X1', serialNumber: 'T-9' });
    assert.deepEqual(changed, ['model X1']);
    assert.equal(a.value(Characteristic.Manufacturer), 'Mine');
    assert.equal(a.value(Characteristic.SerialNumber), 'S-1');
  });

  it('ignores empty, blank or missing reports, and a one-character serial is lengthened', () => {
    const a = accessory();
    applyAccessoryInformation(HAP_API, a.accessory, camera(), '0.1.0');
    assert.deepEqual(applyOnvifInformation(HAP_API, a.accessory, camera(), { manufacturer: '   ', model: undefined, serialNumber: '' }), []);
    assert.equal(a.value(Characteristic.Manufacturer), 'WebRTC Cameras');
    assert.deepEqual(applyOnvifInformation(HAP_API, a.accessory, camera(), { manufacturer: undefined, model: undefined, serialNumber: '7' }), ['serial number 7']);
    assert.equal(a.value(Characteristic.SerialNumber), 'SN-7');
  });

  it('does nothing on an accessory without an information service', () => {
    const bare = { getService: () => undefined } as unknown as PlatformAccessory;
    assert.deepEqual(applyOnvifInformation(HAP_API, bare, camera(), { manufacturer: 'A', model: 'B', serialNumber: 'C' }), []);
  });
});
