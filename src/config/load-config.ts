import { parseRtspUrl, type RtspTarget } from '../rtsp/url.js';
import { parseAddressRanges } from '../util/address-ranges.js';
import { cameraIdFromName } from './camera-id.js';
import { describeErrors, formatPath, printableUrl } from './errors.js';
import { readSchemaFile, type JsonSchema } from './schema-file.js';
import { collectSecrets } from './secrets.js';
import { EXPIRY_MS } from './share-link-expiry.js';
import type {
  CameraConfig,
  CameraSource,
  ConfigMessage,
  DiscoveryConfig,
  FfmpegConfig,
  IceConfig,
  LoadedConfig,
  OnvifEndpoint,
  PluginConfig,
  RestreamConfig,
  RtspTransport,
  ShareLinkExpiry,
  ShareLinksConfig,
  TurnServerConfig,
  ViewerConfig,
  WebConfig,
} from './types.js';
import { SchemaValidator } from './validator.js';

/**
 * Start-up configuration: validates the platform block of config.json against config.schema.json
 * (the very file the Homebridge UI draws its form from) and returns typed settings with defaults.
 *
 * Policy: a bad camera is skipped and the others run; a bad global section falls back to its
 * defaults; nothing here throws for user input and nothing here logs (the caller logs `messages`
 * through a logger that already knows every secret).
 */

export const DEMO_CAMERA_ID = 'demo';
export const DEMO_CAMERA_NAME = 'Demo Camera';

const SECTION_KEYS = ['discovery', 'web', 'shareLinks', 'ice', 'ffmpeg', 'restream'] as const;
type SectionKey = (typeof SECTION_KEYS)[number];

/** Keys Homebridge itself puts in a platform block. */
const HOMEBRIDGE_KEYS = new Set(['platform', '_bridge']);

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
  motion: false,
  motionResetSeconds: 30,
  maxViewers: 10,
  maxHomeKitStreams: 4,
} as const satisfies Partial<RawCamera>;
export const ONVIF_DEFAULTS = { port: 80 } as const;
export const VIEWER_DEFAULTS = { admin: false } as const satisfies Partial<RawViewer>;

/** A camera entry after schema validation and `CAMERA_DEFAULTS`; the schema guarantees this shape. */
interface RawCamera {
  name: string;
  id?: string;
  rtspUrl?: string;
  username?: string;
  password?: string;
  onvif?: { host?: string; port: number; username?: string; password?: string };
  audio: boolean;
  transport: RtspTransport;
  alwaysOn: boolean;
  external: boolean;
  motion: boolean;
  motionResetSeconds: number;
  maxViewers: number;
  maxHomeKitStreams: number;
  snapshotUrl?: string;
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
}

interface RawViewer {
  username: string;
  password: string;
  cameras?: string[];
  admin: boolean;
}

type Dict = Record<string, unknown>;

