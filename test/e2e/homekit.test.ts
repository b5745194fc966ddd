/**
 * HomeKit end to end: a real Homebridge loads the built plugin, the npm `hap-controller` pairs with
 * it by setup code like an iPhone would, and everything the Home app does goes through HAP: reading
 * the camera's stream configuration, snapshots, SetupEndpoints + START + END, and the motion sensor.
 * The cameras are GStreamer fake cameras; motion and device details come from the ONVIF responder.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchChromium, signInWithForm, waitForFramesDecoded, type ChromiumSession } from '../helpers/browser.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { platformConfig, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';
import { getFreePort } from '../helpers/ports.js';
import { CHARACTERISTIC, HapCameraClient, type CameraAccessory } from '../homekit/hap-camera-client.js';
import { checkImage, ffmpegDescendants } from '../homekit/inspect.js';
import { startLiveStream, type LiveStream } from '../homekit/live-stream.js';
import { depacketizeH264, nalTypes, probeH264 } from '../homekit/srtp-receiver.js';

const ONVIF_PASSWORD = 'Onvif-Pass-9';
const VIEWER = { username: 'viewer', password: 'Viewer-Pass-8' };

async function waitForValue(read: () => Promise<unknown>, expected: unknown, timeoutMs: number): Promise<number> {
  const started = performance.now();
  let last: unknown;
  while (performance.now() - started < timeoutMs) {
    last = await read();
    if (last === expected) return performance.now() - started;
    await sleep(100);
  }
  throw new Error(`value stayed ${JSON.stringify(last)}, expected ${JSON.stringify(expected)} within ${timeoutMs} ms`);
}

async function noFfmpegLeft(hb: HomebridgeProcess, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = ffmpegDescendants(hb.pid!);
    if (left.length === 0) return;
    if (Date.now() > deadline) assert.fail(`ffmpeg processes left under Homebridge: ${left.map((p) => p.pid).join(', ')}`);
    await sleep(100);
  }
}

describe('e2e: HomeKit through a real HAP client', { timeout: 600_000 }, () => {
  let camera: FakeCamera;
  let quiet: FakeCamera;
  let onvif: OnvifResponder;
  let hb: HomebridgeProcess;
  let hap: HapCameraClient;
  let front: CameraAccessory;
  let webPort: number;
  const streams: LiveStream[] = [];

  before(async () => {
    [camera, quiet] = await Promise.all([
      FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'pcmu' }),
      FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'none' }),
    ]);
    onvif = await startOnvifResponder({ password: ONVIF_PASSWORD, streamUrl: camera.url });
    webPort = await getFreePort();
    hb = await startHomebridge({
      platform: platformConfig({
        cameras: [
          {
            name: 'Front',
            rtspUrl: camera.url,
            onvif: { host: '127.0.0.1', port: onvif.port, username: 'admin', password: ONVIF_PASSWORD },
            motion: true,
            motionResetSeconds: 2,
          },
          { name: 'Quiet', rtspUrl: quiet.url },
        ],
        web: { port: webPort },
        viewers: [VIEWER],
        // A deliberately broken encoder setting: it only matters when a stream must be re-encoded.
        ffmpeg: { encoderOptions: '-preset warp-speed' },
      }),
    });
    await hb.waitForLog(/\[Front\] Home app camera ready/, 30_000);
    await hb.waitForLog(/\[Quiet\] Home app camera ready/, 30_000);
    hap = await HapCameraClient.pair(hb.bridgePort, hb.pin);
    front = await hap.camera('Front');
  });

  after(async () => {
    if (process.env['HK_DUMP_LOG'] && hb) writeFileSync(process.env['HK_DUMP_LOG'], hb.output());
    for (const stream of streams) await stream.end().catch(() => undefined);
    await hap?.close().catch(() => undefined);
    await hb?.stop({ removeStorage: true });
    await stopAllHomebridges();
    await Promise.all([camera?.close(), quiet?.close(), onvif?.close()]);
  });

  it('pairs by setup code and finds RTP Stream Management with the fake camera\'s resolutions', async () => {
    assert.match(hb.output(), /\[Front\] Home app camera ready: camera picture 640x360; resolutions 640x360@30, /);
    assert.equal(front.streamManagements.length, 4, 'maxHomeKitStreams (default 4) stream services');
    const resolutions = await hap.supportedResolutions(front.streamManagements[0]!);
    assert.ok(resolutions.some((r) => r.width === 640 && r.height === 360), JSON.stringify(resolutions));
    assert.ok(resolutions.every((r) => r.width <= 640 && r.height <= 360), `nothing above the camera's size: ${JSON.stringify(resolutions)}`);
    assert.ok(resolutions.some((r) => r.width === 320 && r.height === 240 && r.fps === 15), 'the Apple Watch size');
    assert.ok(resolutions.some((r) => r.width === 480 && r.height === 270), 'the Apple Watch size');
    assert.deepEqual(await hap.supportedAudioCodecs(front.streamManagements[0]!), [3], 'Opus only (this ffmpeg has no libfdk_aac)');
    assert.match(hb.output(), /Home app audio: Opus \(libopus\); AAC-ELD is not offered because this ffmpeg has no libfdk_aac/);
    assert.ok(!front.services.some((s) => s.type === 0x113), 'no Speaker service without twoWayAudio');
    // The motion sensor sits on the camera accessory, linked from its stream services.
    assert.ok(front.motionSensor, 'a MotionSensor service');
    assert.ok(front.streamManagements.every((s) => s.linked.includes(front.motionSensor!.iid)), 'linked to the camera');
    // Accessory details from ONVIF (the config left them empty).
    const info = front.services.find((s) => s.type === 0x3e)!;
    await waitForValue(() => hap.read(HapCameraClient.characteristic(info, CHARACTERISTIC.manufacturer)), 'Mockup Manufacturer', 15_000);
    assert.equal(await hap.read(HapCameraClient.characteristic(info, CHARACTERISTIC.model)), 'Mockup Model');
  });

  it('getImage returns a JPEG of the requested size with a real picture in it', async () => {
    for (const [width, height] of [[640, 360], [320, 180], [480, 270]] as const) {
      const started = performance.now();
      const jpeg = await hap.getImage(width, height, front.aid);
      const ms = performance.now() - started;
      const image = await checkImage(jpeg);
      assert.equal(image.codec, 'mjpeg');
      assert.equal(image.width, width);
      assert.equal(image.height, height);
      assert.ok(image.variance > 200, `pixel variance ${image.variance.toFixed(0)} (a blank picture is ~0)`);
      assert.ok(ms < 5000, `snapshot took ${ms.toFixed(0)} ms`);
      console.log(`snapshot ${width}x${height}: ${ms.toFixed(0)} ms, variance ${image.variance.toFixed(0)}`);
    }
  });

  it('live stream: SRTP arrives and decrypts, ffprobe reads the H.264 at the requested size, Opus on the audio port; END stops it and leaves no ffmpeg', async () => {
    const stream = await startLiveStream(hap, front.streamManagements[0]!, { width: 640, height: 360, fps: 30, maxBitrateKbps: 2000 });
    streams.push(stream);
    await stream.video.waitForPackets(1, 15_000);
    const firstPacketMs = stream.video.packets[0]!.at - stream.startedAt;
    console.log(`START → first SRTP packet: ${firstPacketMs.toFixed(0)} ms`);
    await stream.video.waitForPackets(250, 30_000);
    await stream.audio.waitForPackets(25, 30_000);
    assert.equal(stream.video.decryptErrors, 0);
    assert.ok(stream.video.packets.every((p) => p.payloadType === 99));
    const annexB = depacketizeH264(stream.video.packets);
    assert.ok(nalTypes(annexB).includes(5), 'an IDR frame');
    const probed = await probeH264(annexB);
    assert.equal(probed.video?.width, 640);
    assert.equal(probed.video?.height, 360);
    assert.ok(stream.audio.packets.every((p) => p.payloadType === 110));
    assert.ok(stream.video.rtcpPackets > 0, 'SRTCP sender reports arrive and decrypt');
    assert.ok(ffmpegDescendants(hb.pid!).length >= 1, 'an ffmpeg runs under Homebridge while streaming');

    await stream.end();
    const count = stream.video.packets.length;
    await noFfmpegLeft(hb);
    await sleep(800);
    assert.equal(stream.video.packets.length, count, 'no packets after END');
  });

  it('one camera session: a Home app stream and two Chromium viewers together', async () => {
    const stream = await startLiveStream(hap, front.streamManagements[1]!, { width: 640, height: 360 });
    streams.push(stream);
    let browser: ChromiumSession | undefined;
    try {
      await stream.video.waitForPackets(50, 20_000);
      browser = await launchChromium();
      // Sign in once through the form (access control is on): the context's cookie serves both tabs.
      const signIn = await browser.openPage(`http://127.0.0.1:${webPort}/login`);
      await signInWithForm(signIn, `http://127.0.0.1:${webPort}/`, VIEWER.username, VIEWER.password);
      await signIn.close();
      const pages: Page[] = [];
      for (let i = 0; i < 2; i++) {
        const page: Page = await browser.openPage(`http://127.0.0.1:${webPort}/#camera=front`);
        assert.equal(new URL(page.url()).pathname, '/', 'the browser is signed in');
        pages.push(page);
      }
      await Promise.all(pages.map((page) => waitForFramesDecoded(page, 25, 30_000)));
      // The page's tiles and the Home app share one snapshot mechanism (and its cache).
      const fromWeb = Buffer.from(await pages[0]!.evaluate(async () => {
        const response = await fetch('/api/cameras/front/snapshot.jpg?width=400&height=224', { credentials: 'same-origin' });
        if (!response.ok) throw new Error(`snapshot: HTTP ${response.status}`);
        return [...new Uint8Array(await response.arrayBuffer())];
      }));
      const fromHome = await hap.getImage(400, 224, front.aid);
      assert.deepEqual(fromHome, fromWeb, 'the same picture from the same cache');
      const tile = await checkImage(fromWeb);
      assert.deepEqual([tile.width, tile.height], [400, 224]);
      const counts: number[] = [];
      for (let i = 0; i < 8; i++) {
        counts.push(await camera.sessionCount());
        await sleep(250);
      }
      const before = stream.video.packets.length;
      await sleep(500);
      assert.ok(stream.video.packets.length > before, 'the Home app stream still flows');
      assert.deepEqual([...new Set(counts)], [1], `camera sessions while all three watched: ${counts.join(',')}`);
    } finally {
      await browser?.close();
      await stream.end();
    }
  });

  it('a camera without audio still streams video', async () => {
    const quietCamera = await hap.camera('Quiet');
    const stream = await startLiveStream(hap, quietCamera.streamManagements[0]!, { width: 640, height: 360 });
    streams.push(stream);
    await stream.video.waitForPackets(100, 20_000);
    const probed = await probeH264(depacketizeH264(stream.video.packets));
    assert.equal(probed.video?.width, 640);
    assert.equal(stream.audio.packets.length, 0);
    await stream.end();
  });

  it('a broken ffmpeg setting: the log quotes ffmpeg\'s reason (and the stream recovers)', async () => {
    const since = hb.lines.length;
    const stream = await startLiveStream(hap, front.streamManagements[2]!, { width: 320, height: 180, maxBitrateKbps: 300, profile: 0, level: 0 });
    streams.push(stream);
    const line = await hb.waitForLog(/ffmpeg said:/, 20_000, { since });
    assert.match(line, /\[Front\] Home app stream [0-9a-f]{8}: libx264 rejected its preset \(check ffmpeg\.encoderOptions\)\. ffmpeg said: ".*"/);
    assert.match(line, /"\[libx264\] Error setting preset\/tune warp-speed\/zerolatency\."/, 'ffmpeg\'s own words');
    assert.doesNotMatch(line, /exited with code/);
    await stream.video.waitForPackets(30, 20_000);
    const probed = await probeH264(depacketizeH264(stream.video.packets));
    assert.equal(probed.video?.width, 320);
    assert.equal(probed.video?.height, 180);
    // RECONFIGURE (a lower bitrate) restarts the encoder; the packets keep coming, numbered on.
    await hap.reconfigure(stream.service, stream.id, { width: 320, height: 180, maxBitrateKbps: 150 });
    await hb.waitForLog(/Home app stream [0-9a-f]{8}: reconfigured to 320x180@30 150 kbit\/s/, 10_000, { since });
    const before = stream.video.packets.length;
    await stream.video.waitForPackets(before + 30, 20_000);
    const packets = stream.video.packets;
    for (let i = 1; i < packets.length; i++) assert.equal(packets[i]!.sequenceNumber, (packets[i - 1]!.sequenceNumber + 1) & 0xffff);
    await stream.end();
    await noFfmpegLeft(hb);
  });

  it('ONVIF motion makes MotionDetected true, and false again after the reset', async () => {
    const ref = HapCameraClient.characteristic(front.motionSensor!, CHARACTERISTIC.motionDetected);
    // HAP sends booleans as true/false or 1/0; either way it is one bit.
    const motion = async (): Promise<boolean> => [true, 1].includes((await hap.read(ref)) as boolean | number);
    await waitForValue(motion, false, 10_000);
    await hb.waitForLog(/\[Front\] Motion sensor: following the camera's ONVIF motion events/, 15_000);
    // The subscription must exist before the event, or the responder has nobody to tell.
    const deadline = Date.now() + 15_000;
    while (onvif.activeSubscriptions() === 0 && Date.now() < deadline) await sleep(100);
    onvif.emitMotion(true);
    const onMs = await waitForValue(motion, true, 10_000);
    onvif.emitMotion(false);
    const offMs = await waitForValue(motion, false, 10_000);
    console.log(`motion: on after ${onMs.toFixed(0)} ms, off ${offMs.toFixed(0)} ms after the camera's "false" (reset 2 s)`);
    assert.ok(offMs >= 1500, `stays on for the reset time (${offMs.toFixed(0)} ms)`);
  });
});
