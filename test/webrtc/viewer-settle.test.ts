/**
 * A viewer whose werift peer connection has been let go (src/webrtc/viewer-settle.ts), against a
 * real werift client over the real WebSocket protocol, fed by a synthetic Source of real H.264 +
 * PCMU: werift goes after the client's first RTCP and is garbage-collected, and everything a
 * watching viewer needs goes on without it (media, NACK answers, loss reports, sender reports,
 * STUN consent checks); strangers' datagrams on its socket are dropped; closing it closes the
 * socket. Chromium's side of it (its consent checks, its DTLS alert on close) is in
 * viewer-browser.test.ts.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ViewerPeer } from '../../src/webrtc/viewer-peer.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { settled, startSignallingServer, type SignallingHarness } from './harness.js';
import { sleep } from '../helpers/wait.js';
import { watchOverSignalling, type SignallingClient } from './werift-client.js';

after(cleanupAll);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether a UDP socket can bind this address now ('bound'), or the error code it gets. */
async function bindable([host, port]: [string, number]): Promise<string> {
  const probe = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(port, host, () => resolve());
    });
    return 'bound';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  } finally {
    probe.close();
  }
}

/** The server's socket of this viewer, as the client's selected pair names it. */
function serverAddress(client: SignallingClient): [string, number] {
  const pair = client.receiver.pc.getTransceivers()[0]!.receiver.dtlsTransport.iceTransport.connection.nominated!;
  return [pair.remoteAddr[0], pair.remoteAddr[1]];
}

