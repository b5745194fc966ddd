/**
 * The VP8 variant's upstream with a stand-in ffmpeg (test/helpers/fake-ffmpeg.ts): what it does when
 * ffmpeg's fast probe of the re-stream ended before it knew the picture size. No camera, no encoder.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runningFfmpegCount } from '../../src/ffmpeg/ffmpeg-process.js';
import type { TrackDescription } from '../../src/media/types.js';
import { variantUpstream, type VariantInput } from '../../src/transcode/variant-upstream.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { shortProbeFfmpeg, type FakeFfmpeg } from '../helpers/fake-ffmpeg.js';

const FAST_PROBE = / -probesize 32768 -analyzeduration 100000 /;
const THOROUGH_PROBE = / -probesize 1000000 -analyzeduration 1000000 /;
const RETRY_LINE = /^info VP8 variant: ffmpeg stopped probing the re-stream before it knew the video's picture size; starting it again with a longer probe\.$/;

/** A camera Source that has described an H.264 video track (no audio), and nothing more. */
const input: VariantInput = {
  tracks: [{ kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90_000, fmtp: {}, controlUrl: 'rtsp://camera/track1' } satisfies TrackDescription],
  subscribe: () => ({ unsubscribe: () => undefined }),
  on: () => undefined,
  off: () => undefined,
};

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Opens the variant's upstream on `ffmpeg`; each start gets its own re-stream URL (token). */
async function openVariant(t: TestContext, makeFfmpeg: (dir: string) => FakeFfmpeg) {
  const dir = mkdtempSync(join(tmpdir(), 'vp8-probe-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ffmpeg = makeFfmpeg(dir);
  const log = recordingLogger();
  const closes: Array<Error | undefined> = [];
  let urls = 0;
  const open = variantUpstream({ codec: 'VP8', ffmpegPath: ffmpeg.path, inputUrl: () => `rtsp://127.0.0.1:1/token${++urls}/cam`, input, withAudio: true, log });
  const session = await open({ onRtp: () => undefined, onClose: (error) => closes.push(error) }, new AbortController().signal);
  t.after(() => session.close());
  return { ffmpeg, log, closes, session };
}

describe('VP8 variant: a probe too short for the picture size', () => {
  it('starts ffmpeg once more with the thorough probe flags (and a fresh re-stream URL), and keeps the variant open', async (t) => {
    const { ffmpeg, log, closes, session } = await openVariant(t, (dir) => shortProbeFfmpeg(dir, 'exec sleep 60'));
    await until('the second start', () => ffmpeg.starts().length === 2);
    const [first, second] = ffmpeg.starts();
    assert.match(first!, FAST_PROBE);
    assert.match(first!, /token1\/cam/);
    assert.match(second!, THOROUGH_PROBE);
    assert.doesNotMatch(second!, FAST_PROBE);
    assert.match(second!, /token2\/cam/, 'each start has its own single-use re-stream URL');
    assert.equal(log.lines.filter((line) => RETRY_LINE.test(line)).length, 1, log.lines.join('\n'));
    await sleep(200);
    assert.deepEqual(closes, [], 'the variant did not report a failure');
    assert.equal(runningFfmpegCount(), 1, 'the thorough start runs');
    await session.close();
    assert.equal(runningFfmpegCount(), 0);
    assert.equal(ffmpeg.starts().length, 2, 'no start after close');
  });

  it('only once: when the thorough probe fails the same way, the variant closes with ffmpeg\'s reason', async (t) => {
    const failAgain = 'echo "[rtp @ 0x5555] [error] dimensions not set" >&2; exit 1';
    const { ffmpeg, closes } = await openVariant(t, (dir) => shortProbeFfmpeg(dir, failAgain));
    await until('the variant to close', () => closes.length > 0);
    assert.equal(ffmpeg.starts().length, 2);
    assert.match(ffmpeg.starts()[1]!, THOROUGH_PROBE);
    assert.equal(closes.length, 1);
    assert.match(closes[0]?.message ?? '', /^the VP8 transcoder stopped: ffmpeg stopped probing the re-stream before it knew the video's picture size\. ffmpeg said: "\[rtp\] dimensions not set"$/);
  });
});
