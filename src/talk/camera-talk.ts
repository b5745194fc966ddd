/**
 * One camera's talk channel (README.md): the floor, and the pipeline from the talker's Opus to the
 * camera's speaker, opened with the first word and closed `lingerMs` after the last talker let go
 * (so a conversation of short presses does not set the back-channel up each time).
 *
 * Time: each Ogg page's granule follows the talker's RTP clock, so ffmpeg fills a lost packet or a
 * short pause with silence (`aresample=async=1`) and the camera hears the voice at its own pace;
 * a pause longer than `MAX_FILLED_GAP` starts a new talk spurt instead, so that a talker who pressed
 * again after a minute is not preceded by a minute of silence.
 */
import { describeDiagnosis, diagnoseFfmpeg } from '../ffmpeg/ffmpeg-diagnosis.js';
import { FfmpegProcess } from '../ffmpeg/ffmpeg-process.js';
import { talkArgs } from '../ffmpeg/talk-args.js';
import { OggOpusWriter, opusPacketSamples } from '../media/ogg.js';
import { realTimers, type TimerHandle, type TimerSeam } from '../media/timers.js';
import type { Logger } from '../util/logger.js';
import type { TalkChannel, TalkHolder, TalkTurn } from '../media/talk-channel.js';
import { TalkFloor } from './talk-floor.js';

/** Where the G.711 goes: the camera's back-channel (`RtspBackchannel` fits). */
export interface TalkOutput {
  readonly format: { encoding: 'PCMU' | 'PCMA' };
  sendAudio(g711: Buffer): void;
  close(): Promise<void>;
}

export interface CameraTalkOptions {
  cameraName: string;
  /**
   * Opens the camera's back-channel, which calls `onClosed` if the camera ends it. Rejects with a
   * plain message when the camera has none.
   */
  openOutput(onClosed: (error: Error) => void): Promise<TalkOutput>;
  ffmpegPath: string;
  log: Logger;
  debug?: boolean;
  timers?: TimerSeam;
  /** A holder that sends no voice this long loses the floor (default 5 s). */
  idleMs?: number;
  /** The back-channel stays open this long after the last talker let go (default 10 s). */
  lingerMs?: number;
}

/** Voice packets held while the back-channel opens: 1 s of 20 ms packets. */
const MAX_QUEUED_PACKETS = 50;
/** Longest pause (48 kHz samples) filled with silence; a longer one starts a new talk spurt. */
const MAX_FILLED_GAP = 9600;
/** ffmpeg's stdin may hold this much before the talker is cut off as too fast for it. */
const MAX_PIPE_BYTES = 256 * 1024;

export class CameraTalk implements TalkChannel {
  private readonly floor: TalkFloor;
  private readonly timers: TimerSeam;
  private pipeline: TalkPipeline | undefined;
  private lingerTimer: TimerHandle | undefined;
  private closed = false;

  constructor(private readonly options: CameraTalkOptions) {
    this.timers = options.timers ?? realTimers;
    this.floor = new TalkFloor(this.timers, options.idleMs ?? 5000);
    this.floor.watch((holder) => {
      if (holder) this.cancelLinger();
      else this.startLinger();
    });
  }

  /** Who talks now; undefined when nobody does. */
  get holder(): TalkHolder | undefined {
    return this.floor.holder;
  }

  /** Who talks (undefined: nobody), told on every change. */
  watch(listener: (holder: TalkHolder | undefined) => void): () => void {
    return this.floor.watch(listener);
  }

  /**
   * Takes the floor for `holder`. `onEnd` is called once, with a plain message, if the turn ends
   * other than by `release()`: the camera has no back-channel, the talker went quiet, the camera
   * hung up. `{ busy }` names who talks now.
   */
  take(holder: TalkHolder, onEnd: (message: string) => void): TalkTurn | { busy: string } {
    if (this.closed) return { busy: 'nobody (the camera is being removed)' };
    const verdict = this.floor.take(holder, onEnd);
    if (!verdict.taken) return { busy: verdict.holder.name };
    let released = false;
    const pipeline = this.ensurePipeline();
    return {
      voice: (payload, timestamp) => {
        if (released || this.floor.holder?.id !== holder.id) return;
        this.floor.heardFrom(holder.id);
        pipeline.voice(payload, timestamp);
      },
      release: () => {
        if (released) return;
        released = true;
        this.floor.release(holder.id);
      },
    };
  }

