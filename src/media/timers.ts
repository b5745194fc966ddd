export type TimerHandle = unknown;

/** Seams so tests can drive time; the defaults are the real clock and timers. */
export interface TimerSeam {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realTimers: TimerSeam = {
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    // A forgotten Source must not keep the process alive on its own.
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The real timers as plain `setTimeout` makes them: a pending one keeps the process alive. */
export const plainTimers: TimerSeam = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Calls `callback` every `ms` through the seam (a chain of timeouts, so a fake clock drives it too);
 * returns the function that stops it.
 */
export function every(timers: TimerSeam, ms: number, callback: () => void): () => void {
  let stopped = false;
  let handle: TimerHandle;
  const tick = (): void => {
    if (stopped) return;
    handle = timers.setTimeout(tick, ms);
    callback();
  };
  handle = timers.setTimeout(tick, ms);
  return () => {
    stopped = true;
    timers.clearTimeout(handle);
  };
}
