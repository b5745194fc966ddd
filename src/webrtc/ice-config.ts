/**
 * ICE settings for viewer peers, and how they map onto werift's PeerConfig.
 *
 * Defaults suit a home LAN: no STUN (werift would otherwise ask Google's STUN server, which a LAN
 * viewer never needs and an offline box cannot reach), IPv4 and IPv6 host candidates, UDP only.
 * For viewers outside the LAN users forward a UDP port range and announce their public address;
 * werift can only *bind* extra host addresses, so an announced (NAT) address is added by rewriting
 * candidates instead (`announceCandidates`), the same idea as Janus' nat_1_1_mapping.
 */
import { guardDefaultStunServer } from './werift-stun.js';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { RTCPeerConnectionConfig } from 'werift';

export interface IceServerSetting {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface IceSettings {
  /** STUN and TURN servers (`stun:`, `turn:`, `turns:` URLs). Empty by default: a LAN needs none. */
  iceServers?: IceServerSetting[];
  /** Host candidates bind in this UDP port range [min, max] (inclusive, min < max); forward it on the router. */
  portRange?: [number, number];
  /**
   * Public addresses to announce (port forwarding / 1:1 NAT): IPv4 literals or host names (e.g. a
   * dynamic-DNS name, resolved when a viewer connects). Every IPv4 host candidate is also
   * advertised with each of these addresses and the same port.
   */
  announcedAddresses?: string[];
  /** Extra local addresses to gather on that werift skips by default (loopback, VPN/tun interfaces). */
  additionalHostAddresses?: string[];
  /** Bind only on these local addresses. */
  interfaceAddresses?: { udp4?: string; udp6?: string };
  /**
   * Offer only host candidates on these addresses. werift binds its sockets to `interfaceAddresses`
   * but, when none of them is a "real" interface (loopback), still lists every LAN address as a
   * host candidate; a server on loopback (the demo) must not advertise them.
   */
  onlyHostAddresses?: string[];
  /** Also gather ICE-TCP (passive) host candidates, for networks that block UDP. */
  useTcp?: boolean;
  /** Gather IPv6 host candidates (default true). */
  useIpv6?: boolean;
  /** Use only relay (TURN) candidates. */
  relayOnly?: boolean;
}

/** A LAN-only default. */
export const DEFAULT_ICE_SETTINGS: Readonly<IceSettings> = Object.freeze({ iceServers: [] });

/** What tests and benches use: loopback candidates, IPv4 only, no STUN. */
export const LOOPBACK_ICE_SETTINGS: Readonly<IceSettings> = Object.freeze({
  iceServers: [],
  additionalHostAddresses: ['127.0.0.1'],
  interfaceAddresses: { udp4: '127.0.0.1' },
  useIpv6: false,
});

const ICE_URL = /^(stun|stuns|turn|turns):[^\s]+$/i;
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

function isPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;
}

/**
 * Checks settings that come from the user's config. Returns human-readable problems (empty when
 * fine); credentials are never echoed.
 */
export function validateIceSettings(settings: IceSettings): string[] {
  const problems: string[] = [];
  for (const [i, server] of (settings.iceServers ?? []).entries()) {
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    if (urls.length === 0 || !urls.every((url) => isString(url) && ICE_URL.test(url))) {
      problems.push(`iceServers[${i}]: urls must be stun:, stuns:, turn: or turns: URLs`);
    }
    const isTurn = urls.some((url) => isString(url) && /^turns?:/i.test(url));
    if (isTurn && (!isString(server.username) || !isString(server.credential))) {
      problems.push(`iceServers[${i}]: a TURN server needs a username and a credential`);
    }
  }
  if (settings.portRange !== undefined) {
    const [min, max] = settings.portRange;
    if (!isPort(min) || !isPort(max) || min >= max) {
      problems.push('portRange must be [min, max] with 1 <= min < max <= 65535');
    }
  }
  for (const address of settings.announcedAddresses ?? []) {
    if (isIP(address) !== 4 && !HOST_NAME.test(address)) problems.push(`announcedAddresses: ${address} is neither an IPv4 address nor a host name`);
  }
  for (const address of settings.additionalHostAddresses ?? []) {
    if (isIP(address) === 0) problems.push(`additionalHostAddresses: ${address} is not an IP address`);
  }
  if (settings.relayOnly && !(settings.iceServers ?? []).some((s) => [s.urls].flat().some((u) => /^turns?:/i.test(u)))) {
    problems.push('relayOnly needs at least one TURN server');
  }
  return problems;
}

/**
 * werift asks the STUN servers inside `setLocalDescription`, so every viewer's offer (WebSocket) or
 * answer (WHEP) waits for them, and werift's own limit is 5 s per peer when a server does not
 * answer: longer than the WHEP answer's whole gathering budget (3 s), and paid again by each viewer
 * of a burst. A STUN server that answers at all does so well within this.
 */
export const STUN_GATHER_TIMEOUT_S = 2;

