/**
 * The web server: the watch page, the JSON API, WHEP and the `/signal` WebSocket on one port, over
 * HTTP or HTTPS. It owns HTTP concerns only (routing, limits, headers, origins, errors); who may do
 * what is decided by `authorize`, and media by the handlers src/webrtc provides.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseAddressRanges } from '../util/address-ranges.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import { formatHost } from '../util/address.js';
import { apiRoutes } from './api-routes.js';
import { ConnectionGuard } from './connection-guard.js';
import { applySecurityHeaders, decodeUtf8, HttpError, mediaType, readBody, sendError, sendJson } from './http-util.js';
import { OriginPolicy } from './origin-policy.js';
import { allowEveryone } from '../access/principal.js';
import { socketAddressOf, type ClientAddressOf } from '../access/client-address.js';
import { Router, type Route } from './router.js';
import { SignallingGateway } from './signalling-gateway.js';
import { loadStaticAssets, sendAsset, type StaticAsset } from './static-files.js';
import { watchPageAsset } from './page-head.js';
import type {
  Authorize,
  CameraExtras,
  CameraRegistry,
  ClientIceServer,
  Principal,
  RouteContext,
  SignallingHandler,
  SnapshotProvider,
  WebRoute,
  WhepHandler,
} from './types.js';
import { whepRoutes } from './whep-routes.js';
import { ptzRoutes } from './ptz-routes.js';
import type { PtzLookup } from './ptz-types.js';

export interface WebLimits {
  /** Largest JSON request body (login forms, admin calls). */
  maxJsonBytes: number;
  /** Largest WHEP offer or trickle fragment. Real offers are 3-10 KiB. */
  maxSdpBytes: number;
  /** Largest request head; Node answers 431 beyond it. */
  maxHeaderSize: number;
  /** Largest WebSocket message; bigger ones close the socket with 1009. */
  maxWsPayload: number;
  /** Whole request (head and body) must arrive within this. */
  requestTimeoutMs: number;
  /** Request head must arrive within this (slowloris). */
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** A snapshot slower than this is answered 504. */
  snapshotTimeoutMs: number;
  /** Open TCP connections, all clients together. */
  maxConnections: number;
  /** Open TCP connections from one address (IPv6: one /64); trusted proxies are exempt. */
  maxConnectionsPerAddress: number;
  /** Of `maxConnections`, the last this many only for addresses that made an authorised request. */
  reservedForSignedIn: number;
  /** Open signalling WebSockets, all clients together. */
  maxSignallingSockets: number;
  /** Ping interval; a socket that missed one pong is dropped at the next. */
  wsHeartbeatMs: number;
}

export const DEFAULT_LIMITS: Readonly<WebLimits> = Object.freeze({
  maxJsonBytes: 16 * 1024,
  maxSdpBytes: 64 * 1024,
  maxHeaderSize: 16 * 1024,
  maxWsPayload: 64 * 1024,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  snapshotTimeoutMs: 10_000,
  maxConnections: 1024,
  maxConnectionsPerAddress: 64,
  reservedForSignedIn: 128,
  maxSignallingSockets: 256,
  wsHeartbeatMs: 30_000,
});

