/**
 * A camera's motion detector (see README.md): one ffmpeg reading the loopback re-stream and writing
 * small grey pictures to stdout, `FrameDifference` on each, a pulse to `onMotion` for each picture
 * that is motion. Runs from `start()` to `stop()`; an ffmpeg that stops (the camera is down, the
 * re-stream restarted) is started again after 5 s, doubling to at most a minute while it keeps
 * failing quickly, and the reason is logged once at warn (again at debug).
 */
import { describeDiagnosis, diagnoseFfmpeg } from '../ffmpeg/ffmpeg-diagnosis.js';
import { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { MOTION_PICTURE_HEIGHT, MOTION_PICTURE_WIDTH, videoMotionArgs } from '../ffmpeg/motion-args.js';
import type { Logger } from '../util/logger.js';
import { FrameDifference } from './frame-difference.js';

const PICTURE_BYTES = MOTION_PICTURE_WIDTH * MOTION_PICTURE_HEIGHT;
const FIRST_RETRY_MS = 5_000;
const LONGEST_RETRY_MS = 60_000;
/** A run this long was not "failing quickly": the next failure starts the back-off again. */
const STEADY_RUN_MS = 60_000;

export interface VideoMotionOptions {
  ffmpegPath: string;
  /** A fresh re-stream URL (single-use token) for each ffmpeg start. */
  inputUrl: () => string;
  /** 1-100 (frame-difference.ts). */
  sensitivity: number;
  /** A picture that is motion (about twice a second while it lasts). */
  onMotion(changedShare: number): void;
  log: Logger;
  debug?: boolean;
  /** Shortened by tests. */
  firstRetryMs?: number;
}

export class VideoMotionDetector {
  private ffmpeg: FfmpegProcess | undefined;
  private difference: FrameDifference;
  private pending: Buffer = Buffer.alloc(0);
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private warned = false;
  private running = false;
  /** Pictures compared since start (for tests and the debug log). */
  pictures = 0;

  constructor(private readonly options: VideoMotionOptions) {
    this.difference = new FrameDifference(options.sensitivity);
    this.retryMs = options.firstRetryMs ?? FIRST_RETRY_MS;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const ffmpeg = this.ffmpeg;
    this.ffmpeg = undefined;
    await ffmpeg?.stop(1000);
  }

  private run(): void {
    let url: string;
    try {
      url = this.options.inputUrl();
    } catch (error) {
      this.retry(`the re-stream is not ready (${error instanceof Error ? error.message : String(error)})`, 0);
      return;
    }
    // A new run starts comparing afresh: the last picture of the old one is no reference.
    this.difference = new FrameDifference(this.options.sensitivity);
    this.pending = Buffer.alloc(0);
    const startedAt = Date.now();
    const ffmpeg = new FfmpegProcess({
      ffmpegPath: this.options.ffmpegPath,
      args: videoMotionArgs({ inputUrl: url, ...(this.options.debug ? { debug: true } : {}) }),
      label: 'Motion detector',
      log: this.options.log,
      onStdout: (chunk) => this.onPixels(chunk),
      ...(this.options.debug ? { debug: true } : {}),
    });
    this.ffmpeg = ffmpeg;
    void ffmpeg.exited.then((exit) => {
      if (exit.requested || this.ffmpeg !== ffmpeg || !this.running) return;
      this.ffmpeg = undefined;
      this.retry(describeDiagnosis(diagnoseFfmpeg(exit)), Date.now() - startedAt);
    });
  }

  private retry(reason: string, ranMs: number): void {
    if (!this.running) return;
    if (ranMs >= STEADY_RUN_MS) this.retryMs = this.options.firstRetryMs ?? FIRST_RETRY_MS;
    const message = `Motion from the picture: the detector stopped (${reason}); starting it again in ${Math.round(this.retryMs / 1000)} s`;
    if (this.warned) this.options.log.debug(message);
    else this.options.log.warn(message);
    this.warned = true;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.running) this.run();
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(LONGEST_RETRY_MS, this.retryMs * 2);
  }

  private onPixels(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (data.length >= PICTURE_BYTES) {
      const picture = data.subarray(0, PICTURE_BYTES);
      data = data.subarray(PICTURE_BYTES);
      this.pictures++;
      const comparison = this.difference.push(picture);
      if (comparison.motion) this.options.onMotion(comparison.changed);
    }
    this.pending = Buffer.from(data);
  }
}
