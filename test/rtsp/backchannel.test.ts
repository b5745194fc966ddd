// The ONVIF audio back-channel client (src/rtsp/backchannel.ts): the SDP choice on its own, then
// the whole client against a real ONVIF RTSP server, gst-rtsp-server's RTSPOnvifServer behind
// test/helpers/fake-camera.ts, which decodes what arrives and reports the tone it hears.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pcmToG711 } from '../helpers/g711-encode.js';
import { chooseBackchannel, NoBackchannelError, RtspBackchannel } from '../../src/rtsp/backchannel.js';
import { RtspError } from '../../src/rtsp/errors.js';
import { rtspEndpoint } from '../../src/rtsp/url.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { CAMERA, recordingLogger, SECRET, sleep, waitFor, type RecordingLogger } from './helpers.js';
import { cameraHandler, ScriptedRtspServer, senderReportPacket } from './scripted-server.js';

// ---------------------------------------------------------------- the SDP choice

/** What gst-rtsp-server's RTSPOnvifServer answers a DESCRIBE with the back-channel Require (captured). */
const GST_ONVIF_SDP = `v=0
o=- 11188111318453303948 1 IN IP4 127.0.0.1
s=Session streamed with GStreamer
i=rtsp-server
t=0 0
a=tool:GStreamer
a=type:broadcast
a=control:*
a=range:npt=now-
m=video 0 RTP/AVP 96
c=IN IP4 0.0.0.0
b=AS:1048
a=rtpmap:96 H264/90000
a=framerate:25
a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHtoCgL/lwFqDAwNSgAAAAwCAAAAZR4sXUA==,aM48gA==
a=control:stream=0
a=x-onvif-track:VIDEO000
a=recvonly
m=audio 0 RTP/AVP 0
c=IN IP4 0.0.0.0
b=AS:64
a=rtpmap:0 PCMU/8000
a=control:stream=1
a=x-onvif-track:AUDIO001
a=recvonly
m=audio 0 RTP/AVP 0
c=IN IP4 0.0.0.0
a=rtpmap:0 PCMU/8000
a=control:stream=2
a=x-onvif-track:AUDIO002
a=sendonly
`;

/** Hikvision-like: absolute controls, everything the camera sends marked recvonly, the back-channel PCMA without rtpmap. */
const HIKVISION_SDP = [
  'v=0',
  'o=- 1700000000000000 1700000000000000 IN IP4 192.168.1.64',
  's=Media Presentation',
  'e=NONE',
  'b=AS:5100',
  't=0 0',
  'a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/',
  'm=video 0 RTP/AVP 96',
  'c=IN IP4 0.0.0.0',
  'a=recvonly',
  'a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=1',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 profile-level-id=420029; packetization-mode=1; sprop-parameter-sets=Z00AKp2oHgCJ+WbgICAoAAADAAgAAAMBlCA=,aO48gA==',
  'm=audio 0 RTP/AVP 8',
  'c=IN IP4 0.0.0.0',
  'a=recvonly',
  'a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=2',
  'a=rtpmap:8 PCMA/8000',
  'm=audio 0 RTP/AVP 8',
  'c=IN IP4 0.0.0.0',
  'a=sendonly',
  'a=control:rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=4',
  '',
].join('\r\n');

/** A camera whose speaker takes AAC only (and G.711 at 16 kHz, which is not what is sent). */
const AAC_ONLY_SDP = `v=0
o=- 1 1 IN IP4 10.0.0.2
s=Talk
t=0 0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=control:trackID=0
m=audio 0 RTP/AVP 97
a=rtpmap:97 MPEG4-GENERIC/16000/1
a=fmtp:97 streamtype=5;profile-level-id=15;mode=AAC-hbr;config=1408;sizelength=13;indexlength=3;indexdeltalength=3
a=control:trackID=1
a=recvonly
m=audio 0 RTP/AVP 98 99
a=rtpmap:98 MPEG4-GENERIC/16000/1
a=rtpmap:99 PCMU/16000
a=control:trackID=2
a=sendonly
`;

/** An ordinary camera (as answered without the Require): no sendonly section. */
const NO_BACKCHANNEL_SDP = `v=0
o=- 1 1 IN IP4 10.0.0.3
s=Live
t=0 0
m=video 0 RTP/AVP 96
a=rtpmap:96 H264/90000
a=control:trackID=0
m=audio 0 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=control:trackID=1
`;

