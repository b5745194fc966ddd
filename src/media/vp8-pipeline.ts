/**
 * VP8 over RTP (RFC 7741), for the transcoded variant of a camera (src/transcode/): ffmpeg's
 * libvpx output arrives as RTP already cut to WebRTC size, so its payloads pass through untouched,
 * payload descriptor included. The pipeline only groups them into frames (same timestamp, ending
 * at the marker) and tells keyframes apart, which is what the GOP cache and keyframe requests need.
 */
import type { FrameCallback, TrackPipeline } from './pipeline.js';
import { MAX_ACCESS_UNIT_BYTES, newDepacketizerCounters } from './nal-assembler.js';
import type { PacketizedPayload, RtpPacketView } from './types.js';

/** What the first packet of a VP8 frame says about it. */
export interface Vp8FrameStart {
  keyframe: boolean;
  /** From a keyframe's header: the coded size (the scaling bits dropped). */
  width?: number;
  height?: number;
}

/**
 * Length of the VP8 payload descriptor at the start of `payload` (RFC 7741 4.2), or -1 when the
 * payload is too short for what its own flags announce.
 */
export function vp8DescriptorLength(payload: Buffer): number {
  if (payload.length < 1) return -1;
  let length = 1;
  if (payload[0]! & 0x80) {
    // X: an extension byte with I (PictureID), L (TL0PICIDX), T/K (TID/KEYIDX) flags.
    if (payload.length < 2) return -1;
    const extension = payload[1]!;
    length = 2;
    if (extension & 0x80) {
      if (payload.length < 3) return -1;
      length += payload[2]! & 0x80 ? 2 : 1; // M: a 15-bit PictureID
    }
    if (extension & 0x40) length += 1;
    if (extension & 0x30) length += 1;
  }
  return length <= payload.length ? length : -1;
}

/**
 * The frame start in `payload`, when this packet begins a VP8 frame (S set, partition 0);
 * `undefined` for any other packet, or a malformed one.
 */
export function parseVp8FrameStart(payload: Buffer): Vp8FrameStart | undefined {
  const descriptor = vp8DescriptorLength(payload);
  if (descriptor < 0) return undefined;
  const first = payload[0]!;
  if (!(first & 0x10) || (first & 0x07) !== 0) return undefined;
  if (payload.length < descriptor + 3) return undefined;
  // The frame tag: bit 0 is the inverse key frame flag.
  const keyframe = (payload[descriptor]! & 0x01) === 0;
  if (!keyframe) return { keyframe };
  const header = descriptor + 3;
  // A keyframe: start code 9d 01 2a, then 14-bit width and height (little-endian, 2 scaling bits).
  if (payload.length < header + 7 || payload[header] !== 0x9d || payload[header + 1] !== 0x01 || payload[header + 2] !== 0x2a) {
    return { keyframe };
  }
  return { keyframe, width: payload.readUInt16LE(header + 3) & 0x3fff, height: payload.readUInt16LE(header + 5) & 0x3fff };
}

export class Vp8Pipeline implements TrackPipeline {
  readonly kind = 'video' as const;
  readonly codec = 'VP8' as const;
  readonly counters = newDepacketizerCounters();
  /** The last keyframe's size, for stats and the page. */
  width: number | undefined;
  height: number | undefined;

  private packets: PacketizedPayload[] = [];
  private bytes = 0;
  private timestamp = 0;
  private start: Vp8FrameStart | undefined;
  private damaged = false;

  constructor(private readonly onFrame: FrameCallback) {}

  push(packet: RtpPacketView, lossBefore: boolean): void {
    this.counters.packets++;
    if (this.packets.length > 0 && packet.timestamp !== this.timestamp) {
      this.counters.accessUnitsWithoutMarker++;
      this.finish();
    }
    if (lossBefore) this.damaged = true;
    if (vp8DescriptorLength(packet.payload) < 0) {
      this.counters.malformed++;
      this.damaged = true;
      return;
    }
    if (this.packets.length === 0) {
      this.timestamp = packet.timestamp;
      this.start = parseVp8FrameStart(packet.payload);
      // A frame whose first packet is not a frame start lost its beginning.
      if (!this.start) {
        this.counters.fragmentsWithoutStart++;
        this.damaged = true;
      }
    }
    if (this.bytes + packet.payload.length > MAX_ACCESS_UNIT_BYTES) {
      this.counters.oversized++;
      this.reset();
      return;
    }
    // Copied: the upstream may reuse its receive buffer.
    const payload = Buffer.from(packet.payload);
    this.packets.push({ payload, marker: false });
    this.bytes += payload.length;
    if (packet.marker) this.finish();
  }

  flush(): void {
    if (this.packets.length > 0) this.finish();
  }

  reset(): void {
    this.packets = [];
    this.bytes = 0;
    this.start = undefined;
    this.damaged = false;
  }

  private finish(): void {
    const packets = this.packets;
    const start = this.start;
    const damaged = this.damaged;
    const byteLength = this.bytes;
    this.reset();
    if (packets.length === 0) return;
    packets[packets.length - 1]!.marker = true;
    const keyframe = start?.keyframe === true;
    if (keyframe && start.width && start.height) {
      this.width = start.width;
      this.height = start.height;
    }
    this.counters.accessUnits++;
    this.onFrame({
      timestamp: this.timestamp,
      keyframe,
      units: packets.map((p) => p.payload),
      packets,
      byteLength,
      damaged,
    });
  }
}
