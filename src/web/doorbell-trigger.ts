/**
 * The doorbell HTTP trigger (issue 17): `POST /doorbell/<camera>/<token>` rings a doorbell camera,
 * for doorbells that call a web address when pressed instead of sending ONVIF events. The camera has
 * no session or cookie, so the secret is in the path (the log labels requests by the route pattern,
 * never the path). The token is compared in constant time; an unknown camera and a wrong token get
 * the same 403, so the answer does not reveal which cameras exist; wrong tokens from one address are
 * throttled like sign-ins (429 after a few); right tokens are capped per camera per window (429), and
 * presses are debounced by the caller (`press()` false: answered 200 with `rang: false`).
 */
import { safeEqual } from '../util/safe-equal.js';
import { LoginRateLimiter } from './auth/rate-limiter.js';
import type { WebRoute } from './types.js';

export const DOORBELL_TRIGGER_PATH = '/doorbell/:camera/:token';

/** What the route needs of one doorbell camera. */
export interface DoorbellTrigger {
  token: string;
  /** True when the press rang, false when it was debounced. */
  press(): boolean;
}

export interface DoorbellTriggerOptions {
  /** The camera's trigger, or undefined when it has none (not a doorbell, no httpTrigger, unknown id). */
  trigger(cameraId: string): DoorbellTrigger | undefined;
  /** Requests with the right token one camera accepts per window. Default 10 per 10 s. */
  maxPerWindow?: number;
  windowMs?: number;
  /** Wrong-token throttling per client address. Default: 5 free, then 1 s doubling. */
  failures?: LoginRateLimiter;
  now?: () => number;
}

/** The URL path of a camera's trigger, as it is shown to the user once. */
export function doorbellTriggerPath(cameraId: string, token: string): string {
  return `/doorbell/${encodeURIComponent(cameraId)}/${token}`;
}

export function doorbellTriggerRoute(options: DoorbellTriggerOptions): WebRoute {
  const now = options.now ?? Date.now;
  const failures = options.failures ?? new LoginRateLimiter({}, now);
  const maxPerWindow = options.maxPerWindow ?? 10;
  const windowMs = options.windowMs ?? 10_000;
  const windows = new Map<string, { start: number; count: number }>();
  return {
    method: 'POST',
    path: DOORBELL_TRIGGER_PATH,
    auth: 'public',
    handle: (ctx) => {
      // The body (a camera's event XML or JSON) is not needed; let it drain.
      ctx.req.resume();
      const blocked = failures.blockedFor(ctx.remoteAddress);
      if (blocked > 0) {
        ctx.sendJson(429, { error: 'too-many-requests', message: 'Too many wrong doorbell addresses; wait' }, { 'Retry-After': String(Math.ceil(blocked / 1000)) });
        return;
      }
      const cameraId = ctx.params['camera'] ?? '';
      const trigger = options.trigger(cameraId);
      // Compared even for an unknown camera, so both refusals take the same time.
      const matches = safeEqual(ctx.params['token'] ?? '', trigger?.token ?? '\u0000');
      if (!trigger || !matches) {
        failures.fail(ctx.remoteAddress);
        ctx.sendJson(403, { error: 'forbidden', message: 'Unknown doorbell address' });
        return;
      }
      const at = now();
      let window = windows.get(cameraId);
      if (!window || at - window.start >= windowMs) {
        window = { start: at, count: 0 };
        windows.set(cameraId, window);
      }
      window.count++;
      if (window.count > maxPerWindow) {
        ctx.sendJson(429, { error: 'too-many-requests', message: 'Too many doorbell presses' }, { 'Retry-After': String(Math.ceil((window.start + windowMs - at) / 1000)) });
        return;
      }
      ctx.sendJson(200, { rang: trigger.press() });
    },
  };
}
