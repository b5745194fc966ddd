// Issue 12, item 7: a flood of refused viewer connections must not flood the Homebridge log. 200
// rapid WebSocket connections from one signed-in user (over the per-user limit, and over the
// camera's viewer limit, and peers that never connect) once wrote a line each; now each cause is
// logged once and summarised with a count.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { refusalLog } from '../../src/util/summary-log.js';
import { LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import { createSignallingHandler } from '../../src/webrtc/signalling.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { VIEWERS, openSocket, recordingLogger, signIn, startSecured, type CookieJar, type SecuredServer } from './auth-helpers.js';
import { registryOf, sampleCameras } from './fixtures.js';

describe('log flooding', () => {
  const lines: string[] = [];
  const log = recordingLogger(lines);
  let run: SecuredServer;
  let bob: { jar: CookieJar };

  before(async () => {
    const registry = registryOf(sampleCameras());
    run = await startSecured({
      registry,
      log,
      signalling: createSignallingHandler({
        registry,
        limits: new ViewerLimiter({ maxViewersPerCamera: 2 }),
        ice: LOOPBACK_ICE_SETTINGS,
        logger: log,
        tracksTimeoutMs: 200,
        viewerOptions: { connectTimeoutMs: 300 },
      }),
      access: { peers: { maxPeersPerPrincipal: 8, maxPeersPerAddress: 8, firstMessageTimeoutMs: 2_000 } },
    });
    bob = await signIn(run.base, 'bob', VIEWERS.bob.password);
  });
  after(() => run?.close());

  it('200 rapid WebSocket connections give a few summarised lines, not one per refusal', async () => {
    const signal = `ws://127.0.0.1:${run.port}/signal`;
    const before = lines.length;
    const outcomes: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 20 }, async () => {
          const socket = await openSocket(signal, { Cookie: bob.jar.header() });
          if (socket.status !== 101) {
            outcomes.push(String(socket.status));
            return;
          }
          socket.ws.send(JSON.stringify({ type: 'watch', camera: 'front-door' }));
          const closed = socket.closed;
          // Held open until the server ends it, or briefly for one that got an offer.
          const timer = setTimeout(() => socket.ws.close(), 1_000);
          await closed;
          clearTimeout(timer);
          outcomes.push(socket.messages.map((m) => (JSON.parse(m) as { code?: string; type: string }).code ?? (JSON.parse(m) as { type: string }).type).join('+'));
        }),
      );
    }
    // Every refusal happened (the limits work), which is what used to print a line each.
    const refusedPeers = outcomes.filter((o) => o === 'too-many-viewers').length;
    assert.ok(refusedPeers >= 100, `refusals: ${refusedPeers} of ${outcomes.join(',')}`);
    const during = lines.slice(before).filter((l) => !l.startsWith('debug'));
    assert.ok(during.length <= 6, `log lines during the flood: ${during.length}\n${during.join('\n')}`);
    // When the minute is over, each cause says how many more there were.
    refusalLog(log).flushAll();
    const summaries = lines.slice(before).filter((l) => /more times? in the last \d+ s \(summarised\)/.test(l));
    const counted = summaries.reduce((sum, l) => sum + Number(/: (\d+) more/.exec(l)?.[1] ?? 0), 0);
    assert.ok(counted + during.length >= refusedPeers, `summaries: ${summaries.join('\n')}`);
  });
});
