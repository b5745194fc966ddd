// AAC in ADTS (what ffmpeg writes with -f adts) taken apart into the raw access units and the
// AudioSpecificConfig an RTSP camera's RFC 3640 stream and SDP would carry.

export interface AdtsStream {
  /** Raw AAC access units, ADTS headers removed: what an RTSP camera's RFC 3640 stream carries. */
  frames: Buffer[];
  /** The 2-byte AudioSpecificConfig the headers describe (what the SDP's `config` says). */
  audioSpecificConfig: Buffer;
  sampleRate: number;
  channels: number;
}

const ADTS_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** Splits ADTS into access units (ISO/IEC 14496-3 1.A.2) and derives the AudioSpecificConfig. */
export function splitAdts(stream: Buffer): AdtsStream {
  const frames: Buffer[] = [];
  let asc: Buffer | undefined;
  let sampleRate = 0;
  let channels = 0;
  for (let at = 0; at + 7 <= stream.length;) {
    if (stream[at] !== 0xff || (stream[at + 1]! & 0xf0) !== 0xf0) throw new Error(`ADTS sync lost at byte ${at}`);
    const headerBytes = stream[at + 1]! & 0x01 ? 7 : 9;
    const objectType = (stream[at + 2]! >> 6) + 1;
    const rateIndex = (stream[at + 2]! >> 2) & 0x0f;
    const channelConfig = ((stream[at + 2]! & 0x01) << 2) | (stream[at + 3]! >> 6);
    const length = ((stream[at + 3]! & 0x03) << 11) | (stream[at + 4]! << 3) | (stream[at + 5]! >> 5);
    if (!asc) {
      const value = (objectType << 11) | (rateIndex << 7) | (channelConfig << 3);
      asc = Buffer.from([value >> 8, value & 0xff]);
      sampleRate = ADTS_RATES[rateIndex]!;
      channels = channelConfig;
    }
    frames.push(stream.subarray(at + headerBytes, at + length));
    at += length;
  }
  if (!asc) throw new Error('no ADTS frame');
  return { frames, audioSpecificConfig: asc, sampleRate, channels };
}
