/** A manual clock and timer queue implementing the TimerSeam (src/media/timers.ts), so tests control time. */
import type { TimerSeam } from '../../src/media/timers.js';

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

export class FakeTime implements TimerSeam {
  now = 0;
  private nextId = 1;
  private timers: Timer[] = [];

  readonly clock = (): number => this.now;

  setTimeout(callback: () => void, ms: number): number {
    const id = this.nextId++;
    this.timers.push({ id, at: this.now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  get pending(): number {
    return this.timers.length;
  }

  /** Moves time forward, firing due timers in order and letting promise callbacks run after each. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await flush();
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.now = Math.max(this.now, due.at);
      due.callback();
    }
    this.now = end;
    await flush();
  }
}

/** Lets pending promise callbacks (and anything they chain) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
}
