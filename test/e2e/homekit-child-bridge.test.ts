/**
 * The same HomeKit camera when the plugin runs in a Homebridge child bridge (its own process and
 * HAP server): pair with the child bridge, read the camera's stream configuration, take a snapshot,
 * stream, and after END find no ffmpeg anywhere under Homebridge (the child bridge's process included).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeCamera } from '../helpers/fake-camera.js';
import { platformConfig, randomBridgeUsername, startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../helpers/homebridge.js';
import { HapCameraClient, newSessionId } from '../homekit/hap-camera-client.js';
import { checkImage, ffmpegDescendants } from '../homekit/inspect.js';
import { depacketizeH264, probeH264, SrtpReceiver } from '../homekit/srtp-receiver.js';

const CHILD_NAME = 'WebRTC HomeKit Child';

describe('e2e: HomeKit camera in a child bridge', { timeout: 300_000 }, () => {
  let camera: FakeCamera;
  let hb: HomebridgeProcess;
  let hap: HapCameraClient | undefined;

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, audio: 'pcmu' });
    hb = await startHomebridge({
      platform: platformConfig({
        _bridge: { username: randomBridgeUsername(), port: 0, name: CHILD_NAME },
        cameras: [{ name: 'Porch', rtspUrl: camera.url, maxHomeKitStreams: 2 }],
      }),
      waitForBridges: [CHILD_NAME],
    });
    await hb.waitForLog(/\[Porch\] Home app camera ready/, 30_000);
  });

  after(async () => {
    await hap?.close().catch(() => undefined);
    await hb?.stop({ removeStorage: true });
    await stopAllHomebridges();
    await camera?.close();
  });

  it('pairs with the child bridge, snapshots, streams, and leaves no ffmpeg after END', async () => {
    const running = await hb.waitForLog(new RegExp(`\\(${CHILD_NAME}\\) is running on port (\\d+)`));
    const port = Number(/is running on port (\d+)/.exec(running)![1]);
    assert.notEqual(port, hb.bridgePort, 'the child bridge has its own HAP server');
    hap = await HapCameraClient.pair(port, hb.pin);
    const porch = await hap.camera('Porch');
    assert.equal(porch.streamManagements.length, 2, 'maxHomeKitStreams: 2');
    const resolutions = await hap.supportedResolutions(porch.streamManagements[0]!);
    assert.ok(resolutions.some((r) => r.width === 640 && r.height === 360));

    const image = await checkImage(await hap.getImage(480, 270, porch.aid));
    assert.deepEqual([image.width, image.height], [480, 270]);
    assert.ok(image.variance > 200);

    const video = await SrtpReceiver.open();
    const audio = await SrtpReceiver.open();
    try {
      const id = newSessionId();
      const service = porch.streamManagements[0]!;
      const answer = await hap.setupEndpoints(service, { id, videoPort: video.port, audioPort: audio.port, video: video.keys, audio: audio.keys });
      video.keepAlive({ address: answer.address, port: answer.videoPort });
      await hap.start(service, id, { width: 640, height: 360 });
      await video.waitForPackets(100, 20_000);
      const probed = await probeH264(depacketizeH264(video.packets));
      assert.equal(probed.video?.width, 640);
      assert.ok(ffmpegDescendants(hb.pid!).length >= 1, 'the stream\'s ffmpeg runs under the child bridge, under Homebridge');
      await hap.end(service, id);
      const deadline = Date.now() + 5000;
      while (ffmpegDescendants(hb.pid!).length > 0 && Date.now() < deadline) await sleep(100);
      assert.deepEqual(ffmpegDescendants(hb.pid!), []);
    } finally {
      video.close();
      audio.close();
    }
  });

  it('Homebridge shutdown leaves no ffmpeg behind, even with a stream running', async () => {
    const porch = await hap!.camera('Porch');
    const video = await SrtpReceiver.open();
    const audio = await SrtpReceiver.open();
    try {
      const id = newSessionId();
      const service = porch.streamManagements[1]!;
      const answer = await hap!.setupEndpoints(service, { id, videoPort: video.port, audioPort: audio.port, video: video.keys, audio: audio.keys });
      video.keepAlive({ address: answer.address, port: answer.videoPort });
      await hap!.start(service, id, { width: 640, height: 360 });
      await video.waitForPackets(20, 20_000);
      const pids = ffmpegDescendants(hb.pid!).map((p) => p.pid);
      assert.ok(pids.length >= 1);
      await hap!.close();
      hap = undefined;
      await hb.stop();
      // Every ffmpeg that ran is gone (not re-parented to init as an orphan).
      for (const pid of pids) {
        let alive = true;
        try {
          process.kill(pid, 0);
        } catch {
          alive = false;
        }
        assert.equal(alive, false, `ffmpeg ${pid} outlived Homebridge`);
      }
    } finally {
      video.close();
      audio.close();
    }
  });
});
