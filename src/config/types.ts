/**
 * The plugin's configuration after validation, with every default applied. Only src/config builds
 * these objects; everything else may rely on their shape without re-checking.
 */

export type RtspTransport = 'auto' | 'tcp' | 'udp';
export type ShareLinkExpiry = '1h' | '1d' | '7d' | '30d';

/** ONVIF endpoint of a camera. Credentials fall back to the camera-level ones. */
export interface OnvifEndpoint {
  host: string;
  port: number;
  username?: string;
  password?: string;
}

/**
 * Where a camera's stream comes from.
 * - `rtsp`: `url` is the camera address without user info; the log-in travels beside it as separate
 *   fields (from the username/password settings, else from a log-in typed into the URL, split off
 *   once by the loader) all the way to the RTSP session. `password` is set whenever `username` is.
 * - `onvif`: the stream URL is asked from the camera over ONVIF at run time.
 * - `demo`: the built-in test picture, used when no camera is configured.
 */
export type CameraSource =
  | { kind: 'rtsp'; url: string; username?: string; password?: string }
  | { kind: 'onvif'; onvif: OnvifEndpoint }
  | { kind: 'demo' };

export interface CameraConfig {
  /** Position in the `cameras` array, for messages; -1 for the demo camera. */
  index: number;
  name: string;
  /** Unique slug ([a-z0-9-]); part of URLs and of the HomeKit accessory UUID. */
  id: string;
  source: CameraSource;
  /** Present whenever the user filled in ONVIF, even when `source` is an RTSP URL (motion events). */
  onvif?: OnvifEndpoint;
  audio: boolean;
  /** Viewers with the talk right may talk through the camera's speaker (its ONVIF back-channel, or `talkUrl`). */
  twoWayAudio: boolean;
  /**
   * The camera's speaker as a web address taking a G.711 stream (cameras without the ONVIF
   * back-channel: Axis, Dahua, Amcrest); used instead of the back-channel when set.
   */
  talkUrl?: string;
  /** The G.711 law `talkUrl` takes (default PCMA). */
  talkFormat: 'PCMU' | 'PCMA';
  transport: RtspTransport;
  alwaysOn: boolean;
  /** Published as an external accessory (paired on its own) instead of on the bridge. */
  external: boolean;
  /** Its viewers are served by the scale-out gateways (this, or `scaleOut.allCameras`). */
  scaleOut: boolean;
  /** The camera's ONVIF motion events drive the Home app motion sensor (only with ONVIF). */
  motion: boolean;
  /**
   * `POST /motion/<camera>/<secret>` drives the motion sensor (cameras that call a web address on
   * motion). The sensor is on the accessory when this or `motion` is; both may drive it.
   */
  motionHttpTrigger: boolean;
  /**
   * The plugin watches the picture for motion (src/motion/): for cameras without motion events. The
   * sensor is on the accessory when this, `motion` or `motionHttpTrigger` is; all may drive it.
   */
  videoMotion: boolean;
  /** How little change counts as motion in the picture, 1-100 (src/motion/frame-difference.ts). */
  videoMotionSensitivity: number;
  /** How long the motion sensor stays on after the last motion event, from any source. */
  motionResetSeconds: number;
  /** Published as a HomeKit Video Doorbell; undefined when the `doorbell` setting is off. */
  doorbell?: DoorbellConfig;
  /** HomeKit Secure Video is offered; undefined when the `recording` setting is off. */
  recording?: RecordingConfig;
  /** ONVIF tamper events as StatusTampered on the motion sensor (only with `motion` and ONVIF). */
  tamperSensor: boolean;
  /** ONVIF line crossing / field detection as a second motion sensor (only with ONVIF). */
  crossingSensor: boolean;
  maxViewers: number;
  maxHomeKitStreams: number;
  snapshotUrl?: string;
  manufacturer: string;
  model: string;
  serialNumber: string;
  /**
   * PTZ presets (tokens or names, as the camera lists them) published as Home app switches; present
   * only when set (and the camera has ONVIF).
   */
  ptzPresetSwitches?: string[];
}

/** What rings a doorbell camera. */
export interface DoorbellConfig {
  /** The user's own ONVIF doorbell topics, besides the built-in ones; empty without ONVIF. */
  topics: string[];
  /** Presses also come from an authenticated HTTP POST (cameras that push instead of ONVIF). */
  httpTrigger: boolean;
  /** ONVIF events are followed for presses (the camera has ONVIF). */
  onvif: boolean;
}

/**
 * What starts a HomeKit Secure Video recording, besides a doorbell press (HAP adds that trigger to
 * every doorbell): `onvif`, the camera's ONVIF motion events through the motion sensor (which
 * recording then turns on: `motion`); `http`, the camera's calls of its motion web address through
 * the same sensor (which recording turns on: `motionHttpTrigger`); `video`, motion the plugin sees in
 * the picture (which recording turns on: `videoMotion`); `none`, no motion sensor is added
 * for recordings.
 */
