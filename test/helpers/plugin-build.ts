/**
 * Whether the built plugin (dist/) is older than its sources. Apart from homebridge.ts because that
 * helper registers test hooks when imported, and benchmarks need this check without them.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The newest modification time of the `.ts` files under `dir` (0 when there are none). */
export function newestTsMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestTsMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/** `missing`: no dist/index.js; `stale`: some src/ file is newer; `fresh` otherwise. */
export function pluginBuildState(pluginDir: string): 'missing' | 'stale' | 'fresh' {
  const entry = join(pluginDir, 'dist/index.js');
  if (!existsSync(entry)) return 'missing';
  return newestTsMtime(join(pluginDir, 'src')) > statSync(entry).mtimeMs ? 'stale' : 'fresh';
}
