// The last good snapshot kept on disk: where and how it is written (atomic, private, at most once per
// interval with the newest picture), read back at start, and a damaged or foreign file ignored.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pruneSavedSnapshots, SnapshotStore } from '../../src/snapshots/snapshot-store.js';
import type { Logger } from '../../src/util/logger.js';
import { makeTestJpeg } from '../helpers/onvif-responder.js';
import { FakeTime } from '../helpers/fake-time.js';

const START = Date.UTC(2026, 0, 2, 3, 4, 5);

function recordingLog(): Logger & { debugLines: string[] } {
  const debugLines: string[] = [];
  return { debugLines, info: () => undefined, warn: () => undefined, error: () => undefined, debug: (m: string) => debugLines.push(m) };
}

describe('snapshot store', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  async function storage(): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'snap-store-'));
    dirs.push(dir);
    return dir;
  }
  function store(storagePath: string, time: FakeTime, log: Logger = recordingLog()): SnapshotStore {
    return new SnapshotStore({ storagePath, cameraId: 'front-door', log, now: time.clock, timers: time, minIntervalMs: 30_000 });
  }

  it('writes the first picture at once, privately, under webrtc-cameras/snapshots, dated when it was taken', async () => {
    const dir = await storage();
    const time = new FakeTime();
    time.now = START;
    const jpeg = await makeTestJpeg(64, 48);
    const one = store(dir, time);
    one.offer(jpeg, START - 5000);
    await one.written();
    const file = path.join(dir, 'webrtc-cameras', 'snapshots', 'front-door.jpg');
    assert.equal(one.file, file);
    assert.deepEqual(await readFile(file), jpeg);
    const info = await stat(file);
    assert.equal(info.mode & 0o777, 0o600);
    assert.equal((await stat(path.dirname(file))).mode & 0o777, 0o700);
    assert.equal(Math.round(info.mtimeMs), START - 5000);
    // Only the picture: no temp file left beside it.
    assert.deepEqual(await readdir(path.dirname(file)), ['front-door.jpg']);

    // The next start reads it back with its capture time.
    const two = store(dir, new FakeTime());
    const saved = await two.last();
    assert.deepEqual(saved?.image, jpeg);
    assert.equal(Math.round(saved!.capturedAt), START - 5000);
  });

  it('writes at most once per interval: the newest picture offered in between is written when it is over', async () => {
    const dir = await storage();
    const time = new FakeTime();
    time.now = START;
    const log = recordingLog();
    const s = store(dir, time, log);
    const [a, b, c] = await Promise.all([makeTestJpeg(32, 32), makeTestJpeg(48, 32), makeTestJpeg(64, 32)]);
    s.offer(a);
    await s.written();
    const saves = (): number => log.debugLines.filter((l) => l.includes('saved the last good picture')).length;
    assert.equal(saves(), 1);
    await time.advance(10_000);
    s.offer(b);
    await time.advance(5_000);
    s.offer(c);
    // In memory at once, on disk not yet.
    assert.deepEqual((await s.last())?.image, c);
    await s.written();
    assert.equal(saves(), 1);
    assert.deepEqual(await readFile(s.file), a);
    await time.advance(14_999);
    await s.written();
    assert.equal(saves(), 1, 'nothing before the 30 s are over');
    await time.advance(1);
    await s.written();
    assert.equal(saves(), 2);
    assert.deepEqual(await readFile(s.file), c, 'b was never written: c replaced it while waiting');
    assert.equal(time.pending, 0);
  });

  it('close() writes a picture still waiting for its interval', async () => {
    const dir = await storage();
    const time = new FakeTime();
    time.now = START;
    const s = store(dir, time);
    const [a, b] = await Promise.all([makeTestJpeg(32, 32), makeTestJpeg(48, 32)]);
    s.offer(a);
    await time.advance(1000);
    s.offer(b);
    await s.close();
    assert.deepEqual(await readFile(s.file), b);
    assert.equal(time.pending, 0);
    s.offer(a);
    await s.written();
    assert.deepEqual(await readFile(s.file), b, 'nothing is written after close');
  });

  it('ignores a damaged or foreign file with a clear debug line, and refuses to keep a cut-off picture', async () => {
    const dir = await storage();
    const jpeg = await makeTestJpeg(64, 48);
    const folder = path.join(dir, 'webrtc-cameras', 'snapshots');
    await mkdir(folder, { recursive: true });
    const file = path.join(folder, 'front-door.jpg');
    for (const damaged of [jpeg.subarray(0, jpeg.length - 100), Buffer.from('<html>not a picture</html>'), Buffer.alloc(0)]) {
      await writeFile(file, damaged);
      const log = recordingLog();
      const s = store(dir, new FakeTime(), log);
      assert.equal(await s.last(), undefined);
      assert.ok(log.debugLines.some((l) => /ignoring the saved picture .*front-door\.jpg: it is not a complete JPEG/.test(l)), log.debugLines.join('\n'));
    }
    const time = new FakeTime();
    const s = store(dir, time);
    s.offer(jpeg.subarray(0, jpeg.length - 100));
    assert.equal(await s.last(), undefined);
    // No file at all: nothing, and no debug line (a camera never watched is normal).
    await rm(file);
    const log = recordingLog();
    assert.equal(await store(dir, new FakeTime(), log).last(), undefined);
    assert.deepEqual(log.debugLines, []);
  });

  it('takes only a valid camera id as a file name and an absolute storage path', () => {
    for (const cameraId of ['../secret', 'a/b', 'Front', '', '.hidden', 'x'.repeat(41)]) {
      assert.throws(() => new SnapshotStore({ storagePath: '/tmp', cameraId, log: recordingLog() }), /not a valid camera id/);
    }
    assert.throws(() => new SnapshotStore({ storagePath: 'relative', cameraId: 'ok', log: recordingLog() }), /must be absolute/);
  });

  it('a storage folder it cannot write to costs the saved picture, with a debug line, never an error', async () => {
    const dir = await storage();
    // A file where the folder should be.
    await writeFile(path.join(dir, 'webrtc-cameras'), 'in the way');
    const log = recordingLog();
    const s = store(dir, new FakeTime(), log);
    s.offer(await makeTestJpeg(32, 32));
    await s.written();
    assert.ok(log.debugLines.some((l) => l.startsWith('snapshot: could not save the last good picture')), log.debugLines.join('\n'));
  });
});