function isDict(value: unknown): value is Dict {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * A form that was cleared may leave `""` behind; an empty optional field means "not set", so it
 * must not fail a pattern ("rtspUrl must start with rtsp://" for a camera that uses ONVIF).
 */
function dropEmptyStrings(value: unknown): unknown {
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

const CAMERA_BLANK_DEFAULTS: Readonly<Record<string, unknown>> = { ...CAMERA_DEFAULTS, onvif: ONVIF_DEFAULTS };

/** The defaults filled in under what the user set (the user's values win). */
function cameraWithDefaults(entry: unknown): unknown {
  if (!isDict(entry)) return entry;
  const onvif = isDict(entry['onvif']) ? { onvif: { ...ONVIF_DEFAULTS, ...entry['onvif'] } } : {};
  return { ...CAMERA_DEFAULTS, ...entry, ...onvif };
}

function viewerWithDefaults(entry: unknown): unknown {
  return isDict(entry) ? { ...VIEWER_DEFAULTS, ...entry } : entry;
}

/**
 * Errors of the schema's "an RTSP address or an ONVIF host" rule. The loader says that in one
 * sentence of its own (see `camera()`), which is clearer than ajv's alternatives.
 */
function isStreamRuleError(error: { schemaPath: string }): boolean {
  return error.schemaPath.includes('/then/anyOf');
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] ?? 0;
      row[j] = Math.min(current + 1, (row[j - 1] ?? 0) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] ?? 0;
}

function suggest(key: string, known: string[]): string {
  const lower = key.toLowerCase();
  const best = known
    .map((candidate) => ({ candidate, distance: candidate.toLowerCase() === lower ? 0 : levenshtein(lower, candidate.toLowerCase()) }))
    .sort((x, y) => x.distance - y.distance)[0];
  return best && best.distance <= 2 ? ` — did you mean '${best.candidate}'?` : '';
}

/** Paths of settings the schema does not know, with a suggestion for likely typos. */
function unknownSettings(value: unknown, schema: JsonSchema | undefined, segments: Array<string | number>, skip: ReadonlySet<string> = new Set()): string[] {
  if (!schema) return [];
  if (Array.isArray(value)) {
    return value.flatMap((item, i) => unknownSettings(item, schema.items, [...segments, i]));
  }
  if (!isDict(value) || !schema.properties) return [];
  const known = Object.keys(schema.properties);
  const found: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    if (skip.has(key)) continue;
    const childSchema = schema.properties[key];
    if (!childSchema) {
      found.push(`unknown setting '${formatPath([...segments, key])}' is ignored${suggest(key, known)}`);
      continue;
    }
    found.push(...unknownSettings(child, childSchema, [...segments, key]));
  }
  return found;
}

function cameraLabel(raw: unknown, index: number): string {
  const name = isDict(raw) && typeof raw['name'] === 'string' && raw['name'].trim() ? raw['name'].trim() : undefined;
  return `Camera ${name ? `'${name}'` : `#${index + 1}`} (cameras[${index}])`;
}

function viewerLabel(raw: unknown, index: number): string {
  const name = isDict(raw) && typeof raw['username'] === 'string' ? raw['username'] : undefined;
  return `Viewer ${name ? `'${name}'` : `#${index + 1}`} (viewers[${index}])`;
}

class ConfigLoader {
  readonly messages: ConfigMessage[] = [];
  private readonly validator: SchemaValidator;
  private readonly root: JsonSchema;

  constructor(schema: JsonSchema) {
    this.root = schema;
    this.validator = new SchemaValidator(schema);
  }

  private say(level: ConfigMessage['level'], text: string): void {
    this.messages.push({ level, text });
  }

  private prop(key: string): JsonSchema {
    const schema = this.root.properties?.[key];
    if (!schema) throw new Error(`config.schema.json has no '${key}' property`);
    return schema;
  }

  load(input: unknown): PluginConfig {
    let raw: Dict;
    if (isDict(input)) {
      raw = dropEmptyStrings(input) as Dict;
    } else {
      this.say('error', 'The plugin settings are not a JSON object; using the defaults. Open the plugin settings in the Homebridge UI and save them again.');
      raw = {};
    }
    // Camera and viewer typos are reported below, with the camera's or viewer's label.
    const { cameras: rawCameras, viewers: rawViewers, ...globals } = raw;
    // An empty TURN entry left by the form is not a server.
    if (isDict(globals['ice']) && Array.isArray(globals['ice']['turnServers'])) {
      globals['ice'] = { ...globals['ice'], turnServers: globals['ice']['turnServers'].filter((entry) => !isBlankEntry(entry)) };
      raw['ice'] = globals['ice'];
    }
    for (const text of unknownSettings(globals, this.root, [], HOMEBRIDGE_KEYS)) this.say('warn', sentenceEnd(capitalise(text)));

    const name = this.scalar(raw, 'name', 'string') as string;
    const demo = this.scalar(raw, 'demo', 'boolean') as boolean;
    const sections = Object.fromEntries(SECTION_KEYS.map((key) => [key, this.section(raw, key)])) as Record<SectionKey, Dict>;
    const configured = this.cameras(rawCameras);
    // The demo stands in only when no camera is configured at all, never for cameras that failed.
    const noneConfigured = rawCameras === undefined || (Array.isArray(rawCameras) && rawCameras.every((entry) => isBlankEntry(entry, CAMERA_BLANK_DEFAULTS)));
    const cameras = noneConfigured && demo ? [this.demoCamera()] : configured;
    const viewers = this.viewers(rawViewers, new Set(cameras.map((c) => c.id)));

    return {
      name,
      cameras,
      demo,
      discovery: toDiscovery(sections.discovery),
      web: toWeb(sections.web),
      viewers,
      shareLinks: toShareLinks(sections.shareLinks),
      ice: toIce(sections.ice),
      ffmpeg: toFfmpeg(sections.ffmpeg),
      restream: toRestream(sections.restream),
    };
  }

