// Viewers against a real peer: a werift client over the real WebSocket protocol, fed by a
// synthetic Source of real H.264 + PCMU. The received H.264 is reassembled and decoded by ffmpeg.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { nativeFanout } from '../../src/rtp/native-fanout.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { runFfmpeg } from '../helpers/ffprobe.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { startSignallingServer, type SignallingHarness } from './harness.js';
import { RETRANSMIT_BURST_BYTES, RETRANSMIT_SHARE } from '../../src/webrtc/retransmission-budget.js';
import { watchOverSignalling } from './werift-client.js';

after(cleanupAll);

async function decodeAnnexB(data: Buffer): Promise<{ frames: number; size?: string; errors: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'wrc-decode-'));
  try {
    const file = join(dir, 'in.h264');
    await writeFile(file, data);
    // passthrough: count every decoded frame; constant-rate output would drop frames whose guessed
    // timestamps collide after a cut-back (raw H.264 carries no timestamps).
    const result = await runFfmpeg(['-hide_banner', '-f', 'h264', '-i', file, '-fps_mode', 'passthrough', '-f', 'null', '-'], 60_000);
    const frames = [...result.stderr.matchAll(/frame=\s*(\d+)/g)].map((m) => Number(m[1])).pop() ?? 0;
    const size = /Video: h264[^\n]*?, (\d+x\d+)/.exec(result.stderr)?.[1];
    const errors = result.stderr
      .split('\n')
      .filter((l) => /error|corrupt|missing|concealing/i.test(l))
      .join('\n');
    return { frames, ...(size ? { size } : {}), errors };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('viewer peer with a werift client', () => {
  let source: SyntheticSource;
  let harness: SignallingHarness;

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 50 });
    harness = await startSignallingServer({ sources: [source] });
  });
  after(async () => {
    await harness.close();
    source.close();
  });

  test('the H.264 a werift peer receives reassembles into decodable frames, with PCMU audio', async () => {
    const client = await watchOverSignalling(harness.url, 'cam1');
    try {
      const info = await client.next('info');
      assert.equal(info.codec, 'H264');
      assert.equal(info.width, 640);
      assert.equal(info.height, 360);
      assert.equal(info.audio, 'PCMU');
      await client.receiver.waitFor(() => client.receiver.accessUnits >= 100, 15_000, '100 access units');
      const live = client.messages.find((m) => m.type === 'state' && m.state === 'live');
      assert.ok(live, `a live state was sent: ${JSON.stringify(client.messages.filter((m) => m.type === 'state'))}`);
      assert.ok(client.receiver.audioPackets > 50, `audio packets: ${client.receiver.audioPackets}`);
      // The first access unit is a keyframe: the viewer started from the GOP cache.
      assert.ok(client.receiver.keyframes >= 1);
      const decoded = await decodeAnnexB(client.receiver.annexB());
      assert.ok(decoded.frames >= 100, `ffmpeg decoded ${decoded.frames} frames\n${decoded.errors}`);
      assert.equal(decoded.size, '640x360');
      assert.equal(client.receiver.damaged, 0);
      const viewer = harness.viewers.at(-1)!;
      const stats = viewer.stats();
      assert.equal(stats.phase, 'connected');
      assert.equal(stats.transport, 'udp');
      assert.equal(stats.congestionEvents, 0);
    } finally {
      await client.close();
    }
  });

  test('the replayed GOP is squeezed into the present: timestamps rise, and the first frames are close together', async () => {
    // Join mid-GOP so there is a cache of several old frames to replay.
    while (source.gopCacheLength < 20 || source.gopCacheLength > 40) await new Promise((r) => setTimeout(r, 10));
    const client = await watchOverSignalling(harness.url, 'cam1');
    try {
      await client.receiver.waitFor(() => client.receiver.markers.length >= 60, 10_000, '60 frames');
      const ts = client.receiver.frameTimestamps();
      for (let i = 1; i < ts.length; i++) assert.ok(((ts[i]! - ts[i - 1]!) | 0) > 0, `timestamps increase at ${i}: ${ts.slice(0, 20).map((t) => (t - ts[0]!) | 0).join(',')} stats ${JSON.stringify(harness.viewers.at(-1)!.stats())}`);
      const replayed = source.framesBySink.size > 0 ? [...source.framesBySink.values()].at(-1)!.replayed : 0;
      assert.ok(replayed >= 2, `frames replayed from the cache: ${replayed}`);
      // Replayed frames are 1 tick apart; live frames 3600 ticks (25 fps) apart.
      const firstGap = ((ts[1]! - ts[0]!) | 0);
      assert.ok(firstGap < 3600, `first gap ${firstGap} ticks`);
      const lastGap = ((ts.at(-1)! - ts.at(-2)!) | 0);
      assert.ok(lastGap > 2000 && lastGap < 6000, `live gap ${lastGap} ticks`);
    } finally {
      await client.close();
    }
  });

  test('a PLI makes the Source replay its GOP to that viewer only (rate-limited)', async () => {
    const a = await watchOverSignalling(harness.url, 'cam1');
    const b = await watchOverSignalling(harness.url, 'cam1');
    try {
      await a.receiver.waitFor(() => a.receiver.accessUnits >= 10, 10_000, 'a: frames');
      await b.receiver.waitFor(() => b.receiver.accessUnits >= 10, 10_000, 'b: frames');
      // Let the initial (join) keyframe request fall out of the rate-limit window.
      await new Promise((r) => setTimeout(r, 1100));
      const [viewerA, viewerB] = harness.viewers.slice(-2);
      const before = {
        a: source.keyframeRequestsBySink.get(viewerA!.sink) ?? 0,
        b: source.keyframeRequestsBySink.get(viewerB!.sink) ?? 0,
        aKeyframes: a.receiver.keyframes,
      };
      await a.receiver.sendPli();
      // Events, not deadlines: on a loaded machine the replay can take seconds to arrive.
      await a.receiver.waitFor(() => (source.keyframeRequestsBySink.get(viewerA!.sink) ?? 0) > before.a, 15_000, 'keyframe request');
      await a.receiver.waitFor(() => a.receiver.keyframes > before.aKeyframes, 15_000, 'a keyframe after PLI');
      assert.equal(source.keyframeRequestsBySink.get(viewerB!.sink) ?? 0, before.b, 'the other viewer is not disturbed');
      // A burst of PLIs inside the quiet interval yields at most one more replay.
      const mid = source.keyframeRequestsBySink.get(viewerA!.sink) ?? 0;
      for (let i = 0; i < 5; i++) await a.receiver.sendPli();
      await new Promise((r) => setTimeout(r, 1500));
      const afterBurst = source.keyframeRequestsBySink.get(viewerA!.sink) ?? 0;
      assert.ok(afterBurst - mid <= 1, `replays after a PLI burst: ${afterBurst - mid}`);
      assert.ok(viewerA!.stats().keyframeRequests >= 6);
      assert.equal(source.keyframeRequestsBySink.get(viewerB!.sink) ?? 0, before.b);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("the viewer's RTCP is read by the project: NACKs are resent, reported loss reaches the stats, sender reports arrive", async () => {
    const client = await watchOverSignalling(harness.url, 'cam1');
    try {
      const receiver = client.receiver;
      await receiver.waitFor(() => receiver.accessUnits >= 10 && receiver.markers.length >= 5, 10_000, 'frames');
      receiver.collectRtcp();
      const viewer = harness.viewers.at(-1)!;
      // The last few frame-ending packets: still in the server's NACK history.
      const asked = receiver.markers.slice(-3).map((m) => m.seq);
      const duplicatesBefore = receiver.duplicates;
      await receiver.sendNack(asked);
      await receiver.waitFor(() => receiver.duplicates >= duplicatesBefore + asked.length, 10_000, 'the NACKed packets again');
      assert.equal(viewer.stats().nacks, 1);
      assert.equal(viewer.stats().retransmissions, asked.length);
      await receiver.reportLossUntil(64, () => viewer.stats().videoFractionLost === 0.25, 10_000, 'the reported loss in the stats');
      // Our sender reports, SR + SDES CNAME under our SRTCP index, open in werift.
      await receiver.waitFor(() => receiver.rtcpReceived.some((p) => p.type === 200), 5_000, 'a sender report');
      const reports = receiver.rtcpReceived.filter((p) => p.type === 200);
      assert.ok(reports.some((p) => 'ssrc' in p && p.ssrc === receiver.videoSsrc), 'a report about the video');
      assert.ok(new Set(reports.map((p) => ('ssrc' in p ? p.ssrc : 0))).size >= 2, 'and one about the audio, in the same compound');
      assert.ok(receiver.rtcpReceived.some((p) => p.type === 202), 'SDES with the CNAME');
      assert.equal(viewer.stats().rtcpRefused, 0);
      // werift's consent checks (every 4-6 s) are answered by the project, and werift accepts them.
      const pair = receiver.pc.getTransceivers()[0]!.receiver.dtlsTransport.iceTransport.connection.nominated!;
      const acceptedBefore = pair.responsesReceived;
      await receiver.waitFor(() => viewer.stats().consentChecksAnswered >= 1 && pair.responsesReceived > acceptedBefore, 15_000, 'a consent check answered and accepted');
    } finally {
      await client.close();
    }
  });

  test('a NACK for a whole second of video is answered within the budget, and packets over a second old are not resent', async () => {
    // 720p at 3 Mbit/s: half a second of it is more than the 128 KiB a viewer may be resent at once.
    const hd = await SyntheticSource.create({ id: 'cam-hd', width: 1280, height: 720, gop: 50, seconds: 4, bitrateKbps: 3000 });
    const server = await startSignallingServer({ sources: [hd] });
    const client = await watchOverSignalling(server.url, 'cam-hd');
    try {
      const receiver = client.receiver;
      await receiver.waitFor(() => receiver.accessUnits >= 75, 15_000, '3 s of frames');
      const viewer = server.viewers.at(-1)!;
      // werift NACKs on its own what the join's burst lost: the test counts from a quiet second on.
      for (let nacks = -1; nacks !== viewer.stats().nacks; ) {
        nacks = viewer.stats().nacks;
        await new Promise((r) => setTimeout(r, 1000));
      }
      const base = viewer.stats();
      const duplicatesBefore = receiver.duplicates;
      const duplicateBytesBefore = receiver.duplicateBytes;
      const now = performance.now();
      // Received 1.5-2.5 s ago: still in the history (2048 packets), but too late to be of use.
      const old = receiver.arrivals.filter((a) => a.at < now - 1500 && a.at > now - 2500).map((a) => a.seq);
      assert.ok(old.length > 20, `old packets: ${old.length}`);
      await receiver.sendNack(old);
      await receiver.waitFor(() => viewer.stats().nacks > base.nacks, 5_000, 'the NACK read');
      assert.equal(viewer.stats().retransmissionsTooOld - base.retransmissionsTooOld, old.length);
      assert.equal(viewer.stats().retransmissions, base.retransmissions);

      const fresh = receiver.arrivals.filter((a) => a.at > performance.now() - 600);
      const asked = fresh.map((a) => a.seq);
      const askedBytes = fresh.reduce((sum, a) => sum + a.bytes, 0);
      assert.ok(askedBytes > 1.5 * RETRANSMIT_BURST_BYTES, `bytes asked for: ${askedBytes}`);
      const videoBytesBefore = receiver.videoBytes;
      await receiver.sendNack(asked);
      await receiver.waitFor(() => viewer.stats().nacks > base.nacks + 1, 5_000, 'the second NACK read');
      const stats = viewer.stats();
      const resent = stats.retransmissions - base.retransmissions;
      // Every packet asked for was either resent or refused, and what was resent arrived.
      assert.equal(resent + stats.retransmissionsRefused - base.retransmissionsRefused, asked.length);
      assert.ok(stats.retransmissionsRefused > base.retransmissionsRefused, 'some were refused');
      await receiver.waitFor(() => receiver.duplicates - duplicatesBefore === resent, 5_000, 'the resent packets, all of them');
      // The bucket (full: the join's answers were long paid back) and what the video sent since
      // earned; a frame in flight may earn a little more.
      const resentBytes = receiver.duplicateBytes - duplicateBytesBefore;
      const earned = RETRANSMIT_SHARE * (receiver.videoBytes - videoBytesBefore + 64 * 1024);
      assert.ok(resentBytes <= RETRANSMIT_BURST_BYTES + earned, `resent ${resentBytes} bytes`);
      assert.ok(resentBytes > RETRANSMIT_BURST_BYTES - 1500, `resent ${resentBytes} bytes: the bucket was full`);
      assert.equal(receiver.damaged, 0);
    } finally {
      await client.close();
      await server.close();
      hd.close();
    }
  });

  test('too many viewers: the next one gets a clear error, and a freed slot is reusable', async () => {
    const limited = await startSignallingServer({ sources: [source], limits: new ViewerLimiter({ maxViewersPerCamera: 1 }) });
    const first = await watchOverSignalling(limited.url, 'cam1');
    try {
      await first.next('offer');
      const second = await watchOverSignalling(limited.url, 'cam1');
      const error = await second.next('error');
      assert.equal(error.code, 'too-many-viewers');
      assert.match(String(error.message), /Too many people/);
      await second.close();
      await first.close();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(limited.limits.count('cam1'), 0);
      const third = await watchOverSignalling(limited.url, 'cam1');
      await third.next('offer');
      await third.close();
    } finally {
      await limited.close();
    }
  });

  test('unknown and forbidden cameras, and an H.265 camera, get plain errors', async () => {
    const h265 = await SyntheticSource.create({
      id: 'hevc',
      tracksOverride: [{ kind: 'video', codec: 'H265', payloadType: 96, clockRate: 90000, fmtp: {}, controlUrl: 'x' }],
    });
    const restricted = await startSignallingServer({
      sources: [source, h265],
      principal: { name: 'guest', cameras: ['hevc'], admin: false },
    });
    try {
      const unknown = await watchOverSignalling(harness.url, 'nope');
      assert.equal((await unknown.next('error')).code, 'not-found');
      await unknown.close();
      // A restricted viewer is not told whether a camera it may not watch exists.
      const hidden = await watchOverSignalling(restricted.url, 'nope');
      assert.equal((await hidden.next('error')).code, 'forbidden');
      await hidden.close();
      const forbidden = await watchOverSignalling(restricted.url, 'cam1');
      assert.equal((await forbidden.next('error')).code, 'forbidden');
      await forbidden.close();
      const hevc = await watchOverSignalling(restricted.url, 'hevc');
      const error = await hevc.next('error');
      assert.equal(error.code, 'unsupported-codec');
      assert.match(String(error.message), /H\.265/);
      await hevc.close();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(restricted.limits.count('hevc'), 0);
      assert.equal(h265.subscriberCount, 0);
    } finally {
      await restricted.close();
      h265.close();
    }
  });

  test('malformed messages get bad-request errors and the session keeps working', async () => {
    const ws = new WebSocket(harness.url);
    await new Promise((r) => ws.once('open', r));
    const replies: Array<Record<string, unknown>> = [];
    ws.on('message', (data: Buffer) => replies.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>));
    const bad: Array<string | Buffer> = [
      'not json',
      '[]',
      'null',
      '42',
      '{}',
      '{"type":7}',
      '{"type":"dance"}',
      '{"type":"watch"}',
      '{"type":"watch","camera":""}',
      '{"type":"watch","camera":"../etc/passwd"}',
      '{"type":"watch","camera":{"$gt":""}}',
      '{"type":"answer"}',
      '{"type":"answer","sdp":42}',
      '{"type":"answer","sdp":"v=0\\r\\n"}',
      '{"type":"candidate","candidate":42}',
      '{"type":"candidate","candidate":{"candidate":"bogus"}}',
      '{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMLineIndex":-1}}',
      JSON.stringify({ type: 'answer', sdp: `v=0${'x'.repeat(70_000)}` }),
      Buffer.from([0xff, 0xfe, 0x00]),
      '{"type":"watch","camera":"cam1"',
    ];
    for (const message of bad) ws.send(message, { binary: Buffer.isBuffer(message) });
    const deadline = Date.now() + 5_000;
    while (replies.length < bad.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(replies.length, bad.length, JSON.stringify(replies));
    for (const reply of replies) {
      assert.equal(reply.type, 'error');
      assert.equal(reply.code, 'bad-request');
      assert.equal(typeof reply.message, 'string');
    }
    // The same socket still works for a proper session.
    ws.send(JSON.stringify({ type: 'watch', camera: 'cam1' }));
    const deadline2 = Date.now() + 5_000;
    while (!replies.some((r) => r.type === 'offer') && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 20));
    assert.ok(replies.some((r) => r.type === 'offer'));
    ws.send(JSON.stringify({ type: 'stop' }));
    ws.close();
    await new Promise((r) => setTimeout(r, 100));
  });
});

