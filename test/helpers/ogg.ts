// Ogg Opus (RFC 7845) written from bare Opus packets, so that a test can hand the packets an RTP
// stream carried to ffmpeg and read back the sound they hold. Pre-skip 0: decoded sample i is then
// sample i of the first packet, whatever the encoder's own priming was.
import { OggOpusWriter } from '../../src/media/ogg.js';

/** An Ogg Opus file of `packets` (one per page), mono or stereo, with pre-skip 0. */
export function oggOpusFile(packets: Buffer[], samplesPerPacket: number, channels = 1): Buffer {
  const writer = new OggOpusWriter(0x5eed);
  return Buffer.concat([
    writer.headers(channels),
    ...packets.map((packet, i) => writer.packet(packet, { samples: samplesPerPacket, last: i === packets.length - 1 })),
  ]);
}
