// ffprobe/ffmpeg as test peers: read stream info, decode frames and count them, or hold an
// RTSP session open like a real viewer. Every process is tracked (processes.ts), so a
// failing test never leaves an ffmpeg behind.
import { spawnTracked, type ExitInfo, type TrackedProcess } from './processes.js';

export type RtspTransport = 'tcp' | 'udp';

export interface MediaInputOptions {
  /** RTSP lower transport (ignored for non-rtsp URLs). Default 'tcp'. */
  transport?: RtspTransport;
  /** Kill the tool after this long. */
  timeoutMs?: number;
  /** Extra arguments placed before `-i`. */
  inputArgs?: string[];
}

export interface RunResult extends ExitInfo {
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

/** Runs a tool to completion (or until the timeout kills it) and collects its output. */
export async function runTool(command: string, args: string[], timeoutMs = 30_000): Promise<RunResult> {
  const started = Date.now();
  const proc = spawnTracked(command, args, { stdin: 'ignore', keepOutputChars: 16 * 1024 * 1024 });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void proc.kill(1000);
  }, timeoutMs);
  const info = await proc.exited;
  clearTimeout(timer);
  return { ...info, stdout: proc.stdoutText(), stderr: proc.stderrText(), timedOut, durationMs: Date.now() - started };
}

export const runFfmpeg = (args: string[], timeoutMs?: number): Promise<RunResult> => runTool('ffmpeg', args, timeoutMs);
export const runFfprobe = (args: string[], timeoutMs?: number): Promise<RunResult> => runTool('ffprobe', args, timeoutMs);

/** The input part of an ffmpeg/ffprobe command line: options, then `-i url`. */
export function inputArgs(url: string, { transport = 'tcp', inputArgs: extra = [] }: MediaInputOptions = {}): string[] {
  const args = [...extra];
  if (/^rtsps?:/i.test(url)) args.push('-rtsp_transport', transport);
  args.push('-i', url);
  return args;
}

export interface ProbeStream {
  index: number;
  codecType: string;
  codecName: string;
  /** e.g. 'Constrained Baseline', 'Main', 'High', 'LC'. */
  profile?: string;
  level?: number;
  width?: number;
  height?: number;
  pixFmt?: string;
  /** e.g. '25/1'. */
  avgFrameRate?: string;
  rFrameRate?: string;
  sampleRate?: number;
  channels?: number;
  /** Everything ffprobe said about the stream. */
  raw: Record<string, unknown>;
}

export interface ProbeResult {
  streams: ProbeStream[];
  formatName?: string;
  /** The first video / audio stream, for convenience. */
  video?: ProbeStream;
  audio?: ProbeStream;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
};

function toStream(s: Record<string, unknown>): ProbeStream {
  return {
    index: num(s.index) ?? -1,
    codecType: str(s.codec_type) ?? 'unknown',
    codecName: str(s.codec_name) ?? 'unknown',
    profile: str(s.profile),
    level: num(s.level),
    width: num(s.width),
    height: num(s.height),
    pixFmt: str(s.pix_fmt),
    avgFrameRate: str(s.avg_frame_rate),
    rFrameRate: str(s.r_frame_rate),
    sampleRate: num(s.sample_rate),
    channels: num(s.channels),
    raw: s,
  };
}

function lastLines(text: string, n = 15): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

/** ffprobe -show_streams -show_format. Throws with ffprobe's stderr when it fails. */
export async function probe(url: string, options: MediaInputOptions = {}): Promise<ProbeResult> {
  const args = ['-hide_banner', '-v', 'error', '-print_format', 'json', '-show_streams', '-show_format', ...inputArgs(url, options)];
  const r = await runFfprobe(args, options.timeoutMs ?? 20_000);
  if (r.code !== 0) {
    throw new Error(`ffprobe ${redact(url)} failed (code ${r.code}${r.timedOut ? ', timed out' : ''}):\n${lastLines(r.stderr)}`);
  }
  const parsed: unknown = JSON.parse(r.stdout);
  if (!isRecord(parsed)) throw new Error('ffprobe: unexpected JSON');
  const streams = Array.isArray(parsed.streams) ? parsed.streams.filter(isRecord).map(toStream) : [];
  const format = isRecord(parsed.format) ? parsed.format : {};
  return {
    streams,
    formatName: str(format.format_name),
    video: streams.find((s) => s.codecType === 'video'),
    audio: streams.find((s) => s.codecType === 'audio'),
  };
}

export interface DecodeOptions extends MediaInputOptions {
  /** Stop after this many decoded video frames. */
  videoFrames?: number;
  /** Stop after this many seconds of input. */
  durationSec?: number;
}

