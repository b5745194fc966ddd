/**
 * H.265 RTP packetisation (RFC 7798, no DONL): aggregation packets for runs of small NAL units
 * (VPS+SPS+PPS), single NAL unit packets when a unit fits, fragmentation units otherwise. Used by
 * the loopback re-stream; the structure mirrors the H.264 packetizer.
 */
import type { PacketizedPayload } from './types.js';
import { DEFAULT_MAX_PAYLOAD } from './h264-packetizer.js';

const AP = 48;
const FU = 49;

function aggregateCount(units: ReadonlyArray<Buffer>, from: number, maxPayload: number): number {
  let size = 2;
  let count = 0;
  for (let j = from; j < units.length; j++) {
    const length = units[j]!.length;
    if (length < 2) break; // not a valid NAL; the outer loop skips it
    if (size + 2 + length > maxPayload) break;
    size += 2 + length;
    count++;
  }
  return count;
}

export function packetizeH265(units: ReadonlyArray<Buffer>, maxPayload = DEFAULT_MAX_PAYLOAD): PacketizedPayload[] {
  if (maxPayload < 4) throw new RangeError('maxPayload must leave room for an FU header');
  let arenaBytes = 0;
  for (let i = 0; i < units.length;) {
    const length = units[i]!.length;
    if (length < 2) {
      i++;
      continue;
    }
    if (length > maxPayload) {
      const fragments = Math.ceil((length - 2) / (maxPayload - 3));
      arenaBytes += length - 2 + 3 * fragments;
      i++;
      continue;
    }
    const count = aggregateCount(units, i, maxPayload);
    if (count >= 2) {
      arenaBytes += 2;
      for (let j = i; j < i + count; j++) arenaBytes += 2 + units[j]!.length;
    }
    i += Math.max(count, 1);
  }

  const arena = arenaBytes > 0 ? Buffer.allocUnsafe(arenaBytes) : undefined;
  let at = 0;
  const packets: PacketizedPayload[] = [];
  for (let i = 0; i < units.length;) {
    const nal = units[i]!;
    const length = nal.length;
    if (length < 2) {
      i++;
      continue;
    }
    if (length > maxPayload) {
      const fragments = Math.ceil((length - 2) / (maxPayload - 3));
      const base = Math.floor((length - 2) / fragments);
      let extra = (length - 2) % fragments;
      const header0 = (nal[0]! & 0x81) | (FU << 1);
      const type = (nal[0]! >> 1) & 0x3f;
      let offset = 2;
      for (let f = 0; f < fragments; f++) {
        const chunk = base + (extra > 0 ? 1 : 0);
        if (extra > 0) extra--;
        const start = at;
        arena![at++] = header0;
        arena![at++] = nal[1]!;
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
      at += 2;
      // AP header: F is the OR, LayerId and TID the lowest of the aggregated units (RFC 7798 4.4.2).
      let forbidden = 0;
      let layerId = 63;
      let tid = 7;
      for (let j = i; j < i + count; j++) {
        const unit = units[j]!;
        forbidden |= unit[0]! & 0x80;
        layerId = Math.min(layerId, ((unit[0]! & 1) << 5) | (unit[1]! >> 3));
        tid = Math.min(tid, unit[1]! & 7);
        arena!.writeUInt16BE(unit.length, at);
        at += 2;
        at += unit.copy(arena!, at);
      }
      arena![start] = forbidden | (AP << 1) | (layerId >> 5);
      arena![start + 1] = ((layerId & 0x1f) << 3) | tid;
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
