/**
 * What a user installs: `npm pack` must carry the build, the UI form, the README and the watch page,
 * and nothing of the tests. Reads npm's own file list, so it fails if `files` or the build drift.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { PLUGIN_DIR } from '../helpers/homebridge.js';

test('npm pack contains the build, config.schema.json, the README and the page, and no tests', () => {
  assert.ok(existsSync(`${PLUGIN_DIR}/dist/index.js`), 'build first (npm run build)');
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: PLUGIN_DIR, encoding: 'utf8' });
  const [report] = JSON.parse(out) as Array<{ files: Array<{ path: string }> }>;
  const files = report!.files.map((f) => f.path);
  for (const wanted of ['dist/index.js', 'dist/platform.js', 'config.schema.json', 'README.md', 'LICENSE', 'package.json', 'dist/web/page/index.html', 'dist/web/page/app.js',
    // The Homebridge UI page (config.schema.json customUiPath) and its server.
    'dist/homebridge-ui/server.js', 'dist/homebridge-ui/public/index.html', 'dist/homebridge-ui/public/app.js', 'dist/homebridge-ui/public/qr.js',
    // The native fan-out: the binaries users run (no compiler at install) and their source.
    'prebuilds/linux-x64/srtp-fanout.node', 'prebuilds/linux-arm64/srtp-fanout.node', 'prebuilds/linux-arm/srtp-fanout.node', 'native/srtp-fanout.c']) {
    assert.ok(files.includes(wanted), `${wanted} is in the package`);
  }
  const strays = files.filter((f) => /^(test|bench|src|scripts|\.ci)\//.test(f) || /\.test\.[jt]s$/.test(f));
  assert.deepEqual(strays, [], 'no tests, sources or scripts in the package');
});
