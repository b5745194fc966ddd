/**
 * The Annex-B reader (src/media/annexb.ts) against what the real ffmpeg/libx264 writes, fed whole,
 * a byte at a time and in random cuts, and against streams built by hand for the edge cases: 3- and
 * 4-byte start codes, a start code cut between chunks, bytes before the first start code, a unit
 * that never ends.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { AnnexBSplitter } from '../../src/media/annexb.js';

function all(splitter: AnnexBSplitter, chunks: Buffer[]): Buffer[] {
  return [...chunks.flatMap((c) => splitter.push(c)), ...splitter.flush()];
}

const START4 = Buffer.from([0, 0, 0, 1]);
const START3 = Buffer.from([0, 0, 1]);

test("libx264's Annex-B: whole, byte by byte and cut at random, the same units; an access unit delimiter before each of the 10 frames", () => {
  const encoded = spawnSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-frames:v', '10',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-aud', '1', '-g', '5', '-f', 'h264', 'pipe:1',
  ]);
  assert.equal(encoded.status, 0, encoded.stderr.toString());
  const whole = all(new AnnexBSplitter(), [encoded.stdout]);
  const types = whole.map((u) => u[0]! & 0x1f);
  assert.equal(types.filter((t) => t === 9).length, 10, `one delimiter per frame: ${types.join(' ')}`);
  assert.equal(types.filter((t) => t === 7).length, 2, 'an SPS before each of the 2 keyframes');
  assert.ok(whole.every((u) => u.length > 0 && u.at(-1) !== 0), 'no unit is empty or ends in a zero byte');
  // Put back together with 4-byte start codes, the units are the stream ffmpeg wrote (it writes 4-byte ones before parameter sets and delimiters, 3-byte ones before slices).
  const rebuilt = Buffer.concat(whole.flatMap((u) => [START3, u]));
  const stripped = Buffer.from(encoded.stdout.toString('latin1').replaceAll('\0\0\0\x01', '\0\0\x01'), 'latin1');
  assert.ok(rebuilt.equals(stripped), 'the units and the start codes between them are the whole stream');

  const bytewise = all(new AnnexBSplitter(), [...encoded.stdout].map((b) => Buffer.from([b])));
  assert.deepEqual(bytewise, whole);
  let seed = 7;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const chunks: Buffer[] = [];
  for (let at = 0; at < encoded.stdout.length;) {
    const size = 1 + Math.floor(random() * 700);
    chunks.push(encoded.stdout.subarray(at, at + size));
    at += size;
  }
  assert.deepEqual(all(new AnnexBSplitter(), chunks), whole);
});

test('hand-made streams: both start code lengths, a start code cut in every place, junk before the first start code', () => {
  const a = Buffer.from([0x09, 0xf0]);
  const b = Buffer.from([0x67, 0x42, 0x00, 0x1f, 0x00, 0x00, 0x03, 0x01]);
  const c = Buffer.from([0x65, 0x88, 0x84]);
  const stream = Buffer.concat([Buffer.from([0xff, 0x00, 0x12]), START4, a, START3, b, START4, c]);
  const expected = [a, b, c];
  for (let cut = 0; cut <= stream.length; cut++) {
    assert.deepEqual(all(new AnnexBSplitter(), [stream.subarray(0, cut), stream.subarray(cut)]), expected, `cut at ${cut}`);
  }
  // A unit is only complete once the next start code came.
  const splitter = new AnnexBSplitter();
  assert.deepEqual(splitter.push(Buffer.concat([START4, a, START4, b])), [a]);
  assert.deepEqual(splitter.push(START3), [b]);
  assert.deepEqual(splitter.flush(), []);
  // Nothing but junk, and nothing at all.
  assert.deepEqual(all(new AnnexBSplitter(), [Buffer.from([1, 2, 3, 0, 0])]), []);
  assert.deepEqual(all(new AnnexBSplitter(), []), []);
});

test('a unit that never ends is a clear error, not unbounded memory', () => {
  const splitter = new AnnexBSplitter(1024);
  assert.deepEqual(splitter.push(Buffer.concat([START4, Buffer.alloc(1000, 0x55)])), []);
  assert.throws(() => splitter.push(Buffer.alloc(100, 0x55)), /over 1024 bytes/);
});
