import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';

import {
  buildProbe,
  discoverCameras,
  mergeProbeMatches,
  parseProbeMatches,
  reportUnconfiguredCameras,
  scopeValue,
} from '../../src/onvif/discovery.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { startOnvifResponder, type OnvifResponder, type OnvifResponderOptions } from '../helpers/onvif-responder.js';

const responders: OnvifResponder[] = [];
after(async () => {
  await Promise.all(responders.map((r) => r.close()));
});

async function responder(discovery: OnvifResponderOptions['discovery']): Promise<OnvifResponder> {
  const r = await startOnvifResponder({ discovery });
  responders.push(r);
  return r;
}

describe('WS-Discovery parsing', () => {
  it('reads a ProbeMatches with any prefixes, whitespace, several and IPv6 XAddrs', () => {
    const xml = `<?xml version="1.0"?>
      <x:Envelope xmlns:x="http://www.w3.org/2003/05/soap-envelope" xmlns:q="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:r="http://schemas.xmlsoap.org/ws/2004/08/addressing">
        <x:Header><r:RelatesTo>urn:uuid:1</r:RelatesTo></x:Header>
        <x:Body><q:ProbeMatches><q:ProbeMatch>
          <r:EndpointReference><r:Address> urn:uuid:abc </r:Address></r:EndpointReference>
          <q:Types>
            dn:NetworkVideoTransmitter
            tds:Device
          </q:Types>
          <q:Scopes>	onvif://www.onvif.org/name/Front%20Door
             onvif://www.onvif.org/hardware/DCS-7010L	</q:Scopes>
          <q:XAddrs>
             http://[fe80::1]:80/onvif/device_service   http://192.168.1.20/onvif/device_service
             http://[2001:db8::5]:8080/onvif/device_service
          </q:XAddrs>
          <q:MetadataVersion>3</q:MetadataVersion>
        </q:ProbeMatch></q:ProbeMatches></x:Body>
      </x:Envelope>`;
    const result = parseProbeMatches(xml);
    assert.ok(result.ok);
    const match = result.matches[0]!;
    assert.equal(match.endpoint, 'urn:uuid:abc');
    assert.deepEqual(match.types, ['dn:NetworkVideoTransmitter', 'tds:Device']);
    assert.equal(match.xaddrs.length, 3);
    assert.equal(scopeValue(match.scopes, 'name'), 'Front Door');
    assert.equal(scopeValue(match.scopes, 'hardware'), 'DCS-7010L');
    const [camera] = mergeProbeMatches([{ source: '192.168.1.20', match }]);
    assert.equal(camera!.xaddr, 'http://192.168.1.20/onvif/device_service', 'IPv4 from the answering address first');
    assert.deepEqual(camera!.xaddrs.slice(1), ['http://[2001:db8::5]:8080/onvif/device_service', 'http://[fe80::1]:80/onvif/device_service']);
    assert.equal(camera!.host, '192.168.1.20');
    assert.equal(camera!.port, 80);
    assert.equal(camera!.metadataVersion, 3);
  });

  it('rejects garbage and non-ProbeMatches messages with a reason', () => {
    for (const packet of ['', 'garbage', '<a><b></a>', '<html/>', buildProbe('urn:uuid:x')]) {
      const result = parseProbeMatches(packet);
      assert.equal(result.ok, false);
      assert.ok(!result.ok && result.reason.length > 0);
    }
  });
});

