/**
 * The intended import direction of src/ (issue 13), as a table, and a checker over the real import
 * graph. Every import counts: value, `import type`, `export ... from` and dynamic `import()`, because
 * a type-only edge still ties two layers' designs together.
 *
 * util ← media ← rtp ← (rtsp client, demo, restream, onvif, webrtc, homekit, transcode, snapshots)
 *   ← runtime ← platform, with access just above util (web and webrtc both import it), web above
 *   webrtc and below runtime, and config's leaf modules (types, the camera-id rule, the share-link
 *   expiry choices, the default viewer caps) importable from below while the config loader is read
 *   by runtime and the platform only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/** Which modules each module may import (itself always). A module is a src/ folder, with two exceptions below. */
export const ALLOWED: Readonly<Record<string, ReadonlyArray<string>>> = {
  util: [],
  config: ['util'],
  media: ['util'],
  access: ['util'],
  rtp: ['util', 'media'],
  ffmpeg: ['util'],
  rtsp: ['util', 'media', 'rtp'],
  demo: ['util', 'media', 'rtp', 'rtsp'],
  // The re-stream server speaks RTSP too: it may share the client's protocol helpers (headers, SDP).
  restream: ['util', 'media', 'rtp', 'rtsp'],
  onvif: ['util', 'media'],
  transcode: ['util', 'media', 'rtp', 'ffmpeg'],
  // Motion seen in the picture: an ffmpeg on the re-stream and arithmetic on its pixels.
  motion: ['util', 'ffmpeg'],
  // Two-way audio: the talker's Opus through ffmpeg into the camera's RTSP back-channel.
  talk: ['util', 'media', 'ffmpeg', 'rtsp'],
  // config: its leaf view-limits.ts, the default (and ceiling) of the pending budget the loader also fills in.
  webrtc: ['util', 'media', 'rtp', 'access', 'config'],
  snapshots: ['util', 'media', 'config', 'ffmpeg'],
  homekit: ['util', 'media', 'rtp', 'config', 'ffmpeg', 'onvif', 'snapshots'],
  // Scale-out: one copy of a camera to each gateway, which then serves the viewers that
  // src/webrtc's signalling hands it (the seam, RelayedViewer and ViewerRelays, is webrtc's).
  scaleout: ['util', 'media', 'rtp', 'config', 'webrtc'],
  // web serves the pages and routes signalling to src/webrtc's handlers: it sits above webrtc.
  web: ['util', 'media', 'access', 'config', 'webrtc'],
  // The admin API (the Homebridge UI's page): web routes that test a camera before it is saved.
  admin: ['util', 'media', 'access', 'config', 'ffmpeg', 'rtsp', 'onvif', 'snapshots', 'web'],
  // The loader itself (load-config.ts and its helpers): parses camera URLs with the RTSP client's parser.
  'config-loader': ['util', 'config', 'rtsp'],
  runtime: [
    'util', 'config', 'config-loader', 'media', 'access', 'rtp', 'ffmpeg', 'rtsp', 'demo', 'restream', 'onvif',
    'transcode', 'motion', 'talk', 'webrtc', 'snapshots', 'homekit', 'web', 'admin', 'scaleout',
  ],
  // The Homebridge UI's server runs in the UI's own process: it hashes passwords like access control.
  'homebridge-ui': ['util', 'config', 'config-loader', 'web'],
  // src/index.ts, src/platform.ts, src/settings.ts: the Homebridge glue on top.
  platform: [
    'util', 'config', 'config-loader', 'media', 'access', 'rtp', 'ffmpeg', 'rtsp', 'demo', 'restream', 'onvif',
    'transcode', 'motion', 'talk', 'webrtc', 'snapshots', 'homekit', 'web', 'admin', 'scaleout', 'runtime',
  ],
};

/** The config files lower layers may import; the rest of src/config is the loader. */
const CONFIG_LEAVES = new Set(['config/types.ts', 'config/camera-id.ts', 'config/share-link-expiry.ts', 'config/view-limits.ts']);

/**
 * Edges allowed against the table for a while, each with the reason. Empty since the shared wire
 * layer (src/rtp/) took the SRTP writer out of src/webrtc. The test fails on a line whose edge no
 * longer exists, so the list cannot go stale.
 */
export const TEMPORARY_ALLOWED_EDGES: ReadonlyArray<string> = [
];

/** The module of a file, from its path relative to src/ (with forward slashes). */
export function moduleOf(file: string): string {
  const parts = file.split('/');
  if (parts.length === 1) return 'platform';
  if (parts[0] === 'config') return CONFIG_LEAVES.has(file) ? 'config' : 'config-loader';
  return parts[0]!;
}

export interface ImportEdge {
  /** Importing file, relative to src/. */
  from: string;
  /** The specifier as written. */
  specifier: string;
  /** Imported file, relative to src/. */
  to: string;
}

