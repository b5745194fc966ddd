// A tiny HTTP server on 127.0.0.1 serving fixed routes, for browser tests that need a page
// (browsers give WebRTC/getUserMedia only to secure contexts, and http://127.0.0.1 is one).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK } from './ports.js';
import { registerCleanup } from './processes.js';

export interface Route {
  body: string | Buffer;
  /** Default 'text/html; charset=utf-8'. */
  contentType?: string;
  status?: number;
}

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface TestHttpServer {
  readonly port: number;
  /** http://127.0.0.1:port (no trailing slash). */
  readonly origin: string;
  /** origin + path. */
  url(path?: string): string;
  close(): Promise<void>;
}

/** Serves `routes` (path -> page, or a handler); anything else is 404. Port 0 = ephemeral. */
export async function serveHttp(routes: Record<string, string | Route | RouteHandler>, port = 0): Promise<TestHttpServer> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const route = routes[path];
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    if (typeof route === 'function') {
      route(req, res);
      return;
    }
    const r: Route = typeof route === 'string' ? { body: route } : route;
    res
      .writeHead(r.status ?? 200, { 'content-type': r.contentType ?? 'text/html; charset=utf-8', 'cache-control': 'no-store' })
      .end(r.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK, resolve);
  });
  const actual = (server.address() as AddressInfo).port;
  const origin = `http://${LOOPBACK}:${actual}`;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= new Promise<void>((resolve) => {
      unregister();
      server.closeAllConnections();
      server.close(() => resolve());
    }));
  const unregister = registerCleanup(close);
  return { port: actual, origin, url: (path = '/') => `${origin}${path}`, close };
}
