/**
 * Issue 4 "Done when: Clean leaving", on the real chain. test/webrtc/leave.test.ts proves it with a
 * synthetic source behind a bare signalling server; here the viewers hang off the real thing: a
 * GStreamer camera → the plugin's RTSP client → Source → the production web server (createWebServer,
 * /signal and WHEP as plugin-services wires them, access control left out) → werift clients.
 *
 * 200 viewers connect, receive a keyframe and leave, one after another, leaving in three ways: a
 * polite `stop`, a socket that just drops, and WHEP POST + DELETE. Afterwards: the Source has no
 * subscriber, every viewer slot and WHEP session is released, no viewer or werift peer connection is
 * reachable any more (none ever had a werift track: the fan-out writes SRTP itself), heap and handles
 * are back near the baseline, the camera kept one RTSP session throughout, and once the idle timeout
 * passes the Source lets go of the camera too.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Source } from '../../src/media/source.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { createSignallingHandler } from '../../src/webrtc/signalling.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import type { ViewerPeer } from '../../src/webrtc/viewer-peer.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { cleanupAll } from '../helpers/processes.js';
import { WeriftReceiver, watchOverSignalling } from '../webrtc/werift-client.js';
import { sleep } from './webrtc-helpers.js';

after(cleanupAll);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const VIEWERS = 200;
const IDLE_TIMEOUT_MS = 2000;

async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    await sleep(50);
    gc();
  }
}

function handleCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;

describe('e2e: 200 viewers join and leave the real camera chain', { timeout: 240_000 }, () => {
  let camera: FakeCamera;
  let source: Source;
  let server: WebServer;
  let whep: WhepEndpoint;
  let limits: ViewerLimiter;
  let base: string;
  const viewers: ViewerPeer[] = [];

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 25, audio: 'pcmu', bitrateKbps: 600 });
    source = new Source({
      id: 'front',
      name: 'Front',
      upstream: rtspUpstream({ url: camera.url, cameraName: 'Front', logger: silentLogger }),
      idleTimeoutMs: IDLE_TIMEOUT_MS,
    });
    const registry = { get: (id: string) => (id === source.id ? source : undefined), list: () => [source] };
    limits = new ViewerLimiter({ maxViewersPerCamera: 1000 });
    const onViewer = (viewer: ViewerPeer): void => {
      viewers.push(viewer);
    };
    whep = createWhepHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS, onViewer });
    server = createWebServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      signalling: createSignallingHandler({ registry, limits, ice: LOOPBACK_ICE_SETTINGS, onViewer }),
      whep,
    });
    base = (await server.listen()).url;
  });

  after(async () => {
    await whep?.closeAll();
    await server?.close();
    await source?.close();
    await camera?.close();
  });

  /** One viewer: joins, waits for its first keyframe, leaves in the `i % 3`th way. */
  async function oneViewer(i: number): Promise<ViewerPeer> {
    if (i % 3 === 2) {
      const peer = new WeriftReceiver({ keepVideo: false });
      try {
        const posted = await fetch(`${base}whep/front`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: await peer.offer() });
        assert.equal(posted.status, 201, `viewer ${i}: WHEP ${posted.status}`);
        const location = posted.headers.get('Location')!;
        await peer.applyAnswer(await posted.text());
        await peer.waitFor(() => peer.keyframes >= 1, 10_000, `viewer ${i}: a keyframe over WHEP`);
        const viewer = viewers.at(-1)!;
        assert.equal((await fetch(`${base}${location.slice(1)}`, { method: 'DELETE' })).status, 200);
        return viewer;
      } finally {
        await peer.close();
      }
    }
    const client = await watchOverSignalling(`${base.replace(/^http/, 'ws')}signal`, 'front', { keepVideo: false });
    await client.receiver.waitFor(() => client.receiver.keyframes >= 1, 10_000, `viewer ${i}: a keyframe`);
    const viewer = viewers.at(-1)!;
    // The direct fan-out never gives werift a track to clone (the clone leak in NOTES.md cannot happen).
    // (Once the viewer has settled its peer connection is gone already: viewer-settle.ts.)
    const pc = viewer.peerConnection;
    assert.ok(!pc || pc.getTransceivers().every((t) => t.sender.track === null), `viewer ${i} has a werift track`);
    if (i % 3 === 0) {
      await client.close();
    } else {
      client.ws.terminate();
      await client.receiver.close();
    }
    return viewer;
  }

  it('e2e: afterwards the Source has 0 subscribers, nothing is reachable, heap and handles are back; one camera session throughout', async (t) => {
    // Warm-up, so lazily built singletons (certificates, JIT, the camera session) are in the baseline.
    for (let i = 0; i < 3; i++) await oneViewer(i);
    await sleep(300);
    viewers.length = 0;
    await settle();
    const baseHeap = process.memoryUsage().heapUsed;
    const baseRss = process.memoryUsage().rss;
    const baseHandles = handleCounts();

    const refs: Array<WeakRef<object>> = [];
    const sessions: number[] = [];
    const started = performance.now();
    for (let i = 0; i < VIEWERS; i++) {
      const viewer = await oneViewer(i);
      viewers.length = 0;
      refs.push(new WeakRef(viewer));
      if (viewer.peerConnection) refs.push(new WeakRef(viewer.peerConnection));
      await new Promise<void>((resolve) => (viewer.closed ? resolve() : viewer.once('closed', () => resolve())));
      if (i % 50 === 49) sessions.push(await camera.sessionCount());
    }
    const elapsed = performance.now() - started;
    await sleep(500);
    await settle();

    const alive = refs.filter((r) => r.deref() !== undefined).length;
    const heapGrowth = process.memoryUsage().heapUsed - baseHeap;
    const rssGrowth = process.memoryUsage().rss - baseRss;
    const handles = handleCounts();
    const counters = source.stats();
    t.diagnostic(
      `${VIEWERS} viewers (1/3 stop, 1/3 dropped socket, 1/3 WHEP DELETE) in ${(elapsed / 1000).toFixed(1)} s ` +
        `(${(elapsed / VIEWERS).toFixed(0)} ms each); still reachable: ${alive} of ${refs.length} viewers + peer connections; ` +
        `heap ${mib(baseHeap)} → ${mib(baseHeap + heapGrowth)} (${heapGrowth >= 0 ? '+' : ''}${mib(heapGrowth)}), RSS ${rssGrowth >= 0 ? '+' : ''}${mib(rssGrowth)}; ` +
        `handles ${JSON.stringify(handles)} (baseline ${JSON.stringify(baseHandles)}); camera sessions every 50 viewers: ${sessions.join(',')}`,
    );
    assert.equal(source.subscriberCount, 0, 'the Source has no subscribers');
    assert.equal(limits.count('front'), 0, 'every viewer slot was released');
    assert.equal(whep.sessionCount, 0, 'every WHEP session was released');
    assert.ok(alive <= 2, `${alive} viewers/peer connections are still reachable`);
    for (const kind of ['UDPWRAP', 'Timeout', 'TCPSocketWrap', 'TCPWRAP']) {
      assert.ok((handles[kind] ?? 0) <= (baseHandles[kind] ?? 0) + 2, `${kind}: ${handles[kind] ?? 0} vs ${baseHandles[kind] ?? 0} at the start`);
    }
    assert.ok(heapGrowth < 15 * 1048576, `heap grew by ${mib(heapGrowth)}`);
    assert.deepEqual([...new Set(sessions)], [1], `camera sessions: ${sessions.join(',')}`);
    assert.equal(counters.reconnects, 0, 'the camera session was never dropped');

    // Nobody watching: after the idle timeout the Source ends the camera session as well.
    await camera.waitForSessionCount(0, IDLE_TIMEOUT_MS + 5000);
    assert.equal(source.state.state, 'idle');
  });
});
