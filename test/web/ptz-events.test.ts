/**
 * Issue 17: other viewers see a PTZ camera being moved at once. When a camera's mover changes (a
 * viewer takes control, lets it go and the lease runs out), the page's event stream `/api/events`
 * carries a `ptz` event to every viewer who may watch that camera, through the project's real web
 * server, the runtime's CameraPtz and the loopback ONVIF responder (test/helpers/ptz-rig.ts): the
 * mover is told "you", another account "other" with no name, an administrator the account's name,
 * a share link "other" and never a name; an account that may not watch the camera hears nothing, and
 * no event carries a password, address or link id.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { HOMEKIT_VIEWER } from '../../src/runtime/camera-ptz.js';
import { EVENTS_PATH } from '../../src/web/event-stream.js';
import { ptzMoverEvent, ptzViewerId, type PtzMoverEvent } from '../../src/web/ptz-types.js';
import { readEventStream, type EventStreamReader } from '../helpers/event-stream-client.js';
import { PTZ_CAMERA_ID, PTZ_USERS, startPtzRig, until, type PtzRig } from '../helpers/ptz-rig.js';

const LEASE_MS = 400;

async function ptzPost(rig: PtzRig, user: string, action: 'move' | 'stop', body: object): Promise<number> {
  const response = await fetch(new URL(`api/cameras/${PTZ_CAMERA_ID}/ptz/${action}`, rig.base), {
    method: 'POST',
    headers: { 'x-test-user': user, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

const moverOf = (event: { data: unknown }): Pick<PtzMoverEvent, 'camera' | 'mover' | 'name'> => {
  const { camera, mover, name } = event.data as PtzMoverEvent;
  return { camera, mover, name };
};

describe('PTZ mover changes on the page event stream', () => {
  let rig: PtzRig;
  const streams: Record<string, EventStreamReader> = {};
  before(async () => {
    rig = await startPtzRig({ leaseMs: LEASE_MS });
    for (const user of ['mover', 'other', 'admin', 'link', 'outsider']) {
      streams[user] = readEventStream(new URL(EVENTS_PATH, rig.base).href, { 'x-test-user': user });
      assert.equal(await streams[user].status, 200, user);
    }
    await until(() => rig.events.size === 5, 'five open streams');
  });
  after(async () => {
    for (const stream of Object.values(streams)) stream.close();
    await rig?.close();
  });

  it('a second viewer\u2019s stream hears the mover take control and, once the lease runs out after the stop, let it go', async () => {
    const other = streams['other']!;
    assert.equal(await ptzPost(rig, 'mover', 'move', { pan: 0.5, tilt: 0, zoom: 0 }), 200);
    assert.deepEqual(moverOf(await other.waitFor('ptz', 1)), { camera: PTZ_CAMERA_ID, mover: 'other', name: null });
    // Keep-alives and the stop change nothing about who holds control: no event for them.
    assert.equal(await ptzPost(rig, 'mover', 'move', { pan: 0.5, tilt: 0, zoom: 0 }), 200);
    assert.equal(await ptzPost(rig, 'mover', 'stop', {}), 200);
    assert.equal(other.events('ptz').length, 1, 'one event for the taking of control');
    // While the lease holds (the mover may go on), the other viewer is still refused.
    assert.equal(await ptzPost(rig, 'other', 'move', { pan: -0.5, tilt: 0, zoom: 0 }), 409);
    const released = await other.waitFor('ptz', 2, 10_000);
    assert.deepEqual(moverOf(released), { camera: PTZ_CAMERA_ID, mover: null, name: null });
    await rig.ptz.controller?.idle();
  });

  it('each viewer is told it as they may see it: "you" to the mover, the name to an administrator only', async () => {
    // Written to every stream at once, but each arrives on its own socket.
    await Promise.all(['mover', 'admin', 'link'].map((user) => streams[user]!.waitFor('ptz', 2)));
    assert.deepEqual(streams['mover']!.events('ptz').map(moverOf).map((e) => e.mover), ['you', null]);
    assert.deepEqual(streams['admin']!.events('ptz').map(moverOf), [
      { camera: PTZ_CAMERA_ID, mover: 'other', name: 'mover' },
      { camera: PTZ_CAMERA_ID, mover: null, name: null },
    ]);
    assert.deepEqual(streams['link']!.events('ptz').map(moverOf), [
      { camera: PTZ_CAMERA_ID, mover: 'other', name: null },
      { camera: PTZ_CAMERA_ID, mover: null, name: null },
    ], 'a share link sees "someone", never an account name');
  });

  it('a viewer who may not watch the camera hears nothing of it, and no event carries a secret', () => {
    const outsider = streams['outsider']!;
    assert.match(outsider.text, /^retry: 5000/, 'the outsider\u2019s stream is open');
    assert.doesNotMatch(outsider.text, /ptz|dome/i);
    for (const [user, stream] of Object.entries(streams)) {
      assert.doesNotMatch(stream.text, /ptz-rig-pass|127\.0\.0\.1|onvif|guest-link-id|link:|user:|other:|homekit:/i, `${user}: no password, address or id`);
    }
  });

  it('the next mover is announced in turn, after the first one\u2019s lease ran out', async () => {
    const before = streams['mover']!.events('ptz').length;
    assert.equal(await ptzPost(rig, 'other', 'move', { pan: -0.5, tilt: 0, zoom: 0 }), 200);
    assert.deepEqual(moverOf(await streams['mover']!.waitFor('ptz', before + 1)), { camera: PTZ_CAMERA_ID, mover: 'other', name: null });
    assert.equal(await ptzPost(rig, 'other', 'stop', {}), 200);
    assert.deepEqual(moverOf(await streams['mover']!.waitFor('ptz', before + 2)), { camera: PTZ_CAMERA_ID, mover: null, name: null });
    await rig.ptz.controller?.idle();
  });

  it('unit: the Home app is named to everyone; a share link moving is named to nobody, not even an administrator', () => {
    const admin = PTZ_USERS['admin']!;
    const link = PTZ_USERS['link']!;
    assert.deepEqual(ptzMoverEvent(PTZ_CAMERA_ID, HOMEKIT_VIEWER.id, link, 1), { type: 'ptz', camera: PTZ_CAMERA_ID, mover: 'other', name: 'The Home app', at: 1 });
    assert.equal(ptzMoverEvent(PTZ_CAMERA_ID, ptzViewerId(link), admin, 1).name, null);
    assert.equal(ptzMoverEvent(PTZ_CAMERA_ID, ptzViewerId(link), link, 1).mover, 'you');
    assert.equal(ptzMoverEvent(PTZ_CAMERA_ID, undefined, admin, 1).mover, null);
  });
});
