import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEMO_CAMERA_ID, describeCamera, loadConfig } from '../../src/config/load-config.js';
import type { CameraConfig, LoadedConfig } from '../../src/config/types.js';
import { parseRtspUrl } from '../../src/rtsp/url.js';
import { redactingLogger, type Logger } from '../../src/util/logger.js';

const URL_OK = 'rtsp://user:secret@127.0.0.1:1/x';

function load(block: Record<string, unknown>): LoadedConfig {
  return loadConfig({ platform: 'WebRTCCameras', ...block });
}

function errors(result: LoadedConfig): string[] {
  return result.messages.filter((m) => m.level === 'error').map((m) => m.text);
}

function warnings(result: LoadedConfig): string[] {
  return result.messages.filter((m) => m.level === 'warn').map((m) => m.text);
}

function only(result: LoadedConfig): CameraConfig {
  assert.equal(result.config.cameras.length, 1, JSON.stringify(result.messages));
  return result.config.cameras[0]!;
}

describe('loadConfig: cameras', () => {
  it('applies every default from the schema to a minimal camera', () => {
    const result = load({ cameras: [{ name: 'Front Door', rtspUrl: URL_OK }] });
    assert.deepEqual(result.messages, []);
    const camera = only(result);
    assert.deepEqual(camera, {
      index: 0,
      name: 'Front Door',
      id: 'front-door',
      source: { kind: 'rtsp', url: 'rtsp://127.0.0.1:1/x', username: 'user', password: 'secret' },
      onvif: undefined,
      audio: true,
      twoWayAudio: false,
      talkFormat: 'PCMA',
      transport: 'auto',
      alwaysOn: false,
      external: false,
      scaleOut: false,
      motion: false,
      motionHttpTrigger: false,
      videoMotion: false,
      videoMotionSensitivity: 50,
      motionResetSeconds: 30,
      tamperSensor: false,
      crossingSensor: false,
      maxViewers: 10,
      maxHomeKitStreams: 4,
      snapshotUrl: undefined,
      manufacturer: 'WebRTC Cameras',
      model: 'RTSP camera',
      serialNumber: 'front-door',
    });
  });

  it('keeps explicit values', () => {
    const camera = only(load({
      cameras: [{
        name: 'Porch', id: 'p1', rtspUrl: URL_OK, audio: false, transport: 'udp', alwaysOn: true, maxViewers: 3,
        maxHomeKitStreams: 2, snapshotUrl: 'http://127.0.0.1/snap.jpg', manufacturer: 'D-Link', model: 'DCS-7010L', serialNumber: 'SN1',
      }],
    }));
    assert.equal(camera.id, 'p1');
    assert.equal(camera.audio, false);
    assert.equal(camera.transport, 'udp');
    assert.equal(camera.alwaysOn, true);
    assert.equal(camera.maxViewers, 3);
    assert.equal(camera.maxHomeKitStreams, 2);
    assert.equal(camera.snapshotUrl, 'http://127.0.0.1/snap.jpg');
    assert.deepEqual([camera.manufacturer, camera.model, camera.serialNumber], ['D-Link', 'DCS-7010L', 'SN1']);
  });

  it('skips a camera whose rtspUrl is not rtsp:// with a message naming camera, field and a fix; the others run', () => {
    const result = load({
      cameras: [
        { name: 'Front', rtspUrl: URL_OK },
        { name: 'Porch', rtspUrl: 'http://user:hunter22@192.168.0.20/live1.sdp' },
      ],
    });
    assert.deepEqual(result.config.cameras.map((c) => c.name), ['Front']);
    const [error] = errors(result);
    assert.match(error!, /^Camera 'Porch' \(cameras\[1\]\): rtspUrl must start with rtsp:\/\//);
    assert.match(error!, /\(it is "http:\/\/user:\*\*\*@192\.168\.0\.20\/live1\.sdp"\) — e\.g\. rtsp:\/\/192\.168\.0\.20:554\/live1\.sdp, with the log-in in username and password/);
    assert.match(error!, /skipped/);
    assert.ok(!error!.includes('hunter22'), error);
  });

  it('requires a name', () => {
    const result = load({ cameras: [{ rtspUrl: URL_OK }] });
    assert.equal(result.config.cameras.length, 0);
    assert.match(errors(result)[0]!, /^Camera #1 \(cameras\[0\]\): name is required — e\.g\. Front Door/);
  });

  it('rejects an empty name and a camera that is not an object', () => {
    const result = load({ cameras: [{ name: '   ', rtspUrl: URL_OK }, 'rtsp://x/y'] });
    assert.equal(result.config.cameras.length, 0);
    assert.equal(errors(result).length, 2);
    assert.match(errors(result)[1]!, /cameras\[1\] must be a group of settings/);
  });

  it('requires a stream: rtspUrl or onvif.host', () => {
    const result = load({ cameras: [{ name: 'Nothing', audio: false }] });
    assert.equal(result.config.cameras.length, 0);
    assert.deepEqual(errors(result), [
      "Camera 'Nothing' (cameras[0]): it has no stream: set rtspUrl, the RTSP address (e.g. rtsp://192.168.0.20:554/live1.sdp), or onvif.host, the ONVIF camera address (e.g. 192.168.0.20). This camera is skipped until that is fixed; the other cameras run.",
    ]);
  });

  it('rejects an rtspUrl that does not parse (bad port)', () => {
    const result = load({ cameras: [{ name: 'X', rtspUrl: 'rtsp://user:pw123@host:99999/x' }] });
    assert.equal(result.config.cameras.length, 0);
    assert.match(errors(result)[0]!, /rtspUrl is not a valid address \(it is "rtsp:\/\/user:\*\*\*@host:99999\/x"\)/);
  });

  it('rejects an rtspUrl without a host', () => {
    const result = load({ cameras: [{ name: 'X', rtspUrl: 'rtsp:///live' }] });
    assert.match(errors(result)[0]!, /rtspUrl has no camera address/);
  });

  it('uses ONVIF when there is no rtspUrl, with the camera log-in as fallback', () => {
    const camera = only(load({ cameras: [{ name: 'Cam', username: 'admin', password: 'pw-cam', onvif: { host: '192.168.0.20' } }] }));
    assert.deepEqual(camera.source, { kind: 'onvif', onvif: { host: '192.168.0.20', port: 80, username: 'admin', password: 'pw-cam' } });
    assert.equal(camera.model, 'ONVIF camera');
  });

  it('keeps ONVIF next to an rtspUrl (for motion) and lets ONVIF credentials override', () => {
    const camera = only(load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, motion: true, onvif: { host: 'cam.local', port: 8000, username: 'o', password: 'opw' } }] }));
    assert.equal(camera.source.kind, 'rtsp');
    assert.deepEqual(camera.onvif, { host: 'cam.local', port: 8000, username: 'o', password: 'opw' });
    assert.equal(camera.motion, true);
  });

  it('rejects an ONVIF host with a scheme or a port', () => {
    for (const host of ['http://192.168.0.20', '192.168.0.20:80']) {
      const result = load({ cameras: [{ name: 'Cam', onvif: { host } }] });
      assert.equal(result.config.cameras.length, 0, host);
      assert.match(errors(result)[0]!, /onvif\.host must be the camera's IP address or host name only/);
    }
    assert.equal(load({ cameras: [{ name: 'Cam', onvif: { host: 'fe80::1:2' } }] }).config.cameras.length, 1);
  });

  it('turns motion off (with a warning) when there is no ONVIF', () => {
    const result = load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, motion: true }] });
    assert.equal(only(result).motion, false);
    assert.match(warnings(result)[0]!, /Camera 'Cam' \(cameras\[0\]\): motion needs ONVIF .*the motion sensor is off\. .*motionHttpTrigger/);
  });

  it('takes motion from a web address (motionHttpTrigger) with or without ONVIF, off unless set', () => {
    assert.equal(only(load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK }] })).motionHttpTrigger, false);
    const plain = load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, motionHttpTrigger: true, motionResetSeconds: 5 }] });
    assert.deepEqual(plain.messages, []);
    assert.deepEqual([only(plain).motionHttpTrigger, only(plain).motion, only(plain).motionResetSeconds], [true, false, 5]);
    const both = only(load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, onvif: { host: '192.168.0.20' }, motion: true, motionHttpTrigger: true }] }));
    assert.deepEqual([both.motion, both.motionHttpTrigger], [true, true]);
    // ONVIF motion asked for without ONVIF: the sensor still follows the web address, and the warning says so.
    const noOnvif = load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, motion: true, motionHttpTrigger: true }] });
    assert.deepEqual([only(noOnvif).motion, only(noOnvif).motionHttpTrigger], [false, true]);
    assert.match(warnings(noOnvif).join('\n'), /motion \(the camera's ONVIF motion events\) needs ONVIF \(set onvif\.host\); the motion sensor follows only the camera's calls of its web address \(motionHttpTrigger\)/);
    const typo = load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, motionHttpTrigger: 'yes' }] });
    assert.deepEqual(typo.config.cameras, []);
    assert.match(errors(typo).join('\n'), /motionHttpTrigger must be true or false/);
  });

  it('carries the separate user name and password beside the URL, as typed', () => {
    const camera = only(load({ cameras: [{ name: 'Cam', rtspUrl: 'rtsp://192.168.0.20:554/live1.sdp', username: 'admin', password: 'p@ss:w/rd' }] }));
    assert.deepEqual(camera.source, { kind: 'rtsp', url: 'rtsp://192.168.0.20:554/live1.sdp', username: 'admin', password: 'p@ss:w/rd' });
  });

  it('accepts a password with a raw # or ? typed into rtspUrl, and reads the right host (issue 12, item 10)', () => {
    for (const [typed, password] of [
      ['rtsp://admin:pa#ss?w0rd@192.168.0.20:554/live1.sdp', 'pa#ss?w0rd'],
      // Digits after the ':' once made `new URL` read "admin" as the host and "12" as the port.
      ['rtsp://admin:12#34@192.168.0.20/live1.sdp', '12#34'],
      ['rtsp://admin:?x@y#@192.168.0.20:554/cam/realmonitor?channel=1&subtype=0', '?x@y#'],
    ] as const) {
      const result = load({ cameras: [{ name: 'Cam', rtspUrl: typed }] });
      assert.deepEqual(errors(result), [], typed);
      const source = only(result).source;
      assert.equal(source.kind, 'rtsp');
      const target = parseRtspUrl(source.kind === 'rtsp' ? source.url : '');
      assert.equal(target.hostname, '192.168.0.20', typed);
      // The log-in is split off the typed URL once, here, and travels beside it.
      assert.equal(target.username, undefined);
      assert.equal(target.password, undefined);
      assert.equal(source.kind === 'rtsp' ? source.username : undefined, 'admin');
      assert.equal(source.kind === 'rtsp' ? source.password : undefined, password, typed);
    }
    const query = only(load({ cameras: [{ name: 'Cam', rtspUrl: 'rtsp://admin:a#b@192.168.0.20:554/cam/realmonitor?channel=1&subtype=0' }] })).source;
    assert.deepEqual(query, { kind: 'rtsp', url: 'rtsp://192.168.0.20:554/cam/realmonitor?channel=1&subtype=0', username: 'admin', password: 'a#b' });
  });

  it('lets the separate fields replace a log-in written in the URL, with a warning', () => {
    const result = load({ cameras: [{ name: 'Cam', rtspUrl: 'rtsp://old:oldpw@h/x', username: 'new', password: 'newpw' }] });
    assert.deepEqual(only(result).source, { kind: 'rtsp', url: 'rtsp://h/x', username: 'new', password: 'newpw' });
    assert.match(warnings(result)[0]!, /replace the log-in written in rtspUrl/);
  });

  it('adds a lone password to a URL that has the user name', () => {
    assert.deepEqual(only(load({ cameras: [{ name: 'Cam', rtspUrl: 'rtsp://admin@h/x', password: 'pw' }] })).source, { kind: 'rtsp', url: 'rtsp://h/x', username: 'admin', password: 'pw' });
  });

  it('warns about a password without any user name', () => {
    const result = load({ cameras: [{ name: 'Cam', rtspUrl: 'rtsp://h/x', password: 'pw' }] });
    assert.deepEqual(only(result).source, { kind: 'rtsp', url: 'rtsp://h/x' });
    assert.match(warnings(result)[0]!, /password is set without a user name/);
  });

  it('derives ids from names and rejects duplicates, naming both cameras', () => {
    const result = load({
      cameras: [
        { name: 'Front Door', rtspUrl: URL_OK },
        { name: 'front door!', rtspUrl: URL_OK },
        { name: 'Other', id: 'front-door', rtspUrl: URL_OK },
        { name: 'Another', id: 'another-id', rtspUrl: URL_OK },
      ],
    });
    assert.deepEqual(result.config.cameras.map((c) => c.id), ['front-door', 'another-id']);
    const errs = errors(result);
    assert.equal(errs.length, 2);
    assert.match(errs[0]!, /^Camera 'front door!' \(cameras\[1\]\): its id 'front-door' is already used by Camera 'Front Door' \(cameras\[0\]\)\. .*set a different "id"/);
    assert.match(errs[1]!, /^Camera 'Other' \(cameras\[2\]\): its id 'front-door' is already used/);
  });

  it('falls back to camera-<n> for names without Latin letters or digits', () => {
    assert.equal(only(load({ cameras: [{ name: '玄関', rtspUrl: URL_OK }] })).id, 'camera-1');
  });

  it('rejects an invalid id with the allowed characters', () => {
    const result = load({ cameras: [{ name: 'Cam', id: 'Front Door', rtspUrl: URL_OK }] });
    assert.match(errors(result)[0]!, /id may only use lower-case letters, digits and dashes.* \(it is "Front Door"\) — e\.g\. front-door/);
  });

  it('explains enum, range and type errors', () => {
    const result = load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, transport: 'tcpp', maxHomeKitStreams: 0, audio: 'yes', motionResetSeconds: 1.5 }] });
    const [error] = errors(result);
    assert.match(error!, /transport must be one of auto, tcp, udp \(it is "tcpp"\)/);
    assert.match(error!, /maxHomeKitStreams must be between 1 and 16 \(it is 0\)/);
    assert.match(error!, /audio must be true or false \(it is "yes"\)/);
    assert.match(error!, /motionResetSeconds must be a whole number \(it is 1\.5\)/);
  });

  it('treats empty strings as unset (a cleared form field)', () => {
    const camera = only(load({ cameras: [{ name: 'Cam', rtspUrl: '', id: '', onvif: { host: '10.0.0.2', username: '' } }] }));
    assert.equal(camera.source.kind, 'onvif');
    assert.equal(camera.id, 'cam');
  });

  it('warns about unknown camera settings with a suggestion, and still runs the camera', () => {
    const result = load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, alwayson: true }] });
    assert.equal(result.config.cameras.length, 1);
    assert.match(warnings(result)[0]!, /Camera 'Cam' \(cameras\[0\]\): unknown setting 'alwayson' is ignored — did you mean 'alwaysOn'\?/);
  });

  it('rejects a cameras value that is not a list, and does not show the demo instead', () => {
    const result = load({ cameras: { name: 'Cam' } });
    assert.deepEqual(result.config.cameras, []);
    assert.match(errors(result)[0]!, /cameras must be a list/);
  });

  it('describes cameras for messages', () => {
    assert.equal(describeCamera({ name: 'Porch', index: 1 }), "Camera 'Porch' (cameras[1])");
    assert.equal(describeCamera({ name: 'Demo Camera', index: -1 }), "Camera 'Demo Camera' (demo)");
  });
});

