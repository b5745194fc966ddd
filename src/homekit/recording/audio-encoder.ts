/**
 * A G.711 camera's sound for one HomeKit Secure Video recording: HomeKit records AAC, so the
 * camera's µ-law/A-law frames (the pre-buffer's, then the live ones, in the order the recording sees
 * them) are decoded here to 16-bit PCM (src/media/g711.ts) and piped to one ffmpeg per recording
 * stream, which resamples to the hub's rate and encodes AAC-LC as ADTS on stdout
 * (src/ffmpeg/recording-args.ts). HomeKit pulls one recording per camera at a time, so this is at
 * most one small ffmpeg per camera, and only while a recording runs.
 *
 * Timing. Sample counting keeps the sound on the video's clock: a gap in the camera's RTP timestamps
 * (lost packets, a camera that skips silence) is filled with that many samples of silence, and an
 * overlap is cut, so input sample n is always `n / rate` after the first G.711 frame. That first
 * frame is anchored to the video frame it arrived after, corrected by the two frames' capture times
 * when the camera's RTCP sender reports give them (`anchorFor`); without them within one video
 * frame, the rule the pass-through AAC track follows. AAC frame k then starts at anchor + k * 1024
 * output samples.
 * The encoder's priming delay: ffmpeg's AAC encoder puts out one frame of priming (1024 samples,
 * pts -1024) before the first input sample, so that first ADTS frame is dropped and frame 1 is
 * counted as starting at the anchor; its decoder output lacks the overlap from the dropped frame,
 * which only touches the first 64 ms at 16 kHz of the recording's sound. The resampler's own delay
 * (a few samples) is not corrected.
 *
 * Failures never stop the video: no ffmpeg, ffmpeg exiting, or ffmpeg falling more than
 * `MAX_LAG_SECONDS` behind the audio fed to it (once `STARTUP_GRACE_MS` has passed) ends the encoder, says why once (by name), and the
 * recording continues without sound. `close()` ends the ffmpeg with the recording.
 */
import type { FfmpegCapabilities } from '../../ffmpeg/capabilities.js';
import { diagnoseFfmpeg } from '../../ffmpeg/ffmpeg-diagnosis.js';
import { FfmpegProcess } from '../../ffmpeg/ffmpeg-process.js';
import { recordingAudioArgs } from '../../ffmpeg/recording-args.js';
import { AAC_LC_OBJECT_TYPE, AdtsReader, audioSpecificConfig } from '../../media/adts.js';
import type { AacTrackConfig } from '../../media/fmp4/sample-entries.js';
import { g711ToPcm, type G711Codec } from '../../media/g711.js';
import type { MediaFrame } from '../../media/types.js';
import type { Logger } from '../../util/logger.js';

/** Samples per AAC-LC frame. */
export const AAC_FRAME_SAMPLES = 1024;
/** Output frames of ffmpeg's AAC encoder that precede the first input sample (its priming). */
const PRIMING_FRAMES = 1;
/** How far ffmpeg may fall behind the audio fed to it before the recording goes on without sound. */
export const MAX_LAG_SECONDS = 2;
/**
 * Wall-clock time ffmpeg gets to start and work through the pre-buffer before its lag counts: the
 * whole pre-buffer (4-8 s of sound) is fed at once, and on a busy Raspberry Pi starting ffmpeg alone
 * can take a second; a recording must not lose its sound for that. Sound that comes late meanwhile
 * goes into the next fragment.
 */
export const STARTUP_GRACE_MS = 5000;
/** PCM waiting in the pipe to ffmpeg, at most: far more than ffmpeg ever leaves unread when it keeps up. */
const MAX_PIPE_BYTES = 1024 * 1024;
/** A gap longer than this is not a gap but a broken clock; filling it would be minutes of silence. */
const MAX_GAP_SECONDS = 30;

