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