describe('loadConfig: PTZ preset switches', () => {
  it('kept (trimmed, without repeats) for an ONVIF camera; absent when not set', () => {
    const camera = only(load({ cameras: [{ name: 'Dome', onvif: { host: '192.168.0.30' }, ptzPresetSwitches: [' Driveway ', 'P002', 'Driveway'] }] }));
    assert.deepEqual(camera.ptzPresetSwitches, ['Driveway', 'P002']);
    assert.equal('ptzPresetSwitches' in only(load({ cameras: [{ name: 'Dome', onvif: { host: '192.168.0.30' } }] })), false);
  });
  it('ignored with a warning without ONVIF; refused when not a list of short texts', () => {
    const result = load({ cameras: [{ name: 'Fixed', rtspUrl: URL_OK, ptzPresetSwitches: ['Driveway'] }] });
    assert.equal(only(result).ptzPresetSwitches, undefined);
    assert.match(warnings(result)[0]!, /Camera 'Fixed' \(cameras\[0\]\): ptzPresetSwitches needs ONVIF/);
    const bad = load({ cameras: [{ name: 'Dome', onvif: { host: '192.168.0.30' }, ptzPresetSwitches: ['x'.repeat(65)] }] });
    assert.equal(bad.config.cameras.length, 0);
    assert.match(errors(bad)[0]!, /ptzPresetSwitches/);
  });
});

