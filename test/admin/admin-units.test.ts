import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTestRequest, runningCameraFor } from '../../src/admin/admin-routes.js';
import { classifyOnvifError, classifyRtspError, describeStream } from '../../src/admin/connection-test.js';
import { loadConfig } from '../../src/config/load-config.js';
import { OnvifError } from '../../src/onvif/errors.js';
import { RtspError } from '../../src/rtsp/errors.js';
import type { BroadcastSource } from '../../src/web/types.js';

describe('Test requests, matching and reasons', () => {
  it('parses the three kinds and refuses anything else with a reason', () => {
    assert.deepEqual(parseTestRequest({ kind: 'onvif', host: '192.168.0.20', port: 8000, username: 'u', password: 'p' }),
      { kind: 'onvif', host: '192.168.0.20', port: 8000, username: 'u', password: 'p' });
    assert.deepEqual(parseTestRequest({ kind: 'rtsp', url: 'rtsp://10.0.0.2/live' }), { kind: 'rtsp', url: 'rtsp://10.0.0.2/live' });
    assert.deepEqual(parseTestRequest({ kind: 'camera', id: 'porch' }), { kind: 'camera', id: 'porch' });
    for (const [body, reason] of [
      [{ kind: 'http', url: 'x' }, /kind must be/],
      [{ kind: 'onvif', host: 'http://cam/', port: 80 }, /host must be a host name/],
      [{ kind: 'onvif', host: 'cam', port: 70000 }, /port must be/],
      [{ kind: 'rtsp', url: 'file:///etc/passwd' }, /must start with rtsp/],
      [{ kind: 'rtsp', url: 'rtsp://h/', target: 'x' }, /Unknown field "target"/],
      [{ kind: 'camera', id: '../x' }, /camera id/],
      [[1, 2], /JSON object/],
    ] as const) {
      assert.throws(() => parseTestRequest(body), reason);
    }
  });

  it('finds the running camera for the same address and log-in only', () => {
    const { config } = loadConfig({
      platform: 'WebRTCCameras',
      cameras: [
        { name: 'Porch', rtspUrl: 'rtsp://192.168.0.20/live1.sdp', username: 'admin', password: 'pw' },
        { name: 'Gate', onvif: { host: '192.168.0.30', port: 80, username: 'admin', password: 'pw2' } },
      ],
    });
    const sources = config.cameras.map((c) => ({ config: c, source: { id: c.id } as unknown as BroadcastSource }));
    const find = (request: Parameters<typeof runningCameraFor>[0]): string | undefined => runningCameraFor(request, sources)?.id;
    assert.equal(find({ kind: 'rtsp', url: 'rtsp://192.168.0.20:554/live1.sdp', username: 'admin', password: 'pw' }), 'porch');
    // A log-in typed into the address is split off where the request comes in, as the config loader does.
    const typed = parseTestRequest({ kind: 'rtsp', url: 'rtsp://admin:pw@192.168.0.20/live1.sdp' });
    assert.deepEqual(typed, { kind: 'rtsp', url: 'rtsp://192.168.0.20/live1.sdp', username: 'admin', password: 'pw' });
    assert.ok(typed.kind === 'rtsp');
    assert.equal(find(typed), 'porch');
    assert.equal(find({ kind: 'rtsp', url: 'rtsp://192.168.0.20/live1.sdp', username: 'admin', password: 'other' }), undefined, 'another password is tested for real');
    assert.equal(find({ kind: 'rtsp', url: 'rtsp://192.168.0.20/live2.sdp', username: 'admin', password: 'pw' }), undefined);
    assert.equal(find({ kind: 'onvif', host: '192.168.0.30', port: 80, username: 'admin', password: 'pw2' }), 'gate');
    assert.equal(find({ kind: 'onvif', host: '192.168.0.30', port: 80, username: 'admin', password: 'nope' }), undefined);
  });

  it('says what went wrong in words a user can act on', () => {
    assert.equal(classifyRtspError(new RtspError('auth', 'T', 'rtsp://h/', '401')).code, 'wrong-password');
    assert.equal(classifyRtspError(new RtspError('refused', 'T', 'rtsp://h/', 'ECONNREFUSED')).code, 'port-closed');
    assert.equal(classifyRtspError(new RtspError('not-found', 'T', 'rtsp://h/', '404')).code, 'stream-not-found');
    assert.equal(classifyOnvifError(new OnvifError({ code: 'NOT_AUTHORIZED', camera: 'c', action: 'GetServices' })).code, 'wrong-password');
    assert.equal(classifyOnvifError(new OnvifError({ code: 'HTML_RESPONSE', camera: 'c', action: 'GetServices' })).code, 'not-onvif');
    assert.equal(classifyOnvifError(new OnvifError({ code: 'UNREACHABLE', camera: 'c', action: 'x', detail: 'connect ECONNREFUSED' })).code, 'port-closed');
    assert.equal(describeStream({ codec: 'H265', width: 2560, height: 1440, fps: 20, audio: null, needsTranscode: true }),
      'Stream found: H.265 2560x1440 at 20 fps, no audio (browsers need H.265 transcoded: the plugin does it with ffmpeg, one encoder per camera)');
  });
});
