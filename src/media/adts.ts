/**
 * AAC in ADTS (ISO/IEC 14496-3 1.A.2), what ffmpeg writes to a pipe with `-f adts`: each access unit
 * behind a 7-byte (9 with a CRC) header that says the object type, sample rate, channels and frame
 * length. `AdtsReader` cuts a byte stream that arrives in arbitrary chunks back into raw access units
 * (what an MP4 `mdat` and RFC 3640 carry); `audioSpecificConfig` writes the 2-byte
 * AudioSpecificConfig an `esds` needs for a plain AAC track of a given rate and channel count.
 */

/** The sampling_frequency_index table (ISO/IEC 14496-3 1.6.3.4). */
export const AAC_SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350] as const;

/** MPEG-4 Audio Object Type of AAC-LC. */
export const AAC_LC_OBJECT_TYPE = 2;

export interface AdtsFrame {
  /** The raw access unit, header removed. */
  data: Buffer;
  objectType: number;
  sampleRate: number;
  /** The channel_configuration (1-6 are that many channels, 7 is 7.1). */
  channelConfiguration: number;
}

/**
 * The AudioSpecificConfig of an AAC track without extensions: object type (5 bits), sampling
 * frequency index (4), channel configuration (4), then GASpecificConfig's three zero flags (1024
 * samples a frame, no core coder, no extension).
 */
export function audioSpecificConfig(objectType: number, sampleRate: number, channels: number): Buffer {
  const rateIndex = AAC_SAMPLE_RATES.indexOf(sampleRate as (typeof AAC_SAMPLE_RATES)[number]);
  if (rateIndex < 0) throw new RangeError(`AAC: ${sampleRate} Hz has no sampling frequency index`);
  if (!(objectType > 0 && objectType < 31)) throw new RangeError(`AAC: object type ${objectType} needs the escape form`);
  if (!(channels >= 1 && channels <= 6)) throw new RangeError(`AAC: ${channels} channels have no simple channel configuration`);
  const value = (objectType << 11) | (rateIndex << 7) | (channels << 3);
  return Buffer.from([value >> 8, value & 0xff]);
}

/** Reads ADTS frames out of a stream that arrives in chunks (a frame may span two chunks). */
export class AdtsReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns every frame now complete. Throws when the stream is not ADTS. */
  push(chunk: Buffer): AdtsFrame[] {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames: AdtsFrame[] = [];
    let at = 0;
    while (at + 7 <= data.length) {
      if (data[at] !== 0xff || (data[at + 1]! & 0xf6) !== 0xf0) throw new Error(`ADTS: sync word lost at byte ${at}`);
      const headerBytes = data[at + 1]! & 0x01 ? 7 : 9;
      const length = ((data[at + 3]! & 0x03) << 11) | (data[at + 4]! << 3) | (data[at + 5]! >> 5);
      if (length < headerBytes) throw new Error(`ADTS: frame length ${length} is shorter than its header`);
      if ((data[at + 6]! & 0x03) !== 0) throw new Error('ADTS: frames with several raw data blocks are not supported');
      if (at + length > data.length) break;
      const rateIndex = (data[at + 2]! >> 2) & 0x0f;
      frames.push({
        data: Buffer.from(data.subarray(at + headerBytes, at + length)),
        objectType: (data[at + 2]! >> 6) + 1,
        sampleRate: AAC_SAMPLE_RATES[rateIndex] ?? 0,
        channelConfiguration: ((data[at + 2]! & 0x01) << 2) | (data[at + 3]! >> 6),
      });
      at += length;
    }
    this.pending = Buffer.from(data.subarray(at));
    return frames;
  }

  /** Bytes of an unfinished frame held back. */
  get pendingBytes(): number {
    return this.pending.length;
  }
}

/** What an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) says, as far as a decoder needs it. */
export interface AudioSpecificConfigInfo {
  /** The core coder's object type (2 for AAC-LC); for explicit SBR/PS this is the type under it. */
  objectType: number;
  /** The core coder's sampling_frequency_index (15 when the rate was written out). */
  sampleRateIndex: number;
  /** The core coder's rate, Hz. */
  sampleRate: number;
  channelConfiguration: number;
  /** Explicit SBR (5) or PS (29) signalling: the decoder's output runs at twice the core rate. */
  sbr: boolean;
  /** Samples per access unit at the RTP clock (which runs at the output rate with SBR). */
  frameSamples: number;
}

