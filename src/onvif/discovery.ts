/**
 * WS-Discovery for ONVIF cameras (NetworkVideoTransmitter), written here instead of using the `onvif`
 * package's `Discovery.probe`, which sends a single probe on the default interface only.
 *
 * - Several probes per run (UDP loses packets; cameras answer after a random delay of up to ~500 ms).
 * - One socket per chosen IPv4 interface; by default every non-internal interface, multicast to
 *   239.255.255.250:3702. Tests inject loopback targets so nothing leaves the machine.
 * - ProbeMatches are merged by endpoint reference, so a camera answering from two addresses (or to
 *   every retry) is one camera, with all its XAddrs.
 * - Anything that is not a ProbeMatches (garbage, truncated XML, other WS-Discovery traffic) is ignored.
 */
import { randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import os from 'node:os';

import type { Logger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import { child, childrenNamed, escapeXml, textAt, textOf, tryParseXml, type XmlElement } from './xml.js';

export const WS_DISCOVERY_MULTICAST = { address: '239.255.255.250', port: 3702 } as const;

export interface DiscoveredCamera {
  /** Endpoint reference address, e.g. `urn:uuid:…`; stable across IP changes. */
  endpoint: string;
  /** From the `onvif://www.onvif.org/name/…` scope. */
  name: string | undefined;
  /** Model, from the `onvif://www.onvif.org/hardware/…` scope. */
  hardware: string | undefined;
  /** From the `onvif://www.onvif.org/location/…` scope (often empty). */
  location: string | undefined;
  /** The device service address to use (see `xaddrs` for all of them). */
  xaddr: string | undefined;
  /** Host and port of `xaddr`: what to put into the camera's configuration. */
  host: string | undefined;
  port: number | undefined;
  /** Every device service address announced, best first (IPv4 the answer came from, IPv4, names, IPv6). */
  xaddrs: string[];
  /** Source addresses the answers came from. */
  addresses: string[];
  scopes: string[];
  types: string[];
  metadataVersion: number | undefined;
}

export interface ProbeTarget {
  address: string;
  port: number;
}

export interface DiscoveryOptions {
  log: Logger;
  /** How long to listen after the first probe. Default 3000 ms. */
  timeoutMs?: number;
  /** Probes sent per interface. Default 3. */
  probes?: number;
  /** Gap between probes. Default 600 ms. */
  probeIntervalMs?: number;
  /** Where probes go. Default: the WS-Discovery multicast group. Tests: the responder's loopback port. */
  targets?: ProbeTarget[];
  /** Local IPv4 addresses to send from (one socket each). Default: every non-internal IPv4 interface. */
  interfaces?: string[];
  /** Probe Types. Default `dn:NetworkVideoTransmitter`. */
  types?: string;
  signal?: AbortSignal;
}

const DISCOVERY_NS = 'http://schemas.xmlsoap.org/ws/2005/04/discovery';
const ADDRESSING_NS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing';

/** The Probe message (SOAP 1.2, WS-Discovery 2005/04 as ONVIF uses it). */
export function buildProbe(messageId: string, types = 'dn:NetworkVideoTransmitter'): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" ' +
    `xmlns:a="${ADDRESSING_NS}" xmlns:d="${DISCOVERY_NS}" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" ` +
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">' +
    '<s:Header>' +
    `<a:Action s:mustUnderstand="1">${DISCOVERY_NS}/Probe</a:Action>` +
    `<a:MessageID>${escapeXml(messageId)}</a:MessageID>` +
    '<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>' +
    '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>' +
    '</s:Header>' +
    `<s:Body><d:Probe><d:Types>${escapeXml(types)}</d:Types></d:Probe></s:Body>` +
    '</s:Envelope>'
  );
}

/** One ProbeMatch as read from a packet, before merging. */
export interface ProbeMatch {
  endpoint: string | undefined;
  types: string[];
  scopes: string[];
  xaddrs: string[];
  metadataVersion: number | undefined;
  relatesTo: string | undefined;
}

export type ProbeMatchesResult = { ok: true; matches: ProbeMatch[] } | { ok: false; reason: string };

const splitList = (text: string | undefined): string[] => (text ? text.split(/\s+/).filter(Boolean) : []);

/** Reads a ProbeMatches packet; anything else (garbage, a Probe, a Hello) is `ok: false` with a reason. */
export function parseProbeMatches(packet: Buffer | string): ProbeMatchesResult {
  const parsed = tryParseXml(packet, { maxLength: 256 * 1024 });
  if (!parsed.ok) return { ok: false, reason: `not XML: ${parsed.error.message}` };
  const envelope = parsed.root;
  if (envelope.name !== 'Envelope') return { ok: false, reason: `root <${envelope.name}> is not a SOAP envelope` };
  const body = child(envelope, 'Body');
  const probeMatches = child(body, 'ProbeMatches');
  if (!probeMatches) return { ok: false, reason: `not a ProbeMatches message (${body?.children[0]?.name ?? 'empty body'})` };
  const relatesTo = textAt(envelope, 'Header', 'RelatesTo');
  const matches = childrenNamed(probeMatches, 'ProbeMatch').map((match: XmlElement): ProbeMatch => {
    const version = Number.parseInt(textOf(child(match, 'MetadataVersion')) ?? '', 10);
    return {
      endpoint: textAt(match, 'EndpointReference', 'Address') || undefined,
      types: splitList(textOf(child(match, 'Types'))),
      scopes: splitList(textOf(child(match, 'Scopes'))),
      xaddrs: splitList(textOf(child(match, 'XAddrs'))),
      metadataVersion: Number.isFinite(version) ? version : undefined,
      relatesTo,
    };
  });
  if (matches.length === 0) return { ok: false, reason: 'ProbeMatches without a ProbeMatch' };
  return { ok: true, matches };
}

