/**
 * A small reorder window for RTP over UDP. Wi-Fi cameras and busy switches sometimes deliver a
 * packet a few milliseconds after its successor; without a window that packet counts as lost and
 * its whole frame is damaged (or, for a keyframe, the GOP cache waits a whole GOP for a clean one).
 *
 * Packets after a hole wait here, by sequence number, until the hole is filled or the window
 * gives up: `maxWaitMs` after the first packet started waiting, or when `maxPackets` are waiting.
 * In-order traffic (all of TCP, nearly all of UDP) never enters it, so it adds no latency there;
 * a real loss costs at most `maxWaitMs` of delay once.
 */
import type { RtpPacketView } from './types.js';

export const DEFAULT_REORDER_WAIT_MS = 30;
export const DEFAULT_REORDER_PACKETS = 64;

export class ReorderBuffer {
  private readonly waiting = new Map<number, RtpPacketView>();

  constructor(readonly maxPackets = DEFAULT_REORDER_PACKETS) {}

  get size(): number {
    return this.waiting.size;
  }

  get full(): boolean {
    return this.waiting.size >= this.maxPackets;
  }

  /**
   * Keeps a copy of a packet that arrived ahead of a hole (the upstream may reuse its buffer).
   * Returns false for a duplicate of a packet already waiting.
   */
  hold(rtp: RtpPacketView): boolean {
    if (this.waiting.has(rtp.sequenceNumber)) return false;
    this.waiting.set(rtp.sequenceNumber, { ...rtp, csrcs: [...rtp.csrcs], payload: Buffer.from(rtp.payload) });
    return true;
  }

  /** The waiting packet with this sequence number, removed; `undefined` when it is not here. */
  take(sequenceNumber: number): RtpPacketView | undefined {
    const rtp = this.waiting.get(sequenceNumber);
    if (rtp) this.waiting.delete(sequenceNumber);
    return rtp;
  }

  /** Everything waiting, in sequence order counted from `expected` (wrap-around safe); empties the buffer. */
  drain(expected: number): RtpPacketView[] {
    const out = [...this.waiting.values()].sort(
      (a, b) => ((a.sequenceNumber - expected) & 0xffff) - ((b.sequenceNumber - expected) & 0xffff),
    );
    this.waiting.clear();
    return out;
  }

  clear(): void {
    this.waiting.clear();
  }
}
