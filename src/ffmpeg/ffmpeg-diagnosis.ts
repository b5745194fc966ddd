/**
 * Turns ffmpeg's last stderr lines into a sentence a user can act on: what ffmpeg itself said
 * (quoted, at most a few lines) and the likely cause, e.g. "encoder libfdk_aac not found". The
 * stream code also uses `remedy` to retry once without the failing part (another video encoder,
 * no audio) instead of leaving the Home app with a black tile; `RestreamFfmpeg` (ffmpeg-process.ts)
 * uses the 'longer-probe' remedy to start an ffmpeg again with a longer probe.
 */

/** How an ffmpeg run ended, as far as the diagnosis reads it; ffmpeg-process.ts's `FfmpegExit` is one. */
export interface FfmpegEnding {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The child could not be started at all (ENOENT, EACCES...). */
  spawnError?: Error;
  /** ffmpeg's last stderr lines, oldest first. */
  lines: string[];
}

/** What a retry could change to get past the failure. */
export type FfmpegRemedy = 'default-video-encoder' | 'drop-audio' | 'longer-probe' | 'none';

export interface FfmpegDiagnosis {
  /** The likely cause, one short clause ("encoder h264_vaapi not found in this ffmpeg"). */
  cause: string;
  /** ffmpeg's own error lines, quoted and joined ("…" / "…"); empty when it printed none. */
  quote: string;
  remedy: FfmpegRemedy;
}

export interface DiagnosisContext {
  /** The video encoder in use ('copy' when passing through). */
  videoEncoder?: string;
  /** The audio encoder in use, when audio was requested. */
  audioEncoder?: string;
  /** Whether the user added encoder options (so an option error is probably theirs). */
  userOptions?: boolean;
}

interface Rule {
  test: RegExp;
  explain: (match: RegExpExecArray, context: DiagnosisContext) => { cause: string; remedy: FfmpegRemedy };
}

const isAudio = (name: string | undefined, context: DiagnosisContext): boolean => !!name && name === context.audioEncoder;

const RULES: Rule[] = [
  {
    // ffmpeg stopped probing (its short -analyzeduration ran out on the audio track) before a video
    // frame decoded, so the muxer has no picture size. Seen on busy machines when the re-stream's
    // cached GOP was short. Another start that probes longer gets past it.
    test: /dimensions not set/,
    explain: () => ({ cause: 'ffmpeg stopped probing the re-stream before it knew the video\'s picture size', remedy: 'longer-probe' }),
  },
  {
    test: /Unknown encoder '([^']+)'/,
    explain: (m, c) => isAudio(m[1], c)
      ? { cause: `encoder ${m[1]} not found in this ffmpeg: audio switched off for this stream`, remedy: 'drop-audio' }
      : m[1] === 'libvpx'
        // The VP8 variant's encoder is not a setting: only another ffmpeg helps.
        ? { cause: 'this ffmpeg has no VP8 encoder (libvpx), so browsers without H.264 cannot be served; use an ffmpeg built with libvpx (ffmpeg.videoProcessor)', remedy: 'none' }
        : { cause: `encoder ${m[1]} not found in this ffmpeg (check ffmpeg.videoEncoder)`, remedy: 'default-video-encoder' },
  },
  {
    test: /Unrecognized option '([^']+)'/,
    explain: (m, c) => ({
      cause: `this ffmpeg does not know the option -${m[1]}${c.userOptions ? ' (check ffmpeg.encoderOptions)' : ''}`,
      remedy: c.userOptions ? 'default-video-encoder' : 'none',
    }),
  },
  {
    test: /Error setting option (\S+) to value (\S+)|Error parsing option '?([^'\s]+)/,
    explain: (m, c) => ({
      cause: `the encoder rejected the option ${m[1] ?? m[3] ?? ''}${m[2] ? `=${m[2]}` : ''}${c.userOptions ? ' (check ffmpeg.encoderOptions)' : ''}`,
      remedy: c.userOptions ? 'default-video-encoder' : 'none',
    }),
  },
  {
    test: /Error setting (preset|tune|profile)[^\n]*?(\S+)\.?$/,
    explain: (m, c) => ({
      cause: `${c.videoEncoder ?? 'the video encoder'} rejected its ${m[1]}${c.userOptions ? ' (check ffmpeg.encoderOptions)' : ''}`,
      remedy: c.userOptions ? 'default-video-encoder' : 'none',
    }),
  },
  {
    test: /No VA display|Failed to (initialise|create) VAAPI|vaapi.*(failed|error)|Cannot load libcuda|No (NVENC|capable) device|OpenEncodeSessionEx failed|Error creating a MFX session|\/dev\/(dri|video)\S*: (No such file|Permission denied)/i,
    explain: (_m, c) => ({
      cause: `the hardware encoder ${c.videoEncoder ?? ''} cannot reach its device (missing, busy or no permission): switching this stream to libx264`,
      remedy: 'default-video-encoder',
    }),
  },
  {
    // An audio encoder names itself in its own error lines: "[libopus @ 0x…] Invalid frame duration".
    test: /\[(libopus|libfdk_aac|aac)( @ 0x[0-9a-f]+)?\] (?:\[error\] )?(.*)/i,
    explain: (m, c) => isAudio(m[1], c)
      ? { cause: `the audio encoder ${m[1]} could not start: audio switched off for this stream`, remedy: 'drop-audio' }
      : { cause: `the encoder ${m[1]} failed`, remedy: 'none' },
  },
  {
    test: /Error while opening encoder for output stream|Error initializing output stream/,
    explain: (_m, c) => ({
      cause: `the encoder could not start with these settings${c.userOptions ? ' (check ffmpeg.encoderOptions and ffmpeg.videoEncoder)' : ''}`,
      remedy: c.videoEncoder && c.videoEncoder !== 'libx264' && c.videoEncoder !== 'copy' ? 'default-video-encoder' : 'none',
    }),
  },
  {
    test: /Connection refused|Connection timed out/,
    explain: () => ({ cause: 'the plugin\'s own re-stream did not answer (it may be restarting)', remedy: 'none' }),
  },
  {
    test: /(404 Not Found|Server returned 404|Server returned 454)/,
    explain: () => ({ cause: 'the re-stream does not serve this camera (was it removed?)', remedy: 'none' }),
  },
  {
    test: /(503 Service Unavailable|Server returned 5\d\d)/,
    explain: () => ({ cause: 'the camera is not delivering video right now (the re-stream answered 5xx)', remedy: 'none' }),
  },
  {
    test: /Invalid data found when processing input|could not find codec parameters|no frame!/i,
    explain: () => ({ cause: 'ffmpeg could not read the camera\'s video (no keyframe, or a codec it cannot decode)', remedy: 'none' }),
  },
  {
    test: /Address already in use/,
    explain: () => ({ cause: 'a UDP port ffmpeg needed was taken', remedy: 'none' }),
  },
  {
    test: /Cannot allocate memory|Out of memory/i,
    explain: () => ({ cause: 'the system ran out of memory', remedy: 'none' }),
  },
];