describe('pruning saved snapshots', () => {
  it('deletes the pictures (and crash leftovers) of cameras no longer configured, and nothing else', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'snap-prune-'));
    try {
      const folder = path.join(dir, 'webrtc-cameras', 'snapshots');
      await mkdir(folder, { recursive: true });
      const names = ['front.jpg', 'front.jpg.9.00aa11bb.tmp', 'garden.jpg', 'garden.jpg.123.0a1b2c3d.tmp', 'notes.txt', 'Upper.jpg', 'back.jpg'];
      for (const name of names) await writeFile(path.join(folder, name), 'x');
      const log = recordingLog();
      const removed = await pruneSavedSnapshots(dir, ['front', 'back'], log);
      assert.deepEqual(removed.sort(), ['garden.jpg', 'garden.jpg.123.0a1b2c3d.tmp']);
      assert.deepEqual((await readdir(folder)).sort(), ['Upper.jpg', 'back.jpg', 'front.jpg', 'front.jpg.9.00aa11bb.tmp', 'notes.txt'], 'a configured camera\'s temp file may be a write in progress');
      assert.ok(log.debugLines.some((l) => l.includes('deleted saved pictures no configured camera uses: ')));
      // No folder at all: nothing to do.
      assert.deepEqual(await pruneSavedSnapshots(path.join(dir, 'none'), [], log), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
