// G.711 encoding (ITU-T G.711), for tests that send a known tone to a camera's back-channel.
import type { G711Codec } from '../../src/media/g711.js';

/** Linear to µ-law (ITU-T G.711: the interval the sample falls in; the decoder gives its middle). */
function linearToMulaw(sample: number): number {
  let magnitude = sample;
  let sign = 0;
  if (magnitude < 0) {
    magnitude = -magnitude;
    sign = 0x80;
  }
  magnitude = Math.min(magnitude, 32635) + 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (magnitude & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (magnitude >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Linear to A-law (ITU-T G.711); 13-bit magnitude, segments of doubling width. */
function linearToAlaw(sample: number): number {
  let value = sample >> 3;
  let mask = 0xd5;
  if (value < 0) {
    mask = 0x55;
    value = -value - 1;
  }
  let segment = 0;
  while (segment < 8 && value >= 0x20 << segment) segment++;
  if (segment >= 8) return 0x7f ^ mask;
  const mantissa = (segment < 2 ? value >> 1 : value >> segment) & 0x0f;
  return ((segment << 4) | mantissa) ^ mask;
}

/**
 * Encodes 16-bit linear PCM samples into G.711 bytes (one per sample): the other way round of
 * `g711ToPcm`, for tones a test sends to a camera's speaker. (The plugin's own talk path has ffmpeg
 * encode G.711; src/ffmpeg/talk-args.ts.)
 */
export function pcmToG711(codec: G711Codec, samples: Int16Array): Buffer {
  const encode = codec === 'PCMU' ? linearToMulaw : linearToAlaw;
  const out = Buffer.allocUnsafe(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = encode(samples[i]!);
  return out;
}
