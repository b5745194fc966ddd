/**
 * ffmpeg command lines for HomeKit: the live stream (one process per Home app viewer) and the
 * snapshot decode. Every flag is commented with why it is there. Inputs are always the plugin's
 * loopback re-stream or a pipe, never the camera.
 */
import { inputProbeArgs, type InputProbe } from './input-probe.js';

export type H264ProfileName = 'baseline' | 'main' | 'high';
export type H264LevelName = '3.1' | '3.2' | '4.0';

export type VideoArgs =
  | { mode: 'copy' }
  | {
      mode: 'transcode';
      /** libx264, or a hardware encoder (h264_vaapi, h264_v4l2m2m, h264_nvenc, h264_qsv...). */
      encoder: string;
      width: number;
      height: number;
      fps: number;
      bitrateKbps: number;
      profile: H264ProfileName;
      level: H264LevelName;
      /** The user's `ffmpeg.encoderOptions`, already split into arguments. */
      extraArgs: readonly string[];
    };

export interface RtpTarget {
  /** The loopback port of the plugin's SRTP relay; ffmpeg sends plain RTP there. */
  port: number;
  payloadType: number;
  ssrc: number;
  /** Largest RTP packet ffmpeg may write (HomeKit's MTU minus the SRTP tag the relay adds). */
  packetSize: number;
}

export interface AudioArgs {
  codec: 'opus' | 'aac-eld';
  /** Hz: 8000, 16000 or 24000. */
  sampleRate: number;
  bitrateKbps: number;
  /** HomeKit's packet time, ms. */
  packetTimeMs: number;
  /** Variable (true) or constant bitrate, as HomeKit asked. */
  vbr: boolean;
  channels: number;
  target: RtpTarget;
}

export interface HomeKitStreamArgs {
  inputUrl: string;
  video: VideoArgs;
  videoTarget: RtpTarget;
  /** Omitted: video only. */
  audio?: AudioArgs;
  /** The `ffmpeg.debug` setting: more verbose output (it is logged line by line then). */
  debug?: boolean;
  /**
   * 'fast' (default): probe 0.1 s, for the quickest first packet. 'thorough': probe up to 1 s, the
   * retry after a fast probe ended before it knew the picture size.
   */
  probe?: InputProbe;
}

/** libopus accepts only these frame durations (ms); HomeKit may ask for 30 or 60. */
const OPUS_FRAME_DURATIONS = [2.5, 5, 10, 20, 40, 60];

export function opusFrameDuration(packetTimeMs: number): number {
  if (OPUS_FRAME_DURATIONS.includes(packetTimeMs)) return packetTimeMs;
  // 30 ms (a common HomeKit request) is not an Opus frame size: 20 ms keeps latency lowest and
  // the receiver takes any frame size, since each packet says its own duration.
  return packetTimeMs > 40 ? 60 : 20;
}

/** Splits a user's option string like a shell would for plain words and quotes (no expansion). */
export function splitArgs(text: string | undefined): string[] {
  if (!text) return [];
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2] ?? m[3] ?? '');
  return out;
}

/** One tee slave: `[options]url`, with the RTP muxer told HomeKit's SSRC and payload type. */
function teeSlave(select: 'v' | 'a', target: RtpTarget, ignoreFailure: boolean): string {
  const options = [
    `select=${select}`,
    // Each slave is its own RTP muxer: one stream per RTP session, as HomeKit expects.
    'f=rtp',
    `ssrc=${target.ssrc}`,
    `payload_type=${target.payloadType}`,
    // A camera without audio has no stream for this slave; ignore that instead of failing video.
    ...(ignoreFailure ? ['onfail=ignore'] : []),
  ];
  // RTCP from ffmpeg goes to the same port; the relay drops it and writes its own sender reports.
  return `[${options.join(':')}]rtp://127.0.0.1:${target.port}?rtcpport=${target.port}&pkt_size=${target.packetSize}`;
}

function videoArgs(video: VideoArgs): string[] {
  if (video.mode === 'copy') {
    return [
      '-map', '0:v:0', // the camera's video track
      '-c:v', 'copy', // the camera's H.264 already fits the request: no decode, no encode, no CPU
    ];
  }
  const args = [
    '-map', '0:v:0', // the camera's video track
    // Keep the camera's aspect ratio inside the requested box, with even sizes (4:2:0 needs them).
    '-vf', `scale=${video.width}:${video.height}:force_original_aspect_ratio=decrease,scale=trunc(iw/2)*2:trunc(ih/2)*2,fps=${video.fps}`,
    '-c:v', video.encoder,
  ];
  if (video.encoder === 'libx264') {
    args.push(
      '-preset', 'ultrafast', // least CPU per frame: a Raspberry Pi must keep up with several viewers
      '-tune', 'zerolatency', // no lookahead, no frame threading delay: frames leave as they are encoded
      '-profile:v', video.profile, // what HomeKit negotiated
      '-level:v', video.level,
      '-bf', '0', // no B-frames: HomeKit decoders expect none and they add latency
    );
  }
  args.push(
    '-pix_fmt', 'yuv420p', // the only chroma format every HomeKit decoder takes
    '-b:v', `${video.bitrateKbps}k`, // HomeKit's requested bitrate...
    '-maxrate', `${video.bitrateKbps}k`, // ...as a ceiling, so a busy scene does not flood a cellular link
    '-bufsize', `${video.bitrateKbps * 2}k`, // two seconds of rate-control slack
    '-g', String(video.fps * 2), // a keyframe every 2 s: a lost packet heals quickly
    ...video.extraArgs, // the user's ffmpeg.encoderOptions, last so they win
  );
  return args;
}

