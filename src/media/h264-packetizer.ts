/**
 * H.264 RTP packetisation for WebRTC (RFC 6184, packetization-mode=1), done once per frame and
 * shared by every viewer. Small NAL units that follow each other (SPS, PPS, SEI, small slices) are
 * aggregated into STAP-A packets, a NAL that fits alone goes as a single NAL unit packet (zero-copy:
 * the payload is the unit itself), and large ones are cut into FU-A fragments of near-equal size so
 * that no tiny trailing packet is sent.
 */
import type { PacketizedPayload } from './types.js';

/** Keeps SRTP + RTP header + extensions under a 1280-byte path MTU (what browsers assume for IPv6). */
export const DEFAULT_MAX_PAYLOAD = 1200;

const STAP_A = 24;
const FU_A = 28;

/** How many consecutive units starting at `from` fit in one STAP-A (1 = no aggregation possible). */
function aggregateCount(units: ReadonlyArray<Buffer>, from: number, maxPayload: number): number {
  let size = 1;
  let count = 0;
  for (let j = from; j < units.length; j++) {
    const length = units[j]!.length;
    if (length === 0) {
      if (count > 0) count++; // empty units are skipped, they do not end the aggregate
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
 * one. Units are NAL units without start codes.
 */
export function packetizeH264(units: ReadonlyArray<Buffer>, maxPayload = DEFAULT_MAX_PAYLOAD): PacketizedPayload[] {
  if (maxPayload < 3) throw new RangeError('maxPayload must leave room for an FU-A header');
  // Pass 1 sizes the one buffer all copied payloads (STAP-A, FU-A) will share.
  let arenaBytes = 0;
  for (let i = 0; i < units.length;) {
    const length = units[i]!.length;
    if (length === 0) {
      i++;
      continue;
    }
    if (length > maxPayload) {
      const fragments = Math.ceil((length - 1) / (maxPayload - 2));
      arenaBytes += length - 1 + 2 * fragments;
      i++;
      continue;
    }
    const count = aggregateCount(units, i, maxPayload);
    if (count >= 2) {
      arenaBytes += 1;
      for (let j = i; j < i + count; j++) if (units[j]!.length > 0) arenaBytes += 2 + units[j]!.length;
    }
    i += Math.max(count, 1);
  }

  const arena = arenaBytes > 0 ? Buffer.allocUnsafe(arenaBytes) : undefined;
  let at = 0;
  const packets: PacketizedPayload[] = [];
  for (let i = 0; i < units.length;) {
    const nal = units[i]!;
    const length = nal.length;
    if (length === 0) {
      i++;
      continue;
    }
    if (length > maxPayload) {
      const fragments = Math.ceil((length - 1) / (maxPayload - 2));
      const base = Math.floor((length - 1) / fragments);
      let extra = (length - 1) % fragments;
      const indicator = (nal[0]! & 0xe0) | FU_A;
      const type = nal[0]! & 0x1f;
      let offset = 1;
      for (let f = 0; f < fragments; f++) {
        const chunk = base + (extra > 0 ? 1 : 0);
        if (extra > 0) extra--;
        const start = at;
        arena![at++] = indicator;
        arena![at++] = (f === 0 ? 0x80 : 0) | (f === fragments - 1 ? 0x40 : 0) | type;
        at += nal.copy(arena!, at, offset, offset + chunk);
        offset += chunk;
        packets.push({ payload: arena!.subarray(start, at), marker: false });
      }
      i++;
      continue;
    }
    const count = aggregateCount(units, i, maxPayload);
    if (count >= 2) {
      const start = at;
      at++; // STAP-A header, written once F and NRI of every member are known
      let forbidden = 0;
      let nri = 0;
      for (let j = i; j < i + count; j++) {
        const unit = units[j]!;
        if (unit.length === 0) continue;
        forbidden |= unit[0]! & 0x80;
        nri = Math.max(nri, unit[0]! & 0x60);
        arena!.writeUInt16BE(unit.length, at);
        at += 2;
        at += unit.copy(arena!, at);
      }
      arena![start] = forbidden | nri | STAP_A;
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