/** A capture-time difference beyond this is a broken sender report, not the camera's A/V offset. */
const MAX_CAPTURE_SKEW_MS = 1000;

/**
 * The video timestamp (90 kHz) at which the first G.711 frame's sound was captured: the video frame
 * it arrived after, moved by the difference of their capture times when the camera's RTCP sender
 * reports gave both (a camera that sends its audio earlier or later than its video then still
 * records in sync); within one video frame otherwise.
 */
export function anchorFor(videoTimestamp: number, videoCaptureTime: number | undefined, audioCaptureTime: number | undefined): number {
  if (videoCaptureTime === undefined || audioCaptureTime === undefined) return videoTimestamp;
  const skewMs = audioCaptureTime - videoCaptureTime;
  if (!(Math.abs(skewMs) <= MAX_CAPTURE_SKEW_MS)) return videoTimestamp;
  return (videoTimestamp + Math.round(skewMs * 90)) >>> 0;
}

export const G711_NAMES: Record<G711Codec, string> = { PCMU: 'G.711 µ-law (PCMU)', PCMA: 'G.711 A-law (PCMA)' };

export interface RecordingAudioPlan {
  codec: G711Codec;
  /** The camera's G.711 clock rate and channel count. */
  inputSampleRate: number;
  inputChannels: number;
  /** The hub's recording configuration. */
  outputSampleRate: number;
  outputChannels: number;
  bitrateKbps: number;
}

export interface RecordingAudioEncoderOptions {
  plan: RecordingAudioPlan;
  ffmpeg: FfmpegCapabilities;
  log: Logger;
  /** For ffmpeg's log lines: "recording 3 audio". */
  label: string;
  /**
   * Says why the encoder stopped (`kind`: 'exit', 'spawn', 'behind', 'stuck', 'clock', 'output');
   * the delegate warns once per kind and keeps later recordings' repeats at debug. Default: warn.
   */
  report?: (kind: string, message: string) => void;
  debug?: boolean;
  /** Default `STARTUP_GRACE_MS` (tests shorten it). */
  startupGraceMs?: number;
}

/** The `mp4a` track a plan produces: AAC-LC at the hub's rate and channels. */
export function encodedTrackConfig(plan: RecordingAudioPlan): AacTrackConfig {
  return {
    audioSpecificConfig: audioSpecificConfig(AAC_LC_OBJECT_TYPE, plan.outputSampleRate, plan.outputChannels),
    sampleRate: plan.outputSampleRate,
    channels: plan.outputChannels,
  };
}

export class RecordingAudioEncoder {
  readonly config: AacTrackConfig;
  private readonly plan: RecordingAudioPlan;
  private readonly ffmpeg: FfmpegProcess;
  private readonly reader = new AdtsReader();
  /** AAC access units out of ffmpeg not yet taken, with their index after the priming frame(s). */
  private ready: Array<{ index: number; data: Buffer }> = [];
  private framesOut = 0;
  private lastVideoTimestamp: number | undefined;
  private lastVideoCaptureTime: number | undefined;
  private sawKeyframe = false;
  /** The video timestamp (90 kHz) the first G.711 frame arrived after. */
  private anchorVideoTimestamp: number | undefined;
  /** The G.711 timestamp the next frame should have; the input clock's sample counter. */
  private nextInputTimestamp = 0;
  private inputSamples = 0;
  private failure: string | undefined;
  private closed = false;
  private waiters: Array<() => void> = [];
  private readonly startedAt = performance.now();

