/**
 * Who allocates, per second, in a benchmark's server process: V8's sampling heap profiler with the
 * objects collected by minor and major GCs kept in the profile, so that it shows the allocation
 * *rate* by site (what makes the young generation grow and the scavenger run), not only what is
 * still alive at the end.
 *
 * Each sampled allocation is charged to its owner: the nearest frame on its stack that is not
 * Node's own code (`Buffer.alloc` is charged to whoever called it), classed as this project
 * (`src/`), werift, the benchmark's own harness (`bench/`, `test/`), another package, or Node
 * (when no other frame is on the stack: timers, async hooks).
 */
import { Session } from 'node:inspector';

/** V8's profile tree (HeapProfiler.SamplingHeapProfile), only the fields read here. */
interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

export interface AllocationSummary {
  /** Bytes sampled, by owner class ('project', 'werift', 'harness', 'node', or a package name). */
  byOwner: Record<string, number>;
  /** The largest owning sites, `function file:line`, with their bytes. */
  topSites: Array<[site: string, bytes: number]>;
  totalBytes: number;
}

/** 4 KiB between samples: fine enough for a few seconds at 100 KiB/s and up, cheap enough to run. */
const SAMPLING_INTERVAL_BYTES = 4096;

/** Starts sampling; the returned function stops it and summarises what was allocated meanwhile. */
export function startAllocationSampling(topSites = 12): () => Promise<AllocationSummary> {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.startSampling', {
    samplingInterval: SAMPLING_INTERVAL_BYTES,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return () =>
    new Promise((resolve, reject) => {
      session.post('HeapProfiler.stopSampling', (error, result) => {
        session.disconnect();
        if (error) reject(error);
        else resolve(summariseAllocations((result as unknown as { profile: { head: SamplingNode } }).profile.head, topSites));
      });
    });
}

function ownerClass(url: string): string {
  if (url.includes('/node_modules/')) {
    const name = /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? 'package';
    return name === 'werift' || name.startsWith('@werift/') ? 'werift' : name;
  }
  if (/\/(bench|test)\//.test(url)) return 'harness';
  if (url.includes('/src/') || url.includes('/dist/')) return 'project';
  return 'node';
}

/** A frame's file, short: `werift/index.mjs` for a package, `webrtc/outbound-stream.ts` for the project. */
function shortUrl(url: string): string {
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(?:.*\/)?([^/]+)$/.exec(url);
  if (pkg) return `${pkg[1]}/${pkg[2]}`;
  return url.split('/').slice(-2).join('/') || '(native)';
}

function isNodeOwn(url: string): boolean {
  return url === '' || url.startsWith('node:');
}

export function summariseAllocations(head: SamplingNode, topSites = 12): AllocationSummary {
  const byOwner: Record<string, number> = {};
  const sites = new Map<string, number>();
  let totalBytes = 0;
  const visit = (node: SamplingNode, owner: SamplingNode | undefined): void => {
    const own = isNodeOwn(node.callFrame.url) ? owner : node;
    if (node.selfSize > 0) {
      totalBytes += node.selfSize;
      const cls = own ? ownerClass(own.callFrame.url) : 'node';
      byOwner[cls] = (byOwner[cls] ?? 0) + node.selfSize;
      const frame = own?.callFrame ?? node.callFrame;
      const site = `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}:${frame.lineNumber + 1}`;
      sites.set(site, (sites.get(site) ?? 0) + node.selfSize);
    }
    for (const child of node.children) visit(child, own);
  };
  visit(head, undefined);
  return { byOwner, topSites: [...sites].sort((a, b) => b[1] - a[1]).slice(0, topSites), totalBytes };
}
