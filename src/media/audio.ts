/**
 * Audio depacketisation. G.711 and Opus carry one frame per RTP packet, so they pass through as
 * they are (copied, because upstream buffers may be reused). AAC arrives as RFC 3640
 * (mpeg4-generic): each packet has an AU-header section giving the size of every access unit it
 * carries, and a large AU may be fragmented over several packets. We split it into one frame per AU
 * and re-packetise each as AAC-hbr (sizelength=13, indexlength=3, indexdeltalength=3), the mode
 * every consumer (ffmpeg, HomeKit pipelines) understands; see `AAC_OUTPUT_FMTP`.
 */
import type { CodecName, PacketizedPayload, RtpPacketView, TrackDescription } from './types.js';
import { newDepacketizerCounters, type DepacketizerCounters } from './nal-assembler.js';
import type { FrameCallback, TrackPipeline } from './pipeline.js';
import { DEFAULT_MAX_PAYLOAD } from './nal-packetizer.js';
import { parseAudioSpecificConfig } from './adts.js';

/** fmtp parameters describing `MediaFrame.packets` of an AAC track (the re-stream's SDP uses them). */
export const AAC_OUTPUT_FMTP = { mode: 'AAC-hbr', sizelength: '13', indexlength: '3', indexdeltalength: '3' } as const;

/** One RTP packet is one frame (PCMU, PCMA, Opus). */
export class PassthroughAudioPipeline implements TrackPipeline {
  readonly kind = 'audio' as const;
  readonly counters = newDepacketizerCounters();

  constructor(readonly codec: CodecName, private readonly onFrame: FrameCallback) {}

  push(packet: RtpPacketView, lossBefore: boolean): void {
    this.counters.packets++;
    const data = Buffer.from(packet.payload);
    this.counters.accessUnits++;
    this.onFrame({
      timestamp: packet.timestamp,
      keyframe: true,
      units: [data],
      packets: [{ payload: data, marker: packet.marker }],
      byteLength: data.length,
      damaged: lossBefore,
    });
  }

  flush(): void {}
  reset(): void {}
}

export interface AacConfig {
  sizeLength: number;
  indexLength: number;
  indexDeltaLength: number;
  /** Samples (in clock-rate units) per access unit: 1024 for AAC-LC, 480/512 for LD/ELD, 2048 with SBR. */
  frameDuration: number;
}

/**
 * Samples per AU from an AudioSpecificConfig (ISO 14496-3 1.6.2.1), hex as in the fmtp `config`.
 * Falls back to 1024 (AAC-LC) when the config is absent or unreadable.
 */
export function aacFrameDuration(configHex: string | undefined): number {
  if (configHex === undefined) return 1024;
  try {
    return parseAudioSpecificConfig(configHex).frameSamples;
  } catch {
    return 1024;
  }
}

export function parseAacFmtp(fmtp: Readonly<Record<string, string>>): AacConfig {
  const int = (key: string, fallback: number): number => {
    const value = Number.parseInt(fmtp[key] ?? '', 10);
    return Number.isFinite(value) && value >= 0 && value <= 32 ? value : fallback;
  };
  const constantDuration = Number.parseInt(fmtp.constantduration ?? '', 10);
  return {
    sizeLength: int('sizelength', 13),
    indexLength: int('indexlength', 3),
    indexDeltaLength: int('indexdeltalength', 3),
    frameDuration: constantDuration > 0 ? constantDuration : aacFrameDuration(fmtp.config),
  };
}

/**
 * Reads the AU-header section of an RFC 3640 payload. Returns the AU sizes and where the AU data
 * starts, or undefined when the header section does not fit the payload.
 */
