/**
 * What a camera tells HomeKit it can stream: resolutions derived from the camera's real picture size
 * (read from its SPS), H.264 profiles and levels, and the audio codec this ffmpeg can produce.
 */
import type { CameraStreamingOptions, HAP, Resolution } from 'homebridge';
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';

/**
 * The sizes Apple's own cameras and the Home app use, largest first. 320x240@15 and 480x270 are
 * what an Apple Watch asks for; 320x180 and 320x240 what a phone on a cellular link asks for.
 */
export const HOMEKIT_RESOLUTIONS: ReadonlyArray<Resolution> = [
  [1920, 1080, 30],
  [1280, 960, 30],
  [1280, 720, 30],
  [1024, 768, 30],
  [640, 480, 30],
  [640, 360, 30],
  [480, 360, 30],
  [480, 270, 30],
  [320, 240, 30],
  [320, 240, 15],
  [320, 180, 30],
];

/** Sizes always offered, even above a tiny camera's size (they are small and a Watch needs them). */
const ALWAYS: ReadonlyArray<string> = ['480x270', '320x240', '320x180'];

/** The largest picture HomeKit's H.264 levels (up to 4.0) carry. */
const MAX_WIDTH = 1920;
const MAX_HEIGHT = 1080;

/**
 * HomeKit sizes up to the camera's own, plus the camera's exact size (so the Home app can ask for
 * it and get the camera's stream copied, untouched). Unknown size: every standard size.
 */
export function resolutionsFor(width: number | undefined, height: number | undefined): Resolution[] {
  if (!width || !height) return HOMEKIT_RESOLUTIONS.map((r) => [...r] as Resolution);
  const capW = Math.min(width, MAX_WIDTH);
  const capH = Math.min(height, MAX_HEIGHT);
  const out: Resolution[] = HOMEKIT_RESOLUTIONS
    .filter(([w, h]) => (w <= capW && h <= capH) || ALWAYS.includes(`${w}x${h}`))
    .map((r) => [...r] as Resolution);
  if (width <= MAX_WIDTH && height <= MAX_HEIGHT && !out.some(([w, h]) => w === width && h === height)) {
    out.push([width, height, 30]);
  }
  return out.sort((a, b) => b[0] * b[1] - a[0] * a[1] || b[2] - a[2]);
}

export type HomeKitAudioCodec = 'opus' | 'aac-eld';

export interface AudioChoice {
  codecs: HomeKitAudioCodec[];
  /** One sentence for the log: what is used and why. */
  message: string;
}

/**
 * Opus through libopus when available; AAC-ELD only with libfdk_aac (Debian's ffmpeg lacks it).
 * A camera the Home app may talk through (`talks`) offers Opus alone when it can: the Home app
 * sends its microphone in the codec it picked for the stream, and the talk channel takes Opus.
 */
export function chooseAudio(ffmpeg: FfmpegCapabilities | undefined, cameraAudio: boolean, talks = false): AudioChoice {
  if (!cameraAudio) return { codecs: [], message: 'Home app audio is off (audio: false for this camera)' };
  if (!ffmpeg) return { codecs: [], message: 'Home app audio is off: no ffmpeg' };
  const codecs: HomeKitAudioCodec[] = [];
  if (ffmpeg.has.libopus) codecs.push('opus');
  if (ffmpeg.has.libfdkAac && !(talks && ffmpeg.has.libopus)) codecs.push('aac-eld');
  if (talks && ffmpeg.has.libopus && ffmpeg.has.libfdkAac) {
    return { codecs, message: 'Home app audio: Opus (libopus) only, so that the Home app\'s microphone can reach the camera\'s speaker (its sound comes back in the same codec)' };
  }
  if (codecs.length === 0) {
    return { codecs, message: 'Home app audio is off: this ffmpeg has neither libopus (Opus) nor libfdk_aac (AAC-ELD)' };
  }
  const used = codecs.map((c) => (c === 'opus' ? 'Opus (libopus)' : 'AAC-ELD (libfdk_aac)')).join(' and ');
  const missing = ffmpeg.has.libfdkAac ? '' : '; AAC-ELD is not offered because this ffmpeg has no libfdk_aac';
  return { codecs, message: `Home app audio: ${used}${missing}` };
}

/**
 * The CameraController's streaming options. `twoWayAudio`: the Home app may send its microphone
 * back (HAP then adds a Speaker service); only with Opus, the codec the talk channel takes.
 */
export function streamingOptions(hap: HAP, resolutions: Resolution[], audio: HomeKitAudioCodec[], twoWayAudio = false): CameraStreamingOptions {
  const codecs = audio.map((codec) => codec === 'opus'
    ? {
        type: hap.AudioStreamingCodecType.OPUS,
        samplerate: [hap.AudioStreamingSamplerate.KHZ_16, hap.AudioStreamingSamplerate.KHZ_24],
      }
    : {
        type: hap.AudioStreamingCodecType.AAC_ELD,
        samplerate: hap.AudioStreamingSamplerate.KHZ_16,
      });
  return {
    supportedCryptoSuites: [hap.SRTPCryptoSuites.AES_CM_128_HMAC_SHA1_80],
    video: {
      resolutions,
      codec: {
        profiles: [hap.H264Profile.BASELINE, hap.H264Profile.MAIN, hap.H264Profile.HIGH],
        levels: [hap.H264Level.LEVEL3_1, hap.H264Level.LEVEL3_2, hap.H264Level.LEVEL4_0],
      },
    },
    ...(codecs.length > 0 ? { audio: { twoWayAudio: twoWayAudio && audio.includes('opus'), codecs } } : {}),
  };
}
