/**
 * The state behind access control and the decisions on it: accounts, share links and sessions,
 * who a request is (`authorize`), revocation (and telling the listeners), session cookies, and
 * making and revoking share links. The HTTP routes over it are in access-routes.ts.
 */
import { hkdfSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { silentLogger, type Logger } from '../../util/logger.js';
import { safeEqual } from '../../util/safe-equal.js';
import { HttpError, isCameraId } from '../http-util.js';
import type { Principal } from '../types.js';
import { CSRF_HEADER, LOGIN_PATH, type AccessControlOptions, type CreatedShareLink, type RevokeListener, type ShareLinkView } from './access-contract.js';
import { AccountStore } from './accounts.js';
import { clientKey, isLoopbackAddress, isLoopbackHost, socketAddressOf, type ClientAddressOf } from '../../access/client-address.js';
import { cookieNames, readCookie, serializeCookie } from './cookies.js';
import { LoginFormTokens } from './login-form.js';
import { PeerGuard } from './peer-guard.js';
import { ANONYMOUS_LOOPBACK, isAccessPrincipal, linkPrincipalName, type AccessPrincipal } from './principals.js';
import { LoginRateLimiter } from './rate-limiter.js';
import { DEFAULT_SESSION_SETTINGS, SessionStore, type Session, type SessionKind, type SessionSettings } from './sessions.js';
import { EXPIRY_PRESETS, ShareLinkStore, parseExpiresIn, type ShareLink, type ShareLinkState } from './share-links.js';
import { ensureStorageDir, readOrCreateSecret } from '../../util/storage.js';

const MAX_LINK_CAMERAS = 64;

function deriveKey(secret: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `homebridge-webrtc-cameras ${purpose}`, 32));
}

function changesState(req: IncomingMessage): boolean {
  const method = req.method ?? 'GET';
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
}

/**
 * A reverse proxy on the same machine connects from 127.0.0.1 (and nginx even sends the upstream's
 * loopback Host by default), so its visitors would pass as local: a forwarding header means "not
 * this computer", whatever the address says.
 */
function proxied(req: IncomingMessage): boolean {
  const h = req.headers;
  return h['x-forwarded-for'] !== undefined || h['forwarded'] !== undefined || h['x-real-ip'] !== undefined || h['via'] !== undefined;
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '').split('?')[0] ?? '';
}

function view(link: ShareLink, state: ShareLinkState): ShareLinkView {
  return {
    id: link.id,
    label: link.label,
    cameras: link.cameras,
    createdAt: new Date(link.createdAt).toISOString(),
    expiresAt: link.expiresAt === null ? null : new Date(link.expiresAt).toISOString(),
    createdBy: link.createdBy,
    revokedAt: link.revokedAt === null ? null : new Date(link.revokedAt).toISOString(),
    state,
  };
}

/** What `AccessState.create` reads or makes before the state exists. */
interface AccessParts {
  log: Logger;
  now: () => number;
  secure: boolean;
  accounts: AccountStore;
  links: ShareLinkStore;
  sessions: SessionStore;
  loginForm: LoginFormTokens;
  plaintextPasswords: ReadonlySet<string>;
  linkPrincipals: Map<string, AccessPrincipal>;
}

export class AccessState {
  readonly log: Logger;
  readonly now: () => number;
  readonly secure: boolean;
  readonly names: ReturnType<typeof cookieNames>;
  readonly accounts: AccountStore;
  readonly links: ShareLinkStore;
  readonly sessions: SessionStore;
  readonly loginForm: LoginFormTokens;
  readonly plaintextPasswords: ReadonlySet<string>;
  readonly limiter: LoginRateLimiter;
  /**
   * Wrong share-link and bearer tokens count apart from wrong passwords: a stale share link
   * retried by a family tablet must not lock the family's password sign-ins out of that address.
   */
  readonly tokenLimiter: LoginRateLimiter;
  readonly peers: PeerGuard;
  private readonly revokeListeners = new Set<RevokeListener>();
  private readonly linkPrincipals: Map<string, AccessPrincipal>;
  private readonly clientAddress: ClientAddressOf;
  private readonly sweepTimer: ReturnType<typeof setInterval>;

