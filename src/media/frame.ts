import type { CodecName, MediaFrame, MediaKind, PacketizedPayload } from './types.js';

/** Encoded bytes of a frame: `byteLength` when the Source set it, otherwise summed. */
export function frameByteLength(frame: MediaFrame): number {
  if (frame.byteLength !== undefined) return frame.byteLength;
  let bytes = 0;
  for (const unit of frame.units) bytes += unit.length;
  return bytes;
}

/**
 * The frame a Source shares with every subscriber. Its RTP payloads are cut on the first read of
 * `packets` and kept: with nobody watching (the usual state of a home camera) a frame is never cut,
 * so the GOP cache holds each access unit once instead of twice, and what survives V8's young
 * collections (what drives its full collections of the whole Homebridge process) is about halved.
 * Its sequence numbers are taken when it is made, from `packetCount`, which the packetizer computes
 * without cutting by the same walk it cuts with.
 *
 * A class, with every field set in the constructor, so that every frame has one shape: the fan-out
 * reads a frame's fields once per viewer, and V8 reads them inline only from objects that share a
 * shape (an object literal with a getter would be kept as a dictionary).
 */
export class SourceFrame implements MediaFrame {
  captureTime: number | undefined = undefined;
  damaged: boolean | undefined = undefined;
  private cutPackets: PacketizedPayload[] | undefined;

  constructor(
    readonly kind: MediaKind,
    readonly codec: CodecName,
    readonly clockRate: number,
    readonly timestamp: number,
    readonly sequenceNumber: number,
    readonly keyframe: boolean,
    readonly units: Buffer[],
    readonly byteLength: number,
    readonly receivedAt: number,
    readonly packetCount: number,
    packets: PacketizedPayload[] | undefined,
    private readonly cut: ((units: ReadonlyArray<Buffer>) => PacketizedPayload[]) | undefined,
  ) {
    this.cutPackets = packets;
  }

  get packets(): PacketizedPayload[] {
    let packets = this.cutPackets;
    if (packets === undefined) {
      packets = this.cut!(this.units);
      // The count numbered this frame's packets; a cut that disagreed would reuse or skip numbers.
      if (packets.length !== this.packetCount) throw new Error(`a frame counted ${this.packetCount} packets and was cut into ${packets.length}`);
      this.cutPackets = packets;
    }
    return packets;
  }
}
