/**
 * A connected viewer's RTCP, both ways, in project code once DTLS has given the keys.
 *
 * In: the viewer's SRTCP is taken off werift's ICE connection before werift's DTLS transport sees
 * it (`connection.onData`, so every transport: UDP, TCP, TURN), opened with `SrtcpContext` and read
 * straight from the bytes (`readRtcpFeedback`). werift did the same with a new cipher, buffers and
 * a bit-by-bit string parser per packet; that garbage, per viewer per second, was most of what a
 * viewer cost in memory. A compound that carries a sender report (the viewer is talking) is also
 * handed on to werift, whose receiver keeps it for its own reports.
 *
 * What the viewer asks for (keyframe, retransmission, loss figure) is decided here, only about
 * the video SSRC it is sent; acting on it is the media-out's job (viewer-media.ts).
 *
 * Out: sender reports (SR + SDES CNAME) protected with our own SRTCP index. werift sends no RTCP
 * of its own for these SSRCs (its sender's RTCP loop starts only from its own send path, which
 * the fan-out does not use), so the index is ours alone.
 */
import type { RTCDtlsTransport } from 'werift';
import { isRtcpPacket } from '../rtp/rtcp.js';
import { readRtcpFeedback, type RtcpFeedbackVisitor } from '../rtp/rtcp-feedback.js';
import { SrtcpContext } from '../rtp/srtcp.js';

export interface ViewerRtcpTarget {
  /** The SSRC of the video this viewer is sent; undefined without video. */
  videoSsrc(): number | undefined;
  /** Any authentic RTCP arrived: the viewer is still there. */
  onRtcp(): void;
  onKeyframeRequest(kind: 'PLI' | 'FIR'): void;
  onNack(lost: number[]): void;
  /** The fraction of video the viewer reported lost (0..1). */
  onVideoFractionLost(fraction: number): void;
}

/** One datagram as the RTCP reader saw it: the viewer's authentic RTCP, RTCP that failed, or not RTCP. */
export type RtcpReading = 'authentic' | 'refused' | 'other';

export interface ViewerRtcpCounters {
  /** Authentic compound packets read here. */
  received: number;
  /** Refused: too short, failed authentication or a replay. */
  refused: number;
  /** Authentic but broken framing (what came before the break was still read). */
  malformed: number;
}

/** werift's inbound data event (rx.mini `Event`): `execute` is an own, writable property. */
interface InboundData {
  execute: (...args: never[]) => void;
}

/** Tells the visitor's findings to the target, for the video SSRC only. */
function videoFeedbackVisitor(target: ViewerRtcpTarget): RtcpFeedbackVisitor {
  return {
    onReportBlock: (ssrc, fractionLost) => {
      if (ssrc === target.videoSsrc()) target.onVideoFractionLost(fractionLost);
    },
    onNack: (mediaSsrc, lost) => {
      if (mediaSsrc === target.videoSsrc()) target.onNack(lost);
    },
    onKeyframeRequest: (mediaSsrc, kind) => {
      if (mediaSsrc === target.videoSsrc()) target.onKeyframeRequest(kind);
    },
  };
}

export class ViewerRtcpChannel {
  readonly counters: ViewerRtcpCounters = { received: 0, refused: 0, malformed: 0 };
  private readonly inbound: SrtcpContext;
  private readonly outbound: SrtcpContext;
  private readonly visitor: RtcpFeedbackVisitor;
  private detach: (() => void) | undefined;

  /** Throws when the negotiated SRTP profile is not one SRTCP is built for here. */
  constructor(
    dtls: RTCDtlsTransport,
    private readonly target: ViewerRtcpTarget,
  ) {
    this.inbound = new SrtcpContext(dtls.srtcp.remoteContext);
    this.outbound = new SrtcpContext(dtls.srtcp.localContext);
    this.visitor = videoFeedbackVisitor(target);
    const event = dtls.iceTransport.connection.onData as unknown as InboundData;
    const handOn = event.execute as (data: Buffer) => void;
    const readFirst = (data: Buffer): void => {
      if (!this.read(data)) handOn(data);
    };
    event.execute = readFirst as InboundData['execute'];
    this.detach = () => {
      if (event.execute === (readFirst as InboundData['execute'])) event.execute = handOn as InboundData['execute'];
    };
  }

  /**
   * One packet off the ICE connection. True: it was this viewer's RTCP and is dealt with here.
   * False: werift takes it (DTLS, the talkback's SRTP, and a compound with a sender report).
   */
  read(data: Buffer): boolean {
    const reading = this.readPacket(data);
    return reading === 'refused' || reading === 'authentic';
  }

  /**
   * One datagram on the settled path (werift gone: a sender report has nobody to go to). Says
   * whether it was this viewer's RTCP and authentic (and new: SRTCP's replay window), which is the
   * proof the settled path needs before it follows the viewer to a new address.
   */
  readSettled(data: Buffer): RtcpReading {
    const reading = this.readPacket(data);
    return reading === 'authentic with a sender report' ? 'authentic' : reading;
  }

  private readPacket(data: Buffer): RtcpReading | 'authentic with a sender report' {
    if (data.length < 8 || (data[0]! & 0xc0) !== 0x80 || !isRtcpPacket(data)) return 'other';
    const plain = this.inbound.unprotect(data);
    if (!plain) {
      this.counters.refused++;
      return 'refused';
    }
    this.counters.received++;
    this.target.onRtcp();
    const result = readRtcpFeedback(plain, this.visitor);
    if (!result.wellFormed) this.counters.malformed++;
    return result.hadSenderReport ? 'authentic with a sender report' : 'authentic';
  }

  /** One compound RTCP packet of ours, protected for this viewer. */
  protect(rtcp: Buffer): Buffer {
    return this.outbound.protect(rtcp);
  }

  /**
   * Gives werift its inbound path back: on close (werift's connection ends soon after), or when
   * werift is let go and the settled path calls `read` itself. `read` and `protect` go on working.
   */
  stopReadingWerift(): void {
    this.detach?.();
    this.detach = undefined;
  }
}
