// The RTSP client against a real RTSP server: GStreamer's gst-rtsp-server behind
// test/helpers/fake-camera.ts (x264 + G.711/AAC, Basic/Digest, TCP and UDP).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { nativeFanout } from '../../src/rtp/native-fanout.js';
import { RtspError } from '../../src/rtsp/errors.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { assertRtspError, flowReport, mainThreadWakeups, openUpstream, sleep, waitFor, type Opened } from './helpers.js';

const PASSWORD = 's3cr3t!pw';
/** Generous step timeouts: the camera builds its pipeline on the first DESCRIBE. */
const TIMEOUTS = { connectMs: 3000, requestMs: 8000, teardownMs: 1000, stallMs: 5000, udpFirstPacketMs: 4000, rtcpIntervalMs: 1000 };

/** H.264 NAL unit types seen in RTP payloads (single NAL, STAP-A, FU-A start). */
function h264NalTypes(packets: Buffer[]): Set<number> {
  const types = new Set<number>();
  for (const p of packets) {
    const cc = p[0]! & 0x0f;
    const ext = (p[0]! & 0x10) !== 0;
    let off = 12 + cc * 4;
    if (ext) off += 4 + p.readUInt16BE(off + 2) * 4;
    const nal = p[off]! & 0x1f;
    if (nal === 28) {
      if (p[off + 1]! & 0x80) types.add(p[off + 1]! & 0x1f);
    } else if (nal === 24) {
      let i = off + 1;
      while (i + 2 < p.length) {
        const size = p.readUInt16BE(i);
        types.add(p[i + 2]! & 0x1f);
        i += 2 + size;
      }
    } else {
      types.add(nal);
    }
  }
  return types;
}

function packetsOf(opened: Opened, track: number): Buffer[] {
  return opened.rtp.filter((p) => p.track === track).map((p) => p.packet);
}

/**
 * Video and audio both arrive, with a keyframe. Over TCP nothing may be lost; over UDP a loaded
 * machine may drop a little, which is UDP's nature and not the client's fault.
 */
async function assertPlays(opened: Opened, audioPayloadType: number, transport: 'tcp' | 'udp' = 'tcp'): Promise<void> {
  await waitFor(() => packetsOf(opened, 0).length > 50 && packetsOf(opened, 1).length > 20, 8000, 'video and audio RTP').catch((error: unknown) => {
    throw new Error(`${(error as Error).message} (${flowReport(opened)})`);
  });
  await waitFor(() => h264NalTypes(packetsOf(opened, 0)).has(5), 5000, 'an IDR');
  const video = packetsOf(opened, 0);
  assert.ok(video.every((p) => (p[1]! & 0x7f) === 96));
  assert.ok(packetsOf(opened, 1).every((p) => (p[1]! & 0x7f) === audioPayloadType));
  let gaps = 0;
  const n = Math.min(video.length, 200);
  for (let i = 1; i < n; i++) {
    if (video[i]!.readUInt16BE(2) !== ((video[i - 1]!.readUInt16BE(2) + 1) & 0xffff)) gaps++;
  }
  if (transport === 'tcp') assert.equal(gaps, 0, 'sequence numbers advance by one over TCP');
  else assert.ok(gaps <= n / 20, `${gaps} sequence gaps in ${n} UDP packets`);
}

/** A session to `camera` over `transport` once video and audio both flow. */
async function openPlaying(camera: FakeCamera, transport: 'tcp' | 'udp'): Promise<Opened> {
  const opened = await openUpstream(camera.url, { ...camera.credentials(), transport, timeouts: TIMEOUTS });
  try {
    await waitFor(() => packetsOf(opened, 0).length > 20 && packetsOf(opened, 1).length > 5, 8000, 'video and audio RTP');
  } catch (error) {
    const flow = flowReport(opened);
    await opened.session.close();
    throw new Error(`${(error as Error).message} (${flow})`);
  }
  return opened;
}

/** Runs `body` and closes the session whatever happens, so one failure cannot leak into the next test. */
async function withSession(opened: Opened, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } finally {
    await opened.session.close();
  }
}

