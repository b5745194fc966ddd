/**
 * PTZ against the loopback responder: capabilities discovery, the SOAP each command sends (read back
 * from the recorded requests), and the controller's rules (right, lease, rate limit, clamping, the
 * dead-man Stop). Timers are a manual clock, so nothing here sleeps.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import { connectOnvifDevice } from '../../src/onvif/device.js';
import { OnvifError } from '../../src/onvif/errors.js';
import {
  PtzController,
  PtzRefusedError,
  discoverPtz,
  scaleToRange,
  type PtzClock,
  type PtzRefusalReason,
  type PtzState,
  type PtzViewer,
} from '../../src/onvif/ptz.js';
import { attr, child, path, textAt } from '../../src/onvif/xml.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { startOnvifResponder, type OnvifResponder, type OnvifResponderOptions, type RecordedRequest } from '../helpers/onvif-responder.js';

const PASSWORD = 'ptz-pass';
const ADMIN: PtzViewer = { id: 'admin-1', ptz: true };
const OTHER: PtzViewer = { id: 'admin-2', ptz: true };
const WATCHER: PtzViewer = { id: 'guest', ptz: false };

const responders: OnvifResponder[] = [];
after(async () => {
  await Promise.all(responders.map((r) => r.close()));
});

/** A clock the test advances by hand; due callbacks run in order. */
class ManualClock implements PtzClock {
  private time = 1_000_000;
  private timers = new Map<number, { at: number; callback: () => void }>();
  private next = 1;
  now(): number {
    return this.time;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    this.time += ms;
    for (const [id, timer] of [...this.timers].sort((a, b) => a[1].at - b[1].at)) {
      if (timer.at > this.time) continue;
      this.timers.delete(id);
      timer.callback();
    }
  }
}

async function setup(options: OnvifResponderOptions = {}): Promise<{ r: OnvifResponder; controller: PtzController; clock: ManualClock; states: PtzState[] }> {
  const r = await startOnvifResponder({ password: PASSWORD, ...options });
  responders.push(r);
  const log = recordingLogger();
  const device = await connectOnvifDevice({ name: 'Dome', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log, timeoutMs: 2000 });
  const ptz = await discoverPtz(device);
  const clock = new ManualClock();
  const controller = new PtzController({ ptz, camera: 'Dome', log, clock, leaseMs: 5000, minIntervalMs: 250, deadManMs: 1000 });
  const states: PtzState[] = [];
  controller.on('state', (s) => states.push(s));
  return { r, controller, clock, states };
}

const ptzCalls = (r: OnvifResponder, command?: string): RecordedRequest[] =>
  r.requests.filter((q) => q.service === 'ptz' && (command === undefined || q.command === command) && !['GetNodes', 'GetConfigurationOptions'].includes(q.command));

function velocity(q: RecordedRequest | undefined): { x?: string; y?: string; zoom?: string } {
  const v = child(q?.element, 'Velocity') ?? child(q?.element, 'Translation');
  return { x: attr(child(v, 'PanTilt'), 'x'), y: attr(child(v, 'PanTilt'), 'y'), zoom: attr(child(v, 'Zoom'), 'x') };
}

async function refused(promise: Promise<unknown>, reason: PtzRefusalReason): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof PtzRefusedError && error.reason === reason && error.message.length > 5);
}

