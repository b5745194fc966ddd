/**
 * Start-up configuration: validates the platform block of config.json against config.schema.json
 * (the very file the Homebridge UI draws its form from) and returns typed settings with defaults.
 *
 * Policy: a bad camera is skipped and the others run; a bad global section falls back to its
 * defaults; nothing here throws for user input and nothing here logs (the caller logs `messages`
 * through a logger that already knows every secret).
 *
 * The parts: defaults.ts (defaults the schema does not carry, blank entries), unknown-settings.ts
 * (typos), sections.ts (the global sections), camera-entry.ts (one camera's cross-field rules).
 */
import { describeErrors } from './errors.js';
import { readSchemaFile, type JsonSchema } from './schema-file.js';
import { collectSecrets } from './secrets.js';
import type { CameraConfig, ConfigMessage, LoadedConfig, PluginConfig, ViewerConfig } from './types.js';
import { SchemaValidator } from './validator.js';
import {
  CAMERA_BLANK_DEFAULTS,
  VIEWER_DEFAULTS,
  cameraWithDefaults,
  dropEmptyStrings,
  isBlankEntry,
  isDict,
  viewerWithDefaults,
  type Dict,
  type RawCamera,
  type RawViewer,
} from './defaults.js';
import { unknownSettings } from './unknown-settings.js';
import { SECTION_KEYS, crossCheck, toDiscovery, toFfmpeg, toIce, toRestream, toScaleOut, toShareLinks, toWeb, type SectionKey } from './sections.js';
import { cameraFromEntry, cameraLabel, demoCamera, viewerLabel } from './camera-entry.js';

// Moved to defaults.ts; re-exported for the modules that import them from here.
export { CAMERA_DEFAULTS, DEMO_CAMERA_ID, DEMO_CAMERA_NAME, ONVIF_DEFAULTS, VIEWER_DEFAULTS, isBlankEntry } from './defaults.js';
export { EXPIRY_MS } from './share-link-expiry.js';

/** Keys Homebridge itself puts in a platform block. */
const HOMEBRIDGE_KEYS = new Set(['platform', '_bridge']);

/**
 * Errors of the schema's "an RTSP address or an ONVIF host" rule. The loader says that in one
 * sentence of its own (see `camera()`), which is clearer than ajv's alternatives.
 */
function isStreamRuleError(error: { schemaPath: string }): boolean {
  return error.schemaPath.includes('/then/anyOf');
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
    // Nor is an empty gateway entry.
    if (isDict(globals['scaleOut']) && Array.isArray(globals['scaleOut']['janus'])) {
      globals['scaleOut'] = { ...globals['scaleOut'], janus: globals['scaleOut']['janus'].filter((entry) => !isBlankEntry(entry)) };
      raw['scaleOut'] = globals['scaleOut'];
    }
    for (const text of unknownSettings(globals, this.root, [], HOMEBRIDGE_KEYS)) this.say('warn', sentenceEnd(capitalise(text)));

    const name = this.scalar(raw, 'name', 'string') as string;
    const demo = this.scalar(raw, 'demo', 'boolean') as boolean;
    const sections = Object.fromEntries(SECTION_KEYS.map((key) => [key, this.section(raw, key)])) as Record<SectionKey, Dict>;
    const configured = this.cameras(rawCameras);
    // The demo stands in only when no camera is configured at all, never for cameras that failed.
    const noneConfigured = rawCameras === undefined || (Array.isArray(rawCameras) && rawCameras.every((entry) => isBlankEntry(entry, CAMERA_BLANK_DEFAULTS)));
    const cameras = noneConfigured && demo ? [demoCamera()] : configured;
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
      scaleOut: toScaleOut(sections.scaleOut),
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
      const camera = cameraFromEntry(result.value as RawCamera, index, label, (level, text) => this.say(level, text));
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
      viewers.push({ username: raw.username, password: raw.password, cameras, admin: raw.admin, ptz: raw.ptz, talk: raw.talk });
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
