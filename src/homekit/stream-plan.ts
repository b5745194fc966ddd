/**
 * Decides, per HomeKit stream request, whether the camera's own H.264 can be passed through
 * (copy: no CPU, no quality loss) or must be re-encoded, and with what. Pure functions, so the
 * decision is unit-tested without ffmpeg or HomeKit.
 */
import type { H264LevelName, H264ProfileName, VideoArgs } from '../ffmpeg/homekit-args.js';

/** What the Source knows about the camera's video (from its SPS and measured rates). */
export interface CameraVideoInfo {
  codec?: string;
  width?: number;
  height?: number;
  /** Measured over the last seconds; undefined before the first frames. */
  bitrateBps?: number;
  fps?: number;
}

/** The video part of a HomeKit START or RECONFIGURE. */
export interface RequestedVideo {
  width: number;
  height: number;
  fps: number;
  maxBitrateKbps: number;
  profile: H264ProfileName;
  level: H264LevelName;
}

export interface EncoderSettings {
  /** libx264 or the configured hardware encoder. */
  encoder: string;
  extraArgs: readonly string[];
  /** Transcode even when copying would do (after a failed copy, or by choice). */
  forceTranscode?: boolean;
}

export interface VideoPlan {
  args: VideoArgs;
  /** Why this choice, for the log ("copy: 640x360 H.264 fits 1280x720"). */
  reason: string;
}

/** HomeKit shows a picture up to this much larger than it asked for without trouble. */
export const RESOLUTION_TOLERANCE = 1.1;
/**
 * HomeKit's requested bitrates are low (often ~300 kbit/s even on Wi-Fi) and it copes with more:
 * copying is refused only when the camera sends more than this multiple of the request, or than
 * COPY_BITRATE_FLOOR_KBPS, whichever is larger.
 */
export const COPY_BITRATE_FACTOR = 4;
export const COPY_BITRATE_FLOOR_KBPS = 4000;

function copyRefusal(camera: CameraVideoInfo, request: RequestedVideo): string | undefined {
  if (camera.codec !== 'H264') return `the camera sends ${camera.codec ?? 'an unknown codec'}, HomeKit needs H.264`;
  if (!camera.width || !camera.height) return 'the camera\'s resolution is not known yet';
  if (camera.width > request.width * RESOLUTION_TOLERANCE || camera.height > request.height * RESOLUTION_TOLERANCE) {
    return `the camera's ${camera.width}x${camera.height} is larger than the requested ${request.width}x${request.height}`;
  }
  const limitKbps = Math.max(request.maxBitrateKbps * COPY_BITRATE_FACTOR, COPY_BITRATE_FLOOR_KBPS);
  if (camera.bitrateBps !== undefined && camera.bitrateBps / 1000 > limitKbps) {
    return `the camera's ${Math.round(camera.bitrateBps / 1000)} kbit/s is far above the requested ${request.maxBitrateKbps} kbit/s`;
  }
  return undefined;
}

export function planVideo(camera: CameraVideoInfo, request: RequestedVideo, encoder: EncoderSettings): VideoPlan {
  const refusal = encoder.forceTranscode ? 'copying is switched off for this stream' : copyRefusal(camera, request);
  if (!refusal) {
    return { args: { mode: 'copy' }, reason: `copy: the camera's ${camera.width}x${camera.height} H.264 fits the requested ${request.width}x${request.height}` };
  }
  // Never upscale: a bigger picture than the camera's costs bandwidth and shows nothing more.
  let width = request.width;
  let height = request.height;
  if (camera.width && camera.height && (camera.width < width || camera.height < height)) {
    const scale = Math.min(camera.width / width, camera.height / height);
    width = Math.max(2, Math.round((width * scale) / 2) * 2);
    height = Math.max(2, Math.round((height * scale) / 2) * 2);
  }
  return {
    args: {
      mode: 'transcode',
      encoder: encoder.encoder,
      width,
      height,
      fps: Math.max(1, Math.min(request.fps, 30)),
      bitrateKbps: Math.max(64, request.maxBitrateKbps),
      profile: request.profile,
      level: request.level,
      extraArgs: encoder.extraArgs,
    },
    reason: `transcode with ${encoder.encoder} to ${width}x${height}@${request.fps} ${request.maxBitrateKbps} kbit/s: ${refusal}`,
  };
}

/** Same plan? (RECONFIGURE restarts ffmpeg only when something really changes.) */
export function samePlan(a: VideoArgs, b: VideoArgs): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
