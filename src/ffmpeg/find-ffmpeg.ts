import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { Logger } from '../util/logger.js';
import { buildCapabilities, type FfmpegCapabilities, type FfmpegSource } from './capabilities.js';

export interface FindFfmpegOptions {
  log: Logger;
  /** The user's `ffmpeg.videoProcessor` setting: a path, or a command name looked up on PATH. */
  videoProcessor?: string;
  /** Where ffmpeg-for-homebridge's binary is; default: the package's own export. Tests replace it. */
  bundledPath?: () => Promise<string | undefined>;
  /** The PATH to search; default `process.env.PATH`. */
  searchPath?: string;
  /** Per probe; a binary that hangs (a wrong file, a broken NFS mount) must not stall start-up. */
  timeoutMs?: number;
}

export const INSTALL_HINT =
  'Install it with `sudo apt-get install ffmpeg` (Debian, Ubuntu, Raspberry Pi OS) or `brew install ffmpeg` (macOS), ' +
  'or set "Path to ffmpeg" (ffmpeg.videoProcessor) in the plugin settings to an ffmpeg you have';

interface Candidate {
  source: FfmpegSource;
  /** What to call the candidate in messages. */
  label: string;
  path?: string;
  /** Why there is no path (e.g. nothing on PATH). */
  missing?: string;
}

/** ffmpeg-for-homebridge exports the path of the static binary its install script downloaded, or undefined. */
async function ffmpegForHomebridgePath(): Promise<string | undefined> {
  try {
    const module = await import('ffmpeg-for-homebridge');
    return module.default ?? undefined;
  } catch {
    // Not installed (it is optional at run time): the next candidate is tried.
    return undefined;
  }
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Like `which`: the first executable `name` in `searchPath`, without spawning a shell. */
export async function findOnPath(name: string, searchPath: string | undefined = process.env['PATH']): Promise<string | undefined> {
  for (const dir of (searchPath ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

interface RunResult {
  stdout: string;
}

function run(path: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(path, args, { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024, windowsHide: true }, (error, stdout, stderr) => {
      if (!error) {
        resolvePromise({ stdout });
        return;
      }
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') reject(new Error('the file does not exist'));
      else if (code === 'EACCES') reject(new Error('the file is not executable (try chmod +x)'));
      else if (error.killed) reject(new Error(`it did not answer within ${timeoutMs / 1000} s`));
      else {
        const detail = stderr.trim().split(/\r?\n/).slice(-2).join(' ').slice(0, 200);
        reject(new Error(`\`${args.join(' ')}\` failed (exit code ${String(code ?? error.signal)})${detail ? `: ${detail}` : ''}`));
      }
    });
  });
}

/** Runs the three probes and reads the answers; rejects with a sentence when it is not a working ffmpeg. */
export async function probeFfmpeg(path: string, source: FfmpegSource, timeoutMs = 10_000): Promise<FfmpegCapabilities> {
  const [version, encoders, muxers] = await Promise.all([
    run(path, ['-hide_banner', '-version'], timeoutMs),
    run(path, ['-hide_banner', '-encoders'], timeoutMs),
    run(path, ['-hide_banner', '-muxers'], timeoutMs),
  ]);
  if (!/ffmpeg version/i.test(version.stdout)) {
    throw new Error('it runs, but `-version` does not say "ffmpeg version": it is not ffmpeg');
  }
  return buildCapabilities(path, source, version.stdout, encoders.stdout, muxers.stdout);
}

async function candidates(options: FindFfmpegOptions): Promise<Candidate[]> {
  const list: Candidate[] = [];
  const setting = options.videoProcessor?.trim();
  if (setting) {
    const label = `ffmpeg.videoProcessor "${setting}"`;
    // A bare command name ("ffmpeg", "ffmpeg6") is looked up on PATH like a shell would.
    if (setting.includes('/') || isAbsolute(setting)) list.push({ source: 'videoProcessor', label, path: resolve(setting) });
    else {
      const found = await findOnPath(setting, options.searchPath);
      list.push(found ? { source: 'videoProcessor', label, path: found } : { source: 'videoProcessor', label, missing: `"${setting}" is not on PATH` });
    }
  }
  const bundled = await (options.bundledPath ?? ffmpegForHomebridgePath)();
  list.push(
    bundled
      ? { source: 'ffmpeg-for-homebridge', label: 'ffmpeg-for-homebridge', path: bundled }
      : { source: 'ffmpeg-for-homebridge', label: 'ffmpeg-for-homebridge', missing: 'it has no binary (its download fails without internet access)' },
  );
  const onPath = await findOnPath('ffmpeg', options.searchPath);
  list.push(onPath ? { source: 'PATH', label: 'ffmpeg on PATH', path: onPath } : { source: 'PATH', label: 'ffmpeg on PATH', missing: 'none found' });
  return list;
}

/** "libx264 yes, libfdk_aac no, ..." for the log. */
export function summariseCapabilities(caps: FfmpegCapabilities): string {
  const flags: Array<[string, boolean]> = [
    ['libx264', caps.has.libx264],
    ['libopus', caps.has.libopus],
    ['libvpx', caps.has.libvpx],
    ['libfdk_aac', caps.has.libfdkAac],
    ['aac', caps.has.aac],
    ['tee', caps.has.tee],
    ['rtp', caps.has.rtp],
  ];
  const hardware = caps.hardwareH264Encoders.length ? caps.hardwareH264Encoders.join(', ') : 'none';
  return `${flags.map(([name, ok]) => `${name} ${ok ? 'yes' : 'no'}`).join(', ')}; hardware H.264 encoders compiled in: ${hardware}`;
}

/**
 * Finds a working ffmpeg: the `videoProcessor` setting, then ffmpeg-for-homebridge, then `ffmpeg` on
 * PATH. Logs which one was chosen and its version. When none works it logs one error that says how
 * to install ffmpeg and resolves to undefined: a missing ffmpeg disables what needs it, never the plugin.
 */
export async function findFfmpeg(options: FindFfmpegOptions): Promise<FfmpegCapabilities | undefined> {
  const { log } = options;
  const tried: string[] = [];
  for (const candidate of await candidates(options)) {
    if (!candidate.path) {
      tried.push(`${candidate.label}: ${candidate.missing ?? 'not found'}`);
      if (candidate.source === 'videoProcessor') log.warn(`The ffmpeg set in the plugin settings (${candidate.label}) cannot be used: ${candidate.missing}. Looking for another ffmpeg.`);
      continue;
    }
    try {
      const caps = await probeFfmpeg(candidate.path, candidate.source, options.timeoutMs);
      log.info(`Using ffmpeg ${caps.version} from ${candidate.label} (${caps.path}).`);
      log.debug(`ffmpeg capabilities: ${summariseCapabilities(caps)}.`);
      if (!caps.has.libx264) log.warn(`This ffmpeg (${caps.path}) has no libx264 encoder: streams that need re-encoding to H.264 will not work.`);
      return caps;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      tried.push(`${candidate.label} (${candidate.path}): ${reason}`);
      if (candidate.source === 'videoProcessor') {
        log.warn(`The ffmpeg set in the plugin settings (${candidate.path}) cannot be used: ${reason}. Looking for another ffmpeg.`);
      } else {
        log.debug(`ffmpeg candidate ${candidate.label} (${candidate.path}) rejected: ${reason}`);
      }
    }
  }
  log.error(
    `ffmpeg was not found, so Home app streaming, snapshots and transcoding are off (browsers can still watch H.264 cameras). ${INSTALL_HINT}, then restart Homebridge. Tried: ${tried.join('; ')}.`,
  );
  return undefined;
}
