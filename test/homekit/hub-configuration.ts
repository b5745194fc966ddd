/**
 * What a home hub typically selects for HomeKit Secure Video: 4 s pre-buffer, 4 s fMP4 fragments,
 * H.264 High 4.0 at 2 Mbit/s, AAC-LC 16 kHz mono. `resolution` and `overrides` change any of it.
 */
import hap from '@homebridge/hap-nodejs';
import type { CameraRecordingConfiguration } from 'homebridge';

export function hubRecordingConfiguration(
  overrides: Partial<CameraRecordingConfiguration> = {},
  resolution: [number, number, number] = [1280, 720, 30],
): CameraRecordingConfiguration {
  return {
    prebufferLength: 4000,
    eventTriggerTypes: [hap.EventTriggerOption.MOTION],
    mediaContainerConfiguration: { type: hap.MediaContainerType.FRAGMENTED_MP4, fragmentLength: 4000 },
    videoCodec: {
      type: hap.VideoCodecType.H264,
      parameters: { profile: hap.H264Profile.HIGH, level: hap.H264Level.LEVEL4_0, bitRate: 2000, iFrameInterval: 4000 },
      resolution,
    },
    audioCodec: { type: hap.AudioRecordingCodecType.AAC_LC, samplerate: hap.AudioRecordingSamplerate.KHZ_16, bitrate: 64, audioChannels: 1 },
    ...overrides,
  };
}
