/**
 * The ffmpeg command line that gives a HomeKit Secure Video recording its sound when the camera
 * sends G.711: the plugin decodes G.711 to 16-bit PCM itself (src/media/g711.ts, filling RTP gaps
 * with silence) and pipes it in; ffmpeg resamples it to the rate the hub chose and writes AAC-LC as
 * ADTS to stdout, which src/homekit/recording/audio-encoder.ts cuts into the recording's samples.
 * One such ffmpeg runs per recording stream (HomeKit pulls one recording per camera at a time), for
 * as long as the recording lasts. Every flag says why.
 */

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
