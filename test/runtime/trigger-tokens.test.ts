// The web triggers' secrets: made once per camera and kind, private on disk, the same after a
// restart, one per camera even when cameras start at the same time; a doorbell-tokens.json written
// before triggers were generic keeps every doorbell address; motion secrets are apart from them.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { TriggerTokens, triggerTokenFile, wantsWebTrigger } from '../../src/runtime/trigger-tokens.js';
import { loadConfig } from '../../src/config/load-config.js';
import { STORAGE_FOLDER } from '../../src/util/storage.js';

const DOORBELL_TOKEN_FILE = triggerTokenFile('doorbell');

describe('TriggerTokens', () => {
  const dirs: string[] = [];
  after(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('makes a long random token per camera once, keeps it (mode 0600) and gives it back after a restart', async () => {
    const storage = await mkdtemp(path.join(tmpdir(), 'trigger-tokens-'));
    dirs.push(storage);
    const first = new TriggerTokens(storage, 'doorbell');
    // Two cameras at once: neither write may lose the other's token.
    const [front, back] = await Promise.all([first.tokenFor('front'), first.tokenFor('back')]);
    assert.equal(front.created, true);
    assert.equal(back.created, true);
    assert.match(front.token, /^[A-Za-z0-9_-]{32}$/);
    assert.notEqual(front.token, back.token);
    const file = path.join(storage, STORAGE_FOLDER, DOORBELL_TOKEN_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { front: front.token, back: back.token });
    const again = await new TriggerTokens(storage, 'doorbell').tokenFor('front');
    assert.deepEqual(again, { token: front.token, created: false, file });
  });

  it('refuses a damaged file instead of replacing every address', async () => {
    const storage = await mkdtemp(path.join(tmpdir(), 'trigger-tokens-'));
    dirs.push(storage);
    const tokens = new TriggerTokens(storage, 'doorbell');
    await tokens.tokenFor('front');
    await writeFile(path.join(storage, STORAGE_FOLDER, DOORBELL_TOKEN_FILE), '[1, 2]');
    await assert.rejects(new TriggerTokens(storage, 'doorbell').tokenFor('front'), /damaged/);
  });

  it('prune forgets cameras no longer configured with a trigger: adding one back makes a new secret', async () => {
    const storage = await mkdtemp(path.join(tmpdir(), 'trigger-tokens-'));
    dirs.push(storage);
    const before = new TriggerTokens(storage, 'doorbell');
    const [front, back] = await Promise.all([before.tokenFor('front'), before.tokenFor('back')]);
    // Restart: 'back' was deleted (or its httpTrigger turned off).
    const restarted = new TriggerTokens(storage, 'doorbell');
    assert.equal(await restarted.prune(['front']), 1);
    assert.deepEqual(JSON.parse(await readFile(path.join(storage, STORAGE_FOLDER, DOORBELL_TOKEN_FILE), 'utf8')), { front: front.token });
    assert.deepEqual(await restarted.tokenFor('front'), { token: front.token, created: false, file: front.file });
    const again = await restarted.tokenFor('back');
    assert.equal(again.created, true);
    assert.notEqual(again.token, back.token, 'the old address does not come back');
    assert.equal(await restarted.prune(['front', 'back']), 0);
  });

  it('keeps the doorbell file name and reads a file written before triggers were generic, token for token', async () => {
    assert.equal(DOORBELL_TOKEN_FILE, 'doorbell-tokens.json');
    const storage = await mkdtemp(path.join(tmpdir(), 'trigger-tokens-'));
    dirs.push(storage);
    // As the plugin wrote it before (one doorbell address already typed into the camera).
    const old = 'Zx9_-' + 'q'.repeat(27);
    await mkdir(path.join(storage, STORAGE_FOLDER), { recursive: true });
    const file = path.join(storage, STORAGE_FOLDER, 'doorbell-tokens.json');
    await writeFile(file, `${JSON.stringify({ door: old }, null, 2)}\n`, { mode: 0o600 });
    const tokens = new TriggerTokens(storage, 'doorbell');
    assert.equal(await tokens.prune(['door']), 0, 'the configured doorbell keeps its entry');
    assert.deepEqual(await tokens.tokenFor('door'), { token: old, created: false, file });
    // The motion secret of the same camera is another one, in its own file; the doorbell file is untouched.
    const motion = await new TriggerTokens(storage, 'motion').tokenFor('door');
    assert.equal(motion.created, true);
    assert.notEqual(motion.token, old);
    assert.equal(motion.file, path.join(storage, STORAGE_FOLDER, 'motion-tokens.json'));
    assert.equal((await stat(motion.file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { door: old });
    // Pruning motion secrets leaves the doorbell's alone.
    assert.equal(await new TriggerTokens(storage, 'motion').prune([]), 1);
    assert.deepEqual(await new TriggerTokens(storage, 'doorbell').tokenFor('door'), { token: old, created: false, file });
  });

  it('wantsWebTrigger follows each kind\'s setting', () => {
    const { config } = loadConfig({ platform: 'WebRTCCameras', cameras: [
      { name: 'Door', rtspUrl: 'rtsp://127.0.0.1:1/x', doorbell: { enabled: true, httpTrigger: true } },
      { name: 'Yard', rtspUrl: 'rtsp://127.0.0.1:1/y', motionHttpTrigger: true },
      { name: 'Plain', rtspUrl: 'rtsp://127.0.0.1:1/z', doorbell: true },
    ] });
    assert.deepEqual(config.cameras.map((c) => [c.id, wantsWebTrigger(c, 'doorbell'), wantsWebTrigger(c, 'motion')]), [
      ['door', true, false], ['yard', false, true], ['plain', false, false],
    ]);
  });

  it('prune makes no file when there is none', async () => {
    const storage = await mkdtemp(path.join(tmpdir(), 'trigger-tokens-'));
    dirs.push(storage);
    assert.equal(await new TriggerTokens(storage, 'doorbell').prune([]), 0);
    await assert.rejects(stat(path.join(storage, STORAGE_FOLDER, DOORBELL_TOKEN_FILE)), { code: 'ENOENT' });
  });
});
