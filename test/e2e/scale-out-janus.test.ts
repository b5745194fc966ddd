/**
 * Issue 18 end to end: Homebridge runs the plugin with `scaleOut.janus` naming a real Janus
 * (Debian's 1.1.2, started on loopback with an API secret and a streaming admin key). Two real
 * GStreamer cameras are scaled out. What is checked:
 * - the plugin publishes each camera on the gateway (one mountpoint, one copy) and logs neither
 *   Janus secret;
 * - Chromium opens a share link for camera A and plays it, with sound, from Janus (Janus's offer:
 *   its SDP names the mountpoint), through the plugin's own page and signalling;
 * - that link cannot watch camera B: the plugin refuses before any gateway is asked;
 * - 100 werift viewers (the plugin's WebSocket signalling, the share link as bearer) all receive
 *   the camera from Janus while Homebridge's CPU stays near its level with no viewer (quoted), the
 *   camera has one session, and the plugin runs no viewer peer of its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createUiHandlers } from '../../src/homebridge-ui/handlers.js';
import { launchChromium, readRtcStats, summarizeRtcStats, waitForFramesDecoded, type ChromiumSession } from '../helpers/browser.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { platformConfig, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { startJanus, type JanusGatewayProcess } from '../helpers/janus.js';
import { getFreePort } from '../helpers/ports.js';
import { cpuPercentOver } from '../helpers/proc-stat.js';
import { request, signIn } from '../web/auth-helpers.js';
import { watchOverSignalling, type SignallingClient } from '../webrtc/werift-client.js';
import { PAGE_PROBE_SCRIPT, readProbe } from './webrtc-helpers.js';

const ADMIN = { username: 'family', password: 'a long family passphrase', admin: true };
const VIEWERS = 100;

/** Progress lines with the time since the file started, so that a slow or stuck step names itself in CI's log. */
const started = performance.now();
function step(what: string): void {
  console.log(`scale-out e2e +${((performance.now() - started) / 1000).toFixed(1)} s: ${what}`);
}

