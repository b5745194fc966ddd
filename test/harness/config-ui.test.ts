/** The Homebridge UI helper itself: the UI sees the plugin, Homebridge runs it, stop() leaves nothing. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { launchChromium } from '../helpers/browser.js';
import { PLUGIN_NAME, startConfigUi } from '../helpers/config-ui.js';
import { PLUGIN_DIR } from '../helpers/homebridge.js';
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

  describe('with a plugin that has a custom settings page', () => {
    let close: (() => Promise<void>) | undefined;
    after(async () => close?.());

    it('openSchemaForm() passes the custom page and reaches the schema form', async () => {
      // Behind a custom UI the form needs an existing block (see openSchemaForm).
      const ui = await startConfigUi({
        pluginDir: join(PLUGIN_DIR, 'test/fixtures/custom-ui-plugin'),
        homebridge: false,
        platform: { platform: 'WebRTCCameras', name: 'Fixture' },
      });
      const browser = await launchChromium();
      close = async () => {
        await browser.close();
        await ui.stop();
      };
      const page = await browser.context.newPage();
      await ui.signIn(page);
      const settings = await ui.openPluginSettings(page);
      // The dialog shows the plugin's own page first, and no form.
      await settings.frameLocator('iframe').first().getByText('Fixture custom settings page.').waitFor();
      assert.equal(await settings.locator('form.json-schema-form').count(), 0);
      await settings.getByRole('button', { name: 'Close', exact: true }).first().click();
      await settings.waitFor({ state: 'detached' });

      const dialog = await ui.openSchemaForm(page);
      assert.equal(await dialog.getByLabel('Name', { exact: true }).inputValue(), 'Fixture');
    });
  });
});
