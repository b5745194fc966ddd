/**
 * H.265 RTP depacketisation (RFC 7798): single NAL unit packets, aggregation packets (AP) and
 * fragmentation units (FU), with the optional DONL/DOND fields when the SDP announces
 * sprop-max-don-diff > 0. Browsers never receive H.265 from us; this exists so the loopback
 * re-stream and a transcoder get whole access units and know where the keyframes are.
 */
import { NalAssembler, type AccessUnit } from './nal-assembler.js';

export const H265_NAL = {
  /** IRAP pictures are the 16..23 range; 22 and 23 are reserved IRAP types. */
  BLA_W_LP: 16,
  IDR_W_RADL: 19,
  IDR_N_LP: 20,
  CRA: 21,
  IRAP_LAST: 23,
  VPS: 32,
  SPS: 33,
  PPS: 34,
  AUD: 35,
  PREFIX_SEI: 39,
  AP: 48,
  FU: 49,
  PACI: 50,
} as const;

export function h265NalType(nal: Buffer): number {
  return nal.length > 1 ? (nal[0]! >> 1) & 0x3f : -1;
}

/** IRAP (BLA, IDR, CRA): a decoder can start here. */
export function isH265Irap(type: number): boolean {
  return type >= H265_NAL.BLA_W_LP && type <= H265_NAL.IRAP_LAST;
}

export class H265Depacketizer extends NalAssembler {
  /** `withDon`: the stream carries DONL/DOND fields (sprop-max-don-diff > 0). */
  constructor(onAccessUnit: (au: AccessUnit) => void, private readonly withDon = false) {
    super(onAccessUnit);
  }

  protected depacketize(payload: Buffer): void {
    if (payload.length < 3 || payload[0]! & 0x80) {
      this.counters.malformed++;
      return;
    }
    const type = (payload[0]! >> 1) & 0x3f;
    if (type < H265_NAL.AP) {
      if (this.inFragment) this.abortFragment(true);
      this.addNal(payload, 0, payload.length);
      return;
    }
    if (type === H265_NAL.AP) {
      if (this.inFragment) this.abortFragment(true);
      this.parseAp(payload);
      return;
    }
    if (type === H265_NAL.FU) {
      this.parseFu(payload);
      return;
    }
    this.counters.unsupported++; // PACI and reserved types
  }

  private parseAp(payload: Buffer): void {
    let offset = 2;
    let first = true;
    while (offset < payload.length) {
      if (this.withDon) offset += first ? 2 : 1; // DONL before the first unit, DOND before the others
      first = false;
      if (offset + 2 > payload.length) {
        this.counters.malformed++;
        return;
      }
      const size = payload.readUInt16BE(offset);
      offset += 2;
      if (size < 2 || offset + size > payload.length) {
        this.counters.malformed++;
        return;
      }
      this.addNal(payload, offset, offset + size);
      offset += size;
    }
  }

  private parseFu(payload: Buffer): void {
    const fuHeader = payload[2]!;
    const start = (fuHeader & 0x80) !== 0;
    const end = (fuHeader & 0x40) !== 0;
    if (start) {
      const dataStart = 3 + (this.withDon ? 2 : 0); // DONL only rides on the first fragment
      if (dataStart > payload.length) {
        this.counters.malformed++;
        return;
      }
      // Rebuild the 2-byte NAL header: F, LayerId and TID from the payload header, type from the FU header.
      this.beginFragment((payload[0]! & 0x81) | ((fuHeader & 0x3f) << 1), payload[1]!, payload, dataStart);
      if (end) this.endFragment();
      return;
    }
    this.continueFragment(payload, 3, end);
  }
}
