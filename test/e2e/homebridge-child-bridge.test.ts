/**
 * The plugin in a Homebridge child bridge (`_bridge` in its platform block): Homebridge forks a
 * separate process for it, which inherits the main bridge's 127.0.0.1 binding. Its accessories are
 * cached in `cachedAccessories.<CHILD MAC>`, and its log lines reach the parent's output.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { randomBridgeUsername, startHomebridge, stopAllHomebridges, type PlatformBlock } from '../helpers/homebridge.js';

const SECRET = 'Child-Secret-7';
const CHILD_NAME = 'WebRTC Child Bridge';

function block(username: string, cameras: unknown[]): PlatformBlock {
  return {
    platform: 'WebRTCCameras',
    name: 'WebRTC Cameras',
    _bridge: { username, port: 0, name: CHILD_NAME },
    cameras,
  };
}

describe('e2e: Homebridge child bridge', () => {
  after(stopAllHomebridges);

  it('loads the plugin in a child bridge, registers its cameras there, and removes one on restart', async () => {
    const child = randomBridgeUsername();
    const cameras = [
      { name: 'Drive', rtspUrl: `rtsp://admin:${SECRET}@127.0.0.1:1/live1.sdp` },
      { name: 'Yard', rtspUrl: 'rtsp://127.0.0.1:1/live2.sdp' },
    ];
    const hb = await startHomebridge({ platform: block(child, cameras), waitForBridges: [CHILD_NAME] });
    try {
      await hb.waitForLog(/Child bridge started successfully/);
      await hb.waitForLog(/Camera 'Yard' \(cameras\[1\]\): adding accessory/);
      await hb.waitForLog(/Using ffmpeg|ffmpeg was not found/, 15_000);
      assert.deepEqual(hb.cachedAccessories(child).map((a) => a.displayName).sort(), ['Drive', 'Yard']);
      assert.deepEqual(hb.cachedAccessories(), [], 'the main bridge must not hold the child bridge\'s accessories');

      await hb.restart(block(child, cameras.slice(0, 1)));
      await hb.waitForLog(new RegExp(`\\(${CHILD_NAME}\\) is running on port \\d+`), 15_000);
      await hb.waitForLog(/Removing the accessory 'Yard'/);
      await hb.waitForLog(/Camera 'Drive' \(cameras\[0\]\): restored accessory/);
      assert.deepEqual(hb.cachedAccessories(child).map((a) => a.displayName), ['Drive']);

      for (const line of hb.lines) assert.ok(!line.includes(SECRET), `a password reached the log: ${line}`);
    } finally {
      await hb.stop({ removeStorage: true });
    }
  });
});
