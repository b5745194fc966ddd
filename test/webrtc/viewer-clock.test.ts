// ViewerPeer's timeouts on a manual clock, over the real signalling protocol with werift viewers:
// the connect timeout and the silence timeout fire exactly when the clock says, not after a
// real-time wait with a margin (test/webrtc/leave.test.ts proves the same on the real clock).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { ViewerCloseReason } from '../../src/webrtc/viewer-peer.js';
import { FakeTime } from '../helpers/fake-time.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { startSignallingServer, type SignallingHarness } from './harness.js';
import { watchOverSignalling } from './werift-client.js';

after(cleanupAll);

describe('ViewerPeer on a manual clock', () => {
  let source: SyntheticSource;
  let harness: SignallingHarness;
  const time = new FakeTime();

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    harness = await startSignallingServer({
      sources: [source],
      // Both far beyond what real time reaches in this test: only the fake clock can fire them.
      viewerOptions: { connectTimeoutMs: 60_000, silenceTimeoutMs: 90_000, now: time.clock, timers: time },
    });
  });
  after(async () => {
    await harness.close();
    source.close();
  });

  it('a peer that never answers is released at the connect timeout, not a millisecond before', async () => {
    const ws = new WebSocket(harness.url);
    await once(ws, 'open');
    const offered = new Promise<void>((resolve) => ws.on('message', (d: Buffer) => {
      if ((JSON.parse(d.toString('utf8')) as { type: string }).type === 'offer') resolve();
    }));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const before = harness.viewers.length;
    ws.send(JSON.stringify({ type: 'watch', camera: 'cam1' }));
    await offered;
    const viewer = harness.viewers[before]!;
    const reason = new Promise<ViewerCloseReason>((resolve) => viewer.once('closed', (r: ViewerCloseReason) => resolve(r)));
    await time.advance(59_999);
    assert.equal(viewer.closed, false);
    await time.advance(1);
    assert.equal(await reason, 'connect-timeout');
    assert.equal(await closed, 4002, 'the page is told to reconnect');
    assert.equal(harness.limits.count('cam1'), 0);
  });

  it('a connected peer that goes silent is released once the silence timeout has passed on the next report tick', async () => {
    const client = await watchOverSignalling(harness.url, 'cam1', { keepVideo: false });
    await client.receiver.waitFor(() => client.receiver.accessUnits >= 1, 10_000, 'a frame');
    const viewer = harness.viewers.at(-1)!;
    assert.equal(viewer.phase, 'connected');
    // Its media side goes away: no more RTCP. The clock has not moved since it connected.
    await client.receiver.close();
    const reason = new Promise<ViewerCloseReason>((resolve) => viewer.once('closed', (r: ViewerCloseReason) => resolve(r)));
    // Sender-report ticks every 1000 ms; silence must exceed 90 000 ms, so the tick at 91 000 releases it.
    await time.advance(90_000);
    assert.equal(viewer.closed, false, 'silent for exactly the timeout: not yet');
    await time.advance(1000);
    assert.equal(await reason, 'disconnected');
    assert.equal(source.subscriberCount, 0);
    client.ws.terminate();
  });
});
