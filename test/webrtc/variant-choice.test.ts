/**
 * Which Source a viewer is fed from, decided by the signalling from what the browser says it can
 * decode (`watch.videoCodecs`) and what the camera sends: the camera itself, its Opus-dubbed view
 * (AAC sound), its H.264 variant (an H.265 camera, a browser that takes H.264) or its VP8 variant.
 * Real signalling over a real WebSocket and real werift offers; the Sources are stand-ins with
 * tracks only, since what is checked is the offer each viewer gets and the Source behind it.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { BroadcastSource } from '../../src/media/types.js';
import { OPUS_AUDIO_TRACK } from '../../src/transcode/opus-audio.js';
import type { CameraRegistry } from '../../src/webrtc/types.js';
import { recordingLogger } from '../helpers/onvif-log.js';
import { AAC_TRACK, H264_TRACK, H265_TRACK, PCMU_TRACK, StandInSource, VP8_TRACK } from '../helpers/stand-in-source.js';
import { startSignallingServer, type SignallingHarness } from './harness.js';

const OPUS_VARIANT_TRACK = { ...OPUS_AUDIO_TRACK };

interface Rig {
  harness: SignallingHarness;
  log: ReturnType<typeof recordingLogger>;
  asked: string[];
}

const rigs: Rig[] = [];
after(async () => {
  await Promise.all(rigs.map((r) => r.harness.close()));
});

/** A signalling server whose registry has an H.265 + AAC camera, an H.264 + AAC one and an H.264 + PCMU one. */
async function rig(encoders: { h264: boolean; vp8: boolean; opus: boolean }): Promise<Rig> {
  const cameras = new Map<string, BroadcastSource>([
    ['hevc', new StandInSource('hevc', [H265_TRACK, AAC_TRACK])],
    ['aac', new StandInSource('aac', [H264_TRACK, AAC_TRACK])],
    ['pcmu', new StandInSource('pcmu', [H264_TRACK, PCMU_TRACK])],
  ]);
  const asked: string[] = [];
  const registry: CameraRegistry = {
    get: (id) => cameras.get(id),
    list: () => [...cameras.values()],
    transcoded: (id, codec = 'VP8') => {
      asked.push(`${codec} ${id}`);
      if (!cameras.has(id) || (codec === 'H264' ? !encoders.h264 : !encoders.vp8)) return undefined;
      return new StandInSource(id, [codec === 'H264' ? H264_TRACK : VP8_TRACK, OPUS_VARIANT_TRACK]);
    },
    withOpusSound: (id) => {
      const camera = cameras.get(id);
      if (!camera || !encoders.opus) return undefined;
      // What OpusDubbedSource shows: the camera's tracks with AAC as Opus.
      return new StandInSource(id, camera.tracks.map((t) => (t.codec === 'AAC' ? OPUS_AUDIO_TRACK : t)));
    },
  };
  const log = recordingLogger();
  const harness = await startSignallingServer({ sources: [...cameras.values()], registry, logger: log });
  const made = { harness, log, asked };
  rigs.push(made);
  return made;
}

/** Watches `camera` saying it decodes `videoCodecs`; resolves with the codecs of the offer, or the error code. */
async function watch(url: string, camera: string, videoCodecs?: string[]): Promise<{ video?: string; audio?: string; error?: string }> {
  const ws = new WebSocket(url);
  try {
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'watch', camera, ...(videoCodecs ? { videoCodecs } : {}) }));
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no offer or error for ${camera} in 10 s`)), 10_000);
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as { type: string; sdp?: string; code?: string };
        if (message.type === 'error') {
          clearTimeout(timer);
          resolve({ error: message.code ?? '?' });
        } else if (message.type === 'offer') {
          clearTimeout(timer);
          const codecOf = (kind: string): string | undefined => {
            const section = message.sdp!.split(/^m=/m).find((m) => m.startsWith(kind));
            if (!section || /^a=inactive/m.test(section)) return undefined;
            return /^a=rtpmap:\d+ ([^/\s]+)/m.exec(section)?.[1]?.toUpperCase();
          };
          resolve({ video: codecOf('video'), audio: codecOf('audio') });
        }
      });
    });
  } finally {
    ws.close();
  }
}

describe('signalling: which Source feeds a viewer', () => {
  it('an H.265 camera: a browser that takes H.264 gets the H.264 variant; a VP8-only one the VP8 variant', async () => {
    const { harness, log, asked } = await rig({ h264: true, vp8: true, opus: true });
    assert.deepEqual(await watch(harness.url, 'hevc', ['H264', 'VP8']), { video: 'H264', audio: 'OPUS' });
    assert.ok(log.lines.some((l) => /Camera hevc: .*H265.*; sending this viewer the H\.264 variant$/.test(l)), log.lines.join('\n'));
    asked.length = 0;
    assert.deepEqual(await watch(harness.url, 'hevc', ['VP8']), { video: 'VP8', audio: 'OPUS' });
    assert.deepEqual(asked, ['VP8 hevc'], 'a browser without H.264 goes straight to VP8: no H.264 encoder is made for it');
    // A page that says nothing about its codecs (an older page) is taken to decode both.
    assert.deepEqual(await watch(harness.url, 'hevc'), { video: 'H264', audio: 'OPUS' });
  });

  it('an H.265 camera without libx264: VP8 for a browser that takes it, a clear refusal for one that takes only H.264', async () => {
    const { harness, log } = await rig({ h264: false, vp8: true, opus: true });
    assert.deepEqual(await watch(harness.url, 'hevc', ['H264', 'VP8']), { video: 'VP8', audio: 'OPUS' });
    assert.ok(log.lines.some((l) => /sending this viewer the VP8 variant$/.test(l)));
    assert.deepEqual(await watch(harness.url, 'hevc', ['H264']), { error: 'unsupported-codec' });
  });

  it("an H.264 + AAC camera: its own H.264 and its sound as Opus; without libopus, its video alone; a G.711 camera's sound as it is", async () => {
    const withOpus = await rig({ h264: true, vp8: true, opus: true });
    assert.deepEqual(await watch(withOpus.harness.url, 'aac', ['H264', 'VP8']), { video: 'H264', audio: 'OPUS' });
    assert.deepEqual(withOpus.asked, [], 'no variant for a camera whose video the browser takes');
    assert.deepEqual(await watch(withOpus.harness.url, 'pcmu', ['H264']), { video: 'H264', audio: 'PCMU' });
    const without = await rig({ h264: true, vp8: true, opus: false });
    assert.deepEqual(await watch(without.harness.url, 'aac', ['H264']), { video: 'H264', audio: undefined });
  });
});
