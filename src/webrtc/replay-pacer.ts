/**
 * Paces a viewer's GOP replay. On join and on PLI/FIR the Source replays its cached GOP at once:
 * up to a few MB (4 s at 8 Mbit/s) in one synchronous burst, which overflows a browser's socket
 * buffer (or a Wi-Fi queue) and turns into hundreds of lost packets, NACKs and another keyframe
 * request. While a replay is draining, every packet of this viewer (replayed or live, already
 * protected, in order) waits here and goes out at `bytesPerMs` with a small burst allowance.
 * Memory is bounded by the Source's GOP cache plus what arrives during the drain (well under a
 * second); the queue is empty the rest of the time, so live packets skip it.
 */
export class ReplayPacer {
  private readonly queue: Buffer[][] = [];
  private head = 0;
  private queuedBytesValue = 0;
  private timer: NodeJS.Timeout | undefined;
  private tokens: number;
  private lastRefill = 0;

  constructor(
    private readonly sendNow: (parts: Buffer[]) => void,
    private readonly bytesPerMs: number,
    private readonly burstBytes: number,
  ) {
    this.tokens = burstBytes;
  }

  get active(): boolean {
    return this.head < this.queue.length;
  }

  get queuedBytes(): number {
    return this.queuedBytesValue;
  }

  /** Queues one protected packet and starts draining. */
  push(parts: Buffer[], size: number): void {
    if (!this.active) {
      this.refill();
    }
    this.queue.push(parts);
    this.queuedBytesValue += size;
    this.drain();
  }

  private refill(): void {
    const now = performance.now();
    if (this.lastRefill === 0) this.lastRefill = now;
    this.tokens = Math.min(this.burstBytes, this.tokens + (now - this.lastRefill) * this.bytesPerMs);
    this.lastRefill = now;
  }

  private drain(): void {
    this.refill();
    while (this.head < this.queue.length && this.tokens > 0) {
      const parts = this.queue[this.head]!;
      this.queue[this.head++] = [];
      let size = 0;
      for (const part of parts) size += part.length;
      this.tokens -= size;
      this.queuedBytesValue -= size;
      this.sendNow(parts);
    }
    if (this.head >= this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
      return;
    }
    if (this.head > 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, 1);
  }

  /** Drops everything queued (viewer closed). */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.head = 0;
    this.queuedBytesValue = 0;
  }
}
