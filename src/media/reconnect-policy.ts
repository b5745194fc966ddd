/**
 * When a Source tries its camera again: exponential backoff with jitter, reset by a session that
 * stayed up, and a much slower schedule after refused credentials.
 */

export interface BackoffOptions {
  /** First retry delay (default 1000 ms). */
  initialMs?: number;
  /** Largest retry delay (default 30000 ms). */
  maxMs?: number;
  /** Random spread as a fraction of the delay, 0..1 (default 0.2 = ±20%), so cameras on one NVR do not retry in lockstep. */
  jitter?: number;
  /**
   * First retry delay after the camera refused the credentials (default 30000 ms). Many cameras
   * lock an account after a few wrong log-ins (Hikvision: 5 to 7, for 30 minutes), which also
   * locks the owner out of the camera's own web page; a wrong password never fixes itself anyway.
   */
  credentialInitialMs?: number;
  /** Largest retry delay after refused credentials (default 30 minutes). */
  credentialMaxMs?: number;
}

/**
 * Error codes that mean the camera refused our credentials (src/rtsp/errors.ts `RtspErrorCode`,
 * src/onvif/errors.ts `OnvifErrorCode`): retried on the slow credential schedule. Matched by value
 * so that media/ depends on neither protocol.
 */
const CREDENTIAL_ERROR_CODES: ReadonlySet<unknown> = new Set(['auth', 'forbidden', 'NOT_AUTHORIZED']);

export function refusedCredentials(error: Error): boolean {
  return CREDENTIAL_ERROR_CODES.has((error as Error & { code?: unknown }).code);
}

export class ReconnectPolicy {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly jitter: number;
  private readonly credentialInitialMs: number;
  private readonly credentialMaxMs: number;
  /** Failed attempts since the last stable session. */
  private attempt = 0;

  constructor(
    options: BackoffOptions | undefined,
    private readonly random: () => number,
  ) {
    this.initialMs = options?.initialMs ?? 1000;
    this.maxMs = options?.maxMs ?? 30_000;
    this.jitter = Math.min(1, Math.max(0, options?.jitter ?? 0.2));
    this.credentialInitialMs = options?.credentialInitialMs ?? 30_000;
    this.credentialMaxMs = options?.credentialMaxMs ?? 30 * 60_000;
  }

  /** True once an attempt failed: the next session counts as a reconnect. */
  get retrying(): boolean {
    return this.attempt > 0;
  }

  /** Back to the first delay (the Source went idle). */
  reset(): void {
    this.attempt = 0;
  }

  /** The delay before the next attempt after `error`; `stable` when the session that ended had run long enough to start over. */
  nextDelay(error: Error, stable: boolean): number {
    if (stable) this.attempt = 0;
    const [initialMs, maxMs] = refusedCredentials(error) ? [this.credentialInitialMs, this.credentialMaxMs] : [this.initialMs, this.maxMs];
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 30));
    const spread = 1 - this.jitter + 2 * this.jitter * this.random();
    const delay = Math.max(0, Math.round(Math.min(maxMs, base * spread)));
    this.attempt++;
    return delay;
  }
}

/** A retry delay as a log line says it: "2.0 s", "30 min". */
export function describeDelay(delay: number): string {
  return delay < 60_000 ? `${(delay / 1000).toFixed(1)} s` : `${Math.round(delay / 60_000)} min`;
}
