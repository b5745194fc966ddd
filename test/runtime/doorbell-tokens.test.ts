// The doorbell trigger's secrets: made once per camera, private on disk, the same after a restart,
// one per camera even when cameras start at the same time.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { DOORBELL_TOKEN_FILE, DoorbellTokens } from '../../src/runtime/doorbell-tokens.js';
import { STORAGE_FOLDER } from '../../src/util/storage.js';

describe('DoorbellTokens', () => {
  const dirs: string[] = [];
  after(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('makes a long random token per camera once, keeps it (mode 0600) and gives it back after a restart', async () => {
    const storage = await mkdtemp(path.join(tmpdir(), 'doorbell-tokens-'));
    dirs.push(storage);
    const first = new DoorbellTokens(storage);
    // Two cameras at once: neither write may lose the other's token.
    const [front, back] = await Promise.all([first.tokenFor('front'), first.tokenFor('back')]);
    assert.equal(front.created, true);
    assert.equal(back.created, true);
    assert.match(front.token, /^[A-Za-z0-9_-]{32}$/);
    assert.notEqual(front.token, back.token);
    const file = path.join(storage, STORAGE_FOLDER, DOORBELL_TOKEN_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { front: front.token, back: back.token });
    const again = await new DoorbellTokens(storage).tokenFor('front');
    assert.deepEqual(again, { token: front.token, created: false, file });
  });

  it('refuses a damaged file instead of replacing every address', async () => {
    const storage = await mkdtemp(path.join(tmpdir(), 'doorbell-tokens-'));
    dirs.push(storage);
    const tokens = new DoorbellTokens(storage);
    await tokens.tokenFor('front');
    await writeFile(path.join(storage, STORAGE_FOLDER, DOORBELL_TOKEN_FILE), '[1, 2]');
    await assert.rejects(new DoorbellTokens(storage).tokenFor('front'), /damaged/);
  });

  it('prune forgets cameras no longer configured with a trigger: adding one back makes a new secret', async () => {
    const storage = await mkdtemp(path.join(tmpdir(), 'doorbell-tokens-'));
    dirs.push(storage);
    const before = new DoorbellTokens(storage);
    const [front, back] = await Promise.all([before.tokenFor('front'), before.tokenFor('back')]);
    // Restart: 'back' was deleted (or its httpTrigger turned off).
    const restarted = new DoorbellTokens(storage);
    assert.equal(await restarted.prune(['front']), 1);
    assert.deepEqual(JSON.parse(await readFile(path.join(storage, STORAGE_FOLDER, DOORBELL_TOKEN_FILE), 'utf8')), { front: front.token });
    assert.deepEqual(await restarted.tokenFor('front'), { token: front.token, created: false, file: front.file });
    const again = await restarted.tokenFor('back');
    assert.equal(again.created, true);
    assert.notEqual(again.token, back.token, 'the old address does not come back');
    assert.equal(await restarted.prune(['front', 'back']), 0);
  });

  it('prune makes no file when there is none', async () => {
    const storage = await mkdtemp(path.join(tmpdir(), 'doorbell-tokens-'));
    dirs.push(storage);
    assert.equal(await new DoorbellTokens(storage).prune([]), 0);
    await assert.rejects(stat(path.join(storage, STORAGE_FOLDER, DOORBELL_TOKEN_FILE)), { code: 'ENOENT' });
  });
});
