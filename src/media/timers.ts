export type TimerHandle = unknown;

/** Seams so tests can drive time; the defaults are the real clock and timers. */
export interface TimerSeam {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /**
   * Starts a timeout that has fired over again, with its callback and delay, without a new timer
   * object (Node's `refresh`); absent where the seam cannot, and `every` then makes a new one.
   */
  rearm?(handle: TimerHandle): void;
}

const refresh = (handle: TimerHandle): void => {
  (handle as ReturnType<typeof setTimeout>).refresh();
};

export const realTimers: TimerSeam = {
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    // A forgotten Source must not keep the process alive on its own.
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  rearm: refresh,
};

/** The real timers as plain `setTimeout` makes them: a pending one keeps the process alive. */
export const plainTimers: TimerSeam = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  rearm: refresh,
};

/**
 * Calls `callback` every `ms` through the seam (a chain of timeouts, so a fake clock drives it too);
 * returns the function that stops it. With the real timers one timer object serves every tick: a
 * viewer's sender reports tick every second, and a new timer each time was garbage per viewer.
 */
export function every(timers: TimerSeam, ms: number, callback: () => void): () => void {
  let stopped = false;
  let handle: TimerHandle;
  const tick = (): void => {
    if (stopped) return;
    if (timers.rearm) timers.rearm(handle);
    else handle = timers.setTimeout(tick, ms);
    callback();
  };
  handle = timers.setTimeout(tick, ms);
  return () => {
    stopped = true;
    timers.clearTimeout(handle);
  };
}