describe('RTSP client against gst-rtsp-server', { timeout: 120_000 }, () => {
  let digestCam: FakeCamera;
  let basicCam: FakeCamera;
  let aacCam: FakeCamera;

  before(async () => {
    [digestCam, basicCam, aacCam] = await Promise.all([
      FakeCamera.start({ auth: { method: 'digest', user: 'admin', password: PASSWORD }, audio: 'pcmu', fps: 25 }),
      FakeCamera.start({ auth: { method: 'basic', user: 'viewer', password: PASSWORD }, audio: 'pcma', path: '/h264/ch1/main' }),
      FakeCamera.start({ audio: 'aac', codec: 'h264', profile: 'high', parameterSetsInBand: false }),
    ]);
  });
  after(async () => {
    await Promise.all([digestCam?.close(), basicCam?.close(), aacCam?.close()]);
  });

  it('plays video + audio over TCP with Digest, maps sender reports, and TEARDOWN ends the camera session', async () => {
    const opened = await openUpstream(digestCam.url, { ...digestCam.credentials(), timeouts: TIMEOUTS });
    const { tracks } = opened.session;
    assert.deepEqual(
      tracks.map((t) => [t.kind, t.codec, t.clockRate]),
      [
        ['video', 'H264', 90000],
        ['audio', 'PCMU', 8000],
      ],
    );
    assert.equal(tracks[0]!.fmtp['packetization-mode'], '1');
    assert.ok((tracks[0]!.parameterSets?.length ?? 0) >= 2);
    await withSession(opened, async () => {
      assert.match(opened.log.text(), /over TCP \(Digest MD5\)/);
      await assertPlays(opened, 0);
      assert.equal(await digestCam.sessionCount(), 1);
      // gst-rtsp-server sends an SR about every 5 s per stream.
      await waitFor(() => opened.senderReports.length > 0, 8000, 'a sender report');
      const sr = opened.senderReports[0]!;
      assert.ok(Math.abs(sr.wallClockMs - Date.now()) < 60_000, 'SR wall clock is about now');
    });
    assert.deepEqual(opened.closes, [undefined]);
    await digestCam.waitForSessionCount(0, 3000);
    const requests = await digestCam.requests();
    assert.ok(requests.some((r) => r.method === 'TEARDOWN' && r.authorized));
    assert.ok(requests.every((r) => !(r.uri ?? '').includes(PASSWORD)));
  });

  it('plays video + audio over UDP', async () => {
    const opened = await openUpstream(digestCam.url, { ...digestCam.credentials(), transport: 'udp', timeouts: TIMEOUTS });
    await withSession(opened, async () => {
      assert.match(opened.log.text(), /over UDP/, opened.log.text());
      await assertPlays(opened, 0, 'udp');
    });
    await digestCam.waitForSessionCount(0, 3000);
  });

  it('holds UDP packets while nobody watches: a few deliveries and wakeups a second, all tracks in arrival order, each with its age', async () => {
    const opened = await openPlaying(digestCam, 'udp');
    await withSession(opened, async () => {
      const { session } = opened;
      assert.ok(session.holdDelivery && session.flushDelivery, 'an RTSP session can hold');
      // The event loop's wakeups: one per datagram while live.
      const wakeups = mainThreadWakeups;
      let wakeupsFrom = wakeups();
      await sleep(1500);
      const wakeupsLive = wakeups() - wakeupsFrom;
      session.holdDelivery(200);
      const from = opened.rtp.length;
      wakeupsFrom = wakeups();
      await sleep(1500);
      const wakeupsHeld = wakeups() - wakeupsFrom;
      const held = opened.rtp.slice(from);
      session.holdDelivery(0); // what is still held goes on now
      const released = opened.rtp.slice(from + held.length);
      await waitFor(() => opened.rtp.length > from + held.length + released.length + 10, 5000, 'packets after the hold');
      const after = opened.rtp.slice(from + held.length + released.length);

      // 1.5 s of 25 fps video and 50 audio packets a second came in a handful of deliveries: the
      // hold starts flushing at 50 ms and lengthens to the 200 ms asked while the socket stays
      // nearly empty (8 flushes), and the stall watchdog flushes once a second besides.
      assert.ok(held.length > 60, `${held.length} packets held and delivered`);
      assert.ok(held.some((p) => p.track === 0) && held.some((p) => p.track === 1));
      const deliveries = held.filter((p, i) => i === 0 || p.at - held[i - 1]!.at > 20).length;
      assert.ok(deliveries <= 12, `${held.length} packets in ${deliveries} deliveries`);
      assert.ok(held.filter((p) => p.ageMs > 20).length > held.length / 2, 'most waited');
      // Where the native receiver drains its hold, the datagrams wait in the kernel unread, and the
      // process wakes for each flush rather than for each datagram.
      if (nativeFanout().loaded) assert.ok(wakeupsHeld < wakeupsLive * 0.5, `${wakeupsHeld} wakeups while held against ${wakeupsLive} before`);
      // Arrival times (delivery minus age) only move forward, across both tracks.
      const arrivals = [...held, ...released].map((p) => p.at - p.ageMs);
      const backwards = arrivals.filter((t, i) => i > 0 && t < arrivals[i - 1]! - 1).length;
      assert.equal(backwards, 0, `packets go on in the order they arrived: ${arrivals.map((t, i) => (i > 0 && t < arrivals[i - 1]! - 1 ? `${i}/${arrivals.length}: ${(t - arrivals[i - 1]!).toFixed(2)} ms` : '')).filter(Boolean).join(', ')}`);
      // Each track's sequence numbers continue through the hold and its end.
      for (const track of [0, 1]) {
        const sequence = opened.rtp.slice(from).filter((p) => p.track === track).map((p) => p.packet.readUInt16BE(2));
        const gaps = sequence.filter((n, i) => i > 0 && n !== ((sequence[i - 1]! + 1) & 0xffff)).length;
        assert.ok(gaps <= 2, `track ${track}: ${gaps} sequence gaps`);
      }
      // Live again: each packet as it comes. A busy machine may hold up one turn of the event loop
      // by some milliseconds (16 ms seen with the whole suite running beside this test), but a hold
      // would make most packets wait, up to its interval (tens of ms to 200).
      const ages = after.map((p) => p.ageMs).sort((a, b) => a - b);
      const medianAge = ages[Math.floor(ages.length / 2)]!;
      const maxAge = ages[ages.length - 1]!;
      assert.ok(medianAge < 5 && maxAge < 50, `after the hold, each packet at once (median age ${medianAge.toFixed(2)} ms, max ${maxAge.toFixed(2)} ms)`);
    });
    await digestCam.waitForSessionCount(0, 3000);
  });

  it('holds interleaved (TCP) media in the socket while nobody watches: read in bursts, nothing lost', async () => {
    const opened = await openPlaying(digestCam, 'tcp');
    await withSession(opened, async () => {
      const { session } = opened;
      // Reads as data comes: at 25 fps plus 50 audio packets a second, many reads in 1.5 s.
      // The event loop's wakeups count the reads Node does underneath.
      const wakeups = mainThreadWakeups;
      const before = opened.rtp.length;
      const wakeupsBefore = wakeups();
      await sleep(1500);
      const wakeupsLive = wakeups() - wakeupsBefore;
      const live = opened.rtp.slice(before);
      const readsLive = live.filter((p, i) => i === 0 || p.at - live[i - 1]!.at > 5).length;
      session.holdDelivery!(250);
      const from = opened.rtp.length;
      const wakeupsFrom = wakeups();
      await sleep(1500);
      const wakeupsHeld = wakeups() - wakeupsFrom;
      const held = opened.rtp.slice(from);
      session.holdDelivery!(0);
      const burstsHeld = held.filter((p, i) => i === 0 || p.at - held[i - 1]!.at > 5).length;
      assert.ok(held.length > 60, `${held.length} packets while held`);
      // At most one burst every 100 ms (15 in 1.5 s), against a read per frame or packet before.
      assert.ok(burstsHeld <= 17 && burstsHeld < readsLive / 2, `${held.length} packets in ${burstsHeld} bursts while held; ${live.length} in ${readsLive} reads before`);
      // The socket really stops reading between bursts (the packets wait in the kernel), rather
      // than Node reading on into the stream's buffer.
      assert.ok(wakeupsHeld < wakeupsLive * 0.6, `${wakeupsHeld} wakeups while held against ${wakeupsLive} before`);
      await waitFor(() => opened.rtp.length > from + held.length + 40, 5000, 'packets after the hold');
      for (const track of [0, 1]) {
        const sequence = opened.rtp.slice(before).filter((p) => p.track === track).map((p) => p.packet.readUInt16BE(2));
        const gaps = sequence.filter((n, i) => i > 0 && n !== ((sequence[i - 1]! + 1) & 0xffff)).length;
        assert.equal(gaps, 0, `track ${track}: nothing lost over TCP through the hold`);
      }
    });
    await digestCam.waitForSessionCount(0, 3000);
  });

  it('plays with Basic auth, credentials given as options, PCMA audio', async () => {
    const opened = await openUpstream(basicCam.url, { username: 'viewer', password: PASSWORD, timeouts: TIMEOUTS });
    await withSession(opened, async () => {
      assert.equal(opened.session.tracks[1]!.codec, 'PCMA');
      assert.match(opened.log.text(), /\(Basic\)/);
      await assertPlays(opened, 8);
    });
  });

  it('a wrong password gives one clear auth error and only two tries', async () => {
    const before = (await digestCam.requests()).length;
    let err: unknown;
    try {
      const opened = await openUpstream(digestCam.url, { ...digestCam.credentials('admin', 'wrong-password'), timeouts: TIMEOUTS });
      await opened.session.close();
    } catch (e) {
      err = e;
    }
    const e = assertRtspError(err, 'auth', /wrong user name or password/);
    assert.equal(e.status, 401);
    assert.ok(!e.message.includes('wrong-password'));
    const tries = (await digestCam.requests()).slice(before);
    assert.ok(tries.length <= 3, `${tries.length} requests`);
    assert.equal(await digestCam.sessionCount(), 0);
  });

  it('a bad path gives a clear not-found error', async () => {
    let err: unknown;
    try {
      await openUpstream(`rtsp://127.0.0.1:${aacCam.port}/no/such/stream`, { timeouts: TIMEOUTS });
    } catch (e) {
      err = e;
    }
    const e = assertRtspError(err, 'not-found', /DESCRIBE answered 404.*does not exist/);
    assert.equal(e.status, 404);
  });

  it('reads AAC (needs transcoding) and SDP-only parameter sets of a High-profile camera', async () => {
    const opened = await openUpstream(aacCam.url, { timeouts: TIMEOUTS });
    await withSession(opened, async () => {
      const [video, audio] = opened.session.tracks;
      assert.equal(audio!.codec, 'AAC');
      assert.equal(audio!.needsTranscoding, true);
      assert.equal(audio!.clockRate, 16000);
      assert.ok(audio!.fmtp['config']);
      const sps = video!.parameterSets?.find((b) => (b[0]! & 0x1f) === 7);
      assert.ok(sps, 'SPS from sprop-parameter-sets');
      assert.equal(sps[1], 100, 'High profile (profile_idc 100)');
      await waitFor(() => packetsOf(opened, 1).length > 5, 8000, 'AAC packets');
    });
  });

  it('audio off: only the video track is set up', async () => {
    const opened = await openUpstream(aacCam.url, { audio: false, timeouts: TIMEOUTS });
    await withSession(opened, async () => {
      assert.equal(opened.session.tracks.length, 1);
      await waitFor(() => opened.rtp.length > 20, 8000, 'video');
      assert.ok(opened.rtp.every((p) => p.track === 0));
    });
  });

  it('reports a camera that drops the connection, then reconnects', async () => {
    const opened = await openUpstream(basicCam.url, { ...basicCam.credentials('viewer', PASSWORD), timeouts: TIMEOUTS });
    await withSession(opened, async () => {
      await waitFor(() => opened.rtp.length > 10, 8000, 'media');
      await basicCam.dropClients();
      const err = await opened.closed;
      assert.ok(err instanceof RtspError && err.code === 'transport', String(err));
    });
    const again = await openUpstream(basicCam.url, { ...basicCam.credentials('viewer', PASSWORD), timeouts: TIMEOUTS });
    await withSession(again, () => waitFor(() => again.rtp.length > 10, 8000, 'media after reconnect'));
  });
});

