/**
 * The UI server's requests (`homebridge.request(path, body)` in the page), independent of
 * config-ui-x so tests can drive them directly. Each one is a thin, validated call to the plugin's
 * admin API; none returns a camera password, and viewer passwords leave only as scrypt hashes.
 */
import { formatPasswordHash, hashPassword } from '../web/auth/password.js';
import { createPluginClient, PluginUnavailableError, type PluginClient } from './plugin-client.js';

export type UiHandler = (body: unknown) => Promise<unknown>;

/** Thrown for input the page should have refused; config-ui-x passes the message to the page. */
export class UiRequestError extends Error {
  override readonly name = 'UiRequestError';
}

const CAMERA_ID = /^[a-z0-9-]{1,40}$/;
const LINK_ID = /^[A-Za-z0-9_-]{22}$/;
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 256;

function record(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return {};
  return body as Record<string, unknown>;
}

function cameraId(body: unknown): string {
  const id = record(body)['camera'];
  if (typeof id !== 'string' || !CAMERA_ID.test(id)) throw new UiRequestError('Choose a camera');
  return id;
}

export function createUiHandlers(options: { storagePath: string; client?: PluginClient }): Record<string, UiHandler> {
  const plugin = options.client ?? createPluginClient(options.storagePath);
  return {
    /** Whether the plugin runs, where its page is, and every camera's state. */
    '/status': async () => {
      try {
        const info = await plugin.info();
        const { cameras, gateways } = await plugin.json<{ cameras: unknown[]; gateways?: unknown[] }>('GET', '/api/admin/status');
        return { running: true, web: { port: info.port, tls: info.tls }, cameras, ...(gateways ? { gateways } : {}) };
      } catch (error) {
        if (error instanceof PluginUnavailableError) return { running: false, message: error.message, cameras: [] };
        throw error;
      }
    },
    /** Each camera's web trigger paths, doorbell and motion (secrets: the log never shows them; the page shows one on request). */
    '/triggers': async () => plugin.json('GET', '/api/admin/triggers'),
    '/discovered': async () => plugin.json('GET', '/api/discovered'),
    /** A WS-Discovery search now (a few seconds), then the list. */
    '/discover': async () => {
      await plugin.json('POST', '/api/admin/discover', {}, 30_000);
      return plugin.json('GET', '/api/discovered');
    },
    /** ONVIF, RTSP or a configured camera; the plugin validates the fields and runs it. */
    '/test': async (body) => plugin.json('POST', '/api/admin/test', body, 60_000),
    '/preview': async (body) => {
      const info = await plugin.info();
      const origin = record(body)['origin'];
      const preview = await plugin.json<{ token: string; expiresAt: string; whepPath: string }>('POST', '/api/admin/preview', {
        camera: cameraId(body),
        ...(typeof origin === 'string' ? { origin } : {}),
      });
      return { ...preview, port: info.port, tls: info.tls };
    },
    /** The camera's snapshot as a data URL (the page cannot send the admin secret itself). */
    '/snapshot': async (body) => {
      const res = await plugin.request('GET', `/api/cameras/${cameraId(body)}/snapshot.jpg?width=640`, undefined, 15_000);
      if (res.status !== 200 || !res.type.startsWith('image/jpeg')) return { image: null };
      return { image: `data:image/jpeg;base64,${res.body.toString('base64')}` };
    },
    '/share-links/list': async () => plugin.json('GET', '/api/share-links'),
    '/share-links/create': async (body) => {
      const { cameras, expiresIn, label } = record(body);
      return plugin.json('POST', '/api/share-links', { cameras, expiresIn, ...(label ? { label } : {}) });
    },
    '/share-links/revoke': async (body) => {
      const id = record(body)['id'];
      if (typeof id !== 'string' || !LINK_ID.test(id)) throw new UiRequestError('No such share link');
      const res = await plugin.request('DELETE', `/api/share-links/${id}`);
      if (res.status !== 204) throw new UiRequestError('The share link could not be revoked (it may be gone already)');
      return { revoked: id };
    },
    /** A viewer password as the config stores it: `scrypt$...`, never the password itself. */
    '/hash-password': async (body) => {
      const password = record(body)['password'];
      if (typeof password !== 'string' || password.length < MIN_PASSWORD || password.length > MAX_PASSWORD) {
        throw new UiRequestError(`A password needs ${MIN_PASSWORD} to ${MAX_PASSWORD} characters`);
      }
      return { hash: formatPasswordHash(await hashPassword(password)) };
    },
  };
}
