/**
 * The JSON API (`/api/cameras`, one camera, its snapshot, its last saved snapshot). Cameras are named by id only, filtered by
 * what the caller may watch, and described through `toCameraStatus`'s allow-list. A camera's `ptz`
 * (presets, home, who moves it) is added only for callers with the PTZ right (ptz-routes.ts): the
 * others see the camera move in the picture, and its preset names are none of their business.
 */
import { toCameraStatus } from './camera-status.js';
import { HttpError, isCameraId } from './http-util.js';
import { canWatch } from '../access/principal.js';
import type { Route } from './router.js';
import type { BroadcastSource, CameraExtras, ClientIceServer, CameraRegistry, RouteContext, SnapshotProvider } from './types.js';
import { redactText } from '../util/redact.js';
import { ptzViewFor, type PtzLookup } from './ptz-types.js';

export interface ApiDeps {
  registry: CameraRegistry;
  snapshots: SnapshotProvider | undefined;
  cameraExtras: ((id: string) => CameraExtras | undefined) | undefined;
  secrets: () => Iterable<string>;
  snapshotTimeoutMs: number;
  clientIceServers: (() => ReadonlyArray<ClientIceServer>) | undefined;
  /** Cameras' PTZ, for the `ptz` entry of callers with the right. */
  ptz?: PtzLookup | undefined;
}

/**
 * The camera a request names, after the checks every camera endpoint shares: a well-formed id (400),
 * permission (403, decided before existence so ids cannot be probed), and existence (404).
 */
export function requireCamera(ctx: RouteContext, registry: CameraRegistry, id: string | undefined): BroadcastSource {
  if (id === undefined || !isCameraId(id)) {
    throw new HttpError(400, 'bad-request', 'A camera id is up to 40 lower-case letters, digits and "-"');
  }
  if (!ctx.principal || !canWatch(ctx.principal, id)) {
    throw new HttpError(403, 'forbidden', 'You may not watch this camera');
  }
  const source = registry.get(id);
  if (!source) throw new HttpError(404, 'not-found', `No camera with id "${id}"`);
  return source;
}

const SIZE = /^[0-9]{1,4}$/;

/** `width`/`height` query values: whole pixels in a sane range, or absent. */
function sizeParam(url: URL, name: 'width' | 'height'): number | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  const value = SIZE.test(raw) ? Number(raw) : NaN;
  if (!(value >= 16 && value <= 4096)) {
    throw new HttpError(400, 'bad-request', `${name} must be a whole number from 16 to 4096`);
  }
  return value;
}

export function apiRoutes(deps: ApiDeps): Route[] {
  const status = (source: BroadcastSource, ctx: RouteContext) => {
    const view = ptzViewFor(deps.ptz, ctx.principal, source.id);
    return { ...toCameraStatus(source, deps.cameraExtras?.(source.id), deps.secrets()), ...(view ? { ptz: view } : {}) };
  };

  return [
    {
      // What the page needs before it can connect: the ICE servers (TURN credentials for viewers
      // outside the LAN are for signed-in viewers only, hence not in the static page).
      method: 'GET',
      path: '/api/config',
      auth: 'viewer',
      handle(ctx) {
        ctx.sendJson(200, { iceServers: deps.clientIceServers?.() ?? [] });
      },
    },
    {
      method: 'GET',
      path: '/api/cameras',
      auth: 'viewer',
      handle(ctx) {
        const visible = deps.registry.list().filter((source) => canWatch(ctx.principal!, source.id));
        ctx.sendJson(200, visible.map((source) => status(source, ctx)));
      },
    },
    {
      method: 'GET',
      path: '/api/cameras/:id',
      auth: 'viewer',
      handle(ctx) {
        ctx.sendJson(200, status(requireCamera(ctx, deps.registry, ctx.params.id), ctx));
      },
    },
    {
      method: 'GET',
      path: '/api/cameras/:id/snapshot.jpg',
      auth: 'viewer',
      async handle(ctx) {
        const source = requireCamera(ctx, deps.registry, ctx.params.id);
        const size = { width: sizeParam(ctx.url, 'width'), height: sizeParam(ctx.url, 'height') };
        const image = await snapshotWithin(deps, source.id, size, ctx);
        ctx.res.setHeader('Cache-Control', 'no-store');
        if (!image || image.length === 0) {
          // "No picture yet" is normal (no provider, camera still connecting): the page shows a
          // placeholder. 204 rather than 404 keeps browsers from logging it as a failed load.
          ctx.res.statusCode = 204;
          ctx.res.end();
          return;
        }
        ctx.res.statusCode = 200;
        ctx.res.setHeader('Content-Type', 'image/jpeg');
        ctx.res.setHeader('Content-Length', image.length);
        ctx.res.end(ctx.req.method === 'HEAD' ? undefined : image);
      },
    },
    {
      // The last good picture, kept across restarts, answered from memory at once: the page shows it
      // (marked with its age) while the live snapshot above wakes an idle camera. Same permission
      // checks as the live one; only configured cameras are looked up.
      method: 'GET',
      path: '/api/cameras/:id/last-snapshot.jpg',
      auth: 'viewer',
      async handle(ctx) {
        const source = requireCamera(ctx, deps.registry, ctx.params.id);
        const saved = await deps.snapshots?.savedSnapshot?.(source.id);
        ctx.res.setHeader('Cache-Control', 'no-store');
        if (!saved || saved.image.length === 0) {
          ctx.res.statusCode = 204;
          ctx.res.end();
          return;
        }
        // The server's own clock says how old it is, so a browser with a wrong clock still shows the right age.
        const ageSeconds = Math.max(0, Math.floor((Date.now() - saved.capturedAt) / 1000));
        ctx.res.statusCode = 200;
        ctx.res.setHeader('Content-Type', 'image/jpeg');
        ctx.res.setHeader('Content-Length', saved.image.length);
        ctx.res.setHeader('Last-Modified', new Date(saved.capturedAt).toUTCString());
        ctx.res.setHeader('X-Snapshot-Age-Seconds', String(ageSeconds));
        ctx.res.end(ctx.req.method === 'HEAD' ? undefined : saved.image);
      },
    },
  ];
}

async function snapshotWithin(
  deps: ApiDeps,
  cameraId: string,
  size: { width?: number; height?: number },
  ctx: RouteContext,
): Promise<Buffer | undefined> {
  if (!deps.snapshots) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), deps.snapshotTimeoutMs);
  });
  try {
    const result = await Promise.race([deps.snapshots.getSnapshot(cameraId, size), timeout]);
    if (result === 'timeout') {
      throw new HttpError(504, 'snapshot-timeout', `No snapshot within ${deps.snapshotTimeoutMs} ms`);
    }
    return result;
  } catch (error) {
    if (error instanceof HttpError) throw error;
    const text = error instanceof Error ? error.message : String(error);
    ctx.log.warn(`Snapshot for camera "${cameraId}" failed: ${redactText(text, [...deps.secrets()])}`);
    throw new HttpError(503, 'snapshot-failed', 'The snapshot could not be taken');
  } finally {
    clearTimeout(timer);
  }
}