describe('RTSP client against gst-rtsp-server: H.265 and a camera that stops', { timeout: 120_000 }, () => {
  it('recognises H.265 as needing transcoding and still receives it', async () => {
    const cam = await FakeCamera.start({ codec: 'h265', audio: 'none' });
    try {
      const opened = await openUpstream(cam.url, { timeouts: TIMEOUTS });
      await withSession(opened, async () => {
        assert.equal(opened.session.tracks.length, 1);
        assert.equal(opened.session.tracks[0]!.codec, 'H265');
        assert.equal(opened.session.tracks[0]!.needsTranscoding, true);
        await waitFor(() => opened.rtp.length > 10, 10_000, 'H.265 RTP');
      });
    } finally {
      await cam.close();
    }
  });

  it('a camera process that dies ends the session with an error', async () => {
    const cam = await FakeCamera.start({ audio: 'none', transports: 'udp' });
    try {
      const opened = await openUpstream(cam.url, { transport: 'udp', timeouts: { ...TIMEOUTS, stallMs: 1500 } });
      await withSession(opened, async () => {
        await waitFor(() => opened.rtp.length > 10, 8000, 'media');
        await cam.stop();
        const err = await opened.closed;
        assert.ok(err instanceof RtspError && (err.code === 'transport' || err.code === 'stalled'), String(err));
        await sleep(10);
      });
      assert.equal(opened.closes.length, 1);
    } finally {
      await cam.close();
    }
  });

  it('falls back to TCP when a TCP-only camera answers 461 to UDP', async () => {
    const cam = await FakeCamera.start({ audio: 'pcmu', transports: 'tcp' });
    try {
      const opened = await openUpstream(cam.url, { transport: 'udp', timeouts: TIMEOUTS });
      await withSession(opened, async () => {
        assert.match(opened.log.text(), /warn .*UDP does not work .*461.*falling back to TCP/);
        assert.match(opened.log.text(), /over TCP/);
        await assertPlays(opened, 0);
      });
    } finally {
      await cam.close();
    }
  });

  it('a UDP-only camera asked for TCP gives a clear unsupported-transport error', async () => {
    const cam = await FakeCamera.start({ audio: 'none', transports: 'udp' });
    try {
      let err: unknown;
      try {
        const opened = await openUpstream(cam.url, { timeouts: TIMEOUTS });
        await opened.session.close();
      } catch (e) {
        err = e;
      }
      assertRtspError(err, 'unsupported-transport', /SETUP answered 461/);
      assert.equal(await cam.sessionCount(), 0);
    } finally {
      await cam.close();
    }
  });

  it('keep-alives hold a UDP session with a 2 s timeout open', async () => {
    const cam = await FakeCamera.start({ audio: 'none', sessionTimeoutSec: 2, auth: { method: 'digest', user: 'admin', password: PASSWORD } });
    try {
      const opened = await openUpstream(cam.url, { ...cam.credentials(), transport: 'udp', timeouts: TIMEOUTS });
      await withSession(opened, async () => {
        await sleep(4500);
        assert.equal(await cam.sessionCount(), 1, 'the camera still has the session');
        assert.deepEqual(opened.closes, []);
        const keepalives = (await cam.requests()).filter((r) => r.method === 'GET_PARAMETER' || (r.method === 'OPTIONS' && r.cseq !== 1));
        assert.ok(keepalives.length >= 3, `${keepalives.length} keep-alives in 4.5 s`);
        assert.ok(keepalives.every((r) => r.authorized));
        const count = opened.rtp.length;
        await sleep(200);
        assert.ok(opened.rtp.length > count, 'media still flowing');
      });
      await cam.waitForSessionCount(0, 3000);
    } finally {
      await cam.close();
    }
  });
});
