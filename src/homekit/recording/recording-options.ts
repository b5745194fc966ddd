/**
 * What a camera tells HomeKit it can record (the `recording.options` of the CameraController).
 * Recordings pass the camera's own H.264 through, so the sizes are the HomeKit sizes up to the
 * camera's (the same list the live stream offers) and the hub's choice among them is informational.
 * Audio is AAC-LC only: an AAC camera's audio passes as is (at its own rate), a G.711 camera's is
 * encoded by ffmpeg's native AAC encoder at the rate the hub picks among 16, 24 and 32 kHz. AAC-ELD
 * would need libfdk_aac, which most ffmpeg builds lack, and is not offered.
 */
import type { AudioRecordingSamplerate, CameraRecordingOptions, HAP, Resolution } from 'homebridge';
import { PREBUFFER_SECONDS } from './prebuffer.js';

/** HomeKit's usual fragment length; the hub selects it from this list. */
export const FRAGMENT_LENGTH_MS = 4000;

/** HomeKit's recording sample rates: HAP's enum value and the rate in Hz. */
function recordingSamplerates(hap: HAP): Array<[AudioRecordingSamplerate, number]> {
  return [
    [hap.AudioRecordingSamplerate.KHZ_8, 8000],
    [hap.AudioRecordingSamplerate.KHZ_16, 16000],
    [hap.AudioRecordingSamplerate.KHZ_24, 24000],
    [hap.AudioRecordingSamplerate.KHZ_32, 32000],
    [hap.AudioRecordingSamplerate.KHZ_44_1, 44100],
    [hap.AudioRecordingSamplerate.KHZ_48, 48000],
  ];
}

/** The HAP sample-rate enum for a rate in Hz, when HomeKit has one. */
export function recordingSamplerate(hap: HAP, hz: number): AudioRecordingSamplerate | undefined {
  return recordingSamplerates(hap).find(([, rate]) => rate === hz)?.[0];
}

/** The rate in Hz of the hub's selected sample rate (undefined for a value HAP does not define). */
export function recordingSampleRateHz(hap: HAP, samplerate: AudioRecordingSamplerate): number | undefined {
  return recordingSamplerates(hap).find(([value]) => value === samplerate)?.[1];
}

export interface RecordingOptionsInput {
  /** From `resolutionsFor` (streaming-options.ts): HomeKit sizes up to the camera's own. */
  resolutions: Resolution[];
  /** The pre-buffer the camera keeps (`prebufferSeconds`, clamped to 4-8). */
  prebufferSeconds: number;
  /** The camera's AAC sample rate, when it sends AAC; otherwise the common rates are offered. */
  aacSampleRate?: number;
  /** The camera's AAC channel count (default 1). */
  aacChannels?: number;
}

export function recordingOptions(hap: HAP, input: RecordingOptionsInput): CameraRecordingOptions {
  const seconds = Math.min(PREBUFFER_SECONDS.max, Math.max(PREBUFFER_SECONDS.min, input.prebufferSeconds));
  const cameraRate = input.aacSampleRate === undefined ? undefined : recordingSamplerate(hap, input.aacSampleRate);
  // HomeKit asks for 15 fps and 24 or 30 fps at each size; the camera's frames pass as they come.
  const offered = new Set<string>();
  const resolutions = input.resolutions
    .flatMap(([w, h]): Resolution[] => [[w, h, 30], [w, h, 15]])
    .filter(([w, h, fps]) => !offered.has(`${w}x${h}@${fps}`) && Boolean(offered.add(`${w}x${h}@${fps}`)));
  return {
    prebufferLength: seconds * 1000,
    mediaContainerConfiguration: [{ type: hap.MediaContainerType.FRAGMENTED_MP4, fragmentLength: FRAGMENT_LENGTH_MS }],
    video: {
      type: hap.VideoCodecType.H264,
      parameters: {
        profiles: [hap.H264Profile.MAIN, hap.H264Profile.HIGH],
        levels: [hap.H264Level.LEVEL3_1, hap.H264Level.LEVEL3_2, hap.H264Level.LEVEL4_0],
      },
      resolutions,
    },
    audio: {
      codecs: [{
        type: hap.AudioRecordingCodecType.AAC_LC,
        audioChannels: input.aacChannels ?? 1,
        samplerate: cameraRate !== undefined
          ? cameraRate
          : [hap.AudioRecordingSamplerate.KHZ_16, hap.AudioRecordingSamplerate.KHZ_24, hap.AudioRecordingSamplerate.KHZ_32],
      }],
    },
  };
}
