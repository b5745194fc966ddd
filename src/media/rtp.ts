/**
 * RTP (RFC 3550) parsing and writing for the per-packet hot path. Parsing never throws: a malformed
 * packet is reported as a short reason string so the caller can count it and move on, because one
 * hostile or broken camera packet must not take a Source down.
 */
import type { RtpPacketView } from './types.js';

export const RTP_HEADER_LENGTH = 12;

/** Why a packet was rejected; kept as string literals so rejecting allocates nothing. */
export type RtpParseError =
  | 'short'           // fewer bytes than the fixed header
  | 'version'         // version field is not 2
  | 'csrc-overflow'   // the CSRC list runs past the end
  | 'extension-overflow'
  | 'padding-invalid' // padding count is zero or larger than the payload
  | 'empty';          // no payload left (RTP allows it; media never needs it)

/** Shared so that the common "no CSRC" case allocates no array per packet. */
const NO_CSRCS: number[] = Object.freeze([]) as unknown as number[];

/**
 * Parses an RTP packet. `payload` (and the returned object) is a view into `buf`: callers that keep
 * payload bytes beyond the current call must copy them.
 */
export function parseRtp(buf: Buffer): RtpPacketView | RtpParseError {
  const length = buf.length;
  if (length < RTP_HEADER_LENGTH) return 'short';
  const b0 = buf[0]!;
  const version = b0 >> 6;
  if (version !== 2) return 'version';
  const padding = (b0 & 0x20) !== 0;
  const extension = (b0 & 0x10) !== 0;
  const csrcCount = b0 & 0x0f;
  const b1 = buf[1]!;
  let offset = RTP_HEADER_LENGTH + csrcCount * 4;
  if (offset > length) return 'csrc-overflow';
  let csrcs = NO_CSRCS;
  if (csrcCount > 0) {
    csrcs = new Array<number>(csrcCount);
    for (let i = 0; i < csrcCount; i++) csrcs[i] = buf.readUInt32BE(RTP_HEADER_LENGTH + i * 4);
  }
  if (extension) {
    // 16-bit profile, 16-bit length in 32-bit words, then the words.
    if (offset + 4 > length) return 'extension-overflow';
    const words = buf.readUInt16BE(offset + 2);
    offset += 4 + words * 4;
    if (offset > length) return 'extension-overflow';
  }
  let end = length;
  if (padding) {
    const pad = buf[length - 1]!;
    if (pad === 0 || end - pad < offset) return 'padding-invalid';
    end -= pad;
  }
  if (end <= offset) return 'empty';
  return {
    version,
    padding,
    extension,
    marker: (b1 & 0x80) !== 0,
    payloadType: b1 & 0x7f,
    sequenceNumber: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    csrcs,
    payload: buf.subarray(offset, end),
  };
}

export interface RtpHeaderFields {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
}

/**
 * Writes a 12-byte RTP header (version 2, no padding, extension or CSRC) at `offset` of a buffer the
 * caller preallocated, so senders can reuse one buffer per packet instead of concatenating.
 * Returns the offset just past the header, where the payload goes.
 */
export function writeRtpHeader(target: Buffer, fields: RtpHeaderFields, offset = 0): number {
  target[offset] = 0x80;
  target[offset + 1] = (fields.marker ? 0x80 : 0) | (fields.payloadType & 0x7f);
  target.writeUInt16BE(fields.sequenceNumber & 0xffff, offset + 2);
  target.writeUInt32BE(fields.timestamp >>> 0, offset + 4);
  target.writeUInt32BE(fields.ssrc >>> 0, offset + 8);
  return offset + RTP_HEADER_LENGTH;
}

/** Header + payload in one new buffer; for tests, benches and low-rate paths. */
export function serializeRtp(fields: RtpHeaderFields, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RTP_HEADER_LENGTH + payload.length);
  writeRtpHeader(out, fields, 0);
  payload.copy(out, RTP_HEADER_LENGTH);
  return out;
}

/** Signed distance b - a in 16-bit sequence space (RFC 1982 style): positive when b is after a. */
export function seqDelta(a: number, b: number): number {
  return (((b - a) & 0xffff) << 16) >> 16;
}

/** True when sequence number `a` comes before `b`, across the 65535 -> 0 wrap. */
export function seqBefore(a: number, b: number): boolean {
  return seqDelta(a, b) > 0;
}

/**
 * True for RTCP arriving where RTP is expected (an ffmpeg RTP muxer sends its reports to the same
 * port): packet types 200..204 sit where RTP's marker bit and payload type are.
 */
export function isRtcpPacket(packet: Buffer): boolean {
  return packet.length >= 2 && packet[1]! >= 200 && packet[1]! <= 204;
}

/** Signed distance b - a in 32-bit RTP timestamp space. */
export function timestampDelta(a: number, b: number): number {
  return (b - a) | 0;
}

export interface RtcpSenderReport {
  ssrc: number;
  /** NTP time converted to ms since the Unix epoch. */
  wallClockMs: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
}

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

/**
 * Finds the sender report in an RTCP (possibly compound) packet. Returns undefined when there is
 * none or the packet is malformed; upstreams use it to feed `UpstreamHandlers.onSenderReport`.
 */
export function parseRtcpSenderReport(buf: Buffer): RtcpSenderReport | undefined {
  let offset = 0;
  while (offset + 4 <= buf.length) {
    if (buf[offset]! >> 6 !== 2) return undefined;
    const packetType = buf[offset + 1]!;
    const length = (buf.readUInt16BE(offset + 2) + 1) * 4;
    if (offset + length > buf.length) return undefined;
    if (packetType === 200 && length >= 28) {
      const seconds = buf.readUInt32BE(offset + 8);
      const fraction = buf.readUInt32BE(offset + 12);
      // NTP seconds wrap in February 2036; values below the 1970 offset belong to the next era.
      const unixSeconds = seconds >= NTP_UNIX_OFFSET_S ? seconds - NTP_UNIX_OFFSET_S : seconds + 0x1_0000_0000 - NTP_UNIX_OFFSET_S;
      return {
        ssrc: buf.readUInt32BE(offset + 4),
        wallClockMs: unixSeconds * 1000 + (fraction / 0x1_0000_0000) * 1000,
        rtpTimestamp: buf.readUInt32BE(offset + 16),
        packetCount: buf.readUInt32BE(offset + 20),
        octetCount: buf.readUInt32BE(offset + 24),
      };
    }
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
