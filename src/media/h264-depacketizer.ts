/**
 * H.264 RTP depacketisation (RFC 6184) for packetization-mode 0 and 1: single NAL unit packets,
 * STAP-A and FU-A. The interleaved mode (STAP-B, MTAP, FU-B) is counted as unsupported; no camera
 * we target uses it over RTSP.
 */
import { NalAssembler, type AccessUnit } from './nal-assembler.js';

export const H264_NAL = {
  SLICE: 1,
  IDR: 5,
  SEI: 6,
  SPS: 7,
  PPS: 8,
  AUD: 9,
  STAP_A: 24,
  STAP_B: 25,
  MTAP16: 26,
  MTAP24: 27,
  FU_A: 28,
  FU_B: 29,
} as const;

export function h264NalType(nal: Buffer): number {
  return nal.length > 0 ? nal[0]! & 0x1f : -1;
}

export class H264Depacketizer extends NalAssembler {
  constructor(onAccessUnit: (au: AccessUnit) => void) {
    super(onAccessUnit);
  }

  protected depacketize(payload: Buffer): void {
    const header = payload[0]!;
    if (header & 0x80) {
      // forbidden_zero_bit: the NAL is known to be corrupt (RFC 6184 5.3); a decoder would choke.
      this.counters.malformed++;
      return;
    }
    const type = header & 0x1f;
    if (type >= 1 && type <= 23) {
      if (this.inFragment) this.abortFragment(true); // the FU's end never came
      this.addNal(payload, 0, payload.length);
      return;
    }
    if (type === H264_NAL.STAP_A) {
      if (this.inFragment) this.abortFragment(true);
      this.parseStapA(payload);
      return;
    }
    if (type === H264_NAL.FU_A) {
      this.parseFuA(payload);
      return;
    }
    if (type >= H264_NAL.STAP_B && type <= H264_NAL.FU_B) {
      this.counters.unsupported++;
      return;
    }
    this.counters.malformed++; // 0, 30, 31 are undefined
  }

  private parseStapA(payload: Buffer): void {
    let offset = 1;
    while (offset + 2 <= payload.length) {
      const size = payload.readUInt16BE(offset);
      offset += 2;
      if (size === 0 || offset + size > payload.length) {
        this.counters.malformed++;
        return;
      }
      this.addNal(payload, offset, offset + size);
      offset += size;
    }
  }

  private parseFuA(payload: Buffer): void {
    if (payload.length < 3) {
      this.counters.malformed++;
      return;
    }
    const fuHeader = payload[1]!;
    const start = (fuHeader & 0x80) !== 0;
    const end = (fuHeader & 0x40) !== 0;
    if (start) {
      // Rebuild the NAL header: F and NRI from the indicator, type from the FU header.
      this.beginFragment((payload[0]! & 0xe0) | (fuHeader & 0x1f), undefined, payload, 2);
      if (end) this.endFragment(); // not allowed by the RFC, but harmless to accept
      return;
    }
    this.continueFragment(payload, 2, end);
  }
}
