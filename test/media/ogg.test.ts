/**
 * Ogg and the Opus TOC (src/media/ogg.ts) against what the real ffmpeg/libopus writes, and against
 * pages built by hand for what ffmpeg happens not to do (a packet over two pages, a lost page).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { isOpusTags, OggOpusWriter, OggReader, opusPacketSamples, parseOpusHead } from '../../src/media/ogg.js';
import { oggOpusFile } from '../helpers/ogg.js';

test("ffmpeg's Ogg Opus, fed whole or a byte at a time: OpusHead, OpusTags, then 20 ms packets adding up to the sound", () => {
  const encoded = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=1',
    '-c:a', 'libopus', '-application', 'lowdelay', '-frame_duration', '20', '-page_duration', '20000', '-f', 'ogg', 'pipe:1',
  ]);
  assert.equal(encoded.status, 0, encoded.stderr.toString());
  const whole = new OggReader().push(encoded.stdout);
  const head = parseOpusHead(whole[0]!.data);
  assert.ok(head && whole[0]!.first, 'the first packet is the OpusHead, opening the stream');
  assert.equal(head.channels, 1);
  assert.ok(head.preSkip > 0 && head.preSkip < 960, `pre-skip ${head.preSkip}`);
  assert.ok(isOpusTags(whole[1]!.data));
  const audio = whole.slice(2);
  assert.ok(audio.every((p) => opusPacketSamples(p.data) === 960));
  // 1 s plus the pre-skip, in whole 20 ms packets.
  assert.equal(audio.length, Math.ceil((48_000 + head.preSkip) / 960));
  const reader = new OggReader();
  const bytewise = [...encoded.stdout].flatMap((byte) => reader.push(Buffer.from([byte])));
  assert.deepEqual(bytewise.map((p) => p.data), whole.map((p) => p.data));
  assert.equal(reader.pendingBytes, 0);
});

test('a packet continued over two pages comes out whole; a continuation whose start was lost is dropped, not glued on', () => {
  const big = Buffer.alloc(700, 7);
  big[0] = 0xfc; // CELT FB 20 ms, one frame
  const file = oggOpusFile([big], 960);
  const packets = new OggReader().push(file);
  assert.deepEqual(packets.map((p) => p.data.length), [19, 16, 700], 'lacing 255,255,190 on one page');
  // Split the 700-byte packet over two pages by hand: first page ends with a 255 lacing value.
  const page = (flags: number, lacing: number[], body: Buffer): Buffer => {
    const header = Buffer.alloc(27 + lacing.length);
    header.write('OggS', 0, 'latin1');
    header[5] = flags;
    header.writeUInt32LE(9, 14);
    header[26] = lacing.length;
    Buffer.from(lacing).copy(header, 27);
    return Buffer.concat([header, body]);
  };
  const first = page(0x02, [255, 255], big.subarray(0, 510));
  const second = page(0x01, [190], big.subarray(510));
  assert.deepEqual(new OggReader().push(Buffer.concat([first, second])).map((p) => p.data), [big]);
  // The first page lost: the continuation alone is not a packet start, but the reader cannot tell a
  // continuation from a whole packet except by the flag, and a flagged one without its start is dropped.
  const reader = new OggReader();
  reader.push(first);
  const fresh = page(0x00, [3], Buffer.from([0xfc, 1, 2]));
  assert.deepEqual(reader.push(fresh).map((p) => [...p.data]), [[0xfc, 1, 2]], 'a page not marked "continued" drops the held fragment');
  assert.throws(() => new OggReader().push(Buffer.from('this is not an ogg stream at all')), /capture pattern lost/);
});

test('Opus TOC durations (RFC 6716 3.1): frame sizes by configuration, and the frame count codes', () => {
  assert.equal(opusPacketSamples(Buffer.from([(1 << 3) | 0])), 960); // SILK NB 20 ms, one frame
  assert.equal(opusPacketSamples(Buffer.from([(3 << 3) | 0])), 2880); // SILK NB 60 ms
  assert.equal(opusPacketSamples(Buffer.from([(16 << 3) | 1])), 240); // CELT NB 2.5 ms, two frames
  assert.equal(opusPacketSamples(Buffer.from([(31 << 3) | 2])), 1920); // CELT FB 20 ms, two frames
  assert.equal(opusPacketSamples(Buffer.from([(31 << 3) | 3, 3])), 2880); // code 3, three frames
  assert.throws(() => opusPacketSamples(Buffer.from([(31 << 3) | 3])), /without its frame count/);
  assert.throws(() => opusPacketSamples(Buffer.alloc(0)), /empty/);
});

test('OggOpusWriter: ffmpeg decodes what it writes (a 1 kHz tone from libopus, re-paged a packet per page), and the reader reads it back', () => {
  const encoded = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000:duration=1',
    '-c:a', 'libopus', '-frame_duration', '20', '-f', 'ogg', 'pipe:1',
  ]);
  assert.equal(encoded.status, 0, encoded.stderr.toString());
  const audio = new OggReader().push(encoded.stdout).slice(2).map((p) => p.data);
  const writer = new OggOpusWriter();
  const file = Buffer.concat([writer.headers(1), ...audio.map((packet) => writer.packet(packet))]);
  const back = new OggReader().push(file);
  assert.equal(parseOpusHead(back[0]!.data)?.channels, 1);
  assert.ok(isOpusTags(back[1]!.data));
  assert.deepEqual(back.slice(2).map((p) => p.data), audio);
  const decoded = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'ogg', '-i', 'pipe:0', '-f', 's16le', '-ar', '8000', '-ac', '1', 'pipe:1'], { input: file });
  assert.equal(decoded.status, 0, `ffmpeg refused the pages (a CRC or header fault): ${decoded.stderr.toString()}`);
  const samples = new Int16Array(decoded.stdout.buffer, decoded.stdout.byteOffset, decoded.stdout.length / 2);
  assert.ok(samples.length > 7000, `${samples.length} samples`);
  // Zero crossings of the middle half second: a 1 kHz tone crosses 2000 times a second.
  let crossings = 0;
  for (let i = 2001; i < 6000; i++) if ((samples[i - 1]! < 0) !== (samples[i]! < 0)) crossings++;
  assert.ok(Math.abs(crossings - 1000) < 20, `${crossings} crossings in 0.5 s`);
});
