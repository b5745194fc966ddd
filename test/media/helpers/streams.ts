/**
 * Real encoded test streams, produced by ffmpeg once per process and cached in a temp directory,
 * plus the Annex B / access-unit helpers the media tests and the bench share.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeRtp } from '../../../src/media/rtp.js';
import { packetizeH264 } from '../../../src/media/h264-packetizer.js';
import { packetizeH265 } from '../../../src/media/h265-packetizer.js';

export { splitAdts, type AdtsStream } from '../../helpers/adts.js';

const cacheDir = join(tmpdir(), `media-test-streams-${process.getuid?.() ?? 0}`);

export interface EncodeOptions {
  codec: 'h264' | 'h265';
  width: number;
  height: number;
  fps?: number;
  seconds?: number;
  /** libx264 profile: baseline, main, high. */
  profile?: string;
  gop?: number;
  bitrateK?: number;
  /** Extra encoder parameters (-x264-params / -x265-params). */
  params?: string;
  /** Encoder preset (default ultrafast). x264 signals the lowest profile the features used fit, so
   * ultrafast output always says Constrained Baseline whatever `profile` asks for. */
  preset?: string;
  /** Default yuv420p. */
  pixFmt?: string;
}

/** Encodes testsrc2 with ffmpeg and returns the raw Annex B elementary stream. */
export function encodeStream(options: EncodeOptions): Buffer {
  const fps = options.fps ?? 25;
  const seconds = options.seconds ?? 2;
  const key = [options.codec, options.width, options.height, fps, seconds, options.profile ?? '', options.gop ?? '',
    options.bitrateK ?? '', options.params ?? '', options.preset ?? '', options.pixFmt ?? ''].join('_').replace(/[^a-z0-9_.-]/gi, '-');
  const file = join(cacheDir, `${key}.${options.codec}`);
  if (existsSync(file)) return readFileSync(file);
  mkdirSync(cacheDir, { recursive: true });
  const args = ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
    `testsrc2=size=${options.width}x${options.height}:rate=${fps}`, '-t', String(seconds), '-pix_fmt', options.pixFmt ?? 'yuv420p'];
  if (options.codec === 'h264') {
    args.push('-c:v', 'libx264', '-preset', options.preset ?? 'ultrafast', '-tune', 'zerolatency');
    if (options.profile) args.push('-profile:v', options.profile);
    if (options.params) args.push('-x264-params', options.params);
  } else {
    args.push('-c:v', 'libx265', '-preset', options.preset ?? 'ultrafast', '-tune', 'zerolatency');
    args.push('-x265-params', ['log-level=error', options.params].filter(Boolean).join(':'));
  }
  if (options.gop) args.push('-g', String(options.gop), '-keyint_min', String(options.gop));
  if (options.bitrateK) args.push('-b:v', `${options.bitrateK}k`, '-maxrate', `${options.bitrateK}k`, '-bufsize', `${options.bitrateK * 2}k`);
  args.push('-f', options.codec === 'h264' ? 'h264' : 'hevc', file);
  const result = spawnSync('ffmpeg', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ffmpeg failed: ${result.stderr}`);
  return readFileSync(file);
}

/** Splits an Annex B stream into NAL units (without start codes). */
export function splitAnnexB(stream: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < stream.length) {
    if (stream[i] === 0 && stream[i + 1] === 0 && stream[i + 2] === 1) {
      if (start >= 0) {
        let end = i;
        while (end > start && stream[end - 1] === 0) end--; // trailing zero of a 4-byte start code
        nals.push(stream.subarray(start, end));
      }
      i += 3;
      start = i;
      continue;
    }
    i++;
  }
  if (start >= 0 && start < stream.length) nals.push(stream.subarray(start));
  return nals;
}

function isVcl(codec: 'h264' | 'h265', nal: Buffer): boolean {
  if (codec === 'h264') {
    const type = nal[0]! & 0x1f;
    return type >= 1 && type <= 5;
  }
  return ((nal[0]! >> 1) & 0x3f) < 32;
}

function firstSliceOfPicture(codec: 'h264' | 'h265', nal: Buffer): boolean {
  // first_mb_in_slice == 0 (ue "1") / first_slice_segment_in_pic_flag: the top bit after the header.
  return codec === 'h264' ? (nal[1]! & 0x80) !== 0 : (nal[2]! & 0x80) !== 0;
}

/** Groups NAL units into access units: a new one starts with non-VCL data after VCL, or a new picture's first slice. */
export function groupAccessUnits(codec: 'h264' | 'h265', nals: Buffer[]): Buffer[][] {
  const units: Buffer[][] = [];
  let current: Buffer[] = [];
  let sawVcl = false;
  for (const nal of nals) {
    const vcl = isVcl(codec, nal);
    if (sawVcl && (!vcl || firstSliceOfPicture(codec, nal))) {
      units.push(current);
      current = [];
      sawVcl = false;
    }
    current.push(nal);
    if (vcl) sawVcl = true;
  }
  if (current.length > 0) units.push(current);
  return units;
}

export interface RtpStreamOptions {
  payloadType?: number;
  ssrc?: number;
  firstSequence?: number;
  firstTimestamp?: number;
  clockRate?: number;
  fps?: number;
  maxPayload?: number;
}

export interface RtpFrame {
  timestamp: number;
  packets: Buffer[];
  units: Buffer[];
}

/** Packetises access units into RTP packets the way a camera would (1400-byte payloads by default). */
export function toRtp(codec: 'h264' | 'h265', accessUnits: Buffer[][], options: RtpStreamOptions = {}): RtpFrame[] {
  const clockRate = options.clockRate ?? 90000;
  const step = Math.round(clockRate / (options.fps ?? 25));
  let sequence = options.firstSequence ?? 1000;
  let timestamp = options.firstTimestamp ?? 123456;
  const frames: RtpFrame[] = [];
  for (const units of accessUnits) {
    const payloads = codec === 'h264' ? packetizeH264(units, options.maxPayload ?? 1400) : packetizeH265(units, options.maxPayload ?? 1400);
    const packets = payloads.map((p) => serializeRtp({
      marker: p.marker,
      payloadType: options.payloadType ?? 96,
      sequenceNumber: sequence++ & 0xffff,
      timestamp: timestamp >>> 0,
      ssrc: options.ssrc ?? 0x11223344,
    }, p.payload));
    frames.push({ timestamp: timestamp >>> 0, packets, units });
    timestamp += step;
  }
  return frames;
}

/** AAC-LC (ffmpeg's native encoder, a sine) as ADTS, made once per process like `encodeStream`. */
export function encodeAacAdts(options: { sampleRate: number; channels: number; seconds: number }): Buffer {
  const file = join(cacheDir, `aac_${options.sampleRate}_${options.channels}_${options.seconds}.adts`);
  if (existsSync(file)) return readFileSync(file);
  mkdirSync(cacheDir, { recursive: true });
  const result = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i',
    `sine=frequency=440:sample_rate=${options.sampleRate}:duration=${options.seconds}`, '-ac', String(options.channels),
    '-c:a', 'aac', '-b:a', '64k', '-f', 'adts', file], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ffmpeg failed: ${result.stderr}`);
  return readFileSync(file);
}
