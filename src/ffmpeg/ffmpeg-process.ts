/**
 * One supervised ffmpeg child. Everything the plugin runs through ffmpeg (HomeKit streams,
 * snapshot decodes) goes through here so that:
 * - the last lines ffmpeg wrote to stderr are kept, to explain a failure in ffmpeg's own words
 *   (see ffmpeg-diagnosis.ts) instead of "exited with code 1";
 * - stopping is always SIGTERM then SIGKILL after a grace period, and resolves only once the child
 *   has really exited (Node reaps it then: no zombie);
 * - every child still running when the Homebridge process exits (shutdown, child-bridge restart,
 *   plugin reload, even a crash) is SIGKILLed synchronously by one process-wide `exit` hook.
 * Every ffmpeg that reads the loopback re-stream (HomeKit streams, the VP8 variant) runs as a
 * `RestreamFfmpeg`: the same, plus the one restart all of them need (a probe that was too short).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../util/logger.js';
import { redactText } from '../util/redact.js';
import { diagnoseFfmpeg, type FfmpegEnding } from './ffmpeg-diagnosis.js';
import type { InputProbe } from './input-probe.js';

export interface FfmpegExit extends FfmpegEnding {
  /** True when `stop()` asked for it: not a failure. */
  requested: boolean;
  /** How long it ran, ms. */
  ranMs: number;
}

export interface FfmpegProcessOptions {
  ffmpegPath: string;
  args: readonly string[];
  /** For log lines: "HomeKit stream 3f2a", "snapshot". */
  label: string;
  log: Logger;
  /** Log every stderr line (the `ffmpeg.debug` setting) instead of only keeping the tail. */
  debug?: boolean;
  /** Give ffmpeg a stdin pipe (snapshots feed it an access unit). Default: no stdin. */
  stdin?: boolean;
  /** Collect stdout (snapshots read the JPEG from it). Default: discard. */
  stdout?: boolean;
  /**
   * Hand each stdout chunk to this callback as it arrives instead of collecting it (a recording's
   * audio encoder streams AAC for as long as the recording lasts). Implies a stdout pipe.
   */
  onStdout?: (chunk: Buffer) => void;
  /** stderr lines kept for the diagnosis (default 40). */
  keepLines?: number;
  /** Largest stdout kept, bytes (default 16 MiB; a JPEG is far smaller). */
  maxStdoutBytes?: number;
}

interface FfmpegProcessEvents {
  exit: [FfmpegExit];
  /** One stderr line (already trimmed). */
  line: [string];
}

/** Every child started here and not yet exited, for the process-wide exit hook and for tests. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous on purpose: at 'exit' nothing asynchronous runs any more. SIGKILL cannot be
  // ignored, so no ffmpeg outlives the plugin's process.
  process.once('exit', () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/** How many plugin ffmpeg processes are running now (tests, the bench, diagnostics). */
export function runningFfmpegCount(): number {
  return running.size;
}

/** PIDs of the running plugin ffmpeg processes. */
export function runningFfmpegPids(): number[] {
  return [...running].map((c) => c.pid).filter((pid): pid is number => pid !== undefined);
}

export class FfmpegProcess extends EventEmitter<FfmpegProcessEvents> {
  readonly label: string;
  readonly exited: Promise<FfmpegExit>;
  private readonly child: ChildProcess;
  private readonly tail: string[] = [];
  private readonly keep: number;
  private readonly startedAt = Date.now();
  private readonly stdoutChunks: Buffer[] = [];
  private stdoutBytes = 0;
  private stopRequested = false;
  private done: FfmpegExit | undefined;

