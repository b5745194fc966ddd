/**
 * A segment-by-segment router: patterns are literal segments and `:name` parameters, matched against
 * the raw (still percent-encoded) path, so an encoded `/` can never create an extra segment.
 */
import { HttpError } from './http-util.js';
import type { RouteContext } from './types.js';

export type Auth = 'public' | 'viewer' | 'admin';

export interface Route {
  method: string;
  path: string;
  auth: Auth;
  /** Refuse cross-origin callers the origin policy does not allow (default: true unless GET/HEAD). */
  sameOriginOnly?: boolean;
  /** Cross-origin requests with their own bearer token pass the origin check and get CORS (WHEP). */
  bearerCrossOrigin?: boolean;
  handle(ctx: RouteContext): Promise<void> | void;
}

interface CompiledRoute extends Route {
  segments: ReadonlyArray<{ literal: string } | { param: string }>;
}

export type RouteMatch =
  | { kind: 'route'; route: Route; params: Record<string, string> }
  /** The path exists, but not for this method. */
  | { kind: 'method'; allow: string[] }
  | { kind: 'none' };

const MAX_SEGMENT = 512;

export class Router {
  private readonly routes: CompiledRoute[] = [];

  add(route: Route): this {
    if (!route.path.startsWith('/')) throw new Error(`Route path must start with "/": ${route.path}`);
    const segments = route.path
      .slice(1)
      .split('/')
      .map((segment) => (segment.startsWith(':') ? { param: segment.slice(1) } : { literal: segment }));
    this.routes.push({ ...route, segments });
    return this;
  }

  /** `HEAD` matches `GET` routes (the answer then carries no body). */
  match(method: string, pathname: string): RouteMatch {
    const parts = pathname.slice(1).split('/');
    const allow = new Set<string>();
    for (const route of this.routes) {
      const params = matchSegments(route.segments, parts);
      if (!params) continue;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) {
        return { kind: 'route', route, params };
      }
      allow.add(route.method);
      if (route.method === 'GET') allow.add('HEAD');
    }
    if (allow.size === 0) return { kind: 'none' };
    allow.add('OPTIONS');
    return { kind: 'method', allow: [...allow] };
  }

  /** Every method a path answers to, for OPTIONS; empty when the path is unknown. */
  methodsFor(pathname: string): string[] {
    const parts = pathname.slice(1).split('/');
    const methods = new Set<string>();
    for (const route of this.routes) {
      if (!matchSegments(route.segments, parts)) continue;
      methods.add(route.method);
      if (route.method === 'GET') methods.add('HEAD');
    }
    if (methods.size > 0) methods.add('OPTIONS');
    return [...methods];
  }
}

function matchSegments(
  segments: CompiledRoute['segments'],
  parts: ReadonlyArray<string>,
): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const part = parts[i]!;
    if ('literal' in segment) {
      if (segment.literal !== part) return undefined;
      continue;
    }
    if (part.length === 0 || part.length > MAX_SEGMENT) return undefined;
    params[segment.param] = decodeSegment(part);
  }
  return params;
}

function decodeSegment(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, 'bad-request', 'The path is not valid percent-encoding');
  }
}
