/**
 * Issue 18: scale-out on real Janus gateways (Debian's janus 1.1.2, started here on loopback with
 * an API secret and a streaming admin key). The camera is a real GStreamer RTSP camera read once by
 * the plugin's Source; the plugin publishes it on each gateway as one RTP copy; viewers are werift
 * peers that speak the plugin's own watch-page signalling and never learn a Janus address or
 * secret. What is checked:
 * - viewers are served by Janus (no peer in this process), decode the camera's H.264 and hear its
 *   PCMU, and spread over two gateways;
 * - the plugin sends one copy per gateway, whatever the number of viewers (forwarded packets against
 *   the camera's packets over the same window), and the camera has one session;
 * - a gateway that is killed: its viewers are told to reconnect and come back on the other one, the
 *   plugin stops sending to it, and when it restarts its mountpoint is made again and serves viewers;
 * - the API secret and admin key never appear in a log line.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Source } from '../../src/media/source.js';
import type { BroadcastSource } from '../../src/media/types.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { JanusGateway } from '../../src/scaleout/janus-gateway.js';
import { ScaleOut } from '../../src/scaleout/scale-out.js';
import type { Logger } from '../../src/util/logger.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { startJanus, type JanusGatewayProcess } from '../helpers/janus.js';
import { cleanupAll } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { startSignallingServer, type SignallingHarness } from '../webrtc/harness.js';
import { watchOverSignalling, type SignallingClient } from '../webrtc/werift-client.js';

after(cleanupAll);

const lines: string[] = [];
const recordingLogger: Logger = {
  info: (m) => lines.push(`info ${m}`),
  warn: (m) => lines.push(`warn ${m}`),
  error: (m) => lines.push(`error ${m}`),
  debug: (m) => lines.push(`debug ${m}`),
};


describe('scale-out: viewers served by real Janus gateways', { timeout: 180_000 }, () => {
  let camera: FakeCamera;
  let source: Source;
  let janusA: JanusGatewayProcess;
  let janusB: JanusGatewayProcess;
  let gatewayA: JanusGateway;
  let gatewayB: JanusGateway;
  let scaleOut: ScaleOut;
  let server: SignallingHarness;
  const clients: SignallingClient[] = [];

  before(async () => {
    [camera, janusA, janusB] = await Promise.all([
      FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 25, audio: 'pcmu', bitrateKbps: 600 }),
      startJanus({ apiSecret: 'api-secret-A-31', adminKey: 'admin-key-A-77' }),
      startJanus({ apiSecret: 'api-secret-B-31', adminKey: 'admin-key-B-77' }),
    ]);
    source = new Source({ id: 'yard', name: 'Yard', upstream: rtspUpstream({ url: camera.url, cameraName: 'Yard', logger: recordingLogger }), logger: recordingLogger, idleTimeoutMs: 500 });
    const gateway = (janus: JanusGatewayProcess): JanusGateway =>
      new JanusGateway({ url: janus.url, apiSecret: janus.apiSecret, adminKey: janus.adminKey, instanceKey: 'test-instance', logger: recordingLogger, retryMs: 200, maxRetryMs: 1000 });
    gatewayA = gateway(janusA);
    gatewayB = gateway(janusB);
    scaleOut = new ScaleOut([gatewayA, gatewayB]);
    scaleOut.publish({ id: 'yard', name: 'Yard', source });
    scaleOut.start();
    // Every viewer here is on 127.0.0.1: the budget of views still connecting per address is raised (web.maxConnectingViews).
    server = await startSignallingServer({ sources: [source as BroadcastSource], relays: scaleOut, logger: recordingLogger, limits: new ViewerLimiter({ maxViewersPerCamera: 1000, maxPendingPerOwner: 50 }) });
    await waitFor(() => gatewayA.serves('yard') && gatewayB.serves('yard'), 20_000, 'the camera published on both gateways');
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server?.close();
    await scaleOut?.stop();
    await source?.close();
    await camera?.close();
    await Promise.all([janusA?.stop(), janusB?.stop()]);
  });

  it('serves viewers from both gateways with one copy per gateway and one camera session', async () => {
    const viewers = 10;
    for (let i = 0; i < viewers; i++) clients.push(await watchOverSignalling(server.url, 'yard', { keepVideo: false }));
    await Promise.all(clients.map((c) => c.receiver.waitFor(() => c.receiver.keyframes >= 1 && c.receiver.accessUnits >= 50 && c.receiver.audioPackets >= 50, 30_000, 'a keyframe, 50 pictures and sound')));
    assert.equal(server.viewers.length, 0, 'no viewer peer in the plugin: Janus serves them all');
    assert.deepEqual([gatewayA.viewers, gatewayB.viewers], [viewers / 2, viewers / 2], 'spread evenly');
    assert.deepEqual({ ...scaleOut.cameraStats('yard'), packetsForwarded: 0 }, { gateways: 2, viewers, packetsForwarded: 0 }, 'what /metrics reads');
    assert.ok((scaleOut.cameraStats('yard')?.packetsForwarded ?? 0) > 0);
    for (const c of clients) assert.ok(c.messages.some((m) => m.type === 'state' && m.state === 'live'), 'the page is told it is live');

    // One copy per gateway: over the same window, each forwarder sends exactly the packets of the
    // frames the Source delivers (counted by a sink of its own), however many viewers there are.
    const forwarded = (g: JanusGateway): number => g.stats().cameras['yard']?.forwarded?.videoPackets ?? 0;
    let framePackets = 0;
    const counter = source.subscribe({ write: (frame) => ((framePackets += frame.kind === 'video' ? frame.packets.length : 0), true) }, { fromKeyframe: false });
    // (A sink subscribed without replay starts at the next keyframe; from then on it sees what the forwarders see.)
    await waitFor(() => framePackets > 0, 20_000, 'the counting sink at a keyframe');
    const start = { a: forwarded(gatewayA), b: forwarded(gatewayB), frames: framePackets };
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const sent = { a: forwarded(gatewayA) - start.a, b: forwarded(gatewayB) - start.b, frames: framePackets - start.frames };
    counter.unsubscribe();
    assert.ok(sent.frames > 100, `the camera's frames made ${sent.frames} video packets`);
    for (const [name, count] of [['A', sent.a], ['B', sent.b]] as const) {
      // The Source hands each frame to every sink in the same turn: the counts match exactly.
      assert.ok(count === sent.frames, `gateway ${name}: ${count} packets forwarded for the frames' ${sent.frames}, with ${viewers} viewers`);
    }
    assert.equal(await camera.sessionCount(), 1);
  });

  it('a gateway that dies: its viewers come back on the other; it is used again once restarted', async () => {
    const onA = gatewayA.viewers;
    assert.ok(onA > 0);
    await janusA.kill();
    await waitFor(() => gatewayA.state === 'down', 10_000, 'gateway A marked down');
    // Exactly the viewers that were on A are told to reconnect (the page does it on close).
    await waitFor(() => clients.filter((c) => c.ws.readyState !== c.ws.OPEN).length >= onA, 10_000, 'the viewers on A told to reconnect');
    const dropped = clients.filter((c) => c.ws.readyState !== c.ws.OPEN);
    assert.equal(dropped.length, onA, `${dropped.length} viewers dropped, ${onA} were on the gateway that died`);
    for (const c of dropped) {
      await c.close();
      clients.splice(clients.indexOf(c), 1, await watchOverSignalling(server.url, 'yard', { keepVideo: false }));
    }
    await Promise.all(clients.map((c) => c.receiver.waitFor(() => c.receiver.keyframes >= 1 && c.receiver.accessUnits >= 25, 30_000, 'pictures again')));
    assert.equal(gatewayB.viewers, clients.length, 'all on the living gateway');
    assert.equal(gatewayA.stats().cameras['yard']?.published, false, 'nothing is sent to the dead gateway (its forwarder is closed)');

    await janusA.restart();
    await waitFor(() => gatewayA.serves('yard'), 20_000, 'gateway A back with the camera published again');
    const late = await watchOverSignalling(server.url, 'yard', { keepVideo: false });
    clients.push(late);
    await late.receiver.waitFor(() => late.receiver.keyframes >= 1 && late.receiver.accessUnits >= 25, 30_000, 'a viewer on the restarted gateway');
    assert.equal(gatewayA.viewers, 1, 'the new viewer went to the restarted gateway, which had the fewest');
  });

  it('SRTP to the mountpoint (the default for a gateway on another machine): Janus decrypts it and the viewer decodes it', async () => {
    const janusC = await startJanus({ apiSecret: 'api-secret-C-31', adminKey: 'admin-key-C-77' });
    const secure = new JanusGateway({ url: janusC.url, apiSecret: janusC.apiSecret, adminKey: janusC.adminKey, instanceKey: 'test-instance', logger: recordingLogger, srtp: true });
    const only = new ScaleOut([secure]);
    only.publish({ id: 'yard', name: 'Yard', source });
    only.start();
    const server2 = await startSignallingServer({ sources: [source as BroadcastSource], relays: only, logger: recordingLogger });
    try {
      await waitFor(() => secure.serves('yard'), 20_000, 'the camera published with SRTP');
      assert.ok(lines.some((l) => l.includes(`published on ${janusC.url} (SRTP)`)));
      const viewer = await watchOverSignalling(server2.url, 'yard', { keepVideo: false });
      try {
        await viewer.receiver.waitFor(() => viewer.receiver.keyframes >= 1 && viewer.receiver.accessUnits >= 25 && viewer.receiver.audioPackets >= 25, 20_000, 'pictures and sound through an SRTP mountpoint');
        assert.equal(server2.viewers.length, 0);
      } finally {
        await viewer.close();
      }
    } finally {
      await server2.close();
      await only.stop();
      await janusC.stop();
    }
  });

  it('an H.265 camera is not published (Janus would relay its sound alone): the plugin serves its viewers', async () => {
    const hevc = await FakeCamera.start({ width: 320, height: 180, fps: 15, codec: 'h265', audio: 'pcmu', bitrateKbps: 200 });
    const hevcSource = new Source({ id: 'hevc', name: 'Hevc', upstream: rtspUpstream({ url: hevc.url, cameraName: 'Hevc', logger: recordingLogger }), logger: recordingLogger, idleTimeoutMs: 500 });
    try {
      scaleOut.publish({ id: 'hevc', name: 'Hevc', source: hevcSource });
      await waitFor(() => gatewayB.stats().cameras['hevc']?.problem === 'H265 video is served by the plugin', 20_000, 'the H.265 camera looked at');
      assert.equal(gatewayB.serves('hevc'), false);
      assert.equal(scaleOut.relay('hevc'), undefined, 'its viewers stay with the plugin');
      assert.ok(lines.some((l) => l.includes('camera hevc sends H265 video, which Janus cannot relay as it is')));
    } finally {
      scaleOut.unpublish('hevc');
      await hevcSource.close();
      await hevc.close();
    }
  });

  it('never logs the API secrets or admin keys', () => {
    const text = lines.join('\n');
    for (const secret of [janusA.apiSecret, janusA.adminKey, janusB.apiSecret, janusB.adminKey]) assert.ok(!text.includes(secret), `a log line carries ${secret}`);
    assert.ok(lines.some((l) => l.includes('published on')), 'the publishing is logged');
  });
});
