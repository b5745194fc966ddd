/**
 * The receiving side of one track of one camera session: RTP parse, SSRC and sequence tracking,
 * the reorder window, and loss/late/stray accounting. What comes out is the packets in sequence
 * order, each flagged when packets were lost just before it; what they mean (depacketising,
 * timing) is the Source's business. Kept apart from the Source so that the rules about which
 * packet continues the stream can be read, and tested, in one place.
 */
import type { RtpPacketView } from './types.js';
import { parseRtp, seqDelta } from './rtp.js';
import { ReorderBuffer } from './reorder-buffer.js';
import type { TimerHandle, TimerSeam } from './timers.js';

/** The counters a receiver adds to; they outlive the session (the Source's per-kind state). */
export interface ReceptionCounters {
  packetsReceived: number;
  packetsLost: number;
  packetsLate: number;
  packetsMalformed: number;
}

export interface TrackReceiverOptions {
  /** The payload type the SDP gave this track; anything else is counted as malformed. */
  payloadType: number;
  counters: ReceptionCounters;
  /** How long packets after a hole wait for the missing one (0 = never wait). */
  reorderWaitMs: number;
  now: () => number;
  timers: TimerSeam;
  /** An in-sequence packet, already counted; `lossBefore` when packets were lost just before it. */
  deliver(rtp: RtpPacketView, lossBefore: boolean, now: number): void;
  /**
   * The camera restarted its stream inside the session (a new SSRC, or a sequence jump the next
   * packet confirmed). Called after what waited from the old stream went on, before the first
   * packet of the new one; `ssrcChanged` when the timestamp base changed with it.
   */
  onRestart(ssrcChanged: boolean): void;
}

/** A sequence jump larger than this is a resync (e.g. camera restart on the same SSRC), not loss. */
export const MAX_SEQUENCE_GAP = 3000;
/** A hole wider than this is loss for sure (a burst, or a camera that skipped): not worth waiting for. */
const MAX_REORDER_GAP = 64;

export class TrackReceiver {
  private ssrc = 0;
  private hasSsrc = false;
  private expectedSequence = -1;
  /** A packet that does not continue the stream (new SSRC, far sequence jump), until the next one confirms it. */
  private held: RtpPacketView | undefined;
  /** Packets that arrived ahead of a hole, waiting for it to be filled (UDP reordering). */
  private readonly reorder = new ReorderBuffer();
  /** Gives up on the hole `reorderWaitMs` after the first packet started waiting. */
  private reorderTimer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly options: TrackReceiverOptions) {}

  /** One packet as the upstream delivered it; `now` is its arrival time. */
  push(packet: Buffer, now: number): void {
    const counters = this.options.counters;
    const rtp = parseRtp(packet);
    if (typeof rtp === 'string' || rtp.payloadType !== this.options.payloadType) {
      counters.packetsMalformed++;
      return;
    }
    if (!this.hasSsrc) {
      this.ssrc = rtp.ssrc;
      this.hasSsrc = true;
      this.accept(rtp, false, now);
      return;
    }
    const gap = seqDelta(this.expectedSequence, rtp.sequenceNumber);
    if (rtp.ssrc === this.ssrc && gap > -MAX_SEQUENCE_GAP && gap < MAX_SEQUENCE_GAP) {
      if (this.held) {
        // The stream went on where it was: the packet held below was a stray.
        this.held = undefined;
        counters.packetsMalformed++;
      }
      if (gap < 0) {
        counters.packetsLate++; // duplicate, or later than the reorder window waited: its frame is gone
        return;
      }
      if (gap > 0) {
        if (gap < MAX_REORDER_GAP && this.options.reorderWaitMs > 0 && !this.reorder.full) {
          // Perhaps only reordered: wait a little for the hole to fill.
          if (!this.reorder.hold(rtp)) counters.packetsLate++;
          else if (this.reorderTimer === undefined) {
            this.reorderTimer = this.options.timers.setTimeout(() => this.giveUpReorder(), this.options.reorderWaitMs);
          }
          return;
        }
        // Too much is missing to wait for: what waits goes on now, then this packet.
        this.releaseReordered(now);
        this.acceptAfterHole(rtp, now);
        return;
      }
      this.accept(rtp, false, now);
      if (this.reorder.size > 0) {
        // The hole is filled: the packets that waited behind it follow on.
        let next: RtpPacketView | undefined;
        while ((next = this.reorder.take(this.expectedSequence)) !== undefined) this.accept(next, false, now);
        if (this.reorder.size === 0) this.stopReorderTimer();
      }
      return;
    }
    // A new SSRC or a sequence jump too far for loss: either the camera restarted its stream inside
    // the session, or this is one stray packet (corrupt or hostile), which must not throw every
    // viewer back to the next keyframe. As in RFC 3550 A.1, believe the jump only when the next
    // packet follows it; hold this one meanwhile so that a real restart loses nothing.
    const held = this.held;
    if (!held || held.ssrc !== rtp.ssrc || rtp.sequenceNumber !== ((held.sequenceNumber + 1) & 0xffff)) {
      if (held) counters.packetsMalformed++;
      this.held = { ...rtp, payload: Buffer.from(rtp.payload) }; // the upstream may reuse `packet`
      return;
    }
    this.held = undefined;
    // The camera restarted its stream: what waited from the old one goes on first.
    this.releaseReordered(now);
    const ssrcChanged = rtp.ssrc !== this.ssrc;
    this.ssrc = rtp.ssrc;
    this.options.onRestart(ssrcChanged);
    this.accept(held, false, now);
    this.accept(rtp, false, now);
  }

  /** The session ended: nothing waits any more, and a pending reorder timer does nothing. */
  stop(): void {
    this.stopped = true;
    this.stopReorderTimer();
    this.reorder.clear();
  }

  /** The reorder window expired: the hole is a loss, and the packets after it go on. */
  private giveUpReorder(): void {
    this.reorderTimer = undefined;
    if (this.stopped) return;
    this.releaseReordered(this.options.now());
  }

  /** Feeds every waiting packet in sequence order, counting the holes between them as lost. */
  private releaseReordered(now: number): void {
    this.stopReorderTimer();
    if (this.reorder.size === 0) return;
    for (const rtp of this.reorder.drain(this.expectedSequence)) this.acceptAfterHole(rtp, now);
  }

  /** A packet no longer waited on: later than expected is dropped as late, a hole before it is lost. */
  private acceptAfterHole(rtp: RtpPacketView, now: number): void {
    const gap = seqDelta(this.expectedSequence, rtp.sequenceNumber);
    if (gap < 0) {
      this.options.counters.packetsLate++;
      return;
    }
    if (gap > 0) this.options.counters.packetsLost += gap;
    this.accept(rtp, gap > 0, now);
  }

  private stopReorderTimer(): void {
    if (this.reorderTimer !== undefined) {
      this.options.timers.clearTimeout(this.reorderTimer);
      this.reorderTimer = undefined;
    }
  }

  /** Counts an in-sequence packet and hands it on. */
  private accept(rtp: RtpPacketView, lossBefore: boolean, now: number): void {
    this.expectedSequence = (rtp.sequenceNumber + 1) & 0xffff;
    this.options.counters.packetsReceived++;
    this.options.deliver(rtp, lossBefore, now);
  }
}
