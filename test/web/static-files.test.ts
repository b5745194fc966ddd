// The page's assets: loaded from a listing (no request path ever touches the file system), typed,
// tagged; and answered with revalidation.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadStaticAssets, sendAsset, type StaticAsset } from '../../src/web/static-files.js';

describe('loadStaticAssets', () => {
  let dir: string;
  let outside: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'static-'));
    outside = mkdtempSync(join(tmpdir(), 'static-outside-'));
    writeFileSync(join(outside, 'secret.txt'), 'not for the web');
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(join(dir, 'app.JS'), 'main();');
    writeFileSync(join(dir, '.env'), 'PASSWORD=x');
    writeFileSync(join(dir, 'notes.md'), '# not served: unknown type');
    writeFileSync(join(dir, 'config.ts'), 'source');
    mkdirSync(join(dir, 'a/b/c/d'), { recursive: true });
    writeFileSync(join(dir, 'a/b/c/deep.css'), 'body{}');
    writeFileSync(join(dir, 'a/b/c/d/too-deep.css'), 'body{}');
    mkdirSync(join(dir, '.hidden'));
    writeFileSync(join(dir, '.hidden/x.js'), 'x');
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'link.txt'));
    symlinkSync(outside, join(dir, 'linked-dir'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('serves regular files of known types, by relative name, to three directories deep', async () => {
    const assets = await loadStaticAssets(dir);
    assert.deepEqual([...assets.keys()].sort(), ['a/b/c/deep.css', 'app.JS', 'index.html']);
    assert.equal(assets.get('index.html')!.contentType, 'text/html; charset=utf-8');
    assert.equal(assets.get('app.JS')!.contentType, 'text/javascript; charset=utf-8', 'the extension is compared without case');
  });

  it('skips dotfiles, hidden folders, unknown types and symlinks (files or folders)', async () => {
    const names = [...(await loadStaticAssets(dir)).keys()];
    for (const name of names) assert.doesNotMatch(name, /^\.|\/\.|\.env|\.md$|\.ts$|link/);
  });

  it('tags each asset by its content', async () => {
    const assets = await loadStaticAssets(dir);
    const etag = assets.get('a/b/c/deep.css')!.etag;
    assert.match(etag, /^"[A-Za-z0-9_-]{22}"$/);
    writeFileSync(join(dir, 'a/b/c/deep.css'), 'body{color:red}');
    assert.notEqual((await loadStaticAssets(dir)).get('a/b/c/deep.css')!.etag, etag);
  });
});

describe('sendAsset', () => {
  const asset: StaticAsset = { body: Buffer.from('main();'), contentType: 'text/javascript; charset=utf-8', etag: '"abc"' };

  function send(headers: Record<string, string>, method = 'GET') {
    const set = new Map<string, unknown>();
    const out = { status: 0, body: undefined as unknown };
    const res = {
      set statusCode(value: number) {
        out.status = value;
      },
      setHeader: (name: string, value: unknown) => set.set(name.toLowerCase(), value),
      end: (body?: unknown) => {
        out.body = body;
      },
    } as unknown as ServerResponse;
    sendAsset({ headers, method } as IncomingMessage, res, asset);
    return { ...out, headers: set };
  }

  it('sends the body with its type, ETag and no-cache (always revalidated)', () => {
    const r = send({});
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.equal(r.headers.get('etag'), '"abc"');
    assert.equal(r.headers.get('content-length'), 7);
    assert.equal(String(r.body), 'main();');
  });

  it('answers 304 without a body when any listed tag matches', () => {
    const r = send({ 'if-none-match': '"old", "abc"' });
    assert.equal(r.status, 304);
    assert.equal(r.body, undefined);
    assert.equal(send({ 'if-none-match': '"abcd"' }).status, 200, 'a tag must match exactly');
    assert.equal(send({ 'if-none-match': 'W/"abc"' }).status, 200, 'a weak tag is a different tag');
  });

  it('HEAD gets the headers only', () => {
    const r = send({}, 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), 7);
    assert.equal(r.body, undefined);
  });
});
