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
 * credentials, and must be answered there. The settled path follows its media there once the
 * viewer has answered a consent check of ours at that address (`checkConsent`, `readConsent`).
 */
import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { Socket as UdpSocket } from 'node:dgram';
import { weriftUdpTransport, type WeriftUdpTransport } from './packet-transport.js';
import { hasValidIntegrity, readBindingRequest, readBindingSuccess, writeBindingRequest, writeBindingSuccess } from './stun-binding.js';

/** The parts of werift's ICE `Connection` read here (structural: no private types leak). */
export interface IceAgentLike {
  nominated?: { protocol: unknown; remoteAddr: Readonly<[string, number]> } | undefined;
  localUsername: string;
  localPassword: string;
  remoteUsername: string;
  /** The viewer's ICE password: it signs the answers to our own consent checks. */
  remotePassword?: string;
  iceControlling: boolean;
  tieBreaker?: bigint;
}

/** A consent check of ours on its way: where it went, and when. */
interface PendingCheck {
  address: Readonly<[string, number]>;
  sentAt: number;
}

/** How long an answer to one of our consent checks is waited for. */
const CHECK_TIMEOUT_MS = 2_000;
/** At most this many of our checks wait at once, and one address is checked at most this often. */
const MAX_PENDING_CHECKS = 4;
const CHECK_INTERVAL_MS = 250;
/** RFC 8445 5.1.2.1: a peer-reflexive candidate's priority, type preference 110, one component. */
const PEER_REFLEXIVE_PRIORITY = (110 << 24) + (65535 << 8) + 255;

type DataHandler = NonNullable<WeriftUdpTransport['onData']>;

/**
 * Where an answer is sent: the settled UDP socket, or a settled TURN pair's channel (a dgram
 * socket's `send` has this shape).
 */
export interface DatagramSender {
  send(message: Buffer, port: number, address: string, callback: () => void): void;
}

export class ConsentResponder {
  /** Requests answered here (the rest went to werift). */
  answered = 0;
  private detach: (() => void) | undefined;
  private key: { password: string; key: KeyObject } | undefined;
  /** Set by freeze(): the only pair there is from then on. */
  private frozenProtocol: object | undefined;
  /** Our consent checks waiting for an answer, by transaction id (hex). */
  private readonly pending = new Map<string, PendingCheck>();
  private remoteKey: KeyObject | undefined;

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
    const { nominated, localUsername, localPassword, remoteUsername, remotePassword, iceControlling, tieBreaker } = this.agent;
    if (!nominated) return false;
    const frozenProtocol = {};
    this.frozenProtocol = frozenProtocol;
    this.agent = {
      nominated: { protocol: frozenProtocol, remoteAddr: [nominated.remoteAddr[0], nominated.remoteAddr[1]] },
      localUsername,
      localPassword,
      remoteUsername,
      ...(typeof remotePassword === 'string' && remotePassword.length > 0 ? { remotePassword } : {}),
      iceControlling,
      ...(typeof tieBreaker === 'bigint' ? { tieBreaker } : {}),
    };
    return true;
  }

  /**
   * After freeze(): our own consent check (RFC 7675) of `address`, a Binding request signed with the
   * viewer's ICE password. Only the viewer, at that address, can answer it (`readConsent`): the
   * settled path moves a viewer's media to a new address only then, so that nobody can point a
   * camera's stream at an address that never asked for it. Rate-limited per address and in all;
   * false when no check was sent.
   */
  checkConsent(address: Readonly<[string, number]>, socket: UdpSocket, now = performance.now()): boolean {
    const agent = this.agent;
    if (this.frozenProtocol === undefined || !agent.remotePassword) return false;
    for (const [id, check] of this.pending) {
      if (now - check.sentAt > CHECK_TIMEOUT_MS) this.pending.delete(id);
      else if (check.address[0] === address[0] && check.address[1] === address[1] && now - check.sentAt < CHECK_INTERVAL_MS) return false;
    }
    if (this.pending.size >= MAX_PENDING_CHECKS) return false;
    this.remoteKey ??= createSecretKey(Buffer.from(agent.remotePassword, 'utf8'));
    const transactionId = randomBytes(12);
    const tieBreaker = agent.tieBreaker ?? randomBytes(8).readBigUInt64BE(0);
    const request = writeBindingRequest(transactionId, `${agent.remoteUsername}:${agent.localUsername}`, this.remoteKey, agent.iceControlling, tieBreaker, PEER_REFLEXIVE_PRIORITY);
    try {
      socket.send(request, address[1], address[0], () => undefined);
    } catch {
      return false;
    }
    this.pending.set(transactionId.toString('hex'), { address: [address[0], address[1]], sentAt: now });
    return true;
  }

  /**
   * A datagram that may answer one of our consent checks: true when it is an authentic answer to a
   * check sent to the address it came from (that check is then done).
   */
  readConsent(data: Buffer, from: Readonly<[string, number]>, now = performance.now()): boolean {
    if (!this.remoteKey || this.pending.size === 0) return false;
    let transactionId: Buffer | undefined;
    try {
      transactionId = readBindingSuccess(data, this.remoteKey);
    } catch {
      return false;
    }
    if (!transactionId) return false;
    const id = transactionId.toString('hex');
    const check = this.pending.get(id);
    if (!check || check.address[0] !== from[0] || check.address[1] !== from[1] || now - check.sentAt > CHECK_TIMEOUT_MS) return false;
    this.pending.delete(id);
    return true;
  }

  /** A Binding request on the settled socket (after freeze()). True: answered. */
  answerSettled(data: Buffer, addr: [string, number], socket: DatagramSender): boolean {
    return this.frozenProtocol !== undefined && this.tryAnswer(data, addr, this.frozenProtocol, socket);
  }

  /** Anything unexpected while answering leaves the request to werift, as if it were not ours. */
  private tryAnswer(data: Buffer, addr: [string, number], protocol: unknown, socket: DatagramSender): boolean {
    try {
      return this.answer(data, addr, protocol, socket);
    } catch {
      return false;
    }
  }

  private answer(data: Buffer, addr: [string, number], protocol: unknown, socket: DatagramSender): boolean {
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
