/**
 * `/api/admin/*`: what the Homebridge UI's custom page needs from the running plugin. Every route
 * is for the local admin only (the UI server with the admin.json secret, on loopback); watch-page
 * administrators get 403, because a Test connects to an address the caller names, and only the
 * Homebridge UI admin's own configuration input may make the server do that.
 */
import { toCameraStatus, type CameraStatus } from '../web/camera-status.js';
import { HttpError, isCameraId } from '../web/http-util.js';
import type { BroadcastSource, CameraExtras, CameraRegistry, RouteContext, WebRoute } from '../web/types.js';
import type { WebTriggerKind } from '../web/web-trigger.js';
import type { CameraConfig } from '../config/types.js';
import { splitRtspLogin } from '../rtsp/url.js';
import { testConnection, type TestDeps, type TestRequest } from './connection-test.js';
import { isLocalAdmin, type LocalAdmin } from './local-admin.js';

/**
 * A camera's HomeKit Secure Video as the page reads it. Declared here because admin may not import
 * homekit (test/architecture); the runtime hands HomeKitRecordingDelegate.status()
 * (src/homekit/recording/recording-status.ts) to this route, so the compiler checks that it fits.
 */
export interface AdminRecordingStatus {
  state: 'off' | 'buffering' | 'recording' | 'unavailable';
  prebufferSeconds: number;
  bufferedSeconds: number;
  bufferedBytes: number;
  recordings: number;
  lastRecordingAt?: number;
  problem?: string;
}

export interface AdminCameraStatus extends CameraStatus {
  /** Home app streams running now. */
  homekitStreams: number;
  /** Where the stream comes from, without credentials. */
  source: string;
  /** The camera's place in the config's `cameras` list (-1: the demo camera), so the page can edit that entry. */
  configIndex: number;
  /** HomeKit Secure Video; absent when the camera's `recording` setting is off. */
  recording?: AdminRecordingStatus;
  /** Variant encoders running now (viewers that cannot take the camera's codec); absent when none. */
  transcoders?: AdminTranscoderStatus[];
  /** A camera served through the scale-out gateways: on how many it is up, and their viewers; absent otherwise. */
  scaleOut?: { gateways: number; viewers: number };
}

/** One scale-out gateway as the Homebridge UI shows it (its address, never its secrets). */
export interface AdminGatewayStatus {
  url: string;
  state: 'connecting' | 'up' | 'down' | 'stopped';
  viewers: number;
  /** Cameras published on it now. */
  cameras: number;
  /** Why a camera is not published there, by camera id (a codec the gateway cannot relay...). */
  problems: Record<string, string>;
}

/** One running variant encoder: its codec, the picture it encodes, and how far it stepped down to keep up. */
export interface AdminTranscoderStatus {
  codec: 'VP8' | 'H264';
  picture: string;
  stepsDown: number;
}

/** A camera's web trigger address, for the Homebridge UI admin only (the log never shows it). */
export interface AdminWebTrigger {
  camera: string;
  name: string;
  kind: WebTriggerKind;
  /** `/<kind>/<camera>/<secret>`: POST to it on the plugin's web server to ring, or to report motion. */
  path: string;
}

export interface AdminRouteDeps {
  registry: CameraRegistry;
  localAdmin: LocalAdmin;
  cameraExtras: (id: string) => CameraExtras | undefined;
  cameraConfig: (id: string) => CameraConfig | undefined;
  homekitStreams: (id: string) => number;
  /** HomeKit Secure Video of a camera; undefined when its `recording` setting is off. */
  recording?: (id: string) => AdminRecordingStatus | undefined;
  /** The camera's running variant encoders. */
  transcoders?: (id: string) => AdminTranscoderStatus[];
  /** The scale-out gateways and each camera's part in them; absent when none is configured. */
  scaleOut?: {
    camera: (id: string) => { gateways: number; viewers: number } | undefined;
    gateways: () => AdminGatewayStatus[];
  };
  secrets: () => Iterable<string>;
  ffmpegPath: string | undefined;
  /** Every web trigger of every camera (their paths carry the secrets). */
  webTriggers: () => AdminWebTrigger[];
  /** Runs a camera search now; false when discovery is off. */
  discoverNow?: () => Promise<boolean>;
  /** Test deadlines (tests shorten them). */
  testOptions?: Pick<TestDeps, 'keyframeTimeoutMs' | 'measureMs'>;
}

