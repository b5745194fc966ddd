/**
 * Reading what a receiver says back about a stream it is sent (RFC 3550, 4585, 5104): report
 * blocks in sender and receiver reports (loss), generic NACKs (retransmission), PLI and FIR
 * (keyframe). Straight from the bytes, into a visitor: no object per packet, so reading a
 * viewer's RTCP costs nothing the garbage collector has to follow up.
 */
import { RTCP_FMT_FIR, RTCP_FMT_GENERIC_NACK, RTCP_FMT_PLI, RTCP_PSFB, RTCP_RR, RTCP_RTPFB, RTCP_SR } from './rtcp.js';

export interface RtcpFeedbackVisitor {
  /** One report block: the reporter's loss figure about `ssrc` (0..1). */
  onReportBlock(ssrc: number, fractionLost: number): void;
  /** A generic NACK about `mediaSsrc`; `lost` holds the sequence numbers asked for again. */
  onNack(mediaSsrc: number, lost: number[]): void;
  /** A keyframe request: PLI about `mediaSsrc`, or one FIR entry naming it. */
  onKeyframeRequest(mediaSsrc: number, kind: 'PLI' | 'FIR'): void;
}

export interface RtcpReadResult {
  /** False when the compound packet breaks RFC 3550's framing; what came before was still read. */
  wellFormed: boolean;
  /** The compound carried a sender report: the peer sends media too (a viewer talking). */
  hadSenderReport: boolean;
}

/** Walks a compound RTCP packet (plaintext) and tells the visitor what it asks for. */
export function readRtcpFeedback(packet: Buffer, visitor: RtcpFeedbackVisitor): RtcpReadResult {
  let offset = 0;
  let hadSenderReport = false;
  while (offset + 4 <= packet.length) {
    const first = packet[offset]!;
    if (first >> 6 !== 2) return { wellFormed: false, hadSenderReport };
    const count = first & 0x1f;
    const type = packet[offset + 1]!;
    const length = (packet.readUInt16BE(offset + 2) + 1) * 4;
    const end = offset + length;
    if (end > packet.length) return { wellFormed: false, hadSenderReport };
    switch (type) {
      case RTCP_SR:
        hadSenderReport = true;
        readReportBlocks(packet, offset + 28, end, count, visitor);
        break;
      case RTCP_RR:
        readReportBlocks(packet, offset + 8, end, count, visitor);
        break;
      case RTCP_RTPFB:
        if (count === RTCP_FMT_GENERIC_NACK && length >= 16) visitor.onNack(packet.readUInt32BE(offset + 8), readNackLost(packet, offset + 12, end));
        break;
      case RTCP_PSFB:
        if (count === RTCP_FMT_PLI && length >= 12) visitor.onKeyframeRequest(packet.readUInt32BE(offset + 8), 'PLI');
        else if (count === RTCP_FMT_FIR) {
          // RFC 5104 4.3.1: the media SSRC field is unused; each 8-byte entry names an SSRC.
          for (let entry = offset + 12; entry + 8 <= end; entry += 8) visitor.onKeyframeRequest(packet.readUInt32BE(entry), 'FIR');
        }
        break;
      default:
        break;
    }
    offset = end;
  }
  return { wellFormed: offset === packet.length, hadSenderReport };
}

function readReportBlocks(packet: Buffer, start: number, end: number, count: number, visitor: RtcpFeedbackVisitor): void {
  for (let i = 0, block = start; i < count && block + 24 <= end; i++, block += 24) {
    visitor.onReportBlock(packet.readUInt32BE(block), packet[block + 4]! / 256);
  }
}

/** RFC 4585 6.2.1: each entry is a packet id and a bitmask of the 16 after it. */
function readNackLost(packet: Buffer, start: number, end: number): number[] {
  const lost: number[] = [];
  for (let entry = start; entry + 4 <= end; entry += 4) {
    const pid = packet.readUInt16BE(entry);
    const mask = packet.readUInt16BE(entry + 2);
    lost.push(pid);
    for (let bit = 0; bit < 16; bit++) {
      if ((mask >> bit) & 1) lost.push((pid + bit + 1) & 0xffff);
    }
  }
  return lost;
}
