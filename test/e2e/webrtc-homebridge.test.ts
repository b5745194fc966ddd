/**
 * Issue 4 "Done when", through the real product: a real Homebridge loads the built plugin, whose
 * cameras are GStreamer fake cameras (RTSP) → the plugin's RTSP client → its Source → werift viewers
 * → the watch page in headless Chromium (and Firefox ESR, and WHEP clients that are not ours).
 *
 * test/webrtc/ already proves the same viewer code against a synthetic in-process source; what is
 * proven here is the whole chain as a user runs it: playback with audio and without freezes, one
 * camera session for five pages, the first frame from a warm 4 s-GOP camera, a High-profile camera
 * offered as 42e01f, Firefox (no H.264) on the shared VP8 transcoder, WHEP with aiortc, GStreamer's
 * webrtcbin and curl, and the page recovering by itself from a camera reboot. Figures go to the
 * test diagnostics (`# ...` lines).
 *
 * Access control: the cameras are real (not the demo), so the page needs a viewer. When the server
 * asks (401), the suite signs the browser in through the sign-in form once, and gives the WHEP
 * clients (aiortc, GStreamer, curl, werift) a share link's token as `Authorization: Bearer`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, launchFirefox, readRtcStats, signInWithForm, summarizeRtcStats, waitForFramesDecoded, waitForRtcStats, type ChromiumSession } from '../helpers/browser.js';
import { ffmpegDescendants } from '../homekit/inspect.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { runTool } from '../helpers/ffprobe.js';
import { platformConfig, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { getFreePort } from '../helpers/ports.js';
import { cleanupAll } from '../helpers/processes.js';
import { parseSdp, rtspDescribe } from '../helpers/rtsp-client.js';
import { request, signIn } from '../web/auth-helpers.js';
import { WeriftReceiver } from '../webrtc/werift-client.js';
import { longestStall, median, PAGE_STALL_MS, PAGE_PROBE_SCRIPT, readProbe, sampleFrames, sleep, spsProfileIdc, textOf } from './webrtc-helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const FPS = 25;
const FRONT_GOP_FRAMES = 50; // 2 s
const INSTANT_GOP_FRAMES = 100; // 4 s: the GOP cache, not the camera, must make the first frame fast
const VIEWER = { username: 'family', password: 'Family-Viewer-Secret-7', admin: true };

after(cleanupAll);

/** True when python's GStreamer has webrtcbin and libnice (gstreamer1.0-nice, gir1.2-gst-plugins-bad-1.0, gir1.2-nice-0.1). */
async function gstreamerWebrtcAvailable(): Promise<boolean> {
  const result = await runTool('/usr/bin/python3', ['-c', [
    'import gi',
    "gi.require_version('Gst', '1.0'); gi.require_version('GstWebRTC', '1.0'); gi.require_version('GstSdp', '1.0')",
    'from gi.repository import Gst, GstWebRTC, GstSdp',
    'Gst.init(None)',
    "gi.require_version('Nice', '0.1'); from gi.repository import Nice",
    "assert Gst.ElementFactory.find('webrtcbin') and Gst.ElementFactory.find('nicesrc')",
  ].join('\n')], 20_000).catch(() => undefined);
  return result?.code === 0;
}