const MAX_FIELD = 256;
const HOST = /^[A-Za-z0-9.-]{1,253}$|^\[?[0-9A-Fa-f:.]{2,45}\]?$/;

function requireLocalAdmin(ctx: RouteContext): void {
  if (!isLocalAdmin(ctx.principal)) throw new HttpError(403, 'forbidden', 'Only the Homebridge UI may do this');
}

function field(record: Record<string, unknown>, name: string, required: boolean): string | undefined {
  const value = record[name];
  if (value === undefined || value === '') {
    if (required) throw new HttpError(400, 'bad-request', `${name} is required`);
    return undefined;
  }
  if (typeof value !== 'string' || value.length > MAX_FIELD) throw new HttpError(400, 'bad-request', `${name} must be text of at most ${MAX_FIELD} characters`);
  return value;
}

/** Parses a Test request; anything unexpected is refused with a reason, never ignored. */
export function parseTestRequest(body: unknown): TestRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'bad-request', 'Send a JSON object');
  const record = body as Record<string, unknown>;
  const allowed: Record<'onvif' | 'rtsp' | 'camera', string[]> = {
    onvif: ['kind', 'host', 'port', 'username', 'password'],
    rtsp: ['kind', 'url', 'username', 'password'],
    camera: ['kind', 'id'],
  };
  const kind = record['kind'];
  if (kind !== 'onvif' && kind !== 'rtsp' && kind !== 'camera') throw new HttpError(400, 'bad-request', 'kind must be "onvif", "rtsp" or "camera"');
  const extra = Object.keys(record).filter((k) => !allowed[kind].includes(k));
  if (extra.length > 0) throw new HttpError(400, 'bad-request', `Unknown field "${extra[0]!.slice(0, 40)}"`);
  if (kind === 'camera') {
    const id = field(record, 'id', true)!;
    if (!isCameraId(id)) throw new HttpError(400, 'bad-request', 'id must be a camera id');
    return { kind, id };
  }
  const username = field(record, 'username', false);
  const password = field(record, 'password', false);
  if (kind === 'onvif') {
    const host = field(record, 'host', true)!.trim();
    if (!HOST.test(host)) throw new HttpError(400, 'bad-request', 'host must be a host name or an IP address (no scheme, no path)');
    const port = record['port'] ?? 80;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new HttpError(400, 'bad-request', 'port must be a whole number from 1 to 65535');
    return { kind, host, port, username: username ?? '', password: password ?? '' };
  }
  const text = field(record, 'url', true)!.trim();
  if (!/^rtsp:\/\//i.test(text)) throw new HttpError(400, 'bad-request', 'url must start with rtsp://');
  // A log-in typed into the address is split off here, as the config loader does for a configured
  // camera; from here on the test, like the plugin, carries it only as fields.
  try {
    return { kind, ...splitRtspLogin(text, { username, password }).login };
  } catch {
    throw new HttpError(400, 'bad-request', 'url is not a valid address; it looks like rtsp://192.168.0.20:554/stream');
  }
}

/** Host, port, path and log-in of a bare RTSP URL and its log-in fields, for "is this the same stream?". */
function rtspKey(url: string, username?: string, password?: string): string | undefined {
  try {
    const u = new URL(url);
    return JSON.stringify([u.hostname.toLowerCase(), u.port || '554', u.pathname, u.search, username ?? '', password ?? '']);
  } catch {
    return undefined;
  }
}

/** The running camera that streams from this address with this log-in (its config says so). */
export function runningCameraFor(
  request: Exclude<TestRequest, { kind: 'camera' }>,
  cameras: ReadonlyArray<{ config: CameraConfig | undefined; source: BroadcastSource }>,
): BroadcastSource | undefined {
  for (const { config, source } of cameras) {
    if (!config) continue;
    if (request.kind === 'rtsp' && config.source.kind === 'rtsp') {
      const wanted = rtspKey(request.url, request.username, request.password);
      if (wanted !== undefined && wanted === rtspKey(config.source.url, config.source.username, config.source.password)) return source;
    }
    if (request.kind === 'onvif' && config.onvif && config.source.kind === 'onvif') {
      const o = config.onvif;
      if (o.host.toLowerCase() === request.host.toLowerCase() && o.port === request.port
        && (o.username ?? '') === request.username && (o.password ?? '') === request.password) return source;
    }
  }
  return undefined;
}

