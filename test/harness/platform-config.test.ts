// platformConfig (helpers/homebridge.ts): the block the e2e files start Homebridge with. Checked here
// because those files only run where Homebridge can start; this needs nothing but the builder.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load-config.js';
import { platformConfig } from '../helpers/homebridge.js';

describe('platformConfig', () => {
  it('fills in the platform, its name, the web page on loopback and a free re-stream port', () => {
    assert.deepEqual(platformConfig(), { platform: 'WebRTCCameras', name: 'WebRTC Cameras', restream: { port: 0 }, web: { port: 0, bind: '127.0.0.1' } });
  });

  it('adds the test\'s settings; web fields join the loopback bind, other sections replace the defaults', () => {
    const cameras = [{ name: 'Door', rtspUrl: 'rtsp://127.0.0.1:8554/door' }];
    const block = platformConfig({ cameras, web: { port: 9000, trustedProxies: ['127.0.0.1'] }, restream: { port: 8555 }, viewers: [] });
    assert.deepEqual(block, {
      platform: 'WebRTCCameras', name: 'WebRTC Cameras', cameras, viewers: [],
      restream: { port: 8555 },
      web: { port: 9000, bind: '127.0.0.1', trustedProxies: ['127.0.0.1'] },
    });
    const { config, messages } = loadConfig(block);
    assert.deepEqual(messages, []);
    assert.equal(config.web.bind, '127.0.0.1');
    assert.equal(config.cameras[0]?.name, 'Door');
  });
});
