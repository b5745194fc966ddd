/**
 * The ffmpeg command lines of a camera's transcoded variant: the loopback re-stream in, VP8 (or
 * H.264) RTP out to a loopback UDP port of the plugin, and the sound as Opus from a second, small
 * ffmpeg to another. One such pair serves every viewer of the variant (src/transcode/), so its cost
 * is per camera, not per viewer. Every flag says why.
 *
 * Why the sound has its own process: in one ffmpeg, a video encoder starved of CPU (a busy Raspberry
 * Pi, a 1080p camera) held the sound up with it, and Firefox heard a third of it concealed. Alone,
 * the sound needs about 1 % of a core and gets it even when the video cannot keep up.
 */
import type { HardwareEncoder } from './hardware-encoders.js';
import type { VariantCodec } from './variant-codec.js';
import { restreamTrackArgs, type InputProbe } from './input-probe.js';

export interface VariantArgs {
  /** The camera's loopback re-stream (rtsp://127.0.0.1:<port>/<id>). */
  inputUrl: string;
  videoPort: number;
  /** Longest side of the picture; larger cameras are scaled down (encoding is CPU-bound). */
  maxWidth: number;
  maxHeight: number;
  /** A frame-rate cap, for an encoder that could not keep up at full rate (src/transcode/keep-up.ts). */
  maxFps?: number;
  /** A hardware encoder whose trial worked (hardware-encoders.ts); software when absent. */
  hardware?: HardwareEncoder;
  /**
   * Decode and scale the camera's picture the cheap way (src/transcode/keep-up.ts asks for it
   * once the variant has stepped down): on a large camera, decoding and scaling cost more than
   * encoding the small picture, and a smaller box or fewer frames out do not lower them.
   */
  fastDecode?: boolean;
  videoBitrateKbps: number;
  /** More verbose ffmpeg output (the `ffmpeg.debug` setting). */
  debug?: boolean;
  /** The ffmpeg's version ("5.1.6-0+deb12u1"), for flags that were renamed. */
  ffmpegVersion?: string;
  /**
   * 'fast' (default): probe 0.1 s, for the quickest first frame. 'thorough': probe up to 1 s, the
   * retry after a fast probe ended before it knew the picture size.
   */
  probe?: InputProbe;
}

/**
 * One frame out per frame in, at its own time: after a camera reconnect the timeline has a gap,
 * and the default constant-rate mode would fill it with a burst of duplicated frames. The flag is
 * `-fps_mode` since ffmpeg 5.1 and `-vsync` before; git builds ("N-...") are new.
 */
export function frameRatePassthrough(version: string | undefined): string[] {
  const match = /^(\d+)\.(\d+)/.exec(version ?? '');
  const old = match !== null && (Number(match[1]) < 5 || (Number(match[1]) === 5 && Number(match[2]) < 1));
  return old ? ['-vsync', 'passthrough'] : ['-fps_mode', 'passthrough'];
}

/**
 * A VP8 bitrate for the variant's picture: about 0.08 bits per pixel per frame, what libvpx's
 * realtime mode needs for a clean camera picture (640x360 at 25 fps: 460 kbit/s; 1280x720: 1.8
 * Mbit/s), between 300 kbit/s and 2 Mbit/s. The size is the camera's, fitted into the variant's
 * box; an unknown size or frame rate counts as 1280x720 at 25 fps.
 */
export function variantBitrateKbps(camera: { width?: number; height?: number; fps?: number }, maxWidth = 1280, maxHeight = 720): number {
  const width = camera.width ?? maxWidth;
  const height = camera.height ?? maxHeight;
  const fit = Math.min(1, maxWidth / width, maxHeight / height);
  const fps = camera.fps && camera.fps > 0 ? Math.min(camera.fps, 30) : 25;
  const kbps = (width * fit) * (height * fit) * fps * 0.08 / 1000;
  return Math.round(Math.min(2000, Math.max(300, kbps)));
}

export const VP8_PAYLOAD_TYPE = 96;
/** The H.264 variant's payload type (ffmpeg's RTP muxer writes what it is told). */
export const H264_VARIANT_PAYLOAD_TYPE = 102;
export type { VariantCodec } from './variant-codec.js';
export const OPUS_PAYLOAD_TYPE = 111;
/** RTP packets the size WebRTC expects: an SRTP tag and the headers still fit in a 1280-byte MTU. */
export const VARIANT_PACKET_BYTES = 1200;

