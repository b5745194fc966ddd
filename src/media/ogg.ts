/**
 * Ogg (RFC 3533) read from a pipe, and the little of Ogg Opus (RFC 7845) and the Opus TOC byte
 * (RFC 6716 3.1) the plugin needs: what ffmpeg writes with `-f ogg` when it encodes Opus for the
 * browsers (src/transcode/opus-audio.ts). `OggReader` cuts a byte stream that arrives in arbitrary
 * chunks back into packets, joining packets that span pages; `opusPacketSamples` says how long a
 * packet plays, so positions come from the packets themselves and not from how ffmpeg paged them.
 */

export interface OggPacket {
  data: Buffer;
  /** The logical stream's serial number. */
  serial: number;
  /** The packet opened its stream (the first packet of a beginning-of-stream page). */
  first: boolean;
}

const CAPTURE_PATTERN = 0x4f676753; // "OggS"
const HEADER_BYTES = 27;
/** A packet beyond this is not audio from our encoder: refuse it rather than buffer without end. */
const MAX_PACKET_BYTES = 256 * 1024;

export class OggReader {
  private pending: Buffer = Buffer.alloc(0);
  /** A packet continued onto the next page, per serial. */
  private readonly partial = new Map<number, Buffer[]>();

  /** Adds bytes; returns every packet now complete. Throws when the stream is not Ogg. */
  push(chunk: Buffer): OggPacket[] {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const packets: OggPacket[] = [];
    let at = 0;
    while (at + HEADER_BYTES <= data.length) {
      if (data.readUInt32BE(at) !== CAPTURE_PATTERN) throw new Error(`Ogg: capture pattern lost at byte ${at}`);
      if (data[at + 4] !== 0) throw new Error(`Ogg: stream structure version ${data[at + 4]} is not 0`);
      const flags = data[at + 5]!;
      const serial = data.readUInt32LE(at + 14);
      const segments = data[at + 26]!;
      if (at + HEADER_BYTES + segments > data.length) break;
      const table = data.subarray(at + HEADER_BYTES, at + HEADER_BYTES + segments);
      let bodyBytes = 0;
      for (const lacing of table) bodyBytes += lacing;
      const bodyStart = at + HEADER_BYTES + segments;
      if (bodyStart + bodyBytes > data.length) break;
      let parts = this.partial.get(serial) ?? [];
      // A page that does not say "continued" while we hold a fragment: the fragment is lost.
      if ((flags & 0x01) === 0) parts = [];
      let first = (flags & 0x02) !== 0;
      let offset = bodyStart;
      let size = 0;
      for (const lacing of table) {
        size += lacing;
        if (lacing === 255) continue;
        parts.push(data.subarray(offset, offset + size));
        offset += size;
        size = 0;
        const packet = Buffer.concat(parts);
        parts = [];
        if (packet.length > MAX_PACKET_BYTES) throw new Error(`Ogg: a packet of ${packet.length} bytes is too large`);
        packets.push({ data: packet, serial, first });
        first = false;
      }
      if (size > 0) {
        parts.push(Buffer.from(data.subarray(offset, offset + size)));
        if (parts.reduce((sum, part) => sum + part.length, 0) > MAX_PACKET_BYTES) throw new Error('Ogg: a packet spans too many pages');
      }
      if (parts.length > 0) this.partial.set(serial, parts);
      else this.partial.delete(serial);
      at = bodyStart + bodyBytes;
    }
    this.pending = Buffer.from(data.subarray(at));
    return packets;
  }

  /** Bytes of an unfinished page held back. */
  get pendingBytes(): number {
    return this.pending.length;
  }
}

/** What the OpusHead packet (RFC 7845 5.1) says that timing needs. */
export interface OpusHead {
  channels: number;
  /** Samples at 48 kHz the decoder drops from the start (the encoder's priming). */
  preSkip: number;
  inputSampleRate: number;
}

/** Reads an OpusHead packet; undefined when `packet` is not one. */
export function parseOpusHead(packet: Buffer): OpusHead | undefined {
  if (packet.length < 19 || packet.toString('latin1', 0, 8) !== 'OpusHead') return undefined;
  return { channels: packet[9]!, preSkip: packet.readUInt16LE(10), inputSampleRate: packet.readUInt32LE(12) };
}

