/**
 * One camera's talk channel (src/talk/camera-talk.ts) against the real pieces: Opus from libopus,
 * the real ffmpeg, the plugin's RTSP back-channel client and a GStreamer ONVIF camera that decodes
 * what it gets and reports the tone.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { RtspBackchannel } from '../../src/rtsp/backchannel.js';
import { rtspEndpoint } from '../../src/rtsp/url.js';
import { CameraTalk } from '../../src/talk/camera-talk.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { opusTone, speak } from '../helpers/opus-tone.js';
import { cleanupAll } from '../helpers/processes.js';

after(cleanupAll);

function talkFor(camera: FakeCamera, lingerMs = 1000): CameraTalk {
  return new CameraTalk({
    cameraName: 'Door',
    openOutput: (onClosed) => RtspBackchannel.open({ endpoint: rtspEndpoint(camera.url), cameraName: 'Door', logger: silentLogger, onClosed }),
    ffmpegPath: 'ffmpeg',
    log: silentLogger,
    lingerMs,
  });
}

describe('talk channel (real ffmpeg, back-channel client and ONVIF camera)', { timeout: 60_000 }, () => {
  it('a talker’s 1 kHz Opus arrives at the camera as 1 kHz G.711; another viewer is told who talks; the back-channel closes after the linger', async () => {
    const camera = await FakeCamera.start({ backchannel: 'pcma', audio: 'none' });
    try {
      const talk = talkFor(camera);
      const seen: Array<string | undefined> = [];
      talk.watch((holder) => seen.push(holder?.name));
      const ended: string[] = [];
      const turn = talk.take({ id: 'v1', name: 'alice' }, (message) => ended.push(message));
      assert.ok(!('busy' in turn));
      assert.deepEqual(talk.take({ id: 'v2', name: 'bob' }, () => undefined), { busy: 'alice' });
      await speak(turn.voice, opusTone(1000, 3));
      const heard = camera.talkReports().filter((r) => Math.abs(r.frequency - 1000) <= 20 && r.rms > 0.05);
      assert.ok(heard.length >= 3, `the camera heard 1 kHz in ${heard.length} half-second reports: ${JSON.stringify(camera.talkReports())}`);
      turn.release();
      assert.deepEqual(seen, ['alice', undefined]);
      assert.deepEqual(ended, [], 'a released turn is not "ended"');
      await camera.waitForTalkSessionCount(0, 10_000);
      await talk.close();
    } finally {
      await camera.close();
    }
  });

  it('a camera without a back-channel: the turn ends with a plain message and the floor is free again', async () => {
    const camera = await FakeCamera.start({ audio: 'pcmu' });
    try {
      const talk = talkFor(camera);
      const ended = new Promise<string>((resolve) => {
        const turn = talk.take({ id: 'v1', name: 'alice' }, resolve);
        assert.ok(!('busy' in turn));
      });
      const message = await ended;
      assert.match(message, /speaker cannot be reached/i);
      assert.ok(!message.includes('rtsp://'), message);
      assert.equal(talk.holder, undefined);
      await talk.close();
    } finally {
      await camera.close();
    }
  });

  it('a talker who stops sending loses the floor after the idle time and is told why', async () => {
    const camera = await FakeCamera.start({ backchannel: 'pcmu', audio: 'none' });
    try {
      const talk = new CameraTalk({
        cameraName: 'Door',
        openOutput: (onClosed) => RtspBackchannel.open({ endpoint: rtspEndpoint(camera.url), cameraName: 'Door', logger: silentLogger, onClosed }),
        ffmpegPath: 'ffmpeg',
        log: silentLogger,
        idleMs: 800,
        lingerMs: 500,
      });
      const ended: string[] = [];
      const turn = talk.take({ id: 'v1', name: 'alice' }, (message) => ended.push(message));
      assert.ok(!('busy' in turn));
      await speak(turn.voice, opusTone(440, 0.4));
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(talk.holder, undefined);
      assert.equal(ended.length, 1);
      assert.match(ended[0]!, /no sound arrived/);
      const next = talk.take({ id: 'v2', name: 'bob' }, () => undefined);
      assert.ok(!('busy' in next), 'bob may talk now');
      next.release();
      await talk.close();
      await camera.waitForTalkSessionCount(0, 10_000);
    } finally {
      await camera.close();
    }
  });
});