describe('loadConfig: the demo camera', () => {
  it('stands in when no camera is configured', () => {
    for (const block of [{}, { cameras: [] }]) {
      const camera = only(load(block));
      assert.equal(camera.id, DEMO_CAMERA_ID);
      assert.equal(camera.name, 'Demo Camera');
      assert.deepEqual(camera.source, { kind: 'demo' });
      assert.equal(camera.maxHomeKitStreams, 4);
    }
  });

  it('is off with demo: false', () => {
    const result = load({ demo: false });
    assert.deepEqual(result.config.cameras, []);
    assert.equal(result.config.demo, false);
  });

  it('does not replace cameras that are all invalid', () => {
    assert.deepEqual(load({ cameras: [{ name: 'Bad', rtspUrl: 'http://x' }] }).config.cameras, []);
  });
});

describe('loadConfig: global sections', () => {
  it('gives every section its defaults', () => {
    const { config, messages } = load({});
    assert.deepEqual(messages, []);
    assert.equal(config.name, 'WebRTC Cameras');
    assert.equal(config.demo, true);
    assert.deepEqual(config.discovery, { enabled: false, interfaces: [], probeAddresses: [] });
    assert.deepEqual(config.web, {
      port: 8090, bind: '0.0.0.0', publicUrl: undefined, allowedOrigins: [], trustedProxies: [], maxViewsPerUser: 32, maxViewsPerAddress: 32, maxConnectingViews: 4,
      tls: { selfSigned: false, certPath: undefined, keyPath: undefined },
    });
    assert.deepEqual(config.viewers, []);
    assert.deepEqual(config.shareLinks, { defaultExpiry: '1d', defaultExpiryMs: 86_400_000 });
    assert.deepEqual(config.ice, { stunServers: [], turnServers: [], udpPortMin: undefined, udpPortMax: undefined, announcedAddresses: [], iceTcp: false });
    assert.deepEqual(config.ffmpeg, { videoProcessor: undefined, debug: false });
    assert.deepEqual(config.restream, { port: 8554, lanAccess: false, username: undefined, password: undefined });
  });

  it('keeps valid sections', () => {
    const { config, messages } = load({
      name: 'Cams',
      discovery: { enabled: true, interfaces: ['eth0'], probeAddresses: ['10.0.5.20', '10.0.6.7:3703'] },
      web: { port: 9000, bind: '127.0.0.1', publicUrl: 'https://cams.example.com', allowedOrigins: ['https://Dash.Example.com:443/', 'http://10.0.0.5:8123'], trustedProxies: ['127.0.0.1', 'fd00::/8'], maxViewsPerUser: 100, maxViewsPerAddress: 60, maxConnectingViews: 50, tls: { certPath: '/c.pem', keyPath: '/k.pem' } },
      shareLinks: { defaultExpiry: '7d' },
      ice: { stunServers: ['stun:stun.example.com:3478'], turnServers: [{ urls: 'turn:t.example.com', username: 'u', credential: 'c' }], udpPortMin: 50000, udpPortMax: 50100, announcedAddresses: ['203.0.113.7'], iceTcp: true },
      ffmpeg: { videoProcessor: '/opt/ffmpeg', debug: true },
      restream: { port: 8555, lanAccess: true, username: 'rec', password: 'recpw' },
    });
    assert.deepEqual(messages, []);
    assert.equal(config.name, 'Cams');
    assert.deepEqual(config.discovery, { enabled: true, interfaces: ['eth0'], probeAddresses: [{ address: '10.0.5.20', port: 3702 }, { address: '10.0.6.7', port: 3703 }] });
    // Origins as a browser writes them: lower-case, default port dropped, no slash.
    const allowedOrigins = ['https://dash.example.com', 'http://10.0.0.5:8123'];
    assert.deepEqual(config.web, {
      port: 9000, bind: '127.0.0.1', publicUrl: 'https://cams.example.com', allowedOrigins, trustedProxies: ['127.0.0.1', 'fd00::/8'],
      maxViewsPerUser: 100, maxViewsPerAddress: 60, maxConnectingViews: 50, tls: { selfSigned: false, certPath: '/c.pem', keyPath: '/k.pem' },
    });
    assert.equal(config.shareLinks.defaultExpiryMs, 7 * 86_400_000);
    assert.equal(config.ice.udpPortMax, 50100);
    assert.equal(config.ice.turnServers[0]?.credential, 'c');
    assert.deepEqual(config.ffmpeg, { videoProcessor: '/opt/ffmpeg', debug: true });
    assert.deepEqual(config.restream, { port: 8555, lanAccess: true, username: 'rec', password: 'recpw' });
  });

  it('falls back to the section defaults, with a warning, when a field is invalid', () => {
    const result = load({ web: { port: 70000, bind: '127.0.0.1' }, cameras: [{ name: 'Cam', rtspUrl: URL_OK }] });
    assert.equal(result.config.web.port, 8090);
    assert.equal(result.config.web.bind, '0.0.0.0');
    assert.equal(result.config.cameras.length, 1);
    assert.match(warnings(result)[0]!, /^web\.port must be between 0 and 65535 \(it is 70000\) — e\.g\. 8090\. Using the default 'web' settings/);
  });

  it('explains a bad viewer limit (web.maxViewsPerUser / maxViewsPerAddress) and keeps the default limits', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ maxViewsPerUser: 0 }, /^web\.maxViewsPerUser must be between 1 and 1000 \(it is 0\) — e\.g\. 32\. Using the default 'web' settings/],
      [{ maxViewsPerAddress: 5000 }, /^web\.maxViewsPerAddress must be between 1 and 1000 \(it is 5000\) — e\.g\. 32\. Using the default 'web' settings/],
      [{ maxViewsPerUser: 2.5 }, /^web\.maxViewsPerUser must be a whole number/],
      [{ maxViewsPerAddress: '40' }, /^web\.maxViewsPerAddress must be a whole number/],
    ];
    for (const [web, message] of cases) {
      const result = load({ web: { port: 9000, ...web } });
      assert.match(warnings(result)[0]!, message, JSON.stringify(web));
      assert.equal(result.config.web.port, 8090, 'the whole section falls back, as for every bad web field');
      assert.equal(result.config.web.maxViewsPerUser, 32);
      assert.equal(result.config.web.maxViewsPerAddress, 32);
    }
  });

  it('explains a bad web.maxConnectingViews (1 to the hard ceiling of 100) and keeps the default of 4', () => {
    const cases: Array<[unknown, RegExp]> = [
      [0, /^web\.maxConnectingViews must be between 1 and 100 \(it is 0\) — e\.g\. 4\. Using the default 'web' settings/],
      [101, /^web\.maxConnectingViews must be between 1 and 100 \(it is 101\) — e\.g\. 4\. Using the default 'web' settings/],
      [1.5, /^web\.maxConnectingViews must be a whole number/],
    ];
    for (const [maxConnectingViews, message] of cases) {
      const result = load({ web: { port: 9000, maxConnectingViews } });
      assert.match(warnings(result)[0]!, message, String(maxConnectingViews));
      assert.equal(result.config.web.port, 8090, 'the whole section falls back, as for every bad web field');
      assert.equal(result.config.web.maxConnectingViews, 4);
    }
    assert.equal(load({ web: { maxConnectingViews: 100 } }).config.web.maxConnectingViews, 100);
  });

  it('checks rules across fields of a section', () => {
    const half = load({ ice: { udpPortMin: 50000 } });
    assert.match(warnings(half)[0]!, /ice\.udpPortMin and ice\.udpPortMax must be set together/);
    assert.equal(half.config.ice.udpPortMin, undefined);
    const upside = load({ ice: { udpPortMin: 50100, udpPortMax: 50000 } });
    assert.match(warnings(upside)[0]!, /ice\.udpPortMin \(50100\) must not be above ice\.udpPortMax \(50000\)/);
    const tls = load({ web: { tls: { certPath: '/c.pem' } } });
    assert.match(warnings(tls)[0]!, /web\.tls\.certPath and web\.tls\.keyPath must be set together/);
    const lan = load({ restream: { lanAccess: true, username: 'rec' } });
    assert.match(warnings(lan)[0]!, /restream\.lanAccess needs restream\.username and restream\.password/);
    assert.equal(lan.config.restream.lanAccess, false);
  });

  it('reads the scale-out gateways; a blank form entry is no gateway; a bad or repeated address keeps scale-out off with a clear reason; their secrets are redacted', () => {
    const good = load({
      cameras: [{ name: 'Yard', rtspUrl: URL_OK, scaleOut: true }],
      scaleOut: { janus: [{ url: 'http://10.0.0.30:8088/janus', apiSecret: 'api-Secret-9', adminKey: 'admin-Key-9' }, {}], allCameras: false },
    });
    assert.deepEqual(warnings(good), []);
    assert.deepEqual(good.config.scaleOut, { allCameras: false, janus: [{ url: 'http://10.0.0.30:8088/janus', apiSecret: 'api-Secret-9', adminKey: 'admin-Key-9' }] });
    assert.equal(good.config.cameras[0]?.scaleOut, true);
    assert.ok(good.secrets.has('api-Secret-9') && good.secrets.has('admin-Key-9'), 'both go to the redacting logger');
    assert.deepEqual(load({}).config.scaleOut, { allCameras: false, janus: [] });
    const bad = load({ scaleOut: { janus: [{ url: 'janus.local:8088' }] } });
    assert.match(warnings(bad)[0]!, /scaleOut\.janus\[0\]\.url must start with http:\/\/ or https:\/\//);
    assert.deepEqual(bad.config.scaleOut.janus, []);
    const twice = load({ scaleOut: { janus: [{ url: 'http://10.0.0.30:8088/janus' }, { url: 'http://10.0.0.30:8088/janus' }] } });
    assert.match(warnings(twice)[0]!, /scaleOut\.janus\[1\]\.url names the same gateway twice/);
  });

  it('explains pattern errors in sections', () => {
    assert.match(warnings(load({ ice: { stunServers: ['stun.example.com'] } }))[0]!, /ice\.stunServers\[0\] must start with stun: \(it is "stun\.example\.com"\) — e\.g\. stun:stun\.l\.google\.com:19302/);
    assert.match(warnings(load({ web: { bind: 'localhost' } }))[0]!, /web\.bind must be an IP address of this computer/);
    const proxies = load({ web: { trustedProxies: ['10.0.0.0/33'] } });
    assert.match(warnings(proxies)[0]!, /web\.trustedProxies: "10\.0\.0\.0\/33" is not an IP address or a CIDR range — e\.g\. 127\.0\.0\.1/);
    assert.match(warnings(load({ web: { trustedProxies: ['nginx'] } }))[0]!, /web\.trustedProxies\[0\] must be an IP address or a CIDR range/);
    for (const origin of ['https://dash.example.com/page', 'dash.example.com', '*', 'https://user@dash.example.com']) {
      const result = load({ web: { allowedOrigins: [origin] } });
      assert.match(warnings(result)[0]!, /web\.allowedOrigins\[0\] must be a web site's origin only .* e\.g\. https:\/\/dashboard\.example\.com/, origin);
      assert.deepEqual(result.config.web.allowedOrigins, [], 'the section falls back to its defaults');
    }
    assert.match(warnings(load({ shareLinks: { defaultExpiry: '2d' } }))[0]!, /shareLinks\.defaultExpiry must be one of 1h, 1d, 7d, 30d/);
  });

  it('warns about a bad top-level scalar and uses its default', () => {
    const result = load({ demo: 'no', name: 5 });
    assert.equal(result.config.demo, true);
    assert.equal(result.config.name, 'WebRTC Cameras');
    assert.equal(warnings(result).length, 2);
    assert.match(warnings(result)[0]!, /name must be text \(it is 5\)/);
    assert.match(warnings(result)[1]!, /demo must be true or false \(it is "no"\)/);
  });

  it('warns about unknown top-level settings, with a suggestion, but not about Homebridge\'s own keys', () => {
    const result = loadConfig({ platform: 'WebRTCCameras', _bridge: { username: '0E:00:00:00:00:01', port: 0 }, camera: [], webb: {}, web: { prot: 1 } });
    const texts = warnings(result);
    assert.equal(texts.length, 3, texts.join('\n'));
    assert.match(texts[0]!, /Unknown setting 'camera' is ignored — did you mean 'cameras'\?/);
    assert.match(texts[1]!, /Unknown setting 'webb' is ignored — did you mean 'web'\?/);
    assert.match(texts[2]!, /Unknown setting 'web\.prot' is ignored — did you mean 'port'\?/);
  });

  it('survives input that is not an object', () => {
    for (const input of ['text', 42, [], null]) {
      const result = loadConfig(input);
      assert.equal(result.config.web.port, 8090);
      assert.match(errors(result)[0]!, /not a JSON object/);
    }
  });
});

