/**
 * The ffmpeg command lines of HomeKit Secure Video recordings: the picture of a camera that does
 * not send H.264 (`recordingVideoArgs`, below), and the sound when the camera sends G.711: the plugin decodes G.711 to 16-bit PCM itself (src/media/g711.ts, filling RTP gaps
 * with silence) and pipes it in; ffmpeg resamples it to the rate the hub chose and writes AAC-LC as
 * ADTS to stdout, which src/homekit/recording/audio-encoder.ts cuts into the recording's samples.
 * One such ffmpeg runs per recording stream (HomeKit pulls one recording per camera at a time), for
 * as long as the recording lasts. Every flag says why.
 */

import { frameRatePassthrough } from './transcode-args.js';

export interface RecordingAudioArgs {
  /** The PCM the plugin writes: the camera's G.711 clock rate (8000 Hz) and channels. */
  inputSampleRate: number;
  inputChannels: number;
  /** What the hub selected in its recording configuration. */
  outputSampleRate: number;
  outputChannels: number;
  /** The hub's selected bitrate, kbit/s. */
  bitrateKbps: number;
  /** More verbose ffmpeg output (the `ffmpeg.debug` setting). */
  debug?: boolean;
}

/** The hub's bitrate, or this when it gave none (enough for speech and street noise in mono AAC-LC). */
export const DEFAULT_RECORDING_AUDIO_KBPS = 32;

export function recordingAudioArgs(input: RecordingAudioArgs): string[] {
  const kbps = input.bitrateKbps > 0 ? input.bitrateKbps : DEFAULT_RECORDING_AUDIO_KBPS;
  return [
    '-hide_banner',
    '-nostdin', // stdin carries the PCM: ffmpeg must never read it as keyboard commands
    '-loglevel', input.debug ? 'level+verbose' : 'level+warning', // level tags let the diagnosis find the errors
    '-f', 's16le', // raw signed 16-bit little-endian PCM, what the plugin's G.711 decoder writes...
    '-ar', String(input.inputSampleRate), // ...at the camera's G.711 rate...
    '-ac', String(input.inputChannels), // ...and channel count: raw PCM says neither itself
    '-i', 'pipe:0',
    '-map', '0:a:0', // the one input stream
    '-c:a', 'aac', // ffmpeg's native AAC encoder: in every build, no libfdk_aac needed
    '-profile:a', 'aac_low', // AAC-LC, the recording codec HomeKit was offered
    '-b:a', `${kbps}k`, // the hub's selected bitrate
    '-ar', String(input.outputSampleRate), // resample to the hub's selected rate
    '-ac', String(input.outputChannels), // and its channel count (a mono camera is copied to both for stereo)
    '-flush_packets', '1', // write each AAC frame to the pipe at once: the recording waits for it
    '-f', 'adts', // self-delimiting frames on a pipe; the plugin strips the headers and writes the esds itself
    'pipe:1',
  ];
}

/** HomeKit's largest recording picture: a larger camera (a 4K H.265 one) is scaled into it. */
export const RECORDING_MAX_WIDTH = 1920;
export const RECORDING_MAX_HEIGHT = 1080;

export interface RecordingVideoArgs {
  /** ffmpeg's raw-stream demuxer for what the plugin writes: 'hevc' for an H.265 camera, 'h264' for an H.264 one. */
  inputFormat: 'hevc' | 'h264';
  /**
   * Where keyframes go: 'source', exactly where the camera has one (an H.265 camera: its keyframes
   * already suit the hub's fragments); or every `everyFrames` frames from the first (an H.264
   * camera whose keyframes are too far apart for them).
   */
  keyframes: 'source' | { everyFrames: number };
  /** The camera's frame rate: a raw stream carries no timestamps, and rate control needs it. */
  fps: number;
  /** The hub's selected bitrate, kbit/s. */
  bitrateKbps: number;
  /** The ffmpeg's version, for flags that were renamed. */
  ffmpegVersion?: string;
  debug?: boolean;
}

/**
 * The H.264 a recording of a camera that does not send H.264 is made from (src/homekit/recording/
 * h264-recording-feed.ts): the plugin writes the camera's access units to stdin as Annex-B, one
 * after another, and reads H.264 back from stdout, one access unit per frame it wrote, in the same
 * order, each behind an access unit delimiter. The plugin gives each output frame the camera
 * frame's own timestamp, so the recording's sound, pre-buffer and motion event stay on the
 * camera's clock. That one-to-one order is what every flag below protects.
 */
export function recordingVideoArgs(input: RecordingVideoArgs): string[] {
  const kbps = Math.max(100, Math.round(input.bitrateKbps));
  return [
    '-hide_banner',
    '-nostdin', // stdin carries the video: ffmpeg must never read it as keyboard commands
    '-loglevel', input.debug ? 'level+verbose' : 'level+warning', // level tags let the diagnosis find the errors
    '-probesize', '32', // the first access unit (parameter sets and a keyframe) says all there is...
    '-analyzeduration', '0', // ...so no waiting for more before the first frame
    '-f', input.inputFormat, // the camera's raw access units, each behind a start code
    '-r', String(input.fps), // its frame rate (raw video has no timestamps)
    '-i', 'pipe:0',
    '-map', '0:v:0', // the one input stream
    // Keep the aspect ratio inside HomeKit's largest recording size, never upscale, even sizes.
    '-vf', `scale='min(${RECORDING_MAX_WIDTH},iw)':'min(${RECORDING_MAX_HEIGHT},ih)':force_original_aspect_ratio=decrease,scale=trunc(iw/2)*2:trunc(ih/2)*2`,
    ...frameRatePassthrough(input.ffmpegVersion), // one frame out per frame in: never a duplicate or a drop
    '-c:v', 'libx264',
    '-preset', 'superfast', // recordings are watched later: CABAC and deblocking (ultrafast has neither) at little more CPU
    '-tune', 'zerolatency', // no B-frames and no look-ahead: frames leave in the order they came, one per frame in
    '-profile:v', 'main', // the profile the recording options offer
    '-level:v', '4.0', // 1920x1080 at 30 fps, the largest recording HomeKit asks for
    '-pix_fmt', 'yuv420p', // the chroma format Main allows
    '-b:v', `${kbps}k`, // the hub's selected bitrate
    '-maxrate', `${kbps}k`, // a ceiling: a busy scene must not outgrow what the hub asked for
    '-bufsize', `${kbps * 2}k`, // two seconds of rate-control slack keeps frames even
    ...keyframeArgs(input.keyframes),
    '-g', '100000', // ...and nowhere else, so the plugin knows which frame out is a keyframe
    '-sc_threshold', '0', // (no scene-cut keyframes either)
    '-aud', '1', // an access unit delimiter before every frame: where one frame ends on the pipe
    '-f', 'h264', // Annex-B, the parameter sets repeated before every keyframe
    'pipe:1',
  ];
}

/** The keyframe flag, commented per choice (see `RecordingVideoArgs.keyframes`). */
function keyframeArgs(keyframes: RecordingVideoArgs['keyframes']): string[] {
  if (keyframes === 'source') {
    return ['-force_key_frames', 'source']; // a keyframe exactly where the camera has one (fragments start there)...
  }
  const every = Math.max(1, Math.round(keyframes.everyFrames));
  // A keyframe on frame 0, every-th, 2 x every-th... counted by frame (`n`), not by time, so the
  // plugin can tell from the count alone which frame out is one...
  return ['-force_key_frames', `expr:eq(mod(n,${every}),0)`];
}