/** `promise`, or an error naming `what` after `ms`. */
async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result in ${ms / 1000} s`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

// The file has 240 s in the suite (--test-timeout); each step has a budget of its own, so that a
// step that is stuck fails its test, with the step's name, instead of timing the whole file out.
describe('e2e: scale-out to a real Janus through Homebridge', { timeout: 230_000 }, () => {
  let yard: FakeCamera;
  let gate: FakeCamera;
  let hevc: FakeCamera;
  let janus: JanusGatewayProcess;
  let hb: HomebridgeProcess;
  let chromium: ChromiumSession;
  let base: string;
  let yardLink: string;
  const clients: SignallingClient[] = [];

  before(async () => {
    step('starting the cameras and Janus');
    const webPort = await getFreePort();
    [yard, gate, hevc, janus] = await Promise.all([
      FakeCamera.start({ width: 640, height: 360, fps: 15, keyframeIntervalFrames: 30, audio: 'pcmu', bitrateKbps: 300 }),
      FakeCamera.start({ width: 320, height: 180, fps: 15, keyframeIntervalFrames: 30, audio: 'pcma', bitrateKbps: 200 }),
      // What no browser takes over WebRTC: H.265 video and AAC sound.
      FakeCamera.start({ width: 320, height: 180, fps: 15, keyframeIntervalFrames: 30, codec: 'h265', audio: 'aac', bitrateKbps: 200 }),
      startJanus({ apiSecret: 'janus-API-secret-e2e', adminKey: 'janus-ADMIN-key-e2e' }),
    ]);
    step('starting Homebridge');
    hb = await startHomebridge({
      platform: platformConfig({
        cameras: [
          { name: 'Yard', id: 'yard', rtspUrl: yard.url, scaleOut: true, maxViewers: VIEWERS + 10 },
          { name: 'Gate', id: 'gate', rtspUrl: gate.url, scaleOut: true },
          { name: 'Hevc', id: 'hevc', rtspUrl: hevc.url, scaleOut: true },
        ],
        viewers: [ADMIN],
        // Every viewer here is on 127.0.0.1 and holds the same link: the per-address and per-link caps are raised.
        web: { port: webPort, maxViewsPerUser: 200, maxViewsPerAddress: 200, maxConnectingViews: 100 },
        scaleOut: { janus: [{ url: janus.url, apiSecret: janus.apiSecret, adminKey: janus.adminKey }] },
      }),
    });
    await hb.waitForLog(/Watch page: /, 20_000);
    step('waiting for the cameras on the gateway');
    base = `http://127.0.0.1:${webPort}`;
    await hb.waitForLog(/camera yard published on http:\/\/127\.0\.0\.1:\d+\/janus/, 30_000);
    await hb.waitForLog(/camera gate published on http:\/\/127\.0\.0\.1:\d+\/janus/, 30_000);
    const admin = await within('signing in', 20_000, signIn(base, ADMIN.username, ADMIN.password));
    assert.equal(admin.status, 200);
    const link = await request(`${base}/api/share-links`, {
      method: 'POST',
      jar: admin.jar,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': admin.csrf },
      body: JSON.stringify({ cameras: ['yard'], expiresIn: '1d', label: 'the neighbours' }),
    });
    assert.equal(link.status, 201, link.body);
    yardLink = (JSON.parse(link.body) as { token: string }).token;
    step('starting Chromium');
    chromium = await within('starting Chromium', 30_000, launchChromium());
    await chromium.context.addInitScript({ content: PAGE_PROBE_SCRIPT });
    step('ready');
  }, { timeout: 150_000 });

  after(async () => {
    step('closing');
    for (const c of clients) c.ws.terminate();
    await within('closing the werift viewers', 20_000, Promise.all(clients.map((c) => c.receiver.close()))).catch((error: unknown) => step(String(error)));
    await within('closing Chromium', 15_000, chromium?.close() ?? Promise.resolve()).catch((error: unknown) => step(String(error)));
    await stopAllHomebridges();
    await hb?.stop({ removeStorage: true });
    await janus?.stop();
    await Promise.all([yard?.close(), gate?.close(), hevc?.close()]);
    step('closed');
  }, { timeout: 60_000 });

  it('Chromium opens a share link and plays camera A with sound from Janus, through the plugin\'s page', { timeout: 60_000 }, async () => {
    step('Chromium test');
    // The link's landing page sets the session cookie, then moves on to the watch page by itself;
    // once it has, the camera opens in a tab of its own (no navigation racing the landing page's).
    const landing = await chromium.openPage(`${base}/s/${yardLink}`);
    await landing.waitForURL((url) => url.pathname === '/', { timeout: 20_000 });
    await landing.close();
    const page = await chromium.openPage(`${base}/#camera=yard`);
    try {
      const stats = await waitForFramesDecoded(page, 30, 30_000);
      const video = stats.flatMap((pc) => pc.inbound).find((s) => s.kind === 'video');
      assert.ok((video?.framesDecoded ?? 0) >= 30, summarizeRtcStats(stats));
      assert.equal(video?.frameWidth, 640);
      // Sound: the camera's PCMU, played (packets and samples received).
      let audio = stats.flatMap((pc) => pc.inbound).find((s) => s.kind === 'audio');
      for (let i = 0; i < 50 && (audio?.packetsReceived ?? 0) < 50; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        audio = (await readRtcStats(page)).flatMap((pc) => pc.inbound).find((s) => s.kind === 'audio');
      }
      assert.ok((audio?.packetsReceived ?? 0) >= 50, `audio packets: ${audio?.packetsReceived}`);
      // The offer the page answered is Janus's (its streaming plugin names the mountpoint).
      const probe = await within('reading the page probe', 15_000, readProbe(page));
      const offer = probe.log.find((entry) => entry.type === 'offer')?.sdp ?? '';
      assert.match(offer, /^s=Mountpoint \d+\r?$/m, 'the page was offered by Janus');
      assert.match(offer, /a=rtpmap:0 PCMU\/8000/);
      assert.ok(!offer.includes(janus.apiSecret) && !offer.includes(janus.adminKey));
    } finally {
      await page.close();
    }
  });

  it('the share link for camera A cannot watch camera B: refused by the plugin, no gateway asked', { timeout: 30_000 }, async () => {
    const signal = `${base.replace(/^http/, 'ws')}/signal`;
    const client = await watchOverSignalling(signal, 'gate', { keepVideo: false }, { headers: { Authorization: `Bearer ${yardLink}` } });
    try {
      const error = await client.next('error', 10_000);
      assert.equal(error.code, 'forbidden');
      assert.ok(!client.messages.some((m) => m.type === 'offer'), 'no offer, from Janus or anyone');
    } finally {
      await client.close();
    }
  });

  it('an H.265 camera with AAC sound goes to Janus as the plugin\'s H.264 and Opus (one encoder each), and plays there', { timeout: 90_000 }, async () => {
    step('H.265 test');
    await hb.waitForLog(/camera hevc published on http:\/\/127\.0\.0\.1:\d+\/janus \(H264 and OPUS from the plugin's encoder\)/, 60_000);
    const admin = await within('signing in', 20_000, signIn(base, ADMIN.username, ADMIN.password));
    const link = await request(`${base}/api/share-links`, {
      method: 'POST',
      jar: admin.jar,
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': admin.csrf },
      body: JSON.stringify({ cameras: ['hevc'], expiresIn: '1h', label: 'hevc' }),
    });
    const token = (JSON.parse(link.body) as { token: string }).token;
    const client = await watchOverSignalling(`${base.replace(/^http/, 'ws')}/signal`, 'hevc', { keepVideo: false, opus: true }, { headers: { Authorization: `Bearer ${token}` } });
    try {
      await client.receiver.waitFor(() => client.receiver.keyframes >= 1 && client.receiver.accessUnits >= 15 && client.receiver.audioPackets >= 25, 30_000, 'H.264 pictures and Opus sound from Janus');
      const offer = client.messages.find((m) => m.type === 'offer')?.sdp as string;
      assert.match(offer, /^s=Mountpoint/m);
      assert.match(offer, /a=rtpmap:96 H264\/90000/);
      assert.match(offer, /a=rtpmap:111 opus\/48000\/2/);
      assert.equal(await hevc.sessionCount(), 1, 'the encoders read the re-stream: one camera session');
    } finally {
      await client.close();
    }
  });

  it(`${VIEWERS} werift viewers are served by Janus: the plugin sends one copy, its CPU stays near its no-viewer level, the camera has one session`, { timeout: 150_000 }, async () => {
    step('100 viewers test');
    const pid = hb.pid;
    assert.ok(pid, 'Homebridge runs');
    const idle = await cpuPercentOver(pid, 5000);
    const signal = `${base.replace(/^http/, 'ws')}/signal`;
    for (let batch = 0; batch < VIEWERS; batch += 20) {
      // From four loopback addresses: the web server takes at most 64 connections from one.
      const joined = await Promise.all(Array.from({ length: Math.min(20, VIEWERS - batch) }, (_, i) =>
        watchOverSignalling(signal, 'yard', { keepVideo: false }, { headers: { Authorization: `Bearer ${yardLink}` }, localAddress: `127.0.0.${2 + ((batch + i) % 4)}` })));
      clients.push(...joined);
      await Promise.all(joined.map((c) => c.next('state', 20_000)));
      step(`${clients.length} viewers signalled`);
    }
    await Promise.all(clients.map((c, i) => c.receiver.waitFor(() => c.receiver.keyframes >= 1 && c.receiver.accessUnits >= 15 && c.receiver.audioPackets >= 25, 60_000, `viewer ${i}: a keyframe, pictures and sound`)));
    for (const c of clients) assert.match(c.messages.find((m) => m.type === 'offer')?.sdp as string, /^s=Mountpoint/m, 'offered by Janus');
    step('all viewers play; measuring');
    const loaded = await cpuPercentOver(pid, 10_000);
    const received = clients.reduce((sum, c) => sum + c.receiver.videoPackets, 0);
    console.log(`scale-out: Homebridge CPU ${idle.toFixed(1)} % with no viewer, ${loaded.toFixed(1)} % with ${VIEWERS} viewers on Janus (${received} video packets received by them in all)`);
    // What does not depend on the machine: one camera session, and every viewer on Janus.
    assert.equal(await yard.sessionCount(), 1);
    // What does, loosely: a plugin that served them itself would spend about a core on 100 viewers.
    assert.ok(loaded < idle + 15, `Homebridge CPU ${loaded.toFixed(1)} % with ${VIEWERS} viewers against ${idle.toFixed(1)} % with none`);
    assert.ok(!hb.lines.some((l) => l.includes(janus.apiSecret) || l.includes(janus.adminKey)), 'no Janus secret in the log');

    // What the Homebridge UI's page shows, through its own server side: the gateway up with these
    // viewers and the three cameras, and each camera's part; never a Janus secret.
    const status = (await createUiHandlers({ storagePath: hb.storagePath })['/status']!(undefined)) as {
      cameras: Array<{ id: string; scaleOut?: { gateways: number; viewers: number } }>;
      gateways?: Array<{ url: string; state: string; viewers: number; cameras: number; problems: Record<string, string> }>;
    };
    const [gateway, ...others] = status.gateways ?? [];
    assert.equal(others.length, 0);
    assert.deepEqual([gateway?.url, gateway?.state, gateway?.cameras, gateway?.problems], [janus.url, 'up', 3, {}]);
    assert.ok((gateway?.viewers ?? 0) >= VIEWERS, `the gateway's viewers: ${gateway?.viewers}`);
    const yardPart = status.cameras.find((c) => c.id === 'yard')?.scaleOut;
    assert.ok(yardPart?.gateways === 1 && yardPart.viewers >= VIEWERS, JSON.stringify(yardPart));
    assert.deepEqual(status.cameras.find((c) => c.id === 'gate')?.scaleOut, { gateways: 1, viewers: 0 }, 'nobody may watch the gate through Janus here');
    const text = JSON.stringify(status);
    assert.ok(!text.includes(janus.apiSecret) && !text.includes(janus.adminKey), 'no Janus secret on the UI page');
  });
});
