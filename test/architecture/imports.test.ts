// The import direction of src/ (issue 13): every import, type-only ones included, follows the table
// in import-rules.ts, and no file imports itself back through others. The checker is proven on
// small hand-made graphs first, so a green run means "no bad edge", not "nothing was checked".
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  ALLOWED,
  directionViolations,
  importCycles,
  importsOf,
  moduleOf,
  readGraph,
  staleExceptions,
  tableCycles,
  type ImportEdge,
} from './import-rules.js';

const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

function edge(from: string, to: string): ImportEdge {
  const specifier = path.posix.relative(path.posix.dirname(from), to).replace(/\.ts$/, '.js');
  return { from, specifier: specifier.startsWith('.') ? specifier : `./${specifier}`, to };
}

describe('import check: the checker', () => {
  it('reads value, type-only, re-export and dynamic imports, resolved to src/ paths', () => {
    const text = [
      "import { a } from '../media/source.js';",
      "import type { B } from '../web/types.js';",
      "export type { C } from './types.js';",
      "export { d } from '../access/principal.js';",
      "const e = await import('../runtime/types.js');",
      "import { f } from 'node:fs';",
      "import ts from 'typescript';",
    ].join('\n');
    assert.deepEqual(importsOf('webrtc/x.ts', text).map((e) => e.to), [
      'media/source.ts',
      'web/types.ts',
      'webrtc/types.ts',
      'access/principal.ts',
      'runtime/types.ts',
    ]);
  });

  it('places files in modules: folders, the config loader apart from its leaves, the root files as the platform', () => {
    assert.equal(moduleOf('web/auth/access-control.ts'), 'web');
    assert.equal(moduleOf('config/types.ts'), 'config');
    assert.equal(moduleOf('config/camera-id.ts'), 'config');
    assert.equal(moduleOf('config/load-config.ts'), 'config-loader');
    assert.equal(moduleOf('platform.ts'), 'platform');
    assert.equal(moduleOf('index.ts'), 'platform');
  });

  it('fails on an edge against the direction, type-only included, naming the file, the import and the rule', () => {
    const typeOnly = importsOf('webrtc/signalling.ts', "import type { CallerContext } from '../web/types.js';");
    const problems = directionViolations(typeOnly);
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^src\/webrtc\/signalling\.ts imports '\.\.\/web\/types\.js' \(src\/web\/types\.ts\): 'webrtc' may not import 'web'/);
    assert.match(problems[0]!, /'webrtc' may import only 'util', 'media', 'rtp', 'access'/);
    // The other back-edges issue 13 removed would each be caught too.
    const bad = [
      edge('web/types.ts', 'webrtc/broadcast-source.ts'), // allowed: web sits above webrtc
      edge('homekit/snapshot-service.ts', 'web/types.ts'),
      edge('web/auth/share-links.ts', 'config/load-config.ts'),
      edge('media/source.ts', 'rtsp/session.ts'),
      edge('util/logger.ts', 'media/types.ts'),
      edge('snapshots/snapshot-store.ts', 'web/auth/storage.ts'),
    ];
    const found = directionViolations(bad, ALLOWED, []);
    assert.deepEqual(found.map((p) => p.split(' imports ')[0]), [
      'src/homekit/snapshot-service.ts',
      'src/web/auth/share-links.ts',
      'src/media/source.ts',
      'src/util/logger.ts',
      'src/snapshots/snapshot-store.ts',
    ]);
    assert.match(found[1]!, /'web' may not import 'config-loader'/);
    assert.match(found[3]!, /'util' may import no other module/);
  });

  it('names a module missing from the table', () => {
    const problems = directionViolations([edge('newfolder/x.ts', 'util/logger.ts')]);
    assert.match(problems[0]!, /module 'newfolder' has no rule in the import table/);
  });

  it('honours a temporary exception only for its exact edge, and reports one that is no longer needed', () => {
    const relay = edge('homekit/srtp-relay.ts', 'webrtc/srtp-writer.ts');
    const other = edge('homekit/stream-session.ts', 'webrtc/srtp-writer.ts');
    const exceptions = ['homekit/srtp-relay.ts -> webrtc/srtp-writer.ts', 'rtsp/server.ts -> webrtc/srtp-writer.ts'];
    assert.deepEqual(directionViolations([relay], ALLOWED, exceptions), []);
    assert.equal(directionViolations([other], ALLOWED, exceptions).length, 1);
    assert.deepEqual(staleExceptions([relay, other], exceptions), ['rtsp/server.ts -> webrtc/srtp-writer.ts']);
  });

  it('finds file-level cycles, long ones and a file importing itself, and nothing in a tree', () => {
    const cycles = importCycles([
      edge('runtime/camera-runtime.ts', 'runtime/plugin-services.ts'),
      edge('runtime/plugin-services.ts', 'runtime/camera-runtime.ts'),
      edge('media/a.ts', 'media/b.ts'),
      edge('media/b.ts', 'media/c.ts'),
      edge('media/c.ts', 'media/a.ts'),
      edge('media/c.ts', 'util/x.ts'),
      edge('web/self.ts', 'web/self.ts'),
    ]);
    assert.deepEqual(cycles.sort((x, y) => x[0]!.localeCompare(y[0]!)), [
      ['media/a.ts', 'media/b.ts', 'media/c.ts', 'media/a.ts'],
      ['runtime/camera-runtime.ts', 'runtime/plugin-services.ts', 'runtime/camera-runtime.ts'],
      ['web/self.ts', 'web/self.ts'],
    ]);
    assert.deepEqual(importCycles([edge('a/x.ts', 'a/y.ts'), edge('a/y.ts', 'a/z.ts'), edge('a/x.ts', 'a/z.ts')]), []);
  });
});

describe('import check: src/', () => {
  const graph = readGraph(SRC);

  it('reads the whole tree', () => {
    assert.ok(graph.length > 300, `${graph.length} imports`);
    assert.ok(graph.some((e) => e.from === 'runtime/camera-runtime.ts' && e.to === 'media/source.ts'));
  });

  it('the table itself points one way', () => {
    assert.deepEqual(tableCycles(), []);
  });

  it('every import follows the intended direction', () => {
    const problems = directionViolations(graph);
    assert.deepEqual(problems, [], `imports against the direction (test/architecture/import-rules.ts):\n${problems.join('\n')}`);
  });

  it('every temporary exception is still needed', () => {
    assert.deepEqual(staleExceptions(graph), [], 'delete these lines from TEMPORARY_ALLOWED_EDGES: their edge is gone');
  });

  it('no file-level import cycles', () => {
    const cycles = importCycles(graph).map((cycle) => cycle.map((file) => `src/${file}`).join(' -> '));
    assert.deepEqual(cycles, [], `import cycles:\n${cycles.join('\n')}`);
  });
});
