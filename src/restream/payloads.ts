/**
 * RTP/RTCP wire pieces for the re-stream. Payloads normally come already cut by the Source (once
 * per camera, shared by every client); the per-client headers and sender reports are written with
 * src/media/rtp.ts.
 */
import { packetizeAac } from '../media/audio.js';
import { DEFAULT_MAX_PAYLOAD, packetizeH264 } from '../media/h264-packetizer.js';
import { packetizeH265 } from '../media/h265-packetizer.js';
import type { MediaFrame, PacketizedPayload } from '../media/types.js';

/** Same cut size as the Source uses for WebRTC, so UDP datagrams never fragment. */
export const MAX_PAYLOAD_BYTES = DEFAULT_MAX_PAYLOAD;

/**
 * The payloads to send for one frame: the Source's packets as they are (for AAC they are already
 * AAC-hbr, see AAC_OUTPUT_FMTP), or, for a frame that arrives without packets, cut here with the
 * media core's packetizers.
 */
export function payloadsFor(frame: MediaFrame): ReadonlyArray<PacketizedPayload> {
  if (frame.packets.length > 0) return frame.packets;
  switch (frame.codec) {
    case 'H264': return packetizeH264(frame.units, MAX_PAYLOAD_BYTES);
    case 'H265': return packetizeH265(frame.units, MAX_PAYLOAD_BYTES);
    case 'AAC': return frame.units.flatMap((unit) => packetizeAac(unit, MAX_PAYLOAD_BYTES));
    default: return frame.units.map((unit) => ({ payload: unit, marker: true }));
  }
}
