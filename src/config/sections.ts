/**
 * The global sections of the plugin config (discovery, web, shareLinks, ice, ffmpeg, restream):
 * the rules that span several fields of one section, and the typed settings made from a valid one.
 */
import { parseAddressRanges } from '../util/address-ranges.js';
import { printableUrl } from './errors.js';
import { WEB_DEFAULT_CONNECTING_LIMIT, WEB_DEFAULT_VIEWS_LIMIT, isDict, type Dict } from './defaults.js';
import { EXPIRY_MS } from './share-link-expiry.js';
import type { DiscoveryConfig, FfmpegConfig, IceConfig, JanusGatewayConfig, RestreamConfig, ScaleOutConfig, ShareLinkExpiry, ShareLinksConfig, TurnServerConfig, WebConfig } from './types.js';

export const SECTION_KEYS = ['discovery', 'web', 'shareLinks', 'ice', 'ffmpeg', 'restream', 'scaleOut'] as const;
export type SectionKey = (typeof SECTION_KEYS)[number];

/** Rules spanning several fields of a section; each returned sentence invalidates the section. */
export function crossCheck(key: SectionKey, section: Dict): string[] {
  const problems: string[] = [];
  if (key === 'ice') {
    const min = section['udpPortMin'];
    const max = section['udpPortMax'];
    if ((min === undefined) !== (max === undefined)) {
      problems.push('ice.udpPortMin and ice.udpPortMax must be set together (or both left empty) — e.g. 50000 and 50100');
    } else if (typeof min === 'number' && typeof max === 'number' && min > max) {
      problems.push(`ice.udpPortMin (${min}) must not be above ice.udpPortMax (${max})`);
    }
  }
  if (key === 'web') {
    const tls = isDict(section['tls']) ? section['tls'] : {};
    if ((tls['certPath'] === undefined) !== (tls['keyPath'] === undefined)) {
      problems.push('web.tls.certPath and web.tls.keyPath must be set together: a certificate needs its key');
    }
    const redirect = tls['redirectHttpPort'];
    if (typeof redirect === 'number' && redirect === section['port']) {
      problems.push(`web.tls.redirectHttpPort (${redirect}) must differ from web.port: the redirect needs a port of its own`);
    }
    const proxies = section['trustedProxies'];
    if (Array.isArray(proxies)) {
      try {
        parseAddressRanges(proxies as string[]);
      } catch (error) {
        problems.push(`web.trustedProxies: ${(error as Error).message}`);
      }
    }
    const publicUrl = section['publicUrl'];
    if (typeof publicUrl === 'string' && !URL.canParse(publicUrl)) {
      problems.push(`web.publicUrl is not a valid address (it is "${printableUrl(publicUrl)}") — e.g. https://cameras.example.com`);
    }
  }
  if (key === 'restream' && section['lanAccess'] === true && (section['username'] === undefined || section['password'] === undefined)) {
    problems.push('restream.lanAccess needs restream.username and restream.password, so that nobody on your network watches without them');
  }
  if (key === 'scaleOut' && Array.isArray(section['janus'])) {
    const seen = new Set<string>();
    for (const [index, entry] of (section['janus'] as Dict[]).entries()) {
      const url = typeof entry['url'] === 'string' ? entry['url'] : '';
      if (!URL.canParse(url)) problems.push(`scaleOut.janus[${index}].url is not a valid address (it is "${printableUrl(url)}") — e.g. http://192.168.0.30:8088/janus`);
      else if (seen.has(url)) problems.push(`scaleOut.janus[${index}].url names the same gateway twice (${printableUrl(url)})`);
      seen.add(url);
    }
  }
  return problems;
}

export function toDiscovery(s: Dict): DiscoveryConfig {
  const probeAddresses = ((s['probeAddresses'] as string[] | undefined) ?? []).map((entry) => {
    const [address, port] = entry.split(':');
    return { address: address!, port: port ? Number(port) : 3702 };
  });
  return { enabled: s['enabled'] === true, interfaces: (s['interfaces'] as string[] | undefined) ?? [], probeAddresses };
}