export interface WebServerOptions {
  /** TCP port; 0 picks a free one (tests). */
  port: number;
  /** Bind address; default `0.0.0.0` (the LAN). The demo binds `127.0.0.1`. */
  host?: string;
  /** Serve HTTPS with these PEM buffers instead of HTTP. */
  tls?: { cert: Buffer | string; key: Buffer | string };
  registry: CameraRegistry;
  /** Who is calling; default grants everyone every camera (until access control lands). */
  authorize?: Authorize;
  /** Where the page sends a visitor `authorize` does not know (303); without it the page answers 401. */
  loginPath?: string;
  signalling?: SignallingHandler;
  whep?: WhepHandler;
  snapshots?: SnapshotProvider;
  /** Display name and viewer count per camera, which a Source does not know. */
  cameraExtras?: (id: string) => CameraExtras | undefined;
  /** Cameras' pan/tilt/zoom (the runtime's, over ONVIF); without it no camera offers PTZ. */
  ptz?: PtzLookup;
  /** ICE servers the page gives its RTCPeerConnection (`/api/config`); default none (LAN). */
  clientIceServers?: () => ReadonlyArray<ClientIceServer>;
  /** Cross-origin callers allowed to use the API, WHEP and WebSocket (`https://host:port`, or `*`). */
  allowedOrigins?: ReadonlyArray<string>;
  /** Origins allowed, for now, to use WHEP with a bearer token (the Homebridge UI's preview). */
  bearerOrigins?: (origin: string) => boolean;
  /** Who a request comes from (trusted reverse proxies); default the TCP peer. */
  clientAddress?: ClientAddressOf;
  /** Reverse proxies (`web.trustedProxies`): not capped per address, since they carry many visitors. */
  trustedProxies?: ReadonlyArray<string>;
  /** Routes other modules add (login, logout, share links). Built-in routes win on conflicts. */
  routes?: ReadonlyArray<WebRoute>;
  /** Camera and viewer passwords: masked in anything the server sends or logs. */
  secrets?: () => Iterable<string>;
  log?: Logger;
  limits?: Partial<WebLimits>;
  /** The watch page's directory; defaults to `page/` next to this module (src/ or dist/). */
  pageDir?: string;
}

export interface WebServer {
  /** Starts listening; `url` is an address a person on the LAN can open. */
  listen(): Promise<{ port: number; url: string }>;
  /** Closes sockets (WebSocket 1001), connections and the listener. */
  close(): Promise<void>;
  /** Closes the signalling sockets of matching principals (revoked links, logouts); returns the count. */
  disconnect(predicate: (principal: Principal) => boolean, reason?: string): number;
  /** Open signalling sockets. */
  readonly signallingSockets: number;
}

const STATIC_PREFIX = '/static/';

