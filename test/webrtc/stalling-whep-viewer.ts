// A WHEP viewer (werift, the client the fan-out bench uses) in a process of its own that stalls
// for a while once its ICE is up, as a busy phone or a process hosting fifty viewers does: the
// server's DTLS ClientHello, and its retransmission 500 ms later, wait in the socket and are then
// answered together. Run by dtls-stale-hellos.test.ts:
//   node --import tsx stalling-whep-viewer.ts <WHEP URL> <stall ms>
// Prints one line: RESULT {"accessUnits", "keyframes", "damaged", "stalledMs", "state"} or RESULT {"error", ...}.
import { WeriftReceiver } from './werift-client.js';

const [url, stallArg] = process.argv.slice(2);
const stallMs = Number(stallArg);
const receiver = new WeriftReceiver({ keepVideo: false });
let stalledMs = 0;

function report(message: Record<string, unknown>): Promise<void> {
  return new Promise((resolve) => process.stdout.write(`RESULT ${JSON.stringify(message)}\n`, () => resolve()));
}

try {
  receiver.pc.iceConnectionStateChange.subscribe((iceState) => {
    if (iceState !== 'connected' || stalledMs > 0) return;
    const started = performance.now();
    // The whole process stops, timers and sockets alike, as a process starved of CPU does.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, stallMs);
    stalledMs = performance.now() - started;
  });
  const offer = await receiver.offer();
  const res = await fetch(url!, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: offer });
  if (res.status !== 201) throw new Error(`WHEP POST: ${res.status} ${await res.text()}`);
  await receiver.applyAnswer(await res.text());
  await receiver.waitFor(() => receiver.keyframes >= 1 && receiver.accessUnits >= 10, 15_000, 'ten access units from a keyframe');
  await report({ accessUnits: receiver.accessUnits, keyframes: receiver.keyframes, damaged: receiver.damaged, stalledMs, state: receiver.pc.connectionState });
} catch (error) {
  await report({ error: error instanceof Error ? error.message : String(error), stalledMs, state: receiver.pc.connectionState });
} finally {
  await receiver.close();
  process.exit(0);
}
