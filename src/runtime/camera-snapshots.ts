/**
 * One camera's snapshot service, built by the runtime that owns it: the stream (through the camera's
 * Source), then its still-image sources (the configured snapshotUrl, fetched with the camera's
 * credentials, and the ONVIF snapshot URI), then the last good picture, kept on disk when there is a
 * storage path. The Home app and the page's tiles both ask this one service: HomeKit through its
 * deps, the web server through the plugin's `SnapshotRegistry`.
 */
import type { CameraConfig, FfmpegConfig } from '../config/types.js';
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import type { ConnectedOnvifDevice } from '../onvif/device.js';
import { httpRequest } from '../onvif/http-client.js';
import type { SnapshotFrameSource } from '../snapshots/keyframe-snapshot.js';
import { SnapshotService, type StillImageSource } from '../snapshots/snapshot-service.js';
import { SnapshotStore } from '../snapshots/snapshot-store.js';
import type { Logger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import { webAddressCredentials } from './camera-upstream.js';

export interface CameraSnapshotsOptions {
  camera: CameraConfig;
  source: SnapshotFrameSource;
  ffmpeg: FfmpegCapabilities | undefined;
  ffmpegConfig: FfmpegConfig;
  log: Logger;
  onvifDevice?: () => Promise<ConnectedOnvifDevice>;
  /** Homebridge's storage path: the last good snapshot is kept there across restarts. Without it, it is not. */
  storagePath?: string;
}

export interface CameraSnapshots {
  service: SnapshotService;
  /** undefined without a storage path, or for a camera whose id cannot name a file. */
  store: SnapshotStore | undefined;
}

export function createCameraSnapshots(options: CameraSnapshotsOptions): CameraSnapshots {
  const { camera, log } = options;
  const store = options.storagePath ? makeStore(options.storagePath, camera.id, log) : undefined;
  const service = new SnapshotService({
    source: options.source,
    ffmpegPath: options.ffmpeg?.path,
    stillSources: stillSources(camera, options.onvifDevice),
    log,
    debug: options.ffmpegConfig.debug,
    ...(store ? { store } : {}),
  });
  return { service, store };
}

function stillSources(camera: CameraConfig, onvifDevice: (() => Promise<ConnectedOnvifDevice>) | undefined): StillImageSource[] {
  const sources: StillImageSource[] = [];
  if (camera.snapshotUrl) {
    const url = camera.snapshotUrl;
    const credentials = webAddressCredentials(camera, url);
    sources.push({
      name: `snapshotUrl ${redactUrl(url)}`,
      fetch: async (signal) => {
        const response = await httpRequest({ url, timeoutMs: 4000, signal, ...(credentials ? { credentials } : {}), headers: { accept: 'image/jpeg, image/*' } });
        if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
        return response.body;
      },
    });
  }
  if (onvifDevice) {
    sources.push({ name: 'ONVIF snapshot URI', fetch: async () => (await onvifDevice()).fetchSnapshot() });
  }
  return sources;
}

/** The camera's snapshot store; a camera the config let through with an odd id simply has none. */
function makeStore(storagePath: string, cameraId: string, log: Logger): SnapshotStore | undefined {
  try {
    return new SnapshotStore({ storagePath, cameraId, log });
  } catch (error) {
    log.warn(`The last snapshot will not be kept across restarts: ${error instanceof Error ? error.message : String(error)}`);
    return undefined;
  }
}
