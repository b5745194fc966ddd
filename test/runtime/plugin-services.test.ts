import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { API } from 'homebridge';
import { loadConfig } from '../../src/config/load-config.js';
import { browserOrigins, createSharedServices, peerLimits, viewerLimitSettings } from '../../src/runtime/plugin-services.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { createAccessControl } from '../../src/web/auth/index.js';
import type { CallerContext, WhepHandler } from '../../src/web/types.js';
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

describe('peerLimits', () => {
  it('gives access control the configured viewer caps, and the defaults (32, 32) when unset', () => {
    assert.deepEqual(peerLimits(loadConfig({}).config.web), { maxPeersPerPrincipal: 32, maxPeersPerAddress: 32 });
    assert.deepEqual(peerLimits(loadConfig({ web: { maxViewsPerUser: 3, maxViewsPerAddress: 70 } }).config.web), { maxPeersPerPrincipal: 3, maxPeersPerAddress: 70 });
  });

  it('is what the guarded WHEP handler enforces: one view more than web.maxViewsPerUser is refused', async () => {
    const storage = await mkdtemp(join(tmpdir(), 'wrc-peers-'));
    const access = await createAccessControl({ viewers: [], storagePath: storage, peers: peerLimits(loadConfig({ web: { maxViewsPerUser: 3 } }).config.web) });
    try {
      let next = 0;
      const inner: WhepHandler = {
        handlePost: (cameraId) => ({ status: 201, headers: { Location: `/whep/${cameraId}/s${++next}` }, body: 'answer' }),
        handleDelete: () => ({ status: 200 }),
      };
      const guarded = access.guardWhep(inner);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const ctx = { principal: { name: 'link:x', cameras: 'all', admin: false }, remoteAddress: `10.0.0.${i + 1}`, request: {} as IncomingMessage, log: silentLogger } as CallerContext;
        statuses.push((await guarded.handlePost('cam', 'offer', ctx)).status);
      }
      assert.deepEqual(statuses, [201, 201, 201, 429]);
    } finally {
      await access.stop();
      await rm(storage, { recursive: true, force: true });
    }
  });
});

describe('viewerLimitSettings', () => {
  const cameras = [{ name: 'Porch', rtspUrl: 'rtsp://192.0.2.1/stream', maxViewers: 60 }];

  it('gives the viewer limiter web.maxConnectingViews as its pending budget (4 when unset) and each camera\'s maxViewers', () => {
    assert.deepEqual(viewerLimitSettings(loadConfig({ cameras }).config), { perCamera: { porch: 60 }, maxPendingPerOwner: 4 });
    assert.deepEqual(viewerLimitSettings(loadConfig({ cameras, web: { maxConnectingViews: 50 } }).config), { perCamera: { porch: 60 }, maxPendingPerOwner: 50 });
  });

  it('is what the limiter enforces: 50 viewers from one address start at once with the setting, 4 without', () => {
    const admitted = (config: Parameters<typeof loadConfig>[0]): number => {
      const limits = new ViewerLimiter(viewerLimitSettings(loadConfig(config).config));
      return Array.from({ length: 50 }, (_, i) => limits.admit('porch', { principal: `member-${i}`, address: '192.168.1.20' })).filter((a) => 'slot' in a).length;
    };
    assert.equal(admitted({ cameras }), 4);
    assert.equal(admitted({ cameras, web: { maxConnectingViews: 50 } }), 50);
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
