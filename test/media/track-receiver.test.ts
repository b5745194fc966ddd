/**
 * The Source's per-track receiver on its own (src/media/track-receiver.ts): in-order packets pass,
 * a reordered one is waited for, a hole that stays is counted as lost, duplicates are late, a stray
 * far outside the stream is dropped, and a real restart (confirmed by the next packet) goes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serializeRtp } from '../../src/media/rtp.js';
import { TrackReceiver, type ReceptionCounters } from '../../src/media/track-receiver.js';
import { FakeTime } from '../helpers/fake-time.js';

const PT = 96;

function packet(sequenceNumber: number, ssrc = 0x1234): Buffer {
  return serializeRtp({ payloadType: PT, sequenceNumber, timestamp: sequenceNumber * 3000, ssrc, marker: true }, Buffer.from([sequenceNumber & 0xff]));
}

function setup(reorderWaitMs = 30): { time: FakeTime; counters: ReceptionCounters; delivered: Array<[number, boolean]>; restarts: boolean[]; receiver: TrackReceiver } {
  const time = new FakeTime();
  const counters: ReceptionCounters = { packetsReceived: 0, packetsLost: 0, packetsLate: 0, packetsMalformed: 0 };
  const delivered: Array<[number, boolean]> = [];
  const restarts: boolean[] = [];
  const receiver = new TrackReceiver({
    payloadType: PT,
    counters,
    reorderWaitMs,
    now: time.clock,
    timers: time,
    deliver: (rtp, lossBefore) => delivered.push([rtp.sequenceNumber, lossBefore]),
    onRestart: (ssrcChanged) => restarts.push(ssrcChanged),
  });
  return { time, counters, delivered, restarts, receiver };
}

test('in-order packets pass at once; another payload type or garbage counts as malformed', () => {
  const { receiver, counters, delivered } = setup();
  for (const seq of [10, 11, 12]) receiver.push(packet(seq), 0);
  receiver.push(serializeRtp({ payloadType: 8, sequenceNumber: 13, timestamp: 0, ssrc: 0x1234, marker: false }, Buffer.alloc(1)), 0);
  receiver.push(Buffer.from([1, 2, 3]), 0);
  assert.deepEqual(delivered, [[10, false], [11, false], [12, false]]);
  assert.equal(counters.packetsReceived, 3);
  assert.equal(counters.packetsMalformed, 2);
});

test('a reordered packet is waited for, and what waited behind it follows in order', () => {
  const { receiver, counters, delivered, time } = setup();
  receiver.push(packet(1), 0);
  receiver.push(packet(3), 0);
  receiver.push(packet(4), 0);
  assert.deepEqual(delivered, [[1, false]]);
  receiver.push(packet(2), 0);
  assert.deepEqual(delivered.map(([seq]) => seq), [1, 2, 3, 4]);
  assert.equal(counters.packetsLost, 0);
  assert.equal(time.pending, 0, 'the reorder timer is stopped once the hole is filled');
});

test('a hole that stays is lost after the reorder wait, and a packet arriving after that is late', async () => {
  const { receiver, counters, delivered, time } = setup(30);
  receiver.push(packet(1), 0);
  receiver.push(packet(3), 0);
  await time.advance(29);
  assert.deepEqual(delivered, [[1, false]]);
  await time.advance(1);
  assert.deepEqual(delivered, [[1, false], [3, true]]);
  assert.equal(counters.packetsLost, 1);
  receiver.push(packet(2), time.now);
  assert.equal(counters.packetsLate, 1);
});

test('without a reorder wait a hole is loss at once; a duplicate is late', () => {
  const { receiver, counters, delivered } = setup(0);
  receiver.push(packet(1), 0);
  receiver.push(packet(4), 0);
  receiver.push(packet(4), 0);
  assert.deepEqual(delivered, [[1, false], [4, true]]);
  assert.equal(counters.packetsLost, 2);
  assert.equal(counters.packetsLate, 1);
});

test('one stray far outside the stream is dropped; a jump the next packet confirms is a restart', () => {
  const { receiver, counters, delivered, restarts } = setup();
  receiver.push(packet(100), 0);
  receiver.push(packet(30_000), 0); // stray: held
  receiver.push(packet(101), 0); // the stream goes on: the held one was a stray
  assert.equal(counters.packetsMalformed, 1);
  assert.deepEqual(restarts, []);
  receiver.push(packet(5, 0x9999), 0); // new SSRC: held until confirmed
  receiver.push(packet(6, 0x9999), 0);
  assert.deepEqual(restarts, [true]);
  assert.deepEqual(delivered.map(([seq]) => seq), [100, 101, 5, 6]);
});

test('stop() drops what waits and a pending reorder timer does nothing', async () => {
  const { receiver, delivered, time } = setup();
  receiver.push(packet(1), 0);
  receiver.push(packet(3), 0);
  receiver.stop();
  await time.advance(100);
  assert.deepEqual(delivered, [[1, false]]);
});
