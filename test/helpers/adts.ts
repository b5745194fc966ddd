// AAC in ADTS (what ffmpeg writes with -f adts) taken apart into the raw access units and the
// AudioSpecificConfig an RTSP camera's RFC 3640 stream and SDP would carry, with the plugin's own
// ADTS reader (src/media/adts.ts).
import { AdtsReader, audioSpecificConfig } from '../../src/media/adts.js';

export interface AdtsStream {
  /** Raw AAC access units, ADTS headers removed: what an RTSP camera's RFC 3640 stream carries. */
  frames: Buffer[];
  /** The 2-byte AudioSpecificConfig the headers describe (what the SDP's `config` says). */
  audioSpecificConfig: Buffer;
  sampleRate: number;
  channels: number;
}

/** Splits a whole ADTS file into access units and derives the AudioSpecificConfig. */
export function splitAdts(stream: Buffer): AdtsStream {
  const reader = new AdtsReader();
  const frames = reader.push(stream);
  if (reader.pendingBytes > 0) throw new Error(`ADTS: ${reader.pendingBytes} bytes of an unfinished frame at the end`);
  const first = frames[0];
  if (!first) throw new Error('no ADTS frame');
  return {
    frames: frames.map((f) => f.data),
    audioSpecificConfig: audioSpecificConfig(first.objectType, first.sampleRate, first.channelConfiguration),
    sampleRate: first.sampleRate,
    channels: first.channelConfiguration,
  };
}
