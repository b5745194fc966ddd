/** The Homebridge helper itself: failures must be fast and readable, and nothing may be left running. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { HomebridgeProcess, startHomebridge, stopAllHomebridges } from '../helpers/homebridge.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('e2e: Homebridge test helper', () => {
  after(stopAllHomebridges);

  it('starts on 127.0.0.1 with an ephemeral port, reports it, and stops cleanly', async () => {
    const hb = await startHomebridge({ platform: null });
    const pid = hb.pid!;
    assert.ok(hb.bridgePort > 0);
    assert.equal(hb.pin, '031-45-154');
    assert.ok(existsSync(`${hb.storagePath}/config.json`));
    await hb.waitForLog(/Initial networks \[lo\]|bind: \[ '127\.0\.0\.1'/);
    await hb.stop({ removeStorage: true });
    assert.equal(hb.running, false);
    assert.equal(alive(pid), false);
    assert.equal(existsSync(hb.storagePath), false);
  });

  it('fails fast with the log when Homebridge exits during start-up', async () => {
    const hb = new HomebridgeProcess({ platform: null, extraConfig: { bridge: { name: 'Broken', username: 'not-a-mac', pin: 'x', bind: ['127.0.0.1'] } } });
    const started = Date.now();
    await assert.rejects(hb.start(), (error: Error) => {
      assert.match(error.message, /Homebridge exited before logging/);
      assert.match(error.message, /--- Homebridge log/);
      return true;
    });
    assert.ok(Date.now() - started < 15_000);
    assert.equal(hb.running, false);
    await hb.stop({ removeStorage: true });
  });

  it('times out a wait with the recent log in the message', async () => {
    const hb = await startHomebridge({ platform: null });
    try {
      await assert.rejects(hb.waitForLog(/this line never comes/, 200), /did not log \/this line never comes\/ within 200 ms\.\n--- Homebridge log/);
    } finally {
      await hb.stop({ removeStorage: true });
    }
  });
});
