// The client's behaviour against a scripted camera: the request sequence, authentication
// variants, keep-alive, redirects, transports and fallbacks, RTCP, and the session lifecycle.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { nativeFanout } from '../../src/rtp/native-fanout.js';
import { RtspError } from '../../src/rtsp/errors.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { FakeTime } from '../helpers/fake-time.js';
import { CAMERA, FAST, openUpstream, recordingLogger, SECRET, sleep, waitFor } from './helpers.js';
import {
  cameraHandler,
  challengeFor,
  checkAuthorization,
  H264_PCMU_SDP,
  rtpPacket,
  ScriptedRtspServer,
  senderReportPacket,
  streamMedia,
  type CameraScript,
  type Handler,
  type ReceivedRequest,
} from './scripted-server.js';

const servers: ScriptedRtspServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(handler: Handler): Promise<ScriptedRtspServer> {
  const s = await ScriptedRtspServer.start(handler);
  servers.push(s);
  return s;
}

function setupUris(s: ScriptedRtspServer): string[] {
  return s.requests.filter((r) => r.method === 'SETUP').map((r) => r.uri);
}

describe('RTSP session over TCP', () => {
  it('runs OPTIONS, DESCRIBE, SETUP per track, PLAY, and TEARDOWN on close', async () => {
    const s = await serve(cameraHandler({ onPlay: (conn) => streamMedia(conn) }));
    const opened = await openUpstream(s.url());
    assert.deepEqual(
      opened.session.tracks.map((t) => [t.kind, t.codec, t.controlUrl]),
      [
        ['video', 'H264', `rtsp://127.0.0.1:${s.port}/stream/trackID=1`],
        ['audio', 'PCMU', `rtsp://127.0.0.1:${s.port}/stream/trackID=2`],
      ],
    );
    await waitFor(() => opened.rtp.some((p) => p.track === 1) && opened.rtp.length > 10, 2000, 'media');
    // Channel 0 carries video (PT 96), channel 2 audio (PT 0), each to its own track index.
    for (const p of opened.rtp) assert.equal(p.packet[1]! & 0x7f, p.track === 0 ? 96 : 0);
    await opened.session.close();
    await opened.session.close();
    assert.deepEqual(s.methods(), ['OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY', 'TEARDOWN']);
    const [setup1, setup2, play, teardown] = s.requests.slice(2);
    assert.equal(setup1!.headers['transport'], 'RTP/AVP/TCP;unicast;interleaved=0-1');
    assert.equal(setup1!.headers['session'], undefined);
    assert.equal(setup2!.headers['transport'], 'RTP/AVP/TCP;unicast;interleaved=2-3');
    assert.equal(setup2!.headers['session'], '12345678');
    assert.equal(play!.headers['session'], '12345678');
    assert.equal(play!.headers['range'], 'npt=0.000-');
    assert.equal(teardown!.headers['session'], '12345678');
    assert.equal(s.requests[1]!.headers['accept'], 'application/sdp');
    // CSeq counts up from 1.
    assert.deepEqual(
      s.requests.map((r) => r.cseq),
      ['1', '2', '3', '4', '5', '6'],
    );
    assert.deepEqual(opened.closes, [undefined]);
  });

  it('delivers no packet before the factory resolved, even when media comes with the PLAY answer', async () => {
    const s = await serve(
      cameraHandler({
        override: (req, conn) => {
          if (req.method !== 'PLAY') return false;
          const answer = Buffer.from(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\nSession: 12345678\r\n\r\n`);
          const frames = [1, 2, 3].map((i) => {
            const p = rtpPacket(i, i);
            return Buffer.concat([Buffer.from([0x24, 0, 0, p.length]), p]);
          });
          conn.write(Buffer.concat([answer, ...frames]));
          return true;
        },
      }),
    );
    const opened = await openUpstream(s.url());
    await waitFor(() => opened.rtp.length === 3, 1000, 'the three early packets');
    assert.equal(opened.rtpBeforeResolve, false);
    assert.deepEqual(
      opened.rtp.map((p) => p.packet.readUInt16BE(2)),
      [1, 2, 3],
    );
    await opened.session.close();
  });

  it('resolves track URLs from Content-Base, then Content-Location, and takes absolute controls as they are', async () => {
    const withBase = await serve(cameraHandler({ describeHeaders: { 'Content-Base': 'rtsp://127.0.0.1:1/base/' } }));
    const a = await openUpstream(withBase.url());
    assert.deepEqual(setupUris(withBase), ['rtsp://127.0.0.1:1/base/trackID=1', 'rtsp://127.0.0.1:1/base/trackID=2']);
    await a.session.close();

    const withLocation = await serve(cameraHandler({ describeHeaders: { 'Content-Location': 'rtsp://127.0.0.1:2/loc/' } }));
    const b = await openUpstream(withLocation.url());
    assert.deepEqual(setupUris(withLocation), ['rtsp://127.0.0.1:2/loc/trackID=1', 'rtsp://127.0.0.1:2/loc/trackID=2']);
    await b.session.close();

    const absolute = H264_PCMU_SDP.replace('a=control:trackID=1', 'a=control:rtsp://10.1.2.3/abs/video').replace('a=control:*', 'a=control:rtsp://10.1.2.3/abs');
    const withAbsolute = await serve(cameraHandler({ sdp: absolute }));
    const c = await openUpstream(withAbsolute.url());
    assert.deepEqual(setupUris(withAbsolute), ['rtsp://10.1.2.3/abs/video', `rtsp://127.0.0.1:${withAbsolute.port}/stream/trackID=2`]);
    assert.equal(withAbsolute.requests.find((r) => r.method === 'PLAY')!.uri, 'rtsp://10.1.2.3/abs');
    await c.session.close();
  });

  it('sets up only the video track when audio is off', async () => {
    const s = await serve(cameraHandler());
    const opened = await openUpstream(s.url(), { audio: false });
    assert.deepEqual(
      opened.session.tracks.map((t) => t.kind),
      ['video'],
    );
    assert.equal(setupUris(s).length, 1);
    assert.match(opened.log.text(), /skipping track 1 \(audio\/PCMU\): audio is turned off/);
    await opened.session.close();
  });

  it('goes on without audio when the audio SETUP fails', async () => {
    const s = await serve(
      cameraHandler({
        override: (req, conn) => {
          if (req.method !== 'SETUP' || !req.uri.endsWith('trackID=2')) return false;
          conn.reply(req, 400, 'Bad Request');
          return true;
        },
      }),
    );
    const opened = await openUpstream(s.url());
    assert.deepEqual(
      opened.session.tracks.map((t) => t.kind),
      ['video'],
    );
    assert.match(opened.log.text(), /warn .*continuing without audio: .*SETUP answered 400/);
    await opened.session.close();
  });

  it('copes with lower-case and folded headers, answers without CSeq, and server requests', async () => {
    const s = await serve(async (req, conn) => {
      if (req.method === 'DESCRIBE') {
        conn.write(
          `RTSP/1.0 200 OK\r\ncseq: ${req.cseq}\r\ncontent-type: application/sdp\r\ncontent-base:\r\n rtsp://127.0.0.1:${s.port}/folded/\r\ncontent-length: ${H264_PCMU_SDP.length}\r\n\r\n${H264_PCMU_SDP}`,
        );
        return;
      }
      if (req.method === 'SETUP') {
        // No CSeq at all: the client matches it to the oldest request.
        const ch = /interleaved=(\d+-\d+)/.exec(req.headers['transport'] ?? '')![1];
        conn.write(`RTSP/1.0 200 OK\nTransport: RTP/AVP/TCP;unicast;interleaved=${ch}\nSession: abc\n\n`);
        return;
      }
      if (req.method === 'PLAY') {
        // The camera pings us first; our answer must not confuse either side.
        conn.write('OPTIONS * RTSP/1.0\r\nCSeq: 77\r\n\r\n');
      }
      await cameraHandler({ sessionHeader: 'abc' })(req, conn);
    });
    const opened = await openUpstream(s.url());
    assert.deepEqual(setupUris(s), [`rtsp://127.0.0.1:${s.port}/folded/trackID=1`, `rtsp://127.0.0.1:${s.port}/folded/trackID=2`]);
    await waitFor(() => s.answers.length > 0, 1000, "the client's answer to OPTIONS");
    assert.equal(s.answers[0]!.uri, '200');
    assert.equal(s.answers[0]!.cseq, '77');
    await opened.session.close();
    assert.ok(s.requests.some((r) => r.method === 'TEARDOWN' && r.headers['session'] === 'abc'));
  });

  it('follows a redirect to another server and keeps the credentials', async () => {
    const auth = { method: 'digest' as const, user: 'admin', password: SECRET };
    const target = await serve(cameraHandler({ auth }));
    const front = await serve((req, conn) => conn.reply(req, 302, 'Found', { Location: target.url('/moved') }));
    const opened = await openUpstream(front.url('/old'), { username: 'admin', password: SECRET });
    assert.equal(opened.session.tracks.length, 2);
    assert.deepEqual(front.methods(), ['OPTIONS']);
    assert.equal(target.requests[0]!.uri, target.url('/moved'));
    assert.match(opened.log.text(), new RegExp(`redirected to rtsp://127\\.0\\.0\\.1:${target.port}/moved`));
    await opened.session.close();
  });

  it('follows a relative redirect on DESCRIBE', async () => {
    const s = await serve(
      cameraHandler({
        override: (req, conn) => {
          if (req.method !== 'DESCRIBE' || !req.uri.endsWith('/old')) return false;
          conn.reply(req, 301, 'Moved Permanently', { Location: '/new' });
          return true;
        },
      }),
    );
    const opened = await openUpstream(s.url('/old'));
    assert.deepEqual(setupUris(s), [`rtsp://127.0.0.1:${s.port}/new/trackID=1`, `rtsp://127.0.0.1:${s.port}/new/trackID=2`]);
    await opened.session.close();
  });
});

describe('authentication', () => {
  async function authCamera(auth: NonNullable<CameraScript['auth']>, extra: CameraScript = {}): Promise<ScriptedRtspServer> {
    return serve(cameraHandler({ auth, ...extra }));
  }

  function assertNoCredentialsOnTheWire(s: ScriptedRtspServer): void {
    for (const r of s.requests) {
      assert.ok(!r.uri.includes('@'), `credentials in the request URL: ${r.uri}`);
      assert.ok(!r.raw.includes(SECRET), 'password on the wire');
    }
  }

  for (const auth of [
    { method: 'basic', user: 'admin', password: SECRET },
    { method: 'digest', user: 'admin', password: SECRET },
    { method: 'digest', user: 'admin', password: SECRET, algorithm: 'MD5', qop: true },
    { method: 'digest', user: 'admin', password: SECRET, algorithm: 'SHA-256', qop: true },
  ] as const) {
    const label = `${auth.method}${'algorithm' in auth ? ` ${auth.algorithm}` : ''}${'qop' in auth ? ' qop=auth' : ''}`;
    it(`works with ${label}, credentials as fields, never on the wire in clear`, async () => {
      const s = await authCamera(auth);
      const opened = await openUpstream(s.url('/stream'), { username: 'admin', password: SECRET });
      assert.equal(opened.session.tracks.length, 2);
      await opened.session.close();
      // One 401 on the first request; every later request authorised preemptively.
      assert.deepEqual(s.methods(), ['OPTIONS', 'OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY', 'TEARDOWN']);
      if (auth.method === 'digest') assertNoCredentialsOnTheWire(s);
      else for (const r of s.requests) assert.ok(!r.uri.includes('@'));
    });
  }

  it('takes the credentials from the options only: a URL with a log-in is refused, even beside fields', async () => {
    const s = await authCamera({ method: 'digest', user: 'viewer', password: SECRET });
    await assert.rejects(openUpstream(s.url('/stream', 'wrong:wrong'), { username: 'viewer', password: SECRET }),
      (e: unknown) => e instanceof RtspError && e.code === 'unsupported' && /carries a log-in/.test(e.message) && !e.message.includes(SECRET));
    assert.equal(s.requests.length, 0);
    const opened = await openUpstream(s.url('/stream'), { username: 'viewer', password: SECRET });
    await opened.session.close();
    assertNoCredentialsOnTheWire(s);
  });

  it('counts nonces with qop=auth', async () => {
    const s = await authCamera({ method: 'digest', user: 'a', password: 'b', qop: true });
    const opened = await openUpstream(s.url(), { username: 'a', password: 'b' });
    await opened.session.close();
    const ncs = s.requests.filter((r) => r.headers['authorization']).map((r) => /nc=([0-9a-f]{8})/.exec(r.headers['authorization']!)![1]);
    assert.deepEqual(ncs.slice(0, 4), ['00000001', '00000002', '00000003', '00000004']);
  });

  it('picks the strongest of several WWW-Authenticate challenges', async () => {
    const digest = { method: 'digest' as const, user: 'admin', password: SECRET, algorithm: 'SHA-256' as const, qop: true };
    const s = await serve((req, conn) => {
      if (!checkAuthorization(req, digest)) {
        conn.write(
          `RTSP/1.0 401 Unauthorized\r\nCSeq: ${req.cseq}\r\nWWW-Authenticate: Basic realm="scripted"\r\n` +
            `WWW-Authenticate: Digest realm="scripted", nonce="n0nce", algorithm=MD5\r\n` +
            `WWW-Authenticate: ${challengeFor(digest)}\r\n\r\n`,
        );
        return;
      }
      return cameraHandler()(req, conn);
    });
    const opened = await openUpstream(s.url(), { username: 'admin', password: SECRET });
    assert.match(opened.log.text(), /Digest SHA-256/);
    await opened.session.close();
  });

  it('renews a stale nonce without calling it a failure', async () => {
    const auth = { method: 'digest' as const, user: 'admin', password: SECRET, nonce: 'first' };
    let staleSent = 0;
    const s = await serve((req, conn) => {
      // After DESCRIBE the camera rotates its nonce and flags the old one stale.
      if (req.method === 'SETUP' && auth.nonce === 'first') {
        auth.nonce = 'second';
        staleSent++;
        conn.reply(req, 401, 'Unauthorized', { 'WWW-Authenticate': challengeFor(auth, true) });
        return;
      }
      return cameraHandler({ auth })(req, conn);
    });
    const opened = await openUpstream(s.url(), { username: 'admin', password: SECRET });
    assert.equal(staleSent, 1);
    assert.equal(opened.session.tracks.length, 2);
    const setups = s.requests.filter((r) => r.method === 'SETUP');
    assert.equal(setups.length, 3);
    assert.match(setups[1]!.headers['authorization']!, /nonce="second"/);
    await opened.session.close();
  });

  it('gives up on a camera that declares every nonce stale', async () => {
    let n = 0;
    const s = await serve((req, conn) => {
      const auth = { method: 'digest' as const, user: 'admin', password: SECRET, nonce: `n${n++}` };
      conn.reply(req, 401, 'Unauthorized', { 'WWW-Authenticate': challengeFor(auth, req.headers['authorization'] !== undefined) });
    });
    await assert.rejects(openUpstream(s.url(), { username: 'admin', password: SECRET }), (e: unknown) => e instanceof RtspError && e.code === 'auth' && /stale/.test(e.message));
    assert.ok(s.requests.length <= 5);
  });

  it('re-authenticates once when the camera forgets the nonce mid-session', async () => {
    const auth = { method: 'digest' as const, user: 'admin', password: SECRET, nonce: 'one' };
    const s = await serve((req, conn) => {
      if (req.method === 'PLAY' && auth.nonce === 'one') auth.nonce = 'two'; // expired, not flagged stale
      return cameraHandler({ auth })(req, conn);
    });
    const opened = await openUpstream(s.url(), { username: 'admin', password: SECRET });
    assert.equal(s.requests.filter((r) => r.method === 'PLAY').length, 2);
    await opened.session.close();
  });
});

describe('keep-alive', () => {
  // A 60 s session timeout: keep-alives every 30 s of the fake clock, which real time never reaches
  // in a test, so each one seen here was sent because the test advanced the clock. The watchdog is
  // set beyond the advanced time (media arrives in real time, all at fake time 0).
  const LONG = { stallMs: 600_000 };

  function requestsAfterPlay(s: ScriptedRtspServer): ReceivedRequest[] {
    const i = s.requests.findIndex((r) => r.method === 'PLAY');
    return s.requests.slice(i + 1);
  }

  it('sends GET_PARAMETER with the session at half the session timeout', async () => {
    const s = await serve(cameraHandler({ sessionHeader: '777;timeout=60', onPlay: (c) => streamMedia(c) }));
    const time = new FakeTime();
    const opened = await openUpstream(s.url(), { timeouts: LONG, now: time.clock, timers: time });
    await time.advance(29_999);
    assert.equal(requestsAfterPlay(s).length, 0, 'nothing before 30 s');
    await time.advance(1);
    await waitFor(() => requestsAfterPlay(s).length === 1, 2000, 'the first keep-alive at 30 s');
    await time.advance(30_000);
    await waitFor(() => requestsAfterPlay(s).length === 2, 2000, 'the second keep-alive at 60 s');
    const ka = requestsAfterPlay(s);
    for (const r of ka) {
      assert.equal(r.method, 'GET_PARAMETER');
      assert.equal(r.headers['session'], '777');
      assert.equal(r.uri, `rtsp://127.0.0.1:${s.port}/stream`);
    }
    await opened.session.close();
  });

  it('uses OPTIONS when GET_PARAMETER is not in Public', async () => {
    const s = await serve(
      cameraHandler({ sessionHeader: '778;timeout=60', publicMethods: 'OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN', onPlay: (c) => streamMedia(c) }),
    );
    const time = new FakeTime();
    const opened = await openUpstream(s.url(), { timeouts: LONG, now: time.clock, timers: time });
    await time.advance(30_000);
    await waitFor(() => requestsAfterPlay(s).length === 1, 2000, 'a keep-alive');
    const ka = requestsAfterPlay(s);
    assert.ok(ka.every((r) => r.method === 'OPTIONS' && r.headers['session'] === '778'));
    await opened.session.close();
  });

  it('switches to OPTIONS when GET_PARAMETER is refused', async () => {
    const s = await serve(
      cameraHandler({
        sessionHeader: '779;timeout=60',
        onPlay: (c) => streamMedia(c),
        override: (req, conn) => {
          if (req.method !== 'GET_PARAMETER') return false;
          conn.reply(req, 501, 'Not Implemented');
          return true;
        },
      }),
    );
    const time = new FakeTime();
    const opened = await openUpstream(s.url(), { timeouts: LONG, now: time.clock, timers: time });
    await time.advance(30_000);
    await waitFor(() => requestsAfterPlay(s).length === 1, 2000, 'the first keep-alive');
    // Let the 501 answer reach the client before the next keep-alive is due.
    await waitFor(() => opened.log.lines.some((l) => l.includes('GET_PARAMETER answered 501')), 2000, 'the switch');
    await time.advance(30_000);
    await waitFor(() => requestsAfterPlay(s).length === 2, 2000, 'the second keep-alive');
    assert.deepEqual(requestsAfterPlay(s).map((r) => r.method), ['GET_PARAMETER', 'OPTIONS']);
    await opened.session.close();
  });

  it('ends the session when a keep-alive gets 454', async () => {
    const s = await serve(
      cameraHandler({
        sessionHeader: '780;timeout=60',
        onPlay: (c) => streamMedia(c),
        override: (req, conn) => {
          if (req.method !== 'GET_PARAMETER') return false;
          conn.reply(req, 454, 'Session Not Found');
          return true;
        },
      }),
    );
    const time = new FakeTime();
    const opened = await openUpstream(s.url(), { timeouts: LONG, now: time.clock, timers: time });
    await time.advance(30_000);
    const err = await opened.closed;
    assert.ok(err instanceof RtspError && err.code === 'session', String(err));
  });
});

describe('RTCP', () => {
  it('reports sender reports as wall-clock mappings and sends receiver reports on the RTCP channels', async () => {
    const wall = Date.UTC(2025, 5, 1, 12, 0, 0, 250);
    const s = await serve(
      cameraHandler({
        onPlay: (conn) => {
          streamMedia(conn, 10);
          setTimeout(() => conn.frame(1, senderReportPacket(0x11223344, wall, 123456)), 50);
          // rtcp-mux style: an SR on the audio RTP channel.
          setTimeout(() => conn.frame(2, senderReportPacket(0x55667788, wall + 1000, 8000)), 80);
        },
      }),
    );
    const time = new FakeTime();
    // An interval real time never reaches in a test: every report seen was sent because the clock was advanced.
    const opened = await openUpstream(s.url(), { timeouts: { rtcpIntervalMs: 60_000, stallMs: 600_000 }, now: time.clock, timers: time });
    await waitFor(() => opened.senderReports.length === 2, 1000, 'sender reports');
    assert.deepEqual(opened.senderReports[0], { track: 0, rtpTimestamp: 123456, wallClockMs: wall });
    assert.equal(opened.senderReports[1]!.track, 1);
    assert.ok(Math.abs(opened.senderReports[1]!.wallClockMs - (wall + 1000)) < 0.001);
    await waitFor(() => opened.rtp.filter((p) => p.track === 0).length >= 10, 1000, 'the video packets');
    const rtcp = s.connections[0]!.interleaved;
    assert.equal(rtcp.length, 0, 'no receiver report before the interval');
    await time.advance(60_000);
    await waitFor(() => new Set(rtcp.map((f) => f.channel)).size === 2, 1000, 'receiver reports on both RTCP channels');
    await opened.session.close();
    const channels = new Set(rtcp.map((f) => f.channel));
    assert.deepEqual([...channels].sort(), [1, 3]);
    const withBlock = rtcp.find((f) => f.channel === 1 && (f.data[0]! & 0x1f) === 1)!;
    assert.ok(withBlock, 'a receiver report with a report block');
    assert.equal(withBlock.data[1], 201);
    assert.equal(withBlock.data.readUInt32BE(8), 0x11223344, 'reports about the camera SSRC');
    const sdes = withBlock.data.subarray(32);
    assert.equal(sdes[1], 202);
  });
});

describe('UDP', () => {
  /** A camera that sends media over UDP to the client ports and records RTCP arriving at its RTCP port. */
  async function udpCamera(opts: { sendFrom?: string; silent?: boolean } = {}) {
    const rtcpIn: Buffer[] = [];
    const sockets: dgram.Socket[] = [];
    const serverRtcp = dgram.createSocket('udp4');
    serverRtcp.on('message', (m) => rtcpIn.push(m));
    await new Promise<void>((r) => serverRtcp.bind(0, '127.0.0.1', () => r()));
    sockets.push(serverRtcp);
    const clientPorts: number[] = [];
    const s = await serve(
      cameraHandler({
        override: (req, conn) => {
          if (req.method !== 'SETUP') return false;
          const m = /client_port=(\d+)-(\d+)/.exec(req.headers['transport'] ?? '');
          if (!m) {
            conn.reply(req, 200, 'OK', { Transport: req.headers['transport']!, Session: '4242' });
            return true;
          }
          clientPorts.push(Number(m[1]));
          const rtcpPort = serverRtcp.address().port;
          conn.reply(req, 200, 'OK', {
            Transport: `RTP/AVP;unicast;client_port=${m[1]}-${m[2]};server_port=${rtcpPort - 1}-${rtcpPort}`,
            Session: '4242',
          });
          return true;
        },
        onPlay: () => {
          if (opts.silent) return;
          const sender = dgram.createSocket('udp4');
          sockets.push(sender);
          sender.bind(0, opts.sendFrom ?? '127.0.0.1', () => {
            let seq = 0;
            const timer = setInterval(() => {
              seq++;
              clientPorts.forEach((port, i) => sender.send(rtpPacket(seq, seq * 3000, i === 0 ? 96 : 0), port, '127.0.0.1'));
            }, 10);
            sender.on('close', () => clearInterval(timer));
          });
        },
      }),
    );
    return { s, rtcpIn, clientPorts, close: () => sockets.forEach((x) => x.close()) };
  }

  it('receives video and audio over UDP on even/odd port pairs and sends receiver reports to the RTCP port', async () => {
    const cam = await udpCamera();
    try {
      const opened = await openUpstream(cam.s.url(), { transport: 'udp' });
      await waitFor(() => opened.rtp.some((p) => p.track === 0) && opened.rtp.some((p) => p.track === 1), 2000, 'UDP media');
      assert.ok(cam.clientPorts.every((p) => p % 2 === 0));
      assert.match(opened.log.text(), /over UDP/);
      await waitFor(() => cam.rtcpIn.length > 0, 2000, 'RTCP at the camera');
      assert.equal(cam.rtcpIn[0]![1], 201);
      await opened.session.close();
    } finally {
      cam.close();
    }
  });

  it("a drained hold flushes sooner as the camera's rate fills its socket, later as it empties, and never gives draining up", async () => {
    assert.ok(nativeFanout().loaded, 'the native receiver loads here (dgram cannot hold)');
    // 1200-byte datagrams at a rate the test sets, into a 64 KiB buffer asked (the kernel grants
    // twice that, and charges each datagram about twice its size): 200 a second would fill it past
    // half in the Source's 250 ms, where the receiver would give draining up; 20 a second never.
    let perTick = 2;
    let seq = 0;
    const sender = dgram.createSocket('udp4');
    await new Promise<void>((r) => sender.bind(0, '127.0.0.1', () => r()));
    let timer: NodeJS.Timeout | undefined;
    let tick = 0;
    let port = 0;
    const s = await serve(
      cameraHandler({
        override: (req, conn) => {
          if (req.method !== 'SETUP') return false;
          const m = /client_port=(\d+)-(\d+)/.exec(req.headers['transport'] ?? '');
          if (!m) return false;
          conn.reply(req, 200, 'OK', { Transport: `RTP/AVP;unicast;client_port=${m[1]}-${m[2]};server_port=40000-40001`, Session: '4243' });
          port = Number(m[1]);
          return true;
        },
        onPlay: () => {
          timer = setInterval(() => {
            // perTick < 1: one packet every 1/perTick ticks.
            tick++;
            const count = perTick >= 1 ? perTick : tick % Math.round(1 / perTick) === 0 ? 1 : 0;
            for (let i = 0; i < count; i++, seq++) sender.send(rtpPacket(seq, seq * 300, 96, 0x11223344, 1200), port, '127.0.0.1');
          }, 10);
        },
      }),
    );
    try {
      // (The stall watchdog flushes too, at a quarter of stallMs: once a second here.)
      const opened = await openUpstream(s.url(), { transport: 'udp', audio: false, udpReceiveBufferBytes: 64 * 1024, timeouts: { stallMs: 4000 } });
      try {
        const deliveriesIn = async (ms: number): Promise<{ deliveries: number; packets: number }> => {
          const from = opened.rtp.length;
          await sleep(ms);
          const held = opened.rtp.slice(from);
          return { deliveries: held.filter((p, i) => i === 0 || p.at - held[i - 1]!.at > 20).length, packets: held.length };
        };
        opened.session.holdDelivery!(250);
        await sleep(500);
        // 200 datagrams a second: every 50 ms (the shortest), about 20 deliveries a second.
        const fast = await deliveriesIn(1500);
        assert.ok(fast.deliveries >= 20 && fast.deliveries <= 36, `${fast.packets} packets in ${fast.deliveries} deliveries in 1.5 s`);
        // 20 a second: the interval grows back to the Source's 250 ms (4 a second, and the watchdog's one).
        perTick = 0.2;
        await sleep(1500);
        const slow = await deliveriesIn(2000);
        assert.ok(slow.deliveries >= 6 && slow.deliveries <= 11, `${slow.packets} packets in ${slow.deliveries} deliveries in 2 s`);
        opened.session.holdDelivery!(0);
        assert.doesNotMatch(opened.log.text(), /read as they arrive/, 'draining was never given up');
        const sequence = opened.rtp.map((p) => p.packet.readUInt16BE(2));
        assert.equal(sequence.filter((n, i) => i > 0 && n !== ((sequence[i - 1]! + 1) & 0xffff)).length, 0, 'nothing lost, nothing out of order');
      } finally {
        await opened.session.close();
      }
    } finally {
      clearInterval(timer);
      sender.close();
      await s.close();
    }
  });

  it('ignores UDP packets from anyone but the camera', async () => {
    // Nothing counts from 127.0.0.2, so UDP "gets no data" and the session falls back to TCP.
    const log = recordingLogger();
    const cam2 = await udpCamera({ sendFrom: '127.0.0.2' });
    try {
      const time = new FakeTime();
      const opening = openUpstream(cam2.s.url(), { transport: 'udp', logger: log, now: time.clock, timers: time });
      // While opening, the first-packet wait is the session's only timer.
      await waitFor(() => time.pending === 1, 2000, 'the wait for the first UDP packet');
      await waitFor(() => /ignoring UDP packets from 127\.0\.0\.2/.test(log.text()), 2000, 'a packet from the stranger');
      await time.advance(FAST.udpFirstPacketMs);
      const opened = await opening;
      assert.match(log.text(), /ignoring UDP packets from 127\.0\.0\.2, which is not the camera/);
      assert.match(log.text(), /UDP does not work .*falling back to TCP/);
      await opened.session.close();
    } finally {
      cam2.close();
    }
  });

  it('falls back to TCP on 461, with a log line', async () => {
    const s = await serve(
      cameraHandler({
        override: (req, conn) => {
          if (req.method !== 'SETUP' || (req.headers['transport'] ?? '').includes('TCP')) return false;
          conn.reply(req, 461, 'Unsupported Transport');
          return true;
        },
      }),
    );
    const opened = await openUpstream(s.url(), { transport: 'udp' });
    assert.match(opened.log.text(), /warn .*UDP does not work .*SETUP answered 461.*falling back to TCP for this session/);
    assert.match(opened.log.text(), /over TCP/);
    await opened.session.close();
  });

  it("'auto' falls back when no UDP packet arrives and then stays on TCP", async () => {
    const cam = await udpCamera({ silent: true });
    try {
      const log = recordingLogger();
      const time = new FakeTime();
      const factory = rtspUpstream({
        url: cam.s.url(), cameraName: CAMERA, logger: log, transport: 'auto', timeouts: { ...FAST, udpFirstPacketMs: 300 }, now: time.clock, timers: time,
      });
      const handlers = { onRtp: () => undefined, onClose: () => undefined };
      const opening = factory(handlers, new AbortController().signal);
      await waitFor(() => time.pending === 1, 2000, 'the wait for the first UDP packet');
      await time.advance(299);
      assert.doesNotMatch(log.text(), /no UDP packet arrived/, 'still waiting 1 ms before the limit');
      await time.advance(1);
      const first = await opening;
      assert.match(log.text(), /no UDP packet arrived within 0\.3 s of PLAY.*using TCP from now on/);
      // The failed UDP session was torn down before TCP was tried.
      const methods = cam.s.methods();
      assert.deepEqual(methods.slice(0, 6), ['OPTIONS', 'DESCRIBE', 'SETUP', 'SETUP', 'PLAY', 'TEARDOWN']);
      await first.close();
      const before = cam.s.requests.length;
      const second = await factory(handlers, new AbortController().signal);
      const setups = cam.s.requests.slice(before).filter((r) => r.method === 'SETUP');
      assert.ok(setups.every((r) => (r.headers['transport'] ?? '').includes('TCP')));
      await second.close();
    } finally {
      cam.close();
    }
  });

  it('an abort while waiting for the first UDP packet ends at once as aborted, without a TCP retry', async () => {
    const cam = await udpCamera({ silent: true });
    try {
      const controller = new AbortController();
      const time = new FakeTime();
      const opening = openUpstream(cam.s.url(), { transport: 'udp', signal: controller.signal, timeouts: { udpFirstPacketMs: 3000 }, now: time.clock, timers: time });
      await waitFor(() => time.pending === 1, 2000, 'the wait for the first UDP packet');
      const t0 = Date.now();
      controller.abort();
      await assert.rejects(opening, (e: unknown) => e instanceof RtspError && e.code === 'aborted');
      assert.ok(Date.now() - t0 < 1000);
      assert.equal(time.now, 0, 'ended without the first-packet timeout running out');
      assert.equal(cam.s.requests.filter((r) => r.method === 'SETUP').length, 2, 'no second (TCP) attempt');
    } finally {
      cam.close();
    }
  });

  it('follows a camera that answers a UDP request with interleaved TCP', async () => {
    const s = await serve(
      cameraHandler({
        onPlay: (c) => streamMedia(c),
        override: (req, conn) => {
          if (req.method !== 'SETUP') return false;
          const ch = req.uri.endsWith('trackID=1') ? '0-1' : '2-3';
          conn.reply(req, 200, 'OK', { Transport: `RTP/AVP/TCP;unicast;interleaved=${ch}`, Session: '1' });
          return true;
        },
      }),
    );
    const opened = await openUpstream(s.url(), { transport: 'udp' });
    await waitFor(() => opened.rtp.length > 5, 2000, 'media');
    assert.match(opened.log.text(), /over TCP/);
    await opened.session.close();
  });
});

describe('lifecycle', () => {
  it('calls onClose exactly once, after close(), and survives a throwing handler', async () => {
    const s = await serve(cameraHandler({ onPlay: (c) => streamMedia(c, 5) }));
    const log = recordingLogger();
    let closes = 0;
    const factory = rtspUpstream({ url: s.url(), cameraName: CAMERA, logger: log, timeouts: FAST });
    const session = await factory(
      {
        onRtp: () => {
          throw new Error('downstream bug');
        },
        onClose: () => closes++,
      },
      new AbortController().signal,
    );
    await waitFor(() => log.lines.some((l) => l.includes('downstream bug')), 2000, 'the throwing handler to run');
    await Promise.all([session.close(), session.close()]);
    await sleep(50);
    assert.equal(closes, 1);
    assert.equal(log.lines.filter((l) => l.includes('downstream bug')).length, 1);
  });

  it('aborting the signal after open closes the session', async () => {
    const s = await serve(cameraHandler({ onPlay: (c) => streamMedia(c) }));
    const controller = new AbortController();
    const opened = await openUpstream(s.url(), { signal: controller.signal });
    controller.abort();
    assert.equal(await opened.closed, undefined);
    await waitFor(() => s.methods().includes('TEARDOWN'), 1000, 'TEARDOWN');
  });

  it('prefixes log lines with the camera name and never logs the password', async () => {
    const s = await serve(cameraHandler({ auth: { method: 'basic', user: 'admin', password: SECRET } }));
    const opened = await openUpstream(s.url('/stream'), { username: 'admin', password: SECRET });
    await opened.session.close();
    assert.ok(opened.log.lines.length > 5);
    for (const line of opened.log.lines) {
      assert.ok(line.includes(`[${CAMERA}]`), line);
      assert.ok(!line.includes(SECRET), line);
      assert.ok(!line.includes(createHash('md5').update(SECRET).digest('hex')), line);
    }
  });
});
