/**
 * A DTLS handshake that survives a slow viewer.
 *
 * When a viewer makes the offer (WHEP), the server answers as the DTLS client: werift sends the
 * ClientHello, and sends it again after 500 ms when no answer has come. A viewer that is slow to
 * answer (a busy phone, a storm of viewers joining at once: `npm run bench:janus -- --storm 50`
 * lost 2 to 10 of 50 viewers in some runs) then answers *both* ClientHellos with a
 * HelloVerifyRequest, as RFC 6347 (4.2.1) has a server do. werift's client takes the first one, sends
 * the ClientHello with the cookie (its flight 3), and on the second one throws ("flight 3 twice"):
 * the handshake fails, and the viewer never sees a picture.
 *
 * RFC 6347 (4.2.4) has a DTLS endpoint ignore a repeated message of a flight it has moved past,
 * and its own retransmission timer covers a flight that was lost. So once werift's client is past
 * flight 1, a HelloVerifyRequest is dropped here before werift's handshake code sees it (and
 * counted); everything else reaches werift as before. werift creates its DTLS socket inside
 * `RTCDtlsTransport.start()` (synchronously, before the first handshake message can arrive), so
 * `start` is wrapped once per process, and each socket's handshake entry point is wrapped as it is
 * created. A werift whose internals do not look as expected is left alone.
 */
import { RTCDtlsTransport } from 'werift';

/** RFC 6347's HandshakeType hello_verify_request. */
const HELLO_VERIFY_REQUEST = 3;
/** werift's client flight number once it has answered a HelloVerifyRequest (ClientHello with cookie). */
const COOKIE_FLIGHT = 3;

interface AssembledHandshake {
  msg_type: number;
}

/** The part of werift's DtlsSocket this relies on. */
interface WeriftDtlsSocket {
  onHandleHandshakes: (assembled: AssembledHandshake[]) => Promise<void>;
  dtls: { flight: number };
}

export interface RepeatedHelloVerifyCounters {
  /** HelloVerifyRequests dropped because the handshake was already past them. */
  dropped: number;
  /** DTLS sockets that did not look like werift's (left alone). */
  unguarded: number;
}

export const repeatedHelloVerifyCounters: RepeatedHelloVerifyCounters = { dropped: 0, unguarded: 0 };

let state: { installed: boolean; reason: string } | undefined;

function isWeriftDtlsSocket(value: unknown): value is WeriftDtlsSocket {
  if (typeof value !== 'object' || value === null) return false;
  const socket = value as Partial<WeriftDtlsSocket>;
  return typeof socket.onHandleHandshakes === 'function' && typeof socket.dtls === 'object' && socket.dtls !== null && typeof socket.dtls.flight === 'number';
}

/** Puts the check in front of one DTLS socket's handshake handling. */
export function guardDtlsSocket(socket: unknown): boolean {
  if (!isWeriftDtlsSocket(socket)) {
    repeatedHelloVerifyCounters.unguarded++;
    return false;
  }
  const handle = socket.onHandleHandshakes;
  socket.onHandleHandshakes = (assembled: AssembledHandshake[]): Promise<void> => {
    if (socket.dtls.flight >= COOKIE_FLIGHT && assembled.some((h) => h.msg_type === HELLO_VERIFY_REQUEST)) {
      repeatedHelloVerifyCounters.dropped++;
      const rest = assembled.filter((h) => h.msg_type !== HELLO_VERIFY_REQUEST);
      return rest.length === 0 ? Promise.resolve() : handle.call(socket, rest);
    }
    return handle.call(socket, assembled);
  };
  return true;
}

/** Once per process: every werift DTLS socket created from now on is guarded. Says whether it is. */
export function tolerateRepeatedHelloVerifyRequests(): { installed: boolean; reason: string } {
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
