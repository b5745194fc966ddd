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
  return writeRtpHeaderAt(target, offset, fields.marker, fields.payloadType, fields.sequenceNumber, fields.timestamp, fields.ssrc);
}

/**
 * `writeRtpHeader` with the fields as arguments: the one header writer, for the per-viewer SRTP
 * path (`rtp/srtp-writer.ts`), which must not build a fields object per packet per viewer.
 */
export function writeRtpHeaderAt(target: Buffer, offset: number, marker: boolean, payloadType: number, sequenceNumber: number, timestamp: number, ssrc: number): number {
  target[offset] = 0x80;
  target[offset + 1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  target.writeUInt16BE(sequenceNumber & 0xffff, offset + 2);
  target.writeUInt32BE(timestamp >>> 0, offset + 4);
  target.writeUInt32BE(ssrc >>> 0, offset + 8);
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

/** Signed distance b - a in 32-bit RTP timestamp space. */
export function timestampDelta(a: number, b: number): number {
  return (b - a) | 0;
}
