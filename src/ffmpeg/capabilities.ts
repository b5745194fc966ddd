/**
 * What an ffmpeg binary can do, read once from its `-version`, `-encoders` and `-muxers` output.
 * Later code asks this instead of starting ffmpeg to find out (e.g. "is there libfdk_aac for
 * AAC-ELD?", "can one ffmpeg feed several outputs through `tee`?").
 */

export type FfmpegSource = 'videoProcessor' | 'ffmpeg-for-homebridge' | 'PATH';

export interface FfmpegCapabilities {
  /** Absolute path (or the configured command) of the chosen binary. */
  path: string;
  /** Which step of the search found it. */
  source: FfmpegSource;
  /** E.g. "5.1.6-0+deb12u1", or "unknown" when the first line could not be read. */
  version: string;
  /** Major version number when it can be read (git builds print "N-..." and give undefined). */
  majorVersion?: number;
  /** Every encoder name from `-encoders`. */
  encoders: ReadonlySet<string>;
  /** Every muxer name from `-muxers`. */
  muxers: ReadonlySet<string>;
  /** The encoders and muxers this plugin cares about, as flags. */
  has: {
    libx264: boolean;
    libopus: boolean;
    /** VP8 (libvpx): Firefox here has no H.264, so VP8 is its transcoding target. */
    libvpx: boolean;
    libvpxVp9: boolean;
    /** AAC-ELD for HomeKit audio needs libfdk_aac; Debian's ffmpeg lacks it. */
    libfdkAac: boolean;
    aac: boolean;
    pcmMulaw: boolean;
    pcmAlaw: boolean;
    tee: boolean;
    rtp: boolean;
  };
  /**
   * Hardware H.264 encoders compiled in (h264_vaapi, h264_v4l2m2m, h264_qsv, h264_nvenc...).
   * Compiled in does not mean usable: the device may be missing; try before relying on one.
   */
  hardwareH264Encoders: string[];
}

/** "ffmpeg version 5.1.6-0+deb12u1 Copyright ..." -> "5.1.6-0+deb12u1". */
export function parseVersion(output: string): { version: string; majorVersion?: number } {
  const match = /ffmpeg version (\S+)/i.exec(output);
  const version = match?.[1] ?? 'unknown';
  const major = /^n?(\d+)\./.exec(version);
  return major?.[1] ? { version, majorVersion: Number(major[1]) } : { version };
}

/**
 * Reads the list after the "------" line of `-encoders` (" V....D libx264  libx264 H.264 ...").
 * Names are the second column; flags are six characters.
 */
export function parseEncoders(output: string): Set<string> {
  const names = new Set<string>();
  let inList = false;
  for (const line of output.split(/\r?\n/)) {
    if (/^\s*-{3,}\s*$/.test(line)) {
      inList = true;
      continue;
    }
    if (!inList) continue;
    const match = /^\s*[VASD.][A-Z.]{5}\s+(\S+)/.exec(line);
    if (match?.[1]) names.add(match[1]);
  }
  return names;
}

/**
 * Reads the list after the "--" line of `-muxers` ("  E mp4   MP4 (MPEG-4 Part 14)"). Newer
 * ffmpeg versions add a third flag column ("  E. mp4"), so the flags are matched loosely.
 */
export function parseMuxers(output: string): Set<string> {
  const names = new Set<string>();
  let inList = false;
  for (const line of output.split(/\r?\n/)) {
    if (/^\s*-{2,}\s*$/.test(line)) {
      inList = true;
      continue;
    }
    if (!inList) continue;
    const match = /^\s*[D.]?E[.d]?\s+(\S+)/.exec(line);
    if (match?.[1]) for (const name of match[1].split(',')) names.add(name);
  }
  return names;
}

const HARDWARE_H264 = /^h264_(vaapi|v4l2m2m|qsv|nvenc|amf|videotoolbox|omx|mf|rkmpp)$/;

export function buildCapabilities(
  path: string,
  source: FfmpegSource,
  versionOutput: string,
  encodersOutput: string,
  muxersOutput: string,
): FfmpegCapabilities {
  const encoders = parseEncoders(encodersOutput);
  const muxers = parseMuxers(muxersOutput);
  return {
    path,
    source,
    ...parseVersion(versionOutput),
    encoders,
    muxers,
    has: {
      libx264: encoders.has('libx264'),
      libopus: encoders.has('libopus'),
      libvpx: encoders.has('libvpx'),
      libvpxVp9: encoders.has('libvpx-vp9'),
      libfdkAac: encoders.has('libfdk_aac'),
      aac: encoders.has('aac'),
      pcmMulaw: encoders.has('pcm_mulaw'),
      pcmAlaw: encoders.has('pcm_alaw'),
      tee: muxers.has('tee'),
      rtp: muxers.has('rtp'),
    },
    hardwareH264Encoders: [...encoders].filter((name) => HARDWARE_H264.test(name)).sort(),
  };
}