describe('WS-Discovery on loopback', () => {
  it('finds the responder and reports its name, model and XAddr', async () => {
    const r = await responder({ name: 'Front Door', hardware: 'DCS-7010L', endpoint: 'urn:uuid:11111111-2222-3333-4444-555555555555' });
    const log = recordingLogger();
    const cameras = await discoverCameras({ log, interfaces: ['127.0.0.1'], targets: [r.discoveryTarget!], timeoutMs: 500, probeIntervalMs: 100 });
    assert.equal(cameras.length, 1);
    const camera = cameras[0]!;
    assert.equal(camera.name, 'Front Door');
    assert.equal(camera.hardware, 'DCS-7010L');
    assert.equal(camera.endpoint, 'urn:uuid:11111111-2222-3333-4444-555555555555');
    assert.equal(camera.xaddr, r.deviceUrl);
    assert.equal(camera.host, '127.0.0.1');
    assert.equal(camera.port, r.port);
    assert.ok(camera.types.includes('dn:NetworkVideoTransmitter'));
    assert.ok(r.counters.probes >= 2, 'several probes were sent');
  });

  it('uses the fixture scopes as is (PREDATOR / HD_PREDATOR)', async () => {
    const r = await responder(true);
    const cameras = await discoverCameras({ log: recordingLogger(), interfaces: ['127.0.0.1'], targets: [r.discoveryTarget!], timeoutMs: 400, probeIntervalMs: 100 });
    assert.equal(cameras[0]?.name, 'PREDATOR');
    assert.equal(cameras[0]?.hardware, 'HD_PREDATOR');
  });

  it('merges duplicate answers: every retry, and the same endpoint answering from a second address', async () => {
    const r = await responder({
      secondAddress: '127.0.0.2',
      extraXAddrs: ['http://[::1]:8899/onvif/device_service'],
      whitespace: true,
      renamePrefixes: true,
    });
    const cameras = await discoverCameras({ log: recordingLogger(), interfaces: ['127.0.0.1'], targets: [r.discoveryTarget!], timeoutMs: 500, probes: 3, probeIntervalMs: 100 });
    assert.equal(cameras.length, 1, JSON.stringify(cameras));
    const camera = cameras[0]!;
    assert.deepEqual([...camera.addresses].sort(), ['127.0.0.1', '127.0.0.2']);
    assert.equal(camera.xaddr, r.deviceUrl);
    assert.ok(camera.xaddrs.includes(`http://127.0.0.2:${r.port}/onvif/device_service`));
    assert.equal(camera.xaddrs.at(-1), 'http://[::1]:8899/onvif/device_service', 'IPv6 last');
    assert.equal(camera.xaddrs.length, 3);
    assert.equal(camera.name, 'PREDATOR');
  });

  it('ignores garbage packets and still finds the camera', async () => {
    const r = await responder({ garbage: true, name: 'Garage' });
    const log = recordingLogger();
    const cameras = await discoverCameras({ log, interfaces: ['127.0.0.1'], targets: [r.discoveryTarget!], timeoutMs: 500, probeIntervalMs: 100 });
    assert.equal(cameras.length, 1);
    assert.equal(cameras[0]!.name, 'Garage');
    assert.ok(log.lines.some((l) => /ignored a packet/.test(l)), 'garbage was seen and ignored');
  });

  it('retries: a camera that misses the first probes is still found', async () => {
    const r = await responder({ ignoreProbes: 2, name: 'Shy' });
    const cameras = await discoverCameras({ log: recordingLogger(), interfaces: ['127.0.0.1'], targets: [r.discoveryTarget!], timeoutMs: 600, probes: 3, probeIntervalMs: 100 });
    assert.equal(cameras.length, 1);
    assert.equal(cameras[0]!.name, 'Shy');
  });

  it('finds two cameras at once, and nothing where nobody answers', async () => {
    const a = await responder({ endpoint: 'urn:uuid:a', name: 'A' });
    const b = await responder({ endpoint: 'urn:uuid:b', name: 'B' });
    const cameras = await discoverCameras({
      log: recordingLogger(),
      interfaces: ['127.0.0.1'],
      targets: [a.discoveryTarget!, b.discoveryTarget!, { address: '127.0.0.1', port: 9 }],
      timeoutMs: 400,
      probeIntervalMs: 100,
    });
    assert.deepEqual(cameras.map((c) => c.name).sort(), ['A', 'B']);
    const none = await discoverCameras({ log: recordingLogger(), interfaces: ['127.0.0.1'], targets: [{ address: '127.0.0.1', port: 9 }], timeoutMs: 200 });
    assert.deepEqual(none, []);
  });

  it('logs each unconfigured camera once, with address and model', async () => {
    const r = await responder({ name: 'Porch', hardware: 'DCS-7010L', endpoint: 'urn:uuid:porch' });
    const log = recordingLogger();
    const seen = new Set<string>();
    const cameras = await discoverCameras({ log: recordingLogger(), interfaces: ['127.0.0.1'], targets: [r.discoveryTarget!], timeoutMs: 300 });
    reportUnconfiguredCameras(cameras, ['192.168.1.9'], log, seen);
    reportUnconfiguredCameras(cameras, ['192.168.1.9'], log, seen);
    const lines = log.lines.filter((l) => l.includes('not configured'));
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /Porch/);
    assert.match(lines[0]!, /DCS-7010L/);
    assert.match(lines[0]!, new RegExp(`127\\.0\\.0\\.1:${r.port}`));
    const configured = reportUnconfiguredCameras(cameras, ['127.0.0.1'], log, new Set());
    assert.deepEqual(configured, []);
  });
});
