import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  chooseProfiles,
  cleanInfoValue,
  connectOnvifDevice,
  rewriteStreamUri,
  snapshotCandidates,
  type OnvifDeviceOptions,
  type OnvifVideoProfile,
} from '../../src/onvif/device.js';
import { OnvifError, type OnvifErrorCode } from '../../src/onvif/errors.js';
import { retryOnvif } from '../../src/onvif/retry.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { makeTestJpeg, probeImage, startOnvifResponder, type OnvifResponder, type OnvifResponderOptions } from '../helpers/onvif-responder.js';

const PASSWORD = 'pa:ss/w@rd';
const RTSP = 'rtsp://127.0.0.1:8554/cam1';

const responders: OnvifResponder[] = [];
after(async () => {
  await Promise.all(responders.map((r) => r.close()));
});

let jpeg: Buffer;
before(async () => {
  jpeg = await makeTestJpeg(320, 240);
});

async function camera(options: OnvifResponderOptions = {}): Promise<OnvifResponder> {
  const r = await startOnvifResponder({ password: PASSWORD, streamUrl: RTSP, ...options, snapshot: { jpeg, ...options.snapshot } });
  responders.push(r);
  return r;
}

function deviceOptions(r: OnvifResponder, extra: Partial<OnvifDeviceOptions> = {}): OnvifDeviceOptions & { log: ReturnType<typeof recordingLogger> } {
  return { name: 'Front Door', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log: recordingLogger(), timeoutMs: 2000, ...extra } as OnvifDeviceOptions & {
    log: ReturnType<typeof recordingLogger>;
  };
}

function assertNoSecret(lines: string[], error?: unknown): void {
  for (const line of lines) assert.ok(!line.includes(PASSWORD) && !line.includes(encodeURIComponent(PASSWORD)), `password logged: ${line}`);
  if (error instanceof Error) assert.ok(!error.message.includes(PASSWORD), `password in error: ${error.message}`);
}

