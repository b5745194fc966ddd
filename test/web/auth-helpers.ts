/**
 * Helpers for the access-control tests: a raw HTTP(S) client that can pick its loopback source
 * address (127.0.0.2...) and keeps cookies, a server wired the way the platform wires it (access
 * control's authorize, routes, loginPath, secrets, guarded handlers, onRevoke -> disconnect), and a
 * log recorder so tests can grep every line for secrets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { createAccessControl, type AccessControl, type AccessControlOptions } from '../../src/web/auth/index.js';
import { createWebServer, type WebServer, type WebServerOptions } from '../../src/web/server.js';
import type { Logger } from '../../src/util/logger.js';
import type { CameraRegistry, SignallingHandler, WhepHandler } from '../../src/web/types.js';

export const CAMERA_PASSWORD = 'hunter2-secret';

export const VIEWERS = {
  alice: { username: 'alice', password: 'Alice-Admin-Pass-91', cameras: [] as string[], admin: true },
  bob: { username: 'bob', password: 'Bob-Viewer-Pass-27', cameras: ['front-door'], admin: false },
  carol: { username: 'carol', password: 'Carol-Viewer-Pass-38', cameras: ['garden', 'garage'], admin: false },
};
export const VIEWER_PASSWORDS = Object.values(VIEWERS).map((v) => v.password);

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  setCookies: string[];
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Source address of the connection (any 127.x works on Linux loopback). */
  localAddress?: string;
  jar?: CookieJar;
}

/** A tiny cookie jar: remembers name=value pairs and honours Max-Age=0 deletions. */
export class CookieJar {
  readonly cookies = new Map<string, string>();
  /** The raw Set-Cookie lines seen, for attribute checks. */
  readonly raw: string[] = [];

  store(lines: string[]): void {
    for (const line of lines) {
      this.raw.push(line);
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/max-age=0(;|$)/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get(name: string): string | undefined {
    return this.cookies.get(name);
  }
}

export function request(url: string, options: RequestOptions = {}): Promise<HttpAnswer> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.jar && options.jar.cookies.size > 0 && headers['Cookie'] === undefined) headers['Cookie'] = options.jar.header();
  if (options.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(options.body));
  const make = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = make(
      target,
      { method: options.method ?? 'GET', headers, localAddress: options.localAddress, rejectUnauthorized: false, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const setCookies = res.headers['set-cookie'] ?? [];
          options.jar?.store(setCookies);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), setCookies });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('request timed out')));
    req.end(options.body);
  });
}

/** The hidden CSRF field of the sign-in form. */
export function formToken(html: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error(`no csrf field in: ${html.slice(0, 300)}`);
  return match[1]!;
}

export interface SignedIn {
  jar: CookieJar;
  csrf: string;
  status: number;
}

/** Signs in the way the form does it, or with JSON; returns the jar and the session's CSRF token. */
export async function signIn(base: string, username: string, password: string, options: { localAddress?: string } = {}): Promise<SignedIn> {
  const jar = new CookieJar();
  const form = await request(`${base}/login`, { jar, localAddress: options.localAddress });
  const answer = await request(`${base}/login`, {
    method: 'POST',
    jar,
    localAddress: options.localAddress,
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': formToken(form.body) },
    body: JSON.stringify({ username, password }),
  });
  const csrf = answer.status === 200 ? (JSON.parse(answer.body) as { csrfToken: string }).csrfToken : '';
  return { jar, csrf, status: answer.status };
}

export function recordingLogger(lines: string[]): Logger {
  const record = (level: string) => (message: string, ...parameters: unknown[]) =>
    lines.push(`${level} ${message} ${parameters.map(String).join(' ')}`);
  return { info: record('info'), warn: record('warn'), error: record('error'), debug: record('debug') };
}

export interface SecuredServer {
  server: WebServer;
  access: AccessControl;
  base: string;
  port: number;
  storage: string;
  logs: string[];
  /** Moves the access-control clock (expiry tests). */
  clock: { now: number };
  close(): Promise<void>;
}

export interface SecuredOptions {
  registry: CameraRegistry;
  /** Where the server and access control log (default: recorded into `logs`). */
  log?: Logger;
  signalling?: SignallingHandler;
  whep?: WhepHandler;
  access?: Partial<AccessControlOptions>;
  web?: Partial<WebServerOptions>;
  storage?: string;
}

/** A web server wired to access control exactly as the platform does it. */
export async function startSecured(options: SecuredOptions): Promise<SecuredServer> {
  const logs: string[] = [];
  const log = options.log ?? recordingLogger(logs);
  const storage = options.storage ?? (await mkdtemp(join(tmpdir(), 'wrc-auth-')));
  const clock = { now: Date.now() };
  const access = await createAccessControl({
    viewers: Object.values(VIEWERS),
    storagePath: storage,
    log,
    now: () => clock.now,
    cameraIds: () => options.registry.list().map((s) => s.id),
    sweepIntervalMs: 100,
    ...options.access,
  });
  const server = createWebServer({
    port: 0,
    host: '127.0.0.1',
    registry: options.registry,
    log,
    authorize: access.authorize,
    routes: access.routes,
    loginPath: access.loginPath,
    secrets: () => [...access.secrets(), CAMERA_PASSWORD],
    signalling: options.signalling ? access.guardSignalling(options.signalling) : undefined,
    whep: options.whep ? access.guardWhep(options.whep) : undefined,
    ...options.web,
  });
  access.onRevoke((predicate, reason) => server.disconnect(predicate, reason));
  const { port, url } = await server.listen();
  const base = url.replace(/\/$/, '');
  return {
    server,
    access,
    base,
    port,
    storage,
    logs,
    clock,
    async close() {
      await server.close();
      await access.stop();
      if (!options.storage) await rm(storage, { recursive: true, force: true });
    },
  };
}

export interface OpenedSocket {
  ws: WebSocket;
  status: 101;
  /** Every message, from the first (a server may answer and close in the same packet as the handshake). */
  messages: string[];
  closed: Promise<{ code: number; reason: string; at: number }>;
}

/** The statuses a refused handshake can have here (a literal union, so `status === 101` narrows). */
export type RefusedStatus = 0 | 400 | 401 | 403 | 404 | 429 | 431 | 500 | 503;

/** Opens a WebSocket; resolves with it once open, or with the refusal status. */
export function openSocket(
  url: string,
  headers: Record<string, string> = {},
  extra: { localAddress?: string } = {},
): Promise<OpenedSocket | { status: RefusedStatus }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, rejectUnauthorized: false, localAddress: extra.localAddress });
    const messages: string[] = [];
    ws.on('message', (data) => messages.push(String(data)));
    const closed = closedWith(ws);
    ws.once('open', () => resolve({ ws, status: 101, messages, closed }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ status: (res.statusCode ?? 0) as RefusedStatus });
      res.resume();
      ws.terminate();
    });
    ws.once('error', () => resolve({ status: 0 }));
  });
}

export function closedWith(ws: WebSocket): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })));
}
