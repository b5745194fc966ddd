/**
 * Access control for the web server: who may watch which camera, and how they proved it.
 *
 * Three ways in, checked by `authorize` on every route, the `/signal` upgrade and WHEP:
 * - `Authorization: Bearer <share-link token>` (WHEP players, scripts); an explicit credential
 *   always wins, and a wrong one is 401 even if a cookie is present;
 * - the session cookie, set by the sign-in form (`/login`) or by opening a share link (`/s/<token>`);
 *   state-changing requests on a cookie session must carry the session's CSRF token
 *   (`X-CSRF-Token`), or they get 403;
 * - with `allowAnonymousLoopback` only (the demo on 127.0.0.1): a request from this machine, to a
 *   loopback host name, without credentials.
 * Nothing else gets in: with no viewer configured the page asks for a sign-in nobody can give,
 * and the log says how to add a viewer.
 *
 * Revocation (a link revoked or expired, a logout) tells every `onRevoke` listener which principals
 * ended (the platform passes them to the web server's `disconnect`), and ends their WHEP sessions.
 */
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { silentLogger, type Logger } from '../../util/logger.js';
import { refusalLog } from '../../util/summary-log.js';
import { HttpError, isCameraId, mediaType } from '../http-util.js';
import type { Authorize, Principal, RouteContext, SignallingHandler, WebRoute, WhepHandler } from '../types.js';
import { AccountStore, LoginBusyError, MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH, type ViewerAccountConfig } from './accounts.js';
import { clientKey, isLoopbackAddress, isLoopbackHost, socketAddressOf, type ClientAddressOf } from '../../access/client-address.js';
import { cookieNames, readCookie, serializeCookie } from './cookies.js';
import { linkInvalidPage, linkLandingPage, loginPage, tooManyAttemptsPage } from './pages.js';
import { PeerGuard, type PeerLimitSettings } from './peer-guard.js';
import { ANONYMOUS_LOOPBACK, isAccessPrincipal, linkPrincipalName, type AccessPrincipal } from './principals.js';
import { LoginRateLimiter, type RateLimitSettings } from './rate-limiter.js';
import { DEFAULT_SESSION_SETTINGS, SessionStore, type Session, type SessionKind, type SessionSettings } from './sessions.js';
import {
  EXPIRY_PRESETS,
  MAX_LABEL_LENGTH,
  MAX_TOKEN_LENGTH,
  ShareLinkStore,
  isLinkId,
  parseExpiresIn,
  type ShareLink,
  type ShareLinkState,
} from './share-links.js';
import { ensureStorageDir, readOrCreateSecret } from '../../util/storage.js';
import { safeEqual } from '../../util/safe-equal.js';

export const LOGIN_PATH = '/login';
export const CSRF_HEADER = 'x-csrf-token';
/** A sign-in form older than this must be reloaded (its CSRF token expired). */
const LOGIN_FORM_MAX_AGE_MS = 2 * 3_600_000;
const MAX_LOGIN_BODY = 4 * 1024;
const MAX_LINK_CAMERAS = 64;

export type RevokeListener = (predicate: (principal: Principal) => boolean, reason: string) => void;

export interface AccessControlOptions {
  /** The configured viewers (config `viewers`). Passwords may be plaintext or `scrypt$...`. */
  viewers: ReadonlyArray<ViewerAccountConfig>;
  /** Homebridge's storage path; files go to `<storagePath>/webrtc-cameras/` and nowhere else. */
  storagePath: string;
  /** The page is served over HTTPS (or a TLS proxy): cookies get `Secure` and `__Host-` names. */
  tls?: boolean;
  log?: Logger;
  /** The clock (tests). */
  now?: () => number;
  /**
   * Let requests from this machine (127.0.0.0/8, ::1, to a loopback Host) in without credentials,
   * as a viewer of every camera (never admin). For the demo on 127.0.0.1 only: behind a reverse
   * proxy on the same machine every visitor would look local.
   */
  allowAnonymousLoopback?: boolean;
  /** Expiry of a new share link when the request names none (config `shareLinks.defaultExpiryMs`; `null`: never). */
  defaultLinkExpiryMs?: number | null;
  /** The page's public address (config `web.publicUrl`), to return absolute share-link URLs. */
  publicUrl?: string;
  /** The camera ids that exist; share links naming others are refused. */
  cameraIds?: () => Iterable<string>;
  /** Who a request comes from (trusted reverse proxies); default the TCP peer. */
  clientAddress?: ClientAddressOf;
  sessions?: Partial<SessionSettings>;
  rateLimit?: Partial<RateLimitSettings>;
  peers?: Partial<PeerLimitSettings>;
  /** How often expired links and sessions are looked for (their sockets closed). Default 1 s. */
  sweepIntervalMs?: number;
  maxShareLinks?: number;
}

