/**
 * The frames since the last video keyframe, plus the audio in between, so a new viewer starts
 * decoding at once instead of waiting up to a whole GOP for the camera's next keyframe (the
 * "black for 8 seconds" complaint). The same cache answers keyframe requests (PLI/FIR), which most
 * cameras ignore.
 *
 * Bounded in encoded bytes. When a GOP outgrows the bound the cache empties and waits for the next
 * keyframe: a keyframe with a tail cut off would be undecodable after the cut, which is worse than
 * no cache. For the same reason a keyframe that lost packets is not cached: every viewer who joined
 * on it would see a smeared picture (and every snapshot would be one) for a whole GOP, while
 * waiting for the next clean keyframe costs only what a cold start costs.
 */
import type { MediaFrame } from './types.js';
import { frameByteLength } from './frame.js';

/** 4 s at 8 Mbit/s. */
export const DEFAULT_GOP_CACHE_BYTES = 4 * 1024 * 1024;

export class GopCache {
  private cached: MediaFrame[] = [];
  private bytes = 0;
  /** True when `cached` starts with a keyframe and nothing since was dropped. */
  private open = false;
  /** How often a GOP outgrew the bound. */
  overflows = 0;
  /** Keyframes not cached because packets of them were lost. */
  damagedKeyframes = 0;

  constructor(readonly maxBytes = DEFAULT_GOP_CACHE_BYTES) {
    if (!(maxBytes >= 0)) throw new RangeError('GOP cache bound must be >= 0');
  }

  push(frame: MediaFrame): void {
    const size = frameByteLength(frame);
    if (frame.kind === 'video' && frame.keyframe) {
      if (frame.damaged) {
        this.damagedKeyframes++;
        this.clear();
        return;
      }
      // A new array rather than truncation: replays in progress keep iterating the old GOP.
      // A keyframe larger than the bound is still kept alone: it is decodable on its own.
      this.cached = [frame];
      this.bytes = size;
      this.open = this.maxBytes > 0;
      if (!this.open) this.clear();
      return;
    }
    if (!this.open) return;
    if (this.bytes + size > this.maxBytes) {
      this.overflows++;
      this.clear();
      return;
    }
    this.cached.push(frame);
    this.bytes += size;
  }

  /** Empties the cache until the next keyframe (session ended, stream changed). */
  clear(): void {
    this.cached = [];
    this.bytes = 0;
    this.open = false;
  }

  /** The cached frames, oldest (the keyframe) first. Do not modify. */
  get frames(): ReadonlyArray<MediaFrame> {
    return this.cached;
  }

  get byteLength(): number {
    return this.bytes;
  }

  get frameCount(): number {
    return this.cached.length;
  }

  get hasKeyframe(): boolean {
    return this.open;
  }
}
