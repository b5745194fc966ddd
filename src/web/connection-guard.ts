/**
 * TCP connection admission for the web server. Node's `maxConnections` is one global cap: about a
 * thousand idle connections from one LAN machine filled it, and every real request was reset until
 * the headers timeout freed them. So each client address (IPv4, or IPv6 /64) may hold only
 * `maxConnectionsPerAddress` connections, and the last `reservedForKnown` slots under the global cap
 * are kept for addresses that recently made an authorised request (a signed-in family member, a
 * share link in use): a flood from many unknown addresses still leaves them room. Trusted reverse
 * proxies carry many visitors on one address and are not capped per address.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../util/logger.js';
import { refusalLog } from '../util/summary-log.js';
import { clientKey, normaliseAddress } from '../access/client-address.js';

export interface ConnectionLimits {
  maxConnections: number;
  maxConnectionsPerAddress: number;
  reservedForKnown: number;
}

/** An address counts as signed in this long after its last authorised request. */
const KNOWN_FOR_MS = 24 * 60 * 60_000;
/** Bounded, oldest first out, so a flood of addresses cannot grow it. */
const MAX_KNOWN = 4096;

export class ConnectionGuard {
  private readonly perAddress = new Map<string, number>();
  private readonly known = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly limits: ConnectionLimits,
    private readonly isExempt: (address: string) => boolean,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  get open(): number {
    return this.total;
  }

  /** Counts the socket until it closes, or destroys it when it is over a limit. */
  admit(socket: Socket): boolean {
    const address = normaliseAddress(socket.remoteAddress);
    const key = clientKey(address);
    const refuse = (cause: string): false => {
      refusalLog(this.log).note('warn', `Web connections refused: ${cause}`, `Web connection from ${address} refused: ${cause}`);
      socket.on('error', () => undefined);
      socket.destroy();
      return false;
    };
    if (this.total >= this.limits.maxConnections) return refuse('the server is at its connection limit');
    if (!this.isExempt(address) && (this.perAddress.get(key) ?? 0) >= this.limits.maxConnectionsPerAddress) {
      return refuse(`more than ${this.limits.maxConnectionsPerAddress} open from one address`);
    }
    if (!this.isKnown(key) && this.total >= this.limits.maxConnections - this.limits.reservedForKnown) {
      return refuse('the remaining connections are kept for signed-in viewers');
    }
    this.total++;
    this.perAddress.set(key, (this.perAddress.get(key) ?? 0) + 1);
    socket.once('close', () => {
      this.total--;
      const left = (this.perAddress.get(key) ?? 1) - 1;
      if (left <= 0) this.perAddress.delete(key);
      else this.perAddress.set(key, left);
    });
    return true;
  }

  /** Records that this TCP peer made an authorised request. */
  markKnown(remoteAddress: string | undefined): void {
    const key = clientKey(normaliseAddress(remoteAddress));
    this.known.delete(key);
    this.known.set(key, this.now());
    if (this.known.size > MAX_KNOWN) this.known.delete(this.known.keys().next().value!);
  }

  private isKnown(key: string): boolean {
    const seen = this.known.get(key);
    if (seen === undefined) return false;
    if (this.now() - seen > KNOWN_FOR_MS) {
      this.known.delete(key);
      return false;
    }
    return true;
  }
}
