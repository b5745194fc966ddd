import type { CameraConfig } from '../config/types.js';
import type { ConnectedOnvifDevice } from '../onvif/device.js';
import type { Logger } from '../util/logger.js';
import { VideoMotionDetector } from '../motion/video-motion.js';
import { HomeKitCamera } from '../homekit/homekit-camera.js';
import { PtzPresetSwitches } from '../homekit/ptz-switches.js';
import { Source } from '../media/source.js';
import { displayRtspUrl } from '../rtsp/url.js';
import { CameraPtz } from './camera-ptz.js';
import { WEB_TRIGGER_KINDS, motionStateOf, webTriggerPath, type WebTrigger, type WebTriggerKind } from '../web/web-trigger.js';
import { createCameraSnapshots } from './camera-snapshots.js';
import { DoorbellPresses } from './doorbell.js';
import { cameraTalkAddress, cameraUpstream, onvifConnector, webAddressCredentials } from './camera-upstream.js';
import { CameraTalk, type TalkOutput } from '../talk/camera-talk.js';
import { openHttpSpeaker } from '../talk/http-speaker.js';
import { RtspBackchannel } from '../rtsp/backchannel.js';
import { rtspEndpoint } from '../rtsp/url.js';
import { createSharedServices } from './plugin-services.js';
import type { CameraRuntimeDeps, CameraRuntimeFactory, PluginServicesFactory } from './types.js';

/**
 * The seam between the Homebridge glue (src/platform.ts) and the work. The platform validates the
 * config, registers the accessories and finds ffmpeg, then calls only these two factories:
 *
 * - `createPluginServices` once: what all cameras share (the web server, the loopback RTSP
 *   re-stream, the camera registry). Started before any camera, stopped after the last.
 * - `createCameraRuntime` once per camera: its `Source`, snapshot service (registered with the
 *   shared services' `SnapshotRegistry`, which the web server reads), HomeKit streaming delegate,
 *   motion (ONVIF events, the motion web trigger), doorbell presses. Started after its accessory is
 *   registered; `start()` must not wait for the camera to answer (an unreachable camera retries in
 *   the background with backoff, never in a hot loop).
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
  // Doorbell presses (ONVIF and the web trigger), debounced: a press warms the snapshot first (the
  // Home app asks for one as it rings), rings the Home app and tells the watch pages.
  const presses = camera.doorbell
    ? new DoorbellPresses({
        log: deps.log,
        ring: () => {
          // Only warming: the Home app's own request reports a failure; unhandled, it would end Homebridge.
          snapshots.service.getSnapshot({}).catch((error: unknown) => {
            deps.log.debug(`Doorbell snapshot not ready: ${error instanceof Error ? error.message : String(error)}`);
          });
          if (!homekit.ringDoorbell()) deps.log.warn('Doorbell pressed, but the Home app doorbell is not ready (no ffmpeg, or still starting).');
          deps.services.publishDoorbell({ type: 'doorbell', camera: camera.id, name: camera.name, at: Date.now() });
        },
      })
    : undefined;
  // Two-way audio: the camera's speaker through its ONVIF back-channel, opened with the first word;
  // one floor for the watch page's Hold to talk and the Home app's microphone.
  const openSpeaker = camera.twoWayAudio ? speakerOf(camera, deps.log, onvifDevice) : undefined;
  const talk = openSpeaker && deps.ffmpeg
    ? new CameraTalk({
        cameraName: camera.name,
        openOutput: openSpeaker,
        ffmpegPath: deps.ffmpeg.path,
        log: deps.log,
        debug: deps.config.ffmpeg.debug,
      })
    : undefined;
  if (camera.twoWayAudio && !deps.ffmpeg) deps.log.warn('Talking through the camera needs ffmpeg, which was not found; the talk button stays off.');
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
    ...(presses ? { onDoorbellPress: () => presses.press('onvif') } : {}),
    ...(talk ? { talk } : {}),
  });
  // PTZ (issue 17): found once ONVIF answers; shared by the web page and the Home app's preset switches.
  const ptz = onvifDevice ? new CameraPtz({
    camera: camera.name,
    connect: onvifDevice,
    log: deps.log,
    onMover: (moverId) => deps.services.publishPtzMover(camera.id, moverId),
  }) : undefined;
  // Motion from the picture (issue 16): one small ffmpeg on the re-stream, pulsing the motion sensor.
  const pictureMotion = camera.videoMotion && deps.ffmpeg
    ? new VideoMotionDetector({
        ffmpegPath: deps.ffmpeg.path,
        inputUrl: () => deps.services.restreamUrl(camera.id),
        sensitivity: camera.videoMotionSensitivity,
        onMotion: () => homekit.motionFromVideo(),
        log: deps.log,
        debug: deps.config.ffmpeg.debug,
      })
    : undefined;
  if (camera.videoMotion && !deps.ffmpeg) deps.log.warn('Motion from the picture needs ffmpeg, which was not found; the motion sensor only follows the other motion sources.');
  let presetSwitches: PtzPresetSwitches | undefined;
  // Set by stop(): a start() still waiting for the trigger's secret then starts nothing.
  let stopped = false;
  return {
    start: async () => {
      const triggers = await webTriggers(camera, deps.services, deps.log, {
        ...(presses && camera.doorbell?.httpTrigger ? { doorbell: () => ({ rang: presses.press('http') }) } : {}),
        // The motion sensor (issue 16): on until the reset time after the last call, or off at once.
        ...(camera.motionHttpTrigger ? { motion: (query: URLSearchParams) => homekit.motionFromWeb(motionStateOf(query)) } : {}),
      });
      if (stopped) return;
      deps.services.addCamera({
        config: camera,
        source,
        homekitStreams: () => homekit.delegate?.sessionCount ?? 0,
        recording: () => homekit.recordingStatus(),
        ...(ptz ? { ptz: () => ptz.control() } : {}),
        ...(talk ? { talk } : {}),
        ...(Object.keys(triggers).length ? { triggers } : {}),
      });
      unregisterSnapshots = deps.services.snapshots.register(camera.id, snapshots.service);
      // Into memory now, so the page's first tile request is answered from memory.
      void snapshots.store?.load();
      homekit.start();
      pictureMotion?.start();
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
      } else {
        // No switches wanted now (the list emptied, or no ONVIF): a previous config's cached ones go.
        PtzPresetSwitches.removeStale(deps.api.hap, deps.accessory);
      }
      deps.log.debug(`Camera '${camera.id}' is ready (source: ${describeSource(camera)}).`);
    },
    homekitReady: () => homekit.configured,
    stop: async () => {
      stopped = true;
      // Streams first: their ffmpeg processes read the re-stream of this Source.
      unregisterSnapshots?.();
      presetSwitches?.stop();
      await Promise.allSettled([homekit.stop(), snapshots.service.close(), ptz?.stop(), pictureMotion?.stop(), talk?.close()]);
      deps.services.removeCamera(camera.id);
      await source.close();
    },
  };
};

/** How the log names each kind of web trigger, who calls it and what it does. */
const TRIGGER_WORDS: Readonly<Record<WebTriggerKind, { name: string; caller: string; does: string; button: string }>> = {
  doorbell: { name: 'Doorbell', caller: 'the doorbell', does: 'it rings the doorbell', button: 'Doorbell address' },
  motion: { name: 'Motion', caller: 'the camera', does: 'it sets off the motion sensor', button: 'Motion address' },
};

