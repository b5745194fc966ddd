import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueuedSink } from '../../src/media/queued-sink.js';
import type { MediaFrame } from '../../src/media/types.js';

function frame(bytes: number, sequenceNumber = 0): MediaFrame {
  return {
    kind: 'video', codec: 'H264', clockRate: 90000, timestamp: 0, sequenceNumber, keyframe: false,
    units: [Buffer.alloc(bytes)], packets: [], receivedAt: 0,
  };
}

test('bounded by frames and bytes; write returns false when full and keeps nothing', () => {
  const sink = new QueuedSink({ maxFrames: 3, maxBytes: 1000 });
  assert.equal(sink.write(frame(100)), true);
  assert.equal(sink.write(frame(100)), true);
  assert.equal(sink.write(frame(100)), true);
  assert.equal(sink.write(frame(1)), false);
  assert.equal(sink.length, 3);
  sink.tryRead();
  assert.equal(sink.write(frame(900)), false, 'byte bound');
  assert.equal(sink.write(frame(800)), true);
  assert.equal(sink.byteLength, 1000);
  assert.equal(sink.rejected, 2);
  const empty = new QueuedSink({ maxBytes: 10 });
  assert.equal(empty.write(frame(1000)), true, 'an empty queue takes one oversized frame');
});

test('async iteration in order; close ends it after draining', async () => {
  const sink = new QueuedSink();
  sink.write(frame(1, 1));
  const seen: number[] = [];
  const reading = (async () => {
    for await (const f of sink) seen.push(f.sequenceNumber);
  })();
  await new Promise((resolve) => setImmediate(resolve));
  sink.write(frame(1, 2));
  sink.write(frame(1, 3));
  sink.close();
  await reading;
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(sink.write(frame(1)), false);
});

test('read() with an abort signal, and stop from the Source closes it', async () => {
  const sink = new QueuedSink();
  const controller = new AbortController();
  const pending = sink.read(controller.signal);
  controller.abort();
  assert.equal(await pending, undefined);
  const waiting = sink.read();
  sink.onState({ state: 'stopped' });
  assert.equal(await waiting, undefined);
  assert.equal(sink.closed, true);
});

test('breaking out of for-await closes the sink', async () => {
  const sink = new QueuedSink();
  sink.write(frame(1));
  sink.write(frame(1));
  for await (const f of sink) {
    assert.ok(f);
    break;
  }
  assert.equal(sink.closed, true);
});
