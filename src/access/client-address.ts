/**
 * Who is on the other end of the connection, for rate limits and peer limits. X-Forwarded-For is
 * read only from configured reverse proxies (`web.trustedProxies`): from anyone else a header is
 * whatever the client wants it to be.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv4, isIPv6 } from 'node:net';
import { clientKey as sharedClientKey, isLoopback, normalizeAddress } from '../util/address.js';
import { parseAddressRanges } from '../util/address-ranges.js';

/** IPv4 as written; an IPv4-mapped IPv6 address as its IPv4. */
export function normaliseAddress(address: string | undefined): string {
  return address ? normalizeAddress(address) : 'unknown';
}

/** The key a client is counted under (`util/address.ts`); an unknown peer is one client. */
export function clientKey(address: string | undefined): string {
  return sharedClientKey(normaliseAddress(address));
}

export function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && isLoopback(address);
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
