/**
 * H.265 RTP packetisation (RFC 7798, no DONL): aggregation packets (AP), single NAL unit packets and
 * fragmentation units (FU), through the shared NAL packetizer (`nal-packetizer.ts`). Used by the
 * loopback re-stream.
 */
import { nalPacketizer } from './nal-packetizer.js';

/**
 * The header is F(1) Type(6) LayerId(6) TID(3); an AP (48) carries the OR of F and the lowest
 * LayerId and TID of its units (RFC 7798 4.4.2); FU is type 49.
 */
export const packetizeH265 = nalPacketizer({ fields: [[1, 'max'], [6, 'type'], [6, 'min'], [3, 'min']], aggregateType: 48, fragment: [49, 'FU'] });