  /** A top-level scalar (`name`, `demo`): falls back to its default when invalid. */
  private scalar(raw: Dict, key: string, type: 'string' | 'boolean'): unknown {
    const schema = this.prop(key);
    const value = raw[key];
    if (value === undefined) return schema.default;
    const result = this.validator.check(schema)(value);
    if (result.valid && typeof result.value === type) return result.value;
    const problems = describeErrors(result.errors, { root: schema, data: value, printBase: [key] });
    this.say('warn', `${problems.join('; ') || `${key} is invalid`}; using the default (${JSON.stringify(schema.default)}).`);
    return schema.default;
  }

  private section(raw: Dict, key: SectionKey): Dict {
    const schema = this.prop(key);
    const value = raw[key];
    const result = this.validator.check(schema)(value ?? {});
    const problems = result.valid
      ? crossCheck(key, result.value as Dict)
      : describeErrors(result.errors, { root: schema, data: value, printBase: [key] });
    if (problems.length === 0) return result.value as Dict;
    this.say('warn', `${problems.join('; ')}. Using the default '${key}' settings until this is fixed in the plugin settings.`);
    return this.validator.defaults(schema);
  }

  private cameraSchema(): JsonSchema {
    const items = this.prop('cameras').items;
    if (!items) throw new Error('config.schema.json: cameras has no items');
    return items;
  }