describe('a congested viewer', () => {
  let source: SyntheticSource;
  let harness: SignallingHarness;
  let congested = false;

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    harness = await startSignallingServer({
      sources: [source],
      viewerOptions: { congestionProbe: () => (congested ? 64 * 1024 * 1024 : 0) },
    });
  });
  after(async () => {
    await harness.close();
    source.close();
  });

  test('is cut back to the next keyframe by the Source, queues nothing, and resumes cleanly', async () => {
    const client = await watchOverSignalling(harness.url, 'cam1');
    try {
      await client.receiver.waitFor(() => client.receiver.accessUnits >= 20, 10_000, 'frames');
      const viewer = harness.viewers.at(-1)!;
      const heapBefore = process.memoryUsage().heapUsed;
      congested = true;
      await new Promise((r) => setTimeout(r, 1500));
      const during = client.receiver.accessUnits;
      const stats = viewer.stats();
      assert.ok(stats.congestionEvents >= 1, 'congestion was seen');
      assert.ok(source.counters.cutBacks >= 1, 'the Source cut the viewer back');
      // Nothing was sent while congested, and nothing piled up in memory for it.
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(client.receiver.accessUnits - during <= 1, `frames still arriving: ${client.receiver.accessUnits - during}`);
      assert.ok(process.memoryUsage().heapUsed - heapBefore < 20 * 1048576);
      const keyframes = client.receiver.keyframes;
      congested = false;
      // Video resumes at a keyframe (within one 1 s GOP) and decodes.
      await client.receiver.waitFor(() => client.receiver.keyframes > keyframes && client.receiver.accessUnits > during + 25, 5_000, 'resume');
      // Snapshot the count with the bytes: frames keep arriving while ffmpeg runs.
      const received = client.receiver.accessUnits;
      const kinds = client.receiver.auKinds;
      const decoded = await decodeAnnexB(client.receiver.annexB());
      assert.ok(decoded.frames >= received - 1, `decoded ${decoded.frames} of ${received} (${kinds})\n${decoded.errors}`);
      assert.equal(decoded.errors, '', decoded.errors);
    } finally {
      await client.close();
    }
  });
});

