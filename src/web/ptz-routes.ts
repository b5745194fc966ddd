/**
 * PTZ from the watch page (issue 17): `POST /api/cameras/:id/ptz/{move,stop,preset,home}` and
 * `GET /api/cameras/:id/ptz` (who is moving it). The web layer knows no ONVIF: a camera's PTZ is a
 * `CameraPtzControl` the runtime hands in (src/runtime/camera-ptz.ts wraps src/onvif's
 * `PtzController`, which holds the one-mover lease, the rate limit and the dead-man Stop).
 *
 * Rules, in this order, before anything reaches the camera: the camera checks every camera route
 * shares (400/403/404), then the PTZ right (`canMoveCamera`: 403 without a SOAP call), then the body:
 * a move is three numbers in [-1, 1], a preset is a token the camera listed; any other key is refused,
 * so no URL or SOAP ever comes from a client. CSRF and the origin policy apply as to every POST.
 */
import { canMoveCamera } from '../access/principal.js';
import { redactText } from '../util/redact.js';
import { requireCamera } from './api-routes.js';
import { HttpError } from './http-util.js';
import { ptzViewerId, type CameraPtzControl, type PtzCommand, type PtzLookup, type PtzOutcome, type PtzRefusal } from './ptz-types.js';
import type { Route } from './router.js';
import type { CameraRegistry, Principal, RouteContext } from './types.js';

export type { CameraPtzControl, PtzCommand, PtzLookup, PtzOutcome, PtzRefusal, PtzView } from './ptz-types.js';

const STATUS: Record<PtzRefusal, number> = { forbidden: 403, busy: 409, 'rate-limited': 429, invalid: 400, unsupported: 501 };

const MAX_TOKEN = 64;

/** A move body: `pan`, `tilt`, `zoom`, each a number in [-1, 1] (absent: 0), nothing else. */
export function parseMove(body: unknown): PtzCommand {
  const record = plainObject(body, ['pan', 'tilt', 'zoom']);
  const axis = (key: 'pan' | 'tilt' | 'zoom'): number => {
    const value = record[key] ?? 0;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < -1 || value > 1) {
      throw new HttpError(400, 'bad-request', `${key} must be a number from -1 to 1`);
    }
    return value;
  };
  return { kind: 'move', pan: axis('pan'), tilt: axis('tilt'), zoom: axis('zoom') };
}

/** A preset body: `token`, a short string the camera listed (the controller checks that), nothing else. */
export function parsePreset(body: unknown): PtzCommand {
  const token = plainObject(body, ['token'])['token'];
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN) {
    throw new HttpError(400, 'bad-request', `token must be a preset token of 1 to ${MAX_TOKEN} characters`);
  }
  return { kind: 'preset', token };
}

function plainObject(body: unknown, keys: ReadonlyArray<string>): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'bad-request', 'The body must be a JSON object');
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((key) => !keys.includes(key));
  if (unknown.length > 0) throw new HttpError(400, 'bad-request', `Only ${keys.join(', ')} may be sent`);
  return record;
}

export interface PtzRouteDeps {
  registry: CameraRegistry;
  ptz: PtzLookup | undefined;
  secrets: () => Iterable<string>;
}

export function ptzRoutes(deps: PtzRouteDeps): Route[] {
  /** The camera's control after every check that needs no camera round trip. */
  const control = (ctx: RouteContext): { control: CameraPtzControl; principal: Principal } => {
    const source = requireCamera(ctx, deps.registry, ctx.params.id);
    const principal = ctx.principal!;
    if (!canMoveCamera(principal, source.id)) throw new HttpError(403, 'forbidden', 'You may watch this camera but not move it');
    const found = deps.ptz?.(source.id);
    if (!found) throw new HttpError(404, 'not-found', 'This camera has no pan/tilt/zoom (or it is not reachable yet)');
    return { control: found, principal };
  };

  const run = async (ctx: RouteContext, read: (ctx: RouteContext) => Promise<PtzCommand>): Promise<void> => {
    const { control: ptz, principal } = control(ctx);
    const command = await read(ctx);
    const viewer = { id: ptzViewerId(principal), ptz: true };
    let outcome: PtzOutcome;
    try {
      outcome = await ptz.command(viewer, command);
    } catch (error) {
      // The camera refused or did not answer. Its text says which call; it carries no password, but
      // is masked anyway, and the viewer gets no detail of the camera's network.
      const text = error instanceof Error ? error.message : String(error);
      ctx.log.warn(`PTZ ${command.kind} on camera "${ctx.params.id}" failed: ${redactText(text, [...deps.secrets()])}`);
      throw new HttpError(502, 'camera-error', 'The camera did not accept the command');
    }
    if (!outcome.ok) {
      throw new HttpError(STATUS[outcome.reason], `ptz-${outcome.reason}`, outcome.message, outcome.reason === 'rate-limited' ? { 'Retry-After': '1' } : undefined);
    }
    ctx.sendJson(200, ptz.view(viewer.id));
  };

  const post = (name: string, read: (ctx: RouteContext) => Promise<PtzCommand>): Route => ({
    method: 'POST',
    path: `/api/cameras/:id/ptz/${name}`,
    auth: 'viewer',
    handle: (ctx) => run(ctx, read),
  });

  return [
    {
      method: 'GET',
      path: '/api/cameras/:id/ptz',
      auth: 'viewer',
      handle(ctx) {
        const { control: ptz, principal } = control(ctx);
        ctx.sendJson(200, ptz.view(ptzViewerId(principal)));
      },
    },
    post('move', async (ctx) => parseMove(await ctx.readJson())),
    post('stop', () => Promise.resolve({ kind: 'stop' })),
    post('preset', async (ctx) => parsePreset(await ctx.readJson())),
    post('home', () => Promise.resolve({ kind: 'home' })),
  ];
}