  private cameras(value: unknown): CameraConfig[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.say('error', 'cameras must be a list of cameras; no camera is started. Open the plugin settings and add the cameras again.');
      return [];
    }
    const schema = this.cameraSchema();
    const check = this.validator.check(schema);
    const cameras: CameraConfig[] = [];
    const ids = new Map<string, string>();
    value.forEach((entry, index) => {
      if (isBlankEntry(entry, CAMERA_BLANK_DEFAULTS)) return;
      const label = cameraLabel(entry, index);
      for (const text of unknownSettings(entry, schema, [])) this.say('warn', `${label}: ${sentenceEnd(text)}`);
      const checked = check(cameraWithDefaults(entry));
      // A missing stream is said by camera() in one sentence; other errors skip the camera here.
      const errors = checked.errors.filter((e) => !isStreamRuleError(e));
      const result = { ...checked, valid: errors.length === 0, errors };
      if (!result.valid) {
        const where = isDict(entry) ? { printBase: [] } : { printBase: ['cameras', index] };
        const problems = describeErrors(result.errors, { root: schema, data: entry, schemaBase: ['cameras', index], ...where });
        this.say('error', `${label}: ${problems.join('; ')}. This camera is skipped until that is fixed; the other cameras run.`);
        return;
      }
      const camera = this.camera(result.value as RawCamera, index, label);
      if (!camera) return;
      const clash = ids.get(camera.id);
      if (clash) {
        this.say(
          'error',
          `${label}: its id '${camera.id}' is already used by ${clash}. Camera ids must be unique: give this camera another name or set a different "id" (Advanced). This camera is skipped.`,
        );
        return;
      }
      ids.set(camera.id, label);
      cameras.push(camera);
    });
    return cameras;
  }

  /** Cross-field rules of one schema-valid camera; undefined (and an error said) when unusable. */
  private camera(raw: RawCamera, index: number, label: string): CameraConfig | undefined {
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
      const url = rtspUrlWithCredentials(raw, problems, warnings);
      if (url) source = { kind: 'rtsp', url };
    } else if (onvif) {
      source = { kind: 'onvif', onvif };
    } else {
      problems.push('it has no stream: set rtspUrl, the RTSP address (e.g. rtsp://192.168.0.20:554/live1.sdp), or onvif.host, the ONVIF camera address (e.g. 192.168.0.20)');
    }

    let motion = raw.motion;
    if (motion && !onvif) {
      warnings.push('motion needs ONVIF (set onvif.host); the motion sensor is off');
      motion = false;
    }
    if (raw.snapshotUrl && !URL.canParse(raw.snapshotUrl)) {
      problems.push(`snapshotUrl is not a valid address (it is "${printableUrl(raw.snapshotUrl)}") — e.g. http://192.168.0.20/image.jpg`);
    }

    for (const warning of warnings) this.say('warn', `${label}: ${warning}.`);
    if (problems.length > 0 || !source) {
      this.say('error', `${label}: ${problems.join('; ')}. This camera is skipped until that is fixed; the other cameras run.`);
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
      transport: raw.transport,
      alwaysOn: raw.alwaysOn,
      external: raw.external,
      motion,
      motionResetSeconds: raw.motionResetSeconds,
      maxViewers: raw.maxViewers,
      maxHomeKitStreams: raw.maxHomeKitStreams,
      snapshotUrl: raw.snapshotUrl,
      manufacturer: raw.manufacturer ?? 'WebRTC Cameras',
      model: raw.model ?? (source.kind === 'onvif' ? 'ONVIF camera' : 'RTSP camera'),
      serialNumber: raw.serialNumber ?? id,
    };
  }

  /** The built-in test camera; its settings are the camera defaults (CAMERA_DEFAULTS). */
  private demoCamera(): CameraConfig {
    const raw = CAMERA_DEFAULTS;
    return {
      index: -1,
      name: DEMO_CAMERA_NAME,
      id: DEMO_CAMERA_ID,
      source: { kind: 'demo' },
      audio: raw.audio,
      transport: raw.transport,
      alwaysOn: raw.alwaysOn,
      external: false,
      motion: false,
      motionResetSeconds: raw.motionResetSeconds,
      maxViewers: raw.maxViewers,
      maxHomeKitStreams: raw.maxHomeKitStreams,
      manufacturer: 'WebRTC Cameras',
      model: 'Demo camera',
      serialNumber: DEMO_CAMERA_ID,
    };
  }

  private viewers(value: unknown, cameraIds: ReadonlySet<string>): ViewerConfig[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.say('warn', 'viewers must be a list; no viewer accounts are set up.');
      return [];
    }
    const schema = this.prop('viewers').items;
    if (!schema) throw new Error('config.schema.json: viewers has no items');
    const check = this.validator.check(schema);
    const viewers: ViewerConfig[] = [];
    const names = new Set<string>();
    value.forEach((entry, index) => {
      if (isBlankEntry(entry, VIEWER_DEFAULTS)) return;
      const label = viewerLabel(entry, index);
      for (const text of unknownSettings(entry, schema, [])) this.say('warn', `${label}: ${sentenceEnd(text)}`);
      const result = check(viewerWithDefaults(entry));
      if (!result.valid) {
        const problems = describeErrors(result.errors, { root: schema, data: entry, schemaBase: ['viewers', index] });
        this.say('error', `${label}: ${problems.join('; ')}. This viewer cannot log in until that is fixed.`);
        return;
      }
      const raw = result.value as RawViewer;
      if (names.has(raw.username)) {
        this.say('error', `${label}: the user name '${raw.username}' is used twice; this entry is ignored.`);
        return;
      }
      names.add(raw.username);
      const cameras = raw.cameras ?? [];
      const unknown = cameras.filter((id) => !cameraIds.has(id));
      if (unknown.length > 0) {
        this.say('warn', `${label}: no camera has the id ${unknown.map((id) => `'${id}'`).join(', ')}; known ids: ${[...cameraIds].join(', ') || 'none'}.`);
      }
      viewers.push({ username: raw.username, password: raw.password, cameras, admin: raw.admin });
    });
    return viewers;
  }
}

