// A camera's snapshot service as the runtime builds it: its still-image source is the configured
// snapshotUrl, fetched with the URL's own credentials or else the camera's, and the service
// answers from it when there is no ffmpeg to decode the stream.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { loadConfig } from '../../src/config/load-config.js';
import { Source } from '../../src/media/source.js';
import { createCameraSnapshots } from '../../src/runtime/camera-snapshots.js';
import { silentLogger } from '../../src/util/logger.js';
import { serveHttp } from '../helpers/http-server.js';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 0xff, 0xd9]);

/** A still-image endpoint that wants Basic credentials `user:password`. */
function stillImage(user: string, password: string): (req: IncomingMessage, res: ServerResponse) => void {
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  return (req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="camera"' }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(JPEG);
  };
}

describe('runtime: a camera\'s snapshot service', () => {
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of closers) await close();
  });

  async function snapshotFor(camera: Record<string, unknown>): Promise<{ origin: string | undefined; image: Buffer | undefined }> {
    const { config } = loadConfig({ platform: 'WebRTCCameras', cameras: [{ name: 'Porch', ...camera }] });
    const cameraConfig = config.cameras[0]!;
    const source = new Source({ id: cameraConfig.id, upstream: () => new Promise(() => undefined) });
    closers.push(() => source.close());
    const { service, store } = createCameraSnapshots({ camera: cameraConfig, source, ffmpeg: undefined, ffmpegConfig: config.ffmpeg, log: silentLogger });
    closers.push(() => service.close());
    assert.equal(store, undefined, 'no storage path: nothing is kept on disk');
    const result = await service.take();
    return { origin: result?.origin, image: result?.image };
  }

  it('fetches the snapshotUrl with the camera\'s credentials when the URL has none', async () => {
    const server = await serveHttp({ '/snap.jpg': stillImage('admin', 'cam-pass-1') });
    closers.push(() => server.close());
    const result = await snapshotFor({ rtspUrl: 'rtsp://admin:cam-pass-1@192.0.2.1/stream', snapshotUrl: server.url('/snap.jpg') });
    assert.equal(result.origin, `snapshotUrl ${server.url('/snap.jpg')}`);
    assert.deepEqual(result.image, JPEG);
  });

  it('prefers the snapshotUrl\'s own credentials, and never names them', async () => {
    const server = await serveHttp({ '/snap.jpg': stillImage('viewer', 'still-pass-2') });
    closers.push(() => server.close());
    const url = server.url('/snap.jpg').replace('http://', 'http://viewer:still-pass-2@');
    const result = await snapshotFor({ rtspUrl: 'rtsp://admin:cam-pass-1@192.0.2.1/stream', snapshotUrl: url });
    assert.deepEqual(result.image, JPEG);
    assert.ok(result.origin?.startsWith('snapshotUrl '));
    assert.ok(!result.origin?.includes('still-pass-2'), result.origin);
  });
});
