/**
 * Holds a session's events (media, sender reports, close) until the caller has the session object:
 * packets can arrive in the same TCP read as the PLAY answer, a few promise hops before `open`
 * resolves. Media beyond `bound` is dropped while closed; essential events (onClose) never are. A
 * throwing handler is a bug downstream and must not tear down the socket reader (or Homebridge):
 * the first one is logged, the rest are counted silently.
 */
import type { Logger } from '../util/logger.js';

export class EventGate {
  private isOpen = false;
  private held: Array<() => void> = [];
  private handlerErrors = 0;

  constructor(private readonly bound: number, private readonly log: Logger) {}

  deliver(event: () => void, essential = false): void {
    if (this.isOpen) {
      this.run(event);
      return;
    }
    if (essential || this.held.length < this.bound) this.held.push(event);
  }

  /**
   * `handler(a, b)`, as `deliver` would run it, without a closure per call once open: the path of
   * every media packet.
   */
  deliverCall<A, B, C>(handler: (a: A, b: B, c: C) => void, a: A, b: B, c: C): void {
    if (!this.isOpen) {
      this.deliver(() => handler(a, b, c));
      return;
    }
    try {
      handler(a, b, c);
    } catch (err) {
      this.reportError(err);
    }
  }

  /** Runs what was held, in order, and everything from now on at once. */
  open(): void {
    const events = this.held;
    this.held = [];
    this.isOpen = true;
    for (const e of events) this.run(e);
  }

  private run(event: () => void): void {
    try {
      event();
    } catch (err) {
      this.reportError(err);
    }
  }

  private reportError(err: unknown): void {
    if (this.handlerErrors++ === 0) {
      this.log.error(`a media handler threw (further ones are not logged): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
  }
}
