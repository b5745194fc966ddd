/**
 * Summarised logging for repeated refusals. Anyone who may open the page can make the server refuse
 * them hundreds of times a second (viewer limits, wrong passwords, peers that never connect); one
 * line per refusal would bury the Homebridge log and rotate away what matters. So the first refusal
 * of a cause is logged at once, the rest of that minute only counted, and one line with the count
 * follows when the minute is over: at most two lines per cause per minute.
 *
 * Causes are short texts with a camera id or a client address at most, never a user name; the
 * table is capped, and past the cap further refusals are counted under one catch-all cause.
 */
import type { Logger } from './logger.js';

export const SUMMARY_WINDOW_MS = 60_000;
const MAX_CAUSES = 256;
const OVERFLOW_CAUSE = 'Further refusals of other kinds';

type Level = 'info' | 'warn';

interface Window {
  level: Level;
  startedAt: number;
  suppressed: number;
  timer: NodeJS.Timeout;
}

export class RefusalLog {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly log: Logger,
    private readonly windowMs: number = SUMMARY_WINDOW_MS,
  ) {}

  /** Logs `message` unless `cause` was logged within the window; then it is only counted. */
  note(level: Level, cause: string, message: string): void {
    const open = this.windows.get(cause);
    if (open) {
      open.suppressed++;
      return;
    }
    if (this.windows.size >= MAX_CAUSES && cause !== OVERFLOW_CAUSE) {
      // Full (a flood of distinct addresses): still counted, under one catch-all cause.
      this.note(level, OVERFLOW_CAUSE, `${OVERFLOW_CAUSE}, e.g.: ${message}`);
      return;
    }
    this.log[level](message);
    const window: Window = {
      level,
      startedAt: Date.now(),
      suppressed: 0,
      timer: setTimeout(() => this.flush(cause), this.windowMs),
    };
    window.timer.unref();
    this.windows.set(cause, window);
  }

  /** Writes the pending counts now (shutdown, tests). */
  flushAll(): void {
    for (const cause of [...this.windows.keys()]) this.flush(cause);
  }

  private flush(cause: string): void {
    const window = this.windows.get(cause);
    if (!window) return;
    clearTimeout(window.timer);
    this.windows.delete(cause);
    if (window.suppressed === 0) return;
    const seconds = Math.max(1, Math.round((Date.now() - window.startedAt) / 1000));
    this.log[window.level](`${cause}: ${window.suppressed} more time${window.suppressed === 1 ? '' : 's'} in the last ${seconds} s (summarised)`);
  }
}

const shared = new WeakMap<Logger, RefusalLog>();

/** The one RefusalLog of a logger, so every module writing to it shares the per-cause windows. */
export function refusalLog(log: Logger): RefusalLog {
  let found = shared.get(log);
  if (!found) {
    found = new RefusalLog(log);
    shared.set(log, found);
  }
  return found;
}
