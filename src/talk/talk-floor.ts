/**
 * Who may talk through a camera right now: one talker at a time (two voices mixed into one small
 * speaker help nobody), the others told who has it. A holder that stops sending voice without
 * letting go (a closed laptop, a lost connection) is released after `idleMs`, so one frozen page
 * cannot keep the family from the doorbell. A holder that loses the floor other than by letting go
 * (gone quiet, or `revoke` because the camera hung up) is told why, once.
 */
import type { TalkHolder } from '../media/talk-channel.js';
import type { TimerHandle, TimerSeam } from '../media/timers.js';

export type FloorListener = (holder: TalkHolder | undefined) => void;

/** Said to a holder the floor was taken from because no voice came. */
export const WENT_QUIET = 'You stopped talking: no sound arrived from your microphone for a few seconds.';

export class TalkFloor {
  private current: TalkHolder | undefined;
  /** Tells the current holder why it lost the floor. */
  private onLost: ((message: string) => void) | undefined;
  private idleTimer: TimerHandle | undefined;
  private readonly listeners = new Set<FloorListener>();

  constructor(
    private readonly timers: TimerSeam,
    private readonly idleMs: number,
  ) {}

  get holder(): TalkHolder | undefined {
    return this.current;
  }

  /**
   * Takes the floor; a holder taking it again keeps it. `onLost` is told why if the floor is taken
   * away (not when the holder lets go). The current holder when someone else has it.
   */
  take(holder: TalkHolder, onLost: (message: string) => void): { taken: true } | { taken: false; holder: TalkHolder } {
    if (this.current && this.current.id !== holder.id) return { taken: false, holder: this.current };
    const changed = this.current === undefined;
    this.current = holder;
    this.onLost = onLost;
    this.heardFrom(holder.id);
    if (changed) this.tell();
    return { taken: true };
  }

  /** The holder's voice arrived: the idle clock starts again. */
  heardFrom(id: string): void {
    if (this.current?.id !== id) return;
    if (this.idleTimer !== undefined) this.timers.clearTimeout(this.idleTimer);
    this.idleTimer = this.timers.setTimeout(() => this.revoke(WENT_QUIET), this.idleMs);
  }

  /** Takes the floor from whoever holds it, telling them `message`. */
  revoke(message: string): void {
    const holder = this.current;
    const onLost = this.onLost;
    if (!holder) return;
    this.release(holder.id);
    onLost?.(message);
  }

  /** Lets go if `id` holds the floor; true when it did. */
  release(id: string): boolean {
    if (this.current?.id !== id) return false;
    this.current = undefined;
    this.onLost = undefined;
    if (this.idleTimer !== undefined) this.timers.clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.tell();
    return true;
  }

  /** Called on every change of holder; returns the unsubscribe. */
  watch(listener: FloorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private tell(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(this.current);
      } catch {
        // One listener's fault must not keep the others from hearing of the change.
      }
    }
  }
}
