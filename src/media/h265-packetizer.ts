/**
 * H.265 RTP packetisation (RFC 7798, no DONL): aggregation packets (AP), single NAL unit packets and
 * fragmentation units (FU), through the shared NAL packetizer (`nal-packetizer.ts`). Used by the
 * loopback re-stream.
 */
import { DEFAULT_MAX_PAYLOAD, packetizeNal, type NalFormat } from './nal-packetizer.js';
import type { PacketizedPayload } from './types.js';

const AP = 48;
const FU = 49;

const H265: NalFormat = {
  headerBytes: 2,
  tooSmall: 'maxPayload must leave room for an FU header',
  writeFragmentHeader(nal, arena, at) {
    arena[at] = (nal[0]! & 0x81) | (FU << 1);
    arena[at + 1] = nal[1]!;
    return (nal[0]! >> 1) & 0x3f;
  },
  // AP header: F is the OR, LayerId and TID the lowest of the aggregated units (RFC 7798 4.4.2).
  writeAggregateHeader(units, from, to, arena, at) {
    let forbidden = 0;
    let layerId = 63;
    let tid = 7;
    for (let j = from; j < to; j++) {
      const unit = units[j]!;
      if (unit.length < 2) continue;
      forbidden |= unit[0]! & 0x80;
      layerId = Math.min(layerId, ((unit[0]! & 1) << 5) | (unit[1]! >> 3));
      tid = Math.min(tid, unit[1]! & 7);
    }
    arena[at] = forbidden | (AP << 1) | (layerId >> 5);
    arena[at + 1] = ((layerId & 0x1f) << 3) | tid;
  },
};

export function packetizeH265(units: ReadonlyArray<Buffer>, maxPayload = DEFAULT_MAX_PAYLOAD): PacketizedPayload[] {
  return packetizeNal(units, maxPayload, H265);
}
