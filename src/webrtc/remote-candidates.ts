/**
 * Which remote ICE candidates werift may check. Every candidate a viewer names makes the server send
 * STUN binding requests to that address and port, so without a filter a visitor chooses where the
 * server sends packets: to a service on the server's own loopback, to link-local or multicast
 * addresses, or to the server's other interfaces. Refused, unless the viewer itself connects from
 * that very address, or over loopback for loopback and this machine's addresses (the demo on
 * 127.0.0.1, a browser on the Homebridge computer):
 * loopback, link-local, multicast, unspecified and broadcast addresses, host names other than
 * mDNS `.local` names, and the server's own interface addresses. Ordinary unicast addresses pass
 * (LAN viewers and NAT'd peers need them). At most `MAX_REMOTE_CANDIDATES` distinct candidates per
 * viewer are passed on, so one viewer cannot make the server probe a list of addresses.
 *
 * What remains: a reverse proxy on this machine that is not listed as trusted makes every viewer
 * look local, so set `web.trustedProxies`; a `.local` name is resolved by werift over mDNS, and whoever answers on the LAN
 * chooses the address; ordinary unicast LAN addresses stay reachable for checks (up to the cap).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';

/** Browsers gather one to four useful candidates (host/mDNS, srflx, relay, per family); 8 leaves room. */
export const MAX_REMOTE_CANDIDATES = 8;

export type CandidateVerdict = { ok: true; key: string } | { ok: false; reason: string };

/** `::ffff:1.2.3.4` → `1.2.3.4`, lower case, no brackets or zone. */
function normalise(address: string): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return mapped ? mapped[1]! : a;
}

function ipv4Octets(address: string): number[] {
  return address.split('.').map(Number);
}

/** The first 16 bits of an IPv6 address (enough for the ranges below), or undefined. */
function ipv6Head(address: string): number | undefined {
  const first = address.startsWith('::') ? '0' : address.split(':')[0]!;
  const value = Number.parseInt(first, 16);
  return Number.isNaN(value) ? undefined : value;
}

/** Why an address is special (not ordinary unicast), or undefined. */
export function specialAddressKind(address: string): string | undefined {
  const a = normalise(address);
  if (isIPv4(a)) {
    const [b0 = 0, b1 = 0] = ipv4Octets(a);
    if (b0 === 127) return 'loopback';
    if (b0 === 0) return 'unspecified';
    if (b0 === 169 && b1 === 254) return 'link-local';
    if (b0 >= 224 && b0 <= 239) return 'multicast';
    if (b0 >= 240) return 'reserved or broadcast';
    return undefined;
  }
  if (isIPv6(a)) {
    if (a === '::1') return 'loopback';
    if (a === '::') return 'unspecified';
    const head = ipv6Head(a);
    if (head === undefined) return 'malformed';
    if ((head & 0xffc0) === 0xfe80) return 'link-local';
    if ((head & 0xff00) === 0xff00) return 'multicast';
    return undefined;
  }
  return 'not an IP address';
}

/**
 * How long one reading of the interfaces serves. Interfaces come and go, so they are read again
 * after this; but a burst of viewers joining together reads them once, not once a viewer (listing
 * them is a syscall round per interface: about 0.2 ms a join in a storm of 50).
 */
export const OWN_ADDRESSES_MAX_AGE_MS = 1000;
let ownAddressesRead: { atMs: number; addresses: ReadonlySet<string> } | undefined;

/** The server's own interface addresses, as listed at most `OWN_ADDRESSES_MAX_AGE_MS` ago. */
export function ownAddresses(nowMs: number = performance.now()): ReadonlySet<string> {
  if (ownAddressesRead && nowMs - ownAddressesRead.atMs < OWN_ADDRESSES_MAX_AGE_MS && nowMs >= ownAddressesRead.atMs) {
    return ownAddressesRead.addresses;
  }
  const own = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const info of list ?? []) own.add(normalise(info.address));
  ownAddressesRead = { atMs: nowMs, addresses: own };
  return own;
}

/** Parses `candidate:... <transport> <priority> <address> <port> typ <type>` far enough to judge it. */
function parts(candidate: string): { transport: string; address: string; port: string } | undefined {
  const fields = candidate.trim().replace(/^a=/, '').replace(/^candidate:/, '').split(/\s+/);
  if (fields.length < 8 || fields[6] !== 'typ') return undefined;
  return { transport: fields[2]!.toLowerCase(), address: fields[4]!, port: fields[5]! };
}

/**
 * Judges one candidate line for a viewer connecting from `viewerAddress` (the address its HTTP or
 * WebSocket connection came from; undefined when unknown, then no special address passes).
 */
export function judgeCandidate(candidate: string, viewerAddress: string | undefined, own: ReadonlySet<string> = ownAddresses()): CandidateVerdict {
  const p = parts(candidate);
  if (!p) return { ok: false, reason: 'malformed' };
  const address = normalise(p.address);
  const key = `${p.transport} ${address} ${p.port}`;
  if (address.endsWith('.local') && /^[a-z0-9-]+(\.[a-z0-9-]+)*\.local$/.test(address)) return { ok: true, key };
  const viewer = viewerAddress !== undefined ? normalise(viewerAddress) : undefined;
  if (viewer !== undefined && address === viewer) return { ok: true, key };
  const kind = specialAddressKind(address);
  // A viewer connecting over loopback runs on this machine: this machine's addresses are its own
  // too (Firefox and aiortc gather no loopback candidates and offer the LAN address instead).
  if (viewer !== undefined && specialAddressKind(viewer) === 'loopback' && (kind === 'loopback' || own.has(address))) return { ok: true, key };
  if (kind) return { ok: false, reason: kind };
  if (own.has(address)) return { ok: false, reason: "the server's own address" };
  return { ok: true, key };
}

/** Per-viewer bookkeeping: distinct candidates accepted so far, against the cap. */
export class RemoteCandidateFilter {
  private readonly accepted = new Set<string>();
  private readonly own = ownAddresses();
  refused = 0;

  constructor(private readonly viewerAddress: string | undefined, private readonly max = MAX_REMOTE_CANDIDATES) {}

  /** Whether werift may see this candidate. */
  admit(candidate: string): CandidateVerdict {
    const verdict = judgeCandidate(candidate, this.viewerAddress, this.own);
    if (!verdict.ok) {
      this.refused++;
      return verdict;
    }
    if (!this.accepted.has(verdict.key) && this.accepted.size >= this.max) {
      this.refused++;
      return { ok: false, reason: `more than ${this.max} candidates` };
    }
    this.accepted.add(verdict.key);
    return verdict;
  }

  /** The SDP with every refused `a=candidate` line removed. */
  filterSdp(sdp: string): string {
    const lines = sdp.split(/\r?\n/);
    const kept = lines.filter((line) => !line.startsWith('a=candidate:') || this.admit(line.slice(2)).ok);
    return kept.join('\r\n');
  }
}
