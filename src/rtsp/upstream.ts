import type { UpstreamFactory } from '../media/types.js';
import { prefixedLogger, redactingLogger } from '../util/logger.js';
import { tcpReachable } from '../util/tcp-probe.js';
import { RtspError } from './errors.js';
import { RtspSession, type RtspSessionOptions } from './session.js';
import { displayUrl, rtspEndpoint, type RtspEndpoint } from './url.js';

/** Per-session settings the factory passes through unchanged (see `RtspSessionOptions`). */
type PassedToSessions = Pick<RtspSessionOptions, 'cameraName' | 'logger' | 'audio' | 'timeouts' | 'maxRedirects' | 'userAgent' | 'now' | 'timers' | 'udpReceiveBufferBytes'>;

export interface RtspUpstreamOptions extends PassedToSessions {
  /**
   * rtsp://host[:port]/path, without user info: a URL with a log-in in it makes every session fail
   * (`unsupported`, see rtspEndpoint); a typed URL is split once where it comes in (splitRtspLogin).
   */
  url: string;
  /** The camera's user name. */
  username?: string;
  /** The camera's password. */
  password?: string;
  /**
   * 'tcp' (default): interleaved on the control connection; works through every firewall.
   * 'udp': UDP first on every session; on 461 or no packet within `udpFirstPacketMs`, falls back
   * to TCP for that session (with a warning).
   * 'auto': like 'udp', but after one fallback this factory stays on TCP.
   */
  transport?: 'tcp' | 'udp' | 'auto';
  /** The logger already prefixes each line with the camera's name (the plugin's per-camera logger). */
  loggerNamesCamera?: boolean;
}

/** A LAN camera that is up answers a TCP connect in milliseconds; longer means not yet. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * An `UpstreamFactory` for one RTSP camera: each call opens one playing session. The factory
 * rejects with an `RtspError` (its `code` tells the caller how to back off); `onClose` is called
 * exactly once for each session it resolved, and never for one it rejected.
 */
export function rtspUpstream(options: RtspUpstreamOptions): UpstreamFactory {
  // The target and the log-in fields, worked out once for every session of this camera.
  let endpoint: RtspEndpoint | undefined;
  let invalid: string | undefined;
  try {
    endpoint = rtspEndpoint(options.url, options.username, options.password);
  } catch (err) {
    invalid = err instanceof Error ? err.message : String(err);
  }
  const secrets = new Set<string>(endpoint?.secrets ?? []);
  if (options.password) secrets.add(options.password);
  const redacting = redactingLogger(options.logger, secrets);
  const log = options.loggerNamesCamera ? redacting : prefixedLogger(redacting, options.cameraName);
  const wanted = options.transport ?? 'tcp';
  let stayOnTcp = false;

  const factory: UpstreamFactory = async (handlers, signal) => {
    if (!endpoint) {
      throw new RtspError('unsupported', options.cameraName, displayUrl(options.url), `invalid camera URL: ${invalid ?? '?'}`);
    }
    const first = wanted === 'tcp' || stayOnTcp ? 'tcp' : 'udp';
    const { url: _url, username: _username, password: _password, ...rest } = options;
    const sessionOptions = { ...rest, endpoint, logger: log };
    try {
      return await RtspSession.open({ ...sessionOptions, transport: first }, handlers, signal);
    } catch (err) {
      if (first !== 'udp' || !(err instanceof RtspError) || err.code !== 'unsupported-transport' || signal.aborted) throw err;
      const reason = err.message.replace(/^Camera "[^"]*" \([^)]*\): /, '');
      if (wanted === 'auto') {
        stayOnTcp = true;
        log.warn(`UDP does not work (${reason}); using TCP from now on`);
      } else {
        log.warn(`UDP does not work (${reason}); falling back to TCP for this session`);
      }
      return await RtspSession.open({ ...sessionOptions, transport: 'tcp' }, handlers, signal);
    }
  };
  if (endpoint) {
    const { hostname, port } = endpoint.target;
    // The camera's RTSP port accepting a connection is the cheapest sign that it is back up.
    factory.probe = (signal) => tcpReachable(hostname, port, PROBE_TIMEOUT_MS, signal);
  }
  return factory;
}