/** A line ffmpeg tagged as harmless (with `-loglevel level+...`): never the reason it stopped. */
function isChatter(line: string): boolean {
  return /\[(warning|info|verbose|debug|trace)\]/.test(line);
}

/** Lines that carry ffmpeg's reason: errors and fatals, or lines of the known patterns. */
function errorLines(lines: readonly string[]): string[] {
  const marked = lines.filter((line) => /\[(error|fatal|panic)\]/.test(line) || (!isChatter(line) && RULES.some((r) => r.test.test(line))));
  const chosen = marked.length > 0 ? marked : lines.filter((line) => !/^\s*(frame|size|bitrate|speed)=/.test(line)).slice(-2);
  // Drop the per-instance addresses ("[tee @ 0x55d…]") and the level tag: they help nobody.
  const cleaned = chosen.map((line) => line.replace(/ @ 0x[0-9a-f]+\]/g, ']').replace(/\[(error|fatal|panic|warning|info)\] ?/g, '').trim());
  return [...new Set(cleaned)].slice(-3);
}

function clip(text: string, max = 220): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Reads the lines (and how the process ended) into a cause, a quote and a remedy. */
export function diagnoseFfmpeg(exit: FfmpegEnding, context: DiagnosisContext = {}): FfmpegDiagnosis {
  const quoteLines = errorLines(exit.lines);
  const quote = quoteLines.map((line) => `"${clip(line)}"`).join(' / ');
  if (exit.spawnError) {
    const code = (exit.spawnError as NodeJS.ErrnoException).code;
    const cause = code === 'ENOENT' ? 'the ffmpeg binary is gone (was it uninstalled?)'
      : code === 'EACCES' ? 'the ffmpeg binary is not executable'
        : `ffmpeg could not be started (${exit.spawnError.message})`;
    return { cause, quote, remedy: 'none' };
  }
  // Rules are ordered most specific first; within a rule the newest line wins, since the last
  // error is usually the one that stopped ffmpeg.
  const newestFirst = [...exit.lines].reverse().filter((line) => !isChatter(line));
  for (const rule of RULES) {
    for (const line of newestFirst) {
      const match = rule.test.exec(line);
      if (match) return { ...rule.explain(match, context), quote };
    }
  }
  if (exit.signal === 'SIGKILL') return { cause: 'ffmpeg was killed by the system (out of memory?)', quote, remedy: 'none' };
  if (exit.signal) return { cause: `ffmpeg was stopped by ${exit.signal}`, quote, remedy: 'none' };
  return { cause: `ffmpeg stopped with exit code ${String(exit.code)}${quote ? '' : ' without saying why (turn on ffmpeg.debug to see all of its output)'}`, quote, remedy: 'none' };
}

/** "cause. ffmpeg said: "…"" for a log line. */
export function describeDiagnosis(diagnosis: FfmpegDiagnosis): string {
  return diagnosis.quote ? `${diagnosis.cause}. ffmpeg said: ${diagnosis.quote}` : `${diagnosis.cause}.`;
}
