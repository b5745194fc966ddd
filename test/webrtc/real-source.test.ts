// Viewers fed by the real Source (src/media/source.ts), whose upstream is a paced camera-like RTP
// stream (real H.264 from ffmpeg, 1400-byte payloads like a camera, plus PCMU): the seam between
// the media core and src/webrtc, end to end with a werift client.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { packetizeH264 } from '../../src/media/h264-packetizer.js';
import { serializeRtp } from '../../src/media/rtp.js';
import { Source } from '../../src/media/source.js';
import type { TrackDescription, UpstreamFactory } from '../../src/media/types.js';
import { encodeStream, groupAccessUnits, splitAnnexB } from '../media/helpers/streams.js';
import { cleanupAll } from '../helpers/processes.js';
import { startSignallingServer, type SignallingHarness } from './harness.js';
import { watchOverSignalling } from './werift-client.js';

after(cleanupAll);

function cameraUpstream(accessUnits: Buffer[][], stats: { sessions: number }): UpstreamFactory {
  const sps = accessUnits.flat().find((n) => (n[0]! & 0x1f) === 7)!;
  const pps = accessUnits.flat().find((n) => (n[0]! & 0x1f) === 8)!;
  const tracks: TrackDescription[] = [
    { kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90000, fmtp: { 'packetization-mode': '1' }, controlUrl: 'v', parameterSets: [sps, pps] },
    { kind: 'audio', codec: 'PCMU', payloadType: 0, clockRate: 8000, channels: 1, fmtp: {}, controlUrl: 'a' },
  ];
  return async (handlers, signal) => {
    stats.sessions++;
    let frame = 0;
    let audio = 0;
    let videoSeq = 100;
    let audioSeq = 200;
    const started = performance.now();
    const silence = Buffer.alloc(160, 0xff);
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      while (frame * 40 <= elapsed) {
        const units = accessUnits[frame % accessUnits.length]!;
        for (const p of packetizeH264(units, 1400)) {
          handlers.onRtp(0, serializeRtp({ marker: p.marker, payloadType: 96, sequenceNumber: videoSeq++ & 0xffff, timestamp: (frame * 3600) >>> 0, ssrc: 0x1234 }, p.payload));
        }
        frame++;
      }
      while (audio * 20 <= elapsed) {
        handlers.onRtp(1, serializeRtp({ marker: false, payloadType: 0, sequenceNumber: audioSeq++ & 0xffff, timestamp: (audio * 160) >>> 0, ssrc: 0x5678 }, silence));
        audio++;
      }
    }, 5);
    signal.addEventListener('abort', () => clearInterval(timer));
    return {
      tracks,
      close: async () => {
        clearInterval(timer);
      },
    };
  };
}

describe('viewers on the real Source', () => {
  let source: Source;
  let harness: SignallingHarness;
  const upstream = { sessions: 0 };

  before(async () => {
    const accessUnits = groupAccessUnits('h264', splitAnnexB(encodeStream({ codec: 'h264', width: 640, height: 360, seconds: 4, gop: 50, profile: 'main', preset: 'veryfast' })));
    source = new Source({ id: 'real', upstream: cameraUpstream(accessUnits, upstream), idleTimeoutMs: 500 });
    harness = await startSignallingServer({ sources: [source] });
  });
  after(async () => {
    await harness.close();
    await source.close();
  });

  test('a werift viewer decodes the camera through the Source; PLI replays the GOP; leaving unsubscribes', async () => {
    const a = await watchOverSignalling(harness.url, 'real');
    const b = await watchOverSignalling(harness.url, 'real');
    try {
      const info = await a.next('info');
      assert.deepEqual([info.width, info.height, info.audio], [640, 360, 'PCMU']);
      await a.receiver.waitFor(() => a.receiver.accessUnits >= 50 && a.receiver.audioPackets > 20, 15_000, 'frames and audio');
      await b.receiver.waitFor(() => b.receiver.accessUnits >= 10, 15_000, 'b: frames');
      assert.equal(a.receiver.damaged, 0);
      assert.equal(upstream.sessions, 1, 'two viewers, one camera session');
      // A PLI (after the join replay's quiet interval) is answered from the GOP cache, to a only.
      await new Promise((r) => setTimeout(r, 1100));
      const keyframesBefore = a.receiver.keyframes;
      const [viewerA] = harness.viewers.slice(-2);
      await a.receiver.sendPli();
      await a.receiver.waitFor(() => a.receiver.keyframes > keyframesBefore, 3_000, 'keyframe after PLI');
      assert.ok(viewerA!.stats().keyframeRequests >= 1);
      // Timestamps never go back, even across the replay.
      const ts = a.receiver.frameTimestamps();
      for (let i = 1; i < ts.length; i++) assert.ok(((ts[i]! - ts[i - 1]!) | 0) > 0, `timestamp ${i}`);
    } finally {
      await a.close();
      await b.close();
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(source.subscriberCount, 0);
  });
});