describe('chooseBackchannel', () => {
  it('picks the sendonly audio section of gst-rtsp-server\'s ONVIF SDP, not the camera\'s own PCMU', () => {
    assert.deepEqual(chooseBackchannel(GST_ONVIF_SDP), {
      found: true,
      format: { encoding: 'PCMU', payloadType: 0, clockRate: 8000 },
      mediaIndex: 2,
      control: 'stream=2',
    });
  });

  it('reads a Hikvision-like SDP: PCMA by its static payload type, absolute control', () => {
    assert.deepEqual(chooseBackchannel(HIKVISION_SDP), {
      found: true,
      format: { encoding: 'PCMA', payloadType: 8, clockRate: 8000 },
      mediaIndex: 2,
      control: 'rtsp://192.168.1.64:554/Streaming/Channels/101/trackID=4',
    });
  });

  it('names what an AAC-only back-channel takes', () => {
    const choice = chooseBackchannel(AAC_ONLY_SDP);
    assert.equal(choice.found, false);
    assert.ok(!choice.found);
    assert.match(choice.reason, /MPEG4-GENERIC\/16000, PCMU\/16000/);
    assert.match(choice.reason, /PCMU or PCMA at 8000 Hz/);
  });

  it('says so when there is no back-channel at all', () => {
    const choice = chooseBackchannel(NO_BACKCHANNEL_SDP);
    assert.ok(!choice.found);
    assert.match(choice.reason, /no sendonly audio section/);
  });

  it('takes the first G.711 format of a section that lists others first, with a dynamic payload type', () => {
    const sdp = NO_BACKCHANNEL_SDP + 'm=audio 0 RTP/AVP 97 110\r\na=rtpmap:97 G726-32/8000\r\na=rtpmap:110 PCMA/8000\r\na=sendonly\r\na=control:back\r\n';
    assert.deepEqual(chooseBackchannel(sdp), { found: true, format: { encoding: 'PCMA', payloadType: 110, clockRate: 8000 }, mediaIndex: 2, control: 'back' });
  });
});

// ---------------------------------------------------------------- on the wire