  /** Reads or makes the secret, hashes the passwords, loads links and sessions. */
  static async create(options: AccessControlOptions): Promise<AccessState> {
    const log = options.log ?? silentLogger;
    const now = options.now ?? Date.now;
    const secure = options.tls === true;
    const names = cookieNames(secure);
    const dir = await ensureStorageDir(options.storagePath);
    const { key: secret, created } = await readOrCreateSecret(dir);
    if (created) log.info('Made a new signing secret for share links (kept in the Homebridge storage folder, webrtc-cameras/secret.key).');
    const csrfKey = deriveKey(secret, 'session csrf');
    const loginForm = new LoginFormTokens(deriveKey(secret, 'login form csrf'), names.login, now);

    const accounts = await AccountStore.create(options.viewers, log);
    const plaintextPasswords = new Set(options.viewers.map((v) => v.password).filter((p) => p.length > 0));
    const links = new ShareLinkStore({ dir, key: deriveKey(secret, 'share links'), now, log, maxLinks: options.maxShareLinks ?? 500 });
    await links.load();
    const linkPrincipals = new Map<string, AccessPrincipal>();
    const settings: SessionSettings = {
      user: { ...DEFAULT_SESSION_SETTINGS.user, ...options.sessions?.user },
      link: { ...DEFAULT_SESSION_SETTINGS.link, ...options.sessions?.link },
      maxSessions: options.sessions?.maxSessions ?? DEFAULT_SESSION_SETTINGS.maxSessions,
    };
    const resolve = (kind: SessionKind, subject: string, sessionKey: string): AccessPrincipal | undefined => {
      if (kind === 'user') {
        const account = accounts.get(subject);
        if (!account) return undefined;
        return Object.freeze({ name: account.username, kind, cameras: account.cameras, admin: account.admin, ptz: account.ptz, talk: account.talk, sessionKey });
      }
      const link = links.get(subject);
      if (!link || links.stateOf(link) !== 'active') return undefined;
      return Object.freeze({ name: linkPrincipalName(link.id), kind, cameras: link.cameras, admin: false, linkId: link.id, sessionKey });
    };
    const sessions = new SessionStore({
      dir,
      csrfKey,
      settings,
      now,
      log,
      resolve,
      stillValid: (session) => (session.kind === 'link' ? links.isActive(session.subject) : accounts.get(session.subject) !== undefined),
    });
    await sessions.load();
    return new AccessState(options, { log, now, secure, accounts, links, sessions, loginForm, plaintextPasswords, linkPrincipals });
  }

  private constructor(
    private readonly options: AccessControlOptions,
    parts: AccessParts,
  ) {
    const { log, now } = parts;
    this.log = log;
    this.now = now;
    this.secure = parts.secure;
    this.names = cookieNames(parts.secure);
    this.accounts = parts.accounts;
    this.links = parts.links;
    this.sessions = parts.sessions;
    this.loginForm = parts.loginForm;
    this.plaintextPasswords = parts.plaintextPasswords;
    this.linkPrincipals = parts.linkPrincipals;
    this.limiter = new LoginRateLimiter(options.rateLimit, now);
    this.tokenLimiter = new LoginRateLimiter(options.rateLimit, now);
    this.peers = new PeerGuard(options.peers, log);
    this.clientAddress = options.clientAddress ?? socketAddressOf;

    if (this.accounts.size === 0) {
      log.warn(
        'No viewer accounts are configured, so the web page asks for a sign-in that nobody can give yet. ' +
          'In the Homebridge UI open the WebRTC Cameras plugin settings, "Viewers and share links", add a viewer ' +
          'with a user name and password (tick "Administrator" to create share links), save, and restart.',
      );
    } else {
      log.info(`Web page sign-in: ${this.accounts.size} viewer account${this.accounts.size === 1 ? '' : 's'}.`);
    }
    if (options.allowAnonymousLoopback) log.info('Anonymous viewing is allowed from this computer (localhost) only.');

    this.sweepTimer = setInterval(() => {
      for (const link of this.links.takeNewlyExpired()) this.revokeLink(link.id, 'Share link expired');
      // An expired session's long-lived connections (the page's event stream, its sockets) end with it,
      // as a logout's do: they were authorised once, at their start.
      const expired = new Set(this.sessions.sweep().map((s) => s.key));
      if (expired.size > 0) this.revoke((p) => isAccessPrincipal(p) && p.sessionKey !== undefined && expired.has(p.sessionKey), 'Session expired');
    }, options.sweepIntervalMs ?? 1000);
    this.sweepTimer.unref();
  }

