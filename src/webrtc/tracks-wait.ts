/**
 * A viewer waiting for its camera's tracks (the camera has not connected yet). Learns of them
 * through the viewer's own sink (`onTracks` calls `recheck`), not a listener on the shared Source,
 * so a hundred waiting viewers add no listeners there; a slow poll covers Sources that do not call
 * `onTracks`.
 */
import { every, type TimerSeam } from '../media/timers.js';
import type { TrackDescription } from '../media/types.js';
import type { BroadcastSource } from '../media/types.js';

export class TracksWait {
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly source: BroadcastSource,
    private readonly timers: TimerSeam,
    private readonly now: () => number,
    private readonly closed: () => boolean,
  ) {}

  /** Resolves with the Source's tracks once known, or rejects on timeout or when the viewer closed. */
  wait(timeoutMs: number): Promise<ReadonlyArray<TrackDescription>> {
    if (this.source.tracks.length > 0) return Promise.resolve(this.source.tracks);
    return new Promise((resolve, reject) => {
      const started = this.now();
      const check = (): void => {
        if (this.closed()) {
          cleanup();
          reject(new Error('viewer closed'));
        } else if (this.source.tracks.length > 0) {
          cleanup();
          resolve(this.source.tracks);
        } else if (this.now() - started >= timeoutMs) {
          cleanup();
          reject(new Error(`camera ${this.source.id} did not deliver its tracks within ${timeoutMs} ms`));
        }
      };
      const cleanup = (): void => {
        stopPolling();
        this.waiters.delete(check);
      };
      const stopPolling = every(this.timers, 250, check);
      this.waiters.add(check);
    });
  }

  /** The tracks changed or the viewer closed: every waiter looks again. */
  recheck(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
