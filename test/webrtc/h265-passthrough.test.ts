/**
 * An H.265 camera to a viewer that decodes H.265 (Safari 18 and later, Chrome with a hardware
 * decoder): the camera's own H.265 goes through, untranscoded, over WHEP (the client's offer names
 * H.265) and over the page's signalling (the page says it decodes H.265). The camera is a real
 * GStreamer H.265 camera read by the real RTSP client and Source; the viewer is a werift peer that
 * takes H.265 the way Safari describes it (this machine's Chromium has no H.265 decoder, so no
 * browser here can stand in); what it receives is reassembled and decoded by ffmpeg. A viewer that
 * says nothing of H.265 still gets the H.264 variant, and no transcoder runs for the H.265 ones.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Source } from '../../src/media/source.js';
import type { BroadcastSource } from '../../src/media/types.js';
import { rtspUpstream } from '../../src/rtsp/upstream.js';
import { silentLogger } from '../../src/util/logger.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import type { CameraRegistry } from '../../src/webrtc/types.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { createWhepHandler } from '../../src/webrtc/whep.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { decodeVideo, probe } from '../helpers/ffprobe.js';
import { cleanupAll } from '../helpers/processes.js';
import { EVERYONE, startSignallingServer } from './harness.js';
import { watchOverSignalling, WeriftReceiver } from './werift-client.js';

after(cleanupAll);

describe('H.265 to a viewer that decodes it (no transcoding)', { timeout: 120_000 }, () => {
  let camera: FakeCamera;
  let source: Source;
  let scratch: string;
  /** Which variants the viewers asked for: none may be asked for an H.265 viewer. */
  const variantsAsked: string[] = [];
  let registry: CameraRegistry;

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 25, codec: 'h265', audio: 'pcmu' });
    source = new Source({ id: 'hevc', name: 'Hevc', upstream: rtspUpstream({ url: camera.url, cameraName: 'Hevc', logger: silentLogger }), logger: silentLogger, idleTimeoutMs: 500 });
    registry = {
      get: (id) => (id === 'hevc' ? source : undefined),
      list: () => [source],
      // A stand-in that only records: the H.265 viewers must not need it.
      transcoded: (id, codec) => {
        variantsAsked.push(`${id} ${codec ?? 'VP8'}`);
        return undefined;
      },
    };
    scratch = await mkdtemp(join(tmpdir(), 'wrc-h265-'));
  });

  after(async () => {
    await source?.close();
    await camera?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** The received H.265 decodes as the camera's picture. */
  async function assertDecodesAsCamera(receiver: WeriftReceiver, what: string): Promise<void> {
    const file = join(scratch, `${what}.h265`);
    await writeFile(file, receiver.annexB());
    const probed = await probe(file, { inputArgs: ['-f', 'hevc'] });
    assert.equal(probed.video?.codecName, 'hevc', `${what}: H.265 as it left the camera`);
    assert.equal(probed.video?.width, 640);
    assert.equal(probed.video?.height, 360);
    const decoded = await decodeVideo(file, { inputArgs: ['-f', 'hevc'] });
    assert.ok(decoded.videoFrames >= 25, `${what}: ${decoded.videoFrames} frames decoded`);
    assert.deepEqual(decoded.errors, [], `${what}: no decode errors`);
  }

  it('WHEP: a client offering H.265 gets an H.265 answer with its own payload type, and the camera\'s frames decode', async () => {
    const whep = createWhepHandler({ registry, limits: new ViewerLimiter({ maxViewersPerCamera: 10 }), ice: LOOPBACK_ICE_SETTINGS });
    const receiver = new WeriftReceiver({ videoCodec: 'H265' });
    try {
      const offer = await receiver.offer();
      assert.match(offer, /a=rtpmap:106 H265\/90000/);
      const answer = await whep.handlePost('hevc', offer, { principal: EVERYONE, remoteAddress: '127.0.0.1', request: {} as never, log: silentLogger });
      assert.equal(answer.status, 201, String(answer.body));
      const sdp = String(answer.body);
      const video = sdp.split('m=')[1]!;
      assert.match(video, /^video \d+ UDP\/TLS\/RTP\/SAVPF 106\r\n/, 'only the client\'s H.265');
      assert.match(video, /a=rtpmap:106 H265\/90000/);
      await receiver.applyAnswer(sdp);
      await receiver.waitFor(() => receiver.keyframes >= 2 && receiver.accessUnits >= 50, 20_000, 'two H.265 keyframes and 50 pictures');
      assert.equal(receiver.damaged, 0);
      assert.ok(receiver.audioPackets > 0, 'the camera\'s PCMU too');
      await assertDecodesAsCamera(receiver, 'whep');
      assert.equal(variantsAsked.length, 0, `no transcoded variant was asked for: ${variantsAsked.join(', ')}`);
      assert.equal(await camera.sessionCount(), 1);
    } finally {
      await receiver.close();
      await whep.closeAll();
    }
  });

  it('signalling: a page that says it decodes H.265 is offered the camera\'s H.265; one that does not is sent to the H.264 variant', async () => {
    const server = await startSignallingServer({ sources: [source as BroadcastSource], registry });
    const safari = await watchOverSignalling(server.url, 'hevc', { videoCodecs: ['H264', 'H265', 'VP8'], videoCodec: 'H265' });
    try {
      const offer = String((await safari.next('offer', 20_000)).sdp);
      assert.match(offer, /a=rtpmap:\d+ H265\/90000/);
      assert.match(offer, /a=fmtp:\d+ level-id=\d+;profile-id=1;tier-flag=0;tx-mode=SRST/);
      assert.doesNotMatch(offer, /H264/);
      const info = await safari.next('info', 20_000);
      assert.equal(info.codec, 'H265');
      assert.equal(info.width, 640, 'the picture size read from the camera\'s H.265 SPS');
      await safari.receiver.waitFor(() => safari.receiver.keyframes >= 2 && safari.receiver.accessUnits >= 50, 20_000, 'H.265 pictures');
      await assertDecodesAsCamera(safari.receiver, 'signalling');
      assert.equal(variantsAsked.length, 0, variantsAsked.join(', '));

      // A page that does not decode H.265: the H.264 variant is asked for (here there is none).
      const other = await watchOverSignalling(server.url, 'hevc', { videoCodecs: ['H264', 'VP8'] });
      try {
        const error = await other.next('error', 20_000);
        assert.equal(error.code, 'unsupported-codec');
        assert.ok(variantsAsked.includes('hevc H264'), JSON.stringify(variantsAsked));
      } finally {
        await other.close();
      }
    } finally {
      await safari.close();
      await server.close();
    }
  });
});
