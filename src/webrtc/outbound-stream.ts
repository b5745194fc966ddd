/**
 * One viewer's outgoing RTP stream (one SSRC): its own sequence numbers and timeline over the
 * Source's shared, already-cut packets. Nothing here parses media; each packet costs a 12-byte
 * header write and the SRTP protect.
 *
 * Timeline. Output timestamps are `frame.timestamp + offset`, the offset chosen per viewer so its
 * timeline starts at a random point where it joined. Frames that arrive *late* (the GOP cache the
 * Source replays on join or on a keyframe request, up to a few seconds old) are squeezed into the
 * present: each gets `frame.timestamp + offset + age`, kept strictly increasing. A browser then
 * decodes the replayed GOP at once and shows the live picture, instead of scheduling the old frames
 * at their original pace and staying seconds behind for good.
 *
 * Sequence numbers are a plain per-viewer counter: frames this viewer skipped (congestion cut-back
 * to the next keyframe) leave no gap, so the browser does not NACK packets that were never sent.
 */
import { randomBytes } from 'node:crypto';
import type { MediaFrame, PacketizedPayload } from '../media/types.js';
import { frameBatch, NativeStreamWriter, type NativeTarget, type SendFrameResult } from '../rtp/native-fanout.js';
import type { RtpProtector } from '../rtp/srtp-writer.js';
import { buildSenderReport } from '../rtp/rtcp.js';

export interface OutboundStreamOptions {
  kind: 'video' | 'audio';
  ssrc: number;
  payloadType: number;
  clockRate: number;
  /** Encrypts packets; undefined when packets go through werift's own sender instead. */
  writer?: RtpProtector;
  /** Protected packets kept for NACK retransmission (0 = none). */
  historySize: number;
}

export class OutboundStream {
  readonly kind: 'video' | 'audio';
  readonly ssrc: number;
  readonly payloadType: number;
  readonly clockRate: number;
  private readonly writer: RtpProtector | undefined;
  /** Next sequence number to use. */
  sequenceNumber: number;
  private offset = 0;
  private lastTimestamp = 0;
  private started = false;
  /** True until a keyframe was sent (and again after a congestion cut-back). */
  waitingForKeyframe: boolean;
  packetsSent = 0;
  /** Payload bytes sent, as RTCP sender reports count them. */
  octetsSent = 0;
  framesSent = 0;
  /** Last frame sent in real time (not a replay), for sender reports. */
  private lastLiveTimestamp: number | undefined;
  private lastLiveWallMs = 0;
  /**
   * NACK history. It keeps references to the Source's shared payloads, not protected copies:
   * protecting again with the same (SSRC, ROC, sequence number) gives the same bytes, and a
   * per-viewer copy of every packet would survive young-generation GC and be promoted, which made
   * garbage collection as costly as the UDP sends themselves at 50 viewers.
   */
  private readonly historySeq: Uint16Array;
  private readonly historyTimestamp: Uint32Array;
  private readonly historyMarker: Uint8Array;
  /** undefined: an empty slot. */
  private readonly historyPayload: Array<Buffer | undefined>;
  /**
   * When a kept packet was last retransmitted (a receiver repeats its NACKs), by slot, for the
   * packets ever resent only: an array beside the others cost 16 KiB per watching viewer for what
   * is, on a healthy network, never read.
   */
  private readonly historyResentAt = new Map<number, number>();

  constructor(options: OutboundStreamOptions) {
    this.kind = options.kind;
    this.ssrc = options.ssrc;
    this.payloadType = options.payloadType;
    this.clockRate = options.clockRate;
    this.writer = options.writer;
    // RFC 3550: random initial sequence number; kept in the lower half so the SRTP rollover
    // counter the receiver guesses (0) holds for the first ~30 000 packets without ambiguity.
    this.sequenceNumber = randomBytes(2).readUInt16BE(0) & 0x7fff;
    this.waitingForKeyframe = options.kind === 'video';
    this.historySeq = new Uint16Array(options.historySize);
    this.historyTimestamp = new Uint32Array(options.historySize);
    this.historyMarker = new Uint8Array(options.historySize);
    this.historyPayload = new Array<Buffer | undefined>(options.historySize);
  }

  /**
   * The output timestamp for a frame of age `ageMs` (now - frame.receivedAt). Frames older than
   * `staleMs` are replays and are moved to the present (see the file comment).
   */
  timestampFor(frame: MediaFrame, ageMs: number, staleMs: number): number {
    const stale = ageMs > staleMs;
    const ageTicks = stale ? Math.round((ageMs * this.clockRate) / 1000) : 0;
    if (!this.started) {
      this.started = true;
      const base = randomBytes(4).readUInt32BE(0);
      this.offset = (base - frame.timestamp - ageTicks) >>> 0;
      this.lastTimestamp = base;
      return base;
    }
    let ts = (frame.timestamp + this.offset + ageTicks) >>> 0;
    if (((ts - this.lastTimestamp) | 0) <= 0) ts = (this.lastTimestamp + 1) >>> 0;
    this.lastTimestamp = ts;
    return ts;
  }

