/**
 * The motion state of one camera, fed by ONVIF events (or anything else: the motion web trigger
 * uses one too) and read by the HomeKit MotionSensor. Cameras differ: some report a property that goes true and later false, some send
 * the same motion on two topics at once, some only send "true" pulses. So:
 *
 * - Each source (topic + source items) is tracked separately; motion is detected while any is active.
 * - After the last source goes inactive (or after the last pulse) the state stays on for
 *   `resetTimeoutMs`, so HomeKit does not flap and notify for every blink.
 * - `debounceMs` (default 0) is a glitch filter: motion must be asserted that long before it counts.
 * - `maxActiveMs` guards against a lost "false" (camera rebooted mid-motion): a source asserted
 *   longer than that without a repeat is dropped.
 */
import { EventEmitter } from 'node:events';

import { plainTimers, type TimerHandle, type TimerSeam } from '../media/timers.js';
import type { Logger } from '../util/logger.js';

export interface MotionStateOptions {
  /** How long motion stays detected after it was last seen. Default 10 000 ms. */
  resetTimeoutMs?: number;
  /** Motion must be asserted this long before the state turns on. Default 0 (immediately). */
  debounceMs?: number;
  /** A source asserted this long without a repeat is considered stuck and dropped. Default 300 000 ms; 0 disables. */
  maxActiveMs?: number;
  log?: Logger;
  /** Camera name for log lines. */
  name?: string;
  /** Clock in ms (default Date.now) and timers (default the real ones): tests drive time. */
  now?: () => number;
  timers?: TimerSeam;
}

export interface MotionStateEvents {
  change: [detected: boolean];
}

export class MotionState extends EventEmitter<MotionStateEvents> {
  private readonly resetTimeoutMs: number;
  private readonly debounceMs: number;
  private readonly maxActiveMs: number;
  /** Active sources and when each last asserted motion. */
  private readonly active = new Map<string, number>();
  private lastSeenAt = 0;
  private state = false;
  private offTimer: TimerHandle | undefined;
  private debounceTimer: TimerHandle | undefined;
  private disposed = false;
  private readonly now: () => number;
  private readonly timers: TimerSeam;

  constructor(private readonly options: MotionStateOptions = {}) {
    super();
    this.resetTimeoutMs = Math.max(0, options.resetTimeoutMs ?? 10_000);
    this.debounceMs = Math.max(0, options.debounceMs ?? 0);
    this.maxActiveMs = Math.max(0, options.maxActiveMs ?? 300_000);
    this.now = options.now ?? Date.now;
    this.timers = options.timers ?? plainTimers;
  }

  get detected(): boolean {
    return this.state;
  }

  /**
   * Reports motion from one source. `active` true/false is a property change (Initialized or
   * Changed); `pulse` marks an event without a property state, which only refreshes the timer.
   */
  update(active: boolean, key = 'default', pulse = false): void {
    if (this.disposed) return;
    const now = this.now();
    if (active) {
      this.lastSeenAt = now;
      if (!pulse) this.active.set(key, now);
      if (this.state) this.scheduleOff();
      else this.turnOnAfterDebounce();
      return;
    }
    if (this.active.delete(key)) this.lastSeenAt = now;
    if (this.state) this.scheduleOff();
    else if (this.active.size === 0) this.cancelDebounce();
  }

  /** Forgets every active source (e.g. after re-subscribing); the state then runs out its reset timeout. */
  clearSources(): void {
    if (this.active.size === 0) return;
    this.active.clear();
    this.lastSeenAt = this.now();
    if (this.state) this.scheduleOff();
    else this.cancelDebounce();
  }

  /**
   * Motion over at once, without waiting out the reset time: every source is forgotten and the state
   * turns off now (a sender that says its motion ended, e.g. a web trigger called with `state=off`).
   */
  end(): void {
    if (this.disposed) return;
    this.active.clear();
    this.cancelDebounce();
    this.clearOffTimer();
    this.set(false);
  }

  /** Stops all timers; no further `change` events. */
  dispose(): void {
    this.disposed = true;
    this.clearOffTimer();
    this.cancelDebounce();
    this.removeAllListeners();
  }

  private set(detected: boolean): void {
    if (this.state === detected || this.disposed) return;
    this.state = detected;
    this.options.log?.debug(`${this.options.name ? `[${this.options.name}] ` : ''}motion ${detected ? 'detected' : 'cleared'}`);
    this.emit('change', detected);
  }

  private cancelDebounce(): void {
    if (this.debounceTimer !== undefined) this.timers.clearTimeout(this.debounceTimer);
    this.debounceTimer = undefined;
  }

  private clearOffTimer(): void {
    if (this.offTimer !== undefined) this.timers.clearTimeout(this.offTimer);
    this.offTimer = undefined;
  }

  private turnOnAfterDebounce(): void {
    if (this.debounceMs === 0) {
      this.set(true);
      this.scheduleOff();
      return;
    }
    if (this.debounceTimer !== undefined) return;
    const pulseAt = this.lastSeenAt;
    this.debounceTimer = this.timers.setTimeout(() => {
      this.debounceTimer = undefined;
      // Still asserted (a property still true, or a new pulse arrived during the wait)?
      if (this.active.size > 0 || this.lastSeenAt > pulseAt) {
        this.set(true);
        this.scheduleOff();
      }
    }, this.debounceMs);
  }

  private scheduleOff(): void {
    this.clearOffTimer();
    const now = this.now();
    let at: number;
    if (this.active.size === 0) {
      at = this.lastSeenAt + this.resetTimeoutMs;
    } else if (this.maxActiveMs > 0) {
      at = Math.min(...this.active.values()) + this.maxActiveMs;
    } else {
      return;
    }
    this.offTimer = this.timers.setTimeout(() => this.evaluate(), Math.max(0, at - now));
  }

  private evaluate(): void {
    const now = this.now();
    if (this.maxActiveMs > 0) {
      for (const [key, since] of this.active) {
        if (now - since >= this.maxActiveMs) {
          this.options.log?.debug(`${this.options.name ? `[${this.options.name}] ` : ''}motion source ${key} stuck; dropping it`);
          this.active.delete(key);
          this.lastSeenAt = Math.max(this.lastSeenAt, since + this.maxActiveMs - this.resetTimeoutMs);
        }
      }
    }
    if (this.active.size === 0 && now >= this.lastSeenAt + this.resetTimeoutMs) {
      this.set(false);
      return;
    }
    this.scheduleOff();
  }
}