export function parseAacAuHeaders(payload: Buffer, config: AacConfig): { sizes: number[]; dataOffset: number } | undefined {
  if (config.sizeLength === 0 && config.indexLength === 0 && config.indexDeltaLength === 0) {
    // No AU-header section at all: the payload is one AU.
    return { sizes: [payload.length], dataOffset: 0 };
  }
  if (payload.length < 2) return undefined;
  const headerBits = payload.readUInt16BE(0);
  const headerBytes = Math.ceil(headerBits / 8);
  const dataOffset = 2 + headerBytes;
  if (dataOffset > payload.length) return undefined;
  const sizes: number[] = [];
  let bit = 16;
  const end = 16 + headerBits;
  const read = (count: number): number => {
    let value = 0;
    for (let i = 0; i < count; i++, bit++) value = value * 2 + ((payload[bit >> 3]! >> (7 - (bit & 7))) & 1);
    return value;
  };
  let first = true;
  while (bit < end) {
    const headerLength = config.sizeLength + (first ? config.indexLength : config.indexDeltaLength);
    if (headerLength === 0 || bit + headerLength > end) break;
    sizes.push(read(config.sizeLength));
    read(first ? config.indexLength : config.indexDeltaLength);
    first = false;
  }
  return sizes.length > 0 ? { sizes, dataOffset } : undefined;
}

/** Cuts one AAC access unit into AAC-hbr payloads (one AU-header, fragments when too large). */
export function packetizeAac(au: Buffer, maxPayload = DEFAULT_MAX_PAYLOAD): PacketizedPayload[] {
  const room = maxPayload - 4;
  const count = Math.max(1, Math.ceil(au.length / room));
  const out = Buffer.allocUnsafe(au.length + 4 * count);
  const packets: PacketizedPayload[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const chunk = au.subarray(i * room, Math.min(au.length, (i + 1) * room));
    const start = at;
    out.writeUInt16BE(16, at); // AU-headers-length in bits: one 16-bit header
    // The header always carries the whole AU's size, also in fragments (RFC 3640 3.2.3.1).
    out.writeUInt16BE((au.length & 0x1fff) << 3, at + 2);
    at += 4;
    at += chunk.copy(out, at);
    packets.push({ payload: out.subarray(start, at), marker: i === count - 1 });
  }
  return packets;
}

export class AacPipeline implements TrackPipeline {
  readonly kind = 'audio' as const;
  readonly codec = 'AAC' as const;
  readonly counters: DepacketizerCounters = newDepacketizerCounters();
  readonly config: AacConfig;
  /** A fragmented AU being collected. */
  private fragment: { timestamp: number; size: number; parts: Buffer[]; received: number } | undefined;

  constructor(track: TrackDescription, private readonly onFrame: FrameCallback) {
    this.config = parseAacFmtp(track.fmtp);
  }

  push(packet: RtpPacketView, lossBefore: boolean): void {
    this.counters.packets++;
    if (lossBefore && this.fragment) {
      this.fragment = undefined;
      this.counters.fragmentedNalsLost++;
    }
    const headers = parseAacAuHeaders(packet.payload, this.config);
    if (!headers) {
      this.counters.malformed++;
      return;
    }
    const { sizes, dataOffset } = headers;
    const data = packet.payload;
    const pending = this.fragment;
    if (pending) {
      if (pending.timestamp === packet.timestamp && sizes.length === 1 && sizes[0] === pending.size) {
        const part = Buffer.from(data.subarray(dataOffset));
        pending.parts.push(part);
        pending.received += part.length;
        if (pending.received >= pending.size || packet.marker) {
          this.fragment = undefined;
          if (pending.received === pending.size) this.emit(pending.timestamp, Buffer.concat(pending.parts, pending.size), false);
          else this.counters.malformed++;
        }
        return;
      }
      this.fragment = undefined;
      this.counters.fragmentedNalsLost++;
    }
    let offset = dataOffset;
    for (let i = 0; i < sizes.length; i++) {
      const size = sizes[i]!;
      const timestamp = (packet.timestamp + i * this.config.frameDuration) >>> 0;
      if (offset + size <= data.length) {
        if (size > 0) this.emit(timestamp, Buffer.from(data.subarray(offset, offset + size)), lossBefore && i === 0);
        offset += size;
        continue;
      }
      if (sizes.length === 1 && !packet.marker) {
        // The first fragment of an AU that spans packets.
        const part = Buffer.from(data.subarray(offset));
        this.fragment = { timestamp, size, parts: [part], received: part.length };
        return;
      }
      this.counters.malformed++;
      return;
    }
  }

  flush(): void {
    this.fragment = undefined;
  }

  reset(): void {
    this.fragment = undefined;
  }

  private emit(timestamp: number, au: Buffer, damaged: boolean): void {
    this.counters.accessUnits++;
    this.onFrame({ timestamp, keyframe: true, units: [au], packets: packetizeAac(au), byteLength: au.length, damaged });
  }
}
