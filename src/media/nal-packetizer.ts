/**
 * The one NAL-unit RTP packetizer behind H.264 (RFC 6184, packetization-mode=1) and H.265
 * (RFC 7798, no DONL): done once per frame and shared by every viewer. Runs of small NAL units
 * (parameter sets, SEI, small slices) are aggregated (STAP-A / AP), a unit that fits alone goes as a
 * single NAL unit packet (zero-copy: the payload is the unit itself), and large ones are cut into
 * fragmentation units (FU-A / FU) of near-equal size so that no tiny trailing packet is sent. The
 * two codecs differ only in their payload header (1 or 2 bytes) and in how an aggregate's and a
 * fragment's headers are derived from the units, which `NalFormat` supplies.
 */
import type { PacketizedPayload } from './types.js';

/** Keeps SRTP + RTP header + extensions under a 1280-byte path MTU (what browsers assume for IPv6). */
export const DEFAULT_MAX_PAYLOAD = 1200;

/** What a codec tells the packetizer; every copied payload goes into one arena per frame. */
export interface NalFormat {
  /** NAL unit (and payload) header size: 1 for H.264, 2 for H.265. */
  headerBytes: number;
  /** The error thrown when `maxPayload` cannot hold a fragment with at least one payload byte. */
  tooSmall: string;
  /**
   * Writes the fragmentation unit's payload header (`headerBytes` bytes) for `nal` at `at` and
   * returns the NAL type the FU header carries.
   */
  writeFragmentHeader(nal: Buffer, arena: Buffer, at: number): number;
  /** Writes the aggregation packet's payload header at `at` for the (valid) units `from..to-1`. */
  writeAggregateHeader(units: ReadonlyArray<Buffer>, from: number, to: number, arena: Buffer, at: number): void;
}

/**
 * How many consecutive units starting at `from` fit in one aggregation packet (1 = no aggregation
 * possible). Units too short to hold a NAL header are skipped and do not end the aggregate.
 */
function aggregateCount(units: ReadonlyArray<Buffer>, from: number, maxPayload: number, headerBytes: number): number {
  let size = headerBytes;
  let count = 0;
  for (let j = from; j < units.length; j++) {
    const length = units[j]!.length;
    if (length < headerBytes) {
      if (count > 0) count++;
      continue;
    }
    if (size + 2 + length > maxPayload) break;
    size += 2 + length;
    count++;
  }
  return count;
}

/**
 * Cuts one access unit into RTP payloads of at most `maxPayload` bytes; `marker` is set on the last
 * one. Units are NAL units without start codes; units shorter than a NAL header are dropped.
 */
export function packetizeNal(units: ReadonlyArray<Buffer>, maxPayload: number, format: NalFormat): PacketizedPayload[] {
  const h = format.headerBytes;
  const fuOverhead = h + 1;
  if (maxPayload < fuOverhead + 1) throw new RangeError(format.tooSmall);
  // Pass 1 sizes the one buffer all copied payloads (aggregates, fragments) will share.
  let arenaBytes = 0;
  for (let i = 0; i < units.length;) {
    const length = units[i]!.length;
    if (length < h) {
      i++;
      continue;
    }
    if (length > maxPayload) {
      const fragments = Math.ceil((length - h) / (maxPayload - fuOverhead));
      arenaBytes += length - h + fuOverhead * fragments;
      i++;
      continue;
    }
    const count = aggregateCount(units, i, maxPayload, h);
    if (count >= 2) {
      arenaBytes += h;
      for (let j = i; j < i + count; j++) if (units[j]!.length >= h) arenaBytes += 2 + units[j]!.length;
    }
    i += Math.max(count, 1);
  }

  const arena = arenaBytes > 0 ? Buffer.allocUnsafe(arenaBytes) : undefined;
  let at = 0;
  const packets: PacketizedPayload[] = [];
  for (let i = 0; i < units.length;) {
    const nal = units[i]!;
    const length = nal.length;
    if (length < h) {
      i++;
      continue;
    }
    if (length > maxPayload) {
      const fragments = Math.ceil((length - h) / (maxPayload - fuOverhead));
      const base = Math.floor((length - h) / fragments);
      let extra = (length - h) % fragments;
      let offset = h;
      for (let f = 0; f < fragments; f++) {
        const chunk = base + (extra > 0 ? 1 : 0);
        if (extra > 0) extra--;
        const start = at;
        const type = format.writeFragmentHeader(nal, arena!, at);
        at += h;
        arena![at++] = (f === 0 ? 0x80 : 0) | (f === fragments - 1 ? 0x40 : 0) | type;
        at += nal.copy(arena!, at, offset, offset + chunk);
        offset += chunk;
        packets.push({ payload: arena!.subarray(start, at), marker: false });
      }
      i++;
      continue;
    }
    const count = aggregateCount(units, i, maxPayload, h);
    if (count >= 2) {
      const start = at;
      // The aggregate's header is written once every member is known.
      format.writeAggregateHeader(units, i, i + count, arena!, start);
      at += h;
      for (let j = i; j < i + count; j++) {
        const unit = units[j]!;
        if (unit.length < h) continue;
        arena!.writeUInt16BE(unit.length, at);
        at += 2;
        at += unit.copy(arena!, at);
      }
      packets.push({ payload: arena!.subarray(start, at), marker: false });
      i += count;
      continue;
    }
    packets.push({ payload: nal, marker: false });
    i++;
  }
  if (packets.length > 0) packets[packets.length - 1]!.marker = true;
  return packets;
}
