/**
 * What one viewer's video stream keeps so that it can answer NACKs: the frames it sent, each as its
 * first sequence number, its RTP timestamp and the Source's shared packet list, never a copy and
 * never per packet. Protecting again with the same SSRC, rollover counter and sequence number gives
 * the same bytes, so the shared payload is all a retransmission needs.
 *
 * Kept per frame because a frame is what the fan-out sends: a record per packet cost a write into
 * four arrays per viewer per packet (and a write barrier for each payload reference into an array
 * in the old generation), which at 50 viewers was a measurable share of the time a frame takes to
 * reach the last viewer. A NACK, rare on a healthy network, pays instead: a walk back over the kept
 * frames.
 *
 * The history holds at most `capacityPackets` packets in at most `MAX_FRAMES` frames (the newest
 * whole frames that fit; a single frame larger than that is kept whole until the next one).
 */
import type { PacketizedPayload } from '../media/types.js';

/**
 * 256 frames are 8.5 s of video at 30 fps and 4 s at 60, where a receiver stops asking for a lost
 * packet after about a second. Slots for the whole packet capacity (2048 by default, to hold a
 * large keyframe's packets) would cost a viewer about 36 KiB of arrays for frames it never needs.
 */
export const MAX_FRAMES = 256;

/** A packet found in the history, as the retransmission protects it again. */
export interface KeptPacket {
  readonly payload: Buffer;
  readonly marker: boolean;
  readonly timestamp: number;
}

export class NackHistory {
  private readonly firstSeq: Uint16Array;
  private readonly counts: Uint32Array;
  private readonly timestamps: Uint32Array;
  /** The frame's shared packets; undefined in a free slot. */
  private readonly frames: Array<readonly PacketizedPayload[] | undefined>;
  /** The slot after the newest entry. */
  private next = 0;
  private entries = 0;
  private packets = 0;
  /**
   * When a kept packet was last retransmitted (receivers repeat their NACKs), by sequence number,
   * for the packets ever resent only: on a healthy network this stays empty.
   */
  private readonly resentAt = new Map<number, number>();

  constructor(readonly capacityPackets: number) {
    // Every frame has at least one packet, so there are never more frames than packets to keep.
    const slots = Math.max(1, Math.min(capacityPackets, MAX_FRAMES));
    this.firstSeq = new Uint16Array(slots);
    this.counts = new Uint32Array(slots);
    this.timestamps = new Uint32Array(slots);
    this.frames = new Array<readonly PacketizedPayload[] | undefined>(slots);
  }

  /** Packets held now. */
  get size(): number {
    return this.packets;
  }

  /** The RTP timestamp of the newest frame kept (0 while none is): a NACKed packet's age is taken from it. */
  get newestTimestamp(): number {
    if (this.entries === 0) return 0;
    return this.timestamps[this.next === 0 ? this.frames.length - 1 : this.next - 1]!;
  }

  /** A frame was sent as sequence numbers `firstSeq`, +1, ... (mod 2^16), one per packet. */
  record(firstSeq: number, timestamp: number, packets: readonly PacketizedPayload[]): void {
    const count = packets.length;
    if (count === 0) return;
    const slots = this.frames.length;
    if (this.entries === slots) this.evictOldest();
    const slot = this.next;
    this.firstSeq[slot] = firstSeq;
    this.counts[slot] = count;
    this.timestamps[slot] = timestamp;
    this.frames[slot] = packets;
    this.next = slot + 1 === slots ? 0 : slot + 1;
    this.entries++;
    this.packets += count;
    while (this.entries > 1 && this.packets > this.capacityPackets) this.evictOldest();
  }

  /** The packet sent as `seq`, if it is still kept. */
  find(seq: number): KeptPacket | undefined {
    const slots = this.frames.length;
    let slot = this.next;
    for (let n = 0; n < this.entries; n++) {
      slot = slot === 0 ? slots - 1 : slot - 1;
      const index = (seq - this.firstSeq[slot]!) & 0xffff;
      if (index < this.counts[slot]!) {
        const packet = this.frames[slot]![index]!;
        return { payload: packet.payload, marker: packet.marker, timestamp: this.timestamps[slot]! };
      }
    }
    return undefined;
  }

  /**
   * Whether `seq` was resent within `minIntervalMs` of `now`. Answering every repeat of a NACK
   * turns a loss burst into a retransmission storm that makes it worse.
   */
  resentWithin(seq: number, now: number, minIntervalMs: number): boolean {
    const last = this.resentAt.get(seq);
    return last !== undefined && now - last < minIntervalMs;
  }

  /** `seq` was resent at `now`. */
  noteResent(seq: number, now: number): void {
    this.resentAt.set(seq, now);
  }

  /** Drops every reference (the viewer closes), so the payloads can be collected at once. */
  clear(): void {
    this.frames.fill(undefined);
    this.entries = 0;
    this.packets = 0;
    this.next = 0;
    this.resentAt.clear();
  }

  private evictOldest(): void {
    const slots = this.frames.length;
    let oldest = this.next - this.entries;
    if (oldest < 0) oldest += slots;
    const count = this.counts[oldest]!;
    if (this.resentAt.size !== 0) {
      const first = this.firstSeq[oldest]!;
      for (let i = 0; i < count; i++) this.resentAt.delete((first + i) & 0xffff);
    }
    this.frames[oldest] = undefined;
    this.entries--;
    this.packets -= count;
  }
}
