import type { CameraConfig } from '../config/types.js';
import { HomeKitCamera } from '../homekit/homekit-camera.js';
import { PtzPresetSwitches } from '../homekit/ptz-switches.js';
import { Source } from '../media/source.js';
import { displayRtspUrl } from '../rtsp/url.js';
import { CameraPtz } from './camera-ptz.js';
import { createCameraSnapshots } from './camera-snapshots.js';
import { cameraUpstream, onvifConnector } from './camera-upstream.js';
import { createSharedServices } from './plugin-services.js';
import type { CameraRuntimeFactory, PluginServicesFactory } from './types.js';

/**
 * The seam between the Homebridge glue (src/platform.ts) and the work. The platform validates the
 * config, registers the accessories and finds ffmpeg, then calls only these two factories:
 *
 * - `createPluginServices` once: what all cameras share (the web server, the loopback RTSP
 *   re-stream, the camera registry). Started before any camera, stopped after the last.
 * - `createCameraRuntime` once per camera: its `Source`, snapshot service (registered with the
 *   shared services' `SnapshotRegistry`, which the web server reads), HomeKit streaming delegate,
 *   motion. Started after its accessory is registered; `start()` must not wait for the camera to
 *   answer (an unreachable camera retries in the background with backoff, never in a hot loop).
 *
 * Later issues replace the bodies below; the platform does not change. Both `stop()`s must be
 * idempotent and must not throw for "already stopped".
 */

export const createPluginServices: PluginServicesFactory = (context) => createSharedServices(context);

/**
 * One camera: its single shared `Source` (pulled on demand, or always when `alwaysOn`), registered
 * with the shared services so that viewers, the re-stream and HomeKit all read the same session.
 */
export const createCameraRuntime: CameraRuntimeFactory = (camera, deps) => {
  const onvifDevice = onvifConnector(camera, deps.log);
  const source = new Source({
    id: camera.id,
    name: camera.name,
    upstream: cameraUpstream(camera, { log: deps.log, ffmpeg: deps.ffmpeg, ...(onvifDevice ? { onvifDevice } : {}) }),
    logger: deps.log,
    logNamesCamera: true, // deps.log is the platform's "[camera name]" logger already
    alwaysOn: camera.alwaysOn,
  });
  // Snapshots: one service per camera, for the Home app and the web page's tiles alike.
  const snapshots = createCameraSnapshots({
    camera,
    source,
    ffmpeg: deps.ffmpeg,
    ffmpegConfig: deps.config.ffmpeg,
    log: deps.log,
    storagePath: deps.storagePath,
    ...(onvifDevice ? { onvifDevice } : {}),
  });
  let unregisterSnapshots: (() => void) | undefined;
  // HomeKit: camera controller, streams, motion, ONVIF details.
  const homekit = new HomeKitCamera({
    api: deps.api,
    accessory: deps.accessory,
    camera,
    source,
    services: deps.services,
    snapshots: snapshots.service,
    ffmpeg: deps.ffmpeg,
    ffmpegConfig: deps.config.ffmpeg,
    log: deps.log,
    ...(onvifDevice ? { onvifDevice } : {}),
  });
  // PTZ (issue 17): found once ONVIF answers; shared by the web page and the Home app's preset switches.
  const ptz = onvifDevice ? new CameraPtz({ camera: camera.name, connect: onvifDevice, log: deps.log }) : undefined;
  let presetSwitches: PtzPresetSwitches | undefined;
  return {
    start: async () => {
      deps.services.addCamera({
        config: camera,
        source,
        homekitStreams: () => homekit.delegate?.sessionCount ?? 0,
        ...(ptz ? { ptz: () => ptz.control() } : {}),
      });
      unregisterSnapshots = deps.services.snapshots.register(camera.id, snapshots.service);
      // Into memory now, so the page's first tile request is answered from memory.
      void snapshots.store?.load();
      homekit.start();
      ptz?.start();
      if (ptz && camera.ptzPresetSwitches?.length) {
        presetSwitches = new PtzPresetSwitches({
          hap: deps.api.hap,
          accessory: deps.accessory,
          cameraName: camera.name,
          presets: camera.ptzPresetSwitches,
          goto: (entry) => ptz.gotoConfiguredPreset(entry),
          log: deps.log,
        });
      }
      deps.log.debug(`Camera '${camera.id}' is ready (source: ${describeSource(camera)}).`);
    },
    homekitReady: () => homekit.configured,
    stop: async () => {
      // Streams first: their ffmpeg processes read the re-stream of this Source.
      unregisterSnapshots?.();
      presetSwitches?.stop();
      await Promise.allSettled([homekit.stop(), snapshots.service.close(), ptz?.stop()]);
      deps.services.removeCamera(camera.id);
      await source.close();
    },
  };
};

function describeSource(camera: CameraConfig): string {
  return camera.source.kind === 'rtsp' ? displayRtspUrl(camera.source.url, camera.source.username)
    : camera.source.kind === 'onvif' ? `ONVIF ${camera.source.onvif.host}:${camera.source.onvif.port}`
      : 'the built-in demo picture';
}