describe('RtspBackchannel on the wire (a scripted camera reads every byte)', () => {
  it('sends the Require on DESCRIBE, SETUP, PLAY, keep-alive and TEARDOWN; RTP of 160 bytes with one SSRC, seq +1, timestamp +160, marker on the first packet and after a pause', async () => {
    let clock = 1000;
    const server = await ScriptedRtspServer.start(
      cameraHandler({
        sdp: HIKVISION_SDP.replaceAll('rtsp://192.168.1.64:554/Streaming/Channels/101/', ''),
        sessionHeader: '4242;timeout=2',
        // The camera's own RTCP on the back-channel's channels is read and ignored.
        onPlay: (conn) => conn.frame(1, senderReportPacket(0x01020304, Date.now(), 1234)),
      }),
    );
    try {
      const log = recordingLogger();
      const channel = await RtspBackchannel.open({
        endpoint: rtspEndpoint(server.url('/Streaming/Channels/101'), USER, SECRET),
        cameraName: CAMERA,
        logger: log,
        timeouts: TIMEOUTS,
        now: () => clock,
      });
      assert.deepEqual(channel.format, { encoding: 'PCMA', payloadType: 8, clockRate: 8000 });
      channel.sendAudio(Buffer.alloc(100, 1)); // short of a packet: waits
      channel.sendAudio(Buffer.alloc(300, 2)); // 400 bytes: two packets, 80 wait
      clock += 40;
      channel.sendAudio(Buffer.alloc(80, 3)); // completes the third packet, in time
      clock += 1000; // a pause in the talk
      channel.sendAudio(Buffer.alloc(160, 4));
      assert.equal(channel.packetsSent, 4);
      await waitFor(() => (server.connections[0]?.interleaved.length ?? 0) >= 4, 3000, 'four packets');
      // Keep-alive at half the 2 s timeout.
      await waitFor(() => server.methods().includes('GET_PARAMETER'), 3000, 'a keep-alive');
      await channel.close();

      const base = '/Streaming/Channels/101';
      assert.deepEqual(
        server.requests.map((r) => [r.method, r.uri.replace(`rtsp://127.0.0.1:${server.port}`, ''), r.headers['require']]),
        [
          ['OPTIONS', base, undefined],
          ['DESCRIBE', base, 'www.onvif.org/ver20/backchannel'],
          ['SETUP', `${base}/trackID=4`, 'www.onvif.org/ver20/backchannel'],
          ['PLAY', base, 'www.onvif.org/ver20/backchannel'],
          ['GET_PARAMETER', base, 'www.onvif.org/ver20/backchannel'],
          ['TEARDOWN', base, 'www.onvif.org/ver20/backchannel'],
        ],
      );
      const setup = server.requests.find((r) => r.method === 'SETUP')!;
      assert.equal(setup.headers['transport'], 'RTP/AVP/TCP;unicast;interleaved=0-1');
      for (const r of server.requests.slice(3)) assert.equal(r.headers['session'], '4242');

      const packets = server.connections[0]!.interleaved;
      assert.ok(packets.every((p) => p.channel === 0 && p.data.length === 12 + 160));
      const header = (i: number) => {
        const d = packets[i]!.data;
        return { v: d[0]! >> 6, marker: (d[1]! & 0x80) !== 0, pt: d[1]! & 0x7f, seq: d.readUInt16BE(2), ts: d.readUInt32BE(4), ssrc: d.readUInt32BE(8) };
      };
      const [p0, p1, p2, p3] = [0, 1, 2, 3].map(header);
      assert.deepEqual([p0!.v, p0!.pt, p0!.marker, p1!.marker, p2!.marker, p3!.marker], [2, 8, true, false, false, true]);
      assert.ok([p1, p2, p3].every((p) => p!.ssrc === p0!.ssrc));
      assert.deepEqual([p1!.seq, p2!.seq, p3!.seq], [(p0!.seq + 1) & 0xffff, (p0!.seq + 2) & 0xffff, (p0!.seq + 3) & 0xffff]);
      assert.equal((p1!.ts - p0!.ts) >>> 0, 160);
      assert.equal((p2!.ts - p1!.ts) >>> 0, 160);
      // After the pause the timestamp moves on by it: 3 packets (60 ms) of audio ended at 1060;
      // the fourth came at 2040, 980 ms later = 7840 samples beyond the usual 160.
      assert.equal((p3!.ts - p2!.ts) >>> 0, 160 + 7840);
      // The bytes went out in order: 100 x 1, then 2s, the 3s closing the third packet.
      assert.deepEqual([packets[0]!.data[12], packets[0]!.data[111], packets[0]!.data[112], packets[2]!.data[12 + 79], packets[2]!.data[12 + 80]], [1, 1, 2, 2, 3]);
      assert.doesNotMatch(log.text(), /keep-alive/);
    } finally {
      await server.close();
    }
  });
});

// ---------------------------------------------------------------- against gst-rtsp-server

const USER = 'admin';
const TIMEOUTS = { connectMs: 3000, requestMs: 8000, teardownMs: 1000 };
const SAMPLE_RATE = 8000;

interface Opened {
  channel: RtspBackchannel;
  log: RecordingLogger;
}

async function openOn(camera: FakeCamera, password = SECRET, onClosed?: (error: Error) => void): Promise<Opened> {
  const log = recordingLogger();
  const channel = await RtspBackchannel.open({ endpoint: rtspEndpoint(camera.url, USER, password), cameraName: CAMERA, logger: log, timeouts: TIMEOUTS, ...(onClosed ? { onClosed } : {}) });
  return { channel, log };
}

/**
 * Talks into the back-channel for `ms` in real time: a phase-continuous tone (or silence with
 * amplitude 0) in the channel's law, handed over in whatever the timer allows (about 40 ms at a
 * time; sendAudio cuts the 20 ms packets).
 */
async function talk(channel: RtspBackchannel, frequency: number, amplitude: number, ms: number): Promise<void> {
  const total = Math.round((ms * SAMPLE_RATE) / 1000);
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.round(((performance.now() - started) * SAMPLE_RATE) / 1000) + 320);
    if (due > sent) {
      const samples = Int16Array.from({ length: due - sent }, (_, i) =>
        Math.round(amplitude * 32767 * Math.sin((2 * Math.PI * frequency * (sent + i)) / SAMPLE_RATE)),
      );
      channel.sendAudio(pcmToG711(channel.format.encoding, samples));
      sent = due;
    }
    await sleep(40);
  }
}

