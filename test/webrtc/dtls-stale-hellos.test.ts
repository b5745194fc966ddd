// Stale DTLS hellos (dtls-stale-hellos.ts).
// The client side, a viewer slow to answer: the real peer is a werift WHEP viewer in its own
// process that stalls for 1.2 s once its ICE is up, so that it answers the server's ClientHello and
// its retransmission with two HelloVerifyRequests. Without the guard werift's client failed the
// handshake on the second one and the viewer saw nothing; with it the viewer plays. The guard's own
// cases run against a stand-in socket.
// The server side, a stale ClientHello: the real peers are werift's own DTLS client and server (the
// ones a viewer's connection runs), with the plugin's certificate, over an in-memory wire that
// delivers every datagram in order and, once, a copy of the client's first ClientHello late: after
// the server has sent its ServerHello (a datagram reordered or duplicated on the way), or once the
// session is up. Unguarded, werift's server starts over on it (new random and key pair, or a
// renegotiation that drops the session's ciphers) and the session is lost; the guard drops it and
// the application data still flows both ways.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { DtlsClient, DtlsServer, RTCDtlsTransport } from 'werift';
import { clientHelloHasCookie, guardDtlsSocket, ignoreStaleDtlsHellos, staleDtlsHelloCounters } from '../../src/webrtc/dtls-stale-hellos.js';
import { cleanupAll, spawnTracked } from '../helpers/processes.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { sleep, waitFor } from '../helpers/wait.js';
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
    const before = staleDtlsHelloCounters.helloVerifyRequests;
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
    assert.equal(staleDtlsHelloCounters.helloVerifyRequests - before, 2);
  });

  test('a socket that does not look like werift\'s is left alone', () => {
    const before = staleDtlsHelloCounters.unguarded;
    assert.equal(guardDtlsSocket({ dtls: {} }), false);
    assert.equal(guardDtlsSocket(undefined), false);
    assert.equal(staleDtlsHelloCounters.unguarded - before, 2);
  });
});

describe('a WHEP viewer that stalls as the DTLS handshake starts', () => {
  let source: SyntheticSource;
  let url: string;

  before(async () => {
    assert.deepEqual(ignoreStaleDtlsHellos(), { installed: true, reason: '' });
    source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    url = `${(await startWhepServer({ source })).base}/whep/cam1`;
  });
  after(() => source.close());

  test('it answers the ClientHello twice, and still gets its picture', async () => {
    const dropped = staleDtlsHelloCounters.helloVerifyRequests;
    const viewer = spawnTracked(process.execPath, ['--import', 'tsx', VIEWER, url, '1200'], { name: 'stalling-whep-viewer' });
    const exit = await viewer.exited;
    const line = viewer.stdoutText().split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, `the viewer reported nothing (exit ${JSON.stringify(exit)}): ${viewer.stderrText().slice(-2000)}`);
    const result = JSON.parse(line.slice('RESULT '.length)) as { error?: string; accessUnits?: number; keyframes?: number; damaged?: number; stalledMs: number; state: string };
    assert.ok(result.stalledMs >= 1150, `the viewer stalled ${result.stalledMs} ms`);
    // The case it is about happened: the server's client saw the second HelloVerifyRequest.
    assert.ok(staleDtlsHelloCounters.helloVerifyRequests > dropped, 'no HelloVerifyRequest came twice: the stall did not catch the handshake');
    assert.equal(result.error, undefined, `the viewer failed (${result.state})`);
    assert.ok(result.keyframes! >= 1 && result.accessUnits! >= 10, JSON.stringify(result));
    assert.equal(result.damaged, 0);
  });
});

/** What a viewer's connection offers: SRTP_AEAD_AES_128_GCM, then SRTP_AES128_CM_HMAC_SHA1_80. */
const SRTP_PROFILES: Array<1 | 7> = [7, 1];
/** DTLS record content type handshake, and the handshake types read here. */
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_HELLO = 2;

/** The first record's handshake type of a plaintext handshake datagram, else undefined. */
function handshakeType(datagram: Buffer): number | undefined {
  return datagram.length > 13 && datagram[0] === HANDSHAKE && datagram.readUInt16BE(3) === 0 ? datagram[13] : undefined;
}

