/**
 * Two-way audio end to end (issue 15): Chromium's fake microphone plays a 1 kHz tone; a viewer with
 * the talk right holds the watch page's "Hold to talk" button; the plugin (a real Homebridge) takes
 * the Opus from the peer connection, turns it into G.711 with ffmpeg and sends it through the ONVIF
 * back-channel of a GStreamer camera (gst-rtsp-server's ONVIF factory, digest auth), which decodes
 * it and reports the tone it hears. A viewer without the right sees no button; one talker at a time.
 * The Home app's microphone takes the same path: hap-controller pairs like an iPhone, opens a live
 * view and sends Opus back on its audio port, as the Home app does in a two-way audio call.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { launchChromium, signInWithForm, waitForFramesDecoded, type ChromiumSession } from '../helpers/browser.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { platformConfig, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { getFreePort } from '../helpers/ports.js';
import { cleanupAll } from '../helpers/processes.js';
import { opusTone } from '../helpers/opus-tone.js';
import { HapCameraClient } from '../homekit/hap-camera-client.js';
import { startLiveStream } from '../homekit/live-stream.js';

after(cleanupAll);

const CAMERA_LOGIN = { user: 'admin', password: 'Speaker-Cam-Secret-5' };
const ALICE = { username: 'alice', password: 'Alice-Talks-Secret-1', talk: true };
const BOB = { username: 'bob', password: 'Bob-Listens-Secret-2' };
const CAROL = { username: 'carol', password: 'Carol-Admin-Secret-3', admin: true };
/**
 * Level (RMS, 0..1) above which the camera hears the tone. Chromium's noise suppression takes a
 * steady tone for noise and lowers it about 20 dB (0.088 in, about 0.01 out), so the level is
 * low; the frequency is what says it is our tone. Silence decodes to 0.
 */
const HEARD_RMS = 0.004;
const isTone = (r: { frequency: number; rms: number }): boolean => r.rms > HEARD_RMS && Math.abs(r.frequency - 1000) <= 20;