export type RecordingMotionSource = 'onvif' | 'http' | 'video' | 'none';

/** HomeKit Secure Video for one camera (`recording.enabled`). */
export interface RecordingConfig {
  /** As set (4-8); undefined means the pre-buffer's default (src/homekit/recording/prebuffer.ts). */
  prebufferSeconds?: number;
  motionSource: RecordingMotionSource;
}

export interface DiscoveryConfig {
  enabled: boolean;
  interfaces: string[];
  /** Addresses probed directly (unicast WS-Discovery), for cameras multicast does not reach. */
  probeAddresses: Array<{ address: string; port: number }>;
}

export interface TlsConfig {
  selfSigned: boolean;
  certPath?: string;
  keyPath?: string;
  /** A plain-HTTP port that only redirects to the HTTPS page; present only when set. */
  redirectHttpPort?: number;
}

export interface WebConfig {
  port: number;
  bind: string;
  publicUrl?: string;
  /** Browser origins (`scheme://host[:port]`, lower-case, no slash) allowed to call the API, WHEP and WebSocket. */
  allowedOrigins: string[];
  /** Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed. */
  trustedProxies: string[];
  /** Viewer connections one account or share link may hold at once (the peer guard's per-principal cap). */
  maxViewsPerUser: number;
  /** Viewer connections one client address may hold at once (the peer guard's per-address cap). */
  maxViewsPerAddress: number;
  /** Views one account or share link, and one client address, may have still connecting at once (webrtc's pending budget). */
  maxConnectingViews: number;
  tls: TlsConfig;
}

export interface ViewerConfig {
  username: string;
  /** As typed in the Homebridge UI, or a pre-hashed `scrypt$...` value (src/web/auth/password.ts). */
  password: string;
  /** Camera ids this viewer may watch; empty means every camera. */
  cameras: string[];
  admin: boolean;
  /** May pan, tilt and zoom PTZ cameras it may watch (admins may anyway). Default false. */
  ptz: boolean;
  /** May talk through the speaker of cameras it may watch that have `twoWayAudio` (admins may anyway). Default false. */
  talk: boolean;
}

export interface ShareLinksConfig {
  defaultExpiry: ShareLinkExpiry | 'never';
  /** `null`: new links never expire unless the request names an expiry. */
  defaultExpiryMs: number | null;
}

export interface TurnServerConfig {
  urls: string;
  username?: string;
  credential?: string;
}

export interface IceConfig {
  stunServers: string[];
  turnServers: TurnServerConfig[];
  /** Both set or both undefined (a half-set range is rejected). */
  udpPortMin?: number;
  udpPortMax?: number;
  announcedAddresses: string[];
  iceTcp: boolean;
}

export interface FfmpegConfig {
  videoProcessor?: string;
  debug: boolean;
  /** H.264 encoder for Home app streams that need re-encoding (default libx264), e.g. h264_v4l2m2m. */
  videoEncoder?: string;
  /** Extra ffmpeg arguments after the video encoder's own (split like a shell, no expansion). */
  encoderOptions?: string;
  /** Stop a Home app stream after this many seconds without RTCP from the viewing device (default 15). */
  streamTimeoutSeconds?: number;
}

export interface RestreamConfig {
  port: number;
  /** When false the re-stream listens on 127.0.0.1 only. When true, username and password are set. */
  lanAccess: boolean;
  username?: string;
  password?: string;
}

export interface PluginConfig {
  name: string;
  /** The cameras to run: every valid configured camera, or the demo camera (see `demo`). */
  cameras: CameraConfig[];
  /** The `demo` setting as configured. */
  demo: boolean;
  discovery: DiscoveryConfig;
  web: WebConfig;
  viewers: ViewerConfig[];
  shareLinks: ShareLinksConfig;
  ice: IceConfig;
  ffmpeg: FfmpegConfig;
  restream: RestreamConfig;
  scaleOut: ScaleOutConfig;
}

/** One Janus gateway of the scale-out (src/scaleout/). */
export interface JanusGatewayConfig {
  url: string;
  apiSecret?: string;
  token?: string;
  adminKey?: string;
}

export interface ScaleOutConfig {
  /** Every camera goes through the gateways, not only those with `scaleOut`. */
  allCameras: boolean;
  janus: JanusGatewayConfig[];
}

/** A problem found while loading; the loader never logs itself (see `LoadedConfig`). */
export interface ConfigMessage {
  level: 'error' | 'warn' | 'info';
  text: string;
}

export interface LoadedConfig {
  config: PluginConfig;
  /**
   * Every secret found anywhere in the raw config, valid or not (passwords, URL passwords, TURN
   * credentials). Wrap the logger with `redactingLogger(log, secrets)` before printing anything.
   */
  secrets: Set<string>;
  /** What to tell the user, in order; print through the redacting logger. */
  messages: ConfigMessage[];
}
