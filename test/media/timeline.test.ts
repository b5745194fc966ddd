// OutputTimeline: what viewers see must only move forward, whatever the camera's clock does.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { OutputTimeline } from '../../src/media/timeline.js';

const RATE = 90_000;
const TICKS_PER_MS = RATE / 1000;

describe('OutputTimeline', () => {
  it('starts at the chosen initial timestamp and keeps the camera\'s spacing', () => {
    const t = new OutputTimeline(RATE, 0, 5000);
    assert.equal(t.map(1_000_000, 0), 5000);
    assert.equal(t.map(1_003_000, 33), 8000);
    assert.equal(t.map(1_006_000, 66), 11_000);
    assert.equal(t.discontinuities, 0);
  });

  it('without an initial timestamp, passes the camera\'s first timestamp through', () => {
    const t = new OutputTimeline(RATE, 0);
    assert.equal(t.map(123_456, 0), 123_456);
    assert.equal(t.map(126_456, 33), 126_456);
  });

  it('crosses the 32-bit timestamp wrap as ordinary forward movement', () => {
    const t = new OutputTimeline(RATE, 0, 100);
    const nearEnd = 0xffff_ffff - 1000;
    assert.equal(t.map(nearEnd, 0), 100);
    // 3000 ticks later the camera's timestamp has wrapped past zero.
    const wrapped = (nearEnd + 3000) >>> 0;
    assert.ok(wrapped < nearEnd);
    assert.equal(t.map(wrapped, 33), 3100);
    assert.equal(t.discontinuities, 0);
  });

  it('keeps the output in 32 bits when the offset pushes it past the wrap', () => {
    const t = new OutputTimeline(RATE, 0, 0xffff_fff0);
    assert.equal(t.map(0, 0), 0xffff_fff0);
    assert.equal(t.map(0x20, 1), 0x10);
  });

  it('a small step back (B-frame reordering) is not a break and does not pull the anchor back', () => {
    const t = new OutputTimeline(RATE, 0, 0);
    t.map(90_000, 0);
    assert.equal(t.map(87_000, 10), -3000 >>> 0, 'reordered frame maps with the same offset');
    assert.equal(t.discontinuities, 0);
    // A later camera jump is bridged from the furthest output (0 at 0 ms), not from the reordered one.
    assert.equal(t.map(90_000 - RATE * 5, 1000), 1000 * TICKS_PER_MS);
    assert.equal(t.discontinuities, 1);
  });

  it('a backward jump of more than a second is a break, bridged by the wall-clock time that passed', () => {
    const t = new OutputTimeline(RATE, 0, 0);
    t.map(500_000, 0);
    t.map(509_000, 100);
    // Camera rebooted its clock without a new SSRC: 2 s backwards.
    const out = t.map(509_000 - 2 * RATE, 400);
    assert.equal(t.discontinuities, 1);
    assert.equal(out, 9000 + 300 * TICKS_PER_MS);
    // After the break the camera's spacing is kept again.
    assert.equal(t.map(509_000 - 2 * RATE + 3000, 433), out + 3000);
  });

  it('a forward jump is a pause up to 10 s beyond the elapsed time, and a break past that', () => {
    const paused = new OutputTimeline(RATE, 0, 0);
    paused.map(0, 0);
    // 60 s of wall-clock silence, then the timestamp moves 65 s on: within elapsed + 10 s.
    assert.equal(paused.map(65 * RATE, 60_000), 65 * RATE);
    assert.equal(paused.discontinuities, 0);

    const jumped = new OutputTimeline(RATE, 0, 0);
    jumped.map(0, 0);
    const out = jumped.map(11 * RATE + 1, 1000 - 1);
    assert.equal(jumped.discontinuities, 1, 'more than 10 s beyond the one second that passed');
    assert.equal(out, (1000 - 1) * TICKS_PER_MS);
  });

  it('rebase: the next timestamp starts a new camera timeline, continued at least one tick on', () => {
    const t = new OutputTimeline(RATE, 0, 0);
    t.map(777_000, 0);
    t.rebase();
    // A new session with a random base, in the same millisecond: one tick, never the same timestamp.
    assert.equal(t.map(12, 0), 1);
    assert.equal(t.discontinuities, 0, 'a rebase is announced, not detected');
    assert.equal(t.map(12 + 900, 10), 901);
  });

  it('rebase can change the clock rate; later gaps use the new rate', () => {
    const t = new OutputTimeline(8000, 0, 0);
    t.map(0, 0);
    t.rebase(48_000);
    assert.equal(t.clockRate, 48_000);
    assert.equal(t.map(5, 1000), 48_000, 'one second at the new rate');
  });

  it('hands out sequence numbers in blocks and wraps them at 16 bits', () => {
    const t = new OutputTimeline(RATE, 0x1_fffe);
    assert.equal(t.takeSequence(3), 0xfffe, 'the initial sequence is cut to 16 bits');
    assert.equal(t.takeSequence(1), 1);
    assert.equal(t.takeSequence(0), 2, 'a frame without packets takes none');
    assert.equal(t.takeSequence(5), 2);
    assert.equal(t.takeSequence(1), 7);
  });
});