export interface ShareLinkView {
  id: string;
  label: string;
  cameras: 'all' | ReadonlyArray<string>;
  createdAt: string;
  expiresAt: string | null;
  createdBy: string;
  revokedAt: string | null;
  state: ShareLinkState;
}

export interface CreatedShareLink extends ShareLinkView {
  /** The bearer token (also the last part of `path`). Shown once, at creation. */
  token: string;
  /** `/s/<token>`: opens the page as this link. */
  path: string;
  /** Absolute URL when `publicUrl` is known. */
  url?: string;
}

export interface AccessControl {
  /** For `createWebServer({ authorize })`. May throw HttpError 403 (CSRF) or 429 (guessing). */
  readonly authorize: Authorize;
  /** For `createWebServer({ routes })`: /login, /logout, /s/:token, /api/session, /api/share-links. */
  readonly routes: ReadonlyArray<WebRoute>;
  /** For `createWebServer({ loginPath })`. */
  readonly loginPath: string;
  /** Viewer passwords, for `createWebServer({ secrets })` (they are masked in anything sent or logged). */
  secrets(): Iterable<string>;
  /** Called with "these principals lost access"; pass it to the web server's `disconnect`. Returns an unsubscribe. */
  onRevoke(listener: RevokeListener): () => void;
  /** Wraps the signalling handler with per-user/per-address limits and the idle-socket reaper. */
  guardSignalling(handler: SignallingHandler): SignallingHandler;
  /** Wraps the WHEP handler with the same limits, and ends a revoked principal's WHEP sessions. */
  guardWhep(handler: WhepHandler): WhepHandler;
  /** Share links without HTTP (a future Homebridge UI, tests). */
  readonly shareLinks: {
    create(input: { cameras: 'all' | ReadonlyArray<string>; expiresIn?: unknown; label?: string; createdBy: string }): Promise<CreatedShareLink>;
    list(): ShareLinkView[];
    revoke(id: string): Promise<boolean>;
  };
  readonly accountCount: number;
  /** Stops the timers and writes pending state. */
  stop(): Promise<void>;
}

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

