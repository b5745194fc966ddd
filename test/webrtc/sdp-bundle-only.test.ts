// Client offers in JSEP's max-bundle style (GStreamer's webrtcbin, for one) give every m-section
// after the first port 0 and `a=bundle-only`: bundled, not rejected. werift used to answer such a
// section inactive, so a GStreamer WHEP client got no audio (and would get no video if its audio came
// first). The fixture is a real webrtcbin offer (gst-plugins-bad 1.22, bundle-policy max-bundle).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/util/logger.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { filterOfferForH264 } from '../../src/webrtc/sdp-filter.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import type { CallerContext } from '../../src/web/types.js';
import { cleanupAll } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { EVERYONE, registryOf } from './harness.js';

after(cleanupAll);

const here = dirname(fileURLToPath(import.meta.url));
const GSTREAMER_OFFER = readFileSync(join(here, 'fixtures', 'gstreamer-max-bundle-offer.sdp'), 'utf8');

/** The same offer with its sections swapped: audio first, video bundle-only. */
function audioFirst(sdp: string): string {
  const [session, video, audio] = sdp.split(/\r\n(?=m=)/) as [string, string, string];
  const bundleOnlyVideo = video.replace(/^m=video 9 /, 'm=video 0 ').replace('a=mid:video0', 'a=bundle-only\r\na=mid:video0');
  const firstAudio = audio.replace(/^m=audio 0 /, 'm=audio 9 ').replace('a=bundle-only\r\n', '');
  return [session.replace('a=group:BUNDLE video0 audio1', 'a=group:BUNDLE audio1 video0'), firstAudio.trimEnd(), bundleOnlyVideo.trimEnd()].join('\r\n') + '\r\n';
}

function text(body: string | Buffer | undefined): string {
  return typeof body === 'string' ? body : (body?.toString('utf8') ?? '');
}

function section(sdp: string, kind: 'audio' | 'video'): string {
  return sdp.split(/\r\n(?=m=)/).find((s) => s.startsWith(`m=${kind} `)) ?? '';
}

describe('bundle-only sections in a client offer', () => {
  let source: SyntheticSource;
  let whep: WhepEndpoint;
  const caller: CallerContext = { principal: EVERYONE, remoteAddress: '127.0.0.1', request: {} as IncomingMessage, log: silentLogger };

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    whep = createWhepHandler({ registry: registryOf([source]), limits: new ViewerLimiter(), ice: LOOPBACK_ICE_SETTINGS });
  });
  after(async () => {
    await whep.closeAll();
    source.close();
  });

  test('the offer clean-up gives a bundle-only section the placeholder port 9 and leaves the rest alone', () => {
    const filtered = filterOfferForH264(GSTREAMER_OFFER);
    assert.match(section(filtered.sdp, 'audio'), /^m=audio 9 UDP\/TLS\/RTP\/SAVPF 0\r\n/);
    assert.match(section(filtered.sdp, 'video'), /^m=video 9 UDP\/TLS\/RTP\/SAVPF 102\r\n/);
    assert.ok(filtered.sdp.includes('a=bundle-only'), 'the attribute stays');
    // A section rejected for real (port 0 without bundle-only) stays rejected.
    const rejected = GSTREAMER_OFFER.replace('a=bundle-only\r\n', '');
    assert.match(section(filterOfferForH264(rejected).sdp, 'audio'), /^m=audio 0 /);
  });

  test('WHEP answers a webrtcbin max-bundle offer with audio in the bundle (sendonly PCMU)', async () => {
    const answer = await whep.handlePost('cam1', GSTREAMER_OFFER, caller);
    const sdp = text(answer.body);
    assert.equal(answer.status, 201, sdp);
    assert.match(sdp, /a=group:BUNDLE video0 audio1/);
    assert.match(section(sdp, 'audio'), /^m=audio 9 [^\r]* 0\r\n/);
    assert.match(section(sdp, 'audio'), /a=sendonly/);
    assert.match(section(sdp, 'video'), /a=sendonly/);
    await whep.closeAll();
  });

  test('WHEP answers an offer whose video is the bundle-only section with H.264 video', async () => {
    const answer = await whep.handlePost('cam1', audioFirst(GSTREAMER_OFFER), caller);
    const sdp = text(answer.body);
    assert.equal(answer.status, 201, sdp);
    assert.match(sdp, /a=group:BUNDLE audio1 video0/);
    assert.match(section(sdp, 'video'), /^m=video 9 [^\r]* 102\r\n/);
    assert.match(section(sdp, 'video'), /a=rtpmap:102 H264\/90000/);
    assert.match(section(sdp, 'video'), /a=sendonly/);
    await whep.closeAll();
  });
});
