/**
 * One camera entry that passed the schema, turned into a `CameraConfig`: the rules across its
 * fields (a stream from rtspUrl or ONVIF, ONVIF motion only with ONVIF, motion from a web address,
 * what starts a HomeKit Secure Video recording, the RTSP log-in taken from the fields or split off the typed URL), its id and HomeKit
 * names; and the demo camera.
 */
import { splitRtspLogin, type RtspLoginSplit } from '../rtsp/url.js';
import { cameraIdFromName } from './camera-id.js';
import { printableUrl } from './errors.js';
import { CAMERA_DEFAULTS, DEMO_CAMERA_ID, DEMO_CAMERA_NAME, isDict, type RawCamera } from './defaults.js';
import type { CameraConfig, CameraSource, ConfigMessage, DoorbellConfig, OnvifEndpoint, RecordingConfig } from './types.js';

/** How the loader collects a message. */
export type Say = (level: ConfigMessage['level'], text: string) => void;

export function cameraLabel(raw: unknown, index: number): string {
  const name = isDict(raw) && typeof raw['name'] === 'string' && raw['name'].trim() ? raw['name'].trim() : undefined;
  return `Camera ${name ? `'${name}'` : `#${index + 1}`} (cameras[${index}])`;
}

export function viewerLabel(raw: unknown, index: number): string {
  const name = isDict(raw) && typeof raw['username'] === 'string' ? raw['username'] : undefined;
  return `Viewer ${name ? `'${name}'` : `#${index + 1}`} (viewers[${index}])`;
}

/** Cross-field rules of one schema-valid camera; undefined (and an error said) when unusable. */
export function cameraFromEntry(raw: RawCamera, index: number, label: string, say: Say): CameraConfig | undefined {
  const problems: string[] = [];
  const warnings: string[] = [];

  let onvif: OnvifEndpoint | undefined;
  if (raw.onvif?.host) {
    onvif = {
      host: raw.onvif.host,
      port: raw.onvif.port,
      username: raw.onvif.username ?? raw.username,
      password: raw.onvif.password ?? raw.password,
    };
  } else if (raw.onvif && (raw.onvif.username !== undefined || raw.onvif.password !== undefined)) {
    warnings.push('the ONVIF log-in is ignored because onvif.host (the camera address) is empty');
  }

  let source: CameraSource | undefined;
  if (raw.rtspUrl) {
    source = rtspSource(raw, problems, warnings);
  } else if (onvif) {
    source = { kind: 'onvif', onvif };
  } else {
    problems.push('it has no stream: set rtspUrl, the RTSP address (e.g. rtsp://192.168.0.20:554/live1.sdp), or onvif.host, the ONVIF camera address (e.g. 192.168.0.20)');
  }

  let motion = raw.motion;
  let motionHttpTrigger = raw.motionHttpTrigger;
  if (motion && !onvif) {
    warnings.push(motionHttpTrigger
      ? 'motion (the camera\'s ONVIF motion events) needs ONVIF (set onvif.host); the motion sensor follows only the camera\'s calls of its web address (motionHttpTrigger)'
      : 'motion needs ONVIF (set onvif.host); the motion sensor is off. A camera that can call a web address on motion can drive it with motionHttpTrigger');
    motion = false;
  }
  let ptzPresetSwitches = raw.ptzPresetSwitches?.map((p) => p.trim()).filter((p) => p.length > 0);
  if (ptzPresetSwitches?.length && !onvif) {
    warnings.push('ptzPresetSwitches needs ONVIF (set onvif.host); no preset switches are added');
    ptzPresetSwitches = undefined;
  }
  const doorbell = doorbellFrom(raw, onvif !== undefined, warnings);
  let videoMotion = raw.videoMotion;
  const recording = recordingFrom(raw, onvif !== undefined, motion || motionHttpTrigger || videoMotion || doorbell !== undefined, warnings);
  // Recording on motion needs the motion sensor: HAP starts a recording when it detects motion.
  if (recording?.motionSource === 'onvif') motion = true;
  if (recording?.motionSource === 'http') motionHttpTrigger = true;
  if (recording?.motionSource === 'video') videoMotion = true;
  const tamperSensor = raw.tamperSensor && sensorAllowed('tamperSensor', 'it shows as "tampered" on the motion sensor, so set motion (or motionHttpTrigger) too', onvif !== undefined, motion || motionHttpTrigger || videoMotion, warnings);
  const crossingSensor = raw.crossingSensor && sensorAllowed('crossingSensor', undefined, onvif !== undefined, true, warnings);
  if (raw.talkUrl && !URL.canParse(raw.talkUrl)) {
    problems.push(`talkUrl is not a valid address (it is "${printableUrl(raw.talkUrl)}") — e.g. http://192.168.0.20/axis-cgi/audio/transmit.cgi`);
  }
  if (raw.talkUrl && !raw.twoWayAudio) warnings.push('talkUrl is set but twoWayAudio is off, so nobody can talk through the camera');
  if (raw.snapshotUrl && !URL.canParse(raw.snapshotUrl)) {
    problems.push(`snapshotUrl is not a valid address (it is "${printableUrl(raw.snapshotUrl)}") — e.g. http://192.168.0.20/image.jpg`);
  }

  for (const warning of warnings) say('warn', `${label}: ${warning}.`);
  if (problems.length > 0 || !source) {
    say('error', `${label}: ${problems.join('; ')}. This camera is skipped until that is fixed; the other cameras run.`);
    return undefined;
  }

  const id = raw.id ?? cameraIdFromName(raw.name, `camera-${index + 1}`);
  return {
    index,
    name: raw.name.trim(),
    id,
    source,
    onvif,
    audio: raw.audio,
    twoWayAudio: raw.twoWayAudio,
    ...(raw.talkUrl ? { talkUrl: raw.talkUrl } : {}),
    talkFormat: raw.talkFormat,
    transport: raw.transport,
    alwaysOn: raw.alwaysOn,
    external: raw.external,
    scaleOut: raw.scaleOut,
    motion,
    motionHttpTrigger,
    videoMotion,
    videoMotionSensitivity: raw.videoMotionSensitivity,
    motionResetSeconds: raw.motionResetSeconds,
    ...(doorbell ? { doorbell } : {}),
    ...(recording ? { recording } : {}),
    tamperSensor,
    crossingSensor,
    maxViewers: raw.maxViewers,
    maxHomeKitStreams: raw.maxHomeKitStreams,
    snapshotUrl: raw.snapshotUrl,
    manufacturer: raw.manufacturer ?? 'WebRTC Cameras',
    model: raw.model ?? (source.kind === 'onvif' ? 'ONVIF camera' : 'RTSP camera'),
    serialNumber: raw.serialNumber ?? id,
    ...(ptzPresetSwitches?.length ? { ptzPresetSwitches: [...new Set(ptzPresetSwitches)] } : {}),
  };
}