export function toWeb(s: Dict): WebConfig {
  const tls = (s['tls'] ?? {}) as Dict;
  return {
    port: s['port'] as number,
    bind: s['bind'] as string,
    publicUrl: s['publicUrl'] as string | undefined,
    allowedOrigins: ((s['allowedOrigins'] as string[] | undefined) ?? []).map(normalizeOrigin),
    trustedProxies: (s['trustedProxies'] as string[] | undefined) ?? [],
    maxViewsPerUser: (s['maxViewsPerUser'] as number | undefined) ?? WEB_DEFAULT_VIEWS_LIMIT,
    maxViewsPerAddress: (s['maxViewsPerAddress'] as number | undefined) ?? WEB_DEFAULT_VIEWS_LIMIT,
    maxConnectingViews: (s['maxConnectingViews'] as number | undefined) ?? WEB_DEFAULT_CONNECTING_LIMIT,
    tls: {
      selfSigned: tls['selfSigned'] === true,
      certPath: tls['certPath'] as string | undefined,
      keyPath: tls['keyPath'] as string | undefined,
      ...(typeof tls['redirectHttpPort'] === 'number' ? { redirectHttpPort: tls['redirectHttpPort'] } : {}),
    },
  };
}

/** As browsers serialise an Origin header: lower-case scheme and host, default port dropped, no slash. */
function normalizeOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    // The schema's pattern already refused it; keep the text so the policy simply never matches.
    return origin.toLowerCase();
  }
}

export function toShareLinks(s: Dict): ShareLinksConfig {
  const defaultExpiry = s['defaultExpiry'] as ShareLinkExpiry | 'never';
  return { defaultExpiry, defaultExpiryMs: defaultExpiry === 'never' ? null : EXPIRY_MS[defaultExpiry] };
}

export function toIce(s: Dict): IceConfig {
  return {
    stunServers: (s['stunServers'] as string[] | undefined) ?? [],
    turnServers: (s['turnServers'] as TurnServerConfig[] | undefined) ?? [],
    udpPortMin: s['udpPortMin'] as number | undefined,
    udpPortMax: s['udpPortMax'] as number | undefined,
    announcedAddresses: (s['announcedAddresses'] as string[] | undefined) ?? [],
    iceTcp: s['iceTcp'] === true,
  };
}

export function toFfmpeg(s: Dict): FfmpegConfig {
  // The HomeKit encoder settings appear only when set, so a plain config reads as before.
  const optional = (key: 'videoEncoder' | 'encoderOptions'): Partial<FfmpegConfig> =>
    typeof s[key] === 'string' && (s[key] as string).trim() ? { [key]: (s[key] as string).trim() } : {};
  return {
    videoProcessor: s['videoProcessor'] as string | undefined,
    debug: s['debug'] === true,
    ...optional('videoEncoder'),
    ...optional('encoderOptions'),
    ...(typeof s['streamTimeoutSeconds'] === 'number' ? { streamTimeoutSeconds: s['streamTimeoutSeconds'] } : {}),
  };
}

export function toRestream(s: Dict): RestreamConfig {
  return {
    port: s['port'] as number,
    lanAccess: s['lanAccess'] === true,
    username: s['username'] as string | undefined,
    password: s['password'] as string | undefined,
  };
}

export function toScaleOut(s: Dict): ScaleOutConfig {
  const janus = ((s['janus'] as Dict[] | undefined) ?? []).map((entry): JanusGatewayConfig => ({
    url: entry['url'] as string,
    ...(typeof entry['apiSecret'] === 'string' ? { apiSecret: entry['apiSecret'] } : {}),
    ...(typeof entry['token'] === 'string' ? { token: entry['token'] } : {}),
    ...(typeof entry['adminKey'] === 'string' ? { adminKey: entry['adminKey'] } : {}),
  }));
  return { allCameras: s['allCameras'] === true, janus };
}