function audioArgs(audio: AudioArgs): string[] {
  const common = [
    '-map', '0:a:0?', // the camera's audio track if there is one ('?': none is fine)
    '-ac', String(audio.channels),
    '-ar', String(audio.sampleRate), // HomeKit's negotiated sample rate
    '-b:a', `${audio.bitrateKbps}k`,
  ];
  if (audio.codec === 'opus') {
    return [
      ...common,
      '-c:a', 'libopus',
      '-application', 'lowdelay', // the lowest-latency Opus mode; this is live monitoring, not music
      '-frame_duration', String(opusFrameDuration(audio.packetTimeMs)), // HomeKit's packet time
      '-vbr', audio.vbr ? 'on' : 'off',
    ];
  }
  return [
    ...common,
    '-c:a', 'libfdk_aac',
    '-profile:a', 'aac_eld', // AAC-ELD: the low-delay AAC HomeKit negotiates
    '-flags', '+global_header', // the RTP muxer needs the AudioSpecificConfig out of band
  ];
}

/**
 * The live stream: read the re-stream, copy or encode video, encode audio, and write both through
 * ONE output (the tee muxer) as plain RTP to the relay's loopback ports.
 */
export function homeKitStreamArgs(input: HomeKitStreamArgs): string[] {
  const slaves = [teeSlave('v', input.videoTarget, false)];
  if (input.audio) slaves.push(teeSlave('a', input.audio.target, true));
  return [
    '-hide_banner',
    '-nostdin', // never read the terminal; the plugin stops ffmpeg with signals
    '-loglevel', input.debug ? 'level+verbose' : 'level+warning', // level tags let the diagnosis find the errors
    // Not +nobuffer: it throws away what probing read, which is the re-stream's cached keyframe,
    // and the picture would then wait for the camera's next one.
    '-fflags', '+genpts', // copied frames from RTP may lack PTS
    '-flags', 'low_delay',
    ...inputProbeArgs(input.probe ?? 'fast'), // 0.1 s, or up to 1 s for the retry (input-probe.ts)
    '-rtsp_transport', 'tcp', // loopback TCP: no loss, no reordering, no UDP port pairs to find
    '-timeout', '10000000', // give up when the re-stream is silent for 10 s (µs): no orphan ffmpeg
    '-i', input.inputUrl,
    ...videoArgs(input.video),
    ...(input.audio ? audioArgs(input.audio) : ['-an']),
    '-muxdelay', '0', // send each packet as soon as it is ready
    '-muxpreload', '0',
    '-f', 'tee', // one output, several RTP sessions: video and audio share one demux and one clock
    slaves.join('|'),
  ];
}

export interface SnapshotArgs {
  codec: 'h264' | 'h265' | 'mjpeg';
  /** Omitted: keep the decoded size. */
  width?: number;
  height?: number;
  debug?: boolean;
}

/**
 * Decodes one picture from stdin (an Annex-B access unit starting with a keyframe, or a JPEG) and
 * writes one JPEG to stdout, scaled and cropped to fill exactly the requested size.
 */
export function snapshotArgs(input: SnapshotArgs): string[] {
  const filters: string[] = [];
  if (input.width && input.height) {
    // Fill the box and crop the overflow: HomeKit asks for an exact size and shows it as is.
    filters.push(`scale=${input.width}:${input.height}:force_original_aspect_ratio=increase`, `crop=${input.width}:${input.height}`);
  } else if (input.width || input.height) {
    filters.push(`scale=${input.width ?? -2}:${input.height ?? -2}`);
  }
  return [
    '-hide_banner',
    '-loglevel', input.debug ? 'level+verbose' : 'level+error',
    '-probesize', '32', // the whole input is one picture; do not wait for more
    '-analyzeduration', '0',
    '-f', input.codec === 'h265' ? 'hevc' : input.codec === 'h264' ? 'h264' : 'mjpeg', // raw elementary stream on stdin
    '-i', 'pipe:0',
    '-frames:v', '1', // one picture out
    ...(filters.length ? ['-vf', filters.join(',')] : []),
    '-c:v', 'mjpeg',
    '-q:v', '4', // good quality at a size the Home app loads quickly
    '-pix_fmt', 'yuvj420p', // full-range 4:2:0 JPEG, what every viewer decodes
    '-f', 'image2pipe',
    'pipe:1',
  ];
}
