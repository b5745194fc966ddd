/**
 * Address helpers every network-facing module shares (the RTSP client, the re-stream, the web
 * server, rate limits), written once so "is this loopback?" has one answer everywhere: a loopback
 * check that disagrees between the web server and the re-stream would be an access-control hole.
 */
import { isIPv4, isIPv6 } from 'node:net';

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

/**
 * An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, as a dual-stack socket reports IPv4 peers) as
 * its IPv4, so IPv4 clients compare as IPv4; anything else as written.
 */
export function normalizeAddress(address: string): string;
export function normalizeAddress(address: string | undefined): string | undefined;
export function normalizeAddress(address: string | undefined): string | undefined {
  if (!address) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** True for `localhost`, 127.0.0.0/8, and `::1` in any spelling (also IPv4-mapped). */
export function isLoopback(address: string): boolean {
  const normal = normalizeAddress(address.trim()).toLowerCase();
  if (normal === 'localhost') return true;
  if (isIPv4(normal)) return normal.startsWith('127.');
  const groups = ipv6Groups(normal);
  return groups !== undefined && groups.length === 8 && groups.every((g, i) => (i < 7 ? g === 0 : g === 1));
}

/**
 * The key a client is counted under: its IPv4 address, or its IPv6 /64. One household or phone
 * gets a whole /64, so counting single IPv6 addresses would let one attacker look like billions.
 */
export function clientKey(address: string): string {
  const normal = normalizeAddress(address);
  if (isIPv4(normal)) return normal;
  const groups = ipv6Groups(normal);
  if (!groups || groups.length !== 8) return normal;
  if (groups.every((g, i) => (i < 7 ? g === 0 : g === 1))) return '::1';
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The 16 bytes of an IPv6 address (for certificates); `undefined` when it is not one. */
export function ipv6Bytes(address: string): Buffer | undefined {
  const groups = ipv6Groups(address);
  if (!groups || groups.length !== 8) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(group, i * 2));
  return out;
}

/** An IP address as its wire bytes: 4 for IPv4, 16 for IPv6 (a zone ignored); `undefined` otherwise. */
export function ipAddressBytes(address: string): Buffer | undefined {
  return isIPv4(address) ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
}

/** A host for a URL: an IPv6 address in brackets, an IPv4-mapped one as its IPv4, names as written. */
export function formatHost(host: string): string {
  const plain = normalizeAddress(host);
  return plain.includes(':') && !plain.startsWith('[') ? `[${plain}]` : plain;
}

/**
 * Index of the "@" that ends the user info of a URL without its scheme, or -1: the last "@"
 * before the first "/". So a raw "@", ":", "#" or "?" in a password works; a raw "/" does not (it
 * must be written %2F).
 */
export function lastUserinfoAt(rest: string): number {
  const pathStart = rest.indexOf('/');
  const authority = pathStart < 0 ? rest : rest.slice(0, pathStart);
  return authority.lastIndexOf('@');
}

/**
 * Removes user info from a URL (a camera's Content-Base sometimes echoes it; a client may send it
 * in a request URI), up to the last "@" of the authority so a raw "@" in a password goes too.
 */
export function stripCredentials(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*@)/i.exec(url);
  if (!m) return url;
  const authority = url.slice(m[1]!.length);
  const at = lastUserinfoAt(authority);
  return at < 0 ? url : m[1]! + authority.slice(at + 1);
}

/**
 * A parsed URL without its user info (a copy): the `URL` form of `stripCredentials`, for an address
 * that parses (an ONVIF stream URI some cameras return with their own log-in in it).
 */
export function withoutCredentials(url: URL): URL {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy;
}

/**
 * The URL with this log-in as its user info, each part percent-encoded (so "@", ":" and "/" in a
 * password survive); the URL as it is without a user name. For a URL handed to a program that
 * takes its log-in only that way (an NVR reading the re-stream) or masked for the log.
 */
export function withCredentials(url: URL, username: string | undefined, password: string | undefined): string {
  if (!username) return url.href;
  const copy = new URL(url.href);
  copy.username = encodeURIComponent(username);
  copy.password = encodeURIComponent(password ?? '');
  return copy.href;
}
