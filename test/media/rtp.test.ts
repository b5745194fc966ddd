import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseRtp,
  seqBefore,
  seqDelta,
  serializeRtp,
  timestampDelta,
  writeRtpHeader,
} from '../../src/media/rtp.js';
import type { RtpPacketView } from '../../src/media/types.js';

function header(options: { version?: number; padding?: boolean; extension?: boolean; csrc?: number; marker?: boolean } = {}): Buffer {
  const b = Buffer.alloc(12);
  b[0] = ((options.version ?? 2) << 6) | (options.padding ? 0x20 : 0) | (options.extension ? 0x10 : 0) | (options.csrc ?? 0);
  b[1] = (options.marker ? 0x80 : 0) | 96;
  b.writeUInt16BE(65535, 2);
  b.writeUInt32BE(0xdeadbeef, 4);
  b.writeUInt32BE(0x01020304, 8);
  return b;
}

function ok(result: RtpPacketView | string): RtpPacketView {
  assert.equal(typeof result, 'object', `expected a packet, got ${String(result)}`);
  return result as RtpPacketView;
}

test('parses a plain packet', () => {
  const packet = ok(parseRtp(Buffer.concat([header({ marker: true }), Buffer.from([1, 2, 3])])));
  assert.equal(packet.version, 2);
  assert.equal(packet.marker, true);
  assert.equal(packet.payloadType, 96);
  assert.equal(packet.sequenceNumber, 65535);
  assert.equal(packet.timestamp, 0xdeadbeef);
  assert.equal(packet.ssrc, 0x01020304);
  assert.deepEqual(packet.csrcs, []);
  assert.deepEqual([...packet.payload], [1, 2, 3]);
});

test('rejects a wrong version and truncated headers', () => {
  assert.equal(parseRtp(Buffer.concat([header({ version: 1 }), Buffer.from([1])])), 'version');
  assert.equal(parseRtp(Buffer.concat([header({ version: 3 }), Buffer.from([1])])), 'version');
  assert.equal(parseRtp(Buffer.alloc(0)), 'short');
  assert.equal(parseRtp(header().subarray(0, 11)), 'short');
  assert.equal(parseRtp(header()), 'empty');
});

test('skips CSRCs and reads them', () => {
  const csrcs = Buffer.alloc(8);
  csrcs.writeUInt32BE(7, 0);
  csrcs.writeUInt32BE(8, 4);
  const packet = ok(parseRtp(Buffer.concat([header({ csrc: 2 }), csrcs, Buffer.from([9])])));
  assert.deepEqual(packet.csrcs, [7, 8]);
  assert.deepEqual([...packet.payload], [9]);
  assert.equal(parseRtp(Buffer.concat([header({ csrc: 15 }), Buffer.alloc(20)])), 'csrc-overflow');
});

test('skips a header extension, and rejects one that overruns', () => {
  const extension = Buffer.from([0xbe, 0xde, 0x00, 0x01, 0x10, 0xaa, 0x00, 0x00]);
  const packet = ok(parseRtp(Buffer.concat([header({ extension: true }), extension, Buffer.from([5, 6])])));
  assert.equal(packet.extension, true);
  assert.deepEqual([...packet.payload], [5, 6]);
  const lying = Buffer.from([0xbe, 0xde, 0x00, 0x09, 0, 0, 0, 0]);
  assert.equal(parseRtp(Buffer.concat([header({ extension: true }), lying])), 'extension-overflow');
  assert.equal(parseRtp(Buffer.concat([header({ extension: true }), Buffer.from([0xbe])])), 'extension-overflow');
});

test('removes padding and rejects impossible padding', () => {
  const packet = ok(parseRtp(Buffer.concat([header({ padding: true }), Buffer.from([1, 2, 0, 0, 3])])));
  assert.equal(packet.padding, true);
  assert.deepEqual([...packet.payload], [1, 2]);
  assert.equal(parseRtp(Buffer.concat([header({ padding: true }), Buffer.from([1, 0])])), 'padding-invalid');
  assert.equal(parseRtp(Buffer.concat([header({ padding: true }), Buffer.from([1, 200])])), 'padding-invalid');
  assert.equal(parseRtp(Buffer.concat([header({ padding: true }), Buffer.from([2, 2])])), 'empty');
});

test('never throws on random bytes', () => {
  let seed = 1;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 20000; i++) {
    const buf = Buffer.alloc(Math.floor(random() * 40));
    for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(random() * 256);
    if (buf.length > 0 && random() < 0.7) buf[0] = (buf[0]! & 0x3f) | 0x80;
    const result = parseRtp(buf);
    if (typeof result !== 'string') assert.ok(result.payload.length > 0);
  }
});

test('serialises into a preallocated buffer and round-trips', () => {
  const fields = { marker: true, payloadType: 111, sequenceNumber: 0x1234, timestamp: 0xfffffff0, ssrc: 0xcafebabe };
  const target = Buffer.alloc(100, 0xff);
  assert.equal(writeRtpHeader(target, fields, 10), 22);
  const parsed = ok(parseRtp(Buffer.concat([target.subarray(10, 22), Buffer.from([42])])));
  assert.deepEqual(
    { marker: parsed.marker, payloadType: parsed.payloadType, sequenceNumber: parsed.sequenceNumber, timestamp: parsed.timestamp, ssrc: parsed.ssrc },
    fields,
  );
  const whole = ok(parseRtp(serializeRtp({ ...fields, sequenceNumber: 70000 }, Buffer.from([1, 2]))));
  assert.equal(whole.sequenceNumber, 70000 & 0xffff);
  assert.deepEqual([...whole.payload], [1, 2]);
});

test('sequence comparison survives the wrap', () => {
  assert.equal(seqDelta(65535, 0), 1);
  assert.equal(seqDelta(0, 65535), -1);
  assert.equal(seqDelta(65500, 30), 66);
  assert.equal(seqBefore(65535, 2), true);
  assert.equal(seqBefore(2, 65535), false);
  assert.equal(seqBefore(5, 5), false);
  assert.equal(timestampDelta(0xffffff00, 0x100), 0x200);
  assert.equal(timestampDelta(0x100, 0xffffff00), -0x200);
});
