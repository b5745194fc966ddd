// WHEP against clients that are not ours: aiortc (python3-aiortc) decodes video; Chromium does a
// WHEP POST with fetch() and plays; curl posts a captured Chromium offer. Plus the offer clean-up
// (the werift H.264 payload type bug) on that real Chromium offer.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { filterOfferForH264 } from '../../src/webrtc/sdp-filter.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { createWhepHandler, parseSdpFragment, type WhepEndpoint } from '../../src/webrtc/whep.js';
import type { CallerContext } from '../../src/web/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { launchChromium, waitForFramesDecoded } from '../helpers/browser.js';
import { runTool } from '../helpers/ffprobe.js';
import { cleanupAll, registerCleanup } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { EVERYONE, registryOf } from './harness.js';
import { WeriftReceiver } from './werift-client.js';
import { whepPlayPage } from './whep-server.js';

after(cleanupAll);

const here = dirname(fileURLToPath(import.meta.url));
const CHROMIUM_OFFER = readFileSync(join(here, 'fixtures', 'chromium-recvonly-offer.sdp'), 'utf8');

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const WHEP_PAGE = whepPlayPage('cam1');

describe('WHEP', () => {
  let source: SyntheticSource;
  let whep: WhepEndpoint;
  let limits: ViewerLimiter;
  let server: Server;
  let base: string;

  before(async () => {
    source = await SyntheticSource.create({ id: 'cam1', gop: 50 });
    limits = new ViewerLimiter({ maxViewersPerCamera: 10 });
    whep = createWhepHandler({ registry: registryOf([source]), limits, ice: LOOPBACK_ICE_SETTINGS });
    const caller = (req: IncomingMessage): CallerContext => ({ principal: EVERYONE, remoteAddress: '127.0.0.1', request: req, log: silentLogger });
    server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const parts = url.pathname.split('/').filter(Boolean);
        if (req.method === 'GET' && url.pathname === '/') {
          res.writeHead(200, { 'Content-Type': 'text/html' }).end(WHEP_PAGE);
          return;
        }
        let answer;
        if (req.method === 'POST' && parts[0] === 'whep' && parts.length === 2) {
          answer = await whep.handlePost(parts[1]!, await readBody(req), caller(req));
        } else if (req.method === 'DELETE' && parts[0] === 'whep' && parts.length === 3) {
          answer = await whep.handleDelete(parts[1]!, parts[2]!, caller(req));
        } else if (req.method === 'PATCH' && parts[0] === 'whep' && parts.length === 3) {
          answer = await whep.handlePatch(parts[1]!, parts[2]!, await readBody(req), caller(req));
        } else {
          answer = { status: 404 };
        }
        res.writeHead(answer.status, answer.headers ?? {}).end(answer.body);
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    registerCleanup(async () => {
      await whep.closeAll();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
  });
  after(() => source.close());

  test('the offer clean-up keeps only the best packetization-mode=1 H.264 of a real Chromium offer', () => {
    const filtered = filterOfferForH264(CHROMIUM_OFFER);
    assert.equal(filtered.h264?.profileLevelId, '42e01f');
    assert.equal(filtered.h264?.payloadType, 108);
    const video = filtered.sdp.split('\r\n').find((l) => l.startsWith('m=video'))!;
    assert.equal(video.split(' ').slice(3).join(' '), '108');
    assert.ok(!/a=rtpmap:102 /.test(filtered.sdp), 'the 42001f variant Chromium lists first is gone');
    assert.ok(!/a=fmtp:109 apt=108/.test(filtered.sdp), 'RTX goes too');
    assert.ok(/a=rtcp-fb:108 nack pli/.test(filtered.sdp), 'the kept payload type keeps its feedback');
    assert.ok(/m=audio .* 0 /.test(filtered.sdp) || /m=audio [^\r\n]* 0( |$)/m.test(filtered.sdp), 'audio is untouched');
    assert.ok(filtered.sdp.includes('a=candidate:'), 'candidates are untouched');
    assert.deepEqual(parseSdpFragment('a=ice-ufrag:ab\r\na=mid:0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n'), {
      ufrag: 'ab',
      candidates: [{ candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 }],
      end: true,
    });
  });

  test('aiortc (python3-aiortc) decodes the video and gets audio, then DELETE ends the session', async (t) => {
    const result = await runTool('/usr/bin/python3', [join(here, 'whep-client.py'), `${base}/whep/cam1`, '15', '50'], 40_000);
    const line = result.stdout.trim().split('\n').pop() ?? '';
    assert.ok(line.startsWith('{'), `aiortc output: ${result.stdout}\n${result.stderr.slice(-2000)}`);
    const out = JSON.parse(line) as Record<string, unknown>;
    t.diagnostic(`aiortc: ${line}`);
    assert.equal(out.status, 201);
    assert.match(String(out.location), /^\/whep\/cam1\/[A-Za-z0-9-]+$/);
    assert.equal(out.contentType, 'application/sdp');
    assert.ok(typeof out.etag === 'string');
    assert.ok(Number(out.frames) >= 50, `frames decoded: ${String(out.frames)}`);
    assert.equal(out.width, 640);
    assert.equal(out.height, 360);
    assert.ok(Number(out.audioFrames) > 0);
    assert.equal(out.deleteStatus, 200);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(whep.sessionCount, 0);
    assert.equal(limits.count('cam1'), 0);
    assert.equal(source.subscriberCount, 0);
  });

  test('Chromium plays over WHEP (client offer with Chromium\'s H.264 list)', async () => {
    const chromium = await launchChromium();
    try {
      const page = await chromium.openPage(`${base}/`);
      const stats = await waitForFramesDecoded(page, 50, 20_000);
      const pc = stats.find((s) => (s.video?.framesDecoded ?? 0) >= 50)!;
      assert.match(pc.video!.sdpFmtpLine ?? '', /packetization-mode=1/);
      assert.match(pc.video!.sdpFmtpLine ?? '', /42e01f/);
      assert.equal(pc.video!.frameWidth, 640);
      const info = (await page.evaluate('window.__whep')) as { status: number; location: string };
      assert.equal(info.status, 201);
      const del = await fetch(`${base}${info.location}`, { method: 'DELETE' });
      assert.equal(del.status, 200);
      assert.equal(whep.sessionCount, 0);
    } finally {
      await chromium.close();
    }
  });

  test('a werift client offer works too, trickle PATCH is accepted, and errors are plain', async () => {
    const receiver = new WeriftReceiver();
    try {
      const offer = await receiver.offer();
      const res = await fetch(`${base}/whep/cam1`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
      assert.equal(res.status, 201);
      const location = res.headers.get('Location')!;
      assert.equal(res.headers.get('Accept-Patch'), 'application/trickle-ice-sdpfrag');
      await receiver.applyAnswer(await res.text());
      const patch = await fetch(`${base}${location}`, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' },
        body: `a=mid:0\r\na=${receiver.localCandidates[0]?.candidate ?? 'candidate:1 1 udp 1 127.0.0.1 9 typ host'}\r\na=end-of-candidates\r\n`,
      });
      assert.equal(patch.status, 204);
      await receiver.waitFor(() => receiver.accessUnits >= 30, 10_000, '30 access units');
      assert.equal(receiver.damaged, 0, `access units (I: IDR, p: other, x: damaged): ${receiver.auKinds}`);
      const restart = await fetch(`${base}${location}`, { method: 'PATCH', body: 'a=ice-ufrag:zzzz\r\na=ice-pwd:yyyyyyyyyyyyyyyyyyyyyy\r\n' });
      assert.equal(restart.status, 422);
      assert.equal((await fetch(`${base}${location}`, { method: 'DELETE' })).status, 200);
      assert.equal((await fetch(`${base}${location}`, { method: 'DELETE' })).status, 404);
    } finally {
      await receiver.close();
    }
    // A client that offers video without H.264 (and no audio) is refused plainly.
    const videoOnly = CHROMIUM_OFFER.replace(/m=video [^\r\n]*/, 'm=video 9 UDP/TLS/RTP/SAVPF 96 98').split(/\r?\n(?=m=audio)/)[0]!;
    const refused = await fetch(`${base}/whep/cam1`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: videoOnly });
    assert.equal(refused.status, 406);
    assert.match(await refused.text(), /H\.264/);
    assert.equal((await fetch(`${base}/whep/nope`, { method: 'POST', body: CHROMIUM_OFFER })).status, 404);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(limits.count('cam1'), 0);
  });

  test('curl: a captured Chromium offer gets 201, Location, ETag and an H.264 42e01f answer', async () => {
    const result = await runTool('curl', [
      '-sS', '-i', '-X', 'POST', '-H', 'Content-Type: application/sdp', '--data-binary', CHROMIUM_OFFER, `${base}/whep/cam1`,
    ]);
    assert.match(result.stdout, /^HTTP\/1\.1 201/);
    assert.match(result.stdout, /\r\nlocation: \/whep\/cam1\/[A-Za-z0-9-]+\r\n/i);
    assert.match(result.stdout, /\r\netag: "[0-9a-f]+"\r\n/i);
    assert.match(result.stdout, /a=rtpmap:108 H264\/90000/);
    assert.match(result.stdout, /a=fmtp:108 [^\r\n]*packetization-mode=1/);
    assert.ok(!/a=rtpmap:102 H264/.test(result.stdout), 'the answer names only the chosen H.264');
    const location = /\r\nlocation: (\S+)\r\n/i.exec(result.stdout)![1]!;
    assert.equal((await fetch(`${base}${location}`, { method: 'DELETE' })).status, 200);
  });
});
