/**
 * The typed ONVIF device as the rest of the plugin sees it: what it is built from, what it reports
 * (information, services, profiles) and the stream it resolves to. Implemented in device.ts.
 */
import type { Logger } from '../util/logger.js';
import type { SoapClient } from './soap.js';

export interface OnvifDeviceOptions {
  /** Camera name for every message. */
  name: string;
  host: string;
  /** ONVIF HTTP port. Default 80. */
  port?: number;
  username?: string;
  password?: string;
  log: Logger;
  /** Per-request deadline. Default 8000 ms. */
  timeoutMs?: number;
  /** Snapshot download deadline. Default 4000 ms (HomeKit gives a snapshot 5 s in all). */
  snapshotTimeoutMs?: number;
  /** Use HTTPS for the device service. Default false. */
  https?: boolean;
  /** Device service path. Default `/onvif/device_service`. */
  devicePath?: string;
  /** RTSP port to use instead of the one in the camera's stream URI (port forwarding, NAT). */
  rtspPort?: number;
  /** Profile token or name to use as the main stream instead of the automatic choice. */
  profile?: string;
}

export interface OnvifDeviceInformation {
  manufacturer: string | undefined;
  model: string | undefined;
  firmwareRevision: string | undefined;
  serialNumber: string | undefined;
  hardwareId: string | undefined;
}

export interface OnvifServiceAddresses {
  device: string;
  media: string | undefined;
  media2: string | undefined;
  events: string | undefined;
  /** PTZ service, when GetServices or GetCapabilities lists one. */
  ptz: string | undefined;
}

export type VideoEncoding = 'H264' | 'H265' | 'JPEG' | 'MPEG4' | 'OTHER';

export interface OnvifVideoProfile {
  token: string;
  name: string;
  encoding: VideoEncoding;
  width: number;
  height: number;
  frameRate: number | undefined;
  bitrateKbps: number | undefined;
  /** Which media service described it (and must be asked for its URIs). */
  mediaVersion: 1 | 2;
}

export interface ResolvedStreamVariant {
  /** RTSP URL for the RTSP client, without credentials: they travel beside it as the fields below. */
  rtspUrl: string;
  /** The log-in for this URL: the configured one, else the one the camera wrote into its URI; none when neither has a user name. */
  username: string | undefined;
  /** Set (possibly empty) whenever `username` is. */
  password: string | undefined;
  /** Safe to log: the user name kept, the password masked. */
  rtspUrlForLog: string;
  profileToken: string;
  profileName: string;
  encoding: VideoEncoding;
  width: number;
  height: number;
  frameRate: number | undefined;
  /** True when the camera's URI named another host or port and was rewritten. */
  rewritten: boolean;
}

export interface ResolvedStream extends ResolvedStreamVariant {
  /** A lower-resolution profile for low-bandwidth uses, when the camera has one. */
  subStream: ResolvedStreamVariant | undefined;
}

export interface OnvifDevice {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly services: Readonly<OnvifServiceAddresses>;
  /** Camera clock minus local clock (ms), used for WS-Security. */
  readonly clockOffsetMs: number;
  /** The SOAP client (credentials, clock) for other ONVIF services such as events. */
  readonly soap: SoapClient;
  readonly log: Logger;
  /** Re-reads the camera clock (after a reboot it may have changed); returns the offset. */
  syncClock(): Promise<number>;
  getDeviceInformation(): Promise<OnvifDeviceInformation>;
  getProfiles(): Promise<OnvifVideoProfile[]>;
  resolveStream(): Promise<ResolvedStream>;
  getSnapshotUri(): Promise<string>;
  fetchSnapshot(): Promise<Buffer>;
  /** Maps an address the camera announced (subscription, service) to the host and port actually reached. */
  rewriteServiceUrl(url: string): string;
}

/** A device after `connectOnvifDevice`: reachable, credentials accepted, information read. */
export interface ConnectedOnvifDevice extends OnvifDevice {
  readonly info: OnvifDeviceInformation;
}
