// The browser helpers: Chromium (playwright-core) and Firefox ESR (puppeteer-core) open a
// page served on 127.0.0.1, and readRtcStats() sees the page's RTCPeerConnections.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchChromium, launchFirefox, readRtcStats, summarizeRtcStats, waitForFramesDecoded, type ChromiumSession, type FirefoxSession } from '../helpers/browser.js';
import { serveHttp, type TestHttpServer } from '../helpers/http-server.js';

const HELLO = '<!doctype html><title>harness page</title><p id="msg">hello from 127.0.0.1</p>';

/**
 * Two peer connections in one page, sending the fake camera and microphone to each other.
 * Only 127.0.0.1 candidates are exchanged, so the media stays on loopback.
 */
const LOOPBACK_CALL = `<!doctype html><title>loopback call</title><script>
const loopbackOnly = (sdp) => sdp.split('\\r\\n').filter((l) => !l.startsWith('a=candidate') || / 127\\.0\\.0\\.1 /.test(l)).join('\\r\\n');
const gathered = (pc) => new Promise((resolve) => {
  if (pc.iceGatheringState === 'complete') return resolve();
  pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
});
window.callState = (async () => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240 }, audio: true });
  const sender = new RTCPeerConnection({ iceServers: [] });
  const receiver = new RTCPeerConnection({ iceServers: [] });
  for (const track of media.getTracks()) sender.addTrack(track, media);
  await sender.setLocalDescription();
  await gathered(sender);
  await receiver.setRemoteDescription({ type: 'offer', sdp: loopbackOnly(sender.localDescription.sdp) });
  await receiver.setLocalDescription();
  await gathered(receiver);
  await sender.setRemoteDescription({ type: 'answer', sdp: loopbackOnly(receiver.localDescription.sdp) });
  return 'started';
})().catch((e) => 'failed: ' + e);
</script>`;

/**
 * Creates a peer connection but never connects it: the recorder must still list it.
 * window.candidates() gathers its ICE candidates (no getUserMedia on this page).
 */
const IDLE_PC = `<!doctype html><title>idle pc</title><script>
window.pc = new RTCPeerConnection({ iceServers: [] });
window.pc.addTransceiver('video', { direction: 'recvonly' });
window.candidates = async () => {
  const probe = new RTCPeerConnection({ iceServers: [] });
  probe.createDataChannel('x');
  const found = [];
  const done = new Promise((resolve) => {
    probe.onicecandidate = (e) => (e.candidate ? found.push(e.candidate.address) : resolve());
  });
  await probe.setLocalDescription();
  await done;
  probe.close();
  return found;
};
</script>`;

let http: TestHttpServer;
before(async () => {
  http = await serveHttp({ '/': HELLO, '/call': LOOPBACK_CALL, '/idle': IDLE_PC });
});
after(() => http.close());

describe('Chromium (playwright-core)', () => {
  let chromium: ChromiumSession;
  before(async () => {
    chromium = await launchChromium();
  });
  after(() => chromium.close());

  test('opens a page served on 127.0.0.1 and reads its title and text', async () => {
    const page = await chromium.openPage(http.url('/'));
    assert.equal(await page.title(), 'harness page');
    assert.equal(await page.textContent('#msg'), 'hello from 127.0.0.1');
    await page.close();
  });

  test('readRtcStats() reports inbound video and audio of a loopback call', async () => {
    const page = await chromium.openPage(http.url('/call'));
    assert.equal(await page.evaluate('window.callState'), 'started');
    const stats = await waitForFramesDecoded(page, 10, 15_000);
    const receiver = stats.find((pc) => pc.video !== undefined);
    assert.ok(receiver, summarizeRtcStats(stats));
    assert.equal(stats.length, 2, 'both peer connections were recorded');
    assert.equal(receiver.connectionState, 'connected');
    assert.equal(receiver.video!.mimeType, 'video/VP8');
    assert.ok((receiver.video!.framesDecoded ?? 0) >= 10);
    assert.ok((receiver.video!.frameWidth ?? 0) > 0 && (receiver.video!.frameHeight ?? 0) > 0);
    assert.ok((receiver.video!.packetsReceived ?? 0) > 0);
    assert.equal(typeof receiver.video!.jitterBufferDelay, 'number');
    assert.equal(typeof receiver.video!.jitterBufferEmittedCount, 'number');
    assert.equal(typeof receiver.video!.freezeCount, 'number');
    assert.ok((receiver.audio?.packetsReceived ?? 0) > 0, 'audio arrives too');
    assert.ok(receiver.candidatePairs.every((p) => p.remoteAddress === undefined || p.remoteAddress === '' || p.remoteAddress === '127.0.0.1'));
    await page.close();
  });

  test('offers 127.0.0.1 and plain addresses as ICE candidates, no .local names', async () => {
    const page = await chromium.openPage(http.url('/idle'));
    const addresses = await page.evaluate('window.candidates()');
    assert.ok(Array.isArray(addresses));
    assert.ok(addresses.includes('127.0.0.1'), JSON.stringify(addresses));
    assert.ok(!addresses.some((a) => String(a).endsWith('.local')), JSON.stringify(addresses));
    const stats = await readRtcStats(page);
    assert.equal(stats.length, 2, 'the idle PC and the probe PC were recorded');
    await page.close();
  });
});

describe('Firefox ESR (puppeteer-core)', () => {
  let firefox: FirefoxSession;
  before(async () => {
    firefox = await launchFirefox();
  });
  after(() => firefox.close());

  test('opens a page served on 127.0.0.1 and reads its title and text', async () => {
    const page = await firefox.openPage(http.url('/'));
    assert.equal(await page.title(), 'harness page');
    assert.equal(await page.$eval('#msg', (el) => el.textContent), 'hello from 127.0.0.1');
    assert.match(await page.evaluate(() => navigator.userAgent), /Firefox\//);
    await page.close();
  });

  test('records the page\'s RTCPeerConnections for readRtcStats()', async () => {
    const page = await firefox.openPage(http.url('/idle'));
    const stats = await readRtcStats(page);
    assert.equal(stats.length, 1);
    assert.equal(stats[0]!.signalingState, 'stable');
    assert.equal(stats[0]!.connectionState, 'new');
    assert.deepEqual(stats[0]!.inbound, []);
    await page.close();
  });
});
