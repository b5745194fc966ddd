// ReorderBuffer: packets that arrived ahead of a hole, kept as copies and given back in sequence order.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_REORDER_PACKETS, ReorderBuffer } from '../../src/media/reorder-buffer.js';
import type { RtpPacketView } from '../../src/media/types.js';

function packet(sequenceNumber: number, payload = Buffer.from([sequenceNumber & 0xff])): RtpPacketView {
  return { version: 2, padding: false, extension: false, marker: false, payloadType: 96, sequenceNumber, timestamp: 0, ssrc: 1, csrcs: [7], payload };
}

describe('ReorderBuffer', () => {
  it('keeps a copy: the upstream may reuse its buffers after handing a packet over', () => {
    const buffer = new ReorderBuffer();
    const payload = Buffer.from([1, 2, 3]);
    const original = packet(10, payload);
    assert.equal(buffer.hold(original), true);
    payload.fill(0);
    original.csrcs.push(99);
    const held = buffer.take(10)!;
    assert.deepEqual([...held.payload], [1, 2, 3]);
    assert.deepEqual(held.csrcs, [7]);
    assert.equal(buffer.size, 0);
  });

  it('refuses a duplicate of a packet already waiting, and take of a missing one is undefined', () => {
    const buffer = new ReorderBuffer();
    assert.equal(buffer.hold(packet(5)), true);
    assert.equal(buffer.hold(packet(5, Buffer.from([42]))), false);
    assert.equal(buffer.size, 1);
    assert.equal(buffer.take(6), undefined);
    assert.deepEqual([...buffer.take(5)!.payload], [5], 'the first copy stays');
    assert.equal(buffer.take(5), undefined, 'taken once');
  });

  it('drains in sequence order counted from the expected number, across the 16-bit wrap', () => {
    const buffer = new ReorderBuffer();
    for (const seq of [1, 65535, 0, 3, 65534]) buffer.hold(packet(seq));
    assert.deepEqual(buffer.drain(65534).map((p) => p.sequenceNumber), [65534, 65535, 0, 1, 3]);
    assert.equal(buffer.size, 0);
    assert.deepEqual(buffer.drain(0), []);
  });

  it('drain puts packets from before the expected number last (they are the oldest, about to be dropped)', () => {
    const buffer = new ReorderBuffer();
    for (const seq of [99, 101, 100]) buffer.hold(packet(seq));
    assert.deepEqual(buffer.drain(100).map((p) => p.sequenceNumber), [100, 101, 99]);
  });

  it('is full at maxPackets; clear empties it', () => {
    const buffer = new ReorderBuffer(3);
    buffer.hold(packet(1));
    buffer.hold(packet(2));
    assert.equal(buffer.full, false);
    buffer.hold(packet(3));
    assert.equal(buffer.full, true);
    buffer.clear();
    assert.equal(buffer.size, 0);
    assert.equal(buffer.full, false);
    assert.equal(new ReorderBuffer().maxPackets, DEFAULT_REORDER_PACKETS);
  });
});