/**
 * werift PeerConfig fields for these settings. Every werift peer is configured here, so this is
 * also where werift's own fallback to Google's STUN server is turned off (werift-stun.ts).
 */
export function icePeerConfig(settings: IceSettings): RTCPeerConnectionConfig {
  guardDefaultStunServer();
  const config: RTCPeerConnectionConfig = {
    iceServers: (settings.iceServers ?? []).map((server) => ({
      urls: server.urls,
      ...(server.username !== undefined ? { username: server.username } : {}),
      ...(server.credential !== undefined ? { credential: server.credential } : {}),
    })),
    iceUseIpv4: true,
    iceUseIpv6: settings.useIpv6 ?? true,
    iceUseTcp: settings.useTcp ?? false,
    iceTransportPolicy: settings.relayOnly ? 'relay' : 'all',
    iceStunGatherTimeout: STUN_GATHER_TIMEOUT_S,
  };
  if (settings.portRange) config.icePortRange = [settings.portRange[0], settings.portRange[1]];
  if (settings.additionalHostAddresses?.length) config.iceAdditionalHostAddresses = [...settings.additionalHostAddresses];
  if (settings.interfaceAddresses) config.iceInterfaceAddresses = { ...settings.interfaceAddresses };
  return config;
}

/**
 * For an `a=candidate`/`candidate:` string of a host IPv4 candidate, the same candidate announced at
 * each public address (same port, foundation suffixed so it stays unique, slightly lower priority so
 * a LAN viewer still prefers the real address). Other candidates give [].
 */
export function announceCandidates(candidate: string, announced: ReadonlyArray<string>): string[] {
  if (announced.length === 0) return [];
  const prefix = candidate.startsWith('a=') ? 'a=' : '';
  const body = prefix ? candidate.slice(2) : candidate;
  const parts = body.split(' ');
  // candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
  if (parts.length < 8 || parts[6] !== 'typ' || parts[7] !== 'host') return [];
  const address = parts[4] ?? '';
  if (isIP(address) !== 4 || address.startsWith('127.')) return [];
  const priority = Number(parts[3]);
  return announced
    .filter((publicAddress) => publicAddress !== address)
    .map((publicAddress, i) => {
      const copy = [...parts];
      copy[0] = `${parts[0]}n${i}`;
      copy[3] = String(Number.isFinite(priority) ? Math.max(0, priority - 1 - i) : 1);
      copy[4] = publicAddress;
      return prefix + copy.join(' ');
    });
}

/** Whether a local candidate may be sent, under `onlyHostAddresses`. */
export function localCandidateAllowed(candidate: string, settings: Pick<IceSettings, 'onlyHostAddresses'>): boolean {
  const only = settings.onlyHostAddresses;
  if (!only) return true;
  const parts = (candidate.startsWith('a=') ? candidate.slice(2) : candidate).split(' ');
  if (parts.length < 8 || parts[6] !== 'typ' || parts[7] !== 'host') return true;
  return only.includes(parts[4] ?? '');
}

/** Removes the host candidates `onlyHostAddresses` does not allow from an SDP. */
export function restrictSdpCandidates(sdp: string, settings: Pick<IceSettings, 'onlyHostAddresses'>): string {
  if (!settings.onlyHostAddresses) return sdp;
  return sdp
    .split(/\r?\n/)
    .filter((line) => !line.startsWith('a=candidate:') || localCandidateAllowed(line, settings))
    .join('\r\n');
}

/** Adds announced copies of host candidates to every media section of an SDP. */
export function announceInSdp(sdp: string, announced: ReadonlyArray<string>): string {
  if (announced.length === 0) return sdp;
  const lines = sdp.split(/\r?\n/);
  const out: string[] = [];
  for (const line of lines) {
    out.push(line);
    if (line.startsWith('a=candidate:')) out.push(...announceCandidates(line, announced));
  }
  return out.join('\r\n');
}

const RESOLVE_TTL_MS = 60_000;
const resolved = new Map<string, { at: number; addresses: string[] }>();

/**
 * The announced addresses as IPv4 literals: host names (dynamic DNS) are resolved, cached for a
 * minute, and dropped with a warning when they do not resolve; a viewer still gets the LAN ones.
 */
export async function resolveAnnouncedAddresses(
  addresses: ReadonlyArray<string>,
  onProblem: (message: string) => void = () => undefined,
): Promise<string[]> {
  const out: string[] = [];
  for (const address of addresses) {
    if (isIP(address) === 4) {
      out.push(address);
      continue;
    }
    if (isIP(address) !== 0) continue;
    const cached = resolved.get(address);
    if (cached && performance.now() - cached.at < RESOLVE_TTL_MS) {
      out.push(...cached.addresses);
      continue;
    }
    try {
      const found = (await lookup(address, { family: 4, all: true })).map((entry) => entry.address);
      resolved.set(address, { at: performance.now(), addresses: found });
      out.push(...found);
    } catch (error) {
      onProblem(`announced address ${address} does not resolve: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return [...new Set(out)];
}
