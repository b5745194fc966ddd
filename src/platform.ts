import type { API, DynamicPlatformPlugin, Logging, PlatformAccessory, PlatformConfig } from 'homebridge';
import { describeCamera, loadConfig } from './config/load-config.js';
import { readPluginVersion } from './config/schema-file.js';
import type { CameraConfig, PluginConfig } from './config/types.js';
import type { FfmpegCapabilities } from './ffmpeg/capabilities.js';
import { findFfmpeg } from './ffmpeg/find-ffmpeg.js';
import { applyAccessoryInformation } from './homekit/accessory-info.js';
import { plainTimers, type TimerSeam } from './media/timers.js';
import { displayRtspUrl } from './rtsp/url.js';
import { createCameraRuntime, createPluginServices } from './runtime/camera-runtime.js';
import type { CameraRuntime, CameraRuntimeFactory, PluginServices, PluginServicesFactory, RuntimeContext } from './runtime/types.js';
import { PLATFORM_NAME, PLUGIN_NAME } from './settings.js';
import { prefixedLogger, redactingLogger, type Logger } from './util/logger.js';
import { requestNativeHeapTrim } from './rtp/native-heap-trim.js';

/** What the platform calls out to; tests replace these. */
export interface PlatformHooks {
  findFfmpeg: typeof findFfmpeg;
  createPluginServices: PluginServicesFactory;
  createCameraRuntime: CameraRuntimeFactory;
  /** The timer of shutdown's wait for a start-up in progress; tests drive it with a manual clock. */
  timers: TimerSeam;
}

export interface CameraAccessoryContext {
  cameraId: string;
}

