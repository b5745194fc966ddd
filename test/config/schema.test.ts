import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { PATTERN_HINTS, genericPath } from '../../src/config/errors.js';
import { findSchemaFile, readPluginVersion, readSchemaFile, type JsonSchema } from '../../src/config/schema-file.js';
import { FORM_KEYWORDS, SchemaValidator } from '../../src/config/validator.js';
import { CONNECTING_LIMIT_CEILING, WEB_DEFAULT_CONNECTING_LIMIT, WEB_DEFAULT_VIEWS_LIMIT } from '../../src/config/view-limits.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const file = readSchemaFile();

/** Every property path of the schema in the form's notation: `cameras[].onvif.host`, `ice.stunServers[]`. */
function schemaPaths(schema: JsonSchema, prefix = ''): Map<string, JsonSchema> {
  const out = new Map<string, JsonSchema>();
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    out.set(path, child);
    if (child.type === 'object') for (const [p, s] of schemaPaths(child, path)) out.set(p, s);
    if (child.type === 'array' && child.items) {
      out.set(`${path}[]`, child.items);
      if (child.items.type === 'object') for (const [p, s] of schemaPaths(child.items, `${path}[]`)) out.set(p, s);
    }
  }
  return out;
}

function layoutKeys(items: unknown[]): string[] {
  const keys: string[] = [];
  for (const item of items) {
    if (typeof item === 'string') keys.push(item);
    else if (item && typeof item === 'object') {
      const { key, items: children } = item as { key?: unknown; items?: unknown };
      if (typeof key === 'string') keys.push(key);
      if (Array.isArray(children)) keys.push(...layoutKeys(children));
    }
  }
  return keys;
}

function patterns(schema: JsonSchema, segments: Array<string | number> = []): string[] {
  const found: string[] = [];
  if (typeof schema.pattern === 'string') found.push(genericPath(segments));
  for (const [key, child] of Object.entries(schema.properties ?? {})) found.push(...patterns(child, [...segments, key]));
  if (schema.items) found.push(...patterns(schema.items, [...segments, 0]));
  return found;
}

describe('config.schema.json', () => {
  it('declares the Homebridge platform', () => {
    assert.equal(file.pluginAlias, 'WebRTCCameras');
    assert.equal(file.pluginType, 'platform');
    assert.equal((file as unknown as { singular: unknown }).singular, true);
    assert.equal(findSchemaFile(), join(ROOT, 'config.schema.json'));
  });

  it('compiles in ajv strict mode (only the form keywords are extra)', () => {
    // strictRequired off: the `then` rules of array items name properties declared beside `if`.
    const ajv = new Ajv({ strict: true, strictTypes: false, strictRequired: false, useDefaults: true, allErrors: true });
    ajv.addVocabulary([...FORM_KEYWORDS]);
    const validate = ajv.compile(file.schema);
    assert.equal(validate({ platform: 'WebRTCCameras', cameras: [{ name: 'A', rtspUrl: 'rtsp://h/x' }] }), true, JSON.stringify(validate.errors));
  });

  it('gives every field a title, and every camera field a description or placeholder', () => {
    for (const [path, schema] of schemaPaths(file.schema)) {
      assert.ok(schema.title, `${path} has no title`);
      if (path.startsWith('cameras[].') && !path.startsWith('cameras[].onvif.')) {
        assert.ok(schema.description || schema.placeholder, `${path} has neither description nor placeholder`);
      }
    }
  });

  it('has a human hint for every pattern, and no hint without a pattern', () => {
    const withPattern = patterns(file.schema).sort();
    assert.deepEqual(Object.keys(PATTERN_HINTS).sort(), withPattern);
    for (const hint of Object.values(PATTERN_HINTS)) assert.match(hint, / — e\.g\. \S/);
  });

  it('places every field in the layout, and only fields that exist', () => {
    const paths = schemaPaths(file.schema);
    const keys = layoutKeys(file.layout ?? []);
    for (const key of keys) assert.ok(paths.has(key), `layout names '${key}', which the schema does not have`);
    const shown = new Set(keys);
    for (const [path, schema] of paths) {
      if (schema.type === 'object' || path.endsWith('[]')) continue;
      const arrayOfObjects = schema.type === 'array' && schema.items?.type === 'object';
      if (arrayOfObjects) continue; // its item fields are checked one by one
      assert.ok(shown.has(path) || shown.has(`${path}[]`), `'${path}' is missing from the layout`);
    }
  });

  it('marks every password field as a password input', () => {
    for (const [path, schema] of schemaPaths(file.schema)) {
      if (/(password|credential)$/.test(path)) assert.deepEqual(schema['x-schema-form'], { type: 'password' }, path);
    }
  });

  it('has section defaults that validate', () => {
    const validator = new SchemaValidator(file.schema);
    for (const key of ['discovery', 'web', 'shareLinks', 'ice', 'ffmpeg', 'restream']) {
      const schema = file.schema.properties?.[key];
      assert.ok(schema, key);
      assert.equal(typeof validator.defaults(schema), 'object');
    }
    assert.deepEqual(validator.defaults(file.schema.properties!['web']!), { port: 8090, bind: '0.0.0.0', tls: { selfSigned: false } });
  });

  it('says the viewer caps the loader fills in, and stops web.maxConnectingViews at the limiter\'s ceiling', () => {
    const web = file.schema.properties!['web']!.properties!;
    for (const key of ['maxViewsPerUser', 'maxViewsPerAddress', 'maxConnectingViews']) {
      assert.equal(web[key]!['default'], undefined, `${key}: no schema default (the settings form would save it)`);
    }
    for (const key of ['maxViewsPerUser', 'maxViewsPerAddress']) {
      assert.equal(web[key]!['placeholder'], String(WEB_DEFAULT_VIEWS_LIMIT), key);
      assert.match(String(web[key]!['description']), new RegExp(`Empty: ${WEB_DEFAULT_VIEWS_LIMIT}\\.$`), key);
    }
    const connecting = web['maxConnectingViews']!;
    assert.equal(connecting['placeholder'], String(WEB_DEFAULT_CONNECTING_LIMIT));
    assert.match(String(connecting['description']), new RegExp(`At most ${CONNECTING_LIMIT_CEILING}\\. Empty: ${WEB_DEFAULT_CONNECTING_LIMIT}\\.$`));
    assert.equal(connecting['minimum'], 1);
    assert.equal(connecting['maximum'], CONNECTING_LIMIT_CEILING);
  });

  it('is found from a build directory too (walks up to the package root)', () => {
    assert.equal(findSchemaFile(join(ROOT, 'dist', 'config')), join(ROOT, 'config.schema.json'));
    const lonely = mkdtempSync(join(tmpdir(), 'schema-'));
    mkdirSync(join(lonely, 'a', 'b'), { recursive: true });
    writeFileSync(join(lonely, 'config.schema.json'), '{}');
    assert.throws(() => findSchemaFile(join(lonely, 'a', 'b')), /config\.schema\.json was not found/);
  });

  it('reads the plugin version', () => {
    assert.match(readPluginVersion(), /^\d+\.\d+\.\d+/);
  });
});