export function createWebServer(options: WebServerOptions): WebServer {
  const log = options.log ?? silentLogger;
  const limits: WebLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const proxies = parseAddressRanges(options.trustedProxies ?? []);
  const connections = new ConnectionGuard(
    { maxConnections: limits.maxConnections, maxConnectionsPerAddress: limits.maxConnectionsPerAddress, reservedForKnown: limits.reservedForSignedIn },
    (address) => proxies.has(address),
    log,
  );
  const innerAuthorize = options.authorize ?? allowEveryone;
  // An address that made an authorised request may use the connections kept in reserve.
  const authorize: Authorize = async (req) => {
    const principal = await innerAuthorize(req);
    if (principal) connections.markKnown(req.socket.remoteAddress);
    return principal;
  };
  const secrets = options.secrets ?? (() => []);
  const tls = options.tls !== undefined;
  const origins = new OriginPolicy(options.allowedOrigins ?? [], tls, options.bearerOrigins);
  const clientAddress = options.clientAddress ?? socketAddressOf;
  const pageDir = options.pageDir ?? fileURLToPath(new URL('./page/', import.meta.url));
  let assets = new Map<string, StaticAsset>();
  // The watch page: index.html's body under the shared head (page-head.ts), made once at start.
  let watchPage: StaticAsset | undefined;

  const router = new Router();
  router.add({
    method: 'GET',
    path: '/',
    auth: 'viewer',
    handle(ctx) {
      const page = watchPage;
      if (!page) throw new HttpError(500, 'internal', 'The watch page is missing from this installation');
      sendAsset(ctx.req, ctx.res, page);
    },
  });
  for (const route of apiRoutes({
    registry: options.registry,
    snapshots: options.snapshots,
    cameraExtras: options.cameraExtras,
    secrets,
    snapshotTimeoutMs: limits.snapshotTimeoutMs,
    clientIceServers: options.clientIceServers,
    ptz: options.ptz,
  })) {
    router.add(route);
  }
  for (const route of whepRoutes({ registry: options.registry, whep: options.whep, maxSdpBytes: limits.maxSdpBytes })) {
    router.add(route);
  }
  for (const route of ptzRoutes({ registry: options.registry, ptz: options.ptz, secrets })) router.add(route);
  for (const route of options.routes ?? []) router.add(route);

  const gateway = new SignallingGateway({
    handler: options.signalling,
    authorize,
    origins,
    clientAddress,
    log,
    maxPayload: limits.maxWsPayload,
    maxSockets: limits.maxSignallingSockets,
    heartbeatMs: limits.wsHeartbeatMs,
  });

  const serverOptions = {
    maxHeaderSize: limits.maxHeaderSize,
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // Node checks the two timeouts above only this often (30 s by default), so a client trickling
    // its headers one byte at a time (slowloris) would hold a connection far past headersTimeout.
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, limits.headersTimeoutMs / 4)),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void handleRequest(req, res);
  };
  const server: Server = options.tls
    ? createHttpsServer({ ...serverOptions, cert: options.tls.cert, key: options.tls.key }, onRequest)
    : createHttpServer(serverOptions, onRequest);
  server.maxConnections = limits.maxConnections;
  server.on('connection', (socket: Socket) => connections.admit(socket));
  server.maxHeadersCount = 100;
  server.on('upgrade', (req: IncomingMessage, socket, head: Buffer) => gateway.handleUpgrade(req, socket, head));
  // TLS handshake failures and garbage from port scanners are routine; they must not surface as crashes.
  server.on('tlsClientError', (error: Error) => log.debug(`TLS client error: ${error.message}`));

  async function handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let label = '(unmatched)';
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    try {
      applySecurityHeaders(res);
      const method = req.method ?? 'GET';
      const target = req.url ?? '';
      // Only origin-form targets ("/path?query"): an absolute URL or "*" names something this
      // server must never fetch or proxy.
      if (!target.startsWith('/')) throw new HttpError(400, 'bad-request', 'Bad request target');
      // Concatenate rather than resolve, so "//host/x" stays a path and never becomes a host.
      const url = new URL(`http://localhost${target}`);
      const pathname = url.pathname;

      if (pathname.startsWith(STATIC_PREFIX)) {
        label = 'GET /static/*';
        if (method !== 'GET' && method !== 'HEAD') {
          throw new HttpError(405, 'method-not-allowed', 'Static files are read-only', { Allow: 'GET, HEAD' });
        }
        const asset = assets.get(pathname.slice(STATIC_PREFIX.length));
        // index.html is only served at "/", where authorisation applies.
        if (!asset || pathname === `${STATIC_PREFIX}index.html`) throw new HttpError(404, 'not-found', 'No such file');
        sendAsset(req, res, asset);
        return;
      }

      if (method === 'OPTIONS') {
        label = 'OPTIONS';
        const methods = router.methodsFor(pathname);
        if (methods.length === 0) throw new HttpError(404, 'not-found', 'Nothing here');
        origins.applyCors(req, res, { methods }, pathname.startsWith('/whep/'));
        res.setHeader('Allow', methods.join(', '));
        if (pathname.startsWith('/whep/')) res.setHeader('Accept-Post', 'application/sdp');
        res.statusCode = 204;
        res.end();
        return;
      }

      const match = router.match(method, pathname);
      if (match.kind === 'none') throw new HttpError(404, 'not-found', 'Nothing here');
      if (match.kind === 'method') {
        throw new HttpError(405, 'method-not-allowed', `Use ${match.allow.join(', ')}`, { Allow: match.allow.join(', ') });
      }
      const { route, params } = match;
      label = `${route.method} ${route.path}`;
      origins.applyCors(req, res, undefined, route.bearerCrossOrigin === true);
      await runRoute(route, params, url, req, res);
    } catch (error) {
      if (error instanceof HttpError) {
        sendError(req, res, error);
      } else {
        const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log.error(`${label} failed: ${redactText(text, [...secrets()])}`);
        sendError(req, res, new HttpError(500, 'internal', 'Internal error'));
      }
    } finally {
      // The label is the route pattern, never the raw path: paths can carry share-link tokens.
      log.debug(`${req.method ?? '?'} ${label} -> ${res.statusCode} in ${(performance.now() - started).toFixed(1)} ms`);
    }
  }

  async function runRoute(
    route: Route,
    params: Record<string, string>,
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const changesState = method !== 'GET' && method !== 'HEAD';
    const bearerPass = route.bearerCrossOrigin === true && origins.permitsBearer(req);
    if ((route.sameOriginOnly ?? changesState) && !origins.permits(req) && !bearerPass) {
      throw new HttpError(403, 'forbidden-origin', 'This origin is not allowed');
    }
    let principal: Principal | undefined;
    try {
      principal = await authorize(req);
    } catch (error) {
      // A deliberate refusal (403 missing CSRF token, 429 too many wrong tokens) keeps its status.
      if (error instanceof HttpError) throw error;
      log.error(`authorize failed: ${error instanceof Error ? error.message : String(error)}`);
      throw new HttpError(500, 'internal', 'Internal error');
    }
    if (route.auth !== 'public' && !principal) {
      if (route.path === '/' && options.loginPath) {
        res.statusCode = 303;
        res.setHeader('Location', options.loginPath);
        res.setHeader('Cache-Control', 'no-store');
        res.end();
        return;
      }
      throw new HttpError(401, 'unauthorized', 'Sign in first', { 'WWW-Authenticate': 'Bearer realm="cameras"' });
    }
    if (route.auth === 'admin' && !principal?.admin) {
      throw new HttpError(403, 'forbidden', 'Only an administrator may do this');
    }
    const ctx: RouteContext = {
      req,
      res,
      url,
      params,
      principal,
      remoteAddress: clientAddress(req),
      log,
      readText: async (limit = limits.maxJsonBytes) => decodeUtf8(await readBody(req, limit)),
      readJson: async () => {
        if (mediaType(req) !== 'application/json') {
          throw new HttpError(415, 'unsupported-media-type', 'The body must be application/json');
        }
        const text = decodeUtf8(await readBody(req, limits.maxJsonBytes));
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new HttpError(400, 'bad-request', 'The body is not valid JSON');
        }
      },
      sendJson: (status, body, headers) => sendJson(req, res, status, body, headers),
    };
    await route.handle(ctx);
  }

  let listening = false;
  return {
    get signallingSockets() {
      return gateway.size;
    },
    disconnect: (predicate, reason) => gateway.disconnect(predicate, reason),
    async listen() {
      assets = await loadStaticAssets(pageDir);
      const body = assets.get('index.html');
      watchPage = body && watchPageAsset(body);
      const host = options.host ?? '0.0.0.0';
      await new Promise<void>((resolve, reject) => {
        const onError = (error: NodeJS.ErrnoException): void => {
          server.off('listening', onListening);
          const why = error.code === 'EADDRINUSE' ? 'the port is already in use' : error.message;
          reject(new Error(`The web server cannot listen on ${host}:${options.port}: ${why}`));
        };
        const onListening = (): void => {
          server.off('error', onError);
          resolve();
        };
        server.once('error', onError);
        server.once('listening', onListening);
        server.listen(options.port, host);
      });
      listening = true;
      server.on('error', (error) => log.error(`Web server error: ${error.message}`));
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : options.port;
      const url = `${tls ? 'https' : 'http'}://${formatHost(publicHost(host))}:${port}/`;
      return { port, url };
    },
    async close() {
      await gateway.close();
      if (!listening) return;
      listening = false;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** For a wildcard bind, the first LAN IPv4 address: the one a family member's phone can reach. */
function publicHost(bindHost: string): string {
  if (bindHost !== '0.0.0.0' && bindHost !== '::' && bindHost !== '') return bindHost;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return '127.0.0.1';
}

