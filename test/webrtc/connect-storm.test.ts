// Issue 14's connect storm: the budget of viewers still connecting (web.maxConnectingViews) per
// principal and per address. By default a storm from one address is cut to the budget, with the
// reason; a raised setting admits 50 viewers joining at once from one address; no setting gets past
// the hard ceiling. The admission alone, without peers: the WHEP wiring is in pending-viewers.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONNECTING_LIMIT_CEILING, WEB_DEFAULT_CONNECTING_LIMIT } from '../../src/config/view-limits.js';
import { ViewerLimiter, type Admission, type SlotOwner, type ViewerSlot } from '../../src/webrtc/viewer-limits.js';

/** `n` viewers asking for a slot on one camera at once (none has connected yet). */
function storm(limits: ViewerLimiter, n: number, owner: (i: number) => SlotOwner, cameraId = 'cam'): Admission[] {
  return Array.from({ length: n }, (_, i) => limits.admit(cameraId, owner(i)));
}

const slots = (admissions: Admission[]): ViewerSlot[] => admissions.flatMap((a) => ('slot' in a ? [a.slot] : []));
const reasons = (admissions: Admission[]): string[] => admissions.flatMap((a) => ('refused' in a ? [a.refused] : []));

/** A family behind one NAT: everyone on one public address, each with their own account. */
const family = (i: number): SlotOwner => ({ principal: `member-${i}`, address: '203.0.113.7' });
/** One share link opened on many devices, each on its own address. */
const oneLink = (i: number): SlotOwner => ({ principal: 'link:party', address: `10.0.${i >> 8}.${i & 255}` });

describe('connect storm: the budget of viewers still connecting', () => {
  it('by default a storm above the budget is refused past it, from one address and from one principal alike', () => {
    assert.equal(WEB_DEFAULT_CONNECTING_LIMIT, 4);
    for (const owner of [family, oneLink]) {
      const limits = new ViewerLimiter({ maxViewersPerCamera: 100 });
      assert.equal(limits.pendingLimit, WEB_DEFAULT_CONNECTING_LIMIT);
      const admissions = storm(limits, 50, owner);
      assert.equal(slots(admissions).length, WEB_DEFAULT_CONNECTING_LIMIT);
      assert.deepEqual(reasons(admissions), Array<string>(50 - WEB_DEFAULT_CONNECTING_LIMIT).fill('too-many-pending'));
      assert.equal(limits.count('cam'), WEB_DEFAULT_CONNECTING_LIMIT, 'a refused viewer holds no camera place');
    }
  });

  it('a connected viewer gives its pending place back; a released one gives back both', () => {
    const limits = new ViewerLimiter({ maxViewersPerCamera: 100 });
    const first = slots(storm(limits, WEB_DEFAULT_CONNECTING_LIMIT, family));
    assert.deepEqual(storm(limits, 1, family), [{ refused: 'too-many-pending' }]);
    first[0]!.connected();
    first[0]!.connected();
    assert.equal(limits.pendingOf(family(0)), WEB_DEFAULT_CONNECTING_LIMIT - 1, 'connected() is counted once');
    assert.equal(slots(storm(limits, 2, family)).length, 1);
    first[1]!();
    assert.equal(slots(storm(limits, 1, family)).length, 1);
    assert.equal(limits.count('cam'), WEB_DEFAULT_CONNECTING_LIMIT + 1);
  });

  it('web.maxConnectingViews = 50 admits 50 viewers joining at once from one address; the 51st is told why', () => {
    for (const owner of [family, oneLink, (): SlotOwner => ({ principal: 'link:wall', address: '127.0.0.1' })]) {
      const limits = new ViewerLimiter({ maxViewersPerCamera: 100, maxPendingPerOwner: 50 });
      const admissions = storm(limits, 50, owner);
      assert.equal(slots(admissions).length, 50, JSON.stringify(reasons(admissions)));
      assert.equal(limits.pendingOf(owner(0)), 50);
      assert.deepEqual(storm(limits, 1, owner), [{ refused: 'too-many-pending' }]);
      // Once they play, the next storm has the whole budget again.
      for (const slot of slots(admissions)) slot.connected();
      assert.equal(slots(storm(limits, 50, owner)).length, 50);
      assert.equal(limits.count('cam'), 100);
    }
  });

  it('a raised budget does not raise the camera limit: a full camera is refused as camera-full', () => {
    const limits = new ViewerLimiter({ maxViewersPerCamera: 30, maxPendingPerOwner: 50 });
    const admissions = storm(limits, 50, family);
    assert.equal(slots(admissions).length, 30);
    assert.deepEqual(reasons(admissions), Array<string>(20).fill('camera-full'));
  });

  it('no setting gets past the hard ceiling', () => {
    const limits = new ViewerLimiter({ maxViewersPerCamera: 1000, maxPendingPerOwner: 1000 });
    assert.equal(limits.pendingLimit, CONNECTING_LIMIT_CEILING);
    const admissions = storm(limits, CONNECTING_LIMIT_CEILING + 20, family);
    assert.equal(slots(admissions).length, CONNECTING_LIMIT_CEILING);
    assert.deepEqual(reasons(admissions), Array<string>(20).fill('too-many-pending'));
  });

  it('without an owner (tests, benches that call the limiter directly) no pending budget applies', () => {
    const limits = new ViewerLimiter({ maxViewersPerCamera: 60 });
    assert.equal(Array.from({ length: 60 }, () => limits.tryAcquire('cam')).filter(Boolean).length, 60);
  });
});
