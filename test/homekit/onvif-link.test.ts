// OnvifLink's connection loop on mock timers: retries with a doubling, capped delay, one loud
// warning then quiet ones, the device handed over once, and a stop that ends the wait at once.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { OnvifLink } from '../../src/homekit/onvif-link.js';
import type { ConnectedOnvifDevice } from '../../src/onvif/device.js';

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

function recording() {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } };
}

describe('OnvifLink', () => {
  it('retries an unreachable camera after 1, 2, 3, 3 s (doubling, capped), warning once, then hands the device over', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const device = { name: 'Porch' } as unknown as ConnectedOnvifDevice;
    let calls = 0;
    const devices: ConnectedOnvifDevice[] = [];
    const { lines, log } = recording();
    const link = new OnvifLink({
      connect: async () => {
        calls++;
        if (calls < 5) throw new Error('connect ECONNREFUSED');
        return device;
      },
      log,
      motion: false,
      motionResetSeconds: 10,
      onDevice: (d) => devices.push(d),
      retryMs: 1000,
      maxRetryMs: 3000,
    });
    link.start();
    link.start(); // once
    await flush();
    assert.equal(calls, 1);
    for (const [delay, callsAfter] of [[1000, 2], [2000, 3], [3000, 4], [3000, 5]] as const) {
      t.mock.timers.tick(delay - 1);
      await flush();
      assert.equal(calls, callsAfter - 1, `not before ${delay} ms`);
      t.mock.timers.tick(1);
      await flush();
      assert.equal(calls, callsAfter, `after ${delay} ms`);
    }
    assert.deepEqual(devices, [device]);
    assert.equal(link.motionDetected, false, 'no motion sensor without the motion setting');
    assert.equal(lines.filter((l) => l.startsWith('warn')).length, 1);
    assert.match(lines[0]!, /^warn ONVIF is not reachable \(connect ECONNREFUSED\); accessory details wait, retrying in 1 s$/);
    assert.deepEqual(lines.slice(1).map((l) => /retrying in (\d+) s/.exec(l)?.[1]), ['2', '3', '3']);
    assert.ok(lines.slice(1).every((l) => l.startsWith('debug')));
    await link.stop();
  });

  it('stop ends the wait for the next attempt at once, and no attempt follows', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let calls = 0;
    const { lines, log } = recording();
    const link = new OnvifLink({
      connect: async () => {
        calls++;
        throw new Error('timeout');
      },
      log,
      motion: true,
      motionResetSeconds: 10,
    });
    link.start();
    await flush();
    assert.match(lines[0]!, /the motion sensor waits, retrying in 5 s/);
    await link.stop();
    t.mock.timers.tick(600_000);
    await flush();
    assert.equal(calls, 1);
  });

  it('a device that connects after stop was asked for is not used', async () => {
    let release: (device: ConnectedOnvifDevice) => void = () => undefined;
    const used: unknown[] = [];
    const link = new OnvifLink({
      connect: () => new Promise((resolve) => (release = resolve)),
      log: recording().log,
      motion: true,
      motionResetSeconds: 10,
      onDevice: (d) => used.push(d),
    });
    link.start();
    const stopping = link.stop();
    release({} as ConnectedOnvifDevice);
    await stopping;
    assert.deepEqual(used, []);
  });
});
