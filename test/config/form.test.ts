/**
 * What the Homebridge UI form saves, and the README's settings table, against the schema and the
 * loader (issue 11): one array item in the layout is one entry, an empty entry is nothing, the
 * defaults live in the loader, and the README and the schema name the same settings.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { CAMERA_BLANK_DEFAULTS } from '../../src/config/defaults.js';
import { CAMERA_DEFAULTS, ONVIF_DEFAULTS, VIEWER_DEFAULTS, isBlankEntry, loadConfig } from '../../src/config/load-config.js';
import { readSchemaFile, type JsonSchema } from '../../src/config/schema-file.js';
import type { LoadedConfig } from '../../src/config/types.js';
import { FORM_KEYWORDS } from '../../src/config/validator.js';
import { PREBUFFER_SECONDS } from '../../src/homekit/recording/prebuffer.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const file = readSchemaFile();
const root = file.schema;

function load(block: Record<string, unknown>): LoadedConfig {
  return loadConfig({ platform: 'WebRTCCameras', ...block });
}

function prop(schema: JsonSchema, path: string): JsonSchema {
  let node: JsonSchema | undefined = schema;
  for (const part of path.split('.')) {
    if (part === '[]') node = node?.items;
    else node = node?.properties?.[part];
  }
  assert.ok(node, `the schema has no ${path}`);
  return node;
}

type LayoutItem = string | { key?: string; type?: string; items?: LayoutItem[]; [option: string]: unknown };

function walkLayout(items: LayoutItem[], visit: (item: LayoutItem) => void): void {
  for (const item of items) {
    visit(item);
    if (typeof item === 'object' && Array.isArray(item.items)) walkLayout(item.items, visit);
  }
}

/** Every property path of the schema: `cameras[].onvif.host`; arrays of objects also as `cameras[]`. */
function schemaPaths(schema: JsonSchema, prefix = ''): Array<[string, JsonSchema]> {
  const out: Array<[string, JsonSchema]> = [];
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.push([path, child]);
    if (child.type === 'object') out.push(...schemaPaths(child, path));
    if (child.type === 'array' && child.items?.type === 'object') out.push(...schemaPaths(child.items, `${path}[]`));
  }
  return out;
}

/** The settings the schema has that a person sets: no objects, no arrays of objects. */
function leafPaths(): string[] {
  return schemaPaths(root)
    .filter(([, s]) => s.type !== 'object' && !(s.type === 'array' && s.items?.type === 'object'))
    .map(([path]) => path);
}

