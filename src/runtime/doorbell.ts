/**
 * Doorbell presses of one camera (issue 17), from ONVIF events and the HTTP trigger alike, debounced:
 * a bell button bounces, a camera may report one press on two topics, and a pushing camera may retry
 * its request, but the Home app must ring once. A press inside `debounceMs` of the last accepted one
 * is dropped (and says so in the debug log).
 */
import type { Logger } from '../util/logger.js';

export type DoorbellPressOrigin = 'onvif' | 'http';

export interface DoorbellPressesOptions {
  /** What a press does: ring the Home app, warm the snapshot, tell the watch page. */
  ring: (origin: DoorbellPressOrigin) => void;
  log: Logger;
  /** One press per this long. Default 3000 ms. */
  debounceMs?: number;
  /** Clock in ms (tests). Default Date.now. */
  now?: () => number;
}

export const DOORBELL_DEBOUNCE_MS = 3000;

export class DoorbellPresses {
  private lastAt = Number.NEGATIVE_INFINITY;
  private readonly debounceMs: number;
  private readonly now: () => number;

  constructor(private readonly options: DoorbellPressesOptions) {
    this.debounceMs = Math.max(0, options.debounceMs ?? DOORBELL_DEBOUNCE_MS);
    this.now = options.now ?? Date.now;
  }

  /** True when this press rang; false when it fell inside the debounce time of the last one. */
  press(origin: DoorbellPressOrigin): boolean {
    const now = this.now();
    if (now - this.lastAt < this.debounceMs) {
      this.options.log.debug(`doorbell press (${origin}) ${Math.round(now - this.lastAt)} ms after the last one: ignored`);
      return false;
    }
    this.lastAt = now;
    this.options.log.info(`Doorbell pressed (${origin === 'onvif' ? 'ONVIF event' : 'web trigger'}).`);
    this.options.ring(origin);
    return true;
  }
}
