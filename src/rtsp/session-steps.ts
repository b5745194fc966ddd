/**
 * Steps every RTSP client session here takes, whatever it does with the media: playback
 * (`session.ts`) and the ONVIF audio back-channel (`backchannel.ts`). OPTIONS and DESCRIBE following
 * redirects, the Session header of a SETUP answer, the keep-alive request and the best-effort
 * TEARDOWN. The state (which connection, which session id, timers) stays with the caller.
 */
import type { Logger } from '../util/logger.js';
import type { RtspConnection, RtspResponse } from './connection.js';
import { isRedirect, publicMethodsOf, redirectTarget } from './describe.js';
import type { RtspError, RtspErrorFactory } from './errors.js';
import { displayUrl, parseRtspUrl, type RtspTarget } from './url.js';

/** Session `timeout` when the camera does not say (RFC 2326 12.37). */
export const DEFAULT_SESSION_TIMEOUT_S = 60;

export interface DescribeSteps {
  errors: RtspErrorFactory;
  log: Logger;
  /** Redirects followed before giving up. */
  maxRedirects: number;
  /**
   * Opens the control connection to `target` (again after a redirect). The caller keeps it, so an
   * abort or a failure can close it, and closes the one before.
   */
  connect(target: RtspTarget): Promise<RtspConnection>;
  /** Extra headers on DESCRIBE, e.g. the ONVIF back-channel's Require. */
  describeHeaders?: Record<string, string>;
}

export interface Described {
  /** The target answered DESCRIBE (the last one, after redirects). */
  target: RtspTarget;
  connection: RtspConnection;
  /** The methods OPTIONS listed (empty when OPTIONS failed: it is optional for a camera). */
  publicMethods: Set<string>;
  describe: RtspResponse & { url: string };
}

/**
 * OPTIONS, then DESCRIBE, following 3xx answers of either (validated by `redirectTarget`). Rejects
 * with an `RtspError` for a DESCRIBE answer that is not 2xx (its `status` and `method` set).
 */
export async function describeFollowingRedirects(start: RtspTarget, steps: DescribeSteps): Promise<Described> {
  const { errors, log, maxRedirects } = steps;
  let target = start;
  const visited = new Set<string>([target.url]);
  for (let hop = 0; ; hop++) {
    const connection = await steps.connect(target);
    const url = target.url;

    const options = await connection.request('OPTIONS', url);
    let publicMethods = new Set<string>();
    let next: string | undefined;
    if (isRedirect(options.status)) {
      next = redirectTarget(errors, 'OPTIONS', options, target.url, { hop, max: maxRedirects, visited });
    } else if (options.status >= 200 && options.status < 300) {
      publicMethods = publicMethodsOf(options);
    } else {
      // OPTIONS is optional for a camera to implement; DESCRIBE will tell what is wrong.
      log.debug(`OPTIONS answered ${options.status}; continuing with DESCRIBE`);
    }

    if (next === undefined) {
      const describe = await connection.request('DESCRIBE', url, { headers: { Accept: 'application/sdp', ...steps.describeHeaders } });
      if (isRedirect(describe.status)) {
        next = redirectTarget(errors, 'DESCRIBE', describe, target.url, { hop, max: maxRedirects, visited });
      } else if (describe.status < 200 || describe.status >= 300) {
        throw errors.fromStatus('DESCRIBE', describe.status, describe.reason);
      } else {
        return { target, connection, publicMethods, describe: { ...describe, url } };
      }
    }
    const redirected = parseRtspUrl(next);
    log.info(`redirected to ${displayUrl(next)}`);
    if (redirected.secure) throw errors.create('unsupported', 'redirected to rtsps:// (RTSP over TLS), which is not supported', {});
    target = redirected;
  }
}

/** GET_PARAMETER when the camera lists it in `Public`, else OPTIONS (what every camera answers). */
export function keepaliveMethodFor(publicMethods: ReadonlySet<string>): KeepaliveMethod {
  return publicMethods.has('GET_PARAMETER') ? 'GET_PARAMETER' : 'OPTIONS';
}

export type KeepaliveMethod = 'GET_PARAMETER' | 'OPTIONS';

/** Half the session timeout, at least a second. */
export function keepaliveIntervalMs(sessionTimeoutS: number): number {
  return Math.max(1000, (sessionTimeoutS * 1000) / 2);
}

/** The session id and timeout of a SETUP answer. */
export interface SessionHeader {
  id: string;
  /** Seconds, when the camera gave a usable `timeout`. */
  timeoutS?: number;
}

/**
 * Reads the Session header of a SETUP answer. A later SETUP may leave it out (the session is then
 * the one already known); the first may not. A changed id is followed, with a debug line.
 */
export function sessionFromSetup(response: RtspResponse, currentId: string | undefined, errors: RtspErrorFactory, log: Logger): SessionHeader {
  const header = response.headers.get('session');
  if (!header) {
    if (!currentId) throw errors.create('protocol', 'SETUP answered without a Session header', { method: 'SETUP' });
    return { id: currentId };
  }
  const [id, ...params] = header.split(';').map((p) => p.trim());
  if (!id) throw errors.create('protocol', 'SETUP answered an empty Session header', { method: 'SETUP' });
  if (currentId && currentId !== id) log.debug(`the camera changed the session id on SETUP (${currentId} -> ${id})`);
  const result: SessionHeader = { id };
  for (const p of params) {
    const m = /^timeout\s*=\s*(\d+)$/i.exec(p);
    if (m && Number(m[1]) > 0) result.timeoutS = Number(m[1]);
  }
  return result;
}

/** What one keep-alive found: the session is gone (454), or the method to use next time. */
export interface KeepaliveOutcome {
  sessionLost?: RtspError;
  next: KeepaliveMethod;
  /** The request failed or timed out: for a debug line while the session is still up. */
  failed?: string;
}

/**
 * Sends one keep-alive. A 454 means the camera forgot the session; a GET_PARAMETER the camera turns
 * down (405, 451, 501) switches to OPTIONS. A request that fails or times out is not fatal by
 * itself (the socket, or the caller's watchdog, decides): it comes back as `failed`.
 */
export async function sendKeepalive(
  connection: RtspConnection,
  method: KeepaliveMethod,
  url: string,
  headers: Record<string, string>,
  errors: RtspErrorFactory,
  log: Logger,
): Promise<KeepaliveOutcome> {
  try {
    const response = await connection.request(method, url, { headers });
    if (response.status === 454) return { sessionLost: errors.fromStatus(method, response.status, response.reason), next: method };
    if (method === 'GET_PARAMETER' && (response.status === 405 || response.status === 501 || response.status === 451)) {
      log.debug(`GET_PARAMETER answered ${response.status}; keeping alive with OPTIONS`);
      return { next: 'OPTIONS' };
    }
    if (response.status >= 300) log.debug(`keep-alive ${method} answered ${response.status}`);
  } catch (err) {
    return { next: method, failed: `keep-alive ${method} failed: ${err instanceof Error ? err.message : String(err)}` };
  }
  return { next: method };
}

/** TEARDOWN, best effort and briefly (no auth retry): the camera frees its session slot sooner. */
export async function teardownBestEffort(
  connection: RtspConnection | undefined,
  url: string,
  headers: Record<string, string>,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  if (!connection?.alive || !headers['Session']) return;
  try {
    await connection.request('TEARDOWN', url, { headers, timeoutMs, noAuthRetry: true });
  } catch (err) {
    log.debug(`TEARDOWN: ${err instanceof Error ? err.message : String(err)}`);
  }
}