async function expectOnvifError(promise: Promise<unknown>, code: OnvifErrorCode): Promise<OnvifError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OnvifError, `expected OnvifError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, /ONVIF camera "[^"]+"/);
    assertNoSecret([], error);
    return error;
  }
  assert.fail(`expected ${code}`);
}

describe('pure helpers', () => {
  it('cleans placeholder device information', () => {
    for (const placeholder of ['', ' ', '--', '-', 'NONE', 'none', 'N/A', 'NA', 'null', 'unknown', '00000000', '0', 'xxxx', 'To Be Filled By O.E.M.', '\u0000\u0000']) {
      assert.equal(cleanInfoValue(placeholder), undefined, JSON.stringify(placeholder));
    }
    assert.equal(cleanInfoValue('  D-Link   Corporation\u0000 '), 'D-Link Corporation');
    assert.equal(cleanInfoValue('DCS-7010L'), 'DCS-7010L');
    assert.equal(cleanInfoValue('A'.repeat(80))?.length, 64);
    assert.equal(cleanInfoValue(undefined), undefined);
  });

  it('chooses the largest H.264 profile as main and the smallest other H.264 as sub', () => {
    const p = (token: string, encoding: OnvifVideoProfile['encoding'], width: number, height: number): OnvifVideoProfile => ({
      token, name: token, encoding, width, height, frameRate: 25, bitrateKbps: undefined, mediaVersion: 1,
    });
    const choice = chooseProfiles([p('jpeg', 'JPEG', 3840, 2160), p('sub', 'H264', 640, 360), p('main', 'H264', 1920, 1080), p('third', 'H264', 1280, 720)]);
    assert.equal(choice?.main.token, 'main');
    assert.equal(choice?.sub?.token, 'sub');
    assert.equal(chooseProfiles([p('h265', 'H265', 1920, 1080)])?.main.token, 'h265', 'H.265 only when there is no H.264');
    assert.equal(chooseProfiles([p('jpeg', 'JPEG', 640, 480)]), undefined);
    assert.equal(chooseProfiles([p('main', 'H264', 1920, 1080), p('sub', 'H264', 640, 360)], 'sub')?.main.token, 'sub', 'configured profile wins');
    assert.equal(chooseProfiles([p('only', 'H264', 1920, 1080)])?.sub, undefined);
  });

  it('rewrites stream URIs naming another host or a wrong port', () => {
    assert.deepEqual(
      (({ url, rewritten }) => [url.href, rewritten])(rewriteStreamUri('rtsp://192.168.68.111/h264main', '10.1.2.3')),
      ['rtsp://10.1.2.3/h264main', true],
    );
    assert.equal(rewriteStreamUri('rtsp://10.1.2.3:554/a?b=c', '10.1.2.3').rewritten, false);
    assert.equal(rewriteStreamUri('rtsp://10.1.2.3:554/a', '10.1.2.3', 8554).url.href, 'rtsp://10.1.2.3:8554/a');
    assert.equal(rewriteStreamUri('rtsp://0.0.0.0:554/a', 'cam.local').url.href, 'rtsp://cam.local:554/a');
    assert.equal(rewriteStreamUri('/live/ch0', '10.1.2.3').url.href, 'rtsp://10.1.2.3/live/ch0');
    assert.equal(rewriteStreamUri('rtsp://192.168.1.5/x', 'fd00::5').url.href, 'rtsp://[fd00::5]/x');
    assert.deepEqual(
      snapshotCandidates('http://192.168.68.111/onvif-cgi/jpg/image.cgi?a=1&b=2', '127.0.0.1', 8080).map((u) => u.href),
      ['http://127.0.0.1/onvif-cgi/jpg/image.cgi?a=1&b=2', 'http://127.0.0.1:8080/onvif-cgi/jpg/image.cgi?a=1&b=2'],
    );
  });
});

describe('ONVIF device against the loopback responder', () => {
  it('connects by host and credentials: device information, services on the reached address, clock', async () => {
    const r = await camera();
    const options = deviceOptions(r);
    const device = await connectOnvifDevice(options);
    assert.equal(device.info.manufacturer, 'Mockup Manufacturer');
    assert.equal(device.info.model, 'Mockup Model');
    assert.equal(device.info.firmwareRevision, 'Mockup_15_14_13');
    assert.equal(device.info.serialNumber, undefined, 'an all-zero serial is a placeholder');
    assert.equal(device.info.hardwareId, 'MOCKUP');
    // GetServices names http://192.168.68.111/onvif/services; we must stay on the address reached.
    assert.equal(device.services.media, `http://127.0.0.1:${r.port}/onvif/services`);
    assert.equal(device.services.events, `http://127.0.0.1:${r.port}/onvif/services`);
    assert.equal(device.clockOffsetMs, 0);
    assert.ok(r.requests.some((q) => q.command === 'GetDeviceInformation' && q.authenticated === true));
    assertNoSecret(options.log.lines);
  });

  it('resolves the stream: main profile, URI pointing at the given RTSP URL, credentials beside it, not logged', async () => {
    const r = await camera();
    const options = deviceOptions(r);
    const device = await connectOnvifDevice(options);
    const stream = await device.resolveStream();
    // The URL carries no log-in; the credentials travel as fields (issue 13).
    assert.equal(stream.rtspUrl, RTSP);
    assert.equal(new URL(stream.rtspUrl).password, '');
    assert.equal(stream.rtspUrlForLog, 'rtsp://admin:***@127.0.0.1:8554/cam1');
    assert.equal(stream.username, 'admin');
    assert.equal(stream.password, PASSWORD);
    assert.equal(stream.profileToken, 'main');
    assert.equal(stream.width, 1920);
    assert.equal(stream.height, 1080);
    assert.equal(stream.encoding, 'H264');
    assert.equal(stream.rewritten, false);
    assert.equal(stream.subStream, undefined);
    assert.ok(options.log.lines.some((l) => l.includes('rtsp://admin:***@127.0.0.1:8554/cam1')), 'the stream is logged redacted');
    assertNoSecret(options.log.lines);
  });

  it('rewrites a stream URI with the camera\'s internal IP (and a wrong port) to the address reached', async () => {
    const r = await camera({ streamUriHost: '192.168.1.64' });
    const stream = await (await connectOnvifDevice(deviceOptions(r))).resolveStream();
    assert.equal(stream.rtspUrl, 'rtsp://127.0.0.1:8554/cam1');
    assert.equal(stream.rewritten, true);

    const forwarded = await camera({ streamUriHost: '10.0.0.7', streamUriPort: 554 });
    const viaPort = await (await connectOnvifDevice(deviceOptions(forwarded, { rtspPort: 8554 }))).resolveStream();
    assert.equal(viaPort.rtspUrl, 'rtsp://127.0.0.1:8554/cam1');
  });

  it('cleans placeholder device information (vendor quirk)', async () => {
    const r = await camera({ deviceInformation: 'placeholders' });
    const device = await connectOnvifDevice(deviceOptions(r));
    assert.deepEqual(device.info, {
      manufacturer: 'D-Link Corporation',
      model: 'DCS-7010L',
      firmwareRevision: undefined,
      serialNumber: undefined,
      hardwareId: undefined,
    });
  });

  it('chooses main and sub-stream among several profiles, skipping ones without a video encoder', async () => {
    const r = await camera({ profiles: 'multi', subStreamUrl: 'rtsp://127.0.0.1:8554/cam1-sub' });
    const options = deviceOptions(r);
    const device = await connectOnvifDevice(options);
    const profiles = await device.getProfiles();
    assert.deepEqual(profiles.map((p) => p.token), ['Profile_sub', 'Profile_mjpeg', 'Profile_main']);
    const stream = await device.resolveStream();
    assert.equal(stream.profileToken, 'Profile_main');
    assert.equal(stream.width, 1280);
    assert.equal(stream.subStream?.profileToken, 'Profile_sub');
    assert.equal(stream.subStream?.width, 640);
    assert.equal(stream.subStream?.rtspUrl, 'rtsp://127.0.0.1:8554/cam1-sub');
    assert.ok(options.log.lines.some((l) => /skipped profiles without a video encoder: audio only, metadata/.test(l)));
  });

  it('falls back to Media2 where Media1 is absent', async () => {
    const r = await camera({ profiles: 'media2-only', streamUriHost: '10.0.0.23' });
    const device = await connectOnvifDevice(deviceOptions(r));
    assert.equal(device.services.media, undefined);
    assert.ok(device.services.media2);
    const stream = await device.resolveStream();
    assert.equal(stream.profileToken, 'Profile_1');
    assert.equal(stream.width, 1920);
    assert.equal(stream.subStream?.profileToken, 'Profile_2');
    assert.equal(stream.rtspUrl, 'rtsp://127.0.0.1:8554/cam1');
    assert.ok(r.requests.some((q) => q.service === 'media2' && q.command === 'GetStreamUri'));
    const snapshot = await device.fetchSnapshot();
    assert.deepEqual([...snapshot.subarray(0, 2)], [0xff, 0xd8]);
  });

  it('authenticates against a camera whose clock is years off (wrong-clock quirk)', async () => {
    const offset = Date.UTC(2014, 11, 24, 19, 14, 37) - Date.now();
    const r = await camera({ clockOffsetMs: offset });
    const device = await connectOnvifDevice(deviceOptions(r));
    assert.ok(Math.abs(device.clockOffsetMs - offset) < 2000, `offset ${device.clockOffsetMs} vs ${offset}`);
    assert.equal((await device.resolveStream()).profileToken, 'main');
    // Without the offset the same camera refuses us: the offset is what makes it work.
    device.soap.clockOffsetMs = 0;
    await expectOnvifError(device.getDeviceInformation(), 'NOT_AUTHORIZED');
    await device.syncClock();
    assert.equal((await device.getDeviceInformation()).model, 'Mockup Model');
  });

  it('fetches the snapshot as a real JPEG with digest auth (and basic), from an internal-IP URI', async () => {
    for (const auth of ['digest', 'basic'] as const) {
      const r = await camera({ snapshot: { auth, uriHost: '192.168.68.111' } });
      const device = await connectOnvifDevice(deviceOptions(r));
      assert.match(await device.getSnapshotUri(), /^http:\/\/192\.168\.68\.111:/);
      const image = await device.fetchSnapshot();
      assert.equal(image[0], 0xff);
      assert.equal(image[1], 0xd8);
      assert.deepEqual(await probeImage(image), { codec: 'mjpeg', width: 320, height: 240 });
    }
  });

  it('reports snapshot failures clearly: HTML page, HTML 401, wrong password', async () => {
    const html = await camera({ snapshot: { serve: 'html' } });
    await expectOnvifError((await connectOnvifDevice(deviceOptions(html))).fetchSnapshot(), 'HTML_RESPONSE');
    const html401 = await camera({ snapshot: { serve: 'html-401' } });
    await expectOnvifError((await connectOnvifDevice(deviceOptions(html401))).fetchSnapshot(), 'NOT_AUTHORIZED');
    const wrong = await camera({ snapshot: { auth: 'digest' } });
    const device = await connectOnvifDevice(deviceOptions(wrong));
    wrong.configure({ password: 'changed' });
    wrong.configure({ auth: false });
    await expectOnvifError(device.fetchSnapshot(), 'NOT_AUTHORIZED');
  });
});

