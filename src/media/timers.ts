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