describe('both send paths: one sendmmsg per frame (native fan-out) and one send per packet (JavaScript)', () => {
  for (const path of ['native', 'javascript'] as const) {
    test(`${path}: a werift peer decodes every frame of the H.264, and gets the PCMU`, async () => {
      const native = nativeFanout();
      if (path === 'native') assert.ok(native.loaded, `the native fan-out must load on this machine: ${native.loaded ? '' : native.reason}`);
      const source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
      const harness = await startSignallingServer({
        sources: [source],
        viewerOptions: { nativeFanout: path === 'native' ? native : { loaded: false, reason: 'this test' } },
      });
      const client = await watchOverSignalling(harness.url, 'cam1');
      try {
        await client.receiver.waitFor(() => client.receiver.accessUnits >= 60 && client.receiver.audioPackets >= 50, 15_000, '60 access units and 50 audio packets');
        const stats = harness.viewers.at(-1)!.stats();
        assert.equal(stats.transport, 'udp');
        assert.equal(stats.sendPath, path);
        const received = client.receiver.accessUnits;
        const decoded = await decodeAnnexB(client.receiver.annexB());
        assert.ok(decoded.frames >= received - 1, `decoded ${decoded.frames} of ${received}\n${decoded.errors}`);
        assert.equal(decoded.errors, '', decoded.errors);
        assert.equal(client.receiver.damaged, 0);
        assert.equal(stats.congestionEvents, 0);
      } finally {
        await client.close();
        await harness.close();
        source.close();
      }
    });
  }
});
