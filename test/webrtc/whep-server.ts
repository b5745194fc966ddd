// A loopback HTTP front for WHEP tests: POST /whep/<camera> goes to the real WHEP handler
// (createWhepHandler), GET / serves a page that plays the camera over WHEP in a browser. A test can
// rewrite the offer on its way in and the answer on its way out (a NAT's ports, say).
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BroadcastSource } from '../../src/media/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { LOOPBACK_ICE_SETTINGS, type IceSettings } from '../../src/webrtc/ice-config.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import type { ViewerPeer } from '../../src/webrtc/viewer-peer.js';
import { createWhepHandler, type WhepEndpoint } from '../../src/webrtc/whep.js';
import { registerCleanup } from '../helpers/processes.js';
import { EVERYONE, registryOf } from './harness.js';

/** A page that offers recvonly video and audio to /whep/<camera> with fetch() and plays the answer. */
export function whepPlayPage(camera: string): string {
  return `<!doctype html><html><body><video id="v" autoplay muted playsinline></video><script>
(async () => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); const v = document.getElementById('v'); v.srcObject = stream; v.play().catch(() => {}); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 2000); });
  const res = await fetch('/whep/${camera}', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  window.__whep = { status: res.status, location: res.headers.get('Location') };
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
})().catch((e) => { window.__error = String(e); });
</script></body></html>`;
}

export interface WhepServerOptions {
  source: BroadcastSource;
  onViewer?: (viewer: ViewerPeer) => void;
  /** The offer as the server gets it. */
  rewriteOffer?: (sdp: string) => string;
  /** The answer as the client gets it. */
  rewriteAnswer?: (sdp: string) => string;
  /** The server's ICE settings (default: loopback). */
  ice?: IceSettings;
}

export interface WhepServer {
  /** http://127.0.0.1:<port> */
  base: string;
  whep: WhepEndpoint;
}

export async function startWhepServer(options: WhepServerOptions): Promise<WhepServer> {
  const camera = options.source.id;
  const whep = createWhepHandler({
    registry: registryOf([options.source]),
    limits: new ViewerLimiter({ maxViewersPerCamera: 10 }),
    ice: options.ice ?? LOOPBACK_ICE_SETTINGS,
    ...(options.onViewer ? { onViewer: options.onViewer } : {}),
  });
  const server = createServer((req: IncomingMessage, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      if (req.method === 'GET' && req.url === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html' }).end(whepPlayPage(camera));
        return;
      }
      if (req.method !== 'POST' || req.url !== `/whep/${camera}`) {
        res.writeHead(404).end();
        return;
      }
      const offer = Buffer.concat(chunks).toString('utf8');
      const answer = await whep.handlePost(camera, options.rewriteOffer?.(offer) ?? offer, { principal: EVERYONE, remoteAddress: '127.0.0.1', request: req, log: silentLogger });
      const body = answer.status === 201 && typeof answer.body === 'string' && options.rewriteAnswer ? options.rewriteAnswer(answer.body) : answer.body;
      res.writeHead(answer.status, answer.headers ?? {}).end(body);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  registerCleanup(async () => {
    await whep.closeAll();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, whep };
}
