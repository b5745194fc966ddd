/**
 * Answers a connected viewer's STUN Binding requests on the selected UDP pair in project code
 * (stun-binding.ts), before werift's STUN layer parses them.
 *
 * The requests are the browser's keepalives and RFC 7675 consent checks: every few seconds, for as
 * long as the viewer watches, and werift built several objects and three serialisations for each
 * answer. Only a request that changes nothing is answered here: from the selected pair's remote
 * address, with the current ICE username and our password's MESSAGE-INTEGRITY, without
 * USE-CANDIDATE and without a role conflict. Everything else (nomination, a new path, an ICE
 * restart's new username, TCP and TURN pairs) still goes to werift, as does our own consent
 * checking of the viewer, which werift keeps doing.
 *
 * Once werift is let go (viewer-settle.ts) the responder is frozen: it keeps a copy of the
 * credentials and answers on the settled socket alone, nomination included, from whatever address
 * the request comes: a viewer whose NAT gave it a new address still checks consent with the same
 * credentials, and must be answered there (the settled path follows its media once its SRTCP
 * proves it is the same viewer).
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import type { Socket as UdpSocket } from 'node:dgram';
import { weriftUdpTransport, type WeriftUdpTransport } from './packet-transport.js';
import { hasValidIntegrity, readBindingRequest, writeBindingSuccess } from './stun-binding.js';

/** The parts of werift's ICE `Connection` read here (structural: no private types leak). */
export interface IceAgentLike {
  nominated?: { protocol: unknown; remoteAddr: Readonly<[string, number]> } | undefined;
  localUsername: string;
  localPassword: string;
  remoteUsername: string;
  iceControlling: boolean;
}

type DataHandler = NonNullable<WeriftUdpTransport['onData']>;

export class ConsentResponder {
  /** Requests answered here (the rest went to werift). */
  answered = 0;
  private detach: (() => void) | undefined;
  private key: { password: string; key: KeyObject } | undefined;
  /** Set by freeze(): the only pair there is from then on. */
  private frozenProtocol: object | undefined;

  constructor(private agent: IceAgentLike) {
    const pair = agent.nominated;
    const transport = pair ? weriftUdpTransport(pair.protocol) : undefined;
    const handOn = transport?.onData;
    if (!pair || !transport || typeof handOn !== 'function') return;
    const protocol = pair.protocol;
    const readFirst: DataHandler = (data, addr) => {
      // Byte 0 and 1 of a Binding request are 0x00 0x01; media and DTLS never start that way.
      if (data[0] === 0 && data[1] === 1 && this.tryAnswer(data, addr, protocol, transport.socket)) return;
      handOn(data, addr);
    };
    transport.onData = readFirst;
    this.detach = () => {
      if (transport.onData === readFirst) transport.onData = handOn;
    };
  }

  /** Gives werift its STUN path back (on close). */
  close(): void {
    this.detach?.();
    this.detach = undefined;
  }

  /**
   * werift is being let go: stops reading werift's path, and keeps a copy of the credentials (none
   * of werift's objects) for `answerSettled`. False when there is no UDP pair to freeze.
   */
  freeze(): boolean {
    this.close();
    const { nominated, localUsername, localPassword, remoteUsername, iceControlling } = this.agent;
    if (!nominated) return false;
    const frozenProtocol = {};
    this.frozenProtocol = frozenProtocol;
    this.agent = { nominated: { protocol: frozenProtocol, remoteAddr: [nominated.remoteAddr[0], nominated.remoteAddr[1]] }, localUsername, localPassword, remoteUsername, iceControlling };
    return true;
  }

  /** A Binding request on the settled socket (after freeze()). True: answered. */
  answerSettled(data: Buffer, addr: [string, number], socket: UdpSocket): boolean {
    return this.frozenProtocol !== undefined && this.tryAnswer(data, addr, this.frozenProtocol, socket);
  }

  /** Anything unexpected while answering leaves the request to werift, as if it were not ours. */
  private tryAnswer(data: Buffer, addr: [string, number], protocol: unknown, socket: UdpSocket): boolean {
    try {
      return this.answer(data, addr, protocol, socket);
    } catch {
      return false;
    }
  }

  private answer(data: Buffer, addr: [string, number], protocol: unknown, socket: UdpSocket): boolean {
    const agent = this.agent;
    const pair = agent.nominated;
    if (!pair || pair.protocol !== protocol) return false;
    // While werift runs the pair, another address is a new path, which is werift's to check.
    if (this.frozenProtocol === undefined && (pair.remoteAddr[0] !== addr[0] || pair.remoteAddr[1] !== addr[1])) return false;
    const request = readBindingRequest(data);
    // Nomination is werift's while it runs the pair; once frozen there is only the settled socket to name.
    if (!request || (request.useCandidate && this.frozenProtocol === undefined)) return false;
    // RFC 8445 7.3.1.1: a role conflict is werift's to resolve.
    if (request.senderRole === (agent.iceControlling ? 'controlling' : 'controlled')) return false;
    // An ICE restart changes the username: werift knows the new one and the old one's password.
    if (request.username.toString('utf8') !== `${agent.localUsername}:${agent.remoteUsername}`) return false;
    const key = this.passwordKey(agent.localPassword);
    if (!hasValidIntegrity(data, request, key)) return false;
    const answer = writeBindingSuccess(request.transactionId, addr[0], addr[1], key);
    try {
      socket.send(answer, addr[1], addr[0], () => undefined);
    } catch {
      // The socket is closing under us: werift notices that on its own; nothing to answer.
    }
    this.answered++;
    return true;
  }

  private passwordKey(password: string): KeyObject {
    if (this.key?.password !== password) this.key = { password, key: createSecretKey(Buffer.from(password, 'utf8')) };
    return this.key.key;
  }
}