describe('loadConfig: viewers (reserved for access control)', () => {
  it('keeps valid viewers, skips invalid and duplicate ones, warns about unknown camera ids', () => {
    const result = load({
      cameras: [{ name: 'Front', rtspUrl: URL_OK }],
      viewers: [
        { username: 'alice', password: 'a-pw', cameras: ['front'], admin: true },
        { username: 'bob', password: 'b-pw', cameras: ['back'] },
        { username: 'alice', password: 'other' },
        { username: 'no pass' },
      ],
    });
    assert.deepEqual(result.config.viewers, [
      { username: 'alice', password: 'a-pw', cameras: ['front'], admin: true, ptz: false, talk: false },
      { username: 'bob', password: 'b-pw', cameras: ['back'], admin: false, ptz: false, talk: false },
    ]);
    assert.match(warnings(result)[0]!, /Viewer 'bob' \(viewers\[1\]\): no camera has the id 'back'; known ids: front/);
    const errs = errors(result);
    assert.match(errs[0]!, /Viewer 'alice' \(viewers\[2\]\): the user name 'alice' is used twice/);
    assert.match(errs[1]!, /Viewer 'no pass' \(viewers\[3\]\): password is required; username must not contain spaces or colons/);
  });

  it('ptz: the PTZ right is off unless granted, and must be true or false', () => {
    const result = load({
      cameras: [{ name: 'Dome', rtspUrl: URL_OK }],
      viewers: [
        { username: 'carol', password: 'c-pw', ptz: true },
        { username: 'dave', password: 'd-pw' },
        { username: 'erin', password: 'e-pw', ptz: 'yes' },
      ],
    });
    assert.deepEqual(result.config.viewers.map((v) => [v.username, v.ptz]), [['carol', true], ['dave', false]]);
    assert.match(errors(result)[0]!, /Viewer 'erin' \(viewers\[2\]\): ptz must be/);
    // A blank form entry with the default ticked off is not a viewer.
    assert.deepEqual(load({ viewers: [{ admin: false, ptz: false }] }).config.viewers, []);
  });
});

