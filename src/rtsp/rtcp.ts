/**
 * The RTCP a receiving client needs (RFC 3550): read sender reports (RTP time -> wall clock), keep
 * reception statistics per track, and write receiver reports. Cameras such as live555-based ones
 * end a session that sends no RTCP, and the reports tell the camera's encoder about packet loss.
 */
import { RTCP_BYE, RTCP_RR, RTCP_SDES, RTCP_SR, readSenderReport, type RtcpSenderReport } from '../rtp/rtcp.js';
import { MAX_SEQUENCE_GAP } from '../media/track-receiver.js';

export { RTCP_BYE, RTCP_RR, RTCP_SDES, RTCP_SR };
/** Telling RTCP from RTP on an interleaved RTP channel: the one rule, in `rtp/rtcp.ts`. */
export { isRtcpPacket as looksLikeRtcp } from '../rtp/rtcp.js';

export type SenderReport = RtcpSenderReport;

export interface RtcpSummary {
  senderReports: SenderReport[];
  /** SSRCs that said goodbye. */
  byes: number[];
}

/** Walks a compound RTCP packet; stops quietly at the first malformed part. */
export function parseRtcp(buf: Buffer): RtcpSummary {
  const out: RtcpSummary = { senderReports: [], byes: [] };
  let off = 0;
  while (off + 4 <= buf.length) {
    if (buf[off]! >> 6 !== 2) break;
    const count = buf[off]! & 0x1f;
    const pt = buf[off + 1]!;
    const size = (buf.readUInt16BE(off + 2) + 1) * 4;
    if (off + size > buf.length) break;
    if (pt === RTCP_SR && size >= 28) {
      out.senderReports.push(readSenderReport(buf, off));
    } else if (pt === RTCP_BYE) {
      for (let i = 0; i < count && off + 8 + i * 4 <= off + size; i++) out.byes.push(buf.readUInt32BE(off + 4 + i * 4));
    }
    off += size;
  }
  return out;
}

/**
 * The same bound as the Source's receiver: a jump this far is a resync, believed only when the next
 * packet follows it. The counting itself stays here: receiver reports need RFC 3550's extended
 * sequence numbers and a reset on a new SSRC, where the Source holds the packet until confirmed.
 */
const MAX_DROPOUT = MAX_SEQUENCE_GAP;
const MAX_MISORDER = 100;
const SEQ_MOD = 0x10000;

/** Reception statistics of one source (RFC 3550 appendix A.1, A.3 and A.8). */
export class ReceptionStats {
  ssrc: number | undefined;
  private baseSeq = 0;
  private maxSeq = 0;
  private cycles = 0;
  private badSeq = SEQ_MOD + 1;
  private received = 0;
  private expectedPrior = 0;
  private receivedPrior = 0;
  private jitter = 0;
  private lastTransit: number | undefined;
  private lastSrMiddle = 0;
  private lastSrAt: number | undefined;

  constructor(private readonly clockRate: number) {}

  get packetsReceived(): number {
    return this.received;
  }

  /** Call for every RTP packet; `arrivalMs` from a monotonic clock. */
  onRtp(packet: Buffer, arrivalMs: number): void {
    if (packet.length < 12) return;
    const ssrc = packet.readUInt32BE(8);
    const seq = packet.readUInt16BE(2);
    const timestamp = packet.readUInt32BE(4);
    if (this.ssrc !== ssrc) {
      // A new source (camera restarted its encoder): start over.
      this.ssrc = ssrc;
      this.resetSequence(seq);
      this.received = 0;
      this.expectedPrior = 0;
      this.receivedPrior = 0;
      this.jitter = 0;
      this.lastTransit = undefined;
      this.lastSrAt = undefined;
    } else if (!this.updateSequence(seq)) {
      return;
    }
    this.received++;
    const arrival = (arrivalMs * this.clockRate) / 1000;
    const transit = arrival - timestamp;
    if (this.lastTransit !== undefined) {
      let d = transit - this.lastTransit;
      // RTP timestamps wrap at 2^32: take the difference modulo 2^32, signed.
      d = ((((d + 0x80000000) % 0x100000000) + 0x100000000) % 0x100000000) - 0x80000000;
      this.jitter += (Math.abs(d) - this.jitter) / 16;
    }
    this.lastTransit = transit;
  }

