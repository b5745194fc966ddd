// What a viewer is told while its camera is down. Any viewer may read it (a share link's recipient
// too), so it follows the camera API's rule: the camera's URL (LAN host, port, path) never reaches
// the page, only what went wrong and when the next attempt is. Found end to end: the watch page said
// 'Camera offline, retrying (Camera "Front" (rtsp://127.0.0.1:35179/live1.sdp): connection refused ...)'.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { protocolState } from '../../src/webrtc/signalling.js';

test('state messages name the problem and the next attempt, never the camera URL', () => {
  const retrying = protocolState(
    { state: 'retrying', lastError: 'Camera "Front" (rtsp://admin:pw-123@192.168.1.20:554/live1.sdp): connection refused (is the RTSP port right?)', retryInMs: 2400 },
    false,
  );
  assert.equal(retrying.state, 'retrying');
  assert.match(retrying.message ?? '', /connection refused \(is the RTSP port right\?\); next attempt in 2 s$/);
  for (const leak of ['192.168.1.20', 'rtsp://', '554', 'live1.sdp', 'pw-123', 'admin']) {
    assert.ok(!(retrying.message ?? '').includes(leak), `${leak} in: ${retrying.message}`);
  }
  const stopped = protocolState({ state: 'stopped', lastError: 'Camera "Front" (rtsp://10.0.0.9/stream): 401 Unauthorized' }, false);
  assert.equal(stopped.state, 'offline');
  assert.ok(!(stopped.message ?? '').includes('10.0.0.9'), String(stopped.message));
  assert.match(stopped.message ?? '', /401 Unauthorized/);
  assert.deepEqual(protocolState({ state: 'retrying', retryInMs: 1000 }, false), { type: 'state', state: 'retrying', message: 'next attempt in 1 s' });
});
