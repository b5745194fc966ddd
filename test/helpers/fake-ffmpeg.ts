/**
 * Shell scripts in ffmpeg's place, for the retries the plugin makes after ffmpeg fails a known way;
 * and the capabilities of an ffmpeg that is never started, for code that only reads them.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FfmpegCapabilities } from '../../src/ffmpeg/capabilities.js';

/** Debian's ffmpeg 5.1 as `findFfmpeg` would read it (libx264, no libopus or libfdk_aac), with `has` changed. */
export function ffmpegCapabilities(has: Partial<FfmpegCapabilities['has']> = {}): FfmpegCapabilities {
  return {
    path: '/usr/bin/ffmpeg',
    source: 'PATH',
    version: '5.1',
    encoders: new Set(),
    muxers: new Set(),
    has: { libx264: true, libopus: false, libvpx: false, libvpxVp9: false, libfdkAac: false, aac: true, pcmMulaw: true, pcmAlaw: true, tee: true, rtp: true, ...has },
    hardwareH264Encoders: [],
  };
}

export interface FakeFfmpeg {
  /** The script, for `ffmpegPath` / `FfmpegCapabilities.path`. */
  path: string;
  /** The command line of every start so far, oldest first (arguments joined by spaces). */
  starts(): string[];
}

/**
 * A start with the fast input probe (`-analyzeduration 100000`) fails exactly as ffmpeg does when
 * that probe ended before it knew the picture size (a busy machine, a short cached GOP): "dimensions
 * not set", then "Could not write header", exit 1. Any other start runs the shell line `otherwise`,
 * e.g. `exec /usr/bin/ffmpeg "$@"` for the real thing. The script and its log of starts go in `dir`.
 */
export function shortProbeFfmpeg(dir: string, otherwise: string): FakeFfmpeg {
  const path = join(dir, 'ffmpeg');
  const log = join(dir, 'ffmpeg-starts');
  writeFileSync(path, [
    '#!/bin/sh',
    `printf '%s\\n' "$*" >> '${log}'`,
    'case " $* " in',
    `  *" -analyzeduration 100000 "*) echo "[tee @ 0x55d02ff9ffc0] [error] dimensions not set" >&2; echo "[error] Could not write header for output file #0 (incorrect codec parameters ?): Invalid argument" >&2; exit 1;;`,
    'esac',
    otherwise,
    '',
  ].join('\n'));
  chmodSync(path, 0o755);
  return {
    path,
    starts: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((line) => line !== '') : []),
  };
}
