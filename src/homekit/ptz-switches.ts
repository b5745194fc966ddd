/**
 * PTZ presets in the Home app (issue 17, the camera's `ptzPresetSwitches`): one Switch per chosen
 * preset, so scenes and automations can point the camera. A switch is a button: turning it on sends
 * the camera to the preset and the switch turns itself off again a moment later (a preset is a move,
 * not a state the camera stays in; "on" would be a lie as soon as anyone moves the camera).
 *
 * The switches are made at start from the config, before the camera answers: HomeKit reads an
 * external accessory's services once, and a cached switch must keep working after a restart. The
 * preset is looked up (token, else name) only when the switch is pressed. Switches of presets no
 * longer chosen are removed from the cached accessory.
 */
import type { CharacteristicValue, HAP, PlatformAccessory, Service } from 'homebridge';
import type { Logger } from '../util/logger.js';

const SUBTYPE_PREFIX = 'ptz-preset:';

export interface PtzPresetSwitchesOptions {
  hap: HAP;
  accessory: PlatformAccessory;
  /** Camera name: a switch is called "<camera> <preset>" until the user renames it. */
  cameraName: string;
  /** Preset entries from the config (tokens or names). */
  presets: ReadonlyArray<string>;
  /** Sends the camera to the preset the entry names; rejects with a sentence for the log. */
  goto: (entry: string) => Promise<void>;
  log: Logger;
  /** How long a switch stays on after a press. Default 1000 ms. */
  resetMs?: number;
}

export class PtzPresetSwitches {
  private readonly services = new Map<string, Service>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly options: PtzPresetSwitchesOptions) {
    const { hap, accessory, cameraName, presets } = options;
    const { Service: S, Characteristic: C } = hap;
    PtzPresetSwitches.removeStale(hap, accessory, presets);
    for (const entry of presets) {
      const subtype = SUBTYPE_PREFIX + entry;
      const name = `${cameraName} ${entry}`;
      const service = accessory.getServiceById(S.Switch, subtype) ?? accessory.addService(S.Switch, name, subtype);
      // iOS 16+ shows ConfiguredName; set it once so a user's rename in the Home app is kept.
      if (!service.testCharacteristic(C.ConfiguredName)) service.addOptionalCharacteristic(C.ConfiguredName);
      if (!service.getCharacteristic(C.ConfiguredName).value) service.setCharacteristic(C.ConfiguredName, name);
      service.getCharacteristic(C.On)
        .onGet(() => false)
        .onSet((value: CharacteristicValue) => this.press(entry, service, value));
      service.updateCharacteristic(C.On, false);
      this.services.set(entry, service);
    }
  }

  /**
   * Removes the cached accessory's preset switches whose entry is not in `keep`. The runtime calls it
   * with nothing to keep when the camera has no switches (the list emptied, or ONVIF removed): no
   * switches are made then, but those of a previous config must still go.
   */
  static removeStale(hap: HAP, accessory: PlatformAccessory, keep: ReadonlyArray<string> = []): void {
    const wanted = new Set(keep.map((entry) => SUBTYPE_PREFIX + entry));
    for (const service of [...accessory.services]) {
      if (service.UUID === hap.Service.Switch.UUID && service.subtype?.startsWith(SUBTYPE_PREFIX) && !wanted.has(service.subtype)) accessory.removeService(service);
    }
  }

  /** The switch of a preset entry (tests). */
  service(entry: string): Service | undefined {
    return this.services.get(entry);
  }

  stop(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private press(entry: string, service: Service, value: CharacteristicValue): void {
    if (value !== true) return;
    const { log, hap } = this.options;
    log.info(`Home app: going to PTZ preset "${entry}".`);
    // Not awaited: the Home app's request must not wait for the camera's travel.
    void this.options.goto(entry).catch((error: unknown) => {
      log.warn(`PTZ preset "${entry}" from the Home app failed: ${error instanceof Error ? error.message : String(error)}`);
    });
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      service.updateCharacteristic(hap.Characteristic.On, false);
    }, this.options.resetMs ?? 1000);
    timer.unref?.();
    this.timers.add(timer);
  }
}
