// Ogg Opus (RFC 7845) written from bare Opus packets, so that a test can hand the packets an RTP
// stream carried to ffmpeg and read back the sound they hold. Pre-skip 0: decoded sample i is then
// sample i of the first packet, whatever the encoder's own priming was.

/** Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, zero start, no final xor. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let r = i << 24;
    for (let bit = 0; bit < 8; bit++) r = r & 0x80000000 ? (r << 1) ^ 0x04c11db7 : r << 1;
    table[i] = r >>> 0;
  }
  return table;
})();

function crc(data: Buffer): number {
  let value = 0;
  for (const byte of data) value = ((value << 8) ^ CRC_TABLE[((value >>> 24) ^ byte) & 0xff]!) >>> 0;
  return value;
}

function page(packet: Buffer, flags: number, granule: bigint, serial: number, sequence: number): Buffer {
  const lacing: number[] = [];
  let left = packet.length;
  while (left >= 255) {
    lacing.push(255);
    left -= 255;
  }
  lacing.push(left);
  const header = Buffer.alloc(27 + lacing.length);
  header.write('OggS', 0, 'latin1');
  header[5] = flags;
  header.writeBigInt64LE(granule, 6);
  header.writeUInt32LE(serial, 14);
  header.writeUInt32LE(sequence, 18);
  header[26] = lacing.length;
  Buffer.from(lacing).copy(header, 27);
  const out = Buffer.concat([header, packet]);
  out.writeUInt32LE(crc(out), 22);
  return out;
}

/** An Ogg Opus file of `packets` (one per page), mono or stereo, with pre-skip 0. */
export function oggOpusFile(packets: Buffer[], samplesPerPacket: number, channels = 1): Buffer {
  const serial = 0x5eed;
  const head = Buffer.alloc(19);
  head.write('OpusHead', 0, 'latin1');
  head[8] = 1;
  head[9] = channels;
  head.writeUInt16LE(0, 10);
  head.writeUInt32LE(48_000, 12);
  const tags = Buffer.alloc(16);
  tags.write('OpusTags', 0, 'latin1');
  const pages = [page(head, 0x02, 0n, serial, 0), page(tags, 0, 0n, serial, 1)];
  packets.forEach((packet, i) => {
    pages.push(page(packet, i === packets.length - 1 ? 0x04 : 0, BigInt((i + 1) * samplesPerPacket), serial, i + 2));
  });
  return Buffer.concat(pages);
}
