/**
 * G.711 (ITU-T G.711) to 16-bit linear PCM, by a 256-entry table per law. A G.711 camera's audio has
 * to become PCM before an encoder can make AAC of it (HomeKit Secure Video records AAC only); doing
 * it here costs a table look-up per sample and lets the caller count samples and fill RTP-timestamp
 * gaps exactly, which an ffmpeg reading G.711 from a pipe could not know about. `pcmToG711` goes the
 * other way, for sound sent to a camera's speaker.
 */

/** µ-law byte to linear (ITU-T G.711 table 2a; the same values ffmpeg's pcm_mulaw decoder gives). */
function mulawToLinear(byte: number): number {
  const u = ~byte & 0xff;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

/** A-law byte to linear (ITU-T G.711 table 1a); in A-law a set sign bit means positive. */
function alawToLinear(byte: number): number {
  const a = byte ^ 0x55;
  const mantissa = a & 0x0f;
  const exponent = (a >> 4) & 0x07;
  const magnitude = exponent === 0 ? (mantissa << 4) + 8 : ((mantissa << 4) + 0x108) << (exponent - 1);
  return a & 0x80 ? magnitude : -magnitude;
}

const MULAW = Int16Array.from({ length: 256 }, (_, i) => mulawToLinear(i));
const ALAW = Int16Array.from({ length: 256 }, (_, i) => alawToLinear(i));

export type G711Codec = 'PCMU' | 'PCMA';

/** Decodes G.711 bytes (one per sample) into signed 16-bit little-endian PCM (`s16le`). */
export function g711ToPcm(codec: G711Codec, payload: Uint8Array): Buffer {
  const table = codec === 'PCMU' ? MULAW : ALAW;
  const out = Buffer.allocUnsafe(payload.length * 2);
  for (let i = 0; i < payload.length; i++) out.writeInt16LE(table[payload[i]!]!, i * 2);
  return out;
}

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
 * `g711ToPcm`, for what is sent to a camera's speaker (the ONVIF back-channel) and for tests.
 */
export function pcmToG711(codec: G711Codec, samples: Int16Array): Buffer {
  const encode = codec === 'PCMU' ? linearToMulaw : linearToAlaw;
  const out = Buffer.allocUnsafe(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = encode(samples[i]!);
  return out;
}