describe('PTZ capabilities', () => {
  it('reads the PTZ service, profile, node ranges and home support from the camera', async () => {
    const { r } = await setup({ ptz: { maxVelocity: 0.5 } });
    const device = await connectOnvifDevice({ name: 'Dome', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log: recordingLogger() });
    const caps = (await discoverPtz(device)).capabilities;
    assert.equal(caps.serviceUrl, `http://127.0.0.1:${r.port}/onvif/services`);
    assert.equal(caps.profileToken, 'main');
    assert.equal(caps.nodeToken, 'default');
    assert.deepEqual(caps.continuous, { panTilt: { x: { min: -0.5, max: 0.5 }, y: { min: -0.5, max: 0.5 } }, zoom: { min: -0.5, max: 0.5 } });
    assert.deepEqual(caps.relative, { panTilt: { x: { min: -1, max: 1 }, y: { min: -1, max: 1 } }, zoom: { min: -1, max: 1 } });
    assert.equal(caps.home, true);
    assert.ok(r.requests.some((q) => q.command === 'GetConfigurationOptions' && textAt(q.element, 'ConfigurationToken') === 'default'));
  });

  it('a Media2-only camera: the profile carrying the PTZ configuration is used, and its options are asked for', async () => {
    const r = await startOnvifResponder({
      password: PASSWORD,
      profiles: 'media2-only',
      serviceOverrides: { 'media2.GetProfiles': { kind: 'fixture', file: 'quirks/media2.GetProfiles.ptz.xml' } },
    });
    responders.push(r);
    const device = await connectOnvifDevice({ name: 'Dome 2', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log: recordingLogger() });
    const ptz = await discoverPtz(device);
    assert.equal(ptz.capabilities.profileToken, 'Profile_PTZ');
    const asked = r.requests.find((q) => q.service === 'media2' && q.command === 'GetProfiles');
    assert.equal(textAt(asked?.element, 'Type'), 'PTZ');
    assert.ok(r.requests.some((q) => q.command === 'GetConfigurationOptions' && textAt(q.element, 'ConfigurationToken') === 'PTZConf_7'));
    await ptz.gotoHome();
    assert.equal(textAt(r.requests.find((q) => q.command === 'GotoHomePosition')?.element, 'ProfileToken'), 'Profile_PTZ');
  });

  it('a camera without PTZ: a clear "this camera has no PTZ", and no PTZ call is sent', async () => {
    const r = await startOnvifResponder({ password: PASSWORD, ptz: false });
    responders.push(r);
    const device = await connectOnvifDevice({ name: 'Fixed', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log: recordingLogger() });
    assert.equal(device.services.ptz, undefined);
    await assert.rejects(discoverPtz(device), (error: unknown) => {
      assert.ok(error instanceof OnvifError);
      assert.equal(error.code, 'NO_PTZ');
      assert.equal(error.retryable, false);
      assert.match(error.message, /^ONVIF camera "Fixed": PTZ failed: this camera has no PTZ/);
      return true;
    });
    assert.equal(r.requests.filter((q) => q.service === 'ptz').length, 0);
  });

  it('a PTZ service that refuses GetNodes as not supported is "no PTZ" too', async () => {
    const r = await startOnvifResponder({ password: PASSWORD, serviceOverrides: { 'ptz.GetNodes': { kind: 'fixture', file: 'quirks/fault.PTZNotSupported.xml', status: 500 } } });
    responders.push(r);
    const device = await connectOnvifDevice({ name: 'Fake dome', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log: recordingLogger() });
    await assert.rejects(discoverPtz(device), (error: unknown) => error instanceof OnvifError && error.code === 'NO_PTZ' && /PTZNotSupported/.test(error.message));
  });

  it('scales a viewer\'s [-1, 1] onto the camera range and clamps it', () => {
    const range = { min: -0.5, max: 0.5 };
    assert.equal(scaleToRange(1, range), 0.5);
    assert.equal(scaleToRange(-1, range), -0.5);
    assert.equal(scaleToRange(7, range), 0.5);
    assert.equal(scaleToRange(0.5, range), 0.25);
    assert.equal(scaleToRange(Number.NaN, range), 0);
    assert.equal(scaleToRange(-1, { min: 0, max: 1 }), 0, 'a range without negatives never goes below its minimum');
  });
});