  onSenderReport(report: SenderReport, arrivalMs: number): void {
    if (this.ssrc !== undefined && report.ssrc !== this.ssrc) return;
    this.lastSrMiddle = report.ntpMiddle;
    this.lastSrAt = arrivalMs;
  }

  private resetSequence(seq: number): void {
    this.baseSeq = seq;
    this.maxSeq = seq;
    this.cycles = 0;
    this.badSeq = SEQ_MOD + 1;
  }

  /** Returns false for a packet that should not be counted (a jump not yet confirmed). */
  private updateSequence(seq: number): boolean {
    const delta = (seq - this.maxSeq + SEQ_MOD) % SEQ_MOD;
    if (delta < MAX_DROPOUT) {
      if (seq < this.maxSeq) this.cycles += SEQ_MOD;
      this.maxSeq = seq;
    } else if (delta <= SEQ_MOD - MAX_MISORDER) {
      // A big jump: believe it only when the next packet follows it.
      if (seq === this.badSeq) {
        this.resetSequence(seq);
        this.received = 0;
        this.expectedPrior = 0;
        this.receivedPrior = 0;
      } else {
        this.badSeq = (seq + 1) % SEQ_MOD;
        return false;
      }
    }
    // Otherwise a duplicate or reordered packet: counted, max unchanged.
    return true;
  }

  /** The 24-byte report block, or undefined before the first packet. */
  reportBlock(nowMs: number): Buffer | undefined {
    if (this.ssrc === undefined) return undefined;
    const extendedMax = this.cycles + this.maxSeq;
    const expected = extendedMax - this.baseSeq + 1;
    const lost = expected - this.received;
    const expectedInterval = expected - this.expectedPrior;
    const receivedInterval = this.received - this.receivedPrior;
    this.expectedPrior = expected;
    this.receivedPrior = this.received;
    const lostInterval = expectedInterval - receivedInterval;
    const fraction = expectedInterval <= 0 || lostInterval <= 0 ? 0 : Math.min(255, Math.floor((lostInterval << 8) / expectedInterval));
    const cumulative = Math.max(-0x800000, Math.min(0x7fffff, lost));
    const block = Buffer.alloc(24);
    block.writeUInt32BE(this.ssrc, 0);
    block.writeUInt8(fraction, 4);
    block.writeUIntBE(cumulative & 0xffffff, 5, 3);
    block.writeUInt32BE(extendedMax >>> 0, 8);
    block.writeUInt32BE(Math.min(0xffffffff, Math.floor(this.jitter)), 12);
    if (this.lastSrAt !== undefined) {
      block.writeUInt32BE(this.lastSrMiddle, 16);
      block.writeUInt32BE(Math.min(0xffffffff, Math.floor(((nowMs - this.lastSrAt) / 1000) * 65536)), 20);
    }
    return block;
  }
}

/** A compound RTCP packet: one receiver report (with up to 31 blocks) and an SDES CNAME (RFC 3550 6.1). */
export function buildReceiverReport(senderSsrc: number, blocks: ReadonlyArray<Buffer>, cname: string): Buffer {
  const rb = blocks.slice(0, 31);
  const rr = Buffer.alloc(8 + rb.length * 24);
  rr.writeUInt8(0x80 | rb.length, 0);
  rr.writeUInt8(RTCP_RR, 1);
  rr.writeUInt16BE(rr.length / 4 - 1, 2);
  rr.writeUInt32BE(senderSsrc >>> 0, 4);
  rb.forEach((b, i) => b.copy(rr, 8 + i * 24));

  const name = Buffer.from(cname.slice(0, 255), 'utf8').subarray(0, 255);
  // Chunk: SSRC, item (type 1, length, text), then at least one zero byte, padded to 32 bits.
  const chunkLength = Math.ceil((4 + 2 + name.length + 1) / 4) * 4;
  const sdes = Buffer.alloc(4 + chunkLength);
  sdes.writeUInt8(0x81, 0);
  sdes.writeUInt8(RTCP_SDES, 1);
  sdes.writeUInt16BE(sdes.length / 4 - 1, 2);
  sdes.writeUInt32BE(senderSsrc >>> 0, 4);
  sdes.writeUInt8(1, 8);
  sdes.writeUInt8(name.length, 9);
  name.copy(sdes, 10);
  return Buffer.concat([rr, sdes]);
}
