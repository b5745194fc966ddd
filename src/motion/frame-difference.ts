/**
 * Motion between small grey pictures (see README.md): the share of pixels that changed by more
 * than a noise margin once the change of the whole picture's mean brightness is taken out, against
 * a threshold the sensitivity sets, lasting two pictures (see `push`). Pure arithmetic on bytes, so
 * it is tested on pictures made in the test.
 */

/** A pixel must change by more than this (of 255) to count: compression noise and sensor grain stay below. */
export const PIXEL_MARGIN = 25;

/**
 * The share of the picture that must change at `sensitivity` (1-100): 10 % at 1, about 1 % at 50,
 * 0.1 % at 100, evenly on a log scale in between.
 */
export function changedShareFor(sensitivity: number): number {
  const s = Math.min(100, Math.max(1, sensitivity));
  return 10 ** (-1 - (2 * (s - 1)) / 99);
}

export interface Comparison {
  /** Share of the pixels that changed (0-1). */
  changed: number;
  /** This picture and the one before were both above the threshold. */
  motion: boolean;
}

/** The share of pixels that changed by more than the margin, with the mean brightness change taken out. */
export function changedShare(picture: Uint8Array, reference: Uint8Array): number {
  let sumNow = 0;
  let sumBefore = 0;
  for (let i = 0; i < picture.length; i++) {
    sumNow += picture[i]!;
    sumBefore += reference[i]!;
  }
  // A change of the whole picture's brightness moves every pixel alike: take it out first.
  const shift = (sumNow - sumBefore) / picture.length;
  let changed = 0;
  for (let i = 0; i < picture.length; i++) {
    if (Math.abs(picture[i]! - reference[i]! - shift) > PIXEL_MARGIN) changed++;
  }
  return changed / picture.length;
}

export class FrameDifference {
  /** The last two pictures, newest last. */
  private history: Uint8Array[] = [];
  /** How much the last picture differed from the one before it. */
  private lastShare = 0;
  private readonly threshold: number;

  constructor(sensitivity: number) {
    this.threshold = changedShareFor(sensitivity);
  }

  /**
   * Compares `picture` (8-bit grey, any size, the same every time) with the ones before. Motion is
   * a change from the last picture that the last picture had too, and that is still there against
   * the picture before it: so one odd picture (a glitch, a keyframe's pulse, a flash) that comes
   * and goes is not motion, and a thing that moves or arrives is.
   */
  push(picture: Uint8Array): Comparison {
    const copy = Uint8Array.from(picture);
    const [older, previous] = this.history.length === 2 ? this.history : [undefined, this.history[0]];
    if (!previous || previous.length !== picture.length || picture.length === 0) {
      this.history = [copy];
      this.lastShare = 0;
      return { changed: 0, motion: false };
    }
    const share = changedShare(picture, previous);
    const motion = share >= this.threshold && this.lastShare >= this.threshold && older !== undefined && changedShare(picture, older) >= this.threshold;
    this.history = [previous, copy];
    this.lastShare = share;
    return { changed: share, motion };
  }
}
