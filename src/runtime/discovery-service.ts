import { mkdir, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { discoverCameras, reportUnconfiguredCameras, WS_DISCOVERY_MULTICAST, type DiscoveredCamera, type DiscoveryOptions } from '../onvif/index.js';
import type { PluginConfig } from '../config/types.js';
import type { Logger } from '../util/logger.js';
import type { WebRoute } from '../web/types.js';

/** How often the LAN is searched again: cameras get plugged in, and DHCP moves them. */
const REPEAT_MS = 10 * 60_000;

export interface DiscoveryService {
  start(): void;
  stop(): void;
  /** Cameras found that are not configured, newest search. */
  list(): ReadonlyArray<DiscoveredCamera>;
  /** Settles when the first search has finished. */
  searched(): Promise<void>;
  /** Searches now (joining a search in progress); false when discovery is off. */
  searchNow(): Promise<boolean>;
  /** `GET /api/discovered` for admins: what the Homebridge UI page and the watch page can offer to add. */
  readonly route: WebRoute;
}

/** IPv4 addresses of the named interfaces (`eth0`), or of every non-internal one when none are named. */
export function discoveryAddresses(names: ReadonlyArray<string>): string[] | undefined {
  if (names.length === 0) return undefined; // discoverCameras' own default: every non-internal IPv4
  const all = networkInterfaces();
  return names.flatMap((name) => (all[name] ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address));
}

/**
 * WS-Discovery in the background when the user turned it on: logs each unconfigured camera once and
 * keeps the list (also in the storage path, for the Homebridge UI). It never blocks start-up.
 */
export function createDiscoveryService(config: PluginConfig, storagePath: string, log: Logger,
  probe: Pick<DiscoveryOptions, 'targets' | 'timeoutMs'> = {}): DiscoveryService {
  let found: DiscoveredCamera[] = [];
  const seen = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let ready: Promise<void> = Promise.resolve();
  let running: Promise<void> | undefined;
  const abort = new AbortController();
  const configuredHosts = config.cameras.flatMap((c) => {
    const hosts = [c.onvif?.host];
    if (c.source.kind === 'rtsp') {
      try { hosts.push(new URL(c.source.url).hostname); } catch { /* validated already */ }
    }
    return hosts.filter((h): h is string => !!h);
  });

  const search = async (): Promise<void> => {
    try {
      const interfaces = discoveryAddresses(config.discovery.interfaces);
      if (interfaces && interfaces.length === 0) {
        log.warn(`Camera discovery: none of the interfaces ${config.discovery.interfaces.join(', ')} has an IPv4 address.`);
        return;
      }
      // Multicast for the LAN, plus any addresses the user listed (other subnets).
      const targets = config.discovery.probeAddresses.length > 0 ? [WS_DISCOVERY_MULTICAST, ...config.discovery.probeAddresses] : undefined;
      const cameras = await discoverCameras({ log, signal: abort.signal, ...(targets ? { targets } : {}), ...probe, ...(interfaces ? { interfaces } : {}) });
      reportUnconfiguredCameras(cameras, configuredHosts, log, seen);
      const configured = new Set(configuredHosts.map((h) => h.toLowerCase()));
      found = cameras.filter((c) => ![c.host, ...c.addresses].some((h) => h && configured.has(h.toLowerCase())));
      const dir = join(storagePath, 'webrtc-cameras');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'discovered.json'), JSON.stringify(found, null, 2));
    } catch (error) {
      if (!abort.signal.aborted) log.warn(`Camera discovery failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  };

  /** One search at a time: a "Search again" during the periodic search waits for that one. */
  const searchOnce = (): Promise<void> => (running ??= search().finally(() => { running = undefined; }));

  return {
    start() {
      if (!config.discovery.enabled) return;
      ready = searchOnce();
      timer = setInterval(() => void searchOnce(), REPEAT_MS);
      timer.unref();
    },
    stop() {
      abort.abort();
      if (timer) clearInterval(timer);
    },
    list: () => found,
    searched: () => ready,
    async searchNow() {
      if (!config.discovery.enabled || abort.signal.aborted) return false;
      await searchOnce();
      return true;
    },
    route: {
      method: 'GET',
      path: '/api/discovered',
      auth: 'admin',
      handle: (ctx) => ctx.sendJson(200, found.map((c) => ({
        name: c.name, hardware: c.hardware, host: c.host, port: c.port, endpoint: c.endpoint,
      }))),
    },
  };
}