describe('loadConfig: secrets', () => {
  const nasty = {
    platform: 'WebRTCCameras',
    cameras: [
      { name: 'Good', rtspUrl: 'rtsp://admin:Url-Secret1@127.0.0.1:1/x' },
      { name: 'Bad', rtspUrl: 'http://admin:Bad-Secret2@127.0.0.1/x', onvif: { host: 'x y', password: 'Onvif-Secret3' } },
      { name: 'Field', rtspUrl: 'rtsp://127.0.0.1/x', username: 'u', password: 'F@eld:Secret4' },
      { name: 'Raw', rtspUrl: 'rtsp://admin:R@w-Secret5@127.0.0.1/x' },
      { name: 'Snap', rtspUrl: URL_OK, snapshotUrl: 'http://u:Snap-Secret6@127.0.0.1/s.jpg', transport: 7 },
    ],
    viewers: [{ username: 'v', password: 'Viewer-Secret7' }, { username: 'w w', password: 'Viewer-Secret8' }],
    ice: { turnServers: [{ urls: 'turn:x', credential: 'Turn-Secret9' }], udpPortMin: 1 },
    restream: { lanAccess: true, password: 'Restream-Secret10' },
  };
  const all = ['Url-Secret1', 'Bad-Secret2', 'Onvif-Secret3', 'F@eld:Secret4', 'R@w-Secret5', 'Snap-Secret6', 'Viewer-Secret7', 'Viewer-Secret8', 'Turn-Secret9', 'Restream-Secret10'];

  it('registers every secret, including those of invalid entries', () => {
    const { secrets } = loadConfig(nasty);
    for (const secret of all) assert.ok(secrets.has(secret), secret);
  });

  it('never puts a secret in a message, even unredacted', () => {
    const { messages } = loadConfig(nasty);
    assert.ok(messages.length >= 4, JSON.stringify(messages));
    for (const { text } of messages) {
      for (const secret of all) {
        assert.ok(!text.includes(secret) && !text.includes(encodeURIComponent(secret)), `${secret} in: ${text}`);
      }
    }
  });

  it('lets a redacting logger hide the camera URLs and log-ins the rest of the plugin prints', () => {
    const { config, secrets } = loadConfig(nasty);
    const lines: string[] = [];
    const sink: Logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), debug: (m) => lines.push(m) };
    const log = redactingLogger(sink, secrets);
    // Even printed carelessly, URL and log-in fields together: the secrets list covers the fields.
    for (const camera of config.cameras) if (camera.source.kind === 'rtsp') log.debug(`opening ${camera.source.url} as ${camera.source.username ?? ''}:${camera.source.password ?? ''}`);
    assert.equal(lines.length, 3);
    for (const line of lines) for (const secret of all) assert.ok(!line.includes(secret) && !line.includes(encodeURIComponent(secret)), line);
  });
});

