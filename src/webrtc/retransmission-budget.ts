/**
 * How much a viewer may be sent again: its NACK answers, capped as a share of the video it was
 * sent, with a burst allowance for a loss burst.
 *
 * Why: a receiver that cannot keep up (a starved phone, a saturated Wi-Fi link, a machine running
 * fifty viewers on one core) loses packets because it is overloaded, and each retransmission adds
 * to what overloads it. Without a cap the answers fed the loss: in `npm run bench:webrtc` on a
 * 2-core VM whose receivers fell behind, the server resent twice as many packets as it sent video
 * (515 917 retransmissions against 16 000 video packets a second over 15 s) and its CPU went from
 * 14 % to 60 %. libwebrtc caps its retransmissions too (a rate limiter at the send-side bandwidth
 * estimate); this fan-out has no estimate, so the cap follows what the viewer is being sent.
 *
 * A token bucket in bytes: every video frame sent earns `share` of its bytes, up to `burstBytes`;
 * a resent packet spends its payload's size, and is refused when the bucket cannot pay. A
 * viewer starts with a full bucket, so the first losses after joining are answered.
 */

/** A quarter of the video's bytes: past that, the loss cut-back (20 % NACKed) has already begun. */
export const RETRANSMIT_SHARE = 0.25;
/** About 110 full packets: a lost run of a large keyframe, answered at once. */
export const RETRANSMIT_BURST_BYTES = 128 * 1024;

export class RetransmissionBudget {
  private credit: number;
  /** Packets refused for want of credit. */
  refused = 0;

  constructor(
    private readonly share = RETRANSMIT_SHARE,
    private readonly burstBytes = RETRANSMIT_BURST_BYTES,
  ) {
    this.credit = burstBytes;
  }

  /** Bytes that could be resent now. */
  get available(): number {
    return this.credit;
  }

  /** `bytes` of video went to the viewer. */
  earn(bytes: number): void {
    const credit = this.credit + bytes * this.share;
    this.credit = credit < this.burstBytes ? credit : this.burstBytes;
  }

  /** Whether `bytes` may be resent; takes them from the budget when they may. */
  spend(bytes: number): boolean {
    if (bytes > this.credit) {
      this.refused++;
      return false;
    }
    this.credit -= bytes;
    return true;
  }
}
