// Run by native-heap-trim.test.ts in a Node of its own: grows V8's heap the way a burst of WebRTC
// handshakes does (many objects that live a while, so the young generation grows to its maximum),
// lets it all go, then asks V8 for a memory-reducing collection through the addon, or does not
// (argument 0), and says what RSS did over the next 2.5 s, and when V8's first full collection after
// that moment ended (a gc performance entry, which the trimmer waits for). Prints one JSON line.
// usage: node v8-reduction-probe.mjs <addon binary> <1|0>
import { constants, PerformanceObserver, performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';

const [binary, hint] = process.argv.slice(2);
const addon = { exports: {} };
process.dlopen(addon, binary);
let keep = [];
for (let round = 0; round < 400; round++) {
  for (let i = 0; i < 5000; i++) keep.push({ round, i, text: `x${i}` });
  if (keep.length > 200_000) keep = keep.slice(-100_000);
}
keep = [];
await sleep(300);
const before = process.memoryUsage.rss();
const askedAt = performance.now();
let majorAfterMs = null;
const observer = new PerformanceObserver((list) => {
  if (majorAfterMs === null && list.getEntries().some((e) => e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) majorAfterMs = performance.now() - askedAt;
});
observer.observe({ entryTypes: ['gc'] });
const told = hint === '1' ? addon.exports.hintMemoryReduction() : false;
await sleep(2500);
observer.disconnect();
process.stdout.write(`${JSON.stringify({ told, before, after: process.memoryUsage.rss(), majorAfterMs })}\n`);