function isOrigin(value: string): boolean {
  if (value.length > 200) return false;
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

function describeSource(config: CameraConfig | undefined): string {
  if (!config) return '';
  switch (config.source.kind) {
    case 'rtsp': {
      try {
        const url = new URL(config.source.url);
        return `RTSP ${url.host}`;
      } catch {
        return 'RTSP';
      }
    }
    case 'onvif':
      return `ONVIF ${config.source.onvif.host}:${config.source.onvif.port}`;
    case 'demo':
      return 'built-in demo picture';
  }
}

export function adminRoutes(deps: AdminRouteDeps): WebRoute[] {
  // One Test at a time: a camera (and a 2-core Homebridge host) should never see a burst of them.
  let testing = false;
  return [
    {
      method: 'GET',
      path: '/api/admin/status',
      auth: 'admin',
      handle(ctx) {
        requireLocalAdmin(ctx);
        const cameras: AdminCameraStatus[] = deps.registry.list().map((source) => {
          const config = deps.cameraConfig(source.id);
          const recording = deps.recording?.(source.id);
          const transcoders = deps.transcoders?.(source.id) ?? [];
          const scaleOut = deps.scaleOut?.camera(source.id);
          return {
            ...toCameraStatus(source, deps.cameraExtras(source.id), deps.secrets()),
            homekitStreams: deps.homekitStreams(source.id),
            source: describeSource(config),
            configIndex: config?.index ?? -1,
            ...(recording ? { recording } : {}),
            ...(transcoders.length ? { transcoders } : {}),
            ...(scaleOut ? { scaleOut } : {}),
          };
        });
        ctx.sendJson(200, { cameras, ...(deps.scaleOut ? { gateways: deps.scaleOut.gateways() } : {}) });
      },
    },
    {
      // The web trigger addresses (doorbell, motion): secrets, so never logged; this route is how the
      // Homebridge UI admin (and nobody else: a watch-page administrator gets 403 too) reads them.
      method: 'GET',
      path: '/api/admin/triggers',
      auth: 'admin',
      handle(ctx) {
        requireLocalAdmin(ctx);
        ctx.sendJson(200, { triggers: deps.webTriggers() });
      },
    },
    {
      method: 'POST',
      path: '/api/admin/test',
      auth: 'admin',
      async handle(ctx) {
        requireLocalAdmin(ctx);
        const request = parseTestRequest(await ctx.readJson());
        if (request.kind === 'camera' && !deps.registry.get(request.id)) throw new HttpError(404, 'not-found', `No camera with id "${request.id}"`);
        if (testing) throw new HttpError(409, 'busy', 'Another test is running; try again when it has finished');
        testing = true;
        try {
          const result = await testConnection(request, {
            ffmpegPath: deps.ffmpegPath,
            source: (id) => deps.registry.get(id),
            config: deps.cameraConfig,
            running: (wanted) => runningCameraFor(wanted, deps.registry.list().map((source) => ({ config: deps.cameraConfig(source.id), source }))),
            log: ctx.log,
            ...deps.testOptions,
          });
          ctx.sendJson(200, result);
        } finally {
          testing = false;
        }
      },
    },
    {
      method: 'POST',
      path: '/api/admin/discover',
      auth: 'admin',
      async handle(ctx) {
        requireLocalAdmin(ctx);
        if (!deps.discoverNow || !(await deps.discoverNow())) {
          throw new HttpError(409, 'discovery-off', 'Camera discovery is off: turn it on under All settings, Camera discovery, save and restart Homebridge');
        }
        ctx.sendJson(200, { searched: true });
      },
    },
    {
      method: 'POST',
      path: '/api/admin/preview',
      auth: 'admin',
      async handle(ctx) {
        requireLocalAdmin(ctx);
        const body = await ctx.readJson();
        const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
        const camera = record['camera'];
        if (typeof camera !== 'string' || !isCameraId(camera)) throw new HttpError(400, 'bad-request', 'Send {"camera": "<camera id>", "origin": "<the page\'s origin>"}');
        if (!deps.registry.get(camera)) throw new HttpError(404, 'not-found', `No camera with id "${camera}"`);
        // The Homebridge UI page's own origin, which may then use WHEP cross-origin while the token lives.
        const origin = record['origin'];
        if (origin !== undefined && (typeof origin !== 'string' || !isOrigin(origin))) {
          throw new HttpError(400, 'bad-request', 'origin must look like http://host:port');
        }
        const { token, expiresAt } = deps.localAdmin.mintPreview(camera, undefined, origin);
        ctx.sendJson(200, { token, expiresAt: new Date(expiresAt).toISOString(), whepPath: `/whep/${camera}` });
      },
    },
  ];
}