/** The built-in test camera; its settings are the camera defaults (CAMERA_DEFAULTS). */
export function demoCamera(): CameraConfig {
  const raw = CAMERA_DEFAULTS;
  return {
    index: -1,
    name: DEMO_CAMERA_NAME,
    id: DEMO_CAMERA_ID,
    source: { kind: 'demo' },
    audio: raw.audio,
    // The demo camera has no speaker.
    twoWayAudio: false,
    talkFormat: raw.talkFormat,
    transport: raw.transport,
    alwaysOn: raw.alwaysOn,
    external: false,
    scaleOut: false,
    motion: false,
    motionHttpTrigger: false,
    videoMotion: false,
    videoMotionSensitivity: raw.videoMotionSensitivity,
    motionResetSeconds: raw.motionResetSeconds,
    tamperSensor: false,
    crossingSensor: false,
    maxViewers: raw.maxViewers,
    maxHomeKitStreams: raw.maxHomeKitStreams,
    manufacturer: 'WebRTC Cameras',
    model: 'Demo camera',
    serialNumber: DEMO_CAMERA_ID,
  };
}

/**
 * The camera URL without user info, and the log-in as separate fields: the user name/password
 * settings win over a log-in typed into the URL (they are what the user typed last in the form).
 * `splitRtspLogin` is the one split of a URL's user info; from here the fields travel as they are
 * to the RTSP session.
 */
function rtspSource(raw: RawCamera, problems: string[], warnings: string[]): Extract<CameraSource, { kind: 'rtsp' }> | undefined {
  const text = raw.rtspUrl ?? '';
  let split: RtspLoginSplit;
  try {
    split = splitRtspLogin(text, { username: raw.username, password: raw.password });
  } catch (error) {
    if (error instanceof Error && error.message === 'URL without a host') {
      problems.push('rtspUrl has no camera address after rtsp:// — e.g. rtsp://192.168.0.20:554/live1.sdp');
    } else {
      problems.push(`rtspUrl is not a valid address (it is "${printableUrl(text)}"); check the port number and the characters — e.g. rtsp://192.168.0.20:554/live1.sdp`);
    }
    return undefined;
  }
  if (split.replacedUrlLogin) warnings.push('the user name and password fields replace the log-in written in rtspUrl');
  if (split.passwordWithoutUser) warnings.push('a password is set without a user name; set "username" too, or the camera will not accept it');
  return { kind: 'rtsp', ...split.login };
}

