/**
 * What a test or bench Homebridge's config.json says, without starting anything: the bridge on
 * 127.0.0.1 (the machines may only talk to loopback) with a random identity, only this plugin
 * loaded, and the plugin's platform block. Side-effect free, so benches use it too; `homebridge.ts`
 * (which also registers test hooks) re-exports it.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PLATFORM_NAME } from '../../src/settings.js';

export const DEFAULT_PIN = '031-45-154';

export type PlatformBlock = Record<string, unknown>;

/** Settings of the plugin's block beyond what `platformConfig` fills in; `web` is merged over its loopback defaults. */
export interface PlatformSettings {
  web?: Record<string, unknown>;
  [setting: string]: unknown;
}

/**
 * The plugin's platform block as the e2e files start it: the platform and its name, the web page on
 * 127.0.0.1 (port 0 unless `web.port` says which; the machines may only talk to loopback), and the
 * re-stream on any free port. `settings` adds the rest (cameras, viewers, ...) and overrides any of
 * these; its `web` fields join the loopback bind rather than replace it.
 */
export function platformConfig(settings: PlatformSettings = {}): PlatformBlock {
  const { web, ...rest } = settings;
  return { platform: PLATFORM_NAME, name: 'WebRTC Cameras', restream: { port: 0 }, ...rest, web: { port: 0, bind: '127.0.0.1', ...web } };
}

/** A bridge's MAC-style username: 0x0E is locally administered and unicast, so it never collides with real hardware. */
export function randomBridgeUsername(): string {
  const bytes = [0x0e, ...randomBytes(5)];
  return bytes.map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

export interface BridgeConfig {
  name: string;
  /** Default: a new random one. */
  username?: string;
  pin?: string;
  platform: PlatformBlock | null;
  /** Merged over the generated config.json. */
  extra?: Record<string, unknown>;
}

/** Writes `storagePath`/config.json: the bridge on 127.0.0.1 at an ephemeral port, only this plugin loaded. */
export function writeHomebridgeConfig(storagePath: string, bridge: BridgeConfig): void {
  const config: Record<string, unknown> = {
    bridge: { name: bridge.name, username: bridge.username ?? randomBridgeUsername(), port: 0, pin: bridge.pin ?? DEFAULT_PIN, bind: ['127.0.0.1'] },
    accessories: [],
    platforms: bridge.platform ? [bridge.platform] : [],
    plugins: ['homebridge-webrtc-cameras'],
    ...bridge.extra,
  };
  mkdirSync(storagePath, { recursive: true });
  writeFileSync(join(storagePath, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