/** Builds access control: reads or makes the secret, hashes the passwords, loads links and sessions. */
export async function createAccessControl(options: AccessControlOptions): Promise<AccessControl> {
  const log = options.log ?? silentLogger;
  const now = options.now ?? Date.now;
  const secure = options.tls === true;
  const names = cookieNames(secure);
  const dir = await ensureStorageDir(options.storagePath);
  const { key: secret, created } = await readOrCreateSecret(dir);
  if (created) log.info('Made a new signing secret for share links (kept in the Homebridge storage folder, webrtc-cameras/secret.key).');
  const csrfKey = deriveKey(secret, 'session csrf');
  const loginKey = deriveKey(secret, 'login form csrf');

  const accounts = await AccountStore.create(options.viewers, log);
  const plaintextPasswords = new Set(options.viewers.map((v) => v.password).filter((p) => p.length > 0));
  const links = new ShareLinkStore({ dir, key: deriveKey(secret, 'share links'), now, log, maxLinks: options.maxShareLinks ?? 500 });
  await links.load();
  const limiter = new LoginRateLimiter(options.rateLimit, now);
  // Wrong share-link and bearer tokens count apart from wrong passwords: a stale share link
  // retried by a family tablet must not lock the family's password sign-ins out of that address.
  const tokenLimiter = new LoginRateLimiter(options.rateLimit, now);
  const peers = new PeerGuard(options.peers, log);
  const revokeListeners = new Set<RevokeListener>();
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
      return Object.freeze({ name: account.username, kind, cameras: account.cameras, admin: account.admin, sessionKey });
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

  if (accounts.size === 0) {
    log.warn(
      'No viewer accounts are configured, so the web page asks for a sign-in that nobody can give yet. ' +
        'In the Homebridge UI open the WebRTC Cameras plugin settings, "Viewers and share links", add a viewer ' +
        'with a user name and password (tick "Administrator" to create share links), save, and restart.',
    );
  } else {
    log.info(`Web page sign-in: ${accounts.size} viewer account${accounts.size === 1 ? '' : 's'}.`);
  }
  if (options.allowAnonymousLoopback) log.info('Anonymous viewing is allowed from this computer (localhost) only.');

  const revoke = (predicate: (principal: Principal) => boolean, reason: string): void => {
    for (const listener of revokeListeners) {
      try {
        listener(predicate, reason);
      } catch (error) {
        log.error(`A revocation listener failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    void peers.closeWhep(predicate);
  };
  const revokeLink = (linkId: string, reason: string): void => {
    linkPrincipals.delete(linkId);
    sessions.deleteWhere((s) => s.kind === 'link' && s.subject === linkId);
    revoke((p) => isAccessPrincipal(p) && p.linkId === linkId, reason);
  };

  const sweepTimer = setInterval(() => {
    for (const link of links.takeNewlyExpired()) revokeLink(link.id, 'Share link expired');
    sessions.sweep();
  }, options.sweepIntervalMs ?? 1000);
  sweepTimer.unref();

  const linkPrincipal = (link: ShareLink): AccessPrincipal => {
    let principal = linkPrincipals.get(link.id);
    if (!principal) {
      principal = Object.freeze({ name: linkPrincipalName(link.id), kind: 'link' as const, cameras: link.cameras, admin: false, linkId: link.id });
      linkPrincipals.set(link.id, principal);
    }
    return principal;
  };

  const listLinks = (): ShareLinkView[] => links.list().map((link) => view(link, link.state));
  const clientAddress = options.clientAddress ?? socketAddressOf;
  const authorize: Authorize = (req) => {
    const authorization = req.headers.authorization;
    if (authorization !== undefined) {
      // Only wrong tokens are counted, so only this path needs the caller's address.
      const ip = clientKey(clientAddress(req));
      const token = /^Bearer +([!-~]{1,256})$/i.exec(authorization.trim())?.[1];
      if (!token) return undefined;
      const wait = tokenLimiter.blockedFor(ip);
      // An upgrade cannot carry a JSON 429; it simply gets 401.
      if (wait > 0) {
        if (req.headers.upgrade) return undefined;
        throw new HttpError(429, 'too-many-attempts', 'Too many wrong tokens; wait and try again', { 'Retry-After': String(Math.ceil(wait / 1000)) });
      }
      const result = links.verify(token);
      if (!result.ok) {
        tokenLimiter.fail(ip);
        log.debug(`A bearer token was refused (${result.reason}) from ${ip}`);
        return undefined;
      }
      return linkPrincipal(result.link);
    }
    const sessionId = readCookie(req, names.session);
    if (sessionId) {
      const session = sessions.get(sessionId);
      if (session) {
        // POST /login checks its own form token (a session may not exist yet).
        if (changesState(req) && pathOf(req) !== LOGIN_PATH) {
          const given = req.headers[CSRF_HEADER];
          if (typeof given !== 'string' || !safeEqual(given, sessions.csrfToken(sessionId))) {
            throw new HttpError(403, 'csrf', 'This request lacks the page\u2019s security token; reload the page and try again');
          }
        }
        return session.principal;
      }
    }
    if (options.allowAnonymousLoopback && isLoopbackAddress(req.socket.remoteAddress) && isLoopbackHost(req.headers.host) && !proxied(req)) {
      return ANONYMOUS_LOOPBACK;
    }
    return undefined;
  };

  /* ------------------------------------------------------------- login form CSRF (pre-session) */

  const loginToken = (): string => {
    const nonce = randomBytes(16).toString('base64url');
    const issued = now().toString(36);
    const mac = createHmac('sha256', loginKey).update(`${nonce}.${issued}`).digest('base64url');
    return `${nonce}.${issued}.${mac}`;
  };
  /** Double submit: the hidden field must equal the cookie, and be a fresh token this server made. */
  const loginTokenValid = (req: IncomingMessage, given: string | undefined): boolean => {
    const cookie = readCookie(req, names.login);
    if (!given || !cookie || given.length > 128 || !safeEqual(given, cookie)) return false;
    const [nonce, issued, mac] = given.split('.');
    if (!nonce || !issued || !mac) return false;
    const expected = createHmac('sha256', loginKey).update(`${nonce}.${issued}`).digest('base64url');
    if (!safeEqual(mac, expected)) return false;
    const age = now() - parseInt(issued, 36);
    return age >= 0 && age <= LOGIN_FORM_MAX_AGE_MS;
  };

  const sendHtml = (ctx: RouteContext, status: number, html: string, headers: Record<string, string | string[]> = {}): void => {
    const body = Buffer.from(html, 'utf8');
    ctx.res.statusCode = status;
    ctx.res.setHeader('Content-Type', 'text/html; charset=utf-8');
    ctx.res.setHeader('Cache-Control', 'no-store');
    for (const [name, value] of Object.entries(headers)) ctx.res.setHeader(name, value);
    ctx.res.setHeader('Content-Length', body.length);
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
  };

  const showLogin = (ctx: RouteContext, status: number, message?: string, extra: Record<string, string> = {}, username?: string): void => {
    const token = loginToken();
    sendHtml(
      ctx,
      status,
      loginPage({ csrfToken: token, message, username, noAccounts: accounts.size === 0 }),
      {
        'Set-Cookie': serializeCookie(names.login, token, { secure, maxAgeSeconds: LOGIN_FORM_MAX_AGE_MS / 1000 }),
        // See pages.ts: with no-referrer, browsers send "Origin: null" with the form's POST.
        'Referrer-Policy': 'same-origin',
        ...extra,
      },
    );
  };

  const sessionCookies = (id: string, session: Session): string[] => {
    const maxAgeSeconds = (session.endsAt - now()) / 1000;
    return [
      serializeCookie(names.session, id, { secure, maxAgeSeconds }),
      serializeCookie(names.marker, '1', { secure, maxAgeSeconds, httpOnly: false }),
    ];
  };
  const clearSessionCookies = (): string[] => [
    serializeCookie(names.session, '', { secure, maxAgeSeconds: 0 }),
    serializeCookie(names.marker, '', { secure, maxAgeSeconds: 0, httpOnly: false }),
  ];

  /** Ends the session a request's cookie names (before replacing it, or at logout). */
  const endCookieSession = (req: IncomingMessage, reason: string): void => {
    const id = readCookie(req, names.session);
    if (!id) return;
    const ended = sessions.delete(id);
    if (ended) revoke((p) => isAccessPrincipal(p) && p.sessionKey === ended.key, reason);
  };

  /* ------------------------------------------------------------------------------------ routes */

  const routes: WebRoute[] = [
    {
      method: 'GET',
      path: LOGIN_PATH,
      auth: 'public',
      handle(ctx) {
        if (ctx.principal && isAccessPrincipal(ctx.principal) && ctx.principal.kind !== 'anonymous') {
          ctx.res.statusCode = 303;
          ctx.res.setHeader('Location', '/');
          ctx.res.setHeader('Cache-Control', 'no-store');
          ctx.res.end();
          return;
        }
        showLogin(ctx, 200);
      },
    },
    {
      method: 'POST',
      path: LOGIN_PATH,
      auth: 'public',
      async handle(ctx) {
        const type = mediaType(ctx.req);
        const json = type === 'application/json';
        if (!json && type !== 'application/x-www-form-urlencoded') {
          throw new HttpError(415, 'unsupported-media-type', 'Send the sign-in form or application/json');
        }
        const text = await ctx.readText(MAX_LOGIN_BODY);
        let username: unknown;
        let password: unknown;
        let csrf: unknown;
        if (json) {
          let body: unknown;
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            throw new HttpError(400, 'bad-request', 'The body is not valid JSON');
          }
          if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'bad-request', 'Send {"username","password"}');
          const record = body as Record<string, unknown>;
          const unknown = Object.keys(record).filter((k) => k !== 'username' && k !== 'password');
          if (unknown.length > 0) throw new HttpError(400, 'bad-request', 'Only "username" and "password" are accepted');
          ({ username, password } = record);
          csrf = ctx.req.headers[CSRF_HEADER];
        } else {
          const form = new URLSearchParams(text);
          username = form.get('username');
          password = form.get('password');
          csrf = form.get('csrf');
        }
        const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}): void => {
          if (json) throw new HttpError(status, code, message, headers);
          showLogin(ctx, status, message, headers, typeof username === 'string' ? username.slice(0, MAX_USERNAME_LENGTH) : undefined);
        };
        if (!loginTokenValid(ctx.req, typeof csrf === 'string' ? csrf : undefined)) {
          return fail(403, 'csrf', 'The sign-in form expired. Please try again.');
        }
        if (typeof username !== 'string' || typeof password !== 'string' || username.length === 0 || password.length === 0) {
          return fail(400, 'bad-request', 'Enter a user name and a password.');
        }
        if (username.length > MAX_USERNAME_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
          return fail(400, 'bad-request', 'The user name or password is too long.');
        }
        const ip = clientKey(ctx.remoteAddress);
        const admission = limiter.admit(ip);
        if (!admission.allowed) {
          const seconds = Math.max(1, Math.ceil(admission.retryAfterMs / 1000));
          return fail(429, 'too-many-attempts', `Too many attempts. Please wait ${seconds} s and try again.`, { 'Retry-After': String(seconds) });
        }
        let account;
        try {
          account = await accounts.authenticate(username, password);
        } catch (error) {
          admission.done(true);
          if (error instanceof LoginBusyError) {
            return fail(503, 'busy', 'The server is busy. Please try again in a few seconds.', { 'Retry-After': '5' });
          }
          throw error;
        }
        admission.done(account !== undefined);
        if (!account) {
          // Never the typed name when it is not an account: it may be a password typed in the wrong field.
          const who = accounts.get(username) ? `'${username}'` : 'an unknown user name';
          refusalLog(log).note('warn', `Sign-in failed from ${ip}`, `Sign-in failed for ${who} from ${ip}`);
          return fail(401, 'unauthorized', 'Wrong user name or password.');
        }
        // A fresh id at every sign-in (no session fixation); the old session, if any, ends.
        endCookieSession(ctx.req, 'Signed in again');
        const made = sessions.create('user', account.username);
        if (!made) throw new HttpError(500, 'internal', 'The session could not be created');
        log.info(`'${account.username}' signed in from ${ip}`);
        const cookies = [...sessionCookies(made.id, made.session), serializeCookie(names.login, '', { secure, maxAgeSeconds: 0 })];
        ctx.res.setHeader('Set-Cookie', cookies);
        if (json) {
          ctx.sendJson(200, {
            name: account.username,
            admin: account.admin,
            cameras: account.cameras,
            csrfToken: sessions.csrfToken(made.id),
          });
          return;
        }
        ctx.res.statusCode = 303;
        ctx.res.setHeader('Location', '/');
        ctx.res.setHeader('Cache-Control', 'no-store');
        ctx.res.end();
      },
    },
    {
      method: 'POST',
      path: '/logout',
      auth: 'viewer',
      handle(ctx) {
        const principal = ctx.principal;
        if (!principal || !isAccessPrincipal(principal) || principal.sessionKey === undefined) {
          throw new HttpError(400, 'bad-request', 'There is no sign-in session to end (bearer tokens are not sessions)');
        }
        endCookieSession(ctx.req, 'Signed out');
        ctx.res.setHeader('Set-Cookie', clearSessionCookies());
        ctx.res.statusCode = 204;
        ctx.res.setHeader('Cache-Control', 'no-store');
        ctx.res.end();
      },
    },
    {
      method: 'GET',
      path: '/api/session',
      auth: 'viewer',
      handle(ctx) {
        const principal = ctx.principal!;
        const access = isAccessPrincipal(principal) ? principal : undefined;
        const id = access?.sessionKey !== undefined ? readCookie(ctx.req, names.session) : undefined;
        const link = access?.linkId !== undefined ? links.get(access.linkId) : undefined;
        ctx.sendJson(200, {
          name: access?.kind === 'link' ? (link?.label ?? '') || 'Shared link' : principal.name,
          kind: access?.kind ?? 'user',
          admin: principal.admin,
          cameras: principal.cameras,
          csrfToken: id ? sessions.csrfToken(id) : null,
          linkExpiresAt: link?.expiresAt ? new Date(link.expiresAt).toISOString() : null,
        });
      },
    },
    {
      method: 'GET',
      path: '/api/share-links',
      auth: 'admin',
      handle(ctx) {
        ctx.sendJson(200, listLinks());
      },
    },
    {
      method: 'POST',
      path: '/api/share-links',
      auth: 'admin',
      async handle(ctx) {
        const body = await ctx.readJson();
        if (typeof body !== 'object' || body === null || Array.isArray(body)) {
          throw new HttpError(400, 'bad-request', 'Send {"cameras": [...], "expiresIn": "1d", "label": "..."}');
        }
        const record = body as Record<string, unknown>;
        const unknown = Object.keys(record).filter((k) => k !== 'cameras' && k !== 'expiresIn' && k !== 'label');
        // Cameras are named by id only: a "url" or "host" here is refused, not ignored.
        if (unknown.length > 0) throw new HttpError(400, 'bad-request', `Unknown field "${unknown[0]!.slice(0, 40)}"; only cameras, expiresIn and label are accepted`);
        const label = record['label'] ?? '';
        if (typeof label !== 'string' || label.length > MAX_LABEL_LENGTH) {
          throw new HttpError(400, 'bad-request', `label must be text of at most ${MAX_LABEL_LENGTH} characters`);
        }
        const created = await createLink({ cameras: record['cameras'], expiresIn: record['expiresIn'], label, createdBy: ctx.principal!.name });
        ctx.sendJson(201, created, { Location: `/api/share-links/${created.id}` });
      },
    },
    {
      method: 'DELETE',
      path: '/api/share-links/:id',
      auth: 'admin',
      async handle(ctx) {
        const id = ctx.params['id'] ?? '';
        if (!isLinkId(id) || !(await revokeById(id, ctx.principal!.name))) throw new HttpError(404, 'not-found', 'No such share link');
        ctx.res.statusCode = 204;
        ctx.res.setHeader('Cache-Control', 'no-store');
        ctx.res.end();
      },
    },
    {
      method: 'GET',
      path: '/s/:token',
      auth: 'public',
      handle(ctx) {
        const ip = clientKey(ctx.remoteAddress);
        const wait = tokenLimiter.blockedFor(ip);
        if (wait > 0) {
          const seconds = Math.ceil(wait / 1000);
          sendHtml(ctx, 429, tooManyAttemptsPage(seconds), { 'Retry-After': String(seconds) });
          return;
        }
        const token = ctx.params['token'] ?? '';
        const result = token.length <= MAX_TOKEN_LENGTH ? links.verify(token) : ({ ok: false, reason: 'malformed' } as const);
        if (!result.ok) {
          tokenLimiter.fail(ip);
          log.debug(`A share link was refused (${result.reason}) from ${ip}`);
          sendHtml(ctx, 401, linkInvalidPage());
          return;
        }
        endCookieSession(ctx.req, 'Opened a share link');
        const made = sessions.create('link', result.link.id, result.link.expiresAt ?? undefined);
        if (!made) throw new HttpError(500, 'internal', 'The session could not be created');
        sendHtml(ctx, 200, linkLandingPage(), { 'Set-Cookie': sessionCookies(made.id, made.session) });
      },
    },
  ];

  const knownCameras = (): Set<string> | undefined => (options.cameraIds ? new Set(options.cameraIds()) : undefined);

  async function createLink(input: { cameras: unknown; expiresIn: unknown; label: string; createdBy: string }): Promise<CreatedShareLink> {
    let cameras: 'all' | string[];
    if (input.cameras === 'all') {
      cameras = 'all';
    } else if (Array.isArray(input.cameras) && input.cameras.length > 0 && input.cameras.length <= MAX_LINK_CAMERAS) {
      if (!input.cameras.every((c): c is string => typeof c === 'string' && isCameraId(c))) {
        throw new HttpError(400, 'bad-request', 'cameras must be camera ids (lower-case letters, digits and "-")');
      }
      cameras = input.cameras;
      const known = knownCameras();
      const missing = known ? cameras.filter((c) => !known.has(c)) : [];
      if (missing.length > 0) throw new HttpError(400, 'bad-request', `No camera has the id ${missing.map((c) => `"${c}"`).join(', ')}`);
    } else {
      throw new HttpError(400, 'bad-request', `cameras must be "all" or a list of 1 to ${MAX_LINK_CAMERAS} camera ids`);
    }
    let expiresInMs: number | null;
    try {
      // `null` is a setting ("never"), so `??` would lose it.
      expiresInMs = parseExpiresIn(input.expiresIn, options.defaultLinkExpiryMs === undefined ? EXPIRY_PRESETS['1d'] : options.defaultLinkExpiryMs);
    } catch (error) {
      throw new HttpError(400, 'bad-request', (error as Error).message);
    }
    let made;
    try {
      made = await links.create({ cameras, expiresInMs, label: input.label, createdBy: input.createdBy });
    } catch (error) {
      throw new HttpError(409, 'too-many-links', error instanceof Error ? error.message : String(error));
    }
    log.info(`'${input.createdBy}' created share link ${made.link.id}${made.link.label ? ` ("${made.link.label}")` : ''}`);
    const path = `/s/${made.token}`;
    const base = options.publicUrl?.replace(/\/+$/, '');
    return { ...view(made.link, 'active'), token: made.token, path, ...(base ? { url: `${base}${path}` } : {}) };
  }

  async function revokeById(id: string, by: string): Promise<boolean> {
    const link = await links.revoke(id);
    if (!link) return false;
    log.info(`'${by}' revoked share link ${id}`);
    revokeLink(id, 'Share link revoked');
    return true;
  }

  return {
    authorize,
    routes,
    loginPath: LOGIN_PATH,
    secrets: () => plaintextPasswords,
    onRevoke(listener) {
      revokeListeners.add(listener);
      return () => revokeListeners.delete(listener);
    },
    guardSignalling: (handler) => peers.signalling(handler),
    guardWhep: (handler) => peers.whep(handler),
    shareLinks: {
      create: (input) => createLink({ cameras: input.cameras, expiresIn: input.expiresIn, label: input.label ?? '', createdBy: input.createdBy }),
      list: listLinks,
      revoke: (id) => revokeById(id, 'the plugin'),
    },
    get accountCount() {
      return accounts.size;
    },
    async stop() {
      clearInterval(sweepTimer);
      peers.stop();
      await Promise.all([sessions.flush(), links.flush()]);
    },
  };
}