function assertNoSecret(text: string, what: string): void {
  assert.ok(!text.includes(SECRET), `the password appears in ${what}: ${text}`);
}

describe('RtspBackchannel against gst-rtsp-server (ONVIF back-channel)', { timeout: 120_000 }, () => {
  let pcmuCam: FakeCamera;
  let pcmaCam: FakeCamera;
  let plainCam: FakeCamera;

  before(async () => {
    const auth = { method: 'digest' as const, user: USER, password: SECRET };
    const small = { width: 320, height: 180, fps: 10 };
    [pcmuCam, pcmaCam, plainCam] = await Promise.all([
      FakeCamera.start({ ...small, auth, backchannel: 'pcmu' }),
      // A short session timeout: the keep-alive (every second) must hold the session.
      FakeCamera.start({ ...small, auth, backchannel: 'pcma', audio: 'pcma', sessionTimeoutSec: 2 }),
      FakeCamera.start({ ...small, auth }),
    ]);
  });

  after(async () => {
    await Promise.all([pcmuCam?.close(), pcmaCam?.close(), plainCam?.close()]);
  });

  it('PCMU with Digest: silence arrives as silence, then a 1 kHz tone as 1000 +/- 20 Hz; close() tears the session down', async (t) => {
    const { channel, log } = await openOn(pcmuCam);
    try {
      assert.deepEqual(channel.format, { encoding: 'PCMU', payloadType: 0, clockRate: 8000 });
      assert.equal(await pcmuCam.talkSessionCount(), 1);
      await talk(channel, 1000, 0, 1000);
      const quiet = await pcmuCam.waitForTalk((r) => r.packets > 0, 5000);
      assert.ok(quiet.rms < 0.005, `silence heard at rms ${quiet.rms}`);
      await talk(channel, 1000, 0.3, 2000);
      const heard = await pcmuCam.waitForTalk((r) => r.rms > 0.05, 5000);
      assert.ok(Math.abs(heard.frequency - 1000) <= 20, `heard ${heard.frequency} Hz`);
      assert.ok(heard.rms > 0.05 && heard.rms < 0.5, `rms ${heard.rms}`);
      // 3 s of sound in 20 ms packets.
      assert.ok(channel.packetsSent >= 145 && channel.packetsSent <= 152, `${channel.packetsSent} packets sent`);
      const tones = pcmuCam.talkReports().filter((r) => r.rms > 0.05);
      t.diagnostic(`PCMU reports: ${JSON.stringify(pcmuCam.talkReports())}`);
      assert.ok(tones.length >= 3 && tones.every((r) => Math.abs(r.frequency - 1000) <= 20), JSON.stringify(tones));
    } finally {
      await channel.close();
    }
    await pcmuCam.waitForTalkSessionCount(0, 5000);
    assert.equal(await pcmuCam.sessionCount(), 0);
    const requests = await pcmuCam.requests();
    const methods = requests.filter((r) => r.authorized).map((r) => r.method);
    assert.deepEqual(methods.filter((m) => m !== 'OPTIONS' && m !== 'GET_PARAMETER'), ['DESCRIBE', 'SETUP', 'PLAY', 'TEARDOWN']);
    assert.match(log.text(), /back-channel open: talking in PCMU\/8000 over TCP \(Digest/);
    assertNoSecret(log.text(), 'the log');
  });

  it('PCMA: a 1 kHz tone arrives as 1000 +/- 20 Hz; keep-alives (GET_PARAMETER with the Require) go out at half a 2 s session timeout and are answered 2xx; close() leaves no session', async () => {
    let closedByCamera: Error | undefined;
    const { channel, log } = await openOn(pcmaCam, SECRET, (error) => {
      closedByCamera = error;
    });
    try {
      assert.deepEqual(channel.format, { encoding: 'PCMA', payloadType: 8, clockRate: 8000 });
      await talk(channel, 1000, 0.3, 2000);
      const heard = await pcmaCam.waitForTalk((r) => r.rms > 0.05, 5000);
      assert.ok(Math.abs(heard.frequency - 1000) <= 20, `heard ${heard.frequency} Hz`);
      // Quiet for longer than the camera's session timeout. (gst-rtsp-server does not expire a
      // session whose TCP connection is up, so the count alone would not prove the keep-alive.)
      await sleep(3000);
      assert.equal(await pcmaCam.talkSessionCount(), 1, 'the session outlived its timeout');
      const keepalives = (await pcmaCam.requests()).filter((r) => r.method === 'GET_PARAMETER' && r.authorized);
      assert.ok(keepalives.length >= 2, `${keepalives.length} keep-alives`);
      // A keep-alive answered with anything but 2xx (e.g. 551 to the Require) is logged.
      assert.doesNotMatch(log.text(), /keep-alive/);
      // Talking again after the pause: the camera still hears it.
      pcmaCam.clearTalkReports();
      await talk(channel, 700, 0.3, 1500);
      const again = await pcmaCam.waitForTalk((r) => r.rms > 0.05, 5000);
      assert.ok(Math.abs(again.frequency - 700) <= 20, `heard ${again.frequency} Hz after the pause`);
    } finally {
      await channel.close();
    }
    await pcmaCam.waitForTalkSessionCount(0, 5000);
    assert.equal(await pcmaCam.sessionCount(), 0);
    assert.equal(closedByCamera, undefined, 'onClosed is not called after close()');
    // Sending after close() is dropped quietly.
    channel.sendAudio(Buffer.alloc(800, 0xd5));
    assertNoSecret(log.text(), 'the log');
  });

  it('a camera that drops the connection: onClosed reports it once', async () => {
    const ends: Array<Error | undefined> = [];
    const { channel, log } = await openOn(pcmuCam, SECRET, (error) => ends.push(error));
    await talk(channel, 1000, 0.3, 300);
    await pcmuCam.dropClients();
    await waitFor(() => ends.length > 0, 5000, 'onClosed');
    await sleep(200);
    assert.equal(ends.length, 1);
    assert.ok(ends[0] instanceof RtspError && ends[0].code === 'transport', String(ends[0]));
    channel.sendAudio(Buffer.alloc(320, 0xff));
    await channel.close();
    await pcmuCam.waitForTalkSessionCount(0, 5000);
    assertNoSecret(log.text(), 'the log');
  });

  it('a camera without a back-channel (551 to the Require): NoBackchannelError naming the camera, and nothing left open', async () => {
    const log = recordingLogger();
    const open = RtspBackchannel.open({ endpoint: rtspEndpoint(plainCam.url, USER, SECRET), cameraName: CAMERA, logger: log, timeouts: TIMEOUTS });
    const err = await open.then(
      () => assert.fail('expected NoBackchannelError'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof NoBackchannelError, `got ${String(err)}`);
    assert.equal(err.message, `Camera "${CAMERA}" has no audio back-channel to talk into: the camera answered DESCRIBE with 551 Option not supported (it does not offer the ONVIF back-channel)`);
    assertNoSecret(err.message, 'the error');
    assertNoSecret(log.text(), 'the log');
    assert.equal(await plainCam.sessionCount(), 0);
    assert.equal(await plainCam.talkSessionCount(), 0);
    const clients = async (): Promise<number> => plainCam.clientCount();
    for (let i = 0; i < 50 && (await clients()) > 0; i++) await sleep(100);
    assert.equal(await clients(), 0, 'the control connection is closed');
  });

  it('a wrong password: the auth RtspError, no password in the error or the log, no session', async () => {
    const wrong = `${SECRET}-wrong`;
    const log = recordingLogger();
    const err = await RtspBackchannel.open({ endpoint: rtspEndpoint(pcmuCam.url, USER, wrong), cameraName: CAMERA, logger: log, timeouts: TIMEOUTS }).then(
      () => assert.fail('expected an auth error'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RtspError, `got ${String(err)}`);
    assert.equal(err.code, 'auth');
    assert.match(err.message, /wrong user name or password/);
    assert.ok(err.message.includes(`Camera "${CAMERA}"`));
    for (const text of [err.message, err.stack ?? '', log.text()]) {
      assertNoSecret(text, 'the error or log');
      assert.ok(!text.includes(wrong), `the wrong password appears: ${text}`);
    }
    assert.equal(await pcmuCam.talkSessionCount(), 0);
  });
});