export interface DecodeResult extends RunResult {
  /** Video frames ffmpeg decoded (its final `frame=` count). */
  videoFrames: number;
  /** Lines of ffmpeg's stderr at level error (decode errors, corrupt frames). */
  errors: string[];
}

/**
 * Decodes the first video stream with `ffmpeg -f null` and returns the decoded frame count.
 * Give `videoFrames`, `durationSec`, or both; without either it runs until the timeout.
 */
export async function decodeVideo(url: string, options: DecodeOptions = {}): Promise<DecodeResult> {
  const args = ['-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', ...inputArgs(url, options)];
  args.push('-map', '0:v:0');
  if (options.videoFrames !== undefined) args.push('-frames:v', String(options.videoFrames));
  if (options.durationSec !== undefined) args.push('-t', String(options.durationSec));
  args.push('-f', 'null', '-');
  const r = await runFfmpeg(args, options.timeoutMs ?? 30_000);
  const counts = [...r.stdout.matchAll(/^frame=(\d+)$/gm)].map((m) => Number(m[1]));
  const errors = r.stderr.split('\n').filter((l) => l.trim() !== '');
  return { ...r, videoFrames: counts.at(-1) ?? 0, errors };
}

export interface FrameInfo {
  mediaType: 'video' | 'audio' | string;
  keyFrame: boolean;
  /** Presentation time in seconds, when known. */
  time?: number;
  width?: number;
  height?: number;
  pictType?: string;
  sampleRate?: number;
  nbSamples?: number;
}

export interface FramesResult {
  video: FrameInfo[];
  audio: FrameInfo[];
  stderr: string;
}

/**
 * Decodes every stream for `seconds` with ffprobe -show_frames and returns one entry per
 * decoded frame (video and audio), e.g. to check keyframe spacing or audio presence.
 */
export async function readFrames(url: string, options: MediaInputOptions & { seconds?: number } = {}): Promise<FramesResult> {
  const seconds = options.seconds ?? 2;
  const args = [
    '-hide_banner', '-v', 'error', '-print_format', 'json',
    '-show_entries', 'frame=media_type,key_frame,best_effort_timestamp_time,width,height,pict_type,sample_rate,nb_samples',
    '-read_intervals', `%+${seconds}`,
    ...inputArgs(url, options),
  ];
  const r = await runFfprobe(args, options.timeoutMs ?? (seconds + 20) * 1000);
  if (r.code !== 0) throw new Error(`ffprobe -show_frames ${redact(url)} failed (code ${r.code}):\n${lastLines(r.stderr)}`);
  const parsed: unknown = JSON.parse(r.stdout);
  const frames = isRecord(parsed) && Array.isArray(parsed.frames) ? parsed.frames.filter(isRecord) : [];
  const infos = frames.map(
    (f): FrameInfo => ({
      mediaType: str(f.media_type) ?? 'unknown',
      keyFrame: num(f.key_frame) === 1,
      time: num(f.best_effort_timestamp_time),
      width: num(f.width),
      height: num(f.height),
      pictType: str(f.pict_type),
      sampleRate: num(f.sample_rate),
      nbSamples: num(f.nb_samples),
    }),
  );
  return {
    video: infos.filter((f) => f.mediaType === 'video'),
    audio: infos.filter((f) => f.mediaType === 'audio'),
    stderr: r.stderr,
  };
}

export interface RtspViewer {
  readonly process: TrackedProcess;
  /** Stops the viewer. `graceful` (default) lets ffmpeg send TEARDOWN; otherwise SIGKILL. */
  stop(graceful?: boolean): Promise<ExitInfo>;
}

/**
 * Starts an ffmpeg that plays `url` and throws the data away: a viewer holding one RTSP
 * session open until stopped (e.g. to count sessions at the camera).
 */
export function startViewer(url: string, options: MediaInputOptions & { copy?: boolean } = {}): RtspViewer {
  const args = ['-hide_banner', '-nostdin', '-v', 'error', ...inputArgs(url, options)];
  // Stream copy keeps the CPU cost of a passive viewer near zero.
  if (options.copy !== false) args.push('-c', 'copy');
  args.push('-f', 'null', '-');
  const proc = spawnTracked('ffmpeg', args, { name: 'ffmpeg-viewer', stdin: 'ignore' });
  return {
    process: proc,
    stop: async (graceful = true) => {
      if (!graceful) {
        // SIGKILL: the TCP connection just drops, no TEARDOWN (a viewer that crashed).
        try {
          process.kill(-proc.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        return proc.exited;
      }
      return proc.kill(3000);
    },
  };
}

/** Hides the password in rtsp://user:pass@host URLs for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):([^@/]*)@/, '//$1:***@');
}