  constructor(private readonly options: RecordingAudioEncoderOptions) {
    this.plan = options.plan;
    this.config = encodedTrackConfig(this.plan);
    this.ffmpeg = new FfmpegProcess({
      ffmpegPath: options.ffmpeg.path,
      args: recordingAudioArgs({ ...this.plan, ...(options.debug ? { debug: true } : {}) }),
      label: options.label,
      log: options.log,
      stdin: true,
      onStdout: (chunk) => this.onAdts(chunk),
      ...(options.debug ? { debug: true } : {}),
    });
    this.ffmpeg.once('exit', (exit) => {
      if (exit.requested || this.closed) return;
      const diagnosis = diagnoseFfmpeg(exit);
      const said = exit.spawnError ? `could not be started (${exit.spawnError.message})` : `exited (${diagnosis.cause}${diagnosis.quote ? `: ${diagnosis.quote}` : ''})`;
      this.fail(exit.spawnError ? 'spawn' : 'exit', said);
    });
  }

  /** AAC frames ffmpeg has returned so far (after the priming frame). */
  get encodedFrames(): number {
    return Math.max(0, this.framesOut - PRIMING_FRAMES);
  }

  /**
   * Every frame the recording sees, in order: video frames move the anchor, G.711 frames (from the
   * first keyframe on) are decoded and fed to ffmpeg.
   */
  observe(frame: MediaFrame): void {
    if (frame.kind === 'video') {
      if (frame.keyframe) this.sawKeyframe = true;
      if (this.sawKeyframe) {
        this.lastVideoTimestamp = frame.timestamp;
        this.lastVideoCaptureTime = frame.captureTime;
      }
      return;
    }
    if (this.failure || this.closed || this.lastVideoTimestamp === undefined) return;
    if (frame.codec !== this.plan.codec) return;
    const channels = this.plan.inputChannels;
    let payload = frame.units[0] ?? Buffer.alloc(0);
    const frameSamples = Math.floor(payload.length / channels);
    let samples = frameSamples;
    if (this.anchorVideoTimestamp === undefined) {
      this.anchorVideoTimestamp = anchorFor(this.lastVideoTimestamp, this.lastVideoCaptureTime, frame.captureTime);
      this.nextInputTimestamp = frame.timestamp;
    }
    // Signed distance on the 32-bit RTP clock: positive is a gap, negative an overlap.
    const gap = (frame.timestamp - this.nextInputTimestamp) | 0;
    if (gap > 0) {
      if (gap > MAX_GAP_SECONDS * this.plan.inputSampleRate) {
        this.fail('clock', `saw the camera's audio clock jump ${(gap / this.plan.inputSampleRate).toFixed(0)} s`);
        return;
      }
      this.write(Buffer.alloc(gap * channels * 2), gap);
    } else if (gap < 0) {
      const skip = Math.min(samples, -gap);
      payload = payload.subarray(skip * channels);
      samples -= skip;
    }
    if (samples > 0) this.write(g711ToPcm(this.plan.codec, payload.subarray(0, samples * channels)), samples);
    // A frame wholly inside audio already written (a late duplicate) must not move the clock back.
    const end = (frame.timestamp + frameSamples) >>> 0;
    if (((end - this.nextInputTimestamp) | 0) > 0) this.nextInputTimestamp = end;
  }

  /**
   * Where the sound starts, in output samples from the recording's first video frame (`origin`, its
   * 90 kHz timestamp); undefined before the first G.711 frame.
   */
  private startSample(origin: number): number | undefined {
    if (this.anchorVideoTimestamp === undefined) return undefined;
    return Math.round((((this.anchorVideoTimestamp - origin) | 0) * this.plan.outputSampleRate) / 90000);
  }

  /** Output samples (from `origin`) the encoded frames cover so far; undefined before any sound. */
  coveredUntil(origin: number): number | undefined {
    const start = this.startSample(origin);
    return start === undefined ? undefined : start + this.encodedFrames * AAC_FRAME_SAMPLES;
  }