describe('loadConfig: doorbell and ONVIF event sensors (issue 17)', () => {
  const ONVIF = { host: '192.168.0.20', username: 'admin', password: 'pw' };

  it('takes doorbell: true as {enabled: true}, and a topic and the HTTP trigger from the object', () => {
    const short = only(load({ cameras: [{ name: 'Door', rtspUrl: URL_OK, onvif: ONVIF, doorbell: true }] }));
    assert.deepEqual(short.doorbell, { topics: [], httpTrigger: false, onvif: true });
    const full = load({ cameras: [{ name: 'Door', rtspUrl: URL_OK, onvif: ONVIF, doorbell: { enabled: true, topic: 'tns1:RuleEngine/Bell', httpTrigger: true } }] });
    assert.deepEqual(full.messages, []);
    assert.deepEqual(only(full).doorbell, { topics: ['tns1:RuleEngine/Bell'], httpTrigger: true, onvif: true });
    assert.equal(only(load({ cameras: [{ name: 'Door', rtspUrl: URL_OK, doorbell: false }] })).doorbell, undefined);
  });

  it('warns when nothing can ring the doorbell, and when a topic needs ONVIF', () => {
    const result = load({ cameras: [{ name: 'Door', rtspUrl: URL_OK, doorbell: { enabled: true, topic: 'tns1:X/Y' } }] });
    assert.deepEqual(only(result).doorbell, { topics: [], httpTrigger: false, onvif: false });
    const text = warnings(result).join('\n');
    assert.match(text, /doorbell\.topic is an ONVIF event topic and needs onvif\.host/);
    assert.match(text, /nothing can ring the doorbell yet: set onvif\.host .* or doorbell\.httpTrigger/);
    const pushOnly = load({ cameras: [{ name: 'Door', rtspUrl: URL_OK, doorbell: { enabled: true, httpTrigger: true } }] });
    assert.deepEqual(warnings(pushOnly), []);
    const off = load({ cameras: [{ name: 'Door', rtspUrl: URL_OK, doorbell: { httpTrigger: true } }] });
    assert.equal(only(off).doorbell, undefined);
    assert.match(warnings(off).join('\n'), /ignored because the doorbell is off/);
  });

  it('refuses a doorbell topic with spaces or markup, naming the field and an example', () => {
    const result = load({ cameras: [{ name: 'Door', rtspUrl: URL_OK, onvif: ONVIF, doorbell: { enabled: true, topic: '<x> y' } }] });
    assert.match(errors(result).join('\n'), /doorbell\.topic.*must be an ONVIF topic.*tns1:RuleEngine\/MyRuleDetector\/Visitor/);
  });

  it('turns tamperSensor off without the motion sensor or ONVIF, and crossingSensor without ONVIF, saying why', () => {
    const both = only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, motion: true, tamperSensor: true, crossingSensor: true }] }));
    assert.deepEqual([both.tamperSensor, both.crossingSensor], [true, true]);
    // The sensor the tamper flag sits on may be driven by the web address alone.
    assert.equal(only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, motionHttpTrigger: true, tamperSensor: true }] })).tamperSensor, true);
    const noMotion = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, tamperSensor: true, crossingSensor: true }] });
    assert.deepEqual([only(noMotion).tamperSensor, only(noMotion).crossingSensor], [false, true]);
    assert.match(warnings(noMotion).join('\n'), /tamperSensor needs the motion sensor/);
    const noOnvif = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, crossingSensor: true }] });
    assert.equal(only(noOnvif).crossingSensor, false);
    assert.match(warnings(noOnvif).join('\n'), /crossingSensor needs ONVIF \(set onvif\.host\)/);
  });
});

