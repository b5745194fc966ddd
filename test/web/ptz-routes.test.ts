/**
 * PTZ from the web API against the loopback ONVIF responder, through the project's real web server
 * and the runtime's CameraPtz: what a drag sends (ContinuousMove with the drag's direction, then Stop),
 * a preset (GotoPreset with its token), home, and every refusal (no right: 403 and no SOAP call at
 * all; another mover: 409; too fast: 429; a foreign origin: 403; anything but the allowed keys: 400).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { attr, child, textAt } from '../../src/onvif/xml.js';
import { parseMove, parsePreset } from '../../src/web/ptz-routes.js';
import { ptzViewerId, type PtzView } from '../../src/web/ptz-types.js';
import { HOMEKIT_VIEWER } from '../../src/runtime/camera-ptz.js';
import { HttpError } from '../../src/web/http-util.js';
import { PTZ_CAMERA_ID, startPtzRig, type PtzRig } from '../helpers/ptz-rig.js';
import type { RecordedRequest } from '../helpers/onvif-responder.js';

function velocity(q: RecordedRequest | undefined): { x: number; y: number } {
  const v = child(child(q?.element, 'Velocity'), 'PanTilt');
  return { x: Number(attr(v, 'x')), y: Number(attr(v, 'y')) };
}

async function call(rig: PtzRig, user: string, action: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: unknown; headers: Headers }> {
  const response = await fetch(new URL(`api/cameras/${PTZ_CAMERA_ID}/ptz${action ? `/${action}` : ''}`, rig.base), {
    method: body === undefined && action === '' ? 'GET' : 'POST',
    headers: { 'x-test-user': user, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as unknown) : null, headers: response.headers };
}

async function cameraList(rig: PtzRig, user: string): Promise<Array<{ id: string; ptz?: PtzView }>> {
  const response = await fetch(new URL('api/cameras', rig.base), { headers: { 'x-test-user': user } });
  assert.equal(response.status, 200);
  return (await response.json()) as Array<{ id: string; ptz?: PtzView }>;
}

describe('PTZ web API', () => {
  let rig: PtzRig;
  before(async () => {
    rig = await startPtzRig({ allowedOrigins: ['https://allowed.example'] });
  });
  after(async () => {
    await rig?.close();
  });

  it('the camera list shows PTZ (presets, home) to callers with the right only', async () => {
    const [mine] = await cameraList(rig, 'mover');
    assert.ok(mine?.ptz, 'a viewer with the right sees the controls');
    assert.equal(mine.ptz.continuous, true);
    assert.equal(mine.ptz.home, true);
    assert.ok(mine.ptz.presets.some((p) => p.token === 'P001' && p.name === 'P001'));
    assert.equal((await cameraList(rig, 'admin'))[0]?.ptz?.home, true, 'admins have the right');
    const [theirs] = await cameraList(rig, 'watcher');
    assert.equal(theirs?.id, PTZ_CAMERA_ID);
    assert.equal(theirs?.ptz, undefined, 'a viewer without the right sees no PTZ at all');
    const body = JSON.stringify(await cameraList(rig, 'admin'));
    assert.doesNotMatch(body, /ptz-rig-pass|127\.0\.0\.1|onvif\/services/, 'no credential or camera address in the list');
  });

  it('a drag (move while held, then release) sends ContinuousMove with the drag\u2019s direction, then Stop', async () => {
    const before = rig.ptzCalls().length;
    const moved = await call(rig, 'mover', 'move', { pan: 0.5, tilt: -0.25, zoom: 0 });
    assert.equal(moved.status, 200);
    assert.equal((moved.json as PtzView).mover, 'you');
    assert.equal((moved.json as PtzView).moving, true);
    const stopped = await call(rig, 'mover', 'stop', {});
    assert.equal(stopped.status, 200);
    await rig.ptz.controller?.idle();
    const calls = rig.ptzCalls().slice(before);
    assert.deepEqual(calls.map((q) => q.command), ['ContinuousMove', 'Stop']);
    const v = velocity(calls[0]);
    assert.ok(v.x > 0, `pan right is a positive x (got ${v.x})`);
    assert.ok(v.y < 0, `tilt down is a negative y (got ${v.y})`);
    assert.equal(textAt(calls[0]?.element, 'ProfileToken'), 'main');
  });

  it('a preset button sends GotoPreset with the token; home sends GotoHomePosition', async () => {
    const before = rig.ptzCalls().length;
    assert.equal((await call(rig, 'mover', 'preset', { token: 'P002' })).status, 200);
    assert.equal((await call(rig, 'mover', 'home', {})).status, 200);
    await rig.ptz.controller?.idle();
    const calls = rig.ptzCalls().slice(before);
    assert.deepEqual(calls.map((q) => q.command), ['GotoPreset', 'GotoHomePosition']);
    assert.equal(textAt(calls[0]?.element, 'PresetToken'), 'P002');
  });

  it('a viewer without the right gets 403 and no SOAP call is made', async () => {
    const before = rig.responder.requests.length;
    for (const [action, body] of [['move', { pan: 1, tilt: 0, zoom: 0 }], ['stop', {}], ['preset', { token: 'P001' }], ['home', {}]] as const) {
      const answer = await call(rig, 'watcher', action, body);
      assert.equal(answer.status, 403, action);
    }
    assert.equal((await call(rig, 'watcher', '')).status, 403, 'nor may it read the PTZ state');
    assert.equal(rig.responder.requests.length, before, 'the camera heard nothing');
  });

  it('another mover holding the lease: 409 for the second viewer, who sees "other"', async () => {
    assert.equal((await call(rig, 'mover', 'move', { pan: 0, tilt: 0.5, zoom: 0 })).status, 200);
    const before = rig.ptzCalls().length;
    const refused = await call(rig, 'other', 'move', { pan: -0.5, tilt: 0, zoom: 0 });
    assert.equal(refused.status, 409);
    assert.equal((refused.json as { error?: string }).error, 'ptz-busy');
    const state = await call(rig, 'other', '');
    assert.equal((state.json as PtzView).mover, 'other');
    assert.equal(rig.ptzCalls().length, before, 'the refused move never reached the camera');
    assert.equal((await call(rig, 'mover', 'stop', {})).status, 200);
    await rig.ptz.controller?.idle();
  });

  it('bodies: out-of-range numbers, unknown keys (a URL), an unlisted preset, a foreign origin', async () => {
    const before = rig.responder.requests.length;
    assert.equal((await call(rig, 'mover', 'move', { pan: 2, tilt: 0, zoom: 0 })).status, 400);
    assert.equal((await call(rig, 'mover', 'move', { pan: 0.1, url: 'http://evil.example/' })).status, 400);
    assert.equal((await call(rig, 'mover', 'preset', { token: 'http://evil.example/' })).status, 400, 'a token the camera did not list');
    assert.equal((await call(rig, 'mover', 'move', { pan: 0.5 }, { Origin: 'https://evil.example' })).status, 403, 'the origin policy applies');
    assert.equal(rig.responder.requests.length, before);
  });

  it('unit: lease ids carry the principal\u2019s kind: an account named "Home app" (or like a link) gets its own lease', () => {
    const account = { name: 'Home app', kind: 'user' as const, cameras: 'all' as const, admin: false, ptz: true };
    assert.equal(ptzViewerId(account), 'user:Home app');
    assert.notEqual(ptzViewerId(account), HOMEKIT_VIEWER.id);
    const link = { name: 'link:abc', kind: 'link' as const, cameras: 'all' as const, admin: false };
    assert.notEqual(ptzViewerId({ ...account, name: 'link:abc' }), ptzViewerId(link));
  });

  it('unit: parseMove and parsePreset accept only the documented shapes', () => {
    assert.deepEqual(parseMove({ pan: -1, zoom: 1 }), { kind: 'move', pan: -1, tilt: 0, zoom: 1 });
    for (const bad of [null, [], 'pan', { pan: '1' }, { pan: Number.NaN }, { tilt: -1.01 }, { pan: 0, extra: 1 }]) {
      assert.throws(() => parseMove(bad), (e: unknown) => e instanceof HttpError && e.status === 400, JSON.stringify(bad));
    }
    assert.deepEqual(parsePreset({ token: 'P001' }), { kind: 'preset', token: 'P001' });
    for (const bad of [{}, { token: '' }, { token: 'x'.repeat(65) }, { token: 1 }, { token: 'a', url: 'b' }]) {
      assert.throws(() => parsePreset(bad), (e: unknown) => e instanceof HttpError && e.status === 400, JSON.stringify(bad));
    }
  });
});

describe('PTZ web API: rate limit', () => {
  let rig: PtzRig;
  before(async () => {
    rig = await startPtzRig({ minIntervalMs: 60_000 });
  });
  after(async () => {
    await rig?.close();
  });

  it('a second command within the interval is 429 with Retry-After, and is not sent', async () => {
    assert.equal((await call(rig, 'mover', 'preset', { token: 'P001' })).status, 200);
    await rig.ptz.controller?.idle();
    const before = rig.ptzCalls().length;
    const second = await call(rig, 'mover', 'preset', { token: 'P003' });
    assert.equal(second.status, 429);
    assert.equal(second.headers.get('retry-after'), '1');
    assert.equal(rig.ptzCalls().length, before);
  });
});