/** Value of an `onvif://www.onvif.org/<key>/<value>` scope (case-insensitive key, URL-decoded). */
export function scopeValue(scopes: readonly string[], key: string): string | undefined {
  const prefix = `onvif://www.onvif.org/${key.toLowerCase()}/`;
  for (const scope of scopes) {
    if (!scope.toLowerCase().startsWith(prefix)) continue;
    const raw = scope.slice(prefix.length);
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      value = raw;
    }
    value = value.trim();
    if (value) return value;
  }
  return undefined;
}

function hostOf(xaddr: string): { host: string; port: number } | undefined {
  try {
    const url = new URL(xaddr);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    return { host, port };
  } catch {
    return undefined;
  }
}

/** Orders XAddrs: IPv4 we heard from, other IPv4, host names, global IPv6, link-local IPv6, unparsable. */
function rankXAddr(xaddr: string, sources: ReadonlySet<string>): number {
  const parsed = hostOf(xaddr);
  if (!parsed) return 9;
  const family = isIP(parsed.host);
  if (family === 4) return sources.has(parsed.host) ? 0 : 1;
  if (family === 0) return 2;
  return /^fe80:/i.test(parsed.host) ? 4 : 3;
}

/** Merges matches (already grouped per packet source) into cameras keyed by endpoint reference. */
export function mergeProbeMatches(received: ReadonlyArray<{ source: string; match: ProbeMatch }>): DiscoveredCamera[] {
  interface Acc {
    endpoint: string;
    xaddrs: string[];
    addresses: string[];
    scopes: string[];
    types: string[];
    metadataVersion: number | undefined;
  }
  const byEndpoint = new Map<string, Acc>();
  const addAll = (into: string[], values: readonly string[]): void => {
    for (const v of values) if (!into.includes(v)) into.push(v);
  };
  for (const { source, match } of received) {
    // Without an endpoint reference (non-conforming devices) the first XAddr, then the source, identify it.
    const key = (match.endpoint ?? match.xaddrs[0] ?? `udp://${source}`).toLowerCase();
    let acc = byEndpoint.get(key);
    if (!acc) {
      acc = { endpoint: match.endpoint ?? key, xaddrs: [], addresses: [], scopes: [], types: [], metadataVersion: undefined };
      byEndpoint.set(key, acc);
    }
    addAll(acc.xaddrs, match.xaddrs);
    addAll(acc.addresses, [source]);
    addAll(acc.scopes, match.scopes);
    addAll(acc.types, match.types);
    if (match.metadataVersion !== undefined) acc.metadataVersion = Math.max(acc.metadataVersion ?? 0, match.metadataVersion);
  }
  const cameras: DiscoveredCamera[] = [];
  for (const acc of byEndpoint.values()) {
    const sources = new Set(acc.addresses);
    const xaddrs = acc.xaddrs
      .map((x, index) => ({ x, index, rank: rankXAddr(x, sources) }))
      .sort((a, b) => a.rank - b.rank || a.index - b.index)
      .map((e) => e.x);
    const best = xaddrs.find((x) => hostOf(x) !== undefined);
    const where = best ? hostOf(best) : undefined;
    cameras.push({
      endpoint: acc.endpoint,
      name: scopeValue(acc.scopes, 'name'),
      hardware: scopeValue(acc.scopes, 'hardware'),
      location: scopeValue(acc.scopes, 'location'),
      xaddr: best,
      host: where?.host,
      port: where?.port,
      xaddrs,
      addresses: acc.addresses,
      scopes: acc.scopes,
      types: acc.types,
      metadataVersion: acc.metadataVersion,
    });
  }
  return cameras.sort((a, b) => (a.host ?? '').localeCompare(b.host ?? '', undefined, { numeric: true }));
}

/** Non-internal IPv4 addresses of this machine: where production probes are sent from. */
export function defaultProbeInterfaces(): string[] {
  const out: string[] = [];
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal && !out.includes(address.address)) out.push(address.address);
    }
  }
  return out;
}

function isMulticast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return isIP(address) === 4 && first >= 224 && first <= 239;
}

