// Camera variants through the whole chain (GStreamer camera → RTSP client → Source → re-stream →
// ffmpeg): H.265 with AAC, High-profile H.264 whose SPS/PPS exist only in the SDP, with PCMA, and a
// camera without audio. Checks that the re-stream's SDP describes each one so ffmpeg decodes it.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Source } from '../../src/media/source.js';
import { createRestreamServer, type RestreamServer } from '../../src/restream/server.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeCamera, type FakeCameraOptions } from '../helpers/fake-camera.js';
import { probe, runFfmpeg } from '../helpers/ffprobe.js';
import { rtspDescribe } from '../helpers/rtsp-client.js';

interface Chain {
  camera: FakeCamera;
  source: Source;
  server: RestreamServer;
}

const chains: Chain[] = [];

async function chain(options: FakeCameraOptions): Promise<Chain> {
  const camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, ...options });
  const source = new Source({
    id: 'cam',
    upstream: rtspUpstream({ url: camera.url, cameraName: 'cam', logger: silentLogger }),
    backoff: { initialMs: 500, maxMs: 2000 },
  });
  const server = await createRestreamServer({ getSource: (id) => (id === 'cam' ? source : undefined) });
  const c = { camera, source, server };
  chains.push(c);
  return c;
}

async function decodes(url: string, transport: 'tcp' | 'udp'): Promise<void> {
  const r = await runFfmpeg([
    '-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-rtsp_transport', transport,
    '-i', url, '-map', '0:v:0', '-frames:v', '60', '-f', 'null', '-',
  ], 30_000);
  const frames = Number([...r.stdout.matchAll(/^frame=(\d+)$/gm)].at(-1)?.[1] ?? 0);
  assert.equal(r.code, 0, `${transport}: ${r.stderr}`);
  assert.ok(frames >= 50, `${transport}: ${frames} frames: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /non-existing PPS|no frame!|decode_slice_header|Could not find ref|PPS id out of range/, r.stderr);
}

describe('e2e: re-stream of camera variants', { timeout: 120_000 }, () => {
  after(async () => {
    for (const c of chains) {
      await c.server.close();
      await c.source.close();
      await c.camera.close();
    }
  });

  it('H.265 + AAC: sprop-vps/sps/pps and mpeg4-generic config; ffmpeg decodes over TCP and UDP', async () => {
    const { server } = await chain({ codec: 'h265', audio: 'aac' });
    const sdp = (await rtspDescribe(server.url('cam'))).body;
    assert.match(sdp, /a=rtpmap:96 H265\/90000\r\na=fmtp:96 sprop-vps=[^;]+;sprop-sps=[^;]+;sprop-pps=\S+\r\n/);
    assert.match(sdp, /a=rtpmap:97 MPEG4-GENERIC\/16000\/1\r\na=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=[0-9a-f]+\r\n/i);
    await decodes(server.url('cam'), 'tcp');
    await decodes(server.url('cam'), 'udp');
    const info = await probe(server.url('cam'));
    assert.deepEqual([info.video?.codecName, info.video?.width, info.audio?.codecName, info.audio?.sampleRate], ['hevc', 640, 'aac', 16000]);
  });

  it('High-profile H.264 with SPS/PPS only in the SDP, and PCMA', async () => {
    const { server } = await chain({ codec: 'h264', profile: 'high', audio: 'pcma', parameterSetsInBand: false });
    const sdp = (await rtspDescribe(server.url('cam'))).body;
    assert.match(sdp, /a=fmtp:96 packetization-mode=1;profile-level-id=64[0-9a-f]{4};sprop-parameter-sets=[^,\s]+,\S+\r\n/);
    assert.match(sdp, /m=audio 0 RTP\/AVP 8\r\na=rtpmap:8 PCMA\/8000\r\n/);
    await decodes(server.url('cam'), 'tcp');
    await decodes(server.url('cam'), 'udp');
    const info = await probe(server.url('cam'));
    assert.deepEqual([info.video?.codecName, info.video?.profile, info.audio?.codecName], ['h264', 'High', 'pcm_alaw']);
  });

  it('a camera without audio: video only', async () => {
    const { server } = await chain({ audio: 'none' });
    const sdp = (await rtspDescribe(server.url('cam'))).body;
    assert.doesNotMatch(sdp, /m=audio/);
    await decodes(server.url('cam'), 'tcp');
    const info = await probe(server.url('cam'), { transport: 'tcp' });
    assert.equal(info.audio, undefined);
  });

  it('a camera reboot does not end re-stream clients: ffmpeg keeps decoding over TCP and UDP', async () => {
    const { camera, source, server } = await chain({});
    const run = (transport: 'tcp' | 'udp') => runFfmpeg([
      '-hide_banner', '-nostdin', '-v', 'error', '-nostats', '-progress', 'pipe:1', '-rtsp_transport', transport,
      '-i', server.url('cam'), '-map', '0:v:0', '-t', '10', '-f', 'null', '-',
    ], 60_000);
    const runs = Promise.all([run('tcp'), run('udp')]);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await camera.stop();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await camera.restart();
    for (const r of await runs) {
      const frames = Number([...r.stdout.matchAll(/^frame=(\d+)$/gm)].at(-1)?.[1] ?? 0);
      assert.equal(r.code, 0, r.stderr);
      // 10 s of media minus the ~3 s outage, at 25 fps.
      assert.ok(frames >= 150, `decoded ${frames} frames across the reboot: ${r.stderr}`);
    }
    assert.ok(source.stats().reconnects >= 1, 'the Source really reconnected');
  });
});
