/**
 * A camera's speaker over HTTP (src/talk/http-speaker.ts), with the real pieces on the plugin's
 * side: libopus packets, the talk channel, the real ffmpeg. The camera is an HTTP server here that
 * does what Axis and Dahua cameras do with such a request: checks the log-in (Digest, checked with
 * its own MD5 arithmetic, or Basic), then reads the body as it comes and plays it; the test decodes
 * what it read and counts the tone's zero crossings.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { g711ToPcm } from '../../src/media/g711.js';
import { CameraTalk } from '../../src/talk/camera-talk.js';
import { ANNOUNCED_LENGTH, openHttpSpeaker } from '../../src/talk/http-speaker.js';
import { memoryLogger } from '../homekit/camera-rig.js';
import { opusTone, speak } from '../helpers/opus-tone.js';
import { cleanupAll } from '../helpers/processes.js';

after(cleanupAll);

const USER = 'admin';
const PASSWORD = 'Speaker-Secret-7';

interface HeardRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer[];
  closed: boolean;
}

const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

/** A camera's speaker address: `auth` decides the log-in it wants; `answer` overrides the status. */
async function speakerServer(auth: 'digest' | 'basic' | 'none', answer?: number): Promise<{ url: string; requests: HeardRequest[]; close(): Promise<void> }> {
  const nonce = randomBytes(8).toString('hex');
  const requests: HeardRequest[] = [];
  const allowed = (req: http.IncomingMessage): boolean => {
    const header = req.headers.authorization ?? '';
    if (auth === 'none') return true;
    if (auth === 'basic') return header === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    const field = (name: string): string => new RegExp(`${name}="?([^",]*)"?`).exec(header)?.[1] ?? '';
    if (!header.startsWith('Digest ') || field('username') !== USER || field('nonce') !== nonce) return false;
    const ha1 = md5(`${USER}:cam:${PASSWORD}`);
    const ha2 = md5(`${req.method}:${field('uri')}`);
    return field('response') === md5(`${ha1}:${nonce}:${field('nc')}:${field('cnonce')}:${field('qop')}:${ha2}`);
  };
  const server = http.createServer((req, res) => {
    const heard: HeardRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: [], closed: false };
    requests.push(heard);
    if (!allowed(req)) {
      res.writeHead(401, auth === 'digest' ? { 'WWW-Authenticate': `Digest realm="cam", qop="auth", nonce="${nonce}"` } : { 'WWW-Authenticate': 'Basic realm="cam"' });
      res.end();
      return;
    }
    if (answer) {
      res.writeHead(answer);
      res.end();
      return;
    }
    req.on('data', (chunk: Buffer) => heard.body.push(chunk));
    req.on('close', () => (heard.closed = true));
    // Like the cameras: no answer while the sound flows.
    req.on('end', () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/cgi-bin/audio.cgi?action=postAudio&httptype=singlepart&channel=1`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function zeroCrossingsPerSecond(encoding: 'PCMU' | 'PCMA', g711: Buffer): number {
  const bytes = g711ToPcm(encoding, g711);
  const pcm = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  // The middle second, away from the start-up and the end.
  const from = Math.floor(pcm.length / 2) - 4000;
  let crossings = 0;
  for (let i = from + 1; i < from + 8000; i++) if ((pcm[i - 1]! < 0) !== (pcm[i]! < 0)) crossings++;
  return crossings / 2;
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a camera speaker over HTTP (talkUrl)', { timeout: 60_000 }, () => {
  for (const [encoding, auth] of [['PCMA', 'digest'], ['PCMU', 'basic']] as const) {
    it(`${encoding} with ${auth} log-in: the talker's 1 kHz arrives as a 1 kHz ${encoding} body; the stream is cut after the linger`, async () => {
      const camera = await speakerServer(auth);
      const log = memoryLogger();
      try {
        const talk = new CameraTalk({
          cameraName: 'Door',
          openOutput: (onClosed) => openHttpSpeaker({ url: camera.url, encoding, credentials: { username: USER, password: PASSWORD }, cameraName: 'Door', log, onClosed }),
          ffmpegPath: 'ffmpeg',
          log,
          lingerMs: 500,
        });
        const ended: string[] = [];
        const turn = talk.take({ id: 'v1', name: 'alice' }, (message) => ended.push(message));
        assert.ok(!('busy' in turn));
        await speak(turn.voice, opusTone(1000, 3));
        turn.release();
        const stream = camera.requests.at(-1)!;
        await until(() => stream.closed, 10_000, 'the stream to be cut after the linger');
        assert.deepEqual(ended, []);
        const body = Buffer.concat(stream.body);
        // About 8000 bytes a second of G.711 (the first packets wait while the stream opens).
        assert.ok(body.length > 20_000 && body.length < 26_000, `${body.length} bytes for 3 s`);
        const hz = zeroCrossingsPerSecond(encoding, body);
        assert.ok(Math.abs(hz - 1000) < 20, `${hz} zero crossings a second`);
        assert.equal(stream.method, 'POST');
        assert.equal(stream.url, '/cgi-bin/audio.cgi?action=postAudio&httptype=singlepart&channel=1');
        assert.equal(stream.headers['content-type'], encoding === 'PCMA' ? 'Audio/G.711A' : 'audio/basic');
        assert.equal(stream.headers['content-length'], String(ANNOUNCED_LENGTH));
        assert.equal(stream.headers['transfer-encoding'], undefined, 'not chunked');
        assert.equal(camera.requests.filter((r) => r.body.length > 0).length, 1, 'one stream');
        assert.ok(!log.text().includes(PASSWORD), 'no password in the log');
        await talk.close();
      } finally {
        await camera.close();
      }
    });
  }

  it('a log-in written into the address is used and not sent in the URL', async () => {
    const camera = await speakerServer('basic');
    try {
      const url = camera.url.replace('http://', `http://${USER}:${PASSWORD}@`);
      const output = await openHttpSpeaker({ url, encoding: 'PCMU', credentials: { username: USER, password: PASSWORD }, cameraName: 'Door', log: memoryLogger(), onClosed: () => undefined });
      output.sendAudio(Buffer.alloc(800, 0xff));
      await until(() => camera.requests.at(-1)!.body.length > 0, 5000, 'the sound');
      await output.close();
      assert.equal(camera.requests.length, 2, 'the empty request, then the stream');
      assert.ok(camera.requests.every((r) => !r.url.includes(PASSWORD)));
    } finally {
      await camera.close();
    }
  });

  it('refusals are plain and name no password: a wrong password, a 404, no log-in set, nothing listening', async () => {
    const digest = await speakerServer('digest');
    const missing = await speakerServer('none', 404);
    try {
      const open = (url: string, credentials?: { username: string; password: string }) =>
        openHttpSpeaker({ url, encoding: 'PCMA', ...(credentials ? { credentials } : {}), cameraName: 'Door', log: memoryLogger(), onClosed: () => undefined, timeoutMs: 2000 });
      // A wrong password is found out when the stream is refused: the output is open, then closed.
      const closed = new Promise<Error>((resolve) => {
        void openHttpSpeaker({ url: digest.url, encoding: 'PCMA', credentials: { username: USER, password: 'wrong-Secret-1' }, cameraName: 'Door', log: memoryLogger(), onClosed: resolve })
          .then((output) => output.sendAudio(Buffer.alloc(160)));
      });
      const refused = await closed;
      assert.match(refused.message, /refused the log-in .* \(check the user name and password\)/);
      await assert.rejects(open(missing.url, { username: USER, password: PASSWORD }), /answered 404 Not Found to its speaker address http:\/\/127\.0\.0\.1:\d+\/cgi-bin\/audio\.cgi/);
      await assert.rejects(open(digest.url), /asks for a log-in, and the camera has no user name set/);
      const withPassword = `http://${USER}:${PASSWORD}@127.0.0.1:9/speaker`;
      await assert.rejects(open(withPassword), (error: Error) => /cannot be reached/.test(error.message) && !error.message.includes(PASSWORD));
      await assert.rejects(open('rtsp://127.0.0.1/speaker'), /must start with http/);
    } finally {
      await Promise.all([digest.close(), missing.close()]);
    }
  });
});