/** One side of the wire, as werift's DTLS socket takes its transport. */
interface WireEnd {
  readonly type: string;
  readonly address: { address: string; family: string; port: number };
  readonly closed: boolean;
  /** werift puts its reader here. */
  onData: (data: Buffer, from: readonly [string, number]) => void;
  send(data: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** The address the wire's datagrams come from (one peer each way). */
const PEER = ['memory', 0] as const;

type Moment = 'after-server-hello' | 'once-connected';

interface Session {
  client: DtlsClient;
  server: DtlsServer;
  /** Whether the stale copy was delivered to the server. */
  staleDelivered(): boolean;
  /** Delivers the stale copy now (for 'once-connected'). */
  deliverStale(): void;
  close(): void;
}

/** A werift client and server on an in-memory wire that replays the client's first ClientHello late, at `moment`. */
async function dtlsSession(moment: Moment, guarded: boolean): Promise<Session> {
  const certificate = await RTCDtlsTransport.SetupCertificate();
  let firstClientHello: Buffer | undefined;
  let staleDelivered = false;
  let closed = false;
  /** One end of the wire; `onSend` sees each datagram it sends before the other end gets it. */
  const wireEnd = (onSend: (data: Buffer) => void): WireEnd => ({
    type: 'memory',
    address: { address: 'memory', family: 'memory', port: 0 },
    closed: false,
    onData: () => undefined,
    send: async (data) => onSend(data),
    close: async () => undefined,
  });
  const deliver = (to: WireEnd, data: Buffer): void => void setImmediate(() => !closed && to.onData(data, PEER));
  const clientEnd: WireEnd = wireEnd((data) => {
    if (firstClientHello === undefined && handshakeType(data) === CLIENT_HELLO) firstClientHello = Buffer.from(data);
    deliver(serverEnd, data);
  });
  const serverEnd: WireEnd = wireEnd((data) => {
    if (moment === 'after-server-hello' && handshakeType(data) === SERVER_HELLO && !staleDelivered) deliverStale();
    deliver(clientEnd, data);
  });
  function deliverStale(): void {
    const copy = firstClientHello;
    assert.ok(copy, 'the client sent a ClientHello');
    staleDelivered = true;
    deliver(serverEnd, copy);
  }
  const common = { cert: certificate.certPem, key: certificate.privateKey, signatureHash: certificate.signatureHash, srtpProfiles: SRTP_PROFILES, extendedMasterSecret: true };
  const server = new DtlsServer({ ...common, transport: serverEnd, certificateRequest: true });
  if (guarded) assert.equal(guardDtlsSocket(server), true);
  const client = new DtlsClient({ ...common, transport: clientEnd });
  void client.connect().catch(() => undefined);
  return {
    client,
    server,
    staleDelivered: () => staleDelivered,
    deliverStale,
    close: () => {
      closed = true;
      // werift retransmits an unanswered flight for about 30 s from timers it does not cancel, and
      // a flight loop ends at its next wake-up once the handshake is past it: say it is.
      for (const socket of [client, server] as unknown as Array<{ dtls: { flight: number } }>) socket.dtls.flight = Number.MAX_SAFE_INTEGER;
    },
  };
}

/** Whether application data still goes both ways within `ms`. */
async function carriesData(session: Session, ms: number): Promise<boolean> {
  const atServer: string[] = [];
  const atClient: string[] = [];
  const a = session.server.onData.subscribe((data: Buffer) => atServer.push(data.toString()));
  const b = session.client.onData.subscribe((data: Buffer) => atClient.push(data.toString()));
  try {
    await session.client.send(Buffer.from('to the server')).catch(() => undefined);
    await session.server.send(Buffer.from('to the client')).catch(() => undefined);
    await waitFor(() => atServer.includes('to the server') && atClient.includes('to the client'), ms, 'data both ways');
    return true;
  } catch {
    return false;
  } finally {
    a.unSubscribe();
    b.unSubscribe();
  }
}

/** Runs `body` on a new session (see `dtlsSession`) and closes it whatever happens. */
async function withSession(moment: Moment, guarded: boolean, body: (session: Session) => Promise<void>): Promise<void> {
  const session = await dtlsSession(moment, guarded);
  try {
    await body(session);
  } finally {
    session.close();
  }
}

/** Both ends finished the handshake. */
function connected(session: Session): Promise<void> {
  return waitFor(() => session.server.connected && session.client.connected, 5000, 'the handshake');
}

describe('the ClientHello check', () => {
  test('reads the cookie behind the session id; a short or empty body has none', () => {
    const body = (sessionId: number, cookie: number): Buffer => Buffer.concat([Buffer.from([0xfe, 0xfd]), Buffer.alloc(32), Buffer.from([sessionId]), Buffer.alloc(sessionId), Buffer.from([cookie]), Buffer.alloc(cookie), Buffer.from([0, 2, 0xc0, 0x2b])]);
    assert.equal(clientHelloHasCookie(body(0, 0)), false);
    assert.equal(clientHelloHasCookie(body(0, 20)), true);
    assert.equal(clientHelloHasCookie(body(32, 0)), false);
    assert.equal(clientHelloHasCookie(body(32, 20)), true);
    assert.equal(clientHelloHasCookie(Buffer.alloc(20)), false);
    assert.equal(clientHelloHasCookie(undefined), false);
  });
});

describe("a stale first ClientHello at werift's DTLS server", { timeout: 60_000 }, () => {
  test('after its ServerHello: unguarded the handshake is lost; guarded it completes and carries data', async () => {
    await withSession('after-server-hello', false, async (unguarded) => {
      await waitFor(() => unguarded.staleDelivered(), 5000, 'the stale ClientHello delivered');
      // The scenario is real: werift's server starts over on it and the client's Finished no longer fits.
      assert.equal(await carriesData(unguarded, 3000), false, 'an unguarded server kept the session');
    });

    const before = staleDtlsHelloCounters.clientHellos;
    await withSession('after-server-hello', true, async (guarded) => {
      await connected(guarded);
      assert.ok(guarded.staleDelivered());
      assert.equal(await carriesData(guarded, 3000), true, 'application data both ways');
      assert.equal(staleDtlsHelloCounters.clientHellos - before, 1, 'the stale ClientHello was dropped');
    });
  });

  test('once connected: unguarded werift renegotiates and loses the session; guarded the session goes on', async () => {
    await withSession('once-connected', false, async (unguarded) => {
      await connected(unguarded);
      assert.equal(await carriesData(unguarded, 3000), true);
      unguarded.deliverStale();
      await sleep(100);
      assert.equal(await carriesData(unguarded, 2000), false, 'an unguarded server kept the session');
    });

    const before = staleDtlsHelloCounters.clientHellos;
    await withSession('once-connected', true, async (guarded) => {
      await connected(guarded);
      guarded.deliverStale();
      await sleep(100);
      assert.equal(await carriesData(guarded, 3000), true, 'application data both ways after the stale ClientHello');
      assert.equal(staleDtlsHelloCounters.clientHellos - before, 1);
    });
  });
});
