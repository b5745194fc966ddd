/**
 * Per-client login throttling with exponential backoff. A few free mistakes, then each further
 * failure locks the client out for twice as long as the previous one (1 s, 2 s, 4 s ... capped),
 * answered 429 with Retry-After without even running scrypt. Clients are keyed by IPv4 address or
 * IPv6 /64 (client-address.ts), so one attacker cannot lock out a family member on another address.
 *
 * At most `maxInFlight` attempts per client are checked at the same time, so a burst of parallel
 * guesses cannot slip past the counter before the first failure is recorded. The table is bounded
 * (oldest entries are dropped) and forgets a client after a quiet period.
 */

export interface RateLimitSettings {
  /** Failures allowed before the backoff starts. */
  freeAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A client with no failure for this long starts from zero again. */
  forgetAfterMs: number;
  maxInFlight: number;
  maxEntries: number;
}

export const DEFAULT_RATE_LIMIT: Readonly<RateLimitSettings> = Object.freeze({
  freeAttempts: 5,
  baseDelayMs: 1000,
  maxDelayMs: 15 * 60_000,
  forgetAfterMs: 15 * 60_000,
  maxInFlight: 2,
  maxEntries: 10_000,
});

interface Entry {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
  inFlight: number;
}

export type Admission = { allowed: true; done(success: boolean): void } | { allowed: false; retryAfterMs: number };

export class LoginRateLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly settings: RateLimitSettings;

  constructor(
    settings: Partial<RateLimitSettings> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.settings = { ...DEFAULT_RATE_LIMIT, ...settings };
  }

  /** Whether `key` may try now; when allowed, call `done(success)` exactly once afterwards. */
  admit(key: string): Admission {
    const now = this.now();
    let entry = this.entries.get(key);
    if (entry && entry.inFlight === 0 && now - entry.lastFailureAt > this.settings.forgetAfterMs && now >= entry.blockedUntil) {
      this.entries.delete(key);
      entry = undefined;
    }
    if (entry && now < entry.blockedUntil) return { allowed: false, retryAfterMs: entry.blockedUntil - now };
    if (entry && entry.inFlight >= this.settings.maxInFlight) return { allowed: false, retryAfterMs: this.settings.baseDelayMs };
    if (!entry) {
      entry = { failures: 0, lastFailureAt: now, blockedUntil: 0, inFlight: 0 };
      this.insert(key, entry);
    }
    const current = entry;
    current.inFlight++;
    let finished = false;
    return {
      allowed: true,
      done: (success) => {
        if (finished) return;
        finished = true;
        current.inFlight--;
        if (!success) this.recordFailure(key, current);
      },
    };
  }

  /** Records a failed attempt that did not go through `admit` (a bad share-link token, a bad bearer token). */
  fail(key: string): void {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { failures: 0, lastFailureAt: this.now(), blockedUntil: 0, inFlight: 0 };
      this.insert(key, entry);
    }
    this.recordFailure(key, entry);
  }

  /** Milliseconds `key` must still wait, 0 when it may try. */
  blockedFor(key: string): number {
    const entry = this.entries.get(key);
    return entry ? Math.max(0, entry.blockedUntil - this.now()) : 0;
  }

  get size(): number {
    return this.entries.size;
  }

  private recordFailure(key: string, entry: Entry): void {
    const now = this.now();
    if (now - entry.lastFailureAt > this.settings.forgetAfterMs && now >= entry.blockedUntil) entry.failures = 0;
    entry.failures++;
    entry.lastFailureAt = now;
    // The failure that uses up the free attempts already starts the first wait.
    const over = entry.failures - this.settings.freeAttempts + 1;
    if (over > 0) {
      const delay = Math.min(this.settings.maxDelayMs, this.settings.baseDelayMs * 2 ** Math.min(30, over - 1));
      entry.blockedUntil = Math.max(entry.blockedUntil, now + delay);
    }
    // Refresh its place in the insertion order: the oldest quiet entries are evicted first.
    if (this.entries.get(key) === entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
  }

  private insert(key: string, entry: Entry): void {
    while (this.entries.size >= this.settings.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(key, entry);
  }
}
