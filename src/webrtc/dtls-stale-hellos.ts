/**
 * A DTLS handshake that survives a slow viewer and a stale datagram.
 *
 * **As the client** (WHEP: the viewer makes the offer, so the server answers as the DTLS client),
 * werift sends the ClientHello, and sends it again after 500 ms when no answer has come. A viewer
 * that is slow to answer (a busy phone, a storm of viewers joining at once:
 * `npm run bench:janus -- --storm 50` lost 2 to 10 of 50 viewers in some runs) then answers *both*
 * ClientHellos with a HelloVerifyRequest, as RFC 6347 (4.2.1) has a server do. werift's client takes
 * the first one, sends the ClientHello with the cookie (its flight 3), and on the second one throws
 * ("flight 3 twice"): the handshake fails, and the viewer never sees a picture.
 *
 * **As the server** (the WebSocket signalling: the plugin offers, the browser connects), werift
 * answers every ClientHello without a cookie by starting over: a new random and a new key pair,
 * its flight back to 2. A first ClientHello that arrives late (reordered, or duplicated on the way)
 * after werift has sent its ServerHello and key exchange (flight 4) thus replaces the keys the
 * viewer is already using, and the handshake fails at the viewer's Finished. Once connected, any
 * ClientHello makes werift renegotiate: it throws away the session's ciphers, and the picture stops.
 * WebRTC never renegotiates DTLS (a new session is an ICE restart, with a new DTLS transport).
 *
 * RFC 6347 (4.2.4) has a DTLS endpoint ignore a repeated message of a flight it has moved past,
 * and its own retransmission timer covers a flight that was lost. So a HelloVerifyRequest once
 * werift's client is past flight 1, a ClientHello without a cookie once werift's server is past
 * flight 2, and any ClientHello once it is connected are dropped here before werift's handshake
 * code sees them (and counted); everything else reaches werift as before (a repeated ClientHello
 * *with* the cookie still gets werift's flight 4 again, which is right). werift creates its DTLS
 * socket inside `RTCDtlsTransport.start()` (synchronously, before the first handshake message can
 * arrive), so `start` is wrapped once per process, and each socket's handshake entry point is
 * wrapped as it is created. A werift whose internals do not look as expected is left alone.
 */
import { RTCDtlsTransport } from 'werift';

/** RFC 6347's HandshakeType values. */
const CLIENT_HELLO = 1;
const HELLO_VERIFY_REQUEST = 3;
/** werift's client flight number once it has answered a HelloVerifyRequest (ClientHello with cookie). */
const COOKIE_FLIGHT = 3;
/** werift's server flight number once it has sent its ServerHello and key exchange. */
const SERVER_HELLO_FLIGHT = 4;

interface AssembledHandshake {
  msg_type: number;
  /** The message's body (a ClientHello's: version, random, session id, cookie, ...). */
  fragment?: Buffer;
}

/** The part of werift's DtlsSocket this relies on. */
interface WeriftDtlsSocket {
  onHandleHandshakes: (assembled: AssembledHandshake[]) => Promise<void>;
  dtls: { flight: number };
  connected?: boolean;
}

export interface StaleDtlsHelloCounters {
  /** HelloVerifyRequests dropped because the client was already past them. */
  helloVerifyRequests: number;
  /** ClientHellos dropped because the server was already past them (or connected). */
  clientHellos: number;
  /** DTLS sockets that did not look like werift's (left alone). */
  unguarded: number;
}

export const staleDtlsHelloCounters: StaleDtlsHelloCounters = { helloVerifyRequests: 0, clientHellos: 0, unguarded: 0 };

/**
 * Whether a ClientHello carries a cookie (RFC 6347 4.2.1: version 2 bytes, random 32, then the
 * session id and the cookie, each behind a one-byte length). Unreadable counts as none.
 */
export function clientHelloHasCookie(body: Buffer | undefined): boolean {
  if (!body || body.length < 35) return false;
  const sessionIdLength = body[34]!;
  const cookieAt = 35 + sessionIdLength;
  return cookieAt < body.length && body[cookieAt]! > 0;
}

/** What the handshake is past: a message of an earlier flight, or a new handshake on a connected session. */
function isStale(socket: WeriftDtlsSocket, handshake: AssembledHandshake): 'helloVerifyRequests' | 'clientHellos' | undefined {
  if (handshake.msg_type === HELLO_VERIFY_REQUEST) return socket.dtls.flight >= COOKIE_FLIGHT ? 'helloVerifyRequests' : undefined;
  if (handshake.msg_type !== CLIENT_HELLO) return undefined;
  if (socket.connected === true) return 'clientHellos';
  return socket.dtls.flight >= SERVER_HELLO_FLIGHT && !clientHelloHasCookie(handshake.fragment) ? 'clientHellos' : undefined;
}

let state: { installed: boolean; reason: string } | undefined;

function isWeriftDtlsSocket(value: unknown): value is WeriftDtlsSocket {
  if (typeof value !== 'object' || value === null) return false;
  const socket = value as Partial<WeriftDtlsSocket>;
  return typeof socket.onHandleHandshakes === 'function' && typeof socket.dtls === 'object' && socket.dtls !== null && typeof socket.dtls.flight === 'number';
}

/** Puts the check in front of one DTLS socket's handshake handling. */
export function guardDtlsSocket(socket: unknown): boolean {
  if (!isWeriftDtlsSocket(socket)) {
    staleDtlsHelloCounters.unguarded++;
    return false;
  }
  const handle = socket.onHandleHandshakes;
  socket.onHandleHandshakes = (assembled: AssembledHandshake[]): Promise<void> => {
    let kept: AssembledHandshake[] | undefined;
    for (let i = 0; i < assembled.length; i++) {
      const stale = isStale(socket, assembled[i]!);
      if (stale) {
        staleDtlsHelloCounters[stale]++;
        kept ??= assembled.slice(0, i);
      } else {
        kept?.push(assembled[i]!);
      }
    }
    if (!kept) return handle.call(socket, assembled);
    return kept.length === 0 ? Promise.resolve() : handle.call(socket, kept);
  };
  return true;
}

/** Once per process: every werift DTLS socket created from now on is guarded. Says whether it is. */
export function ignoreStaleDtlsHellos(): { installed: boolean; reason: string } {
  if (state) return state;
  const prototype = RTCDtlsTransport.prototype as unknown as { start?: unknown };
  const start = prototype.start;
  if (typeof start !== 'function') {
    state = { installed: false, reason: "werift's RTCDtlsTransport has no start()" };
    return state;
  }
  prototype.start = function startGuarded(this: RTCDtlsTransport, ...args: unknown[]): unknown {
    const started: unknown = start.apply(this, args);
    // werift made its DTLS socket synchronously in start(); a start() that refused made none.
    const socket = (this as unknown as { dtls?: unknown }).dtls;
    if (socket !== undefined) guardDtlsSocket(socket);
    return started;
  };
  state = { installed: true, reason: '' };
  return state;
}
