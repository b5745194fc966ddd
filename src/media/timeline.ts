/**
 * One track's output timeline. Viewers must see timestamps and sequence numbers that only move
 * forward, whatever the camera does: a reboot brings a new SSRC, new random sequence and timestamp
 * bases, and some cameras jump their clock without changing SSRC. We map the camera's timestamps
 * with an offset that is re-chosen at every such break so that the output continues from where it
 * was, advanced by the wall-clock time that passed. Sequence numbers are ours anyway: each frame
 * takes as many as it has output packets.
 */
import { timestampDelta } from './rtp.js';

/** A backward jump larger than this (in seconds of media) is a discontinuity, not reordering. */
const MAX_BACKWARD_S = 1;
/** A forward jump this far beyond the elapsed wall-clock time is a discontinuity, not a pause. */
const MAX_FORWARD_AHEAD_S = 10;

export class OutputTimeline {
  private offset = 0;
  private started = false;
  private pendingRebase = true;
  private lastIn = 0;
  private lastOut = 0;
  private lastOutAt = 0;
  private nextSequence: number;
  /** Breaks in the camera's timeline we bridged (reconnects, SSRC changes, jumps). */
  discontinuities = 0;

  constructor(private rate: number, initialSequence: number, private readonly initialTimestamp?: number) {
    this.nextSequence = initialSequence & 0xffff;
  }

  get clockRate(): number {
    return this.rate;
  }

  /** The next input timestamp starts a new camera timeline (new session or SSRC). */
  rebase(clockRate = this.rate): void {
    this.pendingRebase = true;
    this.rate = clockRate;
  }

  /** Maps a camera timestamp to the output timeline; `now` is a monotonic clock in ms. */
  map(input: number, now: number): number {
    if (this.pendingRebase) {
      this.pendingRebase = false;
      this.bridge(input, now);
    } else {
      const delta = timestampDelta(this.lastIn, input);
      const elapsed = ((now - this.lastOutAt) * this.rate) / 1000;
      if (delta < -MAX_BACKWARD_S * this.rate || delta > elapsed + MAX_FORWARD_AHEAD_S * this.rate) {
        this.discontinuities++;
        this.bridge(input, now);
      }
    }
    this.lastIn = input;
    const out = (input + this.offset) >>> 0;
    // Only forward movement updates the anchor, so B-frame reordering cannot pull it back.
    if (timestampDelta(this.lastOut, out) > 0) {
      this.lastOut = out;
      this.lastOutAt = now;
    }
    return out;
  }

  /** Reserves `count` sequence numbers and returns the first. */
  takeSequence(count: number): number {
    const first = this.nextSequence;
    this.nextSequence = (this.nextSequence + count) & 0xffff;
    return first;
  }

  private bridge(input: number, now: number): void {
    let target: number;
    if (this.started) {
      // Continue from the last output by the time that really passed (at least one tick).
      const gap = Math.max(1, Math.round(((now - this.lastOutAt) * this.rate) / 1000));
      target = (this.lastOut + gap) >>> 0;
    } else {
      target = this.initialTimestamp ?? input;
      this.started = true;
    }
    this.offset = (target - input) | 0;
    this.lastOut = target;
    this.lastOutAt = now;
  }
}
