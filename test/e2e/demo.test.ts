/**
 * The README's first Quick-start command, for real: scripts/demo.sh in a fresh storage folder starts
 * Homebridge with no camera configured, the plugin serves its demo camera and prints the watch URL,
 * and Chromium opening that URL decodes moving video. The screenshot must not be blank.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium, waitForFramesDecoded, summarizeRtcStats, type ChromiumSession } from '../helpers/browser.js';
import { grayImageStats } from '../helpers/image.js';
import { getFreePorts } from '../helpers/ports.js';
import { spawnTracked, type TrackedProcess } from '../helpers/processes.js';
import { PLUGIN_DIR } from '../helpers/homebridge.js';

describe('e2e: the demo command', () => {
  let storage: string;
  let demo: TrackedProcess;
  let browser: ChromiumSession | undefined;
  let watchUrl: string;

  before(async () => {
    storage = await mkdtemp(join(tmpdir(), 'wrc-demo-'));
    const [webPort, bridgePort] = await getFreePorts(2);
    demo = spawnTracked('bash', [join(PLUGIN_DIR, 'scripts/demo.sh')], {
      cwd: PLUGIN_DIR,
      stdin: 'ignore',
      // CI=false: the set-up step must not `npm ci` under the running test suite.
      env: { ...process.env, CI: 'false', DEMO_STORAGE: storage, DEMO_WEB_PORT: String(webPort), DEMO_BRIDGE_PORT: String(bridgePort) },
    });
    const deadline = Date.now() + 120_000;
    for (;;) {
      const match = /Watch page: (\S+)/.exec(demo.stdoutText());
      if (match) {
        watchUrl = match[1]!;
        break;
      }
      if (demo.exitInfo()) throw new Error(`the demo exited early:\n${demo.stdoutText()}\n${demo.stderrText()}`);
      if (Date.now() > deadline) throw new Error(`no watch URL printed:\n${demo.stdoutText()}\n${demo.stderrText()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  after(async () => {
    await browser?.close();
    await demo?.kill();
    await rm(storage, { recursive: true, force: true });
  });

  it('prints a loopback watch URL, and Chromium decodes the demo camera there; the screenshot is not blank', async () => {
    assert.match(watchUrl, /^https?:\/\/127\.0\.0\.1:\d+\//, 'the demo binds to 127.0.0.1');
    browser = await launchChromium();
    const url = new URL(watchUrl);
    url.hash = 'camera=demo';
    const page = await browser.openPage(url.toString());
    const stats = await waitForFramesDecoded(page, 50, 30_000);
    const video = stats.flatMap((s) => s.inbound).find((r) => r.kind === 'video');
    assert.ok(video, `a video inbound-rtp report: ${summarizeRtcStats(stats)}`);
    assert.ok((video.framesDecoded ?? 0) >= 50, summarizeRtcStats(stats));
    assert.equal(video.frameWidth, 1280);
    assert.equal(video.frameHeight, 720);
    const png = await page.screenshot({ type: 'png' });
    const dir = join(PLUGIN_DIR, '.test-artifacts');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'demo.png'), png);
    const picture = await grayImageStats(png);
    assert.ok(picture.variance > 200, `the screenshot looks blank (gray variance ${picture.variance.toFixed(1)})`);
  });
});
