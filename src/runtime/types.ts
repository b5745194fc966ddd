/**
 * The shared shapes of src/runtime, in a module of their own so that camera-runtime.ts (which builds
 * each camera) and plugin-services.ts (what all cameras share) both import them without importing
 * each other: the platform passes a `RuntimeContext` to both factories.
 */
import type { API, PlatformAccessory } from 'homebridge';
import type { CameraConfig, PluginConfig } from '../config/types.js';
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import type { Source } from '../media/source.js';
import type { SnapshotRegistry } from '../snapshots/snapshot-service.js';
import type { Logger } from '../util/logger.js';
import type { CameraPtzControl } from '../web/ptz-types.js';
import type { DoorbellEvent } from '../web/event-stream.js';
import type { WebTrigger, WebTriggerKind } from '../web/web-trigger.js';
import type { TriggerToken } from './trigger-tokens.js';
import type { RecordingStatus } from '../homekit/recording/recording-status.js';
import type { TalkChannel } from '../webrtc/types.js';

/** What every part of the runtime may use. */
export interface RuntimeContext {
  api: API;
  /** Plugin-wide logger; it already redacts every configured secret. */
  log: Logger;
  config: PluginConfig;
  /** undefined when no working ffmpeg was found (that was logged once, with how to install it). */
  ffmpeg: FfmpegCapabilities | undefined;
  /** Homebridge's storage directory, for files the plugin keeps (certificates, share-link keys). */
  storagePath: string;
  /**
   * Every password in the config (cameras, viewers, TURN): masked in anything sent to a browser and
   * by the plugin's redacting logger, which reads this same set at every line, so the secrets the
   * plugin makes later (the web triggers' tokens) are added here.
   */
  secrets: Set<string>;
}

export interface CameraRuntimeDeps extends RuntimeContext {
  /** The camera's registered (or restored) HomeKit accessory. */
  accessory: PlatformAccessory;
  /** Prefixed with the camera name and redacting. */
  log: Logger;
  services: PluginServices;
}

export interface CameraRuntime {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Settles when the accessory's HomeKit services are complete (the platform publishes external accessories then). */
  homekitReady?(): Promise<void>;
}

export type PluginServicesFactory = (context: RuntimeContext) => PluginServices;
export type CameraRuntimeFactory = (camera: CameraConfig, deps: CameraRuntimeDeps) => CameraRuntime;

/** A camera as the shared services know it. */
export interface RegisteredCamera {
  config: CameraConfig;
  source: Source;
  /** Home app streams running now (for the Homebridge UI page). */
  homekitStreams?: () => number;
  /** HomeKit Secure Video now (for the Homebridge UI page); undefined when `recording` is off. */
  recording?: () => RecordingStatus | undefined;
  /** Its pan/tilt/zoom for the web page, once known; undefined for a camera without PTZ. */
  ptz?: () => CameraPtzControl | undefined;
  /** Its speaker (two-way audio), when `twoWayAudio` is on and ffmpeg is there. */
  talk?: TalkChannel;
  /** The camera's web triggers: a doorbell's (`doorbell.httpTrigger`), its motion sensor's (`motionHttpTrigger`). */
  triggers?: Partial<Record<WebTriggerKind, WebTrigger>>;
}

/**
 * What all cameras share: the registry viewers name cameras through, the loopback re-stream every
 * plugin ffmpeg reads, and the web server (page, API, signalling, WHEP).
 */
export interface SharedServices {
  start(): Promise<void>;
  stop(): Promise<void>;
  addCamera(camera: RegisteredCamera): void;
  removeCamera(id: string): void;
  /**
   * rtsp://127.0.0.1:<port>/<token>/<id>: the only URL the plugin's ffmpeg processes ever read.
   * Each call issues a fresh single-use token: call it once per process start.
   */
  restreamUrl(id: string): string;
  /** The web server's snapshot provider: each camera registers its snapshot service here, so tiles and Home share one mechanism. */
  readonly snapshots: SnapshotRegistry;
  readonly watchUrl: string | undefined;
  /** The secret of a camera's web trigger of one kind, kept in the storage path (made on first use); masked in the log from then on. */
  triggerToken(kind: WebTriggerKind, cameraId: string): Promise<TriggerToken>;
  /** Tells the watch pages of viewers who may watch the camera that someone is at the door. */
  publishDoorbell(event: DoorbellEvent): void;
  /**
   * Tells the watch pages of viewers who may watch the camera that its PTZ mover changed (a mover's
   * `ptzViewerId`, or undefined: nobody); each page is told it as web/ptz-types.ts `ptzMoverEvent` says.
   */
  publishPtzMover(cameraId: string, moverId: string | undefined): void;
}

/** Plugin-wide services: the camera registry, the loopback re-stream and the web server. */
export type PluginServices = SharedServices;
