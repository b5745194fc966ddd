/**
 * A sliding-window rate (bytes/s, frames/s) in O(1) per sample: the window is a ring of time buckets,
 * so measuring bitrate costs a division and an addition per packet however many packets there are.
 */
export class RateMeter {
  private readonly buckets: Float64Array;
  private current = -1; // absolute bucket number of the newest bucket
  private total = 0;
  private firstAt = -1;

  constructor(windowMs = 5000, private readonly bucketMs = 250) {
    this.buckets = new Float64Array(Math.max(2, Math.ceil(windowMs / bucketMs)));
  }

  add(now: number, amount: number): void {
    if (this.firstAt < 0) this.firstAt = now;
    this.advance(now);
    this.buckets[this.current % this.buckets.length]! += amount;
    this.total += amount;
  }

  /** Amount per second over the window (or since the first sample, when that is shorter). */
  perSecond(now: number): number {
    const span = this.spanMs(now);
    return span > 0 ? Math.max(0, this.total * 1000) / span : 0;
  }

  /** The time the rate is taken over: the window, or since the first sample when that is shorter. */
  spanMs(now: number): number {
    if (this.firstAt < 0) return 0;
    this.advance(now);
    const covered = (this.buckets.length - 1) * this.bucketMs + (now - this.current * this.bucketMs);
    return Math.min(now - this.firstAt, covered);
  }

  reset(): void {
    this.buckets.fill(0);
    this.current = -1;
    this.total = 0;
    this.firstAt = -1;
  }

  private advance(now: number): void {
    const bucket = Math.floor(now / this.bucketMs);
    if (this.current < 0) {
      this.current = bucket;
      return;
    }
    if (bucket <= this.current) return;
    const steps = Math.min(bucket - this.current, this.buckets.length);
    for (let i = 1; i <= steps; i++) {
      const index = (this.current + i) % this.buckets.length;
      this.total -= this.buckets[index]!;
      this.buckets[index] = 0;
    }
    this.current = bucket;
  }
}