function rtpUrl(port: number): string {
  // RTCP to the same port: the receiver drops it; port+1 is not ours and may be someone else's.
  return `rtp://127.0.0.1:${port}?rtcpport=${port}&pkt_size=${VARIANT_PACKET_BYTES}`;
}

/** The encoder flags of each variant codec, for the picture already scaled into the variant's box. */
function videoEncoderArgs(codec: VariantCodec, kbps: number): string[] {
  if (codec === 'H264') {
    return [
      '-c:v', 'libx264',
      '-preset', 'ultrafast', // the fastest preset: a Raspberry Pi must keep up
      '-tune', 'zerolatency', // no B-frames, no look-ahead: each frame leaves as soon as it is encoded
      '-profile:v', 'baseline', // Constrained Baseline: what every WebRTC H.264 decoder takes (the plugin offers 42e01f)
      '-level:v', '3.1', // enough for 1280x720 at 30 fps, the variant's largest picture
      '-pix_fmt', 'yuv420p', // the chroma format Baseline allows
      '-b:v', `${kbps}k`,
      '-maxrate', `${kbps}k`, // a ceiling: a busy scene must not flood a phone on Wi-Fi
      '-bufsize', `${kbps}k`, // one second of rate-control slack keeps frames even
      // SPS/PPS come in band before every keyframe (the RTP muxer asks for no global header), which
      // the Source needs: the variant's track has no sprop-parameter-sets.
    ];
  }
  return [
    '-c:v', 'libvpx',
    '-deadline', 'realtime', // libvpx's live mode: encode as frames come, never look ahead
    '-cpu-used', '8', // the fastest realtime speed: a Raspberry Pi must keep up
    '-lag-in-frames', '0', // no frame held back for analysis: each leaves as soon as it is encoded
    '-auto-alt-ref', '0', // no hidden alt-ref frames (they need look-ahead)
    '-error-resilient', '1', // a lost packet damages one frame, not everything up to the keyframe
    // One encoder thread. libvpx's VP8 threads wait for each other by spinning, so on a busy machine
    // (the case the variant must survive) they burn the CPU the picture needs: 250 frames of 1080p
    // to 640x360 took 10.6 s of CPU with ffmpeg's default threads beside `stress-ng --cpu 2`, and
    // 1.3 s with one. One thread encodes 1280x720 at about 100 fps on the 2-core test machine.
    '-threads', '1',
    '-pix_fmt', 'yuv420p', // the chroma format every VP8 decoder takes
    '-b:v', `${kbps}k`,
    '-maxrate', `${kbps}k`, // a ceiling: a busy scene must not flood a phone on Wi-Fi
    '-bufsize', `${kbps}k`, // one second of rate-control slack keeps frames even
  ];
}

export function variantArgs(codec: VariantCodec, input: VariantArgs): string[] {
  const args = [
    '-hide_banner',
    '-nostdin', // never read the terminal; the plugin stops ffmpeg with signals
    '-loglevel', input.debug ? 'level+verbose' : 'level+warning', // level tags let the diagnosis find the errors
    // Not +nobuffer: it throws away what probing read, which is the re-stream's cached keyframe.
    '-fflags', '+genpts', // frames from RTP may lack PTS
    '-flags', 'low_delay',
    ...restreamTrackArgs('video', input.probe ?? 'fast'), // the picture only: the sound has its own ffmpeg (see above); probe 0.1 s, or 1 s on the retry
    ...(input.hardware?.inputArgs ?? []), // a hardware encoder's device
    ...(input.fastDecode
      ? [
        '-skip_loop_filter', 'all', // no deblocking in the camera's decoder: a large share of decoding, and the picture is scaled down anyway
        '-flags2', '+fast', // the H.264 decoder's shortcuts that give up exactness a smaller picture does not show
      ]
      : []),
    '-i', input.inputUrl,
    '-map', '0:v:0', // the camera's video track
    // Keep the aspect ratio inside the box, never upscale, even sizes (4:2:0 needs them).
    // A frame-rate cap first, when there is one: fewer frames to scale and encode. Stepped down,
    // bilinear scaling: about half bicubic's cost, and the difference does not show that small.
    '-vf', `${input.maxFps ? `fps=${input.maxFps},` : ''}scale='min(${input.maxWidth},iw)':'min(${input.maxHeight},ih)':force_original_aspect_ratio=decrease${input.fastDecode ? ':flags=bilinear' : ''},scale=trunc(iw/2)*2:trunc(ih/2)*2${input.hardware ? `,${input.hardware.filter}` : ''}`,
    ...frameRatePassthrough(input.ffmpegVersion), // one frame out per frame in (see above)
    ...(input.hardware ? input.hardware.encoderArgs(input.videoBitrateKbps) : videoEncoderArgs(codec, input.videoBitrateKbps)),
    // A keyframe every 2 s whatever the camera's frame rate: the variant's GOP cache and new viewers
    // start from it, and a viewer's picture heals within 2 s of a loss.
    '-force_key_frames', 'expr:gte(t,n_forced*2)',
    '-f', 'rtp', '-payload_type', String(codec === 'H264' ? H264_VARIANT_PAYLOAD_TYPE : VP8_PAYLOAD_TYPE), rtpUrl(input.videoPort),
  ];
  return args;
}