  constructor(private readonly options: FfmpegProcessOptions) {
    super();
    installExitHook();
    this.label = options.label;
    this.keep = options.keepLines ?? 40;
    options.log.debug(`${options.label}: ${options.ffmpegPath} ${redactText(options.args.join(' '))}`);
    this.child = spawn(options.ffmpegPath, options.args, {
      stdio: [options.stdin ? 'pipe' : 'ignore', options.stdout || options.onStdout ? 'pipe' : 'ignore', 'pipe'],
      windowsHide: true,
    });
    const child = this.child;
    running.add(child);
    let spawnError: Error | undefined;
    this.exited = new Promise<FfmpegExit>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (this.done) return;
        running.delete(child);
        this.done = {
          code,
          signal,
          requested: this.stopRequested,
          lines: [...this.tail],
          ranMs: Date.now() - this.startedAt,
          ...(spawnError ? { spawnError } : {}),
        };
        resolve(this.done);
        this.emit('exit', this.done);
      };
      // 'close' (not 'exit') so stderr has been read to the end before the diagnosis runs.
      child.once('close', (code, signal) => finish(code, signal));
      child.once('error', (error) => {
        spawnError = error;
        // A failed spawn never emits 'close' on some Node versions; finishing twice is guarded.
        if (child.pid === undefined) finish(null, null);
      });
    });
    this.readLines(child.stderr);
    child.stdout?.on('data', (chunk: Buffer) => {
      if (options.onStdout) {
        options.onStdout(chunk);
        return;
      }
      const max = options.maxStdoutBytes ?? 16 * 1024 * 1024;
      if (this.stdoutBytes + chunk.length > max) return;
      this.stdoutChunks.push(chunk);
      this.stdoutBytes += chunk.length;
    });
    // Writing to a child that died must not become an unhandled 'error' event.
    child.stdin?.on('error', () => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.done === undefined;
  }

  get stdin(): Writable | null {
    return this.child.stdin;
  }

  /** Everything ffmpeg wrote to stdout (when `stdout: true`). */
  stdoutBuffer(): Buffer {
    return Buffer.concat(this.stdoutChunks, this.stdoutBytes);
  }

  /** The last stderr lines so far. */
  lines(): string[] {
    return [...this.tail];
  }

  /**
   * Stops ffmpeg: SIGTERM (ffmpeg then closes its outputs cleanly), SIGKILL after `graceMs`.
   * Resolves once the child has exited; safe to call more than once.
   */
  async stop(graceMs = 2000): Promise<FfmpegExit> {
    if (this.done) return this.done;
    this.stopRequested = true;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  private signal(signal: NodeJS.Signals): void {
    if (this.done) return;
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }

  private readLines(stream: Readable | null): void {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      // ffmpeg ends progress lines with \r; treat them as line ends too.
      const parts = (partial + chunk).split(/\r?\n|\r/);
      partial = parts.pop() ?? '';
      for (const part of parts) this.addLine(part);
    });
    stream.on('end', () => {
      if (partial) this.addLine(partial);
      partial = '';
    });
  }

  private addLine(raw: string): void {
    const line = redactText(raw.trim());
    if (!line) return;
    this.tail.push(line);
    if (this.tail.length > this.keep) this.tail.shift();
    if (this.options.debug) this.options.log.info(`${this.label} ffmpeg: ${line}`);
    this.emit('line', line);
  }
}

export interface RestreamFfmpegOptions extends Omit<FfmpegProcessOptions, 'args'> {
  /** The command line with this input probe; asked at every start (each may need a fresh URL). */
  args(probe: InputProbe): readonly string[];
  /** The first start's probe (default 'fast'); a caller that needed the thorough one keeps it. */
  probe?: InputProbe;
}

interface RestreamFfmpegEvents {
  /** The last run's exit: a run that is started again is not reported. */
  exit: [FfmpegExit];
}

/**
 * An ffmpeg reading the loopback re-stream, supervised like `FfmpegProcess`. When its fast probe
 * ended before it knew the video's picture size ("dimensions not set": the re-stream's cached GOP
 * was short on a busy machine), it is started once more with the thorough probe. This is the one
 * place that decides it, for every such ffmpeg; their own retries (another encoder, no audio) build
 * on the exit it reports.
 */
export class RestreamFfmpeg extends EventEmitter<RestreamFfmpegEvents> {
  /** The probe of the current (or last) run. */
  probe: InputProbe;
  readonly exited: Promise<FfmpegExit>;
  private current: FfmpegProcess;

  constructor(private readonly options: RestreamFfmpegOptions) {
    super();
    this.probe = options.probe ?? 'fast';
    this.exited = new Promise((resolve) => this.once('exit', resolve));
    this.current = this.run();
  }

  get pid(): number | undefined {
    return this.current.pid;
  }

  get running(): boolean {
    return this.current.running;
  }

  /** Stops the current run (see `FfmpegProcess.stop`); a stopped run is never started again. */
  stop(graceMs?: number): Promise<FfmpegExit> {
    return this.current.stop(graceMs);
  }

  private run(): FfmpegProcess {
    const options = this.options;
    const ffmpeg = new FfmpegProcess({ ...options, args: options.args(this.probe) });
    ffmpeg.once('exit', (exit) => {
      const diagnosis = exit.requested || this.probe !== 'fast' ? undefined : diagnoseFfmpeg(exit);
      if (diagnosis?.remedy === 'longer-probe') {
        options.log.info(`${options.label}: ${diagnosis.cause}; starting it again with a longer probe.`);
        this.probe = 'thorough';
        this.current = this.run();
        return;
      }
      this.emit('exit', exit);
    });
    return ffmpeg;
  }
}
