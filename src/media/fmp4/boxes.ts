/**
 * ISO base media file format (ISO/IEC 14496-12) box writing: a box is a 32-bit size, a
 * four-character type and its payload; a "full box" adds a version byte and 24 bits of flags.
 * Every box the fMP4 muxer writes is made here, so the size field is computed in one place.
 */

export function u8(value: number): Buffer {
  return Buffer.from([value & 0xff]);
}

export function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value & 0xffff);
  return b;
}

export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value >>> 0);
  return b;
}

export function u64(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(value))));
  return b;
}

export function fourcc(type: string): Buffer {
  if (!/^[\x20-\x7e]{4}$/.test(type)) throw new RangeError(`not a four-character code: ${JSON.stringify(type)}`);
  return Buffer.from(type, 'latin1');
}

export function box(type: string, ...payload: Buffer[]): Buffer {
  const size = 8 + payload.reduce((sum, part) => sum + part.length, 0);
  return Buffer.concat([u32(size), fourcc(type), ...payload]);
}

export function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  return box(type, u8(version), u8(flags >> 16), u16(flags), ...payload);
}

/** The 3x3 transformation matrix of `mvhd`/`tkhd`: identity, in 16.16 and 2.30 fixed point. */
export const UNITY_MATRIX = Buffer.concat(
  [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000].map((v) => u32(v)),
);
