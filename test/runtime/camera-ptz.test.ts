/**
 * The runtime's CameraPtz: discovery once ONVIF answers, no controls (and one debug line) for a
 * camera without PTZ, one warning then quiet retries while ONVIF is unreachable, and refusals of the
 * controller turned into outcomes the web layer maps to statuses.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { connectOnvifDevice, type ConnectedOnvifDevice } from '../../src/onvif/device.js';
import { CameraPtz } from '../../src/runtime/camera-ptz.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';

const PASSWORD = 'camera-ptz-pass';
const responders: OnvifResponder[] = [];
after(async () => {
  await Promise.all(responders.map((r) => r.close()));
});

async function device(ptz?: false): Promise<{ r: OnvifResponder; connect: () => Promise<ConnectedOnvifDevice> }> {
  const r = await startOnvifResponder({ password: PASSWORD, ...(ptz === false ? { ptz: false } : {}) });
  responders.push(r);
  const connected = connectOnvifDevice({ name: 'Cam', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log: recordingLogger() });
  return { r, connect: () => connected };
}

describe('CameraPtz', () => {
  it('a PTZ camera: a control with its presets and home; refusals come back as outcomes', async () => {
    const { connect } = await device();
    const log = recordingLogger();
    const ptz = new CameraPtz({ camera: 'Cam', connect, log, controller: { minIntervalMs: 0 } });
    assert.equal(ptz.control(), undefined, 'nothing before discovery');
    ptz.start();
    await ptz.settled();
    const control = ptz.control();
    assert.ok(control);
    const view = control.view('a');
    assert.equal(view.home, true);
    assert.equal(view.zoom, true);
    assert.ok(view.presets.length > 10);
    assert.ok(log.lines.some((l) => /PTZ: continuous moves, home; presets: "P001"/.test(l)), log.lines.join('\n'));
    assert.deepEqual(await control.command({ id: 'a', ptz: true }, { kind: 'move', pan: 0.2, tilt: 0, zoom: 0 }), { ok: true });
    assert.equal(control.view('b').mover, 'other');
    const busy = await control.command({ id: 'b', ptz: true }, { kind: 'stop' });
    assert.equal(busy.ok, false);
    assert.equal(!busy.ok && busy.reason, 'busy');
    const forbidden = await control.command({ id: 'a', ptz: false }, { kind: 'home' });
    assert.equal(!forbidden.ok && forbidden.reason, 'forbidden');
    const unlisted = await control.command({ id: 'a', ptz: true }, { kind: 'preset', token: 'nope' });
    assert.equal(!unlisted.ok && unlisted.reason, 'invalid');
    await ptz.stop();
  });

  it('a camera without PTZ: no control, one debug line, no warning', async () => {
    const { r, connect } = await device(false);
    const log = recordingLogger();
    const ptz = new CameraPtz({ camera: 'Cam', connect, log });
    ptz.start();
    await ptz.settled();
    assert.equal(ptz.control(), undefined);
    assert.equal(log.lines.filter((l) => /PTZ/.test(l)).length, 1, log.lines.join('\n'));
    assert.ok(!log.lines.some((l) => /^warn/i.test(l)));
    assert.equal(r.requests.filter((q) => q.service === 'ptz').length, 0);
    await ptz.stop();
  });

  it('ONVIF unreachable: one warning, then quiet retries until it answers', async () => {
    const { connect } = await device();
    const log = recordingLogger();
    let attempts = 0;
    const ptz = new CameraPtz({
      camera: 'Cam',
      connect: () => (++attempts < 4 ? Promise.reject(new Error('connect ECONNREFUSED')) : connect()),
      log,
      retryMs: 5,
      maxRetryMs: 10,
    });
    ptz.start();
    await ptz.settled();
    assert.equal(attempts, 4);
    assert.ok(ptz.control());
    const warnings = log.lines.filter((l) => /PTZ is not available yet/.test(l));
    assert.equal(warnings.length, 3);
    assert.equal(warnings.filter((l) => /^warn/i.test(l)).length, 1, warnings.join('\n'));
    await ptz.stop();
  });

  it('stop() while a failing connect is pending: returns at once, no warning, no backoff wait', async () => {
    const log = recordingLogger();
    let fail: (error: Error) => void = () => undefined;
    const ptz = new CameraPtz({
      camera: 'Cam',
      connect: () => new Promise<ConnectedOnvifDevice>((_resolve, reject) => { fail = reject; }),
      log,
      retryMs: 60_000,
    });
    ptz.start();
    const stopped = ptz.stop();
    fail(new Error('socket closed at shutdown'));
    assert.equal(await withinMs(stopped, 1000), 'done');
    assert.equal(await withinMs(ptz.settled(), 1000), 'done', 'the run ends without waiting out the 60 s backoff');
    assert.ok(!log.lines.some((l) => /^warn/i.test(l)), log.lines.join('\n'));
    assert.equal(ptz.control(), undefined);
  });

  it('stop() does not wait for an ONVIF call that never answers', async () => {
    const ptz = new CameraPtz({ camera: 'Cam', connect: () => new Promise<ConnectedOnvifDevice>(() => undefined), log: recordingLogger() });
    ptz.start();
    assert.equal(await withinMs(ptz.stop(), 1000), 'done');
  });
});

/** 'done' when the promise settles within `ms`, else 'timeout' (the timer does not hold the process). */
async function withinMs(promise: Promise<unknown>, ms: number): Promise<'done' | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise.then(() => 'done' as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