describe('a settled viewer, werift let go, with a werift client', () => {
  let source: SyntheticSource;
  let harness: SignallingHarness;
  /** Each viewer's werift peer connection, weakly, taken when it connected (before it settled). */
  const weriftOf = new Map<ViewerPeer, WeakRef<object>>();

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 50 });
    harness = await startSignallingServer({
      sources: [source],
      onViewer: (viewer) =>
        viewer.once('connected', () => {
          if (viewer.peerConnection) weriftOf.set(viewer, new WeakRef(viewer.peerConnection));
        }),
    });
  });
  after(async () => {
    await harness.close();
    source.close();
  });

  test("after the viewer's first RTCP werift is let go and collected; media, NACKs, loss and sender reports and consent checks go on", async () => {
    const client = await watchOverSignalling(harness.url, 'cam1');
    try {
      const receiver = client.receiver;
      await receiver.waitFor(() => receiver.accessUnits >= 1, 10_000, 'a frame');
      const viewer = harness.viewers.at(-1)!;
      await settled(viewer);
      const stats = viewer.stats();
      assert.equal(viewer.peerConnection, undefined);
      assert.ok(stats.timeline.weriftReleased! >= stats.timeline.connected!, JSON.stringify(stats.timeline));
      // werift's whole peer connection is unreachable now (its subscriptions, timers, DTLS and ICE state).
      const ref = weriftOf.get(viewer);
      assert.ok(ref, 'the peer connection was seen when the viewer connected');
      // (werift's close runs on for a moment: its promises, a STUN transaction being cancelled.)
      for (let i = 0; i < 60 && ref.deref() !== undefined; i++) {
        await sleep(50);
        gc();
      }
      assert.equal(ref.deref(), undefined, "werift's peer connection is still reachable");

      // Media go on, whole.
      const unitsAtSettle = receiver.accessUnits;
      await receiver.waitFor(() => receiver.accessUnits >= unitsAtSettle + 25 && receiver.markers.length >= 5, 10_000, 'a second of frames after settling');
      assert.equal(receiver.damaged, 0);
      // NACKs are answered from the history, through the settled socket.
      receiver.collectRtcp();
      const asked = receiver.markers.slice(-3).map((m) => m.seq);
      const duplicatesBefore = receiver.duplicates;
      await receiver.sendNack(asked);
      await receiver.waitFor(() => receiver.duplicates >= duplicatesBefore + asked.length, 10_000, 'the NACKed packets again');
      assert.equal(viewer.stats().retransmissions, asked.length);
      // Reported loss reaches the stats, and our sender reports reach the viewer.
      await receiver.reportLossUntil(64, () => viewer.stats().videoFractionLost === 0.25, 10_000, 'the reported loss in the stats');
      await receiver.waitFor(() => receiver.rtcpReceived.some((p) => p.type === 200), 5_000, 'a sender report');
      // werift's consent checks (every 4-6 s) are answered on the settled socket, and accepted.
      const pair = receiver.pc.getTransceivers()[0]!.receiver.dtlsTransport.iceTransport.connection.nominated!;
      const acceptedBefore = pair.responsesReceived;
      const answeredBefore = viewer.stats().consentChecksAnswered;
      await receiver.waitFor(() => viewer.stats().consentChecksAnswered > answeredBefore && pair.responsesReceived > acceptedBefore, 15_000, 'a consent check answered and accepted');
      assert.equal(viewer.stats().rtcpRefused, 0);
      assert.equal(viewer.stats().settledDatagramsDropped, 0);
      assert.equal(viewer.phase, 'connected');
    } finally {
      await client.close();
    }
  });

  test("datagrams from anyone but the viewer are dropped or refused and counted, nothing follows them, and the viewer plays on", async () => {
    const client = await watchOverSignalling(harness.url, 'cam1');
    const stranger = createSocket('udp4');
    try {
      const receiver = client.receiver;
      await receiver.waitFor(() => receiver.accessUnits >= 1, 10_000, 'a frame');
      const viewer = harness.viewers.at(-1)!;
      await settled(viewer);
      stranger.bind(0, '127.0.0.1');
      await once(stranger, 'listening');
      const [host, port] = serverAddress(client);
      // A Binding request, an RTCP-looking packet and a DTLS alert record: none of them the viewer's.
      const forged = [
        Buffer.from('000100002112a442000000000000000000000000', 'hex'),
        Buffer.concat([Buffer.from('80c90001deadbeef', 'hex'), Buffer.alloc(24)]),
        Buffer.concat([Buffer.from('15fefd0001000000000005001a', 'hex'), Buffer.alloc(26)]),
      ];
      for (const datagram of forged) stranger.send(datagram, port, host);
      // The Binding request has no credentials and the alert is not from the viewer: dropped. The
      // RTCP is read, since the viewer's own could come from a new address, and fails its check.
      await receiver.waitFor(() => (viewer.stats().settledDatagramsDropped ?? 0) >= 2 && viewer.stats().rtcpRefused >= 1, 5_000, 'the strangers’ datagrams counted');
      const units = receiver.accessUnits;
      await receiver.waitFor(() => receiver.accessUnits >= units + 10, 5_000, 'frames after the strangers');
      assert.equal(viewer.phase, 'connected');
      assert.equal(viewer.stats().rtcpRefused, 1);
      assert.equal(viewer.stats().pathChanges, 0, 'no stranger took the viewer’s media');
    } finally {
      stranger.close();
      await client.close();
    }
  });

  test('closing a settled viewer closes its socket (its port can be bound again), and the Source has no subscriber', async () => {
    const clients = await Promise.all([0, 1, 2].map(() => watchOverSignalling(harness.url, 'cam1', { keepVideo: false })));
    const viewers = harness.viewers.slice(-3);
    let addresses: Array<[string, number]>;
    try {
      await Promise.all(viewers.map((v) => settled(v)));
      addresses = clients.map((c) => serverAddress(c));
      // While the viewer watches, its socket is held: binding its port fails.
      assert.equal(await bindable(addresses[0]!), 'EADDRINUSE');
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    await Promise.all(viewers.map((v) => (v.closed ? undefined : once(v, 'closed'))));
    await sleep(100);
    for (const address of addresses) assert.equal(await bindable(address), 'bound', `the port of ${address.join(':')} is free again`);
    assert.equal(source.subscriberCount, 0);
  });
});