/** True for the OpusTags comment packet, which carries no audio. */
export function isOpusTags(packet: Buffer): boolean {
  return packet.length >= 8 && packet.toString('latin1', 0, 8) === 'OpusTags';
}

/** Frame length in 48 kHz samples for each TOC configuration (RFC 6716 3.1, table 2). */
const FRAME_SAMPLES = [
  480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880, // SILK NB/MB/WB: 10/20/40/60 ms
  480, 960, 480, 960, // Hybrid SWB/FB: 10/20 ms
  120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, // CELT: 2.5/5/10/20 ms
];

/**
 * How many 48 kHz samples an Opus packet plays (RFC 6716 3.1): the TOC byte's frame size times its
 * frame count. Throws on an empty packet or a code-3 packet without its count byte.
 */
export function opusPacketSamples(packet: Buffer): number {
  if (packet.length === 0) throw new RangeError('Opus: empty packet');
  const toc = packet[0]!;
  const frameSamples = FRAME_SAMPLES[toc >> 3]!;
  const code = toc & 0x03;
  if (code === 0) return frameSamples;
  if (code !== 3) return 2 * frameSamples;
  if (packet.length < 2) throw new RangeError('Opus: a code-3 packet without its frame count');
  return (packet[1]! & 0x3f) * frameSamples;
}

/** CRC-32 of Ogg pages (RFC 3533 6): polynomial 0x04c11db7, not reflected, starting from 0. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

function oggCrc(page: Buffer): number {
  let crc = 0;
  for (const byte of page) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ byte) & 0xff]!) >>> 0;
  return crc;
}

/**
 * Writes one Ogg Opus stream (RFC 7845), a page per packet, for feeding received Opus to ffmpeg
 * (`-f ogg -i pipe:0`): a page per packet, so ffmpeg never waits for a page to fill, which would
 * add up to a second of delay to a talker's voice.
 */
export class OggOpusWriter {
  private sequence = 0;
  private granule = 0n;

  constructor(private readonly serial = 0x54414c4b /* "TALK" */) {}

  /** The two header pages: OpusHead (48 kHz, `channels`, no pre-skip) and an empty OpusTags. */
  headers(channels = 1): Buffer {
    const head = Buffer.alloc(19);
    head.write('OpusHead', 0, 'latin1');
    head[8] = 1; // version
    head[9] = channels;
    head.writeUInt16LE(0, 10); // pre-skip: packets come from a live encoder already primed
    head.writeUInt32LE(48_000, 12);
    head.writeInt16LE(0, 16); // output gain
    head[18] = 0; // channel mapping family 0: mono or stereo
    // No vendor string and no comments: 16 bytes.
    const tags = Buffer.alloc(16);
    tags.write('OpusTags', 0, 'latin1');
    return Buffer.concat([this.page(head, 0x02, 0n), this.page(tags, 0, 0n)]);
  }

  /**
   * One audio packet on its own page; the granule position advances by what it plays (read from
   * its TOC byte unless `samples` says). `last` marks the end of the stream.
   */
  packet(data: Buffer, options: { samples?: number; last?: boolean } = {}): Buffer {
    this.granule += BigInt(options.samples ?? opusPacketSamples(data));
    return this.page(data, options.last ? 0x04 : 0, this.granule);
  }

  private page(body: Buffer, flags: number, granule: bigint): Buffer {
    if (body.length > 255 * 255) throw new RangeError('Ogg: a packet this large does not fit one page');
    const lacing: number[] = [];
    let left = body.length;
    while (left >= 255) {
      lacing.push(255);
      left -= 255;
    }
    lacing.push(left);
    const page = Buffer.alloc(HEADER_BYTES + lacing.length + body.length);
    page.writeUInt32BE(CAPTURE_PATTERN, 0);
    page[4] = 0;
    page[5] = flags;
    page.writeBigInt64LE(granule, 6);
    page.writeUInt32LE(this.serial, 14);
    page.writeUInt32LE(this.sequence++, 18);
    page[26] = lacing.length;
    Buffer.from(lacing).copy(page, HEADER_BYTES);
    body.copy(page, HEADER_BYTES + lacing.length);
    page.writeUInt32LE(oggCrc(page), 22);
    return page;
  }
}
