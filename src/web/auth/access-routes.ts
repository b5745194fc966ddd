/**
 * The routes access control adds to the web server: the sign-in form and JSON sign-in (`/login`),
 * `/logout`, opening a share link (`/s/<token>`), `/api/session`, and the share-link API for
 * admins. Each is a small function over the `AccessState`.
 */
import { refusalLog } from '../../util/summary-log.js';
import { HttpError, mediaType } from '../http-util.js';
import type { RouteContext, WebRoute } from '../types.js';
import { CSRF_HEADER, LOGIN_PATH } from './access-contract.js';
import type { AccessState } from './access-state.js';
import { LoginBusyError, MAX_PASSWORD_LENGTH, MAX_USERNAME_LENGTH } from './accounts.js';
import { clientKey } from '../../access/client-address.js';
import { readCookie, serializeCookie } from './cookies.js';
import { LOGIN_FORM_MAX_AGE_MS } from './login-form.js';
import { linkInvalidPage, linkLandingPage, loginPage, tooManyAttemptsPage } from './pages.js';
import { isAccessPrincipal } from './principals.js';
import { MAX_LABEL_LENGTH, MAX_TOKEN_LENGTH, isLinkId } from './share-links.js';

const MAX_LOGIN_BODY = 4 * 1024;

function sendHtml(ctx: RouteContext, status: number, html: string, headers: Record<string, string | string[]> = {}): void {
  const body = Buffer.from(html, 'utf8');
  ctx.res.statusCode = status;
  ctx.res.setHeader('Content-Type', 'text/html; charset=utf-8');
  ctx.res.setHeader('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(headers)) ctx.res.setHeader(name, value);
  ctx.res.setHeader('Content-Length', body.length);
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : body);
}

function redirectHome(ctx: RouteContext): void {
  ctx.res.statusCode = 303;
  ctx.res.setHeader('Location', '/');
  ctx.res.setHeader('Cache-Control', 'no-store');
  ctx.res.end();
}

function noContent(ctx: RouteContext): void {
  ctx.res.statusCode = 204;
  ctx.res.setHeader('Cache-Control', 'no-store');
  ctx.res.end();
}

function showLogin(state: AccessState, ctx: RouteContext, status: number, message?: string, extra: Record<string, string> = {}, username?: string): void {
  const token = state.loginForm.issue();
  sendHtml(ctx, status, loginPage({ csrfToken: token, message, username, noAccounts: state.accounts.size === 0 }), {
    'Set-Cookie': serializeCookie(state.names.login, token, { secure: state.secure, maxAgeSeconds: LOGIN_FORM_MAX_AGE_MS / 1000 }),
    // See pages.ts: with no-referrer, browsers send "Origin: null" with the form's POST.
    'Referrer-Policy': 'same-origin',
    ...extra,
  });
}

/** What a sign-in sent: the form (with its hidden CSRF field) or JSON (with the CSRF header). */
interface LoginInput {
  json: boolean;
  username: unknown;
  password: unknown;
  csrf: unknown;
}

async function readLogin(ctx: RouteContext): Promise<LoginInput> {
  const type = mediaType(ctx.req);
  const json = type === 'application/json';
  if (!json && type !== 'application/x-www-form-urlencoded') {
    throw new HttpError(415, 'unsupported-media-type', 'Send the sign-in form or application/json');
  }
  const text = await ctx.readText(MAX_LOGIN_BODY);
  if (!json) {
    const form = new URLSearchParams(text);
    return { json, username: form.get('username'), password: form.get('password'), csrf: form.get('csrf') };
  }
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
  return { json, username: record['username'], password: record['password'], csrf: ctx.req.headers[CSRF_HEADER] };
}

async function signIn(state: AccessState, ctx: RouteContext): Promise<void> {
  const { json, username, password, csrf } = await readLogin(ctx);
  const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}): void => {
    if (json) throw new HttpError(status, code, message, headers);
    showLogin(state, ctx, status, message, headers, typeof username === 'string' ? username.slice(0, MAX_USERNAME_LENGTH) : undefined);
  };
  if (!state.loginForm.valid(ctx.req, typeof csrf === 'string' ? csrf : undefined)) {
    return fail(403, 'csrf', 'The sign-in form expired. Please try again.');
  }
  if (typeof username !== 'string' || typeof password !== 'string' || username.length === 0 || password.length === 0) {
    return fail(400, 'bad-request', 'Enter a user name and a password.');
  }
  if (username.length > MAX_USERNAME_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
    return fail(400, 'bad-request', 'The user name or password is too long.');
  }
  const ip = clientKey(ctx.remoteAddress);
  const admission = state.limiter.admit(ip);
  if (!admission.allowed) {
    const seconds = Math.max(1, Math.ceil(admission.retryAfterMs / 1000));
    return fail(429, 'too-many-attempts', `Too many attempts. Please wait ${seconds} s and try again.`, { 'Retry-After': String(seconds) });
  }
  let account;
  try {
    account = await state.accounts.authenticate(username, password);
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
    const who = state.accounts.get(username) ? `'${username}'` : 'an unknown user name';
    refusalLog(state.log).note('warn', `Sign-in failed from ${ip}`, `Sign-in failed for ${who} from ${ip}`);
    return fail(401, 'unauthorized', 'Wrong user name or password.');
  }
  // A fresh id at every sign-in (no session fixation); the old session, if any, ends.
  state.endCookieSession(ctx.req, 'Signed in again');
  const made = state.sessions.create('user', account.username);
  if (!made) throw new HttpError(500, 'internal', 'The session could not be created');
  state.log.info(`'${account.username}' signed in from ${ip}`);
  const cookies = [...state.sessionCookies(made.id, made.session), serializeCookie(state.names.login, '', { secure: state.secure, maxAgeSeconds: 0 })];
  ctx.res.setHeader('Set-Cookie', cookies);
  if (json) {
    ctx.sendJson(200, { name: account.username, admin: account.admin, cameras: account.cameras, csrfToken: state.sessions.csrfToken(made.id) });
    return;
  }
  redirectHome(ctx);
}