  /** Remembers the wall-clock time of a frame sent live, so sender reports map RTP time to NTP. */
  noteLive(timestamp: number, wallMs: number): void {
    this.lastLiveTimestamp = timestamp;
    this.lastLiveWallMs = wallMs;
  }

  /** Builds and protects the next packet (direct path), as header / encrypted payload / tag. */
  protect(marker: boolean, timestamp: number, payload: Buffer): Buffer[] {
    const seq = this.take(marker, timestamp, payload);
    // Only called when a writer exists (direct path); the caller guarantees it.
    return (this.writer as RtpProtector).protectParts(this.payloadType, marker, seq, timestamp, payload);
  }

  /** True when whole frames can go out in one native call (`sendFrame`). */
  get sendsFrames(): boolean {
    return this.writer instanceof NativeStreamWriter;
  }

  /**
   * Protects a frame's packets and sends them in one sendmmsg (native path; check `sendsFrames`).
   * Every packet takes its sequence number and its place in the NACK history even if the socket
   * refused it, as with a datagram lost on the way.
   */
  sendFrame(target: NativeTarget, timestamp: number, packets: readonly PacketizedPayload[]): Readonly<SendFrameResult> {
    const first = this.sequenceNumber;
    for (let i = 0; i < packets.length; i++) this.take(packets[i]!.marker, timestamp, packets[i]!.payload);
    return (this.writer as NativeStreamWriter).sendFrame(target, this.payloadType, timestamp, first, frameBatch(packets));
  }

  /** The next sequence number, counted and remembered for NACKs. */
  private take(marker: boolean, timestamp: number, payload: Buffer): number {
    const seq = this.sequenceNumber;
    this.sequenceNumber = (seq + 1) & 0xffff;
    this.packetsSent++;
    this.octetsSent += payload.length;
    const size = this.historySeq.length;
    if (size > 0) {
      const slot = seq % size;
      this.historySeq[slot] = seq;
      this.historyTimestamp[slot] = timestamp;
      this.historyMarker[slot] = marker ? 1 : 0;
      this.historyPayload[slot] = payload;
      if (this.historyResentAt.size !== 0) this.historyResentAt.delete(slot);
    }
    return seq;
  }

  /** Takes the next sequence number without protecting (werift path). */
  nextSequence(payloadBytes: number): number {
    const seq = this.sequenceNumber;
    this.sequenceNumber = (seq + 1) & 0xffff;
    this.packetsSent++;
    this.octetsSent += payloadBytes;
    return seq;
  }

  /**
   * An earlier packet protected again (NACK answer), if still in the history and not already
   * resent within `minIntervalMs`: receivers repeat NACKs, and answering each repeat turns a loss
   * burst into a retransmission storm that makes the loss worse.
   */
  retransmission(seq: number, now: number, minIntervalMs: number): Buffer[] | undefined {
    const size = this.historySeq.length;
    if (size === 0 || !this.writer) return undefined;
    const slot = seq % size;
    const payload = this.historyPayload[slot];
    if (this.historySeq[slot] !== seq || !payload) return undefined;
    const resentAt = this.historyResentAt.get(slot);
    if (resentAt !== undefined && now - resentAt < minIntervalMs) return undefined;
    this.historyResentAt.set(slot, now);
    return this.writer.reprotectParts(this.payloadType, this.historyMarker[slot] === 1, seq, this.historyTimestamp[slot]!, payload);
  }

  /** Drops retained references (on close) so they can be collected at once. */
  clearHistory(): void {
    this.historyPayload.fill(undefined);
    this.historyResentAt.clear();
  }

  /**
   * An RTCP sender report (SR + SDES CNAME) for now, or undefined before anything was sent live.
   * It maps the RTP clock to the wall clock, for the receiver's A/V sync.
   */
  senderReport(nowWallMs: number, cname: string): Buffer | undefined {
    if (this.lastLiveTimestamp === undefined) return undefined;
    const elapsedTicks = Math.round(((nowWallMs - this.lastLiveWallMs) * this.clockRate) / 1000);
    return buildSenderReport({
      ssrc: this.ssrc,
      ntpMs: nowWallMs,
      rtpTimestamp: (this.lastLiveTimestamp + elapsedTicks) >>> 0,
      packetCount: this.packetsSent,
      octetCount: this.octetsSent,
      cname,
    });
  }
}