describe('ONVIF failures: one clear error per camera, never a crash', () => {
  const faultCases: Array<{ label: string; options: OnvifResponderOptions; code: OnvifErrorCode; detail?: RegExp }> = [
    { label: 'wrong password, SOAP 1.2 ter:NotAuthorized', options: { password: 'other' }, code: 'NOT_AUTHORIZED', detail: /NotAuthorized/ },
    { label: 'wrong password, SOAP 1.1 wsse:FailedAuthentication', options: { password: 'other', authFailure: 'soap11-fault' }, code: 'NOT_AUTHORIZED', detail: /FailedAuthentication/ },
    { label: 'wrong password, HTML 401 page', options: { password: 'other', authFailure: 'html-401' }, code: 'NOT_AUTHORIZED', detail: /HTTP 401/ },
    { label: 'fixture Error.xml (generic SOAP 1.2 fault)', options: { overrides: { GetDeviceInformation: { kind: 'fixture', file: 'agsh-onvif-v0.x/Error.xml', status: 500 } } }, code: 'SOAP_FAULT', detail: /fault reason/ },
    { label: 'fixture Error.xml with HTTP 200', options: { overrides: { GetDeviceInformation: { kind: 'fixture', file: 'agsh-onvif-v0.x/Error.xml', status: 200 } } }, code: 'SOAP_FAULT' },
    { label: 'quirk fault.NotAuthorized.xml', options: { overrides: { GetDeviceInformation: { kind: 'fixture', file: 'quirks/fault.NotAuthorized.xml' } } }, code: 'NOT_AUTHORIZED' },
    { label: 'quirk fault.ActionNotSupported.xml', options: { overrides: { GetDeviceInformation: { kind: 'fixture', file: 'quirks/fault.ActionNotSupported.xml' } } }, code: 'ACTION_NOT_SUPPORTED', detail: /ActionNotSupported/ },
    { label: 'quirk fault.soap11-auth.xml', options: { overrides: { GetDeviceInformation: { kind: 'fixture', file: 'quirks/fault.soap11-auth.xml', status: 500 } } }, code: 'NOT_AUTHORIZED' },
    { label: 'quirk fault.ResourceUnknown.xml', options: { overrides: { GetDeviceInformation: { kind: 'fixture', file: 'quirks/fault.ResourceUnknown.xml' } } }, code: 'SOAP_FAULT' },
    { label: 'HTML 401 page as the answer', options: { overrides: { GetDeviceInformation: { kind: 'fixture', file: 'quirks/html-401.html', status: 401 } } }, code: 'NOT_AUTHORIZED' },
    { label: 'text/html login page with HTTP 200 (wrong port)', options: { overrides: { GetSystemDateAndTime: { kind: 'fixture', file: 'quirks/html-login.html', status: 200 } } }, code: 'HTML_RESPONSE', detail: /Web Client Login/ },
    { label: 'an answer that is not XML', options: { overrides: { GetDeviceInformation: { kind: 'raw', body: 'OK', contentType: 'text/plain' } } }, code: 'BAD_RESPONSE' },
    { label: 'non-well-formed raw PullMessages template as an answer', options: { overrides: { GetDeviceInformation: { kind: 'raw', body: '<a><b></a>' } } }, code: 'BAD_RESPONSE', detail: /does not match/ },
    { label: 'HTTP 500 with an empty body', options: { overrides: { GetDeviceInformation: { kind: 'raw', body: '', status: 500 } } }, code: 'HTTP_ERROR' },
    { label: 'no answer (timeout)', options: { overrides: { GetDeviceInformation: { kind: 'timeout' } } }, code: 'TIMEOUT' },
    { label: 'connection dropped', options: { overrides: { GetDeviceInformation: { kind: 'close' } } }, code: 'UNREACHABLE' },
  ];

  for (const { label, options, code, detail } of faultCases) {
    it(`${label} -> ${code}`, async () => {
      const r = await camera(options);
      const log = recordingLogger();
      const error = await expectOnvifError(connectOnvifDevice({ ...deviceOptions(r, { timeoutMs: 500 }), log }), code);
      assert.equal(error.camera, 'Front Door');
      if (detail) assert.match(error.message, detail);
      assert.equal(error.retryable, !['NOT_AUTHORIZED', 'ACTION_NOT_SUPPORTED'].includes(code));
      assertNoSecret(log.lines, error);
    });
  }

  it('tolerates good SOAP labelled text/html, and SOAP behind HTTP Digest instead of WS-Security', async () => {
    const labelled = await camera({ overrides: { GetDeviceInformation: { kind: 'fixture', file: 'agsh-onvif-v0.x/GetDeviceInformation.xml', contentType: 'text/html' } } });
    assert.equal((await connectOnvifDevice(deviceOptions(labelled))).info.model, 'Mockup Model');
    const digest = await camera({ auth: false, soapHttpDigest: true });
    const device = await connectOnvifDevice(deviceOptions(digest));
    assert.equal((await device.resolveStream()).rtspUrl, RTSP);
    const wrong = await camera({ auth: false, soapHttpDigest: true });
    await expectOnvifError(connectOnvifDevice(deviceOptions(wrong, { password: 'nope' })), 'NOT_AUTHORIZED');
  });

  it('a camera that is not there -> UNREACHABLE', async () => {
    const r = await camera();
    const port = r.port;
    await r.close();
    await expectOnvifError(connectOnvifDevice({ name: 'Gone', host: '127.0.0.1', port, log: recordingLogger(), timeoutMs: 500 }), 'UNREACHABLE');
  });

  it('a fault on GetSystemDateAndTime or GetServices is survived (local clock, GetCapabilities)', async () => {
    const r = await camera({
      overrides: {
        GetSystemDateAndTime: { kind: 'fixture', file: 'agsh-onvif-v0.x/Error.xml', status: 500 },
        GetServices: { kind: 'fixture', file: 'quirks/fault.ActionNotSupported.xml' },
      },
    });
    const device = await connectOnvifDevice(deviceOptions(r));
    assert.equal(device.services.media, `http://127.0.0.1:${r.port}/onvif/services`);
    assert.ok(r.requests.some((q) => q.command === 'GetCapabilities'));
    assert.equal((await device.resolveStream()).profileToken, 'main');
  });

  it('resolveStream faults: ActionNotSupported on GetProfiles, no usable profile', async () => {
    const r = await camera({ overrides: { GetProfiles: { kind: 'fixture', file: 'quirks/fault.ActionNotSupported.xml' } } });
    await expectOnvifError((await connectOnvifDevice(deviceOptions(r))).resolveStream(), 'ACTION_NOT_SUPPORTED');
    const empty = await camera({ overrides: { GetProfiles: { kind: 'fixture', file: 'agsh-onvif-v0.x/media.GetVideoSources.xml', status: 200 } } });
    await expectOnvifError((await connectOnvifDevice(deviceOptions(empty))).resolveStream(), 'NO_VIDEO_PROFILE');
    const noSnapshot = await camera({ overrides: { GetSnapshotUri: { kind: 'fixture', file: 'agsh-onvif-v0.x/Error.xml', status: 500 } } });
    await expectOnvifError((await connectOnvifDevice(deviceOptions(noSnapshot))).fetchSnapshot(), 'NO_SNAPSHOT_URI');
  });

  it('two cameras where one is broken: the other still works', async () => {
    const good = await camera();
    const broken = await camera({ overrides: { GetDeviceInformation: { kind: 'timeout' } } });
    const log = recordingLogger();
    const results = await Promise.allSettled([
      connectOnvifDevice({ name: 'Broken', host: broken.host, port: broken.port, username: 'admin', password: PASSWORD, log, timeoutMs: 400 }),
      connectOnvifDevice({ name: 'Good', host: good.host, port: good.port, username: 'admin', password: PASSWORD, log, timeoutMs: 400 }),
    ]);
    assert.equal(results[0].status, 'rejected');
    assert.ok(results[0].status === 'rejected' && results[0].reason instanceof OnvifError);
    assert.match((results[0] as PromiseRejectedResult).reason.message as string, /"Broken".*did not answer in time/);
    assert.equal(results[1].status, 'fulfilled');
    const device = (results[1] as PromiseFulfilledResult<Awaited<ReturnType<typeof connectOnvifDevice>>>).value;
    assert.equal((await device.resolveStream()).rtspUrl, RTSP);
    assert.deepEqual([...(await device.fetchSnapshot()).subarray(0, 2)], [0xff, 0xd8]);
  });

  it('retryOnvif: one error line per kind of failure, retries until the camera works, then says so', async () => {
    const r = await camera({ overrides: { GetDeviceInformation: { kind: 'timeout' } } });
    const log = recordingLogger();
    const errors: OnvifError[] = [];
    const connected = retryOnvif(
      () => connectOnvifDevice({ name: 'Flaky', host: r.host, port: r.port, username: 'admin', password: PASSWORD, log, timeoutMs: 150 }),
      { log, camera: 'Flaky', initialDelayMs: 20, maxDelayMs: 50, onError: (e) => errors.push(e) },
    );
    while (errors.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    r.setOverride('GetDeviceInformation', undefined);
    const device = await connected;
    assert.equal(device.info.model, 'Mockup Model');
    assert.ok(errors.every((e) => e.code === 'TIMEOUT'));
    assert.equal(log.lines.filter((l) => l.startsWith('error')).length, 1, log.lines.join('\n'));
    assert.ok(log.lines.some((l) => /reachable again/.test(l)));

    const controller = new AbortController();
    const gone = retryOnvif(() => connectOnvifDevice({ name: 'Gone', host: '127.0.0.1', port: 9, log, timeoutMs: 100 }), {
      log,
      camera: 'Gone',
      signal: controller.signal,
      initialDelayMs: 1000,
    });
    setTimeout(() => controller.abort(), 50);
    await expectOnvifError(gone, 'ABORTED');
  });
});