function sentenceEnd(text: string): string {
  return /[.?!]$/.test(text) ? text : `${text}.`;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The camera URL with the separate user name/password fields merged in (the fields win, since they
 * are what the user typed last in the form). The text is split by `parseRtspUrl` first, the same
 * reader the RTSP client uses: a raw '#', '?', '@' or ':' typed into a password is common, and
 * `new URL` alone either refuses it or, worse, reads part of the password as the host. The result
 * carries the credentials percent-encoded (the URL setters encode '#', '?', '@', ':', '/'), which
 * `parseRtspUrl` decodes again.
 */
function rtspUrlWithCredentials(raw: RawCamera, problems: string[], warnings: string[]): string | undefined {
  const text = raw.rtspUrl ?? '';
  let target: RtspTarget;
  try {
    target = parseRtspUrl(text);
  } catch (error) {
    if (error instanceof Error && error.message === 'URL without a host') {
      problems.push('rtspUrl has no camera address after rtsp:// — e.g. rtsp://192.168.0.20:554/live1.sdp');
    } else {
      problems.push(`rtspUrl is not a valid address (it is "${printableUrl(text)}"); check the port number and the characters — e.g. rtsp://192.168.0.20:554/live1.sdp`);
    }
    return undefined;
  }
  const url = new URL(target.url);
  let username = target.username ?? '';
  let password = target.password ?? '';
  if (raw.username !== undefined) {
    if (username || password) warnings.push('the user name and password fields replace the log-in written in rtspUrl');
    username = raw.username;
    password = raw.password ?? '';
  } else if (raw.password !== undefined) {
    if (username) {
      password = raw.password;
    } else {
      warnings.push('a password is set without a user name; set "username" too, or the camera will not accept it');
    }
  }
  url.username = encodeURIComponent(username);
  url.password = encodeURIComponent(password);
  return url.toString();
}

/** Rules spanning several fields of a section; each returned sentence invalidates the section. */
function crossCheck(key: SectionKey, section: Dict): string[] {
  const problems: string[] = [];
  if (key === 'ice') {
    const min = section['udpPortMin'];
    const max = section['udpPortMax'];
    if ((min === undefined) !== (max === undefined)) {
      problems.push('ice.udpPortMin and ice.udpPortMax must be set together (or both left empty) — e.g. 50000 and 50100');
    } else if (typeof min === 'number' && typeof max === 'number' && min > max) {
      problems.push(`ice.udpPortMin (${min}) must not be above ice.udpPortMax (${max})`);
    }
  }
  if (key === 'web') {
    const tls = isDict(section['tls']) ? section['tls'] : {};
    if ((tls['certPath'] === undefined) !== (tls['keyPath'] === undefined)) {
      problems.push('web.tls.certPath and web.tls.keyPath must be set together: a certificate needs its key');
    }
    const redirect = tls['redirectHttpPort'];
    if (typeof redirect === 'number' && redirect === section['port']) {
      problems.push(`web.tls.redirectHttpPort (${redirect}) must differ from web.port: the redirect needs a port of its own`);
    }
    const proxies = section['trustedProxies'];
    if (Array.isArray(proxies)) {
      try {
        parseAddressRanges(proxies as string[]);
      } catch (error) {
        problems.push(`web.trustedProxies: ${(error as Error).message}`);
      }
    }
    const publicUrl = section['publicUrl'];
    if (typeof publicUrl === 'string' && !URL.canParse(publicUrl)) {
      problems.push(`web.publicUrl is not a valid address (it is "${printableUrl(publicUrl)}") — e.g. https://cameras.example.com`);
    }
  }
  if (key === 'restream' && section['lanAccess'] === true && (section['username'] === undefined || section['password'] === undefined)) {
    problems.push('restream.lanAccess needs restream.username and restream.password, so that nobody on your network watches without them');
  }
  return problems;
}

function toDiscovery(s: Dict): DiscoveryConfig {
  const probeAddresses = ((s['probeAddresses'] as string[] | undefined) ?? []).map((entry) => {
    const [address, port] = entry.split(':');
    return { address: address!, port: port ? Number(port) : 3702 };
  });
  return { enabled: s['enabled'] === true, interfaces: (s['interfaces'] as string[] | undefined) ?? [], probeAddresses };
}

function toWeb(s: Dict): WebConfig {
  const tls = (s['tls'] ?? {}) as Dict;
  return {
    port: s['port'] as number,
    bind: s['bind'] as string,
    publicUrl: s['publicUrl'] as string | undefined,
    allowedOrigins: ((s['allowedOrigins'] as string[] | undefined) ?? []).map(normalizeOrigin),
    trustedProxies: (s['trustedProxies'] as string[] | undefined) ?? [],
    tls: {
      selfSigned: tls['selfSigned'] === true,
      certPath: tls['certPath'] as string | undefined,
      keyPath: tls['keyPath'] as string | undefined,
      ...(typeof tls['redirectHttpPort'] === 'number' ? { redirectHttpPort: tls['redirectHttpPort'] } : {}),
    },
  };
}

/** As browsers serialise an Origin header: lower-case scheme and host, default port dropped, no slash. */
function normalizeOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    // The schema's pattern already refused it; keep the text so the policy simply never matches.
    return origin.toLowerCase();
  }
}

