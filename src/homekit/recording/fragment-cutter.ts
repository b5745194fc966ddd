/**
 * Where a recording's fragments begin and end. HomeKit wants every fragment to start on a keyframe
 * and last no longer than the fragment length the hub selected (commonly 4000 ms). The camera's
 * bytes pass through, so the cuts can only fall on the camera's own keyframes: a fragment takes
 * whole GOPs while one more GOP (as long as the last one was) still fits, and is cut at the
 * keyframe where it would not. A GOP longer than the fragment length becomes a fragment on its own,
 * which is longer than asked; `overlongFragments` counts those so the caller can say why.
 */
import type { MediaFrame } from '../../media/types.js';

export class FragmentCutter {
  private current: MediaFrame[] = [];
  private fragmentStart = 0;
  private gopStart = 0;
  /** Fragments that came out longer than the fragment length (a GOP longer than it). */
  overlongFragments = 0;
  private readonly fragmentTicks: number;

  /** `fragmentMs`: the hub's fragment length. Timestamps are the Source's 90 kHz video clock. */
  constructor(fragmentMs: number) {
    if (!(fragmentMs > 0)) throw new RangeError(`fragment length must be > 0 ms, got ${fragmentMs}`);
    this.fragmentTicks = (fragmentMs * 90000) / 1000;
  }

  /** Adds a frame; returns the fragment it completed, if any (its frames start with a keyframe). */
  push(frame: MediaFrame): MediaFrame[] | undefined {
    const keyframe = frame.kind === 'video' && frame.keyframe;
    if (this.current.length === 0) {
      // Nothing can come before the first keyframe: it would not decode.
      if (!keyframe) return undefined;
      this.fragmentStart = this.gopStart = frame.timestamp;
      this.current.push(frame);
      return undefined;
    }
    let done: MediaFrame[] | undefined;
    if (keyframe) {
      const elapsed = (frame.timestamp - this.fragmentStart) >>> 0;
      const lastGop = (frame.timestamp - this.gopStart) >>> 0;
      this.gopStart = frame.timestamp;
      if (elapsed + lastGop > this.fragmentTicks) {
        if (elapsed > this.fragmentTicks) this.overlongFragments++;
        done = this.current;
        this.current = [];
        this.fragmentStart = frame.timestamp;
      }
    }
    this.current.push(frame);
    return done;
  }
}
