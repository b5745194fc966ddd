/**
 * The RTCP every output and the RTSP client share (RFC 3550): telling RTCP from RTP on a shared
 * port, reading sender reports (RTP time -> wall clock) and writing them. Receiver-side reception
 * statistics stay with the RTSP client (`rtsp/rtcp.ts`), the only receiver of RTCP-worthy streams.
 */

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
/** Transport-layer feedback (RFC 4585): its format 1 is the generic NACK. */
export const RTCP_RTPFB = 205;
/** Payload-specific feedback (RFC 4585, 5104): format 1 is PLI, format 4 FIR. */
export const RTCP_PSFB = 206;
export const RTCP_FMT_GENERIC_NACK = 1;
export const RTCP_FMT_PLI = 1;
export const RTCP_FMT_FIR = 4;

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

/**
 * True when a packet that arrived where RTP is expected is really RTCP: a camera muxing RTCP onto
 * the RTP channel, or an ffmpeg RTP muxer sending its reports to the RTP port. The one rule is
 * RFC 5761 section 4: RTCP packet types 192-223 occupy the second byte where RTP keeps its marker
 * bit and payload type, and payload types 64-95 (the only ones that would collide) are never used
 * with RTP/RTCP multiplexing. A narrower 200-204 test would pass feedback (205, 206) and XR (207)
 * off as media. Four bytes are the least an RTCP header has.
 */
export function isRtcpPacket(packet: Buffer): boolean {
  if (packet.length < 4) return false;
  const type = packet[1]!;
  return type >= 192 && type <= 223;
}

export interface RtcpSenderReport {
  ssrc: number;
  /** NTP time converted to ms since the Unix epoch. */
  wallClockMs: number;
  /** Middle 32 bits of the NTP timestamp: echoed as LSR in receiver reports. */
  ntpMiddle: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
}

/** Reads the sender report whose header starts at `offset`; the caller checked it is 28+ bytes. */
export function readSenderReport(buf: Buffer, offset: number): RtcpSenderReport {
  const seconds = buf.readUInt32BE(offset + 8);
  const fraction = buf.readUInt32BE(offset + 12);
  // NTP seconds wrap in February 2036; values below the 1970 offset belong to the next era.
  const unixSeconds = seconds >= NTP_UNIX_OFFSET_S ? seconds - NTP_UNIX_OFFSET_S : seconds + 0x1_0000_0000 - NTP_UNIX_OFFSET_S;
  return {
    ssrc: buf.readUInt32BE(offset + 4),
    wallClockMs: unixSeconds * 1000 + (fraction / 0x1_0000_0000) * 1000,
    ntpMiddle: (((seconds & 0xffff) << 16) | (fraction >>> 16)) >>> 0,
    rtpTimestamp: buf.readUInt32BE(offset + 16),
    packetCount: buf.readUInt32BE(offset + 20),
    octetCount: buf.readUInt32BE(offset + 24),
  };
}

/**
 * Finds the sender report in an RTCP (possibly compound) packet. Returns undefined when there is
 * none or the packet is malformed before it.
 */
export function parseRtcpSenderReport(buf: Buffer): RtcpSenderReport | undefined {
  let offset = 0;
  while (offset + 4 <= buf.length) {
    if (buf[offset]! >> 6 !== 2) return undefined;
    const packetType = buf[offset + 1]!;
    const length = (buf.readUInt16BE(offset + 2) + 1) * 4;
    if (offset + length > buf.length) return undefined;
    if (packetType === RTCP_SR && length >= 28) return readSenderReport(buf, offset);
    offset += length;
  }
  return undefined;
}

/**
 * RTCP compound packet: SR (RFC 3550 §6.4.1) followed by SDES CNAME, which RFC 3550 requires in
 * every compound packet. ffmpeg (re-stream clients) and the Home app (the SRTP relay) map each
 * stream's RTP time to NTP time with it, for A/V sync.
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
  out[1] = RTCP_SR;
  out.writeUInt16BE(6, 2);
  out.writeUInt32BE(options.ssrc >>> 0, 4);
  const seconds = Math.floor(options.ntpMs / 1000) + NTP_UNIX_OFFSET_S; // 1900 → 1970
  const fraction = Math.floor(((options.ntpMs % 1000) / 1000) * 0x1_0000_0000);
  out.writeUInt32BE(seconds >>> 0, 8);
  out.writeUInt32BE(Math.min(fraction, 0xffff_ffff) >>> 0, 12);
  out.writeUInt32BE(options.rtpTimestamp >>> 0, 16);
  out.writeUInt32BE(options.packetCount >>> 0, 20);
  out.writeUInt32BE(options.octetCount >>> 0, 24);
  out[28] = 0x81;
  out[29] = RTCP_SDES;
  out.writeUInt16BE(sdesLength / 4, 30);
  out.writeUInt32BE(options.ssrc >>> 0, 32);
  out[36] = 1;
  out[37] = cname.length;
  cname.copy(out, 38);
  return out;
}