export interface VariantAudioArgs {
  /** The camera's loopback re-stream (rtsp://127.0.0.1:<port>/<id>). */
  inputUrl: string;
  audioPort: number;
  debug?: boolean;
  probe?: InputProbe;
}

/** The variant's sound: the camera's audio track alone, as Opus, from its own small ffmpeg. */
export function variantAudioArgs(input: VariantAudioArgs): string[] {
  return [
    '-hide_banner',
    '-nostdin', // never read the terminal; the plugin stops ffmpeg with signals
    '-loglevel', input.debug ? 'level+verbose' : 'level+warning', // level tags let the diagnosis find the errors
    '-fflags', '+genpts', // packets from RTP may lack PTS
    ...restreamTrackArgs('audio', input.probe ?? 'fast'), // the sound only: the picture is the other process's
    '-i', input.inputUrl,
    '-map', '0:a:0', // the camera's audio (G.711, AAC or Opus: all decode)
    ...opusEncoderArgs(32),
    '-ac', '2', // described as stereo in WebRTC (a mono camera is upmixed, nothing is lost)
    '-f', 'rtp', '-payload_type', String(OPUS_PAYLOAD_TYPE), rtpUrl(input.audioPort),
  ];
}

/** The Opus encoder as browsers want it, for the variants' sound and an AAC camera's. */
function opusEncoderArgs(kbps: number): string[] {
  return [
    '-c:a', 'libopus',
    '-application', 'lowdelay', // the lowest-latency Opus mode; this is live monitoring, not music
    '-frame_duration', '20', // 20 ms packets, what browsers expect
    '-b:a', `${kbps}k`, // 32k: speech and street noise; plenty for a camera microphone
    '-ar', '48000', // Opus in WebRTC is always 48 kHz
  ];
}

export interface OpusAudioArgs {
  /** More verbose ffmpeg output (the `ffmpeg.debug` setting). */
  debug?: boolean;
  /** Opus bitrate, kbit/s (default 32). */
  bitrateKbps?: number;
}

/**
 * The camera's AAC sound as Opus for browsers (src/transcode/opus-audio.ts): the plugin writes the
 * camera's access units as ADTS to stdin, ffmpeg decodes them and writes Opus in Ogg to stdout, one
 * page per packet. Reading a pipe the plugin feeds (not the re-stream) keeps the sound's timing
 * exact: the plugin knows which camera sample every Opus sample came from.
 */
export function opusAudioArgs(input: OpusAudioArgs = {}): string[] {
  return [
    '-hide_banner',
    '-nostdin', // stdin carries the AAC: ffmpeg must never read it as keyboard commands
    '-loglevel', input.debug ? 'level+verbose' : 'level+warning', // level tags let the diagnosis find the errors
    // Not +nobuffer: it throws away the frame the probe read, and every later sample would be
    // counted one frame early (the timing below counts samples).
    '-probesize', '32', // every ADTS header says rate and channels: the first frame is enough...
    '-analyzeduration', '0', // ...so no waiting for more before the first packet
    '-f', 'aac', // the camera's AAC access units, each behind the ADTS header the plugin wrote
    '-i', 'pipe:0',
    '-map', '0:a:0', // the one input stream
    ...opusEncoderArgs(input.bitrateKbps ?? 32), // (the camera's channel count is kept)
    '-flush_packets', '1', // write each page to the pipe at once: a viewer is waiting for it
    '-page_duration', '20000', // one Opus packet per Ogg page (µs): no page waits for the next packet
    '-f', 'ogg',
    'pipe:1',
  ];
}
