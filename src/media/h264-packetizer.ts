/**
 * H.264 RTP packetisation for WebRTC and the re-stream (RFC 6184, packetization-mode=1): STAP-A,
 * single NAL unit packets and FU-A, through the shared NAL packetizer (`nal-packetizer.ts`).
 */
import { DEFAULT_MAX_PAYLOAD, nalPacketizer } from './nal-packetizer.js';

export { DEFAULT_MAX_PAYLOAD };

/**
 * Cuts one access unit into RTP payloads of at most `maxPayload` bytes; `marker` is set on the last
 * one. Units are NAL units without start codes. The header is F(1) NRI(2) Type(5); an STAP-A (24)
 * carries the OR of F and the highest NRI of its units (RFC 6184 5.7.1); FU-A is type 28.
 */
export const packetizeH264 = nalPacketizer({ fields: [[1, 'max'], [2, 'max'], [5, 'type']], aggregateType: 24, fragment: [28, 'FU-A'] });
