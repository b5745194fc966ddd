/** The Homebridge UI helper itself: the UI sees the plugin, Homebridge runs it, stop() leaves nothing. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PLUGIN_NAME, startConfigUi } from '../helpers/config-ui.js';
import { isPortOpen } from '../helpers/ports.js';

interface InstalledPlugin {
  name: string;
  settingsSchema: boolean;
  installedVersion: string | null;
}

describe('e2e: Homebridge UI helper', () => {
  it('runs homebridge-config-ui-x and Homebridge on loopback with the plugin visible, and cleans up', async () => {
    const ui = await startConfigUi({ platform: { platform: 'WebRTCCameras', name: 'WebRTC Cameras' } });
    try {
      assert.match(ui.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(ui.version, '5.28.0');
      // The admin made by the set-up signs in; the set-up endpoints are closed afterwards.
      assert.match(await ui.token(), /^ey/);
      await assert.rejects(ui.createAdminWithApi(), /HTTP 403/);

      const plugins = await ui.api<InstalledPlugin[]>('GET', '/api/plugins');
      const mine = plugins.find((p) => p.name === PLUGIN_NAME);
      assert.ok(mine, `the UI lists ${plugins.map((p) => p.name).join(', ')}`);
      assert.equal(mine.settingsSchema, true);
      const ownVersion = (JSON.parse(readFileSync(join(ui.pluginPath, PLUGIN_NAME, 'package.json'), 'utf8')) as { version: string }).version;
      assert.equal(mine.installedVersion, ownVersion);

      // The UI reads the plugin's block from the config.json that Homebridge runs with.
      assert.deepEqual(await ui.api('GET', `/api/config-editor/plugin/${PLUGIN_NAME}`), [{ platform: 'WebRTCCameras', name: 'WebRTC Cameras' }]);
      assert.ok(ui.homebridge?.running);
      await ui.homebridge.waitForLog(/Loaded plugin: homebridge-webrtc-cameras/);
      assert.equal(await isPortOpen(ui.homebridge.bridgePort), true);
    } finally {
      await ui.stop();
    }
    assert.equal(await isPortOpen(ui.port), false);
    assert.equal(ui.homebridge?.running, false);
    assert.equal(existsSync(ui.root), false);
  });
});
