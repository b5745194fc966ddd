/**
 * Viewer admission. One limiter is shared by the WebSocket and WHEP paths so that a camera's limit
 * counts every viewer, however it came in. A slot is taken before any peer connection is built (so
 * a flood costs nothing) and given back exactly once when the viewer ends.
 */

export interface ViewerLimitSettings {
  /** Default maximum viewers per camera (default 20). */
  maxViewersPerCamera?: number;
  /** Per-camera overrides, by camera id. */
  perCamera?: Readonly<Record<string, number>>;
  /** Maximum viewers over all cameras (default unlimited). */
  maxViewersTotal?: number;
}

export const DEFAULT_MAX_VIEWERS_PER_CAMERA = 20;

export class ViewerLimiter {
  private readonly counts = new Map<string, number>();
  private total = 0;

  constructor(private readonly settings: ViewerLimitSettings = {}) {}

  limitFor(cameraId: string): number {
    return this.settings.perCamera?.[cameraId] ?? this.settings.maxViewersPerCamera ?? DEFAULT_MAX_VIEWERS_PER_CAMERA;
  }

  count(cameraId: string): number {
    return this.counts.get(cameraId) ?? 0;
  }

  get totalCount(): number {
    return this.total;
  }

  /** Takes a slot; returns its release function (idempotent), or undefined when the camera is full. */
  tryAcquire(cameraId: string): (() => void) | undefined {
    const current = this.count(cameraId);
    if (current >= this.limitFor(cameraId)) return undefined;
    if (this.settings.maxViewersTotal !== undefined && this.total >= this.settings.maxViewersTotal) return undefined;
    this.counts.set(cameraId, current + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = this.count(cameraId) - 1;
      if (left <= 0) this.counts.delete(cameraId);
      else this.counts.set(cameraId, left);
    };
  }
}
