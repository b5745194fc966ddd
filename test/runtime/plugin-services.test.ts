import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { API } from 'homebridge';
import { loadConfig } from '../../src/config/load-config.js';
import { browserOrigins, createSharedServices } from '../../src/runtime/plugin-services.js';
import { SnapshotRegistry } from '../../src/snapshots/snapshot-service.js';
import { silentLogger } from '../../src/util/logger.js';

describe('browserOrigins', () => {
  it('adds the public address (as its origin) to the configured origins, once', () => {
    assert.deepEqual(browserOrigins({ allowedOrigins: ['https://dash.example.com'], publicUrl: 'https://cams.example.com:443/watch/' }), [
      'https://dash.example.com',
      'https://cams.example.com',
    ]);
    assert.deepEqual(browserOrigins({ allowedOrigins: ['https://cams.example.com'], publicUrl: 'https://cams.example.com/' }), ['https://cams.example.com']);
  });

  it('is only the configured origins without a public address, and nothing by default', () => {
    assert.deepEqual(browserOrigins({ allowedOrigins: ['http://10.0.0.5:8123'] }), ['http://10.0.0.5:8123']);
    assert.deepEqual(browserOrigins({ allowedOrigins: [] }), []);
  });
});

describe('createSharedServices: snapshots', () => {
  it('owns one snapshot registry, made with the services (no module-level lookup), the same for every camera', () => {
    const { config, secrets } = loadConfig({ platform: 'WebRTCCameras', cameras: [{ name: 'Porch', rtspUrl: 'rtsp://192.0.2.1/stream' }] });
    const services = createSharedServices({ api: {} as API, log: silentLogger, config, ffmpeg: undefined, storagePath: '/nonexistent', secrets });
    const other = createSharedServices({ api: {} as API, log: silentLogger, config, ffmpeg: undefined, storagePath: '/nonexistent', secrets });
    assert.ok(services.snapshots instanceof SnapshotRegistry);
    assert.equal(services.snapshots, services.snapshots);
    assert.notEqual(services.snapshots, other.snapshots, 'each plugin instance has its own');
  });
});
