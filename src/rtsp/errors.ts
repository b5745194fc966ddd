import { redactText, redactUrl } from '../util/redact.js';

/**
 * What went wrong, coarse enough for a caller to pick a reaction: a wrong password deserves a long
 * back-off and a clear message to the user, a stall or a dropped connection a quick retry.
 */
export type RtspErrorCode =
  /** 401 after credentials were sent, or the camera wants credentials and none were given. */
  | 'auth'
  /** 403: the credentials are right but the account may not watch this stream. */
  | 'forbidden'
  /** 404: the stream path does not exist. */
  | 'not-found'
  /** 454: the camera forgot our session (rebooted, or the keep-alive was missed). */
  | 'session'
  /** 461, or UDP was set up but no packet ever arrived (firewall, NAT). */
  | 'unsupported-transport'
  /** A redirect without Location, to a non-RTSP URL, a loop, or too many hops. */
  | 'redirect'
  /** 503: the camera is busy (often: too many sessions). */
  | 'unavailable'
  /** Any other 5xx. */
  | 'server-error'
  /** Any other 4xx. */
  | 'rejected'
  /** A step got no answer in time. */
  | 'timeout'
  /** The session was playing but media stopped arriving. */
  | 'stalled'
  /** The camera sent something that is not RTSP, a broken SDP, or an impossible frame. */
  | 'protocol'
  /** Nothing playable (no supported track), or a URL scheme this client cannot speak. */
  | 'unsupported'
  /** A socket error, a name that does not resolve, or the camera closed the connection. */
  | 'transport'
  /** The camera's port refused the TCP connection. */
  | 'refused'
  /** The caller aborted. */
  | 'aborted';

export interface RtspErrorDetails {
  status?: number;
  method?: string;
  cause?: unknown;
}

/** Every failure of the RTSP client: it names the camera and its redacted URL, never the password. */
export class RtspError extends Error {
  override readonly name = 'RtspError';
  readonly code: RtspErrorCode;
  /** The RTSP status code, when the error is an RTSP answer. */
  readonly status?: number;
  /** The RTSP method that failed, when one did. */
  readonly method?: string;
  readonly camera: string;
  /** The camera URL with the password masked. */
  readonly url: string;

  constructor(code: RtspErrorCode, camera: string, url: string, detail: string, details: RtspErrorDetails = {}) {
    const safeUrl = redactUrl(url);
    super(`Camera "${camera}" (${safeUrl}): ${detail}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.camera = camera;
    this.url = safeUrl;
    if (details.status !== undefined) this.status = details.status;
    if (details.method !== undefined) this.method = details.method;
  }
}

/**
 * Builds errors for one camera. Free text that came from the network or from a library goes through
 * `redactText` with the password, since a camera could echo anything back.
 */
export class RtspErrorFactory {
  constructor(
    readonly camera: string,
    readonly url: string,
    private readonly secrets: ReadonlyArray<string | undefined> = [],
  ) {}

  create(code: RtspErrorCode, detail: string, details: RtspErrorDetails = {}): RtspError {
    return new RtspError(code, this.camera, this.url, redactText(detail, this.secrets), details);
  }

  /** A clean text for log lines and messages. */
  clean(text: string): string {
    return redactText(text, this.secrets);
  }

  /** The error for an RTSP answer that is not 2xx, with a hint at the usual cause. */
  fromStatus(method: string, status: number, reason: string): RtspError {
    const answer = `${method} answered ${status}${reason ? ` ${reason}` : ''}`;
    const d = { status, method };
    if (status === 401) return this.create('auth', `${answer}: wrong user name or password`, d);
    if (status === 403) return this.create('forbidden', `${answer}: the account may not access this stream`, d);
    if (status === 404) return this.create('not-found', `${answer}: the stream path does not exist on the camera`, d);
    if (status === 454) return this.create('session', `${answer}: the camera no longer knows the session`, d);
    if (status === 461) return this.create('unsupported-transport', `${answer}: the camera refused the transport`, d);
    if (status >= 300 && status < 400) return this.create('redirect', `${answer}: unexpected redirect`, d);
    if (status === 503) return this.create('unavailable', `${answer}: the camera is busy (too many sessions?)`, d);
    if (status >= 500) return this.create('server-error', `${answer}`, d);
    return this.create('rejected', answer, d);
  }
}

/** Maps a Node socket error to a code and a readable sentence. */
export function describeSocketError(err: NodeJS.ErrnoException): { code: RtspErrorCode; text: string } {
  switch (err.code) {
    case 'ECONNREFUSED':
      return { code: 'refused', text: 'connection refused (is the RTSP port right?)' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { code: 'transport', text: `cannot resolve the host name (${err.code})` };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { code: 'transport', text: `host unreachable (${err.code})` };
    case 'ECONNRESET':
      return { code: 'transport', text: 'the camera reset the connection' };
    case 'EPIPE':
      return { code: 'transport', text: 'the connection to the camera broke' };
    case 'ETIMEDOUT':
      return { code: 'timeout', text: 'the TCP connection timed out' };
    default:
      return { code: 'transport', text: `socket error: ${err.code ?? err.message}` };
  }
}