describe('e2e: talking through the camera from the watch page (Chromium microphone -> ONVIF back-channel)', { timeout: 180_000 }, () => {
  let camera: FakeCamera;
  let hb: HomebridgeProcess;
  let base: string;
  const browsers: ChromiumSession[] = [];
  let toneDir: string;
  let hap: HapCameraClient | undefined;

  before(async () => {
    // The fake microphone: 1 kHz, looped by Chromium for as long as the page listens.
    toneDir = mkdtempSync(join(tmpdir(), 'wrc-tone-'));
    const made = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000:duration=10', '-ac', '1', join(toneDir, 'tone.wav')]);
    assert.equal(made.status, 0, made.stderr.toString());
    camera = await FakeCamera.start({ backchannel: 'pcmu', audio: 'pcmu', auth: { method: 'digest', user: CAMERA_LOGIN.user, password: CAMERA_LOGIN.password } });
    hb = await startHomebridge({
      platform: platformConfig({
        cameras: [{ name: 'Door', id: 'door', rtspUrl: camera.url, username: CAMERA_LOGIN.user, password: CAMERA_LOGIN.password, twoWayAudio: true }],
        web: { port: await getFreePort() },
        viewers: [ALICE, BOB, CAROL],
      }),
    });
    const line = await hb.waitForLog(/Watch page: (\S+)/, 20_000);
    base = /Watch page: (\S+)/.exec(line)![1]!.replace(/\/$/, '');
  });

  after(async () => {
    await hap?.close().catch(() => undefined);
    await Promise.all(browsers.map((b) => b.close()));
    await stopAllHomebridges();
    await hb?.stop({ removeStorage: true });
    await camera?.close();
    if (toneDir) rmSync(toneDir, { recursive: true, force: true });
  });

  /** A browser of its own (its own cookie and microphone) signed in as `user`, on the player of the door camera. */
  async function playerAs(user: { username: string; password: string }): Promise<Page> {
    const browser = await launchChromium({ extraArgs: [`--use-file-for-fake-audio-capture=${join(toneDir, 'tone.wav')}`] });
    browsers.push(browser);
    // The microphone, as a person would allow it when the browser asks.
    await browser.context.grantPermissions(['microphone'], { origin: new URL(base).origin });
    const login = await browser.openPage(`${base}/login`);
    await signInWithForm(login, base, user.username, user.password);
    await login.close();
    // A new tab, like the other e2e suites: the player opens from the address's #camera at load.
    return browser.openPage(`${base}/#camera=door`);
  }

  it('alice holds the button: the camera hears 1 kHz; bob has no button; carol is told alice talks; released, the camera hears nothing and the back-channel closes', async () => {
    const alice = await playerAs(ALICE);
    const talk = alice.locator('#player-talk');
    await talk.waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await camera.talkSessionCount(), 0, 'no back-channel before anyone talks');

    const bob = await playerAs(BOB);
    // Bob's player plays but offers no talk button.
    await waitForFramesDecoded(bob, 10, 30_000);
    assert.equal(await bob.locator('#player-talk').isVisible(), false, 'no talk right, no button');

    // Hold to talk (the pointer stays down until mouse.up).
    const box = (await talk.boundingBox())!;
    await alice.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const pressedAt = Date.now();
    await alice.mouse.down();
    const heard = await camera.waitForTalk(isTone, 20_000);
    const firstHeardMs = Date.now() - pressedAt;
    assert.equal(await talk.getAttribute('aria-pressed'), 'true');
    assert.equal(await camera.talkSessionCount(), 1, 'one back-channel session');
    // Several half-second reports of the tone in a row: the voice flows, not a burst.
    camera.clearTalkReports();
    await camera.waitForTalk(() => camera.talkReports().filter(isTone).length >= 4, 10_000);
    const steady = camera.talkReports();

    // Carol (an admin) may talk, but alice holds the floor: her page says so and her button is off.
    const carol = await playerAs(CAROL);
    await carol.locator('#player-talk-state', { hasText: 'alice is talking' }).waitFor({ timeout: 30_000 });
    assert.equal(await carol.locator('#player-talk').isDisabled(), true);

    await alice.mouse.up();
    await carol.locator('#player-talk:not([disabled])').waitFor({ timeout: 10_000 });
    // After the release the camera hears silence or nothing: no more of the tone after a second.
    await new Promise((r) => setTimeout(r, 1500));
    camera.clearTalkReports();
    await new Promise((r) => setTimeout(r, 2000));
    const afterRelease = camera.talkReports().filter((r) => r.rms > HEARD_RMS);
    assert.deepEqual(afterRelease, [], 'nothing audible after letting go');
    // The back-channel is kept a little for the next press, then closed.
    await camera.waitForTalkSessionCount(0, 20_000);
    const packets = Math.max(...steady.map((r) => r.packets));
    console.log(`# press -> camera heard 1 kHz after ${firstHeardMs} ms (${heard.frequency} Hz, rms ${heard.rms.toFixed(3)}); ${packets} RTP packets; steady reports: ${steady.map((r) => `${r.frequency}Hz/${r.rms.toFixed(2)}`).join(' ')}`);
    const logs = hb.output();
    assert.ok(!logs.includes(CAMERA_LOGIN.password), 'the camera password never reaches a log line');
  });

  it('the Home app\'s microphone: a paired HAP client\'s live view sends 1 kHz Opus back and the camera hears it; the watch page says the Home app is talking', async () => {
    hap = await HapCameraClient.pair(hb.bridgePort, hb.pin);
    const door = await hap.camera('Door');
    // Two-way audio in HAP: the camera accessory gets a Speaker service, and Opus is offered.
    assert.ok(door.services.some((service) => service.type === 0x113), 'a Speaker service');
    assert.deepEqual(await hap.supportedAudioCodecs(door.streamManagements[0]!), [3], 'Opus');
    // Opus at 24 kHz (HAP sample-rate index 2), its RTP clock at 24 kHz as HomeKit stamps it.
    const stream = await startLiveStream(hap, door.streamManagements[0]!, { width: 640, height: 360, audioCodec: 3, audioSampleRate: 2 });
    try {
      await stream.video.waitForPackets(25, 30_000);
      const carol = await playerAs(CAROL);
      await carol.locator('#player-talk').waitFor({ state: 'visible', timeout: 30_000 });
      // The Home app's microphone: 4 s of tone, 20 ms packets in real time, then silence packets.
      const tone = opusTone(1000, 4, 24_000);
      const silence = opusTone(0, 0.2, 24_000).slice(0, 1);
      const target = { address: stream.accessory.address, port: stream.accessory.audioPort };
      const began = Date.now();
      let heardAt = 0;
      const heard = camera.waitForTalk(isTone, 20_000).then((report) => {
        heardAt = Date.now();
        return report;
      });
      let carolSaw = false;
      const carolSees = carol.locator('#player-talk-state', { hasText: 'the Home app is talking' }).waitFor({ timeout: 20_000 }).then(() => (carolSaw = true));
      for (let i = 0; i < tone.length + 100; i++) {
        const payload = i < tone.length ? tone[i]! : silence[0]!;
        stream.audio.sendRtp(target, { payloadType: 110, sequenceNumber: 4000 + i, timestamp: 777_000 + i * 480, ssrc: 0x2345_6789, payload });
        const wait = began + (i + 1) * 20 - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (i === tone.length - 1) {
          await heard;
          await carolSees;
          assert.equal(await carol.locator('#player-talk').isDisabled(), true, 'carol cannot talk over the Home app');
        }
      }
      const report = await heard;
      assert.ok(carolSaw);
      assert.equal(await camera.talkSessionCount(), 1, 'one back-channel session');
      // Silence packets do not hold the floor: 5 s after the last word it is free again.
      await carol.locator('#player-talk:not([disabled])').waitFor({ timeout: 15_000 });
      console.log(`# Home app microphone -> camera heard 1 kHz after ${heardAt - began} ms (${report.frequency} Hz, rms ${report.rms.toFixed(3)})`);
      assert.match(hb.output(), /the Home app talks through the camera/);
      assert.match(hb.output(), /Opus RTP clock 24000 Hz/);
    } finally {
      await stream.end();
    }
  });
});
