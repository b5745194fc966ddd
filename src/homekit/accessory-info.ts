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

/** The details a camera reports over ONVIF (src/onvif's OnvifDeviceInformation satisfies it). */
export interface DeviceInformation {
  manufacturer: string | undefined;
  model: string | undefined;
  serialNumber: string | undefined;
}

/** The values the config loader fills in when the user left the field empty. */
const DEFAULT_MANUFACTURER = 'WebRTC Cameras';
const DEFAULT_MODELS = new Set(['RTSP camera', 'ONVIF camera']);

/**
 * Replaces the placeholder manufacturer, model and serial number with what the camera reports over
 * ONVIF; values the user typed in the settings always win. The firmware revision stays the plugin's
 * (HAP requires "x.y.z" there, camera firmware strings rarely are). Returns the fields it changed.
 */
export function applyOnvifInformation(hap: HAP, accessory: PlatformAccessory, camera: CameraConfig, info: DeviceInformation): string[] {
  const { Service, Characteristic } = hap;
  const service = accessory.getService(Service.AccessoryInformation);
  if (!service) return [];
  const changed: string[] = [];
  const clean = (value: string | undefined): string | undefined => {
    const trimmed = value?.trim().slice(0, 64);
    return trimmed ? trimmed : undefined;
  };
  const manufacturer = clean(info.manufacturer);
  if (manufacturer && camera.manufacturer === DEFAULT_MANUFACTURER) {
    service.setCharacteristic(Characteristic.Manufacturer, manufacturer);
    changed.push(`manufacturer ${manufacturer}`);
  }
  const model = clean(info.model);
  if (model && DEFAULT_MODELS.has(camera.model)) {
    service.setCharacteristic(Characteristic.Model, model);
    changed.push(`model ${model}`);
  }
  const serial = clean(info.serialNumber);
  if (serial && camera.serialNumber === camera.id) {
    service.setCharacteristic(Characteristic.SerialNumber, atLeastTwo(serial));
    changed.push(`serial number ${serial}`);
  }
  return changed;
}
