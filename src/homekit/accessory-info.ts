import type { HAP, PlatformAccessory } from 'homebridge';
import type { CameraConfig } from '../config/types.js';

/**
 * Fills the Accessory Information service the Home app shows under "accessory details". HAP wants
 * non-empty strings; the config loader already gives every camera a manufacturer, model and serial
 * number (the serial defaults to the camera id, which is stable and unique).
 */
export function applyAccessoryInformation(hap: HAP, accessory: PlatformAccessory, camera: CameraConfig, firmwareRevision: string): void {
  const { Service, Characteristic } = hap;
  const info = accessory.getService(Service.AccessoryInformation) ?? accessory.addService(Service.AccessoryInformation);
  info
    .setCharacteristic(Characteristic.Manufacturer, camera.manufacturer || 'WebRTC Cameras')
    .setCharacteristic(Characteristic.Model, camera.model || 'Camera')
    // HAP ignores (with a warning) a serial number shorter than 2 characters, e.g. camera id "a".
    .setCharacteristic(Characteristic.SerialNumber, atLeastTwo(camera.serialNumber || camera.id))
    .setCharacteristic(Characteristic.FirmwareRevision, firmwareRevision);
}

function atLeastTwo(value: string): string {
  return value.length >= 2 ? value : `SN-${value}`;
}
