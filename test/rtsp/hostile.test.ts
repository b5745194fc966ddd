// A hostile or broken "camera" must produce one clear RtspError: no crash, no hang, no unbounded
// buffering, never the password in a message.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { assertRtspError, CAMERA, expectOpenError, openUpstream, SECRET, sleep } from './helpers.js';
import { cameraHandler, rtpPacket, ScriptedRtspServer, streamMedia, type Handler } from './scripted-server.js';
import { splitRtspLogin } from '../../src/rtsp/url.js';

const servers: ScriptedRtspServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(handler: Handler, onConnect?: Parameters<typeof ScriptedRtspServer.start>[1]): Promise<ScriptedRtspServer> {
  const s = await ScriptedRtspServer.start(handler, onConnect);
  servers.push(s);
  return s;
}

/** A camera that answers OPTIONS normally and DESCRIBE with `raw`. */
function describeAnswers(raw: string | Buffer): Handler {
  return cameraHandler({
    override: (req, conn) => {
      if (req.method !== 'DESCRIBE') return false;
      conn.write(typeof raw === 'string' ? raw.replace('{cseq}', req.cseq) : raw);
      return true;
    },
  });
}

describe('hostile camera', () => {
  it('garbage instead of an answer -> protocol error at once', async () => {
    const s = await serve((_req, conn) => conn.write(Buffer.from([0x00, 0x13, 0x37, 0xff, 0xfe, 0x10, 0x20])));
    const t0 = Date.now();
    await expectOpenError(s.url(), 'protocol', /not RTSP/);
    assert.ok(Date.now() - t0 < 400, 'failed fast, not at the timeout');
  });

  it('text garbage ending in a blank line -> protocol error', async () => {
    const s = await serve((_req, conn) => conn.write('Hello, this is not RTSP at all\r\n\r\n'));
    await expectOpenError(s.url(), 'protocol', /not RTSP|malformed RTSP start line/);
  });

  it('an HTTP server on the port -> protocol error saying so', async () => {
    const s = await serve((_req, conn) => conn.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'));
    await expectOpenError(s.url(), 'protocol', /HTTP, not RTSP/);
  });

  it('a truncated answer, then hang-up -> transport error naming the request', async () => {
    const s = await serve((req, conn) => {
      conn.write(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\nContent-Le`);
      setTimeout(() => conn.socket.end(), 20);
    });
    await expectOpenError(s.url(), 'transport', /closed the connection while waiting for the answer to OPTIONS/);
  });

  it('a truncated SDP body, then hang-up -> transport error', async () => {
    const s = await serve(
      describeAnswers('RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: 500\r\n\r\nv=0\r\nm=vid'),
      (conn) => conn.socket.setTimeout(300, () => conn.socket.end()),
    );
    await expectOpenError(s.url(), 'transport', /DESCRIBE/);
  });

  it('a 1 MB header -> protocol error after 64 KiB, connection dropped early', async () => {
    let written = 0;
    let clientGone = false;
    const s = await serve(async (req, conn) => {
      conn.socket.on('close', () => (clientGone = true));
      conn.write(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\nX-Junk: `);
      const chunk = Buffer.alloc(16 * 1024, 0x41);
      while (written < 1024 * 1024 && !clientGone) {
        conn.write(chunk);
        written += chunk.length;
        await sleep(2);
      }
    });
    await expectOpenError(s.url(), 'protocol', /header section larger than 65536 bytes/);
    await sleep(50);
    assert.ok(clientGone, 'the client closed the connection');
    assert.ok(written < 1024 * 1024, `server managed to write ${written} bytes`);
  });

  for (const [value, pattern] of [
    ['-1', /invalid Content-Length "-1"/],
    ['4294967296000', /Content-Length 4294967296000 exceeds the limit/],
    ['lots', /invalid Content-Length "lots"/],
  ] as const) {
    it(`Content-Length: ${value} -> protocol error`, async () => {
      const s = await serve(describeAnswers(`RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Length: ${value}\r\n\r\nv=0\r\n`));
      await expectOpenError(s.url(), 'protocol', pattern);
    });
  }

  it('an interleaved frame whose length swallows the answer -> protocol error', async () => {
    // Claims 30 bytes but carries 12: the rest of the length eats the start of the answer, and
    // what is left ("Seq: 1...") cannot start a message.
    const s = await serve((req, conn) => {
      conn.write(Buffer.concat([Buffer.from([0x24, 0, 0, 30]), rtpPacket(1, 1, 96, 1, 0)]));
      conn.write(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\n\r\n`);
    });
    await expectOpenError(s.url(), 'protocol', /not RTSP/);
  });

  it('an interleaved frame whose content is an answer -> protocol error (out of sync)', async () => {
    const s = await serve((req, conn) => {
      conn.write(Buffer.concat([Buffer.from([0x24, 0, 0, 8]), Buffer.from(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\n\r\n`)]));
    });
    await expectOpenError(s.url(), 'protocol', /not RTP\/RTCP: the stream is out of sync/);
  });

  it('a broken frame in the same read as the PLAY answer -> the open fails at once, not a dead session found by the watchdog', async () => {
    // The camera's PLAY answer and its first (out-of-sync) frame arrive together: the connection is
    // lost while the session is still opening but no request is pending any more.
    const s = await serve(
      cameraHandler({
        override: (req, conn) => {
          if (req.method !== 'PLAY') return false;
          const answer = Buffer.from(`RTSP/1.0 200 OK\r\nCSeq: ${req.cseq}\r\nSession: 12345678\r\n\r\n`);
          const broken = Buffer.concat([Buffer.from([0x24, 0, 0, 12]), Buffer.alloc(12, 0x11)]);
          conn.write(Buffer.concat([answer, broken]));
          return true;
        },
      }),
    );
    const t0 = Date.now();
    await expectOpenError(s.url(), 'protocol', /out of sync/, { timeouts: { stallMs: 5000 } });
    assert.ok(Date.now() - t0 < 1000, `failed after ${Date.now() - t0} ms`);
  });

  it('an interleaved frame with a bad length while playing -> onClose(protocol error), once', async () => {
    const s = await serve(
      cameraHandler({
        onPlay: (conn) => {
          conn.frame(0, rtpPacket(1, 0));
          // A length that swallows part of the next frame: what follows is mid-packet data.
          const broken = Buffer.concat([Buffer.from([0x24, 0, 0, 40]), rtpPacket(2, 0, 96, 1, 28), Buffer.alloc(40, 0x11)]);
          setTimeout(() => conn.write(broken), 50);
        },
      }),
    );
    const opened = await openUpstream(s.url());
    const err = await opened.closed;
    assertRtspError(err, 'protocol', /out of sync|not RTSP/);
    await sleep(100);
    assert.equal(opened.closes.length, 1);
    await opened.session.close();
    assert.equal(opened.closes.length, 1, 'close() after a failure does not report again');
  });

  it('a frame claiming more than the limit would allow is never buffered beyond 64 KiB', async () => {
    const s = await serve(
      cameraHandler({
        onPlay: (conn) => {
          conn.write(Buffer.from([0x24, 0, 0xff, 0xff]));
          conn.write(Buffer.alloc(1000, 0x80)); // and then silence
        },
      }),
    );
    const opened = await openUpstream(s.url(), { timeouts: { stallMs: 300 } });
    assertRtspError(await opened.closed, 'stalled');
  });

  it('a broken SDP -> protocol error saying the SDP is broken', async () => {
    const body = '<html><body>Please log in</body></html>';
    const s = await serve(
      describeAnswers(`RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\nContent-Type: text/html\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
    );
    await expectOpenError(s.url(), 'protocol', /SDP is broken: the DESCRIBE body is not SDP/);
  });

  it('an SDP without playable tracks -> unsupported, listing what was offered', async () => {
    const sdp = 'v=0\r\nm=video 0 RTP/AVP 26\r\nm=application 0 RTP/AVP 107\r\na=rtpmap:107 vnd.onvif.metadata/90000\r\n';
    const s = await serve(cameraHandler({ sdp }));
    await expectOpenError(s.url(), 'unsupported', /no playable track \(the camera offers video\/26, application\/vnd\.onvif\.metadata\)/);
  });

  it('a camera that never answers -> timeout error within the request timeout', async () => {
    const s = await serve(() => undefined);
    const t0 = Date.now();
    await expectOpenError(s.url(), 'timeout', /OPTIONS got no answer within 0\.6 s/);
    assert.ok(Date.now() - t0 < 1500);
  });

  it('a camera that floods RTP but never answers -> timeout, memory stays bounded', async () => {
    const s = await serve((_req, conn) => {
      const timer = setInterval(() => {
        if (conn.socket.destroyed) clearInterval(timer);
        else for (let i = 0; i < 50; i++) conn.frame(0, rtpPacket(i, i, 96, 1, 1400));
      }, 1);
    });
    const before = process.memoryUsage().heapUsed;
    await expectOpenError(s.url(), 'timeout', /OPTIONS got no answer/);
    assert.ok(process.memoryUsage().heapUsed - before < 64 * 1024 * 1024);
  });

  it('a redirect loop -> redirect error', async () => {
    const s = await serve((req, conn) => {
      const next = req.uri.endsWith('/a') ? '/b' : '/a';
      conn.reply(req, 302, 'Found', { Location: `rtsp://127.0.0.1:${s.port}${next}` });
    });
    await expectOpenError(s.url('/a'), 'redirect', /redirect loop/);
  });

  it('an endless chain of redirects -> redirect error after the bound', async () => {
    let n = 0;
    const s = await serve((req, conn) => conn.reply(req, 301, 'Moved', { Location: `/hop${++n}` }));
    await expectOpenError(s.url('/start'), 'redirect', /more than 3 redirects/, { maxRedirects: 3 });
    assert.ok(n <= 4);
  });

  it('a redirect without Location, or to HTTP -> redirect error', async () => {
    const s1 = await serve((req, conn) => conn.reply(req, 302, 'Found'));
    await expectOpenError(s1.url(), 'redirect', /302 without a Location/);
    const s2 = await serve((req, conn) => conn.reply(req, 302, 'Found', { Location: 'http://evil.example/' }));
    await expectOpenError(s2.url(), 'redirect', /non-RTSP URL/);
  });

  it('a closed port -> refused', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    await expectOpenError(`rtsp://127.0.0.1:${port}/x`, 'refused', /connection refused/, { username: 'admin', password: SECRET });
  });

  it('a camera that hangs up on connect -> transport error', async () => {
    const s = await serve(() => undefined, (conn) => conn.socket.destroy());
    await expectOpenError(s.url(), 'transport', /closed the connection/);
  });

  it('401 without credentials, with an unknown scheme, and with a wrong password -> auth errors', async () => {
    const auth = { method: 'digest' as const, user: 'admin', password: 'right' };
    const s = await serve(cameraHandler({ auth }));
    await expectOpenError(s.url(), 'auth', /requires a user name and password, and none is configured/);

    const before = s.requests.length;
    const err = await expectOpenError(s.url('/stream'), 'auth', /401 again after authenticating \(Digest MD5\): wrong user name or password/, { username: 'admin', password: SECRET });
    assert.equal(err.status, 401);
    assert.equal(err.method, 'OPTIONS');
    // One try without, one with credentials: no hammering of the camera.
    assert.equal(s.requests.length - before, 2);

    const s2 = await serve((req, conn) => conn.reply(req, 401, 'Unauthorized', { 'WWW-Authenticate': 'NTLM' }));
    await expectOpenError(s2.url('/x'), 'auth', /does not support \(ntlm\)/, { username: 'admin', password: SECRET });
  });

  for (const [status, reason, method, code, pattern] of [
    [404, 'Not Found', 'DESCRIBE', 'not-found', /DESCRIBE answered 404 Not Found: the stream path does not exist/],
    [403, 'Forbidden', 'DESCRIBE', 'forbidden', /403/],
    [503, 'Service Unavailable', 'DESCRIBE', 'unavailable', /too many sessions/],
    [500, 'Internal Server Error', 'SETUP', 'server-error', /SETUP answered 500/],
    [461, 'Unsupported Transport', 'SETUP', 'unsupported-transport', /SETUP answered 461/],
    [454, 'Session Not Found', 'PLAY', 'session', /PLAY answered 454/],
    [400, 'Bad Request', 'PLAY', 'rejected', /PLAY answered 400 Bad Request/],
  ] as const) {
    it(`${status} on ${method} -> ${code}`, async () => {
      const s = await serve(
        cameraHandler({
          override: (req, conn) => {
            if (req.method !== method) return false;
            conn.reply(req, status, reason);
            return true;
          },
        }),
      );
      const err = await expectOpenError(s.url('/stream'), code, pattern, { username: 'admin', password: SECRET });
      assert.equal(err.status, status);
      assert.equal(err.method, method);
      assert.ok(err.message.startsWith(`Camera "${CAMERA}" (rtsp://admin:***@127.0.0.1:${s.port}/stream)`), err.message);
    });
  }

  it('SETUP without a Session header -> protocol error', async () => {
    const s = await serve(
      cameraHandler({
        override: (req, conn) => {
          if (req.method !== 'SETUP') return false;
          conn.reply(req, 200, 'OK', { Transport: 'RTP/AVP/TCP;unicast;interleaved=0-1' });
          return true;
        },
      }),
    );
    await expectOpenError(s.url(), 'protocol', /without a Session header/);
  });

  it('a camera that stops sending media -> stalled, after the watchdog period', async () => {
    let stop: () => void = () => undefined;
    const s = await serve(cameraHandler({ onPlay: (conn) => (stop = streamMedia(conn)) }));
    const opened = await openUpstream(s.url(), { timeouts: { stallMs: 400 } });
    await sleep(200);
    assert.ok(opened.rtp.length > 0);
    const stoppedAt = Date.now();
    stop();
    const err = await opened.closed;
    assertRtspError(err, 'stalled', /no media from the camera for 0\.[4-9] s/);
    const took = Date.now() - stoppedAt;
    assert.ok(took >= 350 && took < 1200, `stall declared after ${took} ms`);
    // The camera gets a TEARDOWN so it frees the session at once.
    await sleep(100);
    assert.ok(s.methods().includes('TEARDOWN'));
  });

  it('the camera hangs up while playing -> onClose(transport error)', async () => {
    const s = await serve(cameraHandler({ onPlay: (conn) => setTimeout(() => conn.socket.destroy(), 100) }));
    const opened = await openUpstream(s.url());
    assertRtspError(await opened.closed, 'transport', /closed the connection/);
  });

  it('an aborted signal stops a hanging DESCRIBE at once', async () => {
    const s = await serve(cameraHandler({ override: (req) => req.method === 'DESCRIBE' }));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const t0 = Date.now();
    await expectOpenError(s.url(), 'aborted', /aborted/, { signal: controller.signal, timeouts: { requestMs: 5000 } });
    assert.ok(Date.now() - t0 < 400);
  });

  it('a password pasted with a raw "@" never shows up, not even in part', async () => {
    const s = await serve(cameraHandler({ override: (req, conn) => (conn.reply(req, 404, 'Not Found'), true) }));
    // As a configured camera gets there: the loader's one split of the typed URL, then the fields.
    const { login } = splitRtspLogin(`rtsp://admin:ab@cd#${SECRET}@127.0.0.1:${s.port}/x`, {});
    assert.equal(login.password, `ab@cd#${SECRET}`);
    const err = await expectOpenError(login.url, 'not-found', undefined, { username: login.username, password: login.password });
    assert.ok(!err.message.includes('cd#'), err.message);
    assert.ok(err.message.includes(`(rtsp://admin:***@127.0.0.1:${s.port}/x)`), err.message);
  });

  it('an invalid URL -> unsupported, without the password', async () => {
    await expectOpenError(`http://admin:${SECRET}@cam/`, 'unsupported', /invalid camera URL/);
    await expectOpenError('rtsps://127.0.0.1:1/', 'unsupported', /rtsps/, { username: 'admin', password: SECRET });
  });

  it('a URL that still carries a log-in -> unsupported, saying so, without the password, before any connection', async () => {
    const s = await serve(cameraHandler({}));
    const err = await expectOpenError(s.url('/stream', `admin:${SECRET}`), 'unsupported', /carries a log-in \(user info\); pass the user name and password as separate fields/);
    assert.ok(!err.message.includes(SECRET), err.message);
    assert.equal(s.requests.length, 0, 'nothing was sent to the camera');
  });
});
