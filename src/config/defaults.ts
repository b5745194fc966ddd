/**
 * What the loader does to a camera, viewer or TURN entry before the schema sees it: the defaults
 * the schema does not carry, dropping the empty strings a cleared form leaves, and recognising an
 * entry nobody filled in. Also the raw shapes the schema guarantees, and share-link expiry times.
 */
import type { CameraConfig, RecordingMotionSource } from './types.js';

export const DEMO_CAMERA_ID = 'demo';
export const DEMO_CAMERA_NAME = 'Demo Camera';

/**
 * Defaults of the fields of one camera, viewer or ONVIF block. They are not in config.schema.json:
 * the Homebridge UI form starts with one empty camera and one empty viewer and would write every
 * schema default into them, so that saving an untouched form stored a nameless camera. The schema's
 * descriptions name these values ("Empty: 30").
 */
export const CAMERA_DEFAULTS = {
  audio: true,
  transport: 'auto',
  alwaysOn: false,
  external: false,
  scaleOut: false,
  motion: false,
  motionHttpTrigger: false,
  videoMotion: false,
  videoMotionSensitivity: 50,
  twoWayAudio: false,
  talkFormat: 'PCMA',
  motionResetSeconds: 30,
  tamperSensor: false,
  crossingSensor: false,
  maxViewers: 10,
  maxHomeKitStreams: 4,
} as const satisfies Partial<RawCamera>;
export const ONVIF_DEFAULTS = { port: 80 } as const;
/** The web section's viewer caps when not set: a leaf module, because access control and webrtc fall back to them too. */
export { WEB_DEFAULT_CONNECTING_LIMIT, WEB_DEFAULT_VIEWS_LIMIT } from './view-limits.js';
export const VIEWER_DEFAULTS = { admin: false, ptz: false, talk: false } as const satisfies Partial<RawViewer>;

/** A camera entry after schema validation and `CAMERA_DEFAULTS`; the schema guarantees this shape. */
export interface RawCamera extends Pick<CameraConfig, PassedThroughCameraSetting> {
  name: string;
  id?: string;
  rtspUrl?: string;
  username?: string;
  password?: string;
  onvif?: { host?: string; port: number; username?: string; password?: string };
  motion: boolean;
  motionHttpTrigger: boolean;
  videoMotion: boolean;
  /** `doorbell: true` is turned into `{ enabled: true }` before the schema sees it (cameraWithDefaults). */
  doorbell?: { enabled?: boolean; topic?: string; httpTrigger?: boolean };
  /** `recording: true` likewise becomes `{ enabled: true }`. */
  recording?: { enabled?: boolean; prebufferSeconds?: number; motionSource?: RecordingMotionSource };
  tamperSensor: boolean;
  crossingSensor: boolean;
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  ptzPresetSwitches?: string[];
}

/** The camera settings the loader copies into `CameraConfig` unchanged (their type is CameraConfig's). */
type PassedThroughCameraSetting =
  'audio' | 'twoWayAudio' | 'talkUrl' | 'talkFormat' | 'transport' | 'alwaysOn' | 'external' | 'scaleOut' | 'motionResetSeconds' | 'videoMotionSensitivity' | 'maxViewers' | 'maxHomeKitStreams' | 'snapshotUrl';

export interface RawViewer {
  username: string;
  password: string;
  cameras?: string[];
  admin: boolean;
  ptz: boolean;
  talk: boolean;
}

export type Dict = Record<string, unknown>;

export function isDict(value: unknown): value is Dict {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A form that was cleared may leave `""` behind; an empty optional field means "not set", so it
 * must not fail a pattern ("rtspUrl must start with rtsp://" for a camera that uses ONVIF).
 */
export function dropEmptyStrings(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((child) => child !== '' && child !== null).map(dropEmptyStrings);
  if (!isDict(value)) return value;
  const out: Dict = {};
  for (const [key, child] of Object.entries(value)) {
    if (child === '' || child === null) continue;
    out[key] = dropEmptyStrings(child);
  }
  return out;
}

/**
 * True for an array entry with nothing in it: only absent values, empty objects and lists, and
 * values equal to their defaults (what the UI form saves for an item nobody filled in). Such an
 * entry is not a camera (or viewer, or TURN server), so it is ignored without a word.
 */
export function isBlankEntry(value: unknown, defaults: Readonly<Record<string, unknown>> = {}): boolean {
  if (value === undefined || value === null || value === '') return true;
  if (Array.isArray(value)) return value.every((child) => isBlankEntry(child));
  if (!isDict(value)) return false;
  return Object.entries(value).every(([key, child]) => {
    const fallback = defaults[key];
    if (isDict(child) || Array.isArray(child)) return isBlankEntry(child, isDict(fallback) ? fallback : {});
    return isBlankEntry(child) || (fallback !== undefined && child === fallback);
  });
}

/** What the form saves for a camera's checkboxes nobody ticked (the doorbell's, recording's) counts as blank. */
export const CAMERA_BLANK_DEFAULTS: Readonly<Record<string, unknown>> = {
  ...CAMERA_DEFAULTS,
  onvif: ONVIF_DEFAULTS,
  doorbell: { enabled: false, httpTrigger: false },
  recording: { enabled: false },
};

/** Settings that are an object with `enabled`, for which a hand-written `true`/`false` is short for it. */
const SWITCH_OBJECTS = ['doorbell', 'recording'] as const;

/** The defaults filled in under what the user set (the user's values win). */
export function cameraWithDefaults(entry: unknown): unknown {
  if (!isDict(entry)) return entry;
  const onvif = isDict(entry['onvif']) ? { onvif: { ...ONVIF_DEFAULTS, ...entry['onvif'] } } : {};
  // The short form `doorbell: true` (hand-written configs) is the object the form writes.
  const switches = Object.fromEntries(SWITCH_OBJECTS.flatMap((key) => (typeof entry[key] === 'boolean' ? [[key, { enabled: entry[key] }]] : [])));
  return { ...CAMERA_DEFAULTS, ...entry, ...onvif, ...switches };
}

export function viewerWithDefaults(entry: unknown): unknown {
  return isDict(entry) ? { ...VIEWER_DEFAULTS, ...entry } : entry;
}
