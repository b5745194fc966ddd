// The allocation sampler behind `BENCH_ALLOCATIONS=1 npm run bench:webrtc`: who is charged, and
// that the objects the scavenger already collected are still counted (the rate, not what is live).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startAllocationSampling, summariseAllocations } from '../../bench/allocation-sampling.js';

interface Frame {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: Frame[];
}

const frame = (functionName: string, url: string, selfSize: number, children: Frame[] = []): Frame => ({
  callFrame: { functionName, url, lineNumber: 9 },
  selfSize,
  children,
});

describe('allocation sampling', () => {
  test("Node's own frames are charged to the nearest caller outside Node, classed by where it lives", () => {
    const tree = frame('(root)', '', 0, [
      frame('send', 'file:///x/node_modules/werift/lib/index.mjs', 100, [frame('alloc', 'node:buffer', 400)]),
      frame('sendFrame', 'file:///x/src/webrtc/outbound-stream.ts', 50, [frame('subarray', 'node:buffer', 30)]),
      frame('tick', 'file:///x/test/helpers/synthetic-source.ts', 20),
      frame('listOnTimeout', 'node:internal/timers', 7),
      frame('write', 'file:///x/node_modules/ws/lib/sender.js', 3),
    ]);
    const summary = summariseAllocations(tree);
    assert.deepEqual(summary.byOwner, { werift: 500, project: 80, harness: 20, node: 7, ws: 3 });
    assert.equal(summary.totalBytes, 610);
    assert.deepEqual(summary.topSites[0], ['send werift/index.mjs:10', 500]);
    assert.deepEqual(summary.topSites[1], ['sendFrame webrtc/outbound-stream.ts:10', 80]);
  });

  test('counts short-lived objects that minor GCs already collected', async () => {
    const stop = startAllocationSampling();
    let kept = 0;
    // About 16 MiB of small arrays, each dead at once: only an allocation-rate profile sees them.
    for (let i = 0; i < 1 << 17; i++) kept += new Array<number>(16).fill(i).length;
    const summary = await stop();
    assert.equal(kept, 16 << 17);
    const harness = summary.byOwner['harness'] ?? 0;
    assert.ok(harness > 4 * 1024 * 1024, `the test's own allocations: ${harness} bytes sampled of about 16 MiB`);
    assert.ok(summary.topSites.some(([site]) => site.includes('allocation-sampling.test.ts')), JSON.stringify(summary.topSites));
  });
});
