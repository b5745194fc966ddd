/**
 * What a viewer's RTCP asks for, read from werift's parsed packets: a keyframe (PLI, FIR), a
 * retransmission (NACK), or nothing but a loss figure (receiver reports). Only feedback about the
 * viewer's own video SSRC counts. Acting on it is the media-out's job (viewer-media.ts).
 */
import type { RtcpPacket } from 'werift';

export interface ViewerRtcpTarget {
  /** The SSRC of the video this viewer is sent; undefined before it is connected or without video. */
  readonly videoSsrc: number | undefined;
  onKeyframeRequest(kind: 'PLI' | 'FIR'): void;
  onNack(lost: number[]): void;
  /** The fraction of video the viewer reported lost (0..1). */
  onVideoFractionLost(fraction: number): void;
}

export function dispatchViewerRtcp(packet: RtcpPacket, target: ViewerRtcpTarget): void {
  const videoSsrc = target.videoSsrc;
  switch (packet.type) {
    case 206: {
      const fb = packet.feedback;
      if (videoSsrc === undefined) return;
      if ('fir' in fb) {
        // FIR (RFC 5104): media SSRC is 0, the target is in the FCI entries.
        if (fb.fir.some((entry) => entry.ssrc === videoSsrc)) target.onKeyframeRequest('FIR');
      } else if (fb.count === 1 && 'mediaSsrc' in fb && fb.mediaSsrc === videoSsrc) {
        target.onKeyframeRequest('PLI');
      }
      return;
    }
    case 205: {
      const fb = packet.feedback;
      if (videoSsrc === undefined || !('lost' in fb) || fb.mediaSourceSsrc !== videoSsrc) return;
      target.onNack(fb.lost);
      return;
    }
    case 200:
    case 201: {
      for (const report of packet.reports) {
        if (videoSsrc !== undefined && report.ssrc === videoSsrc) target.onVideoFractionLost(report.fractionLost / 256);
      }
      return;
    }
    default:
      return;
  }
}