/**
 * The doorbell setting: presses come from ONVIF events (needs onvif.host) and/or the HTTP trigger.
 * A doorbell with neither is still published as one (so the accessory does not change kind when
 * ONVIF is added later), with a warning that nothing can ring it yet.
 */
function doorbellFrom(raw: RawCamera, hasOnvif: boolean, warnings: string[]): DoorbellConfig | undefined {
  const setting = raw.doorbell;
  if (!setting?.enabled) {
    if (setting?.topic !== undefined || setting?.httpTrigger) warnings.push('doorbell.topic and doorbell.httpTrigger are ignored because the doorbell is off (set doorbell.enabled)');
    return undefined;
  }
  const httpTrigger = setting.httpTrigger === true;
  if (!hasOnvif && setting.topic !== undefined) warnings.push('doorbell.topic is an ONVIF event topic and needs onvif.host; it is ignored');
  if (!hasOnvif && !httpTrigger) {
    warnings.push('nothing can ring the doorbell yet: set onvif.host (the camera\'s ONVIF doorbell events) or doorbell.httpTrigger (the camera calls a web address)');
  }
  return { topics: hasOnvif && setting.topic !== undefined ? [setting.topic] : [], httpTrigger, onvif: hasOnvif };
}

/**
 * The recording setting (HomeKit Secure Video). Unset, the motion source is the motion web address
 * when `motionHttpTrigger` asks for one (the user chose it for this camera), else the picture when
 * `videoMotion` is on, else the camera's ONVIF
 * motion when it has ONVIF. A recording camera that nothing can start a recording for (no motion
 * source, no doorbell) still offers recording, so the accessory does not change when ONVIF is added later,
 * with a warning that nothing starts one yet. `triggered`: a motion sensor or doorbell is on anyway.
 */
function recordingFrom(raw: RawCamera, hasOnvif: boolean, triggered: boolean, warnings: string[]): RecordingConfig | undefined {
  const setting = raw.recording;
  if (!setting?.enabled) {
    // An explicit `enabled: false` (the UI's "Stop HomeKit recording") keeps the other choices for
    // the next time on, on purpose; only fields set without `enabled` at all look like a mistake.
    if (setting?.enabled === undefined && (setting?.prebufferSeconds !== undefined || setting?.motionSource !== undefined)) {
      warnings.push('recording.prebufferSeconds and recording.motionSource are ignored because recording is off (set recording.enabled)');
    }
    return undefined;
  }
  let motionSource = setting.motionSource ?? (raw.motionHttpTrigger ? 'http' : raw.videoMotion ? 'video' : hasOnvif ? 'onvif' : 'none');
  if (motionSource === 'onvif' && !hasOnvif) {
    warnings.push('recording.motionSource "onvif" needs ONVIF (set onvif.host); no motion sensor is added for recordings (a camera that calls a web address on motion can use "http")');
    motionSource = 'none';
  }
  if (motionSource === 'none' && !triggered) {
    warnings.push('nothing starts a HomeKit Secure Video recording yet: set onvif.host (the camera\'s ONVIF motion events start one), recording.motionSource "http" (the camera calls a web address on motion), recording.motionSource "video" (the plugin watches the picture) or make the camera a doorbell (a press starts one)');
  }
  return { ...(setting.prebufferSeconds !== undefined ? { prebufferSeconds: setting.prebufferSeconds } : {}), motionSource };
}

/** An ONVIF event sensor is only offered when the camera has ONVIF (and what else it needs). */
function sensorAllowed(name: string, needsMotion: string | undefined, hasOnvif: boolean, motion: boolean, warnings: string[]): boolean {
  if (!hasOnvif) {
    warnings.push(`${name} needs ONVIF (set onvif.host); it is off`);
    return false;
  }
  if (needsMotion && !motion) {
    warnings.push(`${name} needs the motion sensor: ${needsMotion}; it is off`);
    return false;
  }
  return true;
}
