import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Source } from '../../src/media/source.js';
import { publicErrorText } from '../../src/access/public-error.js';
import { toCameraStatus } from '../../src/web/camera-status.js';
import { FakeSource, H264_TRACK, PCMU_TRACK } from './fixtures.js';

describe('camera status JSON', () => {
  it('maps a live camera from its tracks and stats', () => {
    const source = new FakeSource('porch', 'Porch', {
      state: { state: 'live' },
      tracks: [H264_TRACK, PCMU_TRACK],
      stats: { width: 1920, height: 1080, fps: 14.6, bitrateBps: 3_456_789, subscribers: 4 },
    });
    assert.deepEqual(toCameraStatus(source), {
      id: 'porch',
      name: 'Porch',
      state: 'live',
      lastError: null,
      codec: 'H264',
      width: 1920,
      height: 1080,
      fps: 14.6,
      bitrateKbps: 3457,
      audio: 'PCMU',
      viewers: 4,
      retryInMs: null,
    });
  });

  it('prefers the registry extras for name and viewers', () => {
    const source = new FakeSource('porch', 'Porch', { stats: { subscribers: 9 } });
    const status = toCameraStatus(source, { name: 'Front porch', viewers: 2 });
    assert.equal(status.name, 'Front porch');
    assert.equal(status.viewers, 2);
  });

  it('a camera that is down shows why (without URLs or secrets) and no stale rates', () => {
    const source = new FakeSource('porch', 'Porch', {
      state: { state: 'retrying', lastError: 'RTSP 401 from rtsp://admin:pw-123456@10.1.2.3/h264 (pw-123456)', retryInMs: 8000 },
      tracks: [H264_TRACK],
      stats: { width: 640, height: 360, fps: 3, bitrateBps: 1000 },
    });
    const status = toCameraStatus(source, undefined, ['pw-123456']);
    assert.equal(status.lastError, 'RTSP 401 from <camera url> (***)');
    assert.equal(status.retryInMs, 8000);
    assert.equal(status.fps, null);
    assert.equal(status.bitrateKbps, null);
    assert.equal(status.width, 640);
    assert.ok(!JSON.stringify(status).includes('10.1.2.3'));
  });

  it('ignores stats that are missing, malformed or throw', () => {
    const source = new FakeSource('x', 'X', { state: { state: 'live' } });
    source.stats = () => {
      throw new Error('nope');
    };
    const status = toCameraStatus(source);
    assert.equal(status.width, null);
    assert.equal(status.viewers, 0);
    const odd = new FakeSource('y', 'Y', { state: { state: 'live' } });
    odd.currentStats = { width: Number.NaN, height: -1, fps: Infinity } as never;
    const oddStatus = toCameraStatus(odd);
    assert.deepEqual([oddStatus.width, oddStatus.height, oddStatus.fps], [null, null, null]);
  });

  it('long error texts are cut short', () => {
    assert.equal(publicErrorText('x'.repeat(1000))!.length, 300);
    assert.equal(publicErrorText(undefined), null);
  });

  it('reads a real media Source', async () => {
    const source = new Source({ id: 'real', name: 'Real camera', upstream: () => new Promise(() => undefined) });
    try {
      const status = toCameraStatus(source);
      assert.equal(status.id, 'real');
      assert.equal(status.name, 'Real camera');
      assert.equal(status.state, 'idle');
      assert.equal(status.codec, null);
      assert.equal(status.viewers, 0);
    } finally {
      await source.close();
    }
  });
});