describe('config form: array entries', () => {
  const arrays = schemaPaths(root).filter(([, s]) => s.type === 'array' && s.items?.type === 'object');

  it('lays out each array of objects as one container keyed "<array>[]", so one item saves as one entry', () => {
    assert.deepEqual(arrays.map(([path]) => path).sort(), ['cameras', 'ice.turnServers', 'scaleOut.janus', 'viewers']);
    const found = new Map<string, LayoutItem[]>();
    walkLayout((file.layout ?? []) as LayoutItem[], (item) => {
      if (typeof item === 'object' && item.type === 'array' && typeof item.key === 'string') found.set(item.key, item.items ?? []);
    });
    for (const [path] of arrays) {
      const items = found.get(path);
      assert.ok(items, `${path} has no array in the layout`);
      // Anything else beside the keyed container (a bare field, a keyless section) becomes an entry of its own.
      assert.equal(items.length, 1, `${path}: the layout item must be a single container`);
      const [container] = items;
      assert.ok(typeof container === 'object', `${path}: the layout item must be a container`);
      assert.equal(container.key, `${path}[]`);
      assert.match(String(container['title']), /\{\{ value\.\w+ \|\| 'New [^']+' \}\}/, `${path}: entries are titled by their name`);
    }
  });

  it('keeps defaults out of array items (the form would keep its pre-filled empty item alive with them)', () => {
    const defaultsIn = (schema: JsonSchema, path: string): string[] => [
      ...(schema.default !== undefined ? [path] : []),
      ...Object.entries(schema.properties ?? {}).flatMap(([key, child]) => defaultsIn(child, `${path}.${key}`)),
      ...(schema.items ? defaultsIn(schema.items, `${path}[]`) : []),
    ];
    for (const [path, schema] of arrays) assert.deepEqual(defaultsIn(schema.items!, `${path}[]`), []);
  });

  it('hides the checkboxes of an entry until it has a name (a rendered checkbox saves false)', () => {
    const conditions = new Map<string, string>();
    walkLayout((file.layout ?? []) as LayoutItem[], (item) => {
      if (typeof item !== 'object') return;
      const body = (item['condition'] as { functionBody?: string } | undefined)?.functionBody;
      if (!body) return;
      const keys: string[] = [];
      walkLayout([item], (inner) => {
        const key = typeof inner === 'string' ? inner : inner.key;
        if (key) keys.push(key);
      });
      for (const key of keys) conditions.set(key, body);
    });
    for (const [path, schema] of schemaPaths(root)) {
      if (schema.type !== 'boolean' || !/^(cameras|viewers|ice\.turnServers)\[\]/.test(path)) continue;
      const body = conditions.get(path);
      assert.ok(body, `${path} is shown on an empty entry`);
      assert.match(body, /\.(name|username)\)/, path);
    }
  });

  it('accepts the empty entries the form starts with, and rejects a started entry that is incomplete', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addVocabulary([...FORM_KEYWORDS]);
    const valid = (path: string, value: unknown): boolean => ajv.validate(prop(root, path), value);
    for (const path of ['cameras.[]', 'viewers.[]', 'ice.turnServers.[]']) assert.equal(valid(path, {}), true, path);
    // A camera with neither an RTSP address nor ONVIF is not a camera.
    assert.equal(valid('cameras.[]', { name: 'Porch' }), false);
    assert.equal(valid('cameras.[]', { name: 'Porch', onvif: { port: 80 } }), false);
    assert.equal(valid('cameras.[]', { rtspUrl: 'rtsp://192.168.0.20/live1.sdp' }), false);
    assert.equal(valid('cameras.[]', { name: 'Porch', rtspUrl: 'rtsp://192.168.0.20/live1.sdp' }), true);
    assert.equal(valid('cameras.[]', { name: 'Porch', onvif: { host: '192.168.0.20' } }), true);
    assert.equal(valid('viewers.[]', { username: 'family' }), false);
    assert.equal(valid('viewers.[]', { username: 'family', password: 'a long passphrase' }), true);
    assert.equal(valid('ice.turnServers.[]', { username: 'u' }), false);
  });

  it('ignores empty entries silently, and the demo camera still stands in', () => {
    const result = load({
      cameras: [{}, { audio: true, transport: 'auto', onvif: { port: 80 } }, { alwaysOn: false, external: false, motion: false, name: '' }],
      viewers: [{}, { admin: false, cameras: [] }, { username: '', password: '' }],
      ice: { turnServers: [{}, { urls: '' }] },
    });
    assert.deepEqual(result.messages, []);
    assert.deepEqual(result.config.cameras.map((c) => c.id), ['demo']);
    assert.deepEqual(result.config.viewers, []);
    assert.deepEqual(result.config.ice.turnServers, []);
  });

  it('keeps the positions of the other entries in its messages', () => {
    const result = load({ cameras: [{}, { rtspUrl: 'rtsp://192.168.0.20/live1.sdp' }], viewers: [{ admin: false }, { username: 'family' }] });
    assert.deepEqual(result.config.cameras, []);
    const texts = result.messages.map((m) => m.text);
    assert.ok(texts.some((t) => /^Camera #2 \(cameras\[1\]\): name is required — e\.g\. Front Door\. This camera is skipped/.test(t)), texts.join('\n'));
    assert.ok(texts.some((t) => /^Viewer 'family' \(viewers\[1\]\): password is required/.test(t)), texts.join('\n'));
  });

  it('treats a value that differs from the default as content', () => {
    assert.equal(isBlankEntry({ audio: true }, CAMERA_DEFAULTS), true);
    assert.equal(isBlankEntry({ audio: false }, CAMERA_DEFAULTS), false);
    assert.equal(isBlankEntry({ onvif: { port: 80 } }, { onvif: ONVIF_DEFAULTS }), true);
    assert.equal(isBlankEntry({ onvif: { port: 8000 } }, { onvif: ONVIF_DEFAULTS }), false);
    assert.equal(isBlankEntry({ admin: true }, VIEWER_DEFAULTS), false);
    const result = load({ cameras: [{ audio: false }] });
    assert.match(result.messages[0]?.text ?? '', /^Camera #1 \(cameras\[0\]\): name is required/);
  });

  it('reads the recording box the form shows but nobody ticked as blank, and a ticked one as content', () => {
    assert.equal(isBlankEntry({ recording: { enabled: false } }, CAMERA_BLANK_DEFAULTS), true);
    assert.equal(isBlankEntry({ recording: { enabled: true } }, CAMERA_BLANK_DEFAULTS), false);
    assert.equal(isBlankEntry({ recording: { enabled: false, prebufferSeconds: 6 } }, CAMERA_BLANK_DEFAULTS), false);
    const untouched = load({ cameras: [{ audio: true, motion: false, motionHttpTrigger: false, doorbell: { enabled: false }, recording: { enabled: false } }] });
    assert.deepEqual(untouched.messages, []);
    assert.deepEqual(untouched.config.cameras.map((c) => c.id), ['demo']);
  });

  it('still applies the defaults the schema no longer holds', () => {
    const [camera] = load({ cameras: [{ name: 'Porch', onvif: { host: '192.168.0.20' } }], viewers: [{ username: 'family', password: 'a long passphrase' }] }).config.cameras;
    assert.ok(camera);
    assert.equal(camera.onvif?.port, 80);
    assert.deepEqual(
      [camera.audio, camera.transport, camera.alwaysOn, camera.external, camera.motion, camera.motionHttpTrigger, camera.motionResetSeconds, camera.maxViewers, camera.maxHomeKitStreams],
      [true, 'auto', false, false, false, false, 30, 10, 4],
    );
    const viewers = load({ viewers: [{ username: 'family', password: 'a long passphrase' }] }).config.viewers;
    assert.deepEqual(viewers, [{ username: 'family', password: 'a long passphrase', cameras: [], admin: false, ptz: false, talk: false }]);
  });
});

describe('config form: fields', () => {
  it('renders every bounded number as a plain number input, not a slider', () => {
    const typed = new Map<string, string | undefined>();
    walkLayout((file.layout ?? []) as LayoutItem[], (item) => {
      if (typeof item === 'string') typed.set(item, undefined);
      else if (typeof item.key === 'string') typed.set(item.key, item.type);
    });
    const bounded = schemaPaths(root).filter(([, s]) => (s.type === 'integer' || s.type === 'number') && s['minimum'] !== undefined && s['maximum'] !== undefined);
    assert.ok(bounded.length >= 10);
    for (const [path] of bounded) assert.equal(typed.get(path), 'number', `${path} would render as a slider`);
  });

  it('has no text that the form would take for an HTML tag', () => {
    const texts: Array<[string, string]> = [
      ['headerDisplay', String((file as unknown as Record<string, unknown>)['headerDisplay'])],
      ['footerDisplay', String((file as unknown as Record<string, unknown>)['footerDisplay'])],
    ];
    for (const [path, schema] of schemaPaths(root)) {
      for (const key of ['title', 'description', 'placeholder'] as const) {
        if (typeof schema[key] === 'string') texts.push([`${path}.${key}`, schema[key]]);
      }
    }
    for (const [where, text] of texts) assert.doesNotMatch(text, /<[^>]*>/, where);
  });

  it('does not suggest a log-in inside the RTSP address', () => {
    const header = String((file as unknown as Record<string, unknown>)['headerDisplay']);
    const url = prop(root, 'cameras.[].rtspUrl');
    for (const text of [header, String(url.description), String(url.placeholder)]) assert.doesNotMatch(text, /rtsps?:\/\/[^\s/]*@/);
    assert.match(String(url.description), /user name and password fields/);
  });

  it('offers the pre-buffer HomeKit accepts, names its default, and explains every motion source', () => {
    const seconds = prop(root, 'cameras.[].recording.prebufferSeconds');
    assert.deepEqual([seconds['minimum'], seconds['maximum']], [PREBUFFER_SECONDS.min, PREBUFFER_SECONDS.max]);
    assert.equal(seconds.placeholder, String(PREBUFFER_SECONDS.default));
    assert.match(String(seconds.description), new RegExp(`Empty: ${PREBUFFER_SECONDS.default}\\.$`));
    const source = prop(root, 'cameras.[].recording.motionSource');
    assert.deepEqual(source.enum, ['onvif', 'http', 'video', 'none']);
    for (const value of source.enum) assert.match(String(source.description), new RegExp(`\\b${String(value)}: `), String(value));
  });

  it('accepts a share-link expiry of "never" and gives new links no end', () => {
    const result = load({ shareLinks: { defaultExpiry: 'never' } });
    assert.deepEqual(result.messages, []);
    assert.deepEqual(result.config.shareLinks, { defaultExpiry: 'never', defaultExpiryMs: null });
    assert.equal(load({}).config.shareLinks.defaultExpiryMs, 86_400_000);
  });
});

/** The README's settings table: its rows, the keys named in the first column and the sub-keys in the third. */
function readmeSettings(): Array<{ keys: string[]; subKeys: string[] }> {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### Settings'));
  const rows = section.slice(0, section.indexOf('\n\n', section.indexOf('| ---'))).split('\n').filter((line) => line.startsWith('| `'));
  assert.ok(rows.length >= 20, 'the README settings table was not found');
  return rows.map((row) => {
    const [, first = '', , third = ''] = row.split('|');
    const named = [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
    // `cameras[].name`, `id`: the later keys are siblings of the first.
    const base = (named[0] ?? '').replace(/[^.]*$/, '');
    const keys = named.map((key, i) => (i === 0 || key.includes('.') ? key : `${base}${key}`));
    const subKeys = [...third.matchAll(/`([^`]+)`/g)].flatMap((m) => (m[1] ?? '').replace(/[{}]/g, '').split(/,\s*/)).filter((key) => /^[a-z][A-Za-z]+$/.test(key));
    return { keys, subKeys };
  });
}

describe('README settings table', () => {
  const paths = new Map(schemaPaths(root));
  const leaves = leafPaths();

  it('names only settings the schema has', () => {
    for (const { keys, subKeys } of readmeSettings()) {
      for (const key of keys) assert.ok(paths.has(key.replace(/\[\]$/, '')), `the README documents '${key}', which the schema does not have`);
      const [key] = keys;
      const node = key ? paths.get(key.replace(/\[\]$/, '')) : undefined;
      const container = node?.type === 'array' ? node.items : node;
      if (container?.type !== 'object') continue;
      for (const sub of subKeys) {
        const known = paths.has(`${key}.${sub}`) || [...paths.keys()].some((p) => p.startsWith(`${key}.`) && p.endsWith(`.${sub}`));
        assert.ok(known, `the README's '${key}' row names '${sub}', which the schema does not have there`);
      }
    }
  });

  it('documents every setting the schema has', () => {
    const documented = new Set<string>();
    for (const { keys, subKeys } of readmeSettings()) {
      for (const key of keys) documented.add(key.replace(/\[\]$/, ''));
      const [key] = keys;
      if (!key) continue;
      for (const leaf of leaves) {
        if (leaf.startsWith(`${key}.`) && subKeys.includes(leaf.slice(leaf.lastIndexOf('.') + 1))) documented.add(leaf);
      }
    }
    const missing = leaves.filter((leaf) => !documented.has(leaf));
    assert.deepEqual(missing, [], `settings missing from the README table: ${missing.join(', ')}`);
  });
});