describe('loadConfig: HomeKit Secure Video recording (issue 16)', () => {
  const ONVIF = { host: '192.168.0.20', username: 'admin', password: 'pw' };

  it('is off unless enabled, and says so when its other fields are set while off', () => {
    assert.equal(only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK }] })).recording, undefined);
    assert.equal(only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, recording: false }] })).recording, undefined);
    const off = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, recording: { prebufferSeconds: 6 } }] });
    assert.equal(only(off).recording, undefined);
    assert.equal(only(off).motion, false, 'recording off does not turn the motion sensor on');
    assert.match(warnings(off).join('\n'), /recording\.prebufferSeconds and recording\.motionSource are ignored because recording is off \(set recording\.enabled\)/);
    // Turned off on purpose (the Homebridge UI's button): the kept choices are not a mistake.
    const stopped = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, recording: { enabled: false, prebufferSeconds: 6, motionSource: 'onvif' } }] });
    assert.equal(only(stopped).recording, undefined);
    assert.deepEqual(warnings(stopped), []);
  });

  it('records on ONVIF motion by default when the camera has ONVIF, turning the motion sensor on', () => {
    const result = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, recording: true }] });
    assert.deepEqual(result.messages, []);
    const camera = only(result);
    assert.deepEqual(camera.recording, { motionSource: 'onvif' });
    assert.equal(camera.motion, true);
    const full = only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, recording: { enabled: true, prebufferSeconds: 8, motionSource: 'onvif' } }] }));
    assert.deepEqual(full.recording, { prebufferSeconds: 8, motionSource: 'onvif' });
  });

  it('keeps the motion sensor as set with motionSource "none"', () => {
    const none = only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, recording: { enabled: true, motionSource: 'none' } }] }));
    assert.deepEqual([none.recording, none.motion], [{ motionSource: 'none' }, false]);
    const withSensor = only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, motion: true, recording: { enabled: true, motionSource: 'none' } }] }));
    assert.equal(withSensor.motion, true);
  });

  it('without ONVIF: no motion source, and a warning when nothing can start a recording (none for a doorbell)', () => {
    const plain = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, recording: { enabled: true } }] });
    assert.deepEqual([only(plain).recording, only(plain).motion], [{ motionSource: 'none' }, false]);
    assert.match(warnings(plain).join('\n'), /nothing starts a HomeKit Secure Video recording yet: set onvif\.host .* or make the camera a doorbell/);
    const asked = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, recording: { enabled: true, motionSource: 'onvif' } }] });
    assert.deepEqual(only(asked).recording, { motionSource: 'none' });
    assert.match(warnings(asked).join('\n'), /recording\.motionSource "onvif" needs ONVIF \(set onvif\.host\)/);
    const doorbell = load({ cameras: [{ name: 'Door', rtspUrl: URL_OK, doorbell: { enabled: true, httpTrigger: true }, recording: { enabled: true } }] });
    assert.deepEqual(warnings(doorbell), []);
    assert.deepEqual(only(doorbell).recording, { motionSource: 'none' });
  });

  it('motion from the picture: off unless set, sensitivity 50 unless set, works without ONVIF; recording on "video" turns it on and is the default when it is on', () => {
    assert.deepEqual([only(load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK }] })).videoMotion, only(load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK }] })).videoMotionSensitivity], [false, 50]);
    const set = load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, videoMotion: true, videoMotionSensitivity: 80 }] });
    assert.deepEqual(warnings(set), []);
    assert.deepEqual([only(set).videoMotion, only(set).videoMotionSensitivity, only(set).motion], [true, 80, false]);
    const recording = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, recording: { enabled: true, motionSource: 'video' } }] });
    assert.deepEqual(warnings(recording), []);
    assert.deepEqual([only(recording).recording, only(recording).videoMotion], [{ motionSource: 'video' }, true]);
    const byDefault = only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, videoMotion: true, recording: { enabled: true } }] }));
    assert.deepEqual(byDefault.recording, { motionSource: 'video' }, 'the picture, chosen for this camera, before ONVIF');
    const bad = load({ cameras: [{ name: 'Cam', rtspUrl: URL_OK, videoMotion: true, videoMotionSensitivity: 0 }] });
    assert.equal(bad.config.cameras.length, 0, 'a sensitivity outside 1-100 is refused by the schema');
  });

  it('records on the motion web address: "http" turns motionHttpTrigger on, with or without ONVIF, and is the default when it is on', () => {
    const asked = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, recording: { enabled: true, motionSource: 'http' } }] });
    assert.deepEqual(asked.messages, []);
    assert.deepEqual([only(asked).recording, only(asked).motionHttpTrigger, only(asked).motion], [{ motionSource: 'http' }, true, false]);
    const onvif = only(load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, recording: { enabled: true, motionSource: 'http' } }] }));
    assert.deepEqual([onvif.motionHttpTrigger, onvif.motion], [true, false], 'ONVIF motion stays as set');
    const byDefault = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, onvif: ONVIF, motionHttpTrigger: true, recording: true }] });
    assert.deepEqual(byDefault.messages, []);
    assert.deepEqual([only(byDefault).recording, only(byDefault).motion], [{ motionSource: 'http' }, false]);
    // Recording on 'none' with the web address on: the sensor it drives starts recordings anyway, no warning.
    const none = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, motionHttpTrigger: true, recording: { enabled: true, motionSource: 'none' } }] });
    assert.deepEqual(warnings(none), []);
    assert.equal(only(none).motionHttpTrigger, true);
  });

  it('refuses a pre-buffer outside 4-8 s and an unknown motion source, naming the field and the choices', () => {
    const long = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, recording: { enabled: true, prebufferSeconds: 12 } }] });
    assert.deepEqual(long.config.cameras, []);
    assert.match(errors(long).join('\n'), /recording\.prebufferSeconds must be between 4 and 8 \(it is 12\) — e\.g\. 4/);
    const source = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, recording: { enabled: true, motionSource: 'camera' } }] });
    assert.match(errors(source).join('\n'), /recording\.motionSource must be one of onvif, http, video, none \(it is "camera"\)/);
    const typo = load({ cameras: [{ name: 'Yard', rtspUrl: URL_OK, recording: { enabled: 'yes' } }] });
    assert.match(errors(typo).join('\n'), /recording\.enabled must be true or false/);
  });
});
