// Issue 12, item 9: what the demo says about itself must be true. Its WebRTC sockets listen on
// loopback only and offer no LAN address (a real WHEP answer from the demo's ICE settings), and
// its HomeKit setup code is random per storage folder, never a published one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load-config.js';
import { iceSettingsFrom } from '../../src/runtime/plugin-services.js';
import { silentLogger } from '../../src/util/logger.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { createWhepHandler } from '../../src/webrtc/whep.js';
import type { CallerContext } from '../../src/web/types.js';
import { PLUGIN_DIR } from '../helpers/homebridge.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { EVERYONE, registryOf } from '../webrtc/harness.js';
import { WeriftReceiver } from '../webrtc/werift-client.js';

const run = promisify(execFile);
after(cleanupAll);

describe('the demo binds where the README says', () => {
  it('its ICE sockets are on 127.0.0.1: a WHEP answer offers loopback candidates only', async () => {
    const { config } = loadConfig({ platform: 'WebRTCCameras', web: { port: 8090, bind: '127.0.0.1' }, cameras: [] });
    const ice = iceSettingsFrom(config);
    assert.deepEqual(ice.interfaceAddresses, { udp4: '127.0.0.1' });
    assert.equal(ice.useIpv6, false);
    const source = await SyntheticSource.create({ id: 'demo', gop: 25, seconds: 2 });
    const whep = createWhepHandler({ registry: registryOf([source]), limits: new ViewerLimiter(), ice });
    const receiver = new WeriftReceiver();
    try {
      const caller: CallerContext = { principal: EVERYONE, remoteAddress: '127.0.0.1', request: new IncomingMessage(new Socket()), log: silentLogger };
      const answer = await whep.handlePost('demo', await receiver.offer(), caller);
      assert.equal(answer.status, 201, String(answer.body));
      const candidates = String(answer.body).split(/\r?\n/).filter((l) => l.startsWith('a=candidate:'));
      assert.ok(candidates.length > 0, 'the answer carries candidates');
      for (const line of candidates) assert.equal(line.split(' ')[4], '127.0.0.1', line);
      // A LAN-bound web server still gathers on every interface (unchanged).
      const lan = iceSettingsFrom(loadConfig({ platform: 'WebRTCCameras', web: { bind: '0.0.0.0' }, cameras: [] }).config);
      assert.equal(lan.interfaceAddresses, undefined);
    } finally {
      await receiver.close();
      await whep.closeAll();
      source.close();
    }
  });

  it('writes a random HomeKit setup code per storage folder, keeps it, and the file is private', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wrc-demo-config-'));
    try {
      const script = join(PLUGIN_DIR, 'scripts', 'demo-config.sh');
      const pins: string[] = [];
      for (const name of ['a', 'b', 'c']) {
        await run('bash', [script, join(dir, name), '8090', '51826']);
        const config = JSON.parse(await readFile(join(dir, name, 'config.json'), 'utf8')) as { bridge: { pin: string; username: string; bind: string[] } };
        assert.match(config.bridge.pin, /^\d{3}-\d{2}-\d{3}$/);
        assert.notEqual(config.bridge.pin, '031-45-154', 'not the code this README once published');
        assert.match(config.bridge.username, /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/);
        assert.deepEqual(config.bridge.bind, ['127.0.0.1']);
        pins.push(config.bridge.pin);
      }
      assert.equal(new Set(pins).size, 3, `three folders, three codes: ${pins.join(', ')}`);
      const before = await readFile(join(dir, 'a', 'config.json'), 'utf8');
      await run('bash', [script, join(dir, 'a'), '8090', '51826']);
      assert.equal(await readFile(join(dir, 'a', 'config.json'), 'utf8'), before, 'an existing config is kept');
      assert.equal((await stat(join(dir, 'a', 'config.json'))).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
