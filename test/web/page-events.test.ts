/**
 * The watch page's one event stream (src/web/page/events.js), with EventSource stubbed: the doorbell
 * alerts and every PTZ panel share a single EventSource, opened by the first subscriber and closed
 * when the last one leaves; each listener gets its own event type's JSON objects only.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

interface PageEvents {
  subscribe(type: string, listener: (data: Record<string, unknown>) => void): () => void;
}

/** Stands in for the browser's EventSource: records instances, listeners and close(). */
class StubEventSource {
  static made: StubEventSource[] = [];
  readonly listeners = new Map<string, Set<(event: { data: string }) => void>>();
  closed = false;
  constructor(readonly url: string) {
    StubEventSource.made.push(this);
  }
  addEventListener(type: string, listener: (event: { data: string }) => void): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type)!.add(listener);
  }
  removeEventListener(type: string, listener: (event: { data: string }) => void): void {
    this.listeners.get(type)?.delete(listener);
  }
  close(): void {
    this.closed = true;
  }
  emit(type: string, data: string): void {
    for (const listener of this.listeners.get(type) ?? []) listener({ data });
  }
}

const globals = globalThis as unknown as { EventSource?: unknown };
const realEventSource = globals.EventSource;
after(() => {
  globals.EventSource = realEventSource;
});

describe('watch page: the shared event stream', () => {
  it('one EventSource for every subscriber, open while any listens, closed when none does', async () => {
    globals.EventSource = StubEventSource;
    // A fresh module: its stream is per page. (Plain browser JavaScript: typed here by hand.)
    const { subscribe } = (await import(`../../src/web/page/events.js?fresh=${Date.now()}`)) as PageEvents;
    const doorbell: unknown[] = [];
    const ptz: unknown[] = [];
    const stopDoorbell = subscribe('doorbell', (data) => doorbell.push(data));
    const stopPtzA = subscribe('ptz', (data) => ptz.push(data));
    const stopPtzB = subscribe('ptz', () => undefined);
    assert.equal(StubEventSource.made.length, 1, 'one stream for three listeners');
    const stream = StubEventSource.made[0]!;
    assert.equal(stream.url, '/api/events');

    stream.emit('ptz', JSON.stringify({ type: 'ptz', camera: 'dome', mover: 'other', name: null }));
    stream.emit('ptz', 'not json');
    stream.emit('ptz', '[1, 2]');
    stream.emit('doorbell', JSON.stringify({ type: 'doorbell', camera: 'front' }));
    assert.deepEqual(ptz, [{ type: 'ptz', camera: 'dome', mover: 'other', name: null }], 'only JSON objects, only its type');
    assert.deepEqual(doorbell, [{ type: 'doorbell', camera: 'front' }]);

    stopDoorbell();
    stopDoorbell(); // twice: no effect on the others' count
    stopPtzA();
    assert.equal(stream.closed, false, 'a PTZ panel still listens');
    stream.emit('doorbell', JSON.stringify({ camera: 'front' }));
    assert.equal(doorbell.length, 1, 'an ended subscription hears nothing more');
    stopPtzB();
    assert.equal(stream.closed, true, 'closed when nobody listens');

    const stopAgain = subscribe('doorbell', () => undefined);
    assert.equal(StubEventSource.made.length, 2, 'the next subscriber opens a new stream');
    stopAgain();
    assert.equal(StubEventSource.made[1]!.closed, true);
  });
});
