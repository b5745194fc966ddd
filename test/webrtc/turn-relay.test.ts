// Viewers whose media goes through a real TURN server (Debian's coturn on loopback), the plugin set
// to relay only, as a home behind a NAT that forwards no port is: a werift viewer over the real
// WebSocket protocol and Chromium over WHEP. The packets leave on the TURN server's channel to the
// viewer, framed natively (or by the JavaScript fallback), and the video must arrive whole.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ViewerPeer } from '../../src/webrtc/viewer-peer.js';
import { LOOPBACK_ICE_SETTINGS, type IceSettings } from '../../src/webrtc/ice-config.js';
import { launchChromium, summarizeRtcStats, waitForFramesDecoded, waitForRtcStats } from '../helpers/browser.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { startTurnServer, type TurnServer } from '../helpers/turn-server.js';
import { sleep } from '../helpers/wait.js';
import { settled, startSignallingServer } from './harness.js';
import { watchOverSignalling, type SignallingClient } from './werift-client.js';
import { startWhepServer } from './whep-server.js';

after(cleanupAll);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The viewer's side of the pair werift nominated: whose candidates they are. */
function viewerPair(client: SignallingClient): { local?: string; remote?: string } {
  const pair = client.receiver.pc.iceTransports[0]?.connection.nominated;
  return { ...(pair ? { local: pair.localCandidate.type, remote: pair.remoteCandidate.type } : {}) };
}

async function watchUntil(client: SignallingClient, accessUnits: number): Promise<void> {
  await client.receiver.waitFor(() => client.receiver.accessUnits >= accessUnits, 20_000, `${accessUnits} access units`);
}

