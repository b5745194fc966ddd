// Snapshots from the GOP cache of a real camera pipeline (GStreamer fake camera → Source), with the
// still-image fallbacks, the shared decode, the cache and the deadline.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Source } from '../../src/media/source.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SnapshotRegistry, SnapshotService, type StillImageSource } from '../../src/snapshots/snapshot-service.js';
import { SnapshotStore } from '../../src/snapshots/snapshot-store.js';
import { silentLogger } from '../../src/util/logger.js';
import type { SnapshotProvider } from '../../src/web/types.js';
import { makeTestJpeg } from '../helpers/onvif-responder.js';
import { startCameraRig, waitFor, type CameraRig } from '../homekit/camera-rig.js';
import { checkImage } from '../homekit/inspect.js';

function service(source: CameraRig['source'] | Source, ffmpegPath: string | undefined, stillSources: StillImageSource[] = [], extra: Partial<ConstructorParameters<typeof SnapshotService>[0]> = {}): SnapshotService {
  return new SnapshotService({ source, ffmpegPath, stillSources, log: silentLogger, ...extra });
}

describe('snapshot service', { timeout: 180_000 }, () => {
  let rig: CameraRig;
  const closers: Array<() => Promise<void> | void> = [];

  before(async () => {
    rig = await startCameraRig({ width: 640, height: 360, keyframeIntervalFrames: 50, idleTimeoutMs: 2000 });
  });
  after(async () => {
    for (const close of closers) await close();
    await rig?.close();
  });

  it('cold: the first snapshot connects the camera and decodes its first keyframe', async () => {
    assert.equal(rig.source.state.state, 'idle');
    const snapshots = service(rig.source, rig.ffmpeg.path);
    const result = await snapshots.take({ width: 640, height: 360 });
    assert.ok(result);
    assert.equal(result.origin, 'stream');
    const image = await checkImage(result.image);
    assert.deepEqual([image.width, image.height], [640, 360]);
    assert.ok(image.variance > 200);
    console.log(`cold snapshot: ${result.ms.toFixed(0)} ms (camera connect + first keyframe + decode)`);
    assert.ok(result.ms < 4500);
  });

  it('warm: the cached keyframe gives the picture, at any requested size (how fast: bench:homekit)', async () => {
    const hold = rig.source.subscribe({ write: () => true }, { kinds: ['video'] });
    closers.push(() => hold.unsubscribe());
    await waitFor(() => rig.source.stats().gopCacheFrames > 0, 10_000, 'a cached GOP');
    const snapshots = service(rig.source, rig.ffmpeg.path, [], { cacheMs: 0 });
    const times: number[] = [];
    for (const [width, height] of [[320, 180], [480, 270], [1280, 720], [320, 240]] as const) {
      const result = await snapshots.take({ width, height });
      assert.equal(result?.origin, 'stream');
      const image = await checkImage(result!.image);
      assert.deepEqual([image.width, image.height], [width, height]);
      times.push(result!.ms);
    }
    console.log(`warm snapshots: ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
  });

  it('requests that arrive together share one decode; a repeat within the cache time is free', async () => {
    const snapshots = service(rig.source, rig.ffmpeg.path, [], { cacheMs: 3000 });
    const together = await Promise.all(Array.from({ length: 6 }, () => snapshots.take({ width: 320, height: 180 })));
    assert.ok(together.every((r) => r?.image === together[0]!.image), 'the very same picture object');
    const again = await snapshots.take({ width: 320, height: 180 });
    assert.equal(again?.origin, 'cache');
    assert.ok(again!.ms < 5);
  });

  it('a camera that is down: the still-image URL answers, scaled to the request', async () => {
    const down = new Source({ id: 'down', upstream: () => Promise.reject(new Error('connection refused')), logger: silentLogger, backoff: { initialMs: 60_000 } });
    closers.push(() => down.close());
    const jpeg = await makeTestJpeg(800, 600);
    // The camera was idle when asked and refuses once the snapshot starts it: the still image is
    // asked as soon as the Source says 'retrying', not when the fallback timer (here: never) fires.
    const snapshots = service(down, rig.ffmpeg.path, [{ name: 'ONVIF snapshot URI', fetch: () => Promise.resolve(jpeg) }], { fallbackAfterMs: 60_000 });
    const result = await snapshots.take({ width: 320, height: 240 });
    assert.equal(result?.origin, 'ONVIF snapshot URI');
    const image = await checkImage(result!.image);
    assert.deepEqual([image.width, image.height], [320, 240]);
    console.log(`camera down, still image: ${result!.ms.toFixed(0)} ms`);
  });

  it('always answers before the deadline: the last good picture beats an error, nothing at all is undefined', async () => {
    let fetches = 0;
    const jpeg = await makeTestJpeg(320, 240);
    const flaky: StillImageSource = {
      name: 'snapshotUrl',
      fetch: (signal) => {
        fetches++;
        if (fetches === 1) return Promise.resolve(jpeg);
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))); // hangs
      },
    };
    const down = new Source({ id: 'down2', upstream: () => new Promise(() => undefined), logger: silentLogger });
    closers.push(() => down.close());
    const snapshots = service(down, undefined, [flaky], { cacheMs: 0, deadlineMs: 800, fallbackAfterMs: 100 });
    const first = await snapshots.take();
    assert.equal(first?.origin, 'snapshotUrl');
    const second = await snapshots.take();
    assert.equal(second?.origin, 'last good');
    assert.ok(second!.ms >= 700 && second!.ms < 1200, `${second!.ms} ms`);
    assert.equal(second!.image, jpeg);

    const nothing = service(down, undefined, [], { deadlineMs: 300 });
    const started = performance.now();
    assert.equal(await nothing.getSnapshot({ width: 100, height: 100 }), undefined);
    assert.ok(performance.now() - started < 1000);
  });

  it('one registry per shared services: the web provider, dispatching by camera id', async () => {
    // src/runtime makes one registry with the shared services and hands that object to the web
    // server as its provider (no module-level lookup): the web server's seam takes it as is.
    const registry = new SnapshotRegistry();
    const installed: SnapshotProvider[] = [registry];
    assert.ok(installed[0] instanceof SnapshotRegistry);
    const jpeg = await makeTestJpeg(160, 120);
    const a = service(new Source({ id: 'a', upstream: () => new Promise(() => undefined) }), undefined, [{ name: 'a', fetch: () => Promise.resolve(jpeg) }], { fallbackAfterMs: 0 });
    const unregister = registry.register('a', a);
    assert.equal(await installed[0]!.getSnapshot('a', {}), jpeg);
    assert.equal(await installed[0]!.getSnapshot('b', {}), undefined);
    unregister();
    assert.equal(await installed[0]!.getSnapshot('a', {}), undefined);
  });

  it('keeps the stream\'s fresh tile-sized picture in the store; the registry serves it only for a registered camera', async () => {
    const storagePath = await mkdtemp(path.join(tmpdir(), 'snap-service-'));
    closers.push(() => rm(storagePath, { recursive: true, force: true }));
    const store = new SnapshotStore({ storagePath, cameraId: 'front', log: silentLogger });
    const snapshots = service(rig.source, rig.ffmpeg.path, [], { store, cacheMs: 0 });
    // A small picture (Apple Watch, notification) is not kept: it would blur the page's tile.
    const small = await snapshots.take({ width: 320, height: 180 });
    assert.equal(small?.origin, 'stream');
    assert.equal(await store.last(), undefined);
    const result = await snapshots.take({ width: 640, height: 360 });
    assert.equal(result?.origin, 'stream');
    await store.written();
    assert.deepEqual(await readFile(store.file), result!.image, 'the decoded keyframe, byte for byte, on disk');
    await snapshots.close();

    // The next start: a new store reads it; the registry hands it out for registered cameras only.
    const registry = new SnapshotRegistry();
    const next = service(rig.source, rig.ffmpeg.path, [], { store: new SnapshotStore({ storagePath, cameraId: 'front', log: silentLogger }) });
    assert.equal(await registry.savedSnapshot('front'), undefined, 'not registered (removed from the config): not served');
    const unregister = registry.register('front', next);
    const saved = await registry.savedSnapshot('front');
    assert.deepEqual(saved?.image, result!.image);
    assert.ok(Date.now() - saved!.capturedAt < 60_000);
    unregister();
    assert.equal(await registry.savedSnapshot('front'), undefined);
    await next.close();
  });
});
