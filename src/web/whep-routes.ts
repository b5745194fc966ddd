/**
 * WHEP over HTTP: ids, media types and sizes are checked here, then the framework-agnostic WHEP
 * handler (src/webrtc) gets plain strings and answers with status, headers and body.
 */
import { requireCamera } from './api-routes.js';
import { decodeUtf8, HttpError, isSessionId, mediaType, readBody } from './http-util.js';
import type { Route } from './router.js';
import type { CallerContext, CameraRegistry, HandlerResponse, RouteContext, WhepHandler } from './types.js';

export interface WhepDeps {
  registry: CameraRegistry;
  whep: WhepHandler | undefined;
  maxSdpBytes: number;
}

export const WHEP_SDP_TYPE = 'application/sdp';
export const WHEP_TRICKLE_TYPE = 'application/trickle-ice-sdpfrag';

function handlerOrThrow(deps: WhepDeps): WhepHandler {
  if (!deps.whep) throw new HttpError(501, 'not-implemented', 'WHEP is not enabled on this server');
  return deps.whep;
}

function sessionParam(ctx: RouteContext): string {
  const session = ctx.params.session;
  if (session === undefined || !isSessionId(session)) throw new HttpError(404, 'not-found', 'No such WHEP session');
  return session;
}

async function readSdp(ctx: RouteContext, type: string, limit: number): Promise<string> {
  if (mediaType(ctx.req) !== type) {
    throw new HttpError(415, 'unsupported-media-type', `The body must be ${type}`);
  }
  return decodeUtf8(await readBody(ctx.req, limit));
}

function caller(ctx: RouteContext): CallerContext {
  return { principal: ctx.principal!, remoteAddress: ctx.remoteAddress, request: ctx.req, log: ctx.log };
}

/** Writes a handler's answer; a malformed one becomes a 500 rather than a half-written response. */
export function writeHandlerResponse(ctx: RouteContext, answer: HandlerResponse, defaultType: string): void {
  const { res, req } = ctx;
  if (!Number.isInteger(answer.status) || answer.status < 200 || answer.status > 599) {
    throw new Error(`WHEP handler answered with invalid status ${String(answer.status)}`);
  }
  res.statusCode = answer.status;
  res.setHeader('Cache-Control', 'no-store');
  for (const [name, value] of Object.entries(answer.headers ?? {})) res.setHeader(name, value);
  if (answer.body === undefined || answer.body.length === 0) {
    res.end();
    return;
  }
  if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', defaultType);
  const body = typeof answer.body === 'string' ? Buffer.from(answer.body, 'utf8') : answer.body;
  res.setHeader('Content-Length', body.length);
  res.end(req.method === 'HEAD' ? undefined : body);
}

export function whepRoutes(deps: WhepDeps): Route[] {
  /** The WHEP handler (501 without one) and the camera the path names (requireCamera's checks). */
  const target = (ctx: RouteContext): { whep: WhepHandler; source: ReturnType<typeof requireCamera> } => ({
    whep: handlerOrThrow(deps),
    source: requireCamera(ctx, deps.registry, ctx.params.id),
  });
  return [
    {
      method: 'POST',
      path: '/whep/:id',
      auth: 'viewer',
      bearerCrossOrigin: true,
      async handle(ctx) {
        const { whep, source } = target(ctx);
        const offer = await readSdp(ctx, WHEP_SDP_TYPE, deps.maxSdpBytes);
        // A cheap sanity check keeps obvious garbage away from the SDP parser.
        if (!offer.startsWith('v=0')) throw new HttpError(400, 'bad-request', 'The body is not an SDP offer');
        writeHandlerResponse(ctx, await whep.handlePost(source.id, offer, caller(ctx)), WHEP_SDP_TYPE);
      },
    },
    {
      method: 'DELETE',
      path: '/whep/:id/:session',
      auth: 'viewer',
      bearerCrossOrigin: true,
      async handle(ctx) {
        const { whep, source } = target(ctx);
        writeHandlerResponse(ctx, await whep.handleDelete(source.id, sessionParam(ctx), caller(ctx)), 'text/plain');
      },
    },
    {
      method: 'PATCH',
      path: '/whep/:id/:session',
      auth: 'viewer',
      bearerCrossOrigin: true,
      async handle(ctx) {
        const whep = handlerOrThrow(deps);
        if (!whep.handlePatch) {
          throw new HttpError(405, 'method-not-allowed', 'Trickle ICE is not supported; send all candidates in the offer', {
            Allow: 'DELETE, OPTIONS',
          });
        }
        const source = requireCamera(ctx, deps.registry, ctx.params.id);
        const session = sessionParam(ctx);
        const fragment = await readSdp(ctx, WHEP_TRICKLE_TYPE, deps.maxSdpBytes);
        writeHandlerResponse(ctx, await whep.handlePatch(source.id, session, fragment, caller(ctx)), WHEP_TRICKLE_TYPE);
      },
    },
  ];
}
