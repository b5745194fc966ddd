/**
 * Bit-level reading for H.264/H.265 parameter sets (exp-Golomb codes). Only used when a parameter
 * set arrives (rarely), so it favours clarity over speed; it throws `BitstreamError` on overrun,
 * which the SPS parsers catch and turn into "unparseable".
 */

export class BitstreamError extends Error {}

/** Removes emulation-prevention bytes (00 00 03 -> 00 00) so the RBSP can be read bit by bit. */
export function unescapeRbsp(nal: Buffer): Buffer {
  let zeros = 0;
  let needsCopy = false;
  for (let i = 0; i < nal.length; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      needsCopy = true;
      break;
    }
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (!needsCopy) return nal;
  const out = Buffer.allocUnsafe(nal.length);
  let length = 0;
  zeros = 0;
  for (let i = 0; i < nal.length; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[length++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, length);
}

export class BitReader {
  private bit = 0;

  constructor(private readonly data: Buffer, byteOffset = 0) {
    this.bit = byteOffset * 8;
  }

  get bitsLeft(): number {
    return this.data.length * 8 - this.bit;
  }

  u1(): number {
    if (this.bit >= this.data.length * 8) throw new BitstreamError('read past end of bitstream');
    const value = (this.data[this.bit >> 3]! >> (7 - (this.bit & 7))) & 1;
    this.bit++;
    return value;
  }

  flag(): boolean {
    return this.u1() === 1;
  }

  /** Reads up to 32 bits as an unsigned number. */
  u(count: number): number {
    let value = 0;
    for (let i = 0; i < count; i++) value = value * 2 + this.u1();
    return value;
  }

  skip(count: number): void {
    if (this.bit + count > this.data.length * 8) throw new BitstreamError('skip past end of bitstream');
    this.bit += count;
  }

  /** Unsigned exp-Golomb. */
  ue(): number {
    let leadingZeros = 0;
    while (this.u1() === 0) {
      leadingZeros++;
      // 32 leading zeros would overflow the 32-bit range the syntax allows; treat as corrupt.
      if (leadingZeros > 31) throw new BitstreamError('exp-Golomb code too long');
    }
    return 2 ** leadingZeros - 1 + this.u(leadingZeros);
  }

  /** Signed exp-Golomb. */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }
}
