/**
 * RTP/RTCP wire pieces for the re-stream. Payloads normally come already cut by the Source (once
 * per camera, shared by every client); this file adds the per-client 12-byte headers and builds
 * RTCP sender reports.
 */
import { packetizeAac } from '../media/audio.js';
import { DEFAULT_MAX_PAYLOAD, packetizeH264 } from '../media/h264-packetizer.js';
import { packetizeH265 } from '../media/h265-packetizer.js';
import type { MediaFrame, PacketizedPayload } from '../media/types.js';

export const RTP_HEADER_BYTES = 12;
/** Same cut size as the Source uses for WebRTC, so UDP datagrams never fragment. */
export const MAX_PAYLOAD_BYTES = DEFAULT_MAX_PAYLOAD;

export interface RtpHeaderFields {
  payloadType: number;
  marker: boolean;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
}

export function writeRtpHeader(target: Buffer, offset: number, h: RtpHeaderFields): void {
  target[offset] = 0x80;
  target[offset + 1] = (h.marker ? 0x80 : 0) | (h.payloadType & 0x7f);
  target.writeUInt16BE(h.sequenceNumber & 0xffff, offset + 2);
  target.writeUInt32BE(h.timestamp >>> 0, offset + 4);
  target.writeUInt32BE(h.ssrc >>> 0, offset + 8);
}

/**
 * RTCP compound packet: SR (RFC 3550 §6.4.1) followed by SDES CNAME, which RFC 3550 requires in
 * every compound packet. ffmpeg maps each stream's RTP time to the NTP time here for A/V sync.
 */
export function buildSenderReport(options: {
  ssrc: number;
  ntpMs: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
  cname: string;
}): Buffer {
  const cname = Buffer.from(options.cname.slice(0, 255), 'utf8');
  const sdesItems = 4 + 2 + cname.length + 1; // SSRC, type+length, text, END
  const sdesLength = Math.ceil(sdesItems / 4) * 4;
  const out = Buffer.alloc(28 + 4 + sdesLength);
  out[0] = 0x80;
  out[1] = 200;
  out.writeUInt16BE(6, 2);
  out.writeUInt32BE(options.ssrc >>> 0, 4);
  const seconds = Math.floor(options.ntpMs / 1000) + 2_208_988_800; // 1900 → 1970
  const fraction = Math.floor(((options.ntpMs % 1000) / 1000) * 0x1_0000_0000);
  out.writeUInt32BE(seconds >>> 0, 8);
  out.writeUInt32BE(Math.min(fraction, 0xffff_ffff) >>> 0, 12);
  out.writeUInt32BE(options.rtpTimestamp >>> 0, 16);
  out.writeUInt32BE(options.packetCount >>> 0, 20);
  out.writeUInt32BE(options.octetCount >>> 0, 24);
  out[28] = 0x81;
  out[29] = 202;
  out.writeUInt16BE(sdesLength / 4, 30);
  out.writeUInt32BE(options.ssrc >>> 0, 32);
  out[36] = 1;
  out[37] = cname.length;
  cname.copy(out, 38);
  return out;
}

/**
 * The payloads to send for one frame: the Source's packets as they are (for AAC they are already
 * AAC-hbr, see AAC_OUTPUT_FMTP), or, for a frame that arrives without packets, cut here with the
 * media core's packetizers.
 */
export function payloadsFor(frame: MediaFrame): ReadonlyArray<PacketizedPayload> {
  if (frame.packets.length > 0) return frame.packets;
  switch (frame.codec) {
    case 'H264': return packetizeH264(frame.units, MAX_PAYLOAD_BYTES);
    case 'H265': return packetizeH265(frame.units, MAX_PAYLOAD_BYTES);
    case 'AAC': return frame.units.flatMap((unit) => packetizeAac(unit, MAX_PAYLOAD_BYTES));
    default: return frame.units.map((unit) => ({ payload: unit, marker: true }));
  }
}
