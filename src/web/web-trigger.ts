/**
 * Web triggers for cameras that push their events to a web address instead of (or besides) sending
 * ONVIF events: `POST /doorbell/<camera>/<token>` rings a doorbell (issue 17), `POST
 * /motion/<camera>/<token>` drives a camera's motion sensor (issue 16). Both are one route shape:
 *
 * - The camera has no session or cookie, so the secret is in the path (the log labels requests by
 *   the route pattern, never the path). Each kind has its own secrets (src/runtime/trigger-tokens.ts):
 *   a motion address that leaks cannot ring the doorbell.
 * - The token is compared in constant time; an unknown camera and a wrong token get the same 403, so
 *   the answer does not reveal which cameras exist.
 * - Wrong tokens from one address are throttled like sign-ins (429 after a few), with one counter
 *   for every kind, so guessing at two kinds does not double the guesses.
 * - Right tokens are capped per camera and kind per window (429); a doorbell's presses are debounced
 *   by the caller besides.
 * - The body (a camera's event XML or JSON) is not read: senders differ in what they put there, and
 *   most can only call a fixed address, so what a request means is the kind and the query alone.
 */
import { safeEqual } from '../util/safe-equal.js';
import { LoginRateLimiter } from './auth/rate-limiter.js';
import { HttpError } from './http-util.js';
import type { WebRoute } from './types.js';

export type WebTriggerKind = 'doorbell' | 'motion';

/** One camera's trigger of one kind, as the route needs it. */
export interface WebTrigger {
  token: string;
  /**
   * Acts on a request whose token was right (within the camera's cap); what it returns is answered
   * with 200. Throws an HttpError (400) for a query it does not understand.
   */
  fire(query: URLSearchParams): Record<string, unknown>;
}

/** How each kind is answered. */
interface KindRules {
  /** What the 403 and 429 answers call the address. */
  noun: string;
  /**
   * Methods that fire. Only POST rings a doorbell: a link preview or a prefetch (GET) must not ring
   * the house. Motion also takes GET, because many cameras and recorders can only call an address with
   * GET (Foscam and Dahua/Amcrest alarm actions, Blue Iris and Synology web requests); a stray GET
   * costs at most one motion event that ends by itself, and the secret, throttling and cap are the
   * same as for POST. HEAD never fires.
   */
  methods: ReadonlyArray<'POST' | 'GET'>;
  /** Requests with the right token one camera accepts per window. */
  maxPerWindow: number;
}

const KINDS: Readonly<Record<WebTriggerKind, KindRules>> = {
  doorbell: { noun: 'doorbell address', methods: ['POST'], maxPerWindow: 10 },
  // A camera may repeat its motion call every second while motion lasts (Hikvision does).
  motion: { noun: 'motion address', methods: ['POST', 'GET'], maxPerWindow: 30 },
};

export const WEB_TRIGGER_KINDS = Object.keys(KINDS) as WebTriggerKind[];

export interface WebTriggerOptions {
  /** The camera's trigger of this kind, or undefined when it has none (unknown id, setting off). */
  trigger(kind: WebTriggerKind, cameraId: string): WebTrigger | undefined;
  /** Overrides every kind's cap (tests). Default per kind: doorbell 10, motion 30 per 10 s. */
  maxPerWindow?: number;
  windowMs?: number;
  /** Wrong-token throttling per client address, shared by every kind. Default: 5 free, then 1 s doubling. */
  failures?: LoginRateLimiter;
  now?: () => number;
}

/** The URL path of a camera's trigger, as it is shown to the user (the log shows it with `<secret>`). */
export function webTriggerPath(kind: WebTriggerKind, cameraId: string, token: string): string {
  return `/${kind}/${encodeURIComponent(cameraId)}/${token}`;
}

/** Every kind's routes, sharing one wrong-token throttle. */
export function webTriggerRoutes(options: WebTriggerOptions): WebRoute[] {
  const now = options.now ?? Date.now;
  const failures = options.failures ?? new LoginRateLimiter({}, now);
  const windowMs = options.windowMs ?? 10_000;
  const windows = new Map<string, { start: number; count: number }>();
  return WEB_TRIGGER_KINDS.flatMap((kind) => {
    const rules = KINDS[kind];
    const maxPerWindow = options.maxPerWindow ?? rules.maxPerWindow;
    return rules.methods.map((method): WebRoute => ({
      method,
      path: `/${kind}/:camera/:token`,
      auth: 'public',
      handle: (ctx) => {
        ctx.req.resume();
        // The router answers HEAD with a GET route; HEAD asks about an address, it does not call it.
        if (ctx.req.method === 'HEAD') throw new HttpError(405, 'method-not-allowed', `Use ${rules.methods.join(', ')}`, { Allow: rules.methods.join(', ') });
        const blocked = failures.blockedFor(ctx.remoteAddress);
        if (blocked > 0) {
          ctx.sendJson(429, { error: 'too-many-requests', message: `Too many wrong ${rules.noun}es; wait` }, { 'Retry-After': String(Math.ceil(blocked / 1000)) });
          return;
        }
        const cameraId = ctx.params['camera'] ?? '';
        const trigger = options.trigger(kind, cameraId);
        // Compared even for an unknown camera, so both refusals take the same time.
        const matches = safeEqual(ctx.params['token'] ?? '', trigger?.token ?? '\u0000');
        if (!trigger || !matches) {
          failures.fail(ctx.remoteAddress);
          ctx.sendJson(403, { error: 'forbidden', message: `Unknown ${rules.noun}` });
          return;
        }
        const at = now();
        const key = `${kind}/${cameraId}`;
        let window = windows.get(key);
        if (!window || at - window.start >= windowMs) {
          window = { start: at, count: 0 };
          windows.set(key, window);
        }
        window.count++;
        if (window.count > maxPerWindow) {
          ctx.sendJson(429, { error: 'too-many-requests', message: `Too many calls of this ${rules.noun}` }, { 'Retry-After': String(Math.ceil((window.start + windowMs - at) / 1000)) });
          return;
        }
        ctx.sendJson(200, trigger.fire(ctx.url.searchParams));
      },
    }));
  });
}

const ON = new Set(['on', 'true', '1']);
const OFF = new Set(['off', 'false', '0']);

/**
 * What a motion call asks: motion now (no `state`, or `state=on`), or motion over at once
 * (`state=off`). A camera that can only call one fixed address calls it without a state and the
 * sensor turns off by itself after the reset time.
 */
export function motionStateOf(query: URLSearchParams): boolean {
  const state = query.get('state');
  if (state === null || state === '') return true;
  const word = state.toLowerCase();
  if (ON.has(word)) return true;
  if (OFF.has(word)) return false;
  throw new HttpError(400, 'bad-request', 'state must be on or off (or left out: on, ending by itself after the reset time)');
}
