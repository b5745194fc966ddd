import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load-config.js';
import { createDiscoveryService } from '../../src/runtime/discovery-service.js';
import type { Logger } from '../../src/util/logger.js';
import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';

describe('discovery service (WS-Discovery on loopback against the ONVIF responder)', () => {
  let responder: OnvifResponder;
  let storage: string;

  before(async () => {
    responder = await startOnvifResponder({ discovery: true });
    storage = await mkdtemp(join(tmpdir(), 'wrc-discovery-'));
  });
  after(async () => {
    await responder?.close();
    await rm(storage, { recursive: true, force: true });
  });

  it('logs an unconfigured camera once, keeps it for the UI in the storage path, and skips configured hosts', async () => {
    const lines: string[] = [];
    const log: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), debug: () => undefined };
    const { config } = loadConfig({ platform: 'WebRTCCameras', discovery: { enabled: true }, cameras: [] });
    const target = responder.discoveryTarget!;
    const service = createDiscoveryService(config, storage, log, { targets: [target], timeoutMs: 800 });
    service.start();
    await service.searched();
    // "Search again" from the Homebridge UI: one more search, the same camera, not logged twice.
    const probes = responder.counters.probes;
    assert.equal(await service.searchNow(), true);
    assert.ok(responder.counters.probes > probes, 'it probed again');
    service.stop();
    assert.equal(service.list().length, 1, lines.join('\n'));
    assert.equal(service.list()[0]!.name, 'PREDATOR');
    assert.equal(lines.filter((l) => /ONVIF camera found but not configured/.test(l)).length, 1, lines.join('\n'));
    const saved = JSON.parse(await readFile(join(storage, 'webrtc-cameras', 'discovered.json'), 'utf8')) as unknown[];
    assert.equal(saved.length, 1);

    // The same camera, now configured by its host, is not reported.
    const configured = loadConfig({ platform: 'WebRTCCameras', discovery: { enabled: true },
      cameras: [{ name: 'Known', onvif: { host: '127.0.0.1', port: responder.port } }] }).config;
    const lines2: string[] = [];
    const quiet = createDiscoveryService(configured, storage, { ...log, info: (m) => lines2.push(m) }, { targets: [target], timeoutMs: 800 });
    quiet.start();
    await quiet.searched();
    quiet.stop();
    assert.equal(quiet.list().length, 0);
    assert.equal(lines2.length, 0);
  });
});