/** The accessory UUID of a camera: stable for as long as the camera id stays the same. */
export function cameraUuid(api: API, cameraId: string): string {
  return api.hap.uuid.generate(`webrtc-cameras:${cameraId}`);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sourceText(camera: CameraConfig): string {
  switch (camera.source.kind) {
    case 'rtsp':
      return displayRtspUrl(camera.source.url, camera.source.username);
    case 'onvif':
      return `ONVIF ${camera.source.onvif.host}:${camera.source.onvif.port}`;
    case 'demo':
      return 'built-in demo picture';
  }
}

/**
 * The Homebridge glue: config in, accessories registered, runtimes started and stopped. The work
 * itself lives behind `src/runtime/camera-runtime.ts`. Every Homebridge callback is wrapped so that
 * nothing thrown here can take Homebridge (and the user's other accessories) down.
 */
export class WebRTCCamerasPlatform implements DynamicPlatformPlugin {
  private readonly log: Logger;
  private readonly config: PluginConfig | undefined;
  /** Every password in the config, and secrets the runtime makes (doorbell tokens): masked in anything the plugin logs or sends. */
  private secrets: Set<string> = new Set();
  private readonly hooks: PlatformHooks;
  /** Accessories restored from Homebridge's cache, by UUID, until `didFinishLaunching` sorts them. */
  private readonly cached = new Map<string, PlatformAccessory>();
  private readonly runtimes = new Map<string, CameraRuntime>();
  private services: PluginServices | undefined;
  private launching: Promise<void> | undefined;
  private stopping = false;
  private shuttingDown: Promise<void> | undefined;

  constructor(log: Logging, config: PlatformConfig | undefined, private readonly api: API, hooks: Partial<PlatformHooks> = {}) {
    this.hooks = { findFfmpeg, createPluginServices, createCameraRuntime, timers: plainTimers, ...hooks };
    let logger: Logger = log;
    let loaded: PluginConfig | undefined;
    try {
      if (!config || Object.keys(config).length === 0) {
        log.info(`${PLATFORM_NAME} is installed but not configured; add it in the plugin settings. Nothing to do.`);
      } else {
        const result = loadConfig(config);
        // From here on no line may carry a password: every secret in the config is known.
        logger = redactingLogger(log, result.secrets);
        this.secrets = result.secrets;
        for (const message of result.messages) logger[message.level](message.text);
        loaded = result.config;
      }
    } catch (error) {
      logger.error(`The plugin settings could not be read (${errorText(error)}); the plugin stays idle. Please report this as a bug.`);
      loaded = undefined;
    }
    this.log = logger;
    this.config = loaded;
    if (!this.config) return;

    api.on('didFinishLaunching', () => {
      this.launching = this.launch().catch((error: unknown) => {
        this.log.error(`Start-up failed: ${errorText(error)}. The cameras stay off; Homebridge keeps running.`);
      });
    });
    api.on('shutdown', () => {
      void this.shutdown().catch((error: unknown) => this.log.error(`Shutdown failed: ${errorText(error)}`));
    });
  }

  /** Settles when the start-up that `didFinishLaunching` began has finished (its errors are logged, never thrown). */
  whenLaunched(): Promise<void> {
    return this.launching ?? Promise.resolve();
  }

  /** Homebridge hands over each cached accessory before `didFinishLaunching`. */
  configureAccessory(accessory: PlatformAccessory): void {
    try {
      this.cached.set(accessory.UUID, accessory);
    } catch (error) {
      this.log.error(`Could not restore the cached accessory '${accessory.displayName}': ${errorText(error)}`);
    }
  }

  private async launch(): Promise<void> {
    const config = this.config;
    if (!config) return;
    const accessories = this.syncAccessories(config.cameras);
    if (config.cameras.length === 0 && !config.discovery.enabled) {
      this.log.info('No camera to run: none is configured and the demo camera is off (demo: false).');
      return;
    }
    if (config.cameras.length === 0) {
      // Discovery and the Homebridge UI page (which adds the cameras it finds) need the services.
      this.log.info('No camera configured yet: camera discovery runs, and the plugin page in the Homebridge UI can add the cameras it finds.');
    }

    const ffmpeg = await this.hooks.findFfmpeg({ log: this.log, videoProcessor: config.ffmpeg.videoProcessor });
    if (this.stopping) return;
    const context: RuntimeContext = { api: this.api, log: this.log, config, ffmpeg, storagePath: this.api.user.storagePath(), secrets: this.secrets };
    const services = this.hooks.createPluginServices(context);
    this.services = services;
    await services.start();
    if (this.stopping) return;

    await Promise.all(config.cameras.map(async (camera) => {
      const accessory = accessories.get(camera.id);
      if (!accessory) return;
      await this.startCamera(camera, accessory, context, services, ffmpeg);
    }));
    // Start-up left much garbage: C heap glibc would keep resident (module loading, compiles) and
    // V8 heap that V8 itself did not collect within a minute and more with a camera running
    // (bench:janus: Homebridge read 126-132 MB 9 s after start, and 105-112 MB asking V8 here).
    if (!this.stopping) requestNativeHeapTrim((message) => this.log.debug(message));
  }

  private async startCamera(
    camera: CameraConfig,
    accessory: PlatformAccessory,
    context: RuntimeContext,
    services: PluginServices,
    ffmpeg: FfmpegCapabilities | undefined,
  ): Promise<void> {
    const log = prefixedLogger(this.log, camera.name);
    try {
      const runtime = this.hooks.createCameraRuntime(camera, { ...context, ffmpeg, log, accessory, services });
      this.runtimes.set(camera.id, runtime);
      await runtime.start();
      if (camera.external) {
        // HomeKit reads an external accessory's services once, at publishing: wait for the camera controller.
        await runtime.homekitReady?.();
        if (this.stopping) return;
        this.api.publishExternalAccessories(PLUGIN_NAME, [accessory]);
        log.info('Published as its own accessory: add it in the Home app with the bridge setup code.');
      }
    } catch (error) {
      this.log.error(`${describeCamera(camera)} could not start: ${errorText(error)}. The other cameras are not affected.`);
    }
  }

  /**
   * Makes Homebridge's accessories match the cameras: restores cached ones, registers new ones in
   * one call, and removes those whose camera left the config. Returns the accessory of each camera id.
   */
  private syncAccessories(cameras: CameraConfig[]): Map<string, PlatformAccessory> {
    const byCamera = new Map<string, PlatformAccessory>();
    const fresh: PlatformAccessory[] = [];
    const restored: PlatformAccessory[] = [];
    const version = readPluginVersion().replace(/[^0-9.].*$/, '') || '0.0.0';

    for (const camera of cameras) {
      try {
        const uuid = cameraUuid(this.api, camera.id);
        if (camera.external) {
          // External accessories are never cached or bridged; a cached bridged copy (the camera was
          // bridged before) stays in `cached` and is unregistered below.
          const external = new this.api.platformAccessory(camera.name, uuid, cameraCategory(this.api, camera));
          (external.context as CameraAccessoryContext).cameraId = camera.id;
          applyAccessoryInformation(this.api.hap, external, camera, version);
          byCamera.set(camera.id, external);
          this.log.info(`${describeCamera(camera)}: external accessory, source ${sourceText(camera)}.`);
          continue;
        }
        let accessory = this.cached.get(uuid);
        if (accessory) {
          this.cached.delete(uuid);
          if (accessory.displayName !== camera.name) accessory.updateDisplayName(camera.name);
          restored.push(accessory);
        } else {
          accessory = new this.api.platformAccessory(camera.name, uuid, cameraCategory(this.api, camera));
          fresh.push(accessory);
        }
        // A camera that became a doorbell (or stopped being one) changes category with its setting.
        accessory.category = cameraCategory(this.api, camera);
        (accessory.context as CameraAccessoryContext).cameraId = camera.id;
        applyAccessoryInformation(this.api.hap, accessory, camera, version);
        byCamera.set(camera.id, accessory);
        this.log.info(`${describeCamera(camera)}: ${fresh.includes(accessory) ? 'adding' : 'restored'} accessory, source ${sourceText(camera)}.`);
      } catch (error) {
        this.log.error(`${describeCamera(camera)}: its accessory could not be set up: ${errorText(error)}`);
      }
    }

    const gone = [...this.cached.values()];
    this.cached.clear();
    for (const accessory of gone) {
      this.log.info(`Removing the accessory '${accessory.displayName}': its camera is no longer in the configuration.`);
    }
    this.guard('unregister old accessories', gone.length > 0, () => this.api.unregisterPlatformAccessories(PLUGIN_NAME, PLATFORM_NAME, gone));
    this.guard('update restored accessories', restored.length > 0, () => this.api.updatePlatformAccessories(restored));
    this.guard('register new accessories', fresh.length > 0, () => this.api.registerPlatformAccessories(PLUGIN_NAME, PLATFORM_NAME, fresh));
    return byCamera;
  }

  private guard(what: string, when: boolean, action: () => void): void {
    if (!when) return;
    try {
      action();
    } catch (error) {
      this.log.error(`Could not ${what}: ${errorText(error)}`);
    }
  }

  /** Stops every camera, then the shared services. Safe to call more than once: every call settles when the one shutdown has. */
  shutdown(): Promise<void> {
    this.shuttingDown ??= this.stopAll();
    return this.shuttingDown;
  }

  private async stopAll(): Promise<void> {
    this.stopping = true;
    // Let a start-up in progress settle so what it started is stopped too, but never hang
    // Homebridge's shutdown on a runtime whose start() misbehaves.
    if (this.launching) {
      const { timers } = this.hooks;
      let timer: unknown;
      await Promise.race([this.launching, new Promise<void>((done) => { timer = timers.setTimeout(done, 3000); })]);
      timers.clearTimeout(timer);
    }
    const runtimes = [...this.runtimes.entries()];
    this.runtimes.clear();
    const results = await Promise.allSettled(runtimes.map(([, runtime]) => runtime.stop()));
    results.forEach((result, i) => {
      if (result.status === 'rejected') this.log.warn(`Camera '${runtimes[i]?.[0]}' did not stop cleanly: ${errorText(result.reason)}`);
    });
    try {
      await this.services?.stop();
    } catch (error) {
      this.log.warn(`The shared services did not stop cleanly: ${errorText(error)}`);
    }
    this.services = undefined;
  }
}

/** VIDEO_DOORBELL for a doorbell camera (the Home app's doorbell tile and chime), else CAMERA. */
function cameraCategory(api: API, camera: CameraConfig): PlatformAccessory['category'] {
  return camera.doorbell ? api.hap.Categories.VIDEO_DOORBELL : api.hap.Categories.CAMERA;
}
