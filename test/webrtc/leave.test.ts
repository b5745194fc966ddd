// Clean leaving: 200 werift viewers connect over the real signalling protocol, receive video and
// leave, one after another. Afterwards the Source has no subscribers, every viewer and peer
// connection is garbage-collectable (nothing holds them: no track clone, timer, subscription or
// socket), and handles and heap are back near where they started. Also: a peer that never
// connects is reaped, and a peer that vanishes (no goodbye) is released.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocket } from 'ws';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { startSignallingServer, type SignallingHarness } from './harness.js';
import { watchOverSignalling } from './werift-client.js';

after(cleanupAll);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 50));
    gc();
  }
}

function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

describe('leaving', () => {
  let source: SyntheticSource;
  let harness: SignallingHarness;

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    harness = await startSignallingServer({
      sources: [source],
      viewerOptions: { connectTimeoutMs: 1500, disconnectGraceMs: 500, silenceTimeoutMs: 2500 },
    });
  });
  after(async () => {
    await harness.close();
    source.close();
  });

  test('200 viewers connect and leave one after another: nothing is left behind', { timeout: 240_000 }, async (t) => {
    // One viewer first, so lazily created singletons (certificates, JIT) are in the baseline.
    const warm = await watchOverSignalling(harness.url, 'cam1');
    await warm.receiver.waitFor(() => warm.receiver.accessUnits >= 1, 10_000, 'warm-up frame');
    await warm.close();
    await new Promise((r) => setTimeout(r, 300));
    harness.viewers.length = 0;
    await settle();
    const baseHeap = process.memoryUsage().heapUsed;
    const baseHandles = handleCounts();

    const refs: Array<WeakRef<object>> = [];
    const started = performance.now();
    for (let i = 0; i < 200; i++) {
      const client = await watchOverSignalling(harness.url, 'cam1', { keepVideo: false });
      await client.receiver.waitFor(() => client.receiver.accessUnits >= 1, 10_000, `viewer ${i}: a frame`);
      const viewer = harness.viewers.pop()!;
      refs.push(new WeakRef(viewer));
      // The peer connection is gone already once the viewer has settled (viewer-settle.ts).
      const pc = viewer.peerConnection;
      if (pc) refs.push(new WeakRef(pc));
      // No werift track exists on the server side at any time (the fan-out does not use tracks).
      assert.ok(!pc || pc.getTransceivers().every((tr) => tr.sender.track === null));
      // Alternate the ways of leaving: a polite stop, and a socket that just closes.
      if (i % 2 === 0) await client.close();
      else {
        client.ws.terminate();
        await client.receiver.close();
      }
      await new Promise<void>((resolve) => (viewer.closed ? resolve() : viewer.once('closed', () => resolve())));
    }
    const elapsed = performance.now() - started;
    await new Promise((r) => setTimeout(r, 500));
    await settle();

    assert.equal(source.subscriberCount, 0, 'the Source has no subscribers');
    assert.equal(source.counters.subscribes, source.counters.unsubscribes);
    assert.equal(harness.limits.count('cam1'), 0, 'every viewer slot was released');
    const alive = refs.filter((r) => r.deref() !== undefined).length;
    const heapGrowth = process.memoryUsage().heapUsed - baseHeap;
    const handles = handleCounts();
    t.diagnostic(`200 viewers in ${(elapsed / 1000).toFixed(1)} s; still reachable: ${alive} of ${refs.length}; heap ${(heapGrowth / 1048576).toFixed(1)} MiB; handles ${JSON.stringify(handles)} (baseline ${JSON.stringify(baseHandles)})`);
    assert.ok(alive <= 2, `${alive} viewers/peer connections are still reachable`);
    for (const kind of ['UDPWRAP', 'Timeout', 'TCPSocketWrap']) {
      assert.ok((handles[kind] ?? 0) <= (baseHandles[kind] ?? 0) + 2, `${kind}: ${handles[kind] ?? 0} vs ${baseHandles[kind] ?? 0}`);
    }
    assert.ok(heapGrowth < 15 * 1048576, `heap grew by ${(heapGrowth / 1048576).toFixed(1)} MiB`);
  });

  test('a peer that never connects is reaped after the connect timeout', async () => {
    const ws = new WebSocket(harness.url);
    await new Promise((r) => ws.once('open', r));
    const messages: Array<Record<string, unknown>> = [];
    ws.on('message', (d: Buffer) => messages.push(JSON.parse(d.toString('utf8')) as Record<string, unknown>));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(JSON.stringify({ type: 'watch', camera: 'cam1' }));
    // Never answer. The viewer (connectTimeoutMs 1500) is released and the socket closed.
    const code = await closed;
    assert.equal(code, 4002);
    assert.ok(messages.some((m) => m.type === 'offer'));
    assert.ok(messages.some((m) => m.type === 'state' && m.state === 'retrying'), JSON.stringify(messages.map((m) => m.type)));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(source.subscriberCount, 0);
    assert.equal(harness.limits.count('cam1'), 0);
  });

  test('a peer that vanishes without a word (socket open, media gone) is released', async () => {
    const client = await watchOverSignalling(harness.url, 'cam1', { keepVideo: false });
    await client.receiver.waitFor(() => client.receiver.accessUnits >= 1, 10_000, 'a frame');
    const viewer = harness.viewers.at(-1)!;
    // Close only the media side: ICE consent checks stop being answered.
    await client.receiver.close();
    const gone = performance.now();
    const code = await new Promise<number>((resolve) => client.ws.once('close', (c) => resolve(c)));
    assert.ok(viewer.closed);
    assert.equal(code, 4002, 'the page is told to reconnect');
    assert.ok(performance.now() - gone < 6_000, 'released within the silence timeout, not werift\'s 30 s');
    assert.equal(source.subscriberCount, 0);
    client.ws.terminate();
  });
});
