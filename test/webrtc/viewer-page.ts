// The smallest page that speaks the signalling protocol, for browser tests of src/webrtc on its
// own (the real watch page belongs to src/web and is tested there). It records every server
// message in `window.__messages` and the time of the first decoded frame in `window.__firstFrameMs`.
export function viewerPage(signalUrl: string, camera: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>viewer test</title></head>
<body>
<video id="v" autoplay muted playsinline></video>
<script>
window.__messages = [];
window.__t0 = performance.now();
const video = document.getElementById('v');
const ws = new WebSocket(${JSON.stringify(signalUrl)});
const pc = new RTCPeerConnection({ iceServers: [] });
const stream = new MediaStream();
pc.onconnectionstatechange = () => { (window.__states = window.__states || []).push(pc.connectionState + '@' + Math.round(performance.now() - window.__t0)); };
pc.ontrack = (event) => {
  stream.addTrack(event.track);
  video.srcObject = stream;
  video.play().catch(() => undefined);
};
pc.onicecandidate = (event) => {
  if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'candidate', candidate: event.candidate ? event.candidate.toJSON() : null }));
};
if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
  video.requestVideoFrameCallback(() => { window.__firstFrameMs = performance.now() - window.__t0; });
}
let chain = Promise.resolve();
ws.onmessage = (event) => {
  const message = JSON.parse(event.data);
  message.at = Math.round(performance.now() - window.__t0);
  window.__messages.push(message);
  chain = chain.then(async () => {
    if (message.type === 'offer') {
      await pc.setRemoteDescription({ type: 'offer', sdp: message.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      ws.send(JSON.stringify({ type: 'answer', sdp: pc.localDescription.sdp }));
    } else if (message.type === 'candidate') {
      await pc.addIceCandidate(message.candidate === null ? undefined : message.candidate).catch(() => undefined);
    }
  }).catch((error) => { window.__error = String(error); });
};
ws.onopen = () => ws.send(JSON.stringify({ type: 'watch', camera: ${JSON.stringify(camera)} }));
window.__stop = () => { ws.send(JSON.stringify({ type: 'stop' })); ws.close(); pc.close(); };
</script>
</body></html>`;
}