  /** Ends everything: the camera is removed or the plugin stops. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelLinger();
    const holder = this.floor.holder;
    if (holder) this.floor.release(holder.id);
    await this.pipeline?.close();
    this.pipeline = undefined;
  }

  private ensurePipeline(): TalkPipeline {
    if (this.pipeline && !this.pipeline.ended) return this.pipeline;
    const pipeline = new TalkPipeline(this.options, (message) => {
      if (this.pipeline === pipeline) this.pipeline = undefined;
      this.floor.revoke(message);
    });
    this.pipeline = pipeline;
    return pipeline;
  }

  private startLinger(): void {
    this.cancelLinger();
    if (!this.pipeline) return;
    this.lingerTimer = this.timers.setTimeout(() => {
      this.lingerTimer = undefined;
      const pipeline = this.pipeline;
      this.pipeline = undefined;
      void pipeline?.close();
    }, this.options.lingerMs ?? 10_000);
  }

  private cancelLinger(): void {
    if (this.lingerTimer !== undefined) this.timers.clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }
}

/** The back-channel and the ffmpeg feeding it, for as long as a conversation lasts. */
class TalkPipeline {
  private output: TalkOutput | undefined;
  private ffmpeg: FfmpegProcess | undefined;
  private readonly writer = new OggOpusWriter();
  private readonly queue: Array<{ payload: Buffer; timestamp: number }> = [];
  /** The RTP timestamp the next packet has when nothing was lost. */
  private expected: number | undefined;
  private endedValue = false;
  private readonly opening: Promise<void>;

  constructor(
    private readonly options: CameraTalkOptions,
    private readonly onFailure: (message: string) => void,
  ) {
    this.opening = this.open();
  }

  get ended(): boolean {
    return this.endedValue;
  }

  voice(payload: Buffer, timestamp: number): void {
    if (this.endedValue || payload.length === 0) return;
    if (!this.ffmpeg) {
      if (this.queue.length < MAX_QUEUED_PACKETS) this.queue.push({ payload, timestamp });
      return;
    }
    this.write(payload, timestamp);
  }

  async close(): Promise<void> {
    this.endedValue = true;
    await this.opening;
    const ffmpeg = this.ffmpeg;
    const output = this.output;
    this.ffmpeg = undefined;
    this.output = undefined;
    ffmpeg?.stdin?.end();
    await Promise.all([ffmpeg?.stop(1000), output?.close()]);
  }

  private async open(): Promise<void> {
    const { cameraName, log } = this.options;
    let output: TalkOutput;
    try {
      output = await this.options.openOutput((error) => {
        if (this.endedValue) return;
        log.warn(`Camera ${cameraName}: the camera ended the talk channel: ${error.message}`);
        this.fail('The camera ended the talk channel.');
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log.warn(`Camera ${cameraName}: talking to the camera failed: ${reason}`);
      this.fail(`The camera's speaker cannot be reached: ${reason}`);
      return;
    }
    if (this.endedValue) {
      await output.close();
      return;
    }
    this.output = output;
    const ffmpeg = new FfmpegProcess({
      ffmpegPath: this.options.ffmpegPath,
      args: talkArgs({ encoding: output.format.encoding, ...(this.options.debug ? { debug: true } : {}) }),
      label: `Camera ${cameraName} talk`,
      log,
      stdin: true,
      onStdout: (g711) => this.output?.sendAudio(g711),
      ...(this.options.debug ? { debug: true } : {}),
    });
    this.ffmpeg = ffmpeg;
    void ffmpeg.exited.then((exit) => {
      if (exit.requested || this.endedValue) return;
      log.warn(`Camera ${cameraName}: the talk sound converter stopped: ${describeDiagnosis(diagnoseFfmpeg(exit))}`);
      this.fail('The sound converter stopped.');
    });
    ffmpeg.stdin?.write(this.writer.headers(1));
    for (const { payload, timestamp } of this.queue.splice(0)) this.write(payload, timestamp);
    log.info(`Camera ${cameraName}: talk channel open (${output.format.encoding})`);
  }

  private write(payload: Buffer, timestamp: number): void {
    const stdin = this.ffmpeg?.stdin;
    if (!stdin) return;
    let samples: number;
    try {
      samples = opusPacketSamples(payload);
    } catch {
      return; // not Opus: dropped, the next packet may be fine
    }
    let pages = samples;
    if (this.expected !== undefined) {
      // Signed 32-bit distance on the RTP clock: negative is late or repeated.
      const gap = (timestamp - this.expected) | 0;
      if (gap < 0 && gap > -MAX_FILLED_GAP * 5) return;
      if (gap > 0 && gap <= MAX_FILLED_GAP) pages = gap + samples;
    }
    this.expected = (timestamp + samples) >>> 0;
    if (stdin.writableLength > MAX_PIPE_BYTES) return;
    stdin.write(this.writer.packet(payload, { samples: pages }));
  }

  private fail(message: string): void {
    if (this.endedValue) return;
    void this.close();
    this.onFailure(message);
  }
}