  /** Who a request is: bearer token, else session cookie, else (when allowed) this machine. May throw 403 (CSRF) or 429. */
  authorize(req: IncomingMessage): Principal | undefined {
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      // Only wrong tokens are counted, so only this path needs the caller's address.
      const ip = clientKey(this.clientAddress(req));
      const token = /^Bearer +([!-~]{1,256})$/i.exec(authorization.trim())?.[1];
      if (!token) return undefined;
      const wait = this.tokenLimiter.blockedFor(ip);
      // An upgrade cannot carry a JSON 429; it simply gets 401.
      if (wait > 0) {
        if (req.headers.upgrade) return undefined;
        throw new HttpError(429, 'too-many-attempts', 'Too many wrong tokens; wait and try again', { 'Retry-After': String(Math.ceil(wait / 1000)) });
      }
      const result = this.links.verify(token);
      if (!result.ok) {
        this.tokenLimiter.fail(ip);
        this.log.debug(`A bearer token was refused (${result.reason}) from ${ip}`);
        return undefined;
      }
      return this.linkPrincipal(result.link);
    }
    const sessionId = readCookie(req, this.names.session);
    if (sessionId) {
      const session = this.sessions.get(sessionId);
      if (session) {
        // POST /login checks its own form token (a session may not exist yet).
        if (changesState(req) && pathOf(req) !== LOGIN_PATH) {
          const given = req.headers[CSRF_HEADER];
          if (typeof given !== 'string' || !safeEqual(given, this.sessions.csrfToken(sessionId))) {
            throw new HttpError(403, 'csrf', 'This request lacks the page\u2019s security token; reload the page and try again');
          }
        }
        return session.principal;
      }
    }
    if (this.options.allowAnonymousLoopback && isLoopbackAddress(req.socket.remoteAddress) && isLoopbackHost(req.headers.host) && !proxied(req)) {
      return ANONYMOUS_LOOPBACK;
    }
    return undefined;
  }

  onRevoke(listener: RevokeListener): () => void {
    this.revokeListeners.add(listener);
    return () => this.revokeListeners.delete(listener);
  }

  /** Tells every listener which principals lost access, and ends their WHEP sessions. */
  revoke(predicate: (principal: Principal) => boolean, reason: string): void {
    for (const listener of this.revokeListeners) {
      try {
        listener(predicate, reason);
      } catch (error) {
        this.log.error(`A revocation listener failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    void this.peers.closeWhep(predicate);
  }

  sessionCookies(id: string, session: Session): string[] {
    const maxAgeSeconds = (session.endsAt - this.now()) / 1000;
    return [
      serializeCookie(this.names.session, id, { secure: this.secure, maxAgeSeconds }),
      serializeCookie(this.names.marker, '1', { secure: this.secure, maxAgeSeconds, httpOnly: false }),
    ];
  }

  clearSessionCookies(): string[] {
    return [
      serializeCookie(this.names.session, '', { secure: this.secure, maxAgeSeconds: 0 }),
      serializeCookie(this.names.marker, '', { secure: this.secure, maxAgeSeconds: 0, httpOnly: false }),
    ];
  }

  /** Ends the session a request's cookie names (before replacing it, or at logout). */
  endCookieSession(req: IncomingMessage, reason: string): void {
    const id = readCookie(req, this.names.session);
    if (!id) return;
    const ended = this.sessions.delete(id);
    if (ended) this.revoke((p) => isAccessPrincipal(p) && p.sessionKey === ended.key, reason);
  }

  listLinks(): ShareLinkView[] {
    return this.links.list().map((link) => view(link, link.state));
  }

  async createLink(input: { cameras: unknown; expiresIn: unknown; label: string; createdBy: string }): Promise<CreatedShareLink> {
    let cameras: 'all' | string[];
    if (input.cameras === 'all') {
      cameras = 'all';
    } else if (Array.isArray(input.cameras) && input.cameras.length > 0 && input.cameras.length <= MAX_LINK_CAMERAS) {
      if (!input.cameras.every((c): c is string => typeof c === 'string' && isCameraId(c))) {
        throw new HttpError(400, 'bad-request', 'cameras must be camera ids (lower-case letters, digits and "-")');
      }
      cameras = input.cameras;
      const known = this.options.cameraIds ? new Set(this.options.cameraIds()) : undefined;
      const missing = known ? cameras.filter((c) => !known.has(c)) : [];
      if (missing.length > 0) throw new HttpError(400, 'bad-request', `No camera has the id ${missing.map((c) => `"${c}"`).join(', ')}`);
    } else {
      throw new HttpError(400, 'bad-request', `cameras must be "all" or a list of 1 to ${MAX_LINK_CAMERAS} camera ids`);
    }
    let expiresInMs: number | null;
    try {
      // `null` is a setting ("never"), so `??` would lose it.
      const fallback = this.options.defaultLinkExpiryMs === undefined ? EXPIRY_PRESETS['1d'] : this.options.defaultLinkExpiryMs;
      expiresInMs = parseExpiresIn(input.expiresIn, fallback);
    } catch (error) {
      throw new HttpError(400, 'bad-request', (error as Error).message);
    }
    let made;
    try {
      made = await this.links.create({ cameras, expiresInMs, label: input.label, createdBy: input.createdBy });
    } catch (error) {
      throw new HttpError(409, 'too-many-links', error instanceof Error ? error.message : String(error));
    }
    this.log.info(`'${input.createdBy}' created share link ${made.link.id}${made.link.label ? ` ("${made.link.label}")` : ''}`);
    const path = `/s/${made.token}`;
    const base = this.options.publicUrl?.replace(/\/+$/, '');
    return { ...view(made.link, 'active'), token: made.token, path, ...(base ? { url: `${base}${path}` } : {}) };
  }

  async revokeById(id: string, by: string): Promise<boolean> {
    const link = await this.links.revoke(id);
    if (!link) return false;
    this.log.info(`'${by}' revoked share link ${id}`);
    this.revokeLink(id, 'Share link revoked');
    return true;
  }

  /** Stops the timers and writes pending state. */
  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.peers.stop();
    await Promise.all([this.sessions.flush(), this.links.flush()]);
  }

  private revokeLink(linkId: string, reason: string): void {
    this.linkPrincipals.delete(linkId);
    this.sessions.deleteWhere((s) => s.kind === 'link' && s.subject === linkId);
    this.revoke((p) => isAccessPrincipal(p) && p.linkId === linkId, reason);
  }

  private linkPrincipal(link: ShareLink): AccessPrincipal {
    let principal = this.linkPrincipals.get(link.id);
    if (!principal) {
      principal = Object.freeze({ name: linkPrincipalName(link.id), kind: 'link' as const, cameras: link.cameras, admin: false, linkId: link.id });
      this.linkPrincipals.set(link.id, principal);
    }
    return principal;
  }
}
