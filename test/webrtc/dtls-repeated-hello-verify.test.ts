// The DTLS handshake with a viewer that is slow to answer (dtls-repeated-hello-verify.ts). The
// real peer: a werift WHEP viewer in its own process that stalls for 1.2 s once its ICE is up, so
// that it answers the server's ClientHello and its retransmission with two HelloVerifyRequests.
// Without the guard werift's client failed the handshake on the second one and the viewer saw
// nothing; with it the viewer plays. The guard's own cases run against a stand-in socket.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { guardDtlsSocket, repeatedHelloVerifyCounters, tolerateRepeatedHelloVerifyRequests } from '../../src/webrtc/dtls-repeated-hello-verify.js';
import { cleanupAll, spawnTracked } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { startWhepServer } from './whep-server.js';

after(cleanupAll);

const VIEWER = join(dirname(fileURLToPath(import.meta.url)), 'stalling-whep-viewer.ts');

/** A stand-in for werift's DTLS socket: what reached its handshake code, at which flight. */
function standInSocket(flight: number): { socket: { onHandleHandshakes: (a: Array<{ msg_type: number }>) => Promise<void>; dtls: { flight: number } }; seen: number[][] } {
  const seen: number[][] = [];
  const socket = {
    dtls: { flight },
    onHandleHandshakes: (assembled: Array<{ msg_type: number }>): Promise<void> => {
      seen.push(assembled.map((h) => h.msg_type));
      return Promise.resolve();
    },
  };
  return { socket, seen };
}

describe('a HelloVerifyRequest the DTLS client is already past', () => {
  test('is dropped from flight 3 on, and nothing else is', async () => {
    const before = repeatedHelloVerifyCounters.dropped;
    const early = standInSocket(1);
    assert.equal(guardDtlsSocket(early.socket), true);
    await early.socket.onHandleHandshakes([{ msg_type: 3 }]);
    assert.deepEqual(early.seen, [[3]], 'the first HelloVerifyRequest reaches werift');

    const past = standInSocket(3);
    guardDtlsSocket(past.socket);
    await past.socket.onHandleHandshakes([{ msg_type: 3 }]);
    await past.socket.onHandleHandshakes([{ msg_type: 2 }, { msg_type: 3 }, { msg_type: 11 }]);
    await past.socket.onHandleHandshakes([{ msg_type: 14 }]);
    assert.deepEqual(past.seen, [[2, 11], [14]]);
    assert.equal(repeatedHelloVerifyCounters.dropped - before, 2);
  });

  test('a socket that does not look like werift\'s is left alone', () => {
    const before = repeatedHelloVerifyCounters.unguarded;
    assert.equal(guardDtlsSocket({ dtls: {} }), false);
    assert.equal(guardDtlsSocket(undefined), false);
    assert.equal(repeatedHelloVerifyCounters.unguarded - before, 2);
  });
});

describe('a WHEP viewer that stalls as the DTLS handshake starts', () => {
  let source: SyntheticSource;
  let url: string;

  before(async () => {
    assert.deepEqual(tolerateRepeatedHelloVerifyRequests(), { installed: true, reason: '' });
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    url = `${(await startWhepServer({ source })).base}/whep/cam1`;
  });
  after(() => source.close());

  test('it answers the ClientHello twice, and still gets its picture', async () => {
    const dropped = repeatedHelloVerifyCounters.dropped;
    const viewer = spawnTracked(process.execPath, ['--import', 'tsx', VIEWER, url, '1200'], { name: 'stalling-whep-viewer' });
    const exit = await viewer.exited;
    const line = viewer.stdoutText().split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, `the viewer reported nothing (exit ${JSON.stringify(exit)}): ${viewer.stderrText().slice(-2000)}`);
    const result = JSON.parse(line.slice('RESULT '.length)) as { error?: string; accessUnits?: number; keyframes?: number; damaged?: number; stalledMs: number; state: string };
    assert.ok(result.stalledMs >= 1150, `the viewer stalled ${result.stalledMs} ms`);
    // The case it is about happened: the server's client saw the second HelloVerifyRequest.
    assert.ok(repeatedHelloVerifyCounters.dropped > dropped, 'no HelloVerifyRequest came twice: the stall did not catch the handshake');
    assert.equal(result.error, undefined, `the viewer failed (${result.state})`);
    assert.ok(result.keyframes! >= 1 && result.accessUnits! >= 10, JSON.stringify(result));
    assert.equal(result.damaged, 0);
  });
});