  /**
   * Waits until ffmpeg has returned the sound up to `end` (output samples from `origin`), it failed,
   * `signal` aborted, or `timeoutMs` passed: the recording never holds its video longer than that.
   * Also checks that ffmpeg keeps up with what it was fed.
   */
  async until(origin: number, end: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const done = (): boolean => {
      const covered = this.coveredUntil(origin);
      return this.failure !== undefined || this.closed || signal.aborted || covered === undefined || covered >= end;
    };
    if (!done()) {
      await new Promise<void>((resolve) => {
        const finish = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', finish);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve();
        };
        const check = (): void => {
          if (done()) finish();
        };
        const timer = setTimeout(finish, timeoutMs);
        signal.addEventListener('abort', finish, { once: true });
        this.waiters.push(check);
      });
    }
    this.checkLag(origin, end);
  }

  /**
   * The AAC frames that start before `end` (output samples from `origin`), as MediaFrames whose
   * timestamps count output samples from `origin`; frames before `origin` are dropped.
   */
  take(origin: number, end: number): MediaFrame[] {
    const start = this.startSample(origin);
    if (start === undefined) return [];
    const frames: MediaFrame[] = [];
    let used = 0;
    for (const unit of this.ready) {
      const timestamp = start + unit.index * AAC_FRAME_SAMPLES;
      if (timestamp >= end) break;
      used++;
      if (timestamp < 0) continue;
      frames.push({
        kind: 'audio',
        codec: 'AAC',
        clockRate: this.plan.outputSampleRate,
        timestamp,
        sequenceNumber: 0,
        keyframe: true,
        units: [unit.data],
        packets: [],
        byteLength: unit.data.length,
        receivedAt: performance.now(),
      });
    }
    this.ready = this.ready.slice(used);
    return frames;
  }

  /** Ends ffmpeg (end of input, then SIGTERM, SIGKILL after a grace) and resolves once it has exited. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake();
    this.ffmpeg.stdin?.end();
    await this.ffmpeg.stop(1000);
  }

  private write(pcm: Buffer, samples: number): void {
    const stdin = this.ffmpeg.stdin;
    if (!stdin || !this.ffmpeg.running) return;
    if (stdin.writableLength > MAX_PIPE_BYTES) {
      this.fail('stuck', `stopped reading its input (${(stdin.writableLength / 1024).toFixed(0)} KiB unread)`);
      return;
    }
    stdin.write(pcm);
    this.inputSamples += samples;
  }

  private checkLag(origin: number, end: number): void {
    const start = this.startSample(origin);
    if (this.failure || this.closed || start === undefined) return;
    if (performance.now() - this.startedAt < (this.options.startupGraceMs ?? STARTUP_GRACE_MS)) return;
    const fedUntil = start + Math.floor((this.inputSamples * this.plan.outputSampleRate) / this.plan.inputSampleRate);
    const covered = start + this.encodedFrames * AAC_FRAME_SAMPLES;
    // Only audio that was fed by the fragment's end counts: ffmpeg cannot encode what it never got.
    const lag = (Math.min(end, fedUntil) - covered) / this.plan.outputSampleRate;
    if (lag > MAX_LAG_SECONDS) this.fail('behind', `fell ${lag.toFixed(1)} s behind`);
  }

  private onAdts(chunk: Buffer): void {
    if (this.failure || this.closed) return;
    let frames;
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.fail('output', `wrote something that is not ADTS (${error instanceof Error ? error.message : String(error)})`);
      return;
    }
    for (const frame of frames) {
      const index = this.framesOut - PRIMING_FRAMES;
      this.framesOut++;
      if (index >= 0) this.ready.push({ index, data: frame.data });
    }
    if (frames.length > 0) this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private fail(kind: string, reason: string): void {
    if (this.failure || this.closed) return;
    this.failure = reason;
    this.ready = [];
    const message =
      `HomeKit Secure Video: the ${G711_NAMES[this.plan.codec]} to AAC-LC encoder (ffmpeg ${this.options.ffmpeg.path}) ${reason}; ` +
      'this recording continues without sound.';
    if (this.options.report) this.options.report(kind, message);
    else this.options.log.warn(message);
    this.wake();
    void this.ffmpeg.stop(1000);
  }
}
