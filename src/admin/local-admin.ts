/**
 * The trust bridge between the Homebridge UI's custom-UI server and this plugin's web server.
 *
 * Homebridge UI admins are the only people who reach the custom UI (config-ui-x runs its server as a
 * child process behind its admin guard), but they never signed in to this plugin. So at start the
 * plugin writes a fresh random secret, its web port and scheme into `<storage>/webrtc-cameras/admin.json`
 * (0600, inside the 0700 folder). The UI server, which runs as the same user on the same host, reads
 * it and calls the web server on loopback with `Authorization: Bearer wrcadmin.<secret>`. That token
 * is honoured from a loopback peer only, never through a proxy, and the secret changes at every start.
 *
 * The admin can then mint preview tokens: bearer tokens for ONE camera that expire within minutes
 * (`wrcpv1.<camera>.<expiry>.<mac>`, HMAC under a per-process key), which the custom UI page uses for
 * WHEP straight to the web server from the UI's own origin.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { unlink } from 'node:fs/promises';
import { isLoopbackAddress } from '../access/client-address.js';
import { ensureStorageDir, readJsonFile, writeFileAtomic } from '../util/storage.js';
import type { Principal } from '../web/types.js';
import { safeEqual } from '../util/safe-equal.js';

export const ADMIN_FILE = 'admin.json';
const ADMIN_PREFIX = 'wrcadmin.';
const PREVIEW_PREFIX = 'wrcpv1.';
/** A preview outlives its token (the WHEP session stays); the token only opens it. */
export const DEFAULT_PREVIEW_TTL_MS = 120_000;
export const MAX_PREVIEW_TTL_MS = 300_000;
const PREVIEW_TOKEN = /^wrcpv1\.([a-z0-9-]{1,40})\.([0-9a-z]{1,11})\.([A-Za-z0-9_-]{43})$/;

/** What the UI server reads from admin.json. */
export interface AdminFile {
  version: 1;
  port: number;
  tls: boolean;
  secret: string;
  pid: number;
  /** SHA-256 fingerprint of the web server's certificate (HTTPS), which the UI server pins. */
  fingerprint256?: string;
}

/** The principal of the Homebridge UI (through its custom-UI server). */
export interface LocalAdminPrincipal extends Principal {
  readonly kind: 'user';
  readonly localAdmin: true;
}

export interface PreviewPrincipal extends Principal {
  readonly kind: 'link';
  readonly preview: string;
}

export function isLocalAdmin(principal: Principal | undefined): principal is LocalAdminPrincipal {
  return principal !== undefined && (principal as Partial<LocalAdminPrincipal>).localAdmin === true;
}

const LOCAL_ADMIN: LocalAdminPrincipal = Object.freeze({
  name: 'Homebridge UI',
  kind: 'user',
  cameras: 'all',
  admin: true,
  localAdmin: true,
});

/** A forwarding header means "not this computer", whatever the TCP peer says. */
function proxied(req: IncomingMessage): boolean {
  const h = req.headers;
  return h['x-forwarded-for'] !== undefined || h['forwarded'] !== undefined || h['x-real-ip'] !== undefined || h['via'] !== undefined;
}

export interface LocalAdmin {
  /**
   * The principal for an admin or preview bearer token; `undefined` for a token of ours that is
   * wrong (or from the wrong place); `'not-mine'` for anything else, which access control judges.
   */
  authorize(req: IncomingMessage): Principal | undefined | 'not-mine';
  /**
   * A bearer token for `cameraId` alone, valid `ttlMs` (at most 5 minutes). `origin` is the
   * Homebridge UI page's origin: it may then use WHEP cross-origin (with a bearer token) as long as
   * the token lives.
   */
  mintPreview(cameraId: string, ttlMs?: number, origin?: string): { token: string; expiresAt: number };
  /** True while a preview minted for this browser origin is valid. */
  allowsOrigin(origin: string): boolean;
  /** Writes admin.json once the web server's port is known. */
  publish(port: number, tls: boolean, fingerprint256?: string): Promise<void>;
  /** Removes admin.json (only if it is still ours). */
  close(): Promise<void>;
}

export async function createLocalAdmin(options: { storagePath: string; now?: () => number }): Promise<LocalAdmin> {
  const now = options.now ?? Date.now;
  const dir = await ensureStorageDir(options.storagePath);
  const file = path.join(dir, ADMIN_FILE);
  const secret = randomBytes(32).toString('base64url');
  const previewKey = randomBytes(32);
  const adminToken = `${ADMIN_PREFIX}${secret}`;
  let published = false;
  const previewOrigins = new Map<string, number>();

  const previewMac = (camera: string, expiry: string): string =>
    createHmac('sha256', previewKey).update(`wrcpv1|${camera}|${expiry}`).digest('base64url');

  return {
    authorize(req) {
      const header = req.headers.authorization;
      if (header === undefined) return 'not-mine';
      const token = /^Bearer +([!-~]{1,256})$/i.exec(header.trim())?.[1];
      if (!token) return 'not-mine';
      if (token.startsWith(ADMIN_PREFIX)) {
        // Loopback only: the UI server runs on this host. Anything else is refused, not passed on.
        if (!isLoopbackAddress(req.socket.remoteAddress) || proxied(req)) return undefined;
        return safeEqual(token, adminToken) ? LOCAL_ADMIN : undefined;
      }
      if (token.startsWith(PREVIEW_PREFIX)) {
        const match = PREVIEW_TOKEN.exec(token);
        if (!match) return undefined;
        const [, camera, expiry, mac] = match as unknown as [string, string, string, string];
        if (!safeEqual(mac, previewMac(camera, expiry))) return undefined;
        if (parseInt(expiry, 36) * 1000 <= now()) return undefined;
        const principal: PreviewPrincipal = Object.freeze({
          name: `preview:${camera}`, kind: 'link', cameras: Object.freeze([camera]), admin: false, preview: camera,
        });
        return principal;
      }
      return 'not-mine';
    },
    mintPreview(cameraId, ttlMs = DEFAULT_PREVIEW_TTL_MS, origin) {
      const ttl = Math.min(Math.max(ttlMs, 10_000), MAX_PREVIEW_TTL_MS);
      // Whole seconds, rounded down, so the token never lives longer than asked.
      const expiresAt = Math.floor((now() + ttl) / 1000) * 1000;
      if (origin) {
        const key = origin.toLowerCase();
        previewOrigins.set(key, Math.max(previewOrigins.get(key) ?? 0, expiresAt));
        for (const [known, until] of previewOrigins) if (until <= now()) previewOrigins.delete(known);
      }
      const expiry = (expiresAt / 1000).toString(36);
      return { token: `${PREVIEW_PREFIX}${cameraId}.${expiry}.${previewMac(cameraId, expiry)}`, expiresAt };
    },
    allowsOrigin(origin) {
      const until = previewOrigins.get(origin.toLowerCase());
      return until !== undefined && until > now();
    },
    async publish(port, tls, fingerprint256) {
      const content: AdminFile = { version: 1, port, tls, secret, pid: process.pid, ...(fingerprint256 ? { fingerprint256 } : {}) };
      await writeFileAtomic(file, `${JSON.stringify(content)}\n`);
      published = true;
    },
    async close() {
      if (!published) return;
      published = false;
      // A newer plugin process (a restart racing this stop) may have replaced it: leave theirs alone.
      const current = await readJsonFile(file).catch(() => undefined);
      if (typeof current === 'object' && current !== null && (current as Partial<AdminFile>).secret === secret) {
        await unlink(file).catch(() => undefined);
      }
    },
  };
}
