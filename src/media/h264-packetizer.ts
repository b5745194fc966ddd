/**
 * H.264 RTP packetisation for WebRTC and the re-stream (RFC 6184, packetization-mode=1): STAP-A,
 * single NAL unit packets and FU-A, through the shared NAL packetizer (`nal-packetizer.ts`).
 */
import { DEFAULT_MAX_PAYLOAD, packetizeNal, type NalFormat } from './nal-packetizer.js';
import type { PacketizedPayload } from './types.js';

export { DEFAULT_MAX_PAYLOAD };

const STAP_A = 24;
const FU_A = 28;

const H264: NalFormat = {
  headerBytes: 1,
  tooSmall: 'maxPayload must leave room for an FU-A header',
  writeFragmentHeader(nal, arena, at) {
    arena[at] = (nal[0]! & 0xe0) | FU_A;
    return nal[0]! & 0x1f;
  },
  // STAP-A header: F is the OR, NRI the highest of the aggregated units (RFC 6184 5.7.1).
  writeAggregateHeader(units, from, to, arena, at) {
    let forbidden = 0;
    let nri = 0;
    for (let j = from; j < to; j++) {
      const unit = units[j]!;
      if (unit.length === 0) continue;
      forbidden |= unit[0]! & 0x80;
      nri = Math.max(nri, unit[0]! & 0x60);
    }
    arena[at] = forbidden | nri | STAP_A;
  },
};

/**
 * Cuts one access unit into RTP payloads of at most `maxPayload` bytes; `marker` is set on the last
 * one. Units are NAL units without start codes.
 */
export function packetizeH264(units: ReadonlyArray<Buffer>, maxPayload = DEFAULT_MAX_PAYLOAD): PacketizedPayload[] {
  return packetizeNal(units, maxPayload, H264);
}