describe('PTZ moves', () => {
  it('a move sends ContinuousMove with the direction asked, and stop sends Stop', async () => {
    const { r, controller } = await setup();
    await controller.move(ADMIN, { pan: -1, tilt: 0.25, zoom: 0 });
    const [move] = ptzCalls(r, 'ContinuousMove');
    assert.equal(textAt(move?.element, 'ProfileToken'), 'main');
    assert.deepEqual(velocity(move), { x: '-1', y: '0.25', zoom: undefined });
    assert.equal(textAt(move?.element, 'Timeout'), 'PT2S');
    assert.equal(controller.state.moving, true);
    await controller.stop(ADMIN);
    const calls = ptzCalls(r);
    assert.deepEqual(calls.map((q) => q.command), ['ContinuousMove', 'Stop']);
    assert.equal(textAt(calls[1]?.element, 'PanTilt'), 'true');
    assert.equal(textAt(calls[1]?.element, 'Zoom'), 'true');
    assert.equal(controller.state.moving, false);
  });

  it('velocities are clamped to the node\'s ranges', async () => {
    const { r, controller, clock } = await setup({ ptz: { maxVelocity: 0.5 } });
    await controller.move(ADMIN, { pan: 1, tilt: -3, zoom: 0 });
    clock.advance(300);
    await controller.move(ADMIN, { pan: 0, tilt: 0, zoom: -1 });
    const moves = ptzCalls(r, 'ContinuousMove');
    assert.deepEqual(velocity(moves[0]), { x: '0.5', y: '-0.5', zoom: undefined });
    assert.deepEqual(velocity(moves[1]), { x: undefined, y: undefined, zoom: '-0.5' });
    await refused(controller.move(ADMIN, { pan: Number.NaN, tilt: 0, zoom: 0 }), 'invalid');
    await controller.stop(ADMIN);
  });

  it('a Stop is sent when the keep-alives stop (the client vanished), and at once when the viewer leaves', async () => {
    const { r, controller, clock } = await setup();
    await controller.move(ADMIN, { pan: 1, tilt: 0, zoom: 0 });
    // Keep-alives (the same move repeated) keep it going without another request or the rate limit.
    for (let i = 0; i < 3; i++) {
      clock.advance(600);
      await controller.move(ADMIN, { pan: 1, tilt: 0, zoom: 0 });
    }
    assert.equal(ptzCalls(r, 'ContinuousMove').length, 1);
    assert.equal(ptzCalls(r, 'Stop').length, 0, 'no stop while keep-alives arrive');
    clock.advance(999);
    await controller.idle();
    assert.equal(ptzCalls(r, 'Stop').length, 0, 'not before the dead-man delay');
    clock.advance(1);
    await controller.idle();
    assert.deepEqual(ptzCalls(r).map((q) => q.command), ['ContinuousMove', 'Stop']);
    assert.equal(controller.state.moving, false);
    assert.equal(clock.pending(), 0);

    clock.advance(300);
    await controller.move(ADMIN, { pan: 0, tilt: 1, zoom: 0 });
    await controller.release(ADMIN.id);
    assert.deepEqual(ptzCalls(r).map((q) => q.command), ['ContinuousMove', 'Stop', 'ContinuousMove', 'Stop']);
    assert.equal(controller.state.mover, undefined, 'control is free for the next viewer');
    assert.equal(clock.pending(), 0, 'no dead-man timer left behind');
  });

  it('the Stop is sent even when the move itself failed (the camera may have started)', async () => {
    const { r, controller, clock } = await setup({ serviceOverrides: { 'ptz.ContinuousMove': { kind: 'close' } } });
    await assert.rejects(controller.move(ADMIN, { pan: 1, tilt: 0, zoom: 0 }), OnvifError);
    clock.advance(1000);
    await controller.idle();
    assert.deepEqual(ptzCalls(r).map((q) => q.command), ['ContinuousMove', 'Stop']);
  });

  it('rate limit: a new move within the interval is refused without reaching the camera', async () => {
    const { r, controller, clock } = await setup();
    await controller.move(ADMIN, { pan: 1, tilt: 0, zoom: 0 });
    clock.advance(100);
    await refused(controller.move(ADMIN, { pan: -1, tilt: 0, zoom: 0 }), 'rate-limited');
    await refused(controller.gotoHome(ADMIN), 'rate-limited');
    assert.equal(ptzCalls(r, 'ContinuousMove').length, 1);
    await controller.stop(ADMIN); // a stop that ends a move is never rate-limited
    await refused(controller.stop(ADMIN), 'rate-limited'); // a stop with nothing moving is
    clock.advance(150);
    await controller.move(ADMIN, { pan: -1, tilt: 0, zoom: 0 });
    assert.deepEqual(ptzCalls(r).map((q) => q.command), ['ContinuousMove', 'Stop', 'ContinuousMove']);
    await controller.stop(ADMIN);
  });

  it('one mover at a time: others are refused until the lease expires, and see who moves', async () => {
    const { r, controller, clock, states } = await setup();
    await controller.move(ADMIN, { pan: 1, tilt: 0, zoom: 0 });
    assert.deepEqual(states.at(-1), { mover: ADMIN.id, moving: true, last: 'move' });
    clock.advance(300);
    await refused(controller.move(OTHER, { pan: -1, tilt: 0, zoom: 0 }), 'busy');
    await refused(controller.stop(OTHER), 'busy');
    await controller.stop(ADMIN);
    assert.deepEqual(states.at(-1), { mover: ADMIN.id, moving: false, last: 'stop' });
    clock.advance(4000);
    await refused(controller.move(OTHER, { pan: -1, tilt: 0, zoom: 0 }), 'busy');
    clock.advance(1001);
    assert.equal(controller.state.mover, undefined, 'the lease expired');
    await controller.move(OTHER, { pan: -1, tilt: 0, zoom: 0 });
    assert.equal(controller.state.mover, OTHER.id);
    await controller.stop(OTHER);
    assert.deepEqual(velocity(ptzCalls(r, 'ContinuousMove')[1]), { x: '-1', y: '0', zoom: undefined });
  });

  it('a viewer without the ptz right is refused and nothing reaches the camera', async () => {
    const { r, controller } = await setup();
    await refused(controller.move(WATCHER, { pan: 1, tilt: 0, zoom: 0 }), 'forbidden');
    await refused(controller.gotoPreset(WATCHER, 'P001'), 'forbidden');
    await refused(controller.gotoHome(WATCHER), 'forbidden');
    assert.equal(ptzCalls(r).length, 0);
  });

  it('presets: GetPresets lists them, GotoPreset sends the token, an unknown token is refused', async () => {
    const { r, controller, clock } = await setup();
    const presets = await controller.listPresets();
    assert.deepEqual(presets.slice(0, 3), [
      { token: 'P001', name: 'P001' },
      { token: 'P002', name: 'P002' },
      { token: 'P003', name: 'P003' },
    ]);
    assert.ok(presets.some((p) => p.token === 'Home2' && p.name === 'Home'));
    await controller.gotoPreset(ADMIN, 'P003');
    const [goto] = ptzCalls(r, 'GotoPreset');
    assert.equal(textAt(goto?.element, 'PresetToken'), 'P003');
    assert.equal(textAt(goto?.element, 'ProfileToken'), 'main');
    clock.advance(300);
    await refused(controller.gotoPreset(ADMIN, 'http://evil/x'), 'invalid');
    assert.equal(ptzCalls(r, 'GotoPreset').length, 1);
    await controller.gotoHome(ADMIN);
    assert.equal(ptzCalls(r, 'GotoHomePosition').length, 1);
    assert.equal(textAt(ptzCalls(r, 'GotoHomePosition')[0]?.element, 'ProfileToken'), 'main');
  });

  it('a camera that lists velocities but refuses ContinuousMove is moved with RelativeMove steps instead', async () => {
    const { r, controller, clock } = await setup({ serviceOverrides: { 'ptz.ContinuousMove': { kind: 'fixture', file: 'quirks/fault.ActionNotSupported.xml', status: 500 } } });
    await controller.move(ADMIN, { pan: 1, tilt: 0, zoom: 0 });
    assert.equal(controller.state.moving, false);
    assert.equal(clock.pending(), 0, 'no dead-man timer for a move that never started');
    clock.advance(300);
    await controller.move(ADMIN, { pan: 0, tilt: -1, zoom: 0 });
    const calls = ptzCalls(r);
    assert.deepEqual(calls.map((q) => q.command), ['ContinuousMove', 'Stop', 'RelativeMove', 'RelativeMove']);
    assert.deepEqual(velocity(calls[2]), { x: '0.1', y: '0', zoom: undefined });
    assert.deepEqual(velocity(calls[3]), { x: '0', y: '-0.1', zoom: undefined });
  });

  it('a camera without continuous moves gets one RelativeMove step per move, and no Stop is needed', async () => {
    const { r, controller, clock } = await setup({ ptz: { continuous: false } });
    await controller.move(ADMIN, { pan: 1, tilt: -1, zoom: 0 });
    clock.advance(300);
    await controller.move(ADMIN, { pan: 0, tilt: 0, zoom: 1 });
    const calls = ptzCalls(r);
    assert.deepEqual(calls.map((q) => q.command), ['RelativeMove', 'RelativeMove']);
    assert.deepEqual(velocity(calls[0]), { x: '0.1', y: '-0.1', zoom: undefined });
    assert.deepEqual(velocity(calls[1]), { x: undefined, y: undefined, zoom: '0.1' });
    assert.ok(path(calls[0]?.element, 'Translation'));
    assert.equal(clock.pending(), 0, 'no dead-man timer for relative steps');
  });
});
