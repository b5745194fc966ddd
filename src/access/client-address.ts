/**
 * Who is on the other end of the connection, for rate limits and peer limits. X-Forwarded-For is
 * read only from configured reverse proxies (`web.trustedProxies`): from anyone else a header is
 * whatever the client wants it to be.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { parseAddressRanges } from '../util/address-ranges.js';

/** Expands an IPv6 address to eight 16-bit groups; `undefined` when it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return undefined;
  let text = bare;
  const tail: number[] = [];
  // An embedded IPv4 (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const bytes = v4[1]!.split('.').map(Number);
    tail.push((bytes[0]! << 8) | bytes[1]!, (bytes[2]! << 8) | bytes[3]!);
    text = text.slice(0, -v4[1]!.length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const left = parse(head);
  const right = [...(rest === undefined ? [] : parse(rest)), ...tail];
  if (rest === undefined) return [...left, ...right];
  const missing = 8 - left.length - right.length;
  return [...left, ...new Array<number>(Math.max(0, missing)).fill(0), ...right];
}

/** IPv4 as written; an IPv4-mapped IPv6 address as its IPv4. */
export function normaliseAddress(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  return address;
}

/**
 * The key a client is counted under: its IPv4 address, or its IPv6 /64. One household or phone
 * gets a whole /64, so counting single IPv6 addresses would let one attacker look like billions.
 */
export function clientKey(address: string | undefined): string {
  const normal = normaliseAddress(address);
  if (isIPv4(normal)) return normal;
  const groups = ipv6Groups(normal);
  if (!groups || groups.length !== 8) return normal;
  if (groups.every((g, i) => (i < 7 ? g === 0 : g === 1))) return '::1';
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

export function isLoopbackAddress(address: string | undefined): boolean {
  const normal = normaliseAddress(address);
  if (isIPv4(normal)) return normal.startsWith('127.');
  const groups = ipv6Groups(normal);
  return groups !== undefined && groups.every((g, i) => (i < 7 ? g === 0 : g === 1));
}

/** The 16 bytes of an IPv6 address (for certificates); `undefined` when it is not one. */
export function ipv6Bytes(address: string): Buffer | undefined {
  const groups = ipv6Groups(address);
  if (!groups || groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(group, i * 2));
  return out;
}

/**
 * True when a Host header names this machine's loopback (localhost, 127.x, [::1]). Anonymous
 * loopback access also requires this, so a web page whose domain is re-bound to 127.0.0.1 (DNS
 * rebinding) does not get in just because the browser runs on the same machine.
 */
export function isLoopbackHost(hostHeader: string | undefined): boolean {
  if (!hostHeader) return false;
  const host = hostHeader.trim().toLowerCase();
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || isLoopbackAddress(name);
}

/** Who a request comes from: the TCP peer, or the client a trusted reverse proxy says it serves. */
export type ClientAddressOf = (req: IncomingMessage) => string;

/** The TCP peer, ignoring every forwarding header (the default: no proxy is trusted). */
export const socketAddressOf: ClientAddressOf = (req) => normaliseAddress(req.socket.remoteAddress);

/**
 * The client address behind trusted reverse proxies. Only when the TCP peer is a configured proxy
 * is X-Forwarded-For read, from the right: each proxy appends the address it saw, so the first
 * untrusted hop from the right is the client, and anything to its left is whatever that client
 * chose to send. A malformed hop stops the walk at the last trusted proxy, so a forged header can
 * never make one attacker count as many addresses (rate limits, peer limits).
 */
export function createClientAddressOf(trustedProxies: ReadonlyArray<string>): ClientAddressOf {
  if (trustedProxies.length === 0) return socketAddressOf;
  const proxies = parseAddressRanges(trustedProxies);
  const trusted = (address: string): boolean => proxies.has(address);
  return (req) => {
    let client = normaliseAddress(req.socket.remoteAddress);
    if (!trusted(client)) return client;
    const header = req.headers['x-forwarded-for'];
    const hops = (Array.isArray(header) ? header.join(',') : header ?? '').split(',').map((hop) => hop.trim()).filter((hop) => hop !== '');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normaliseAddress(hops[i]!.replace(/^\[(.*)\]$/, '$1'));
      if (!isIPv4(hop) && !isIPv6(hop)) return client;
      client = hop;
      if (!trusted(hop)) return hop;
    }
    return client;
  };
}