describe('viewers through a TURN relay (coturn)', () => {
  let source: SyntheticSource;
  let turn: TurnServer;
  let relayOnly: IceSettings;

  before(async () => {
    turn = await startTurnServer();
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    relayOnly = { ...LOOPBACK_ICE_SETTINGS, relayOnly: true, iceServers: [{ urls: turn.url, username: turn.username, credential: turn.credential }] };
  });
  after(async () => {
    source.close();
    await turn.close();
  });

  for (const sendPath of ['native', 'javascript'] as const) {
    test(`a werift viewer gets every frame through the relay, sent ${sendPath === 'native' ? 'natively' : 'by the JavaScript fallback'} on the TURN channel; werift is let go and NACKs, reports and consent checks go on through the relay`, async () => {
      const weriftOf = new Map<ViewerPeer, WeakRef<object>>();
      const harness = await startSignallingServer({
        sources: [source],
        ice: relayOnly,
        onViewer: (viewer) =>
          viewer.once('connected', () => {
            if (viewer.peerConnection) weriftOf.set(viewer, new WeakRef(viewer.peerConnection));
          }),
        ...(sendPath === 'javascript' ? { viewerOptions: { nativeFanout: { loaded: false as const, reason: 'this test' } } } : {}),
      });
      const client = await watchOverSignalling(harness.url, 'cam1').catch(async (error: unknown) => {
        await harness.close();
        throw error;
      });
      try {
        await watchUntil(client, 1);
        client.receiver.collectRtcp();
        await watchUntil(client, 75);
        const viewer = harness.viewers.at(-1)!;
        const stats = viewer.stats();
        assert.equal(stats.transport, 'turn', JSON.stringify(stats));
        assert.equal(stats.sendPath, sendPath);
        // The viewer's packets came from the relay's address: its nominated pair's remote side is
        // the server's relay candidate (the server gathered no other).
        assert.deepEqual(viewerPair(client), { local: 'host', remote: 'relay' });
        assert.equal(client.receiver.damaged, 0, client.receiver.auKinds);
        assert.ok(client.receiver.keyframes >= 2, `keyframes ${client.receiver.keyframes}`);
        assert.ok(client.receiver.audioPackets >= 50, `audio packets ${client.receiver.audioPackets}`);
        // Sender reports reach it through the relay too (sendDatagram on the channel).
        await client.receiver.waitFor(() => client.receiver.rtcpReceived.some((p) => p.type === 200), 10_000, 'a sender report');
        assert.equal(stats.congestionEvents, 0);

        // werift is let go after the viewer's first RTCP; its TURN client is kept.
        await settled(viewer);
        assert.ok(viewer.peerConnection === undefined, 'the viewer holds no peer connection');
        assert.equal(viewer.stats().transport, 'turn');
        // werift's peer connection is collected: the TURN client kept holds nothing of it.
        const ref = weriftOf.get(viewer);
        assert.ok(ref, 'the peer connection was seen when the viewer connected');
        for (let i = 0; i < 60 && ref.deref() !== undefined; i++) {
          await sleep(50);
          gc();
        }
        assert.ok(ref.deref() === undefined, "werift's peer connection is still reachable");
        const receiver = client.receiver;
        const unitsAtSettle = receiver.accessUnits;
        await receiver.waitFor(() => receiver.accessUnits >= unitsAtSettle + 25 && receiver.markers.length >= 5, 10_000, 'a second of frames after settling');
        // The viewer's RTCP comes back through the relay: NACKs are answered, loss is read.
        const asked = receiver.markers.slice(-3).map((m) => m.seq);
        const duplicatesBefore = receiver.duplicates;
        await receiver.sendNack(asked);
        await receiver.waitFor(() => receiver.duplicates >= duplicatesBefore + asked.length, 10_000, 'the NACKed packets again');
        await receiver.reportLossUntil(64, () => viewer.stats().videoFractionLost === 0.25, 10_000, 'the reported loss in the stats');
        // werift's consent checks (every 4-6 s) reach the project through the relay, and its answers go back on the channel.
        const pair = receiver.pc.getTransceivers()[0]!.receiver.dtlsTransport.iceTransport.connection.nominated!;
        const acceptedBefore = pair.responsesReceived;
        const answeredBefore = viewer.stats().consentChecksAnswered;
        await receiver.waitFor(() => viewer.stats().consentChecksAnswered > answeredBefore && pair.responsesReceived > acceptedBefore, 15_000, 'a consent check answered and accepted');
        assert.equal(receiver.damaged, 0);
        assert.equal(viewer.stats().rtcpRefused, 0);
        assert.equal(viewer.stats().settledDatagramsDropped, 0);
        // Leaving: the viewer's DTLS alert, through the relay, releases it at once.
        const closed = new Promise<string>((resolve) => viewer.once('closed', (reason: string) => resolve(reason)));
        const leftAt = performance.now();
        await client.close();
        assert.equal(await closed, 'closed');
        assert.ok(performance.now() - leftAt < 2_000, `released ${Math.round(performance.now() - leftAt)} ms after the viewer left`);
      } finally {
        await client.close();
        await harness.close();
      }
    });
  }

  test('the TURN server dies mid-stream: the relayed viewer is released, and a direct viewer of the same camera watches on', async (t) => {
    // Its own coturn, so the other tests keep theirs.
    const dying = await startTurnServer();
    const relayed = await startSignallingServer({
      sources: [source],
      ice: { ...relayOnly, iceServers: [{ urls: dying.url, username: dying.username, credential: dying.credential }] },
      // A relayed viewer that hears nothing is let go after this long (10 s by default).
      viewerOptions: { silenceTimeoutMs: 3_000 },
    });
    const direct = await startSignallingServer({ sources: [source] });
    const viaRelay = await watchOverSignalling(relayed.url, 'cam1');
    const straight = await watchOverSignalling(direct.url, 'cam1');
    try {
      await Promise.all([watchUntil(viaRelay, 25), watchUntil(straight, 25)]);
      const viewer = relayed.viewers.at(-1)!;
      assert.equal(viewer.stats().transport, 'turn');
      // Settled: nothing of werift's is left to notice the relay is gone; the viewer's silence must.
      await settled(viewer);
      const closed = new Promise<string>((resolve) => viewer.once('closed', (reason: string) => resolve(reason)));
      await dying.close();
      const diedAt = Date.now();
      const reason = await Promise.race([closed, new Promise<string>((resolve) => setTimeout(() => resolve('still open after 20 s'), 20_000))]);
      assert.notEqual(reason, 'still open after 20 s');
      assert.equal(viewer.phase, 'closed');
      // Meanwhile the direct viewer never stopped: 2 s of video after the relay's viewer was let go.
      const before = straight.receiver.accessUnits;
      await watchUntil(straight, before + 50);
      assert.equal(straight.receiver.damaged, 0);
      assert.equal(direct.viewers.at(-1)!.phase, 'connected');
      t.diagnostic(`relayed viewer released ${Date.now() - diedAt} ms after its TURN server died: ${reason}`);
    } finally {
      await viaRelay.close();
      await straight.close();
      await relayed.close();
      await direct.close();
    }
  });

  test('Chromium plays it over WHEP through the relay', async () => {
    const viewers: ViewerPeer[] = [];
    const whep = await startWhepServer({ source, ice: relayOnly, onViewer: (viewer) => viewers.push(viewer) });
    const chromium = await launchChromium();
    try {
      const page = await chromium.openPage(`${whep.base}/`);
      const stats = await waitForFramesDecoded(page, 50, 20_000);
      const pair = stats.flatMap((pc) => pc.candidatePairs).find((p) => p.selected || p.nominated);
      assert.equal(pair?.remoteCandidateType, 'relay', summarizeRtcStats(stats));
      const viewer = viewers.at(-1)!;
      assert.equal(viewer.stats().transport, 'turn', JSON.stringify(viewer.stats()));
      assert.equal(viewer.stats().sendPath, 'native');
      // werift let go, Chromium's consent checks are answered through the relay, and it plays on.
      await settled(viewer);
      const decoded = Math.max(...stats.map((pc) => pc.video?.framesDecoded ?? 0));
      const later = await waitForRtcStats(page, (all) => all.some((pc) => (pc.video?.framesDecoded ?? 0) >= decoded + 50) && viewer.stats().consentChecksAnswered >= 1, { timeoutMs: 15_000 }).catch(
        (error: unknown) => assert.fail(`${String(error)}; server viewer ${JSON.stringify(viewer.stats())}`),
      );
      assert.equal(later.find((pc) => (pc.video?.framesDecoded ?? 0) >= decoded + 50)?.connectionState, 'connected', summarizeRtcStats(later));
      assert.equal(viewer.phase, 'connected');
    } finally {
      await chromium.close();
    }
  });
});