/** Probes for ONVIF cameras and returns them merged; never throws for network trouble (it logs instead). */
export async function discoverCameras(options: DiscoveryOptions): Promise<DiscoveredCamera[]> {
  const log = options.log;
  const timeoutMs = options.timeoutMs ?? 3000;
  const probes = Math.max(1, options.probes ?? 3);
  const interval = options.probeIntervalMs ?? 600;
  const targets = options.targets ?? [WS_DISCOVERY_MULTICAST];
  const interfaces = options.interfaces ?? defaultProbeInterfaces();
  if (interfaces.length === 0) {
    log.warn('ONVIF discovery: no IPv4 network interface to probe from');
    return [];
  }
  const messageId = `urn:uuid:${randomUUID()}`;
  const probe = Buffer.from(buildProbe(messageId, options.types), 'utf8');
  const received: Array<{ source: string; match: ProbeMatch }> = [];
  const sockets: dgram.Socket[] = [];
  const timers: NodeJS.Timeout[] = [];
  let ignored = 0;

  const onMessage = (packet: Buffer, remote: dgram.RemoteInfo): void => {
    const result = parseProbeMatches(packet);
    if (!result.ok) {
      ignored++;
      log.debug(`ONVIF discovery: ignored a packet from ${remote.address}:${remote.port}: ${result.reason}`);
      return;
    }
    for (const match of result.matches) {
      // Replies are unicast to our socket, so a foreign RelatesTo is still a real camera; note it only.
      if (match.relatesTo && match.relatesTo !== messageId) {
        log.debug(`ONVIF discovery: ${remote.address} answered another probe (${match.relatesTo})`);
      }
      received.push({ source: remote.address, match });
    }
  };

  const openSocket = (localAddress: string): Promise<dgram.Socket | undefined> =>
    new Promise((resolve) => {
      const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      let bound = false;
      socket.on('message', onMessage);
      socket.on('error', (error) => {
        log.debug(`ONVIF discovery: socket on ${localAddress}: ${error.message}`);
        if (!bound) {
          socket.close();
          resolve(undefined);
        }
      });
      socket.bind({ address: localAddress, port: 0 }, () => {
        bound = true;
        if (targets.some((t) => isMulticast(t.address))) {
          try {
            socket.setMulticastInterface(localAddress);
            socket.setMulticastTTL(1);
          } catch (error) {
            log.debug(`ONVIF discovery: multicast setup on ${localAddress}: ${(error as Error).message}`);
          }
        }
        resolve(socket);
      });
    });

  try {
    for (const address of interfaces) {
      const socket = await openSocket(address);
      if (socket) sockets.push(socket);
    }
    if (sockets.length === 0) {
      log.warn(`ONVIF discovery: could not open a socket on ${interfaces.join(', ')}`);
      return [];
    }
    const sendAll = (): void => {
      for (const socket of sockets) {
        for (const target of targets) {
          socket.send(probe, target.port, target.address, (error) => {
            if (error) log.debug(`ONVIF discovery: probe to ${target.address}:${target.port} failed: ${error.message}`);
          });
        }
      }
    };
    await new Promise<void>((resolve) => {
      const done = (): void => {
        options.signal?.removeEventListener('abort', done);
        resolve();
      };
      for (let i = 0; i < probes; i++) {
        if (i === 0) sendAll();
        else timers.push(setTimeout(sendAll, i * interval));
      }
      timers.push(setTimeout(done, timeoutMs));
      if (options.signal?.aborted) done();
      else options.signal?.addEventListener('abort', done, { once: true });
    });
  } finally {
    for (const timer of timers) clearTimeout(timer);
    for (const socket of sockets) {
      try {
        socket.close();
      } catch {
        // already closed after an error
      }
    }
  }
  const cameras = mergeProbeMatches(received);
  log.debug(
    `ONVIF discovery: ${cameras.length} camera(s) from ${received.length} match(es)` +
      (ignored ? `, ${ignored} unrelated packet(s) ignored` : ''),
  );
  return cameras;
}

/**
 * Logs each discovered camera that is not configured, once per endpoint for the lifetime of `seen`,
 * with its address and model, so users can copy the host into their configuration.
 */
export function reportUnconfiguredCameras(
  cameras: readonly DiscoveredCamera[],
  configuredHosts: Iterable<string>,
  log: Logger,
  seen: Set<string>,
): DiscoveredCamera[] {
  const configured = new Set([...configuredHosts].map((h) => h.toLowerCase()));
  const fresh: DiscoveredCamera[] = [];
  for (const camera of cameras) {
    const hosts = [camera.host, ...camera.addresses].filter((h): h is string => !!h).map((h) => h.toLowerCase());
    if (hosts.some((h) => configured.has(h))) continue;
    if (seen.has(camera.endpoint)) continue;
    seen.add(camera.endpoint);
    fresh.push(camera);
    const model = camera.hardware ?? 'unknown model';
    const name = camera.name ? `"${camera.name}" ` : '';
    const where = camera.host ? `${camera.host}:${camera.port ?? 80}` : camera.addresses.join(', ');
    log.info(`ONVIF camera found but not configured: ${name}(${model}) at ${where}${camera.xaddr ? ` — ${redactUrl(camera.xaddr)}` : ''}`);
  }
  return fresh;
}