/** Every relative import of one source text, resolved to a src/-relative .ts path. */
export function importsOf(file: string, text: string): ImportEdge[] {
  const info = ts.preProcessFile(text, true, true);
  const edges: ImportEdge[] = [];
  for (const { fileName: specifier } of info.importedFiles) {
    if (!specifier.startsWith('.')) continue; // packages and node: built-ins
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)).replace(/\.js$/, '.ts');
    edges.push({ from: file, specifier, to: target });
  }
  return edges;
}

/** Every .ts file under `root`, relative to it, with forward slashes. */
export function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(rel);
    }
  };
  walk('');
  return out.sort();
}

/** The import graph of src/: every file's relative imports. */
export function readGraph(root: string): ImportEdge[] {
  return sourceFiles(root).flatMap((file) => importsOf(file, readFileSync(path.join(root, file), 'utf8')));
}

/** One message per import against the direction: the file, the import, and the rule it breaks. */
export function directionViolations(
  edges: ReadonlyArray<ImportEdge>,
  allowed: Readonly<Record<string, ReadonlyArray<string>>> = ALLOWED,
  exceptions: ReadonlyArray<string> = TEMPORARY_ALLOWED_EDGES,
): string[] {
  const excepted = new Set(exceptions);
  const problems: string[] = [];
  for (const edge of edges) {
    const from = moduleOf(edge.from);
    const to = moduleOf(edge.to);
    if (from === to || excepted.has(`${edge.from} -> ${edge.to}`)) continue;
    const rule = allowed[from];
    if (!rule) {
      problems.push(`src/${edge.from} imports '${edge.specifier}' (src/${edge.to}): module '${from}' has no rule in the import table; add one`);
    } else if (!rule.includes(to)) {
      problems.push(
        `src/${edge.from} imports '${edge.specifier}' (src/${edge.to}): '${from}' may not import '${to}' ` +
          (rule.length ? `('${from}' may import only ${rule.map((m) => `'${m}'`).join(', ')})` : `('${from}' may import no other module)`),
      );
    }
  }
  return problems;
}

/** Temporary exceptions whose edge no longer exists: each should be deleted from the list. */
export function staleExceptions(edges: ReadonlyArray<ImportEdge>, exceptions: ReadonlyArray<string> = TEMPORARY_ALLOWED_EDGES): string[] {
  const present = new Set(edges.map((edge) => `${edge.from} -> ${edge.to}`));
  return exceptions.filter((exception) => !present.has(exception));
}

/**
 * File-level import cycles (strongly connected components of more than one file, or a file that
 * imports itself), each as its files in a cycle order, e.g. `a.ts -> b.ts -> a.ts`.
 */
export function importCycles(edges: ReadonlyArray<ImportEdge>): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    if (!next.has(from)) next.set(from, new Set());
    next.get(from)!.add(to);
    if (!next.has(to)) next.set(to, new Set());
  }
  // Tarjan's algorithm, iterative so a deep graph cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const start of [...next.keys()].sort()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; children: string[]; i: number }> = [];
    const visit = (node: string): void => {
      index.set(node, counter);
      low.set(node, counter);
      counter++;
      stack.push(node);
      onStack.add(node);
      work.push({ node, children: [...next.get(node)!].sort(), i: 0 });
    };
    visit(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      if (frame.i < frame.children.length) {
        const child = frame.children[frame.i++]!;
        if (!index.has(child)) visit(child);
        else if (onStack.has(child)) low.set(frame.node, Math.min(low.get(frame.node)!, index.get(child)!));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1 || next.get(frame.node)!.has(frame.node)) components.push(cycleOrder(component, next));
      }
    }
  }
  return components;
}

/** One closed walk through a strongly connected component, starting from its first file by name. */
function cycleOrder(component: string[], next: Map<string, Set<string>>): string[] {
  const members = new Set(component);
  const start = [...component].sort()[0]!;
  // Breadth-first from start back to start, inside the component: the shortest cycle through it.
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const child of [...next.get(node)!].sort()) {
      if (!members.has(child)) continue;
      if (child === start) {
        const path: string[] = [start];
        for (let at: string | undefined = node; at !== undefined && at !== start; at = previous.get(at)) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(child)) {
        previous.set(child, node);
        queue.push(child);
      }
    }
  }
  return [start, start];
}

/** Whether the table itself only points one way (a cycle between modules would make the order meaningless). */
export function tableCycles(allowed: Readonly<Record<string, ReadonlyArray<string>>> = ALLOWED): string[][] {
  const edges: ImportEdge[] = [];
  for (const [from, targets] of Object.entries(allowed)) {
    for (const to of targets) edges.push({ from, specifier: to, to });
  }
  return importCycles(edges);
}
