/**
 * The two sample entries the recording needs: `avc1` with its `avcC` (ISO/IEC 14496-15 5.3.3,
 * built from the camera's own SPS and PPS, so the bytes pass through untouched) and `mp4a` with its
 * `esds` (ISO/IEC 14496-1 ES_Descriptor carrying the AudioSpecificConfig the camera announced).
 */
import { parseH264Sps } from '../h264-sps.js';
import { box, fullBox, u16, u32, u8 } from './boxes.js';

/** What the `avc1` entry needs: the parameter sets (NAL units without start codes) and the size. */
export interface AvcTrackConfig {
  sps: Buffer;
  pps: Buffer;
  width: number;
  height: number;
}

/** Profiles whose avcC carries the chroma/bit-depth extension (14496-15 5.3.3.1.2). */
const AVCC_EXTENDED_PROFILES = new Set([100, 110, 122, 144]);

/** The AVCDecoderConfigurationRecord, with 4-byte NAL length fields (lengthSizeMinusOne = 3). */
export function avcC(sps: Buffer, pps: Buffer): Buffer {
  if (sps.length < 4 || (sps[0]! & 0x1f) !== 7) throw new Error('fMP4: the SPS is missing or is not an SPS NAL unit');
  if (pps.length < 1 || (pps[0]! & 0x1f) !== 8) throw new Error('fMP4: the PPS is missing or is not a PPS NAL unit');
  const parts = [
    u8(1), // configurationVersion
    u8(sps[1]!), // AVCProfileIndication
    u8(sps[2]!), // profile_compatibility (the constraint flags)
    u8(sps[3]!), // AVCLevelIndication
    u8(0xfc | 3), // reserved + lengthSizeMinusOne
    u8(0xe0 | 1), // reserved + numOfSequenceParameterSets
    u16(sps.length),
    sps,
    u8(1), // numOfPictureParameterSets
    u16(pps.length),
    pps,
  ];
  if (AVCC_EXTENDED_PROFILES.has(sps[1]!)) {
    const info = parseH264Sps(sps);
    if (!info) throw new Error('fMP4: the SPS cannot be parsed (High profile needs its chroma format and bit depth)');
    parts.push(
      u8(0xfc | info.chromaFormatIdc),
      u8(0xf8 | (info.bitDepthLuma - 8)),
      u8(0xf8 | (info.bitDepthChroma - 8)),
      u8(0), // numOfSequenceParameterSetExt
    );
  }
  return box('avcC', ...parts);
}

/** The visual sample entry (14496-12 12.1.3) for H.264 with parameter sets in `avcC`. */
export function avc1(config: AvcTrackConfig): Buffer {
  return box(
    'avc1',
    Buffer.alloc(6), // reserved
    u16(1), // data_reference_index
    u16(0), u16(0), Buffer.alloc(12), // pre_defined, reserved, pre_defined[3]
    u16(config.width),
    u16(config.height),
    u32(0x00480000), // horizresolution 72 dpi
    u32(0x00480000), // vertresolution
    u32(0), // reserved
    u16(1), // frame_count
    Buffer.alloc(32), // compressorname
    u16(0x0018), // depth
    u16(0xffff), // pre_defined = -1
    avcC(config.sps, config.pps),
  );
}

/** What the `mp4a` entry needs: the AudioSpecificConfig (from the SDP `config`), rate and channels. */
export interface AacTrackConfig {
  audioSpecificConfig: Buffer;
  sampleRate: number;
  channels: number;
}

/** An MPEG-4 descriptor: tag, then the size in the 7-bits-per-byte expandable form (14496-1 8.3.3). */
function descriptor(tag: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const size: number[] = [];
  let rest = body.length;
  do {
    size.unshift(rest & 0x7f);
    rest >>= 7;
  } while (rest > 0);
  for (let i = 0; i < size.length - 1; i++) size[i]! |= 0x80;
  return Buffer.concat([u8(tag), Buffer.from(size), body]);
}

/** `esds`: ES_Descriptor > DecoderConfigDescriptor (AAC, audio stream) > DecoderSpecificInfo, SLConfig. */
export function esds(trackId: number, audioSpecificConfig: Buffer): Buffer {
  if (audioSpecificConfig.length < 2) throw new Error('fMP4: the AAC AudioSpecificConfig is missing or shorter than 2 bytes');
  const decoderConfig = descriptor(
    0x04,
    u8(0x40), // objectTypeIndication: MPEG-4 Audio
    u8((0x05 << 2) | 1), // streamType audio, upStream 0, reserved 1
    Buffer.from([0, 0, 0]), // bufferSizeDB: unknown
    u32(0), // maxBitrate: unknown
    u32(0), // avgBitrate: variable
    descriptor(0x05, audioSpecificConfig),
  );
  const es = descriptor(0x03, u16(trackId), u8(0), decoderConfig, descriptor(0x06, u8(0x02)));
  return fullBox('esds', 0, 0, es);
}

/** The audio sample entry (14496-12 12.2.3) for AAC. */
export function mp4a(trackId: number, config: AacTrackConfig): Buffer {
  if (!(config.sampleRate > 0 && config.sampleRate < 65536)) throw new RangeError(`fMP4: AAC sample rate ${config.sampleRate} out of range`);
  return box(
    'mp4a',
    Buffer.alloc(6), // reserved
    u16(1), // data_reference_index
    Buffer.alloc(8), // reserved
    u16(config.channels),
    u16(16), // samplesize
    u16(0), u16(0), // pre_defined, reserved
    u32(config.sampleRate << 16), // 16.16 fixed point
    esds(trackId, config.audioSpecificConfig),
  );
}
