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
import { frameBatch, NativeStreamWriter, type FrameBatch, type NativeTarget, type SendFrameResult } from '../rtp/native-fanout.js';
import type { RtpProtector } from '../rtp/srtp-writer.js';
import { buildSenderReport } from '../rtp/rtcp.js';
import { NackHistory } from './nack-history.js';
import type { RetransmissionBudget } from './retransmission-budget.js';

/** What a NACK's answer must respect (see `OutboundStream.retransmission`). */
export interface RetransmissionLimits {
  readonly minIntervalMs: number;
  readonly maxAgeMs: number;
  readonly budget: RetransmissionBudget;
}

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
  /** NACKed packets not resent because they were older than a retransmission's `maxAgeMs`. */
  retransmissionsTooOld = 0;
  /** Last frame sent in real time (not a replay), for sender reports. */
  private lastLiveTimestamp: number | undefined;
  private lastLiveWallMs = 0;
  /** The frames kept for NACKs (nack-history.ts); undefined when the stream keeps none (audio). */
  private readonly history: NackHistory | undefined;

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
    this.history = options.historySize > 0 ? new NackHistory(options.historySize) : undefined;
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

  /**
   * Takes a frame's sequence numbers (`first`, +1, ... mod 2^16, returned), counts its packets for
   * the sender reports and keeps it for NACKs. Every packet takes its number and its place in the
   * history even if the socket then refuses it, as with a datagram lost on the way.
   */
  reserve(timestamp: number, packets: readonly PacketizedPayload[]): number {
    return this.reserveBatch(timestamp, packets, frameBatch(packets));
  }

  /** Protects one packet of a reserved frame (direct path), as header / encrypted payload / tag. */
  protect(sequenceNumber: number, marker: boolean, timestamp: number, payload: Buffer): Buffer[] {
    // Only called when a writer exists (direct path); the caller guarantees it.
    return (this.writer as RtpProtector).protectParts(this.payloadType, marker, sequenceNumber, timestamp, payload);
  }

  /** True when whole frames can go out in one native call (`sendFrame`). */
  get sendsFrames(): boolean {
    return this.writer instanceof NativeStreamWriter;
  }

  /** Reserves a frame (see `reserve`), then protects and sends it in one sendmmsg (native path; check `sendsFrames`). */
  sendFrame(target: NativeTarget, timestamp: number, packets: readonly PacketizedPayload[]): Readonly<SendFrameResult> {
    const batch = frameBatch(packets);
    const first = this.reserveBatch(timestamp, packets, batch);
    return (this.writer as NativeStreamWriter).sendFrame(target, this.payloadType, timestamp, first, batch);
  }

  /** `reserve`, with the frame's batch (built once per frame for every viewer) already at hand. */
  private reserveBatch(timestamp: number, packets: readonly PacketizedPayload[], batch: FrameBatch): number {
    const first = this.sequenceNumber;
    this.sequenceNumber = (first + packets.length) & 0xffff;
    this.packetsSent += packets.length;
    this.octetsSent += batch.payloadBytes;
    this.history?.record(first, timestamp, packets);
    return first;
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
   * An earlier packet protected again (a NACK's answer), or undefined when it is not to be resent:
   * no longer kept; older than `limits.maxAgeMs` behind the newest frame, where the receiver has
   * given up on it (counted in `retransmissionsTooOld`); already resent within
   * `limits.minIntervalMs` (receivers repeat their NACKs, and answering each repeat turns a loss
   * burst into a retransmission storm that makes the loss worse); or over the viewer's budget.
   */
  retransmission(seq: number, now: number, limits: RetransmissionLimits): Buffer[] | undefined {
    const history = this.history;
    if (!history || !this.writer) return undefined;
    const packet = history.find(seq);
    if (!packet) return undefined;
    if (((history.newestTimestamp - packet.timestamp) | 0) > (limits.maxAgeMs * this.clockRate) / 1000) {
      this.retransmissionsTooOld++;
      return undefined;
    }
    if (history.resentWithin(seq, now, limits.minIntervalMs) || !limits.budget.spend(packet.payload.length)) return undefined;
    history.noteResent(seq, now);
    return this.writer.reprotectParts(this.payloadType, packet.marker, seq, packet.timestamp, packet.payload);
  }

  /** Drops retained references (on close) so they can be collected at once. */
  clearHistory(): void {
    this.history?.clear();
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
