// frameByteLength: the Source's byteLength when set, the sum of the units otherwise.
import assert from 'node:assert/strict';
import { it } from 'node:test';

import { frameByteLength } from '../../src/media/frame.js';
import type { MediaFrame } from '../../src/media/types.js';

const frame = (units: Buffer[], byteLength?: number): MediaFrame => ({
  kind: 'video', codec: 'H264', clockRate: 90_000, timestamp: 0, sequenceNumber: 0, keyframe: false, units, packets: [], receivedAt: 0,
  ...(byteLength === undefined ? {} : { byteLength }),
});

it('frameByteLength trusts byteLength (even 0) and otherwise adds up the units', () => {
  assert.equal(frameByteLength(frame([Buffer.alloc(3), Buffer.alloc(4)])), 7);
  assert.equal(frameByteLength(frame([Buffer.alloc(3)], 100)), 100);
  assert.equal(frameByteLength(frame([Buffer.alloc(3)], 0)), 0);
  assert.equal(frameByteLength(frame([])), 0);
});
