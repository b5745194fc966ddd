/**
 * The watch page's assets, read into memory once. Requests are answered by looking the name up in a
 * table built from the directory listing, so no request path is ever joined onto a file-system path:
 * `..`, encoded slashes, symlinks and absolute paths simply find nothing.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface StaticAsset {
  body: Buffer;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webmanifest': 'application/manifest+json',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** An asset with its ETag: a hash of the content, so it changes exactly when the content does. */
export function assetOf(body: Buffer, contentType: string): StaticAsset {
  return { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

const MAX_FILES = 200;
const MAX_DEPTH = 3;

/** Reads every regular file with a known type under `dir` (depth-limited; symlinks are skipped). */
export async function loadStaticAssets(dir: string): Promise<Map<string, StaticAsset>> {
  const assets = new Map<string, StaticAsset>();
  const walk = async (absolute: string, relative: string, depth: number): Promise<void> => {
    const entries = await readdir(absolute, { withFileTypes: true });
    for (const entry of entries) {
      if (assets.size >= MAX_FILES) return;
      if (entry.name.startsWith('.')) continue;
      const childAbsolute = path.join(absolute, entry.name);
      const childRelative = relative ? `${relative}/${entry.name}` : entry.name;
      const info = await lstat(childAbsolute);
      if (info.isDirectory() && depth < MAX_DEPTH) {
        await walk(childAbsolute, childRelative, depth + 1);
      } else if (info.isFile()) {
        const contentType = CONTENT_TYPES[path.extname(entry.name).toLowerCase()];
        if (!contentType) continue;
        assets.set(childRelative, assetOf(await readFile(childAbsolute), contentType));
      }
    }
  };
  await walk(dir, '', 0);
  return assets;
}

/**
 * Sends an asset. File names are not content-hashed, so browsers revalidate every time (`no-cache`)
 * and get a cheap 304 while the plugin version is unchanged, and the new page right after an update.
 */
export function sendAsset(req: IncomingMessage, res: ServerResponse, asset: StaticAsset): void {
  res.setHeader('Content-Type', asset.contentType);
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('ETag', asset.etag);
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch && ifNoneMatch.split(',').some((tag) => tag.trim() === asset.etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.statusCode = 200;
  res.setHeader('Content-Length', asset.body.length);
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}
