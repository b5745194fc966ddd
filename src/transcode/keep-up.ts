/**
 * Whether a variant's encoder keeps up with its camera, and what to do when it does not. An encoder
 * that is slower than real time does not fail: it reads the re-stream more slowly than the camera
 * sends, so its viewers get fewer frames, later and later. The plugin would rather send a smaller
 * picture now than a large one late, so a variant that gives clearly fewer frames than the camera
 * for two windows in a row is started again one step down the ladder (a smaller box, then fewer
 * frames a second), from the re-stream's cached GOP, which also throws its backlog away. A variant
 * that has kept up for a long time at a reduced step tries one step back up (the machine may have
 * been busy with something else); a step that fails again waits twice as long before the next try.
 *
 * The arithmetic is here, on counters the caller reads (camera video frames in, variant video
 * frames out) and a clock it passes, so it is tested without an encoder; variant-upstream.ts does
 * the restarting.
 */

export interface VariantStep {
  /** The box the picture is scaled into (never up). */
  maxWidth: number;
  maxHeight: number;
  /** A frame-rate cap, for the last steps. */
  maxFps?: number;
}

/** From the largest picture down: each step roughly halves the encoder's work. */
export const VARIANT_STEPS: ReadonlyArray<VariantStep> = [
  { maxWidth: 1280, maxHeight: 720 },
  { maxWidth: 960, maxHeight: 540 },
  { maxWidth: 640, maxHeight: 360 },
  { maxWidth: 640, maxHeight: 360, maxFps: 15 },
  { maxWidth: 480, maxHeight: 270, maxFps: 10 },
];

/**
 * Where a variant starts: the smallest full-rate box that still holds the camera's whole picture,
 * inside `maxWidth` x `maxHeight` (so that a 640x360 camera's first step down really is one: fewer
 * frames, not the same picture in a larger box). An unknown picture counts as the largest.
 */
export function firstStep(maxWidth: number, maxHeight: number, picture?: { width?: number; height?: number }): number {
  const fits = VARIANT_STEPS.map((s, i) => ({ s, i })).filter(({ s }) => s.maxFps === undefined && s.maxWidth <= maxWidth && s.maxHeight <= maxHeight);
  if (fits.length === 0) return VARIANT_STEPS.length - 1;
  const width = picture?.width;
  const height = picture?.height;
  if (!width || !height) return fits[0]!.i;
  const holding = fits.filter(({ s }) => s.maxWidth >= width && s.maxHeight >= height);
  return (holding.at(-1) ?? fits[0]!).i;
}

export interface KeepUpSettings {
  /** One measurement window (default 5 s). */
  windowMs: number;
  /** Time after a (re)start that is not measured: start-up and the cached GOP's burst (default 6 s). */
  warmUpMs: number;
  /** Below this share of the camera's frames a window counts as behind (default 0.8). */
  behindRatio: number;
  /** Windows behind in a row before stepping down (default 2). */
  windowsBehind: number;
  /** Kept up this long at a reduced step: try one step up (default 5 min; doubled after each failed try). */
  stepUpAfterMs: number;
}

export const DEFAULT_KEEP_UP: KeepUpSettings = { windowMs: 5_000, warmUpMs: 6_000, behindRatio: 0.8, windowsBehind: 2, stepUpAfterMs: 300_000 };

export type KeepUpDecision = { action: 'none' } | { action: 'step'; to: number; inRatio: number; reason: 'behind' | 'recovered' };

export class KeepUpWatch {
  private readonly settings: KeepUpSettings;
  private stepIndex: number;
  private readonly topStep: number;
  private startedAt = 0;
  private windowStart: { at: number; input: number; output: number } | undefined;
  private behind = 0;
  /** When the variant last stepped down or started keeping up at this step. */
  private keptUpSince: number | undefined;
  private stepUpWait: number;
  /** The step up being tried: a failure there doubles the wait. */
  private tryingUp = false;

  constructor(first: number, now: number, settings: Partial<KeepUpSettings> = {}) {
    this.settings = { ...DEFAULT_KEEP_UP, ...settings };
    this.stepIndex = first;
    this.topStep = first;
    this.stepUpWait = this.settings.stepUpAfterMs;
    this.restarted(now);
  }

  get step(): number {
    return this.stepIndex;
  }

  /** The encoder (re)started at the current step: measuring starts again after the warm-up. */
  restarted(now: number): void {
    this.startedAt = now;
    this.windowStart = undefined;
    this.behind = 0;
    this.keptUpSince = undefined;
  }

  /**
   * Called now and then (about once a second) with the running totals of camera video frames in
   * and variant video frames out. Says when to restart at another step; the caller restarts and
   * calls `restarted`. `same` says when two steps give the camera's picture alike (a 640x360
   * camera in a 1280x720 or a 960x540 box): a step is never taken to one that changes nothing.
   */
  check(now: number, inputFrames: number, outputFrames: number, same: (a: number, b: number) => boolean = (a, b) => a === b): KeepUpDecision {
    const s = this.settings;
    if (now - this.startedAt < s.warmUpMs) return { action: 'none' };
    if (!this.windowStart) {
      this.windowStart = { at: now, input: inputFrames, output: outputFrames };
      return { action: 'none' };
    }
    if (now - this.windowStart.at < s.windowMs) return { action: 'none' };
    const input = inputFrames - this.windowStart.input;
    const output = outputFrames - this.windowStart.output;
    this.windowStart = { at: now, input: inputFrames, output: outputFrames };
    // A camera that sent (almost) nothing says nothing about the encoder.
    if (input < 10) return { action: 'none' };
    const capped = VARIANT_STEPS[this.stepIndex]!.maxFps;
    // A frame-rate cap sends fewer frames on purpose: measure against what it lets through.
    const expected = capped ? Math.min(input, (capped * s.windowMs) / 1000) : input;
    const ratio = output / expected;
    if (ratio < s.behindRatio) {
      this.keptUpSince = undefined;
      if (++this.behind < s.windowsBehind) return { action: 'none' };
      if (this.tryingUp) {
        this.tryingUp = false;
        this.stepUpWait *= 2;
      }
      let next = this.stepIndex + 1;
      while (next < VARIANT_STEPS.length && same(next, this.stepIndex)) next++;
      if (next >= VARIANT_STEPS.length) {
        this.behind = 0;
        return { action: 'none' };
      }
      this.stepIndex = next;
      return { action: 'step', to: this.stepIndex, inRatio: ratio, reason: 'behind' };
    }
    this.behind = 0;
    this.keptUpSince ??= now;
    if (this.stepIndex > this.topStep && now - this.keptUpSince >= this.stepUpWait) {
      let up = this.stepIndex - 1;
      while (up > this.topStep && same(up, this.stepIndex)) up--;
      this.stepIndex = up;
      this.tryingUp = true;
      return { action: 'step', to: this.stepIndex, inRatio: ratio, reason: 'recovered' };
    }
    if (this.tryingUp && now - this.keptUpSince >= s.windowMs * s.windowsBehind) {
      // The step up held: the next one waits the usual time again.
      this.tryingUp = false;
      this.stepUpWait = s.stepUpAfterMs;
    }
    return { action: 'none' };
  }
}