describe('e2e: WebRTC broadcast through the plugin in a real Homebridge', { timeout: 240_000 }, () => {
  let front: FakeCamera;
  let instant: FakeCamera;
  let high: FakeCamera;
  let hevc: FakeCamera;
  let hb: HomebridgeProcess;
  let chromium: ChromiumSession;
  let base: string;
  /** A share link's token when the server has access control on (WHEP clients, API calls). */
  let bearer: string | undefined;
  const authHeaders = (): Record<string, string> => (bearer ? { Authorization: `Bearer ${bearer}` } : {});
  const api = async <T>(path: string): Promise<T> => (await (await fetch(`${base}${path}`, { headers: authHeaders() })).json()) as T;

  before(async () => {
    const webPort = await getFreePort();
    [front, instant, high, hevc] = await Promise.all([
      FakeCamera.start({ width: 640, height: 360, fps: FPS, keyframeIntervalFrames: FRONT_GOP_FRAMES, audio: 'pcmu' }),
      // No IDR on PLAY, so nothing but the plugin's GOP cache can make the first frame quick.
      FakeCamera.start({ width: 640, height: 360, fps: FPS, keyframeIntervalFrames: INSTANT_GOP_FRAMES, keyframeOnPlay: false, audio: 'pcmu' }),
      // High profile and AAC sound, like most current cameras: no browser plays AAC over WebRTC.
      FakeCamera.start({ width: 1280, height: 720, fps: FPS, profile: 'high', keyframeIntervalFrames: 50, audio: 'aac', bitrateKbps: 2000 }),
      // What no browser takes over WebRTC: H.265 video and AAC audio.
      FakeCamera.start({ width: 640, height: 360, fps: FPS, codec: 'h265', keyframeIntervalFrames: 50, audio: 'aac' }),
    ]);
    hb = await startHomebridge({
      platform: platformConfig({
        cameras: [
          { name: 'Front', id: 'front', rtspUrl: front.url },
          // Warm: pulled from the start, so its GOP cache is full when a page opens.
          { name: 'Instant', id: 'instant', rtspUrl: instant.url, alwaysOn: true },
          { name: 'High', id: 'high', rtspUrl: high.url },
          { name: 'Hevc', id: 'hevc', rtspUrl: hevc.url },
        ],
        web: { port: webPort },
        viewers: [VIEWER],
      }),
    });
    const line = await hb.waitForLog(/Watch page: (\S+)/, 20_000);
    base = /Watch page: (\S+)/.exec(line)![1]!;
    if (!base.endsWith('/')) base += '/';
    chromium = await launchChromium();
    await chromium.context.addInitScript({ content: PAGE_PROBE_SCRIPT });
    if ((await fetch(`${base}api/cameras`)).status === 401) {
      const session = await signIn(base.replace(/\/$/, ''), VIEWER.username, VIEWER.password);
      assert.equal(session.status, 200, 'the configured viewer signs in');
      const link = await request(`${base}api/share-links`, {
        method: 'POST',
        jar: session.jar,
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf },
        body: JSON.stringify({ cameras: ['front', 'instant', 'high', 'hevc'], expiresIn: '1d', label: 'e2e WHEP clients' }),
      });
      assert.equal(link.status, 201, link.body);
      bearer = (JSON.parse(link.body) as { token: string }).token;
      // The browser signs in through the form, like a person; its context keeps the cookie.
      const page = await chromium.openPage(`${base}login`);
      await signInWithForm(page, base, VIEWER.username, VIEWER.password);
      await page.close();
    }
  });

  after(async () => {
    await chromium?.close();
    await stopAllHomebridges();
    await hb?.stop({ removeStorage: true });
    await Promise.all([front?.close(), instant?.close(), high?.close(), hevc?.close()]);
  });

  /** A new tab on the watch page with the player open on `camera`. */
  async function openWatch(camera: string): Promise<Page> {
    const page = await chromium.openPage(`${base}#camera=${camera}`);
    assert.notEqual(new URL(page.url()).pathname, '/login', 'the browser is signed in');
    return page;
  }

  // What the server owes the page is a steady delivery: no gap of 1 s in the video packets over 10 s.
  // How smoothly Chromium then decodes also depends on the CPU it gets (a 2-core machine at load 9
  // froze one decode for 1.06 s with every packet delivered and none lost), so decoding is held to
  // the page's own rule instead: never so long without a frame that it would reconnect (STALL_MS).
  it('e2e: Chromium plays the watch page: >= 100 frames at 640x360, PCMU audio, video packets without a 1 s gap over 10 s', async (t) => {
    const page = await openWatch('front');
    try {
      const stats = await waitForFramesDecoded(page, 10, 20_000);
      const samples = await sampleFrames(page, 10_000, 150);
      const after10s = await readRtcStats(page);
      const pc = after10s.at(-1)!;
      const video = pc.video!;
      const stall = longestStall(samples);
      const delivery = longestStall(samples, 'packetsReceived');
      const first = samples[0]!;
      const last = samples.at(-1)!;
      t.diagnostic(
        `10 s watch: ${stall.frames} frames in ${(stall.spanMs / 1000).toFixed(1)} s (${((stall.frames * 1000) / stall.spanMs).toFixed(1)} fps), ` +
          `longest gap between decoded frames ${stall.stallMs.toFixed(0)} ms, between video packets ${delivery.stallMs.toFixed(0)} ms (sampled every 150 ms), ` +
          `freezes ${last.freezeCount - first.freezeCount} for ${(last.totalFreezesDuration - first.totalFreezesDuration).toFixed(2)} s; ` +
          `total decoded ${video.framesDecoded}, audio packets ${pc.audio?.packetsReceived ?? 0}, lost ${video.packetsLost ?? 0}`,
      );
      assert.ok(stats.length >= 1);
      assert.ok((video.framesDecoded ?? 0) >= 100, summarizeRtcStats(after10s));
      assert.equal(video.frameWidth, 640);
      assert.equal(video.frameHeight, 360);
      assert.match(video.mimeType ?? '', /H264/i);
      assert.match(pc.audio?.mimeType ?? '', /PCMU/i);
      assert.ok((pc.audio?.packetsReceived ?? 0) > 200, `audio packets received: ${pc.audio?.packetsReceived ?? 0}`);
      assert.equal(new Set(samples.map((s) => s.pc)).size, 1, 'one peer connection throughout');
      assert.ok(stall.spanMs >= 9_500, `sampled ${stall.spanMs} ms`);
      assert.ok(delivery.stallMs < 1000, `a gap of ${delivery.stallMs.toFixed(0)} ms without a video packet`);
      assert.ok(stall.stallMs < PAGE_STALL_MS, `a gap of ${stall.stallMs.toFixed(0)} ms without a decoded frame: the page would have reconnected`);
      assert.ok(stall.frames >= 200, `only ${stall.frames} frames decoded in 10 s`);
      assert.equal(await textOf(page, '#player-state'), 'Live');
    } finally {
      await page.close();
    }
  });

  it('e2e: five Chromium pages watch the same camera at once; the camera counts one RTSP session', async (t) => {
    const pages: Page[] = [];
    try {
      for (let i = 0; i < 5; i++) pages.push(await openWatch('front'));
      const counts: number[] = [];
      const sampling = (async () => {
        for (let i = 0; i < 20; i++) {
          counts.push(await front.sessionCount());
          await sleep(200);
        }
      })();
      const all = await Promise.all(pages.map((page) => waitForFramesDecoded(page, 50, 30_000)));
      await sampling;
      // Each page still decoding while the others are: every page decodes 25 more frames (one
      // second of video) after all five had their first 50. Waiting for the frames, not reading
      // twice a few milliseconds apart: a busy machine decodes in bursts.
      const again = await Promise.all(
        pages.map((page, i) => waitForFramesDecoded(page, (all[i]!.at(-1)!.video!.framesDecoded ?? 0) + 25, 30_000)),
      );
      for (const stats of again) assert.equal(stats.at(-1)!.video!.frameWidth, 640);
      const status = await api<{ viewers: number; state: string }>('api/cameras/front');
      t.diagnostic(`camera sessions sampled ${counts.length}x: ${[...new Set(counts)].join(',')}; API: ${status.viewers} viewers, state ${status.state}`);
      assert.deepEqual([...new Set(counts)], [1], `camera sessions seen: ${counts.join(',')}`);
      assert.equal(status.viewers, 5);
      assert.equal(await front.sessionCount(), 1);
    } finally {
      await Promise.all(pages.map((p) => p.close()));
    }
  });

  it('e2e: instant start: warm source, 4 s camera GOP, no IDR on PLAY: the first decoded frame comes from the GOP cache', async (t) => {
    // Warm: the always-on source is live and has seen a keyframe.
    const keyframes = async (): Promise<number> => {
      const text = await (await fetch(`${base}metrics`, { headers: authHeaders() })).text();
      const found = /^webrtc_cameras_video_keyframes_total\{camera="instant"\} (\d+)$/m.exec(text);
      return found ? Number(found[1]) : 0;
    };
    const warm = Date.now() + 60_000;
    while ((await keyframes()) < 1) {
      assert.ok(Date.now() < warm, 'the always-on camera sent no keyframe in 60 s');
      await sleep(200);
    }
    // A decoder needs a keyframe. When the camera sent none between the page's load and its first
    // decoded frame (the plugin's keyframe counter did not move), that frame can only have come from
    // the plugin's GOP cache. A load that straddles one of the camera's keyframes (every 4 s) proves
    // nothing either way and is repeated. How fast it is belongs to bench:webrtc, not to this test.
    const decoded: number[] = [];
    let straddled = 0;
    while (decoded.length < 5) {
      assert.ok(straddled < 15, `${straddled} loads straddled a camera keyframe; proven from the cache: ${decoded.length}`);
      const before = await keyframes();
      const page = await openWatch('instant');
      try {
        await waitForFramesDecoded(page, 1, 30_000);
        const after = await keyframes();
        if (after !== before) {
          straddled++;
          continue;
        }
        let probe = await readProbe(page);
        while (probe.firstDecodedAt === undefined) {
          await sleep(50);
          probe = await readProbe(page);
        }
        decoded.push(Math.round(probe.firstDecodedAt));
      } finally {
        await page.close();
      }
    }
    t.diagnostic(
      `loads whose first frame came from the GOP cache (no camera keyframe in between): navigation start → first framesDecoded > 0: ` +
        `${decoded.join(', ')} ms (median ${median(decoded)} ms); loads repeated because a camera keyframe fell inside: ${straddled}`,
    );
  });

  it('e2e: a High-profile + AAC camera plays in Chromium: video not transcoded (offered as 42e01f, decoded at 1280x720), sound as Opus from one encoder, in step with the video', async (t) => {
    const since = hb.lines.length;
    // The camera really is High profile: in its SDP and in the SPS it sends.
    const describe = await rtspDescribe(high.url);
    const cameraVideo = parseSdp(describe.body).find((m) => m.kind === 'video')!;
    const cameraFmtp = Object.values(cameraVideo.fmtp).join(';');
    const sprop = /sprop-parameter-sets=([^,;]+)/.exec(cameraFmtp)?.[1] ?? '';
    const cameraProfile = Buffer.from(sprop, 'base64')[1];
    assert.equal(cameraProfile, 100, `the camera's SPS says profile_idc ${String(cameraProfile)}: ${cameraFmtp}`);

    const page = await openWatch('high');
    // A second viewer, werift over WHEP, to look at the bytes themselves.
    const peer = new WeriftReceiver();
    let location: string | undefined;
    try {
      const posted = await fetch(`${base}whep/high`, { method: 'POST', headers: { 'Content-Type': 'application/sdp', ...authHeaders() }, body: await peer.offer() });
      assert.equal(posted.status, 201);
      location = posted.headers.get('Location') ?? undefined;
      await peer.applyAnswer(await posted.text());
      const stats = await waitForFramesDecoded(page, 50, 30_000);
      const pc = stats.find((s) => (s.video?.framesDecoded ?? 0) >= 50)!;
      assert.equal(pc.video!.frameWidth, 1280, summarizeRtcStats(stats));
      assert.equal(pc.video!.frameHeight, 720);
      assert.match(pc.video!.sdpFmtpLine ?? '', /profile-level-id=42e01f/);
      // The sound: the camera's AAC as Opus, decoded by Chromium (samples keep coming).
      assert.match(pc.audio?.mimeType ?? '', /opus/i, summarizeRtcStats(stats));
      const heard = pc.audio!.totalSamplesReceived ?? 0;
      const later = await waitForRtcStats(page, (all) => all.some((p) => (p.audio?.totalSamplesReceived ?? 0) >= heard + 48_000), { timeoutMs: 15_000 });
      const audio = later.find((p) => (p.audio?.totalSamplesReceived ?? 0) >= heard + 48_000)!.audio!;
      // A/V offset as Chromium plays it: both tracks' estimated playout positions on the sender's
      // clock (set by the plugin's sender reports, in which the Opus packets carry the capture times
      // of the AAC frames they came from), read in one getStats() a few times.
      // Chromium lines the tracks up gradually after the sound starts (it moves the video's delay a
      // step at a time), and on a busy machine a late frame can knock them apart for a few seconds
      // before they settle again. So the readings go on until five in a row are within lip sync
      // (45 ms of sound ahead, 125 ms behind; ITU-R BT.1359), for up to 40 s.
      const inSync = (readings: number[]): boolean => readings.length === 5 && median(readings) > -125 && median(readings) < 45;
      const offsets: number[] = [];
      for (let i = 0; i < 100 && !inSync(offsets.slice(-5)); i++) {
        const now = (await readRtcStats(page)).find((p) => p.audio && p.video);
        const a = now?.audio?.estimatedPlayoutTimestamp;
        const v = now?.video?.estimatedPlayoutTimestamp;
        if (a !== undefined && v !== undefined) offsets.push(Math.round(a - v));
        await sleep(400);
      }
      const settled = offsets.slice(-5);
      const encoders = ffmpegDescendants(hb.pid!).filter((p) => {
        try {
          // The sound encoder reads AAC from a pipe (the VP8 variant's ffmpeg uses libopus too).
          const args = readFileSync(`/proc/${p.pid}/cmdline`, 'latin1').split('\0');
          return args.includes('libopus') && args.includes('pipe:0');
        } catch {
          return false; // exited meanwhile
        }
      }).length;
      t.diagnostic(`AAC camera: Chromium decoded ${audio.totalSamplesReceived} Opus samples (${audio.concealedSamples ?? '?'} concealed, ${audio.packetsReceived} packets); ` +
        `A/V offset (audio - video playout, ms) every 0.4 s: ${offsets.join(', ')} (settled median ${median(settled)}); Opus encoders: ${encoders}`);
      assert.equal(encoders, 1, 'one Opus encoder for the camera, with two viewers');
      assert.equal(hb.lines.slice(since).filter((l) => /turning the camera's AAC sound into Opus/.test(l)).length, 1);
      assert.equal(await high.sessionCount(), 1, 'the encoder is fed from the shared Source: still one camera session');
      // Both tracks have playout positions on the sender's clock: the plugin's sender reports reach
      // Chromium for the Opus track too. (Where the sound really sits against the camera's is
      // checked on the decoded sound in test/transcode/opus-audio.test.ts.)
      assert.ok(offsets.length >= 5, 'Chromium reports both playout positions');
      assert.ok(inSync(settled), `A/V never within lip sync for 2 s: offsets ${offsets.join(', ')} ms`);
      const offer = (await readProbe(page)).log.find((e) => e.type === 'offer')?.sdp ?? '';
      const offered = parseSdp(offer).find((m) => m.kind === 'video')!;
      const h264 = Object.entries(offered.rtpmap).filter(([, codec]) => /^H264\//i.test(codec)).map(([pt]) => offered.fmtp[Number(pt)] ?? '');
      assert.ok(h264.length >= 1 && h264.every((f) => /profile-level-id=42e01f/.test(f)), `the server offered: ${h264.join(' | ')}`);
      assert.ok(!/profile-level-id=64/i.test(offer), 'no High profile in the offer');
      // The bytes are the camera's: a second viewer (werift) receives the camera's own High SPS.
      await peer.waitFor(() => peer.keyframes >= 1 && peer.accessUnits >= 25, 15_000, 'a keyframe');
      const profile = spsProfileIdc(peer.annexB());
      assert.equal(profile, 100, 'the viewer gets the High-profile SPS the camera made (passed through, not re-encoded)');
      t.diagnostic(`camera SPS profile_idc ${String(cameraProfile)}; offered ${h264.join(' | ')}; ` +
        `Chromium decoded ${pc.video!.framesDecoded} frames at ${pc.video!.frameWidth}x${pc.video!.frameHeight} (${pc.video!.decoderImplementation ?? '?'}); SPS profile_idc received ${profile}`);
    } finally {
      if (location) await fetch(`${base}${location.slice(1)}`, { method: 'DELETE', headers: authHeaders() });
      await peer.close();
      await page.close();
    }
  });

  it('e2e: Firefox ESR (no H.264 here) plays the camera through one shared VP8 transcoder, next to Chromium on H.264, with one camera session', async (t) => {
    // Firefox ESR gathers no 127.0.0.1 candidates (whatever its prefs); it reaches the plugin through
    // this machine's own interface address, which never leaves the machine.
    const own = Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal);
    assert.ok(own.length > 0, 'this test needs a non-loopback IPv4 interface (Firefox ESR does not use loopback for ICE)');
    const firefox = await launchFirefox();
    const vp8Transcoders = (): number => ffmpegDescendants(hb.pid!).filter((p) => {
      try {
        return readFileSync(`/proc/${p.pid}/cmdline`, 'latin1').includes('libvpx');
      } catch {
        return false; // exited meanwhile
      }
    }).length;
    let chromiumPage: Page | undefined;
    try {
      const since = hb.lines.length;
      const first = await firefox.openPage(`${base}#camera=front`);
      if (new URL(first.url()).pathname === '/login') {
        await first.type('input[name=username]', VIEWER.username);
        await first.type('input[name=password]', VIEWER.password);
        await Promise.all([first.waitForNavigation(), first.click('button[type=submit]')]);
        // The sign-in lands on '/': a hash-only change would not load the page again.
        await first.goto('about:blank');
        await first.goto(`${base}#camera=front`);
      }
      const second = await firefox.openPage(`${base}#camera=front`);
      chromiumPage = await openWatch('front');
      const [statsA, statsB, statsChromium] = await Promise.all([
        waitForFramesDecoded(first, 50, 60_000),
        waitForFramesDecoded(second, 50, 60_000),
        waitForFramesDecoded(chromiumPage, 50, 60_000),
      ]);
      const firefoxVideo = statsA.find((pc) => (pc.video?.framesDecoded ?? 0) >= 50)!.video!;
      const chromiumVideo = statsChromium.find((pc) => (pc.video?.framesDecoded ?? 0) >= 50)!.video!;
      t.diagnostic(`Firefox A: ${summarizeRtcStats(statsA)}`);
      t.diagnostic(`Firefox B: ${summarizeRtcStats(statsB)}`);
      t.diagnostic(`Chromium: ${summarizeRtcStats(statsChromium)}`);
      assert.match(firefoxVideo.mimeType ?? '', /VP8/i, 'Firefox gets VP8');
      assert.deepEqual([firefoxVideo.frameWidth, firefoxVideo.frameHeight], [640, 360]);
      assert.match(chromiumVideo.mimeType ?? '', /H264/i, 'Chromium still gets the camera\'s H.264, untranscoded');
      // Opus from the camera's PCMU: sound in Firefox too.
      await waitForRtcStats(first, (all) => all.some((pc) => (pc.audio?.packetsReceived ?? 0) > 50), { timeoutMs: 10_000 });
      // One camera session and one transcoder for the three viewers.
      assert.equal(await front.sessionCount(), 1, 'camera sessions');
      assert.equal(vp8Transcoders(), 1, 'VP8 ffmpeg processes');
      const metrics = await (await fetch(`${base}metrics`, { headers: authHeaders() })).text();
      assert.match(metrics, /^webrtc_cameras_transcoders\{camera="front"\} 1$/m, 'Prometheus sees the encoder');
      assert.equal(hb.lines.slice(since).filter((l) => /transcoding to VP8/.test(l)).length, 1);
      // The transcoder ends after its last viewer leaves (idle timeout 10 s); H.264 viewers go on.
      await Promise.all([first.close(), second.close()]);
      const deadline = Date.now() + 30_000;
      while (vp8Transcoders() > 0) {
        assert.ok(Date.now() < deadline, 'the VP8 ffmpeg is still running 30 s after its last viewer left');
        await sleep(500);
      }
      const before = (await readRtcStats(chromiumPage)).reduce((n, pc) => Math.max(n, pc.video?.framesDecoded ?? 0), 0);
      await sleep(1000);
      const after = (await readRtcStats(chromiumPage)).reduce((n, pc) => Math.max(n, pc.video?.framesDecoded ?? 0), 0);
      assert.ok(after > before, 'the Chromium viewer still plays');
    } finally {
      await chromiumPage?.close();
      await firefox.close();
    }
  });

  it('e2e: an H.265 + AAC camera plays in Chromium as H.264 + Opus from the transcoder, with sound', async (t) => {
    const since = hb.lines.length;
    const page = await openWatch('hevc');
    try {
      const stats = await waitForFramesDecoded(page, 50, 60_000);
      const pc = stats.find((p) => (p.video?.framesDecoded ?? 0) >= 50)!;
      t.diagnostic(`H.265 camera in Chromium: ${summarizeRtcStats(stats)}`);
      // Chromium takes H.264: the camera's H.264 variant, not VP8 (cheaper to encode and to decode).
      assert.match(pc.video!.mimeType ?? '', /H264/i);
      assert.deepEqual([pc.video!.frameWidth, pc.video!.frameHeight], [640, 360]);
      await waitForRtcStats(page, (all) => all.some((p) => /opus/i.test(p.audio?.mimeType ?? '') && (p.audio?.packetsReceived ?? 0) > 50), { timeoutMs: 10_000 });
      await hb.waitForLog(/Camera hevc: .*H265 needs transcoding; sending this viewer the H\.264 variant/, 5_000, { since });
      assert.equal(await hevc.sessionCount(), 1, 'the camera has one session: the transcoder reads the re-stream');
    } finally {
      await page.close();
    }
  });

  it('e2e: WHEP: aiortc (python3-aiortc) decodes video and audio from the real chain, then DELETE ends the session', async (t) => {
    const result = await runTool('env', [`WHEP_BEARER_TOKEN=${bearer ?? ''}`, '/usr/bin/python3', join(here, '../webrtc/whep-client.py'), `${base}whep/front`, '20', '50'], 60_000);
    const line = result.stdout.trim().split('\n').pop() ?? '';
    assert.ok(line.startsWith('{'), `aiortc output: ${result.stdout}\n${result.stderr.slice(-2000)}`);
    const out = JSON.parse(line) as Record<string, unknown>;
    t.diagnostic(`aiortc: ${line}`);
    assert.equal(out.status, 201);
    assert.match(String(out.location), /^\/whep\/front\/[A-Za-z0-9-]+$/);
    assert.equal(out.contentType, 'application/sdp');
    assert.ok(Number(out.frames) >= 50, `frames decoded: ${String(out.frames)}`);
    assert.deepEqual([out.width, out.height], [640, 360]);
    assert.ok(Number(out.audioFrames) > 0);
    assert.equal(out.deleteStatus, 200);
  });

  it('e2e: WHEP: a VP8-only client (aiortc) is answered from the VP8 variant, of an H.264 and of an H.265 camera; an H.265 camera answers an H.264 + VP8 offer from its H.264 variant', async (t) => {
    for (const [camera, only, expected] of [['front', 'VP8', 'VP8'], ['hevc', 'VP8', 'VP8'], ['hevc', '', 'H264']] as const) {
      const result = await runTool('env', [`WHEP_BEARER_TOKEN=${bearer ?? ''}`, `WHEP_VIDEO_CODEC=${only}`, '/usr/bin/python3', join(here, '../webrtc/whep-client.py'), `${base}whep/${camera}`, '30', '50'], 60_000);
      const line = result.stdout.trim().split('\n').pop() ?? '';
      assert.ok(line.startsWith('{'), `aiortc output: ${result.stdout}\n${result.stderr.slice(-2000)}`);
      const out = JSON.parse(line) as Record<string, unknown>;
      t.diagnostic(`aiortc ${only || 'H264+VP8'}, ${camera}: ${line}`);
      assert.equal(out.status, 201, String(out.error));
      assert.deepEqual(out.videoCodecs, [expected]);
      assert.ok(Number(out.frames) >= 50, `frames decoded: ${String(out.frames)}`);
      assert.deepEqual([out.width, out.height], [640, 360]);
      assert.ok(Number(out.audioFrames) > 0, 'Opus audio too');
      assert.equal(out.deleteStatus, 200);
    }
  });

  it('e2e: WHEP: GStreamer webrtcbin (gst-plugins-bad; Debian has no whepsrc) decodes video', async (t) => {
    // scripts/setup.sh installs these; a machine without them must fail here, not pass silently.
    assert.ok(await gstreamerWebrtcAvailable(), 'GStreamer webrtcbin or its python bindings are missing (apt: gstreamer1.0-nice gir1.2-gst-plugins-bad-1.0 gir1.2-nice-0.1)');
    const result = await runTool('env', [`WHEP_BEARER_TOKEN=${bearer ?? ''}`, '/usr/bin/python3', join(here, 'webrtc-whep-gstreamer.py'), `${base}whep/front`, '20', '50'], 60_000);
    const line = result.stdout.trim().split('\n').pop() ?? '';
    assert.ok(line.startsWith('{'), `gstreamer output: ${result.stdout}\n${result.stderr.slice(-3000)}`);
    const out = JSON.parse(line) as Record<string, unknown>;
    t.diagnostic(`gstreamer webrtcbin: ${line}`);
    assert.equal(out.status, 201, line);
    assert.ok(Number(out.frames) >= 50, `frames decoded: ${String(out.frames)}\n${result.stderr.slice(-3000)}`);
    assert.deepEqual([out.width, out.height], [640, 360]);
    assert.ok(Number(out.audioBuffers) > 0, 'audio in the bundle-only section arrives too');
    assert.equal(out.deleteStatus, 200);
  });

  it('e2e: WHEP with curl: an offer POSTed from a file gets 201, Location and an answer that works; DELETE ends it', async (t) => {
    // The offer comes from a werift peer that then applies curl's answer: the exchange is curl's.
    const dir = await mkdtemp(join(tmpdir(), 'wrc-whep-curl-'));
    const peer = new WeriftReceiver({ keepVideo: false });
    try {
      const offerFile = join(dir, 'offer.sdp');
      await writeFile(offerFile, await peer.offer());
      const auth = bearer ? ['-H', `Authorization: Bearer ${bearer}`] : [];
      const posted = await runTool('curl', ['-sS', '-i', '-X', 'POST', ...auth, '-H', 'Content-Type: application/sdp', '--data-binary', `@${offerFile}`, `${base}whep/front`]);
      const [head = '', body = ''] = posted.stdout.split(/\r\n\r\n/, 2);
      assert.match(head, /^HTTP\/1\.1 201/, posted.stdout + posted.stderr);
      assert.match(head, /\r\ncontent-type: application\/sdp/i);
      const location = /\r\nlocation: (\S+)/i.exec(head)?.[1];
      assert.match(location ?? '', /^\/whep\/front\/[A-Za-z0-9-]+$/);
      assert.match(body, /^v=0\r\n/);
      assert.match(body, /a=rtpmap:\d+ H264\/90000/);
      assert.match(body, /a=fingerprint:sha-256 /);
      assert.match(body, /a=candidate:/);
      await peer.applyAnswer(body);
      await peer.waitFor(() => peer.accessUnits >= 25 && peer.keyframes >= 1, 15_000, 'video after the curl exchange');
      const deleted = await runTool('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'DELETE', ...auth, `${base}${location!.slice(1)}`]);
      const again = await runTool('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'DELETE', ...auth, `${base}${location!.slice(1)}`]);
      t.diagnostic(`curl: POST 201 Location ${location}; ${peer.accessUnits} access units received on the answer; DELETE ${deleted.stdout}, again ${again.stdout}`);
      assert.equal(deleted.stdout, '200');
      assert.equal(again.stdout, '404');
      const packets = peer.videoPackets;
      await sleep(1000);
      assert.ok(peer.videoPackets - packets < 10, `media stopped after DELETE (${peer.videoPackets - packets} more packets)`);
    } finally {
      await peer.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('e2e: reboot: the camera is off for 3 s, three times; each time the open page plays again within 1.5 s of the camera, without reload', async (t) => {
    const page = await openWatch('front');
    try {
      await waitForFramesDecoded(page, 25, 20_000);
      const { pageId } = await readProbe(page);
      const pcsBefore = (await readRtcStats(page)).length;
      const pageNow = (): Promise<number> => page.evaluate(() => performance.now());
      const reports: string[] = [];
      let offlineText = '';
      let retryingSeen = 0;
      for (let round = 1; round <= 3; round++) {
        const stoppedAt = await pageNow();
        await front.stop();
        // The page samples itself every 100 ms: through the 3 s outage, then until frames come again.
        const outage = await sampleFrames(page, 3_000, 100);
        offlineText = (await textOf(page, '#player-message')) || offlineText;
        await front.restart();
        const upAt = await pageNow();
        const lastBefore = outage.at(-1)!;
        const samples = [...outage, ...(await sampleFrames(page, 10_000, 100, lastBefore.framesDecoded))];
        const probe = await readProbe(page);
        const retrying = probe.log.filter((e) => e.type === 'state' && (e.state === 'retrying' || e.state === 'offline') && e.at > stoppedAt);
        retryingSeen += retrying.length;
        assert.ok(retrying.every((e) => !/rtsp:|127\.0\.0\.1/.test(e.message ?? '')), 'viewers are not told the camera URL');
        // The freeze: from the last frame decoded before the stop to the first one after the restart.
        const lastFrameAt = samples.filter((s) => s.at <= upAt && s.framesDecoded === lastBefore.framesDecoded)[0]?.at ?? stoppedAt;
        const resumed = samples.find((s) => s.at > upAt && (s.pc !== lastBefore.pc || s.framesDecoded > lastBefore.framesDecoded));
        assert.ok(resumed, `round ${round}: no frame after the restart: ${summarizeRtcStats(await readRtcStats(page))}`);
        const outageMs = upAt - stoppedAt;
        const freezeMs = resumed.at - Math.min(lastFrameAt, stoppedAt);
        reports.push(`round ${round}: camera off ${(outageMs / 1000).toFixed(1)} s, picture frozen ${(freezeMs / 1000).toFixed(1)} s, frames again ${(resumed.at - upAt).toFixed(0)} ms after the camera`);
        assert.ok(resumed.at - upAt <= 1_500, `round ${round}: frames again ${(resumed.at - upAt).toFixed(0)} ms after the camera came back (outage ${outageMs.toFixed(0)} ms, freeze ${freezeMs.toFixed(0)} ms)`);
        // Playing between the reboots, so each round starts from a live picture.
        await waitForFramesDecoded(page, resumed.framesDecoded + 25, 20_000);
      }
      t.diagnostic(`${reports.join('; ')}; peer connections ${pcsBefore} → ${(await readRtcStats(page)).length}; the page said: ${offlineText}`);
      assert.ok(retryingSeen >= 1, 'the page was told the camera is down');
      assert.match(offlineText, /^Camera offline, retrying/, 'the page says so in words');
      assert.equal((await readProbe(page)).pageId, pageId, 'the page was not reloaded');
      const later = await sampleFrames(page, 2_000, 200);
      assert.ok(longestStall(later).frames >= 30, `${longestStall(later).frames} frames in the 2 s after recovery`);
      assert.equal(await textOf(page, '#player-state'), 'Live');
      assert.equal(await front.sessionCount(), 1);
    } finally {
      await page.close();
    }
  });
});