/**
 * Reads an AudioSpecificConfig, as hex (the SDP fmtp `config`) or bytes. Throws a RangeError that
 * says what is wrong when it is absent, not hex, or too short.
 */
export function parseAudioSpecificConfig(config: string | Buffer): AudioSpecificConfigInfo {
  let bytes: Buffer;
  if (typeof config === 'string') {
    if (!/^[0-9a-f]{4,}$/i.test(config)) throw new RangeError(`AAC: the AudioSpecificConfig '${config.slice(0, 40)}' is not hex of at least 2 bytes`);
    bytes = Buffer.from(config.length % 2 ? `${config}0` : config, 'hex');
  } else {
    bytes = config;
  }
  let bit = 0;
  const read = (count: number): number => {
    let value = 0;
    for (let i = 0; i < count; i++, bit++) {
      if (bit >= bytes.length * 8) throw new RangeError('AAC: the AudioSpecificConfig is too short');
      value = value * 2 + ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1);
    }
    return value;
  };
  const objectType = (): number => {
    const type = read(5);
    return type === 31 ? 32 + read(6) : type;
  };
  const frequency = (): { index: number; rate: number } => {
    const index = read(4);
    return { index, rate: index === 15 ? read(24) : (AAC_SAMPLE_RATES[index] ?? 0) };
  };
  let type = objectType();
  const rate = frequency();
  const channelConfiguration = read(4);
  let sbr = false;
  if (type === 5 || type === 29) {
    // Explicit SBR/PS: the extension rate comes first, then the core's object type; the core's
    // rate is the one read above.
    sbr = true;
    frequency();
    type = objectType();
  }
  // GASpecificConfig's frameLengthFlag: 960/480-sample frames instead of 1024/512.
  const frameLengthFlag = read(1);
  const coreSamples = type === 23 || type === 39 ? (frameLengthFlag ? 480 : 512) : frameLengthFlag ? 960 : 1024;
  return { objectType: type, sampleRateIndex: rate.index, sampleRate: rate.rate, channelConfiguration, sbr, frameSamples: sbr ? coreSamples * 2 : coreSamples };
}

/**
 * The 7-byte ADTS header (no CRC) for one access unit of `payloadBytes`, so that an ffmpeg reading
 * a pipe can decode RFC 3640 access units. ADTS has a 2-bit profile: only object types 1-4 fit
 * (explicit SBR/PS is written as its core AAC-LC, which decoders upgrade implicitly); AAC-LD/ELD
 * have no ADTS form and throw.
 */
export function adtsHeader(config: AudioSpecificConfigInfo, payloadBytes: number): Buffer {
  if (!(config.objectType >= 1 && config.objectType <= 4)) throw new RangeError(`AAC: object type ${config.objectType} cannot be carried in ADTS`);
  if (!(config.sampleRateIndex >= 0 && config.sampleRateIndex <= 12)) throw new RangeError(`AAC: ${config.sampleRate} Hz has no ADTS sampling frequency index`);
  if (!(config.channelConfiguration >= 1 && config.channelConfiguration <= 7)) throw new RangeError(`AAC: channel configuration ${config.channelConfiguration} cannot be carried in ADTS`);
  const length = payloadBytes + 7;
  if (length > 0x1fff) throw new RangeError(`AAC: an access unit of ${payloadBytes} bytes is too long for ADTS`);
  const header = Buffer.alloc(7);
  header[0] = 0xff;
  header[1] = 0xf1; // sync word end, MPEG-4, layer 0, no CRC
  header[2] = ((config.objectType - 1) << 6) | (config.sampleRateIndex << 2) | (config.channelConfiguration >> 2);
  header[3] = ((config.channelConfiguration & 3) << 6) | (length >> 11);
  header[4] = (length >> 3) & 0xff;
  header[5] = ((length & 7) << 5) | 0x1f; // buffer fullness 0x7FF: variable rate
  header[6] = 0xfc; // ...and one raw data block
  return header;
}
