import { demoUpstream } from '../demo/demo-upstream.js';
import type { UpstreamFactory } from '../media/types.js';
import { connectOnvifDevice, type ConnectedOnvifDevice, type ResolvedStream } from '../onvif/device.js';
import { rtspUpstream } from '../rtsp/upstream.js';
import type { CameraConfig } from '../config/types.js';
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import type { Logger } from '../util/logger.js';

/** What a camera's upstream choice needs; the ONVIF device is shared with snapshots and motion. */
export interface CameraUpstreamDeps {
  log: Logger;
  ffmpeg: FfmpegCapabilities | undefined;
  /** Connects (once, then cached) to the camera's ONVIF service; only for ONVIF-sourced cameras. */
  onvifDevice?: () => Promise<ConnectedOnvifDevice>;
}

/**
 * The one place that decides where a camera's single session comes from: its RTSP URL, the RTSP URL
 * its ONVIF service names (asked again after every failure, since a camera's stream URI can change
 * when it reboots or gets a new address), or the demo picture.
 */
export function cameraUpstream(camera: CameraConfig, deps: CameraUpstreamDeps): UpstreamFactory {
  const common = { cameraName: camera.name, logger: deps.log, loggerNamesCamera: true, audio: camera.audio, transport: camera.transport };
  switch (camera.source.kind) {
    case 'rtsp':
      return rtspUpstream({ ...common, ...login(camera.source) });
    case 'demo': {
      if (!deps.ffmpeg) {
        return () => Promise.reject(new Error('the demo camera needs ffmpeg, and none was found (see the message above)'));
      }
      return demoUpstream({ ffmpegPath: deps.ffmpeg.path, log: deps.log });
    }
    case 'onvif': {
      const connect = deps.onvifDevice;
      if (!connect) throw new Error(`camera '${camera.id}' is ONVIF-sourced but has no ONVIF connection`);
      let resolved: { stream: ResolvedStream; factory: UpstreamFactory } | undefined;
      /** The last stream's probe: kept after a failure, which is exactly when it is needed. */
      let lastProbe: UpstreamFactory['probe'];
      const factory: UpstreamFactory = async (handlers, signal) => {
        if (!resolved) {
          const stream = await (await connect()).resolveStream();
          deps.log.info(`ONVIF stream: ${stream.rtspUrlForLog} (${stream.width}x${stream.height} ${stream.encoding})`);
          resolved = { stream, factory: rtspUpstream({ ...common, ...streamLogin(stream) }) };
          lastProbe = resolved.factory.probe;
        }
        try {
          return await resolved.factory(handlers, signal);
        } catch (error) {
          resolved = undefined; // ask ONVIF again next attempt
          throw error;
        }
      };
      factory.probe = (signal) => (lastProbe ? lastProbe(signal) : Promise.resolve(false));
      return factory;
    }
  }
}

/**
 * Where a camera's speaker is reached (two-way audio): the same RTSP URL as its picture, which ONVIF
 * cameras answer with the back-channel when asked for it. For an ONVIF-sourced camera the URL is
 * asked for at each use, like the picture's. Undefined for the demo camera, which has no speaker.
 */
export function cameraTalkAddress(camera: CameraConfig, deps: Pick<CameraUpstreamDeps, 'onvifDevice'>): (() => Promise<RtspLogin>) | undefined {
  switch (camera.source.kind) {
    case 'rtsp': {
      const address = login(camera.source);
      return () => Promise.resolve(address);
    }
    case 'onvif': {
      const connect = deps.onvifDevice;
      if (!connect) return undefined;
      return async () => {
        const stream = await (await connect()).resolveStream();
        return streamLogin(stream);
      };
    }
    default:
      return undefined;
  }
}

/**
 * The log-in for one of a camera's web addresses (its snapshot or speaker address): the address's
 * own, else the camera's (its RTSP log-in, then its ONVIF one).
 */
export function webAddressCredentials(camera: CameraConfig, address: string): { username: string; password: string } | undefined {
  try {
    const url = new URL(address);
    if (url.username) return { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
  } catch {
    // not a URL: the camera's own log-in
  }
  if (camera.source.kind === 'rtsp' && camera.source.username) {
    return { username: camera.source.username, password: camera.source.password ?? '' };
  }
  const onvif = camera.onvif;
  return onvif?.username ? { username: onvif.username, password: onvif.password ?? '' } : undefined;
}

export interface RtspLogin {
  url: string;
  username?: string;
  password?: string;
}

/** The RTSP address and log-in an ONVIF camera named for its stream. */
function streamLogin(stream: ResolvedStream): RtspLogin {
  return login({ url: stream.rtspUrl, username: stream.username, password: stream.password });
}

/** The camera address and its log-in as the separate fields `rtspUpstream` takes (never merged into the URL). */
function login(from: { url: string; username?: string | undefined; password?: string | undefined }): RtspLogin {
  return {
    url: from.url,
    ...(from.username !== undefined ? { username: from.username } : {}),
    ...(from.password !== undefined ? { password: from.password } : {}),
  };
}

/**
 * Connects to a camera's ONVIF service on first use and keeps the connection for the stream URI,
 * snapshots and motion events; a failed attempt is forgotten so the next caller tries again.
 */
export function onvifConnector(camera: CameraConfig, log: Logger): (() => Promise<ConnectedOnvifDevice>) | undefined {
  const endpoint = camera.onvif ?? (camera.source.kind === 'onvif' ? camera.source.onvif : undefined);
  if (!endpoint) return undefined;
  let pending: Promise<ConnectedOnvifDevice> | undefined;
  return () => {
    pending ??= connectOnvifDevice({
      name: camera.name,
      host: endpoint.host,
      port: endpoint.port,
      ...(endpoint.username !== undefined ? { username: endpoint.username } : {}),
      ...(endpoint.password !== undefined ? { password: endpoint.password } : {}),
      log,
    }).catch((error: unknown) => {
      pending = undefined;
      throw error;
    });
    return pending;
  };
}
