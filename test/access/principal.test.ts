// canMoveCamera: the PTZ right is watching the camera plus admin or an explicit `ptz`; share links,
// anonymous viewers and principals without the field never have it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { EVERYONE, canMoveCamera, type Principal } from '../../src/access/principal.js';

describe('canMoveCamera', () => {
  const viewer = (extra: Partial<Principal>): Principal => ({ name: 'v', cameras: ['dome'], admin: false, ...extra });

  it('admins, and viewers granted ptz, for cameras they may watch', () => {
    assert.equal(canMoveCamera({ name: 'a', cameras: 'all', admin: true }, 'dome'), true);
    assert.equal(canMoveCamera(viewer({ ptz: true }), 'dome'), true);
    assert.equal(canMoveCamera(viewer({ ptz: true }), 'porch'), false, 'not a camera it may watch');
  });

  it('nobody else: no ptz field, ptz false, everyone', () => {
    assert.equal(canMoveCamera(viewer({}), 'dome'), false);
    assert.equal(canMoveCamera(viewer({ ptz: false }), 'dome'), false);
    assert.equal(canMoveCamera(EVERYONE, 'dome'), false);
  });
});
