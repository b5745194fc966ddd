/**
 * Who may read which camera on one re-stream connection: a single-use token binds the connection
 * to its camera; otherwise Digest credentials are required from the LAN, and from loopback too when
 * the server requires auth there (Basic only on loopback, since it sends the password in clear).
 */
import type { Logger } from '../util/logger.js';
import { refusalLog } from '../util/summary-log.js';
import type { RtspDigestAuthenticator } from './auth.js';
import { tryParseTarget } from './protocol.js';
import type { RtspRequest } from './request-parser.js';

/** What the check needs from the server. */
export interface AccessHost {
  readonly log: Logger;
  readonly auth: RtspDigestAuthenticator | undefined;
  readonly requireAuthOnLoopback: boolean;
  /** Consumes a single-use token; true when it was live and names that camera. */
  redeem(token: string, cameraId: string): boolean;
}

/** The answer to a refused request. */
export interface Refusal {
  status: 401 | 403;
  headers: Array<[string, string]>;
}

export class ConnectionAccess {
  /** The camera a single-use token opened this connection for; it may read only that camera. */
  private tokenCamera: string | undefined;
  private authWarned = false;

  constructor(private readonly host: AccessHost, private readonly remote: string, private readonly loopback: boolean) {}

  /** undefined when the request may proceed, else how to refuse it. */
  check(request: RtspRequest): Refusal | undefined {
    const target = tryParseTarget(request.uri);
    if (this.tokenCamera !== undefined) {
      // Opened by a token: this connection reads its own camera and nothing else.
      if (!target || target.cameraId === this.tokenCamera) return undefined;
      return { status: 403, headers: [] };
    }
    if (target?.token !== undefined) {
      if (this.host.redeem(target.token, target.cameraId)) {
        this.tokenCamera = target.cameraId;
        return undefined;
      }
      refusalLog(this.host.log).note('warn', 're-stream: clients with an unknown, used or expired token refused', `re-stream client ${this.remote} gave an unknown, used or expired token`);
      return { status: 401, headers: [] };
    }
    const auth = this.host.auth;
    const requireAuth = !this.loopback || this.host.requireAuthOnLoopback;
    if (!requireAuth) return undefined;
    if (!auth) {
      refusalLog(this.host.log).note('warn', 're-stream: clients without a token refused', `re-stream client ${this.remote} refused: set restream.username and restream.password for programs other than the plugin`);
      return { status: 401, headers: [] };
    }
    // Basic sends the password in clear: acceptable on loopback, never across the LAN.
    const allowBasic = this.loopback;
    const result = auth.check(request.method, request.uri, request.headers.get('authorization'), { allowBasic });
    if (result === 'ok') return undefined;
    if (result === 'denied' && !this.authWarned) {
      this.authWarned = true;
      this.host.log.warn(`re-stream client ${this.remote} gave wrong credentials`);
    }
    const challenges = auth.challenge({ stale: result === 'stale', allowBasic });
    return { status: 401, headers: challenges.map((value): [string, string] => ['WWW-Authenticate', value]) };
  }
}
