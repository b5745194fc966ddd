/**
 * G.711 (ITU-T G.711) to 16-bit linear PCM, by a 256-entry table per law. A G.711 camera's audio has
 * to become PCM before an encoder can make AAC of it (HomeKit Secure Video records AAC only); doing
 * it here costs a table look-up per sample and lets the caller count samples and fill RTP-timestamp
 * gaps exactly, which an ffmpeg reading G.711 from a pipe could not know about.
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