function signOut(state: AccessState, ctx: RouteContext): void {
  const principal = ctx.principal;
  if (!principal || !isAccessPrincipal(principal) || principal.sessionKey === undefined) {
    throw new HttpError(400, 'bad-request', 'There is no sign-in session to end (bearer tokens are not sessions)');
  }
  state.endCookieSession(ctx.req, 'Signed out');
  ctx.res.setHeader('Set-Cookie', state.clearSessionCookies());
  noContent(ctx);
}

function describeSession(state: AccessState, ctx: RouteContext): void {
  const principal = ctx.principal!;
  const access = isAccessPrincipal(principal) ? principal : undefined;
  const id = access?.sessionKey !== undefined ? readCookie(ctx.req, state.names.session) : undefined;
  const link = access?.linkId !== undefined ? state.links.get(access.linkId) : undefined;
  ctx.sendJson(200, {
    name: access?.kind === 'link' ? (link?.label ?? '') || 'Shared link' : principal.name,
    kind: access?.kind ?? 'user',
    admin: principal.admin,
    cameras: principal.cameras,
    csrfToken: id ? state.sessions.csrfToken(id) : null,
    linkExpiresAt: link?.expiresAt ? new Date(link.expiresAt).toISOString() : null,
  });
}

async function createLinkRoute(state: AccessState, ctx: RouteContext): Promise<void> {
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
  const created = await state.createLink({ cameras: record['cameras'], expiresIn: record['expiresIn'], label, createdBy: ctx.principal!.name });
  ctx.sendJson(201, created, { Location: `/api/share-links/${created.id}` });
}

function openShareLink(state: AccessState, ctx: RouteContext): void {
  const ip = clientKey(ctx.remoteAddress);
  const wait = state.tokenLimiter.blockedFor(ip);
  if (wait > 0) {
    const seconds = Math.ceil(wait / 1000);
    sendHtml(ctx, 429, tooManyAttemptsPage(seconds), { 'Retry-After': String(seconds) });
    return;
  }
  const token = ctx.params['token'] ?? '';
  const result = token.length <= MAX_TOKEN_LENGTH ? state.links.verify(token) : ({ ok: false, reason: 'malformed' } as const);
  if (!result.ok) {
    state.tokenLimiter.fail(ip);
    state.log.debug(`A share link was refused (${result.reason}) from ${ip}`);
    sendHtml(ctx, 401, linkInvalidPage());
    return;
  }
  state.endCookieSession(ctx.req, 'Opened a share link');
  const made = state.sessions.create('link', result.link.id, result.link.expiresAt ?? undefined);
  if (!made) throw new HttpError(500, 'internal', 'The session could not be created');
  sendHtml(ctx, 200, linkLandingPage(), { 'Set-Cookie': state.sessionCookies(made.id, made.session) });
}

export function accessRoutes(state: AccessState): WebRoute[] {
  return [
    {
      method: 'GET',
      path: LOGIN_PATH,
      auth: 'public',
      handle(ctx) {
        if (ctx.principal && isAccessPrincipal(ctx.principal) && ctx.principal.kind !== 'anonymous') {
          redirectHome(ctx);
          return;
        }
        showLogin(state, ctx, 200);
      },
    },
    { method: 'POST', path: LOGIN_PATH, auth: 'public', handle: (ctx) => signIn(state, ctx) },
    { method: 'POST', path: '/logout', auth: 'viewer', handle: (ctx) => signOut(state, ctx) },
    { method: 'GET', path: '/api/session', auth: 'viewer', handle: (ctx) => describeSession(state, ctx) },
    { method: 'GET', path: '/api/share-links', auth: 'admin', handle: (ctx) => ctx.sendJson(200, state.listLinks()) },
    { method: 'POST', path: '/api/share-links', auth: 'admin', handle: (ctx) => createLinkRoute(state, ctx) },
    {
      method: 'DELETE',
      path: '/api/share-links/:id',
      auth: 'admin',
      async handle(ctx) {
        const id = ctx.params['id'] ?? '';
        if (!isLinkId(id) || !(await state.revokeById(id, ctx.principal!.name))) throw new HttpError(404, 'not-found', 'No such share link');
        noContent(ctx);
      },
    },
    { method: 'GET', path: '/s/:token', auth: 'public', handle: (ctx) => openShareLink(state, ctx) },
  ];
}