function toShareLinks(s: Dict): ShareLinksConfig {
  const defaultExpiry = s['defaultExpiry'] as ShareLinkExpiry | 'never';
  return { defaultExpiry, defaultExpiryMs: defaultExpiry === 'never' ? null : EXPIRY_MS[defaultExpiry] };
}

function toIce(s: Dict): IceConfig {
  return {
    stunServers: (s['stunServers'] as string[] | undefined) ?? [],
    turnServers: (s['turnServers'] as TurnServerConfig[] | undefined) ?? [],
    udpPortMin: s['udpPortMin'] as number | undefined,
    udpPortMax: s['udpPortMax'] as number | undefined,
    announcedAddresses: (s['announcedAddresses'] as string[] | undefined) ?? [],
    iceTcp: s['iceTcp'] === true,
  };
}

function toFfmpeg(s: Dict): FfmpegConfig {
  // The HomeKit encoder settings appear only when set, so a plain config reads as before.
  const optional = (key: 'videoEncoder' | 'encoderOptions'): Partial<FfmpegConfig> =>
    typeof s[key] === 'string' && (s[key] as string).trim() ? { [key]: (s[key] as string).trim() } : {};
  return {
    videoProcessor: s['videoProcessor'] as string | undefined,
    debug: s['debug'] === true,
    ...optional('videoEncoder'),
    ...optional('encoderOptions'),
    ...(typeof s['streamTimeoutSeconds'] === 'number' ? { streamTimeoutSeconds: s['streamTimeoutSeconds'] } : {}),
  };
}

function toRestream(s: Dict): RestreamConfig {
  return {
    port: s['port'] as number,
    lanAccess: s['lanAccess'] === true,
    username: s['username'] as string | undefined,
    password: s['password'] as string | undefined,
  };
}

export interface LoadConfigOptions {
  /** Another schema file (tests); default: the package's config.schema.json. */
  schemaPath?: string;
}

/** Validates a platform config block. Never throws for bad user input; see `LoadedConfig`. */
export function loadConfig(input: unknown, options: LoadConfigOptions = {}): LoadedConfig {
  const secrets = collectSecrets(input);
  const loader = new ConfigLoader(readSchemaFile(options.schemaPath).schema);
  const config = loader.load(input);
  return { config, secrets, messages: loader.messages };
}

/** "Camera 'Porch' (cameras[1])", or "Camera 'Demo Camera' (demo)": how messages name a camera. */
export function describeCamera(camera: Pick<CameraConfig, 'name' | 'index'>): string {
  return camera.index < 0 ? `Camera '${camera.name}' (demo)` : `Camera '${camera.name}' (cameras[${camera.index}])`;
}