/**
 * The camera's web triggers, one for each kind in `fires` (what a call with the right token does),
 * their tokens from the storage path. An address is never logged (anyone who reads the Homebridge
 * log, in the UI or a pasted bug report, could ring or set off motion): the log says where to find
 * it, the token file (0600) or the plugin's page in the Homebridge UI (`/api/admin/triggers`). A
 * kind whose secret cannot be read or saved is off (said once), the others work.
 */
async function webTriggers(
  camera: CameraConfig,
  services: CameraRuntimeDeps['services'],
  log: CameraRuntimeDeps['log'],
  fires: Partial<Record<WebTriggerKind, WebTrigger['fire']>>,
): Promise<Partial<Record<WebTriggerKind, WebTrigger>>> {
  const made = await Promise.all(WEB_TRIGGER_KINDS.map(async (kind) => {
    const fire = fires[kind];
    if (!fire) return [];
    const words = TRIGGER_WORDS[kind];
    try {
      const { token, created, file } = await services.triggerToken(kind, camera.id);
      const base = services.watchUrl?.replace(/\/$/, '') ?? '';
      const where = `${base}${webTriggerPath(kind, camera.id, '<secret>')}, the secret being this camera's entry ("${camera.id}") in ${file} (readable by the Homebridge user only), or "${words.button}" on the plugin's page in the Homebridge UI`;
      log.info(created
        ? `${words.name} web trigger made: let ${words.caller} POST to ${where}. Keep it secret (${words.does}).`
        : `${words.name} web trigger on: POST to ${where}. Delete the camera's entry in that file to make a new one.`);
      return [[kind, { token, fire }] as const];
    } catch (error) {
      log.error(`The ${words.name.toLowerCase()} web trigger is off: its secret could not be read or saved (${error instanceof Error ? error.message : String(error)}).`);
      return [];
    }
  }));
  return Object.fromEntries(made.flat());
}

function describeSource(camera: CameraConfig): string {
  return camera.source.kind === 'rtsp' ? displayRtspUrl(camera.source.url, camera.source.username)
    : camera.source.kind === 'onvif' ? `ONVIF ${camera.source.onvif.host}:${camera.source.onvif.port}`
      : 'the built-in demo picture';
}

/**
 * How a camera's speaker is opened: its `talkUrl` (an HTTP sound stream) when set, else the ONVIF
 * back-channel of its RTSP address. Undefined when it has neither (the demo camera).
 */
function speakerOf(camera: CameraConfig, log: Logger, onvifDevice: (() => Promise<ConnectedOnvifDevice>) | undefined): ((onClosed: (error: Error) => void) => Promise<TalkOutput>) | undefined {
  const talkUrl = camera.talkUrl;
  if (talkUrl) {
    const credentials = webAddressCredentials(camera, talkUrl);
    return (onClosed) => openHttpSpeaker({ url: talkUrl, encoding: camera.talkFormat, ...(credentials ? { credentials } : {}), cameraName: camera.name, log, onClosed });
  }
  const talkAddress = cameraTalkAddress(camera, onvifDevice ? { onvifDevice } : {});
  if (!talkAddress) return undefined;
  return async (onClosed) => {
    const address = await talkAddress();
    return RtspBackchannel.open({ endpoint: rtspEndpoint(address.url, address.username, address.password), cameraName: camera.name, logger: log, onClosed });
  };
}
