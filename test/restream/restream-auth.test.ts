// Issue 12, item 3: the loopback re-stream as the plugin runs it (`requireAuthOnLoopback`) lets no
// local process read a camera without a token or the configured credentials. Real peers: ffmpeg
// decodes through a single-use token URL and through Digest; a raw RTSP client is refused.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { redactText } from '../../src/util/redact.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { decodeVideo } from '../helpers/ffprobe.js';
import { cleanupAll } from '../helpers/processes.js';
import { rtspDescribe } from '../helpers/rtsp-client.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { recordingLogger } from '../rtsp/helpers.js';

after(cleanupAll);

describe('re-stream authentication on loopback', () => {
  let source: SyntheticSource;
  let plain: RestreamServer;
  let withCredentials: RestreamServer;
  const log = recordingLogger();

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam', gop: 25, seconds: 4 });
    const getSource = (id: string) => (id === 'cam' ? source : undefined);
    plain = await createRestreamServer({ getSource, requireAuthOnLoopback: true, log, tokenTtlMs: 1_500 });
    withCredentials = await createRestreamServer({ getSource, requireAuthOnLoopback: true, credentials: { username: 'nvr', password: 'nvr pass 7' }, log });
  });
  after(async () => {
    await plain?.close();
    await withCredentials?.close();
    source?.close();
  });

  it('refuses DESCRIBE of rtsp://127.0.0.1:<port>/<id> without a token or credentials', async () => {
    const bare = await rtspDescribe(`rtsp://127.0.0.1:${plain.port}/cam`);
    assert.equal(bare.status, 401);
    assert.ok(!bare.body.includes('m=video'), 'no SDP leaks');
    const guessed = await rtspDescribe(`rtsp://127.0.0.1:${plain.port}/tk_AAAAAAAAAAAAAAAAAAAAAA/cam`);
    assert.equal(guessed.status, 401);
    const digestOnly = await rtspDescribe(`rtsp://127.0.0.1:${withCredentials.port}/cam`);
    assert.equal(digestOnly.status, 401);
    assert.ok(digestOnly.headers['www-authenticate'], 'a challenge for the configured credentials');
  });

  it('lets ffmpeg decode through an issued URL once; the same URL is refused afterwards', async () => {
    const url = plain.issueUrl('cam');
    assert.match(url, /^rtsp:\/\/127\.0\.0\.1:\d+\/tk_[A-Za-z0-9_-]{22}\/cam$/);
    const first = await decodeVideo(url, { videoFrames: 30, timeoutMs: 30_000 });
    assert.equal(first.code, 0, first.stderr);
    assert.ok(first.videoFrames >= 30, `frames: ${first.videoFrames}`);
    // Read from `ps` after the process started: useless.
    const replay = await rtspDescribe(url);
    assert.equal(replay.status, 401);
    // A token is for its camera only.
    const other = plain.issueUrl('cam').replace(/\/cam$/, '/other');
    assert.equal((await rtspDescribe(other)).status, 401);
    // And it expires unused.
    const late = plain.issueUrl('cam');
    await new Promise((r) => setTimeout(r, 1_700));
    assert.equal((await rtspDescribe(late)).status, 401);
    assert.equal(redactText(`Input #0, rtsp, from '${url}'`), `Input #0, rtsp, from 'rtsp://127.0.0.1:${plain.port}/tk_***/cam'`, 'tokens are masked in logs');
    assert.ok(!log.lines.some((l) => /tk_[A-Za-z0-9_-]{22}/.test(l)), 'no token in a log line');
  });

  it('lets another program in with the configured credentials (Digest), on loopback too', async () => {
    const url = withCredentials.url('cam', { withCredentials: true });
    const run = await decodeVideo(url, { videoFrames: 20, timeoutMs: 30_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.videoFrames >= 20);
    const wrong = await decodeVideo(url.replace('nvr%20pass%207', 'wrong'), { videoFrames: 5, timeoutMs: 15_000 });
    assert.notEqual(wrong.code, 0);
  });
});
