/**
 * Reply shapes seen from real devices (issue 17): multicast stream URIs, Media2 profiles without an
 * encoder, and faults worded every which way. Fixtures are our own (test/fixtures/onvif/quirks), written
 * from the ONVIF schemas; classification is checked both on the parsed fault and end to end through the
 * loopback responder.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { connectOnvifDevice, isMulticastStreamUri, type OnvifDeviceOptions } from '../../src/onvif/device.js';
import { OnvifError, type OnvifErrorCode } from '../../src/onvif/errors.js';
import { retryOnvif } from '../../src/onvif/retry.js';
import { readFault } from '../../src/onvif/soap.js';
import { descendant, parseXml } from '../../src/onvif/xml.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { ONVIF_FIXTURES, startOnvifResponder, type OnvifResponder, type OnvifResponderOptions } from '../helpers/onvif-responder.js';

const PASSWORD = 'se:cret/pw';
const RTSP = 'rtsp://127.0.0.1:8554/cam1';

const responders: OnvifResponder[] = [];
after(async () => {
  await Promise.all(responders.map((r) => r.close()));
});

async function camera(options: OnvifResponderOptions = {}): Promise<OnvifResponder> {
  const r = await startOnvifResponder({ password: PASSWORD, streamUrl: RTSP, ...options });
  responders.push(r);
  return r;
}

function deviceOptions(r: OnvifResponder): OnvifDeviceOptions & { log: ReturnType<typeof recordingLogger> } {
  return { name: 'Porch', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log: recordingLogger(), timeoutMs: 2000 };
}

async function expectCode(promise: Promise<unknown>, code: OnvifErrorCode): Promise<OnvifError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OnvifError, `expected OnvifError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(!error.message.includes(PASSWORD), 'password in the error message');
    return error;
  }
  assert.fail(`expected ${code}`);
}

function quirkFault(file: string): ReturnType<typeof readFault> {
  const root = parseXml(readFileSync(join(ONVIF_FIXTURES, 'quirks', file)));
  const fault = descendant(root, 'Fault');
  assert.ok(fault, `${file} has a Fault`);
  return readFault(fault);
}

describe('faults are classified by code and HTTP status, not by their words', () => {
  const cases: Array<{ file: string; code: OnvifErrorCode; why: string }> = [
    { file: 'fault.Sender-ActionNotSupported.xml', code: 'ACTION_NOT_SUPPORTED', why: 'ter:ActionNotSupported under env:Sender, German reason' },
    { file: 'fault.ActionNotSupported.xml', code: 'ACTION_NOT_SUPPORTED', why: 'ter:ActionNotSupported under env:Receiver' },
    { file: 'fault.PTZNotSupported.xml', code: 'ACTION_NOT_SUPPORTED', why: 'ter:ActionNotSupported/ter:PTZNotSupported' },
    { file: 'fault.Sender-bare.xml', code: 'ACTION_NOT_SUPPORTED', why: 'bare env:Sender ("method name or namespace not recognized")' },
    { file: 'fault.soap11-client.xml', code: 'ACTION_NOT_SUPPORTED', why: 'SOAP 1.1 faultcode Client, no subcode' },
    { file: 'fault.Receiver-Action.xml', code: 'SOAP_FAULT', why: 'ter:Action is a passing failure although its text says "not supported"' },
    { file: 'fault.Sender-InvalidArgVal-NoProfile.xml', code: 'SOAP_FAULT', why: 'an argument fault although its text says "not authorized"' },
    { file: 'fault.ResourceUnknown.xml', code: 'SOAP_FAULT', why: 'env:Sender with a WS-RF subcode' },
    { file: 'fault.NotAuthorized.xml', code: 'NOT_AUTHORIZED', why: 'ter:NotAuthorized' },
    { file: 'fault.soap11-auth.xml', code: 'NOT_AUTHORIZED', why: 'SOAP 1.1 wsse:FailedAuthentication' },
  ];
  for (const { file, code, why } of cases) {
    it(`${file} -> ${code} (${why})`, () => {
      const info = quirkFault(file);
      assert.equal(info.code, code, info.detail);
      assert.match(info.detail, /^SOAP fault \S+/);
    });
  }

  // The same fixtures served by the loopback responder for GetProfiles: the error the caller sees, and
  // whether it may be retried.
  const served: Array<{ label: string; override: OnvifResponderOptions['overrides']; code: OnvifErrorCode; retryable: boolean; detail: RegExp }> = [
    { label: 'env:Sender ter:ActionNotSupported', override: { GetProfiles: { kind: 'fixture', file: 'quirks/fault.Sender-ActionNotSupported.xml' } }, code: 'ACTION_NOT_SUPPORTED', retryable: false, detail: /ter:ActionNotSupported/ },
    { label: 'bare env:Sender, HTTP 500', override: { GetProfiles: { kind: 'fixture', file: 'quirks/fault.Sender-bare.xml', status: 500 } }, code: 'ACTION_NOT_SUPPORTED', retryable: false, detail: /namespace not recognized/ },
    { label: 'SOAP 1.1 Client, text/xml', override: { GetProfiles: { kind: 'fixture', file: 'quirks/fault.soap11-client.xml', status: 500, contentType: 'text/xml' } }, code: 'ACTION_NOT_SUPPORTED', retryable: false, detail: /Client/ },
    { label: 'HTTP 400 with an HTML body', override: { GetProfiles: { kind: 'fixture', file: 'quirks/html-400.html', status: 400 } }, code: 'ACTION_NOT_SUPPORTED', retryable: false, detail: /HTTP 400 with an HTML page.*400 Bad Request/ },
    { label: 'HTTP 500 with an HTML body', override: { GetProfiles: { kind: 'fixture', file: 'quirks/html-500.html', status: 500 } }, code: 'HTTP_ERROR', retryable: true, detail: /HTTP 500 with an HTML page/ },
    { label: 'HTTP 501 with an empty body', override: { GetProfiles: { kind: 'raw', body: '', status: 501, contentType: 'text/plain' } }, code: 'ACTION_NOT_SUPPORTED', retryable: false, detail: /HTTP 501/ },
    { label: 'env:Receiver ter:Action, text "not supported"', override: { GetProfiles: { kind: 'fixture', file: 'quirks/fault.Receiver-Action.xml', status: 500 } }, code: 'SOAP_FAULT', retryable: true, detail: /ter:Action/ },
  ];
  for (const { label, override, code, retryable, detail } of served) {
    it(`end to end: ${label} -> ${code}, retryable ${retryable}`, async () => {
      const r = await camera({ overrides: override });
      const options = deviceOptions(r);
      const device = await connectOnvifDevice(options);
      const error = await expectCode(device.resolveStream(), code);
      assert.equal(error.retryable, retryable);
      assert.match(error.message, detail);
      assert.match(error.message, /^ONVIF camera "Porch": GetProfiles failed: /);
      for (const line of options.log.lines) assert.ok(!line.includes(PASSWORD), line);
    });
  }

  it('an HTML 400/404 page refusing GetDeviceInformation (mandatory on every ONVIF device) is a wrong port, not a missing feature', async () => {
    for (const status of [400, 404]) {
      const r = await camera({ overrides: { GetDeviceInformation: { kind: 'fixture', file: 'quirks/html-400.html', status } } });
      const error = await expectCode(connectOnvifDevice(deviceOptions(r)), 'HTML_RESPONSE');
      assert.match(error.message, /is this the ONVIF port\?.*HTTP \d+ with an HTML page/);
    }
  });

  it('a call the device never supports is sent once per connection, across re-resolves and retries; a passing fault is asked again', async () => {
    const r = await camera({
      media2: true,
      serviceOverrides: {
        'media.GetProfiles': { kind: 'fixture', file: 'quirks/fault.Sender-bare.xml', status: 500 },
        'media2.GetProfiles': { kind: 'fixture', file: 'quirks/fault.Receiver-Action.xml', status: 500 },
      },
    });
    const options = deviceOptions(r);
    const device = await connectOnvifDevice(options);
    assert.ok(device.services.media2, 'the responder lists Media2');
    const count = (service: string, command: string): number => r.requests.filter((q) => q.service === service && q.command === command).length;

    const attempts: OnvifErrorCode[] = [];
    // Ends the loop should the camera never recover (a broken responder must fail the test, not hang it).
    const stop = new AbortController();
    const stream = await retryOnvif(() => device.resolveStream(), {
      log: options.log,
      camera: 'Porch',
      initialDelayMs: 1,
      signal: stop.signal,
      onError: (error, attempt) => {
        attempts.push(error.code);
        if (attempt >= 5) stop.abort();
        // The camera recovers after the second passing fault.
        if (attempt === 2) r.configure({ serviceOverrides: {} });
      },
    });
    assert.deepEqual(attempts, ['SOAP_FAULT', 'SOAP_FAULT']);
    assert.equal(stream.profileToken, 'Profile_1');
    assert.equal(count('media', 'GetProfiles'), 1, 'Media1 GetProfiles refused once, then never asked again');
    assert.equal(count('media2', 'GetProfiles'), 3, 'the passing fault is asked again on every attempt');

    await device.resolveStream();
    assert.equal(count('media', 'GetProfiles'), 1, 'a re-resolve on the same connection does not ask again');

    // A new connection is a new device state (a firmware update may add the call): asked once again.
    const again = await connectOnvifDevice(deviceOptions(r));
    await again.resolveStream();
    assert.equal(count('media', 'GetProfiles'), 2);
  });
});

it('an unsigned call refused as "not supported" is still tried signed (syncClock), and each is asked once', async () => {
  const r = await camera({ overrides: { GetSystemDateAndTime: { kind: 'fixture', file: 'quirks/fault.Sender-bare.xml', status: 400 } } });
  const device = await connectOnvifDevice(deviceOptions(r));
  const clockCalls = (): string[] => r.requests.filter((q) => q.command === 'GetSystemDateAndTime').map((q) => q.path);
  assert.deepEqual(clockCalls(), ['/onvif/device_service', '/onvif/device_service'], 'unsigned, then signed');
  // GetServices moved the device service to the address it announces: a new endpoint is asked (once).
  await device.syncClock();
  await device.syncClock();
  assert.deepEqual(clockCalls().slice(2), ['/onvif/services', '/onvif/services']);
  assert.equal(device.soap.isKnownUnsupported(device.services.device, 'http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime', false), true);
  assert.equal(device.soap.isKnownUnsupported(device.services.device, 'http://www.onvif.org/ver10/device/wsdl/GetSystemDateAndTime', true), true);
});

it('the list of refused calls is forgotten once the camera drops off the network (it may come back with other firmware)', async () => {
  const r = await camera({
    media2: true,
    serviceOverrides: {
      'media.GetProfiles': { kind: 'fixture', file: 'quirks/fault.ActionNotSupported.xml' },
      'media2.GetProfiles': { kind: 'close' },
    },
  });
  const device = await connectOnvifDevice(deviceOptions(r));
  await expectCode(device.resolveStream(), 'UNREACHABLE');
  await expectCode(device.resolveStream(), 'UNREACHABLE');
  assert.equal(r.requests.filter((q) => q.service === 'media' && q.command === 'GetProfiles').length, 2);
});

describe('stream URIs that are multicast although unicast was asked', () => {
  it('recognises group addresses and transportmode=mcast', () => {
    assert.equal(isMulticastStreamUri('rtsp://239.255.42.42:554/Streaming/Channels/101?transportmode=mcast&profile=Profile_1'), true);
    assert.equal(isMulticastStreamUri('rtsp://224.0.0.1/live'), true);
    assert.equal(isMulticastStreamUri('rtsp://10.0.0.23:554/ch1?TransportMode=MCAST'), true);
    assert.equal(isMulticastStreamUri('rtsp://[ff15::1234]:554/live'), true);
    assert.equal(isMulticastStreamUri('rtsp://223.255.255.255/live'), false);
    assert.equal(isMulticastStreamUri('rtsp://240.0.0.1/live'), false);
    assert.equal(isMulticastStreamUri('rtsp://10.0.0.23:554/ch1?transportmode=unicast'), false);
    assert.equal(isMulticastStreamUri('not a url'), false);
  });

  it('Media1 hands out multicast: the stream is asked again from Media2 and that unicast URI is used', async () => {
    const r = await camera({ media2: true, serviceOverrides: { 'media.GetStreamUri': { kind: 'fixture', file: 'quirks/GetStreamUri.multicast.xml' } } });
    const options = deviceOptions(r);
    const device = await connectOnvifDevice(options);
    const stream = await device.resolveStream();
    assert.equal(stream.rtspUrl, RTSP, 'the unicast URI from Media2, not the multicast group rewritten to the camera');
    const asked = r.requests.filter((q) => q.command === 'GetStreamUri').map((q) => q.service);
    assert.deepEqual(asked, ['media', 'media2']);
    assert.ok(options.log.lines.some((l) => /239\.255\.42\.42.*multicast/.test(l)), options.log.lines.join('\n'));
  });

  it('every media service hands out multicast: a clear MULTICAST_STREAM error naming the URIs', async () => {
    const r = await camera({
      media2: true,
      serviceOverrides: {
        'media.GetStreamUri': { kind: 'fixture', file: 'quirks/GetStreamUri.multicast.xml' },
        'media2.GetStreamUri': { kind: 'fixture', file: 'quirks/media2.GetStreamUri.multicast.xml' },
      },
    });
    const device = await connectOnvifDevice(deviceOptions(r));
    const error = await expectCode(device.resolveStream(), 'MULTICAST_STREAM');
    assert.equal(error.retryable, false);
    assert.match(error.message, /only hands out a multicast stream although unicast was asked/);
    assert.match(error.message, /rtsp:\/\/239\.255\.42\.42:554\/.*rtsp:\/\/10\.0\.0\.23:554\//);
  });

  it('a Media1-only camera with a multicast URI: MULTICAST_STREAM, not a stream pointed at the camera', async () => {
    const r = await camera({ overrides: { GetStreamUri: { kind: 'fixture', file: 'quirks/GetStreamUri.multicast.xml' } } });
    const device = await connectOnvifDevice(deviceOptions(r));
    await expectCode(device.resolveStream(), 'MULTICAST_STREAM');
  });
});

describe('Media2 GetProfiles without encoder configurations', () => {
  it('fetches each profile\'s encoder with GetVideoEncoderConfigurations instead of concluding "no video profile"', async () => {
    const r = await camera({ profiles: 'media2-only', serviceOverrides: { 'media2.GetProfiles': { kind: 'fixture', file: 'quirks/media2.GetProfiles.no-encoder.xml' } } });
    const device = await connectOnvifDevice(deviceOptions(r));
    const profiles = await device.getProfiles();
    assert.deepEqual(
      profiles.map((p) => [p.token, p.name, p.encoding, p.width, p.height, p.frameRate, p.bitrateKbps, p.mediaVersion]),
      [
        ['Profile_1', 'MainStream', 'H264', 2560, 1440, 20, 6144, 2],
        ['Profile_2', 'SubStream', 'H264', 640, 360, 10, 512, 2],
      ],
    );
    const asked = r.requests.filter((q) => q.command === 'GetVideoEncoderConfigurations');
    assert.deepEqual(
      asked.map((q) => [q.service, descendant(q.element, 'ProfileToken')?.text]),
      [['media2', 'Profile_1'], ['media2', 'Profile_2']],
    );
    const stream = await device.resolveStream();
    assert.equal(stream.profileToken, 'Profile_1');
    assert.equal(stream.subStream?.profileToken, 'Profile_2');
  });

  it('when GetVideoEncoderConfigurations is not supported either: NO_VIDEO_PROFILE, asked once', async () => {
    const r = await camera({
      profiles: 'media2-only',
      serviceOverrides: {
        'media2.GetProfiles': { kind: 'fixture', file: 'quirks/media2.GetProfiles.no-encoder.xml' },
        'media2.GetVideoEncoderConfigurations': { kind: 'fixture', file: 'quirks/fault.ActionNotSupported.xml' },
      },
    });
    const device = await connectOnvifDevice(deviceOptions(r));
    await expectCode(device.resolveStream(), 'NO_VIDEO_PROFILE');
    await expectCode(device.resolveStream(), 'NO_VIDEO_PROFILE');
    assert.equal(r.requests.filter((q) => q.command === 'GetVideoEncoderConfigurations').length, 1);
  });
});
