/**
 * How the UI server talks to the running plugin: it reads `<storage>/webrtc-cameras/admin.json`
 * (written by the plugin at every start, 0600) and calls the plugin's web server on 127.0.0.1 with
 * the admin secret as a bearer token. Over HTTPS the plugin's certificate is pinned by the SHA-256
 * fingerprint in that file, so the secret only ever goes to the plugin that wrote it: each request
 * has a connection of its own, checked before a byte of the request is written (a pooled keep-alive
 * connection, checked for another request's pin, once carried the secret to a server it was not pinned to).
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';

export interface AdminInfo {
  port: number;
  tls: boolean;
  secret: string;
  fingerprint256?: string;
}

export class PluginUnavailableError extends Error {
  override readonly name = 'PluginUnavailableError';
}

export interface PluginResponse {
  status: number;
  type: string;
  body: Buffer;
}

const NOT_RUNNING = 'The plugin is not running, so this page cannot reach it. Check the Homebridge log, and restart Homebridge (or the plugin\u2019s child bridge) after adding the platform.';

export async function readAdminInfo(storagePath: string): Promise<AdminInfo> {
  let text: string;
  try {
    text = await readFile(join(storagePath, 'webrtc-cameras', 'admin.json'), 'utf8');
  } catch {
    throw new PluginUnavailableError(NOT_RUNNING);
  }
  const raw = JSON.parse(text) as Partial<AdminInfo>;
  if (typeof raw.port !== 'number' || typeof raw.secret !== 'string' || typeof raw.tls !== 'boolean') {
    throw new PluginUnavailableError('The plugin\u2019s admin.json is damaged; restart Homebridge to rewrite it.');
  }
  return { port: raw.port, tls: raw.tls, secret: raw.secret, ...(typeof raw.fingerprint256 === 'string' ? { fingerprint256: raw.fingerprint256 } : {}) };
}

export interface PluginClient {
  info(): Promise<AdminInfo>;
  request(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<PluginResponse>;
  json<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T>;
}

/**
 * A TLS connection to the plugin's port whose certificate is the one admin.json names. The
 * plugin's certificate is usually self-signed, and never for "127.0.0.1": it is pinned instead of
 * verified. Resolves only once the handshake is done and the pin matched.
 */
function pinnedConnection(info: AdminInfo, timeoutMs: number): Promise<tls.TLSSocket> {
  return new Promise<tls.TLSSocket>((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: info.port, rejectUnauthorized: false });
    const fail = (error: Error): void => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error('The plugin did not answer in time')));
    socket.once('error', (error: NodeJS.ErrnoException) => fail(error.code === 'ECONNREFUSED' ? new PluginUnavailableError(NOT_RUNNING) : error));
    socket.once('secureConnect', () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      if (!info.fingerprint256 || fingerprint !== info.fingerprint256) {
        fail(new PluginUnavailableError('The server on the plugin\u2019s port is not the plugin (certificate mismatch).'));
        return;
      }
      // Its error and timeout listeners stay: once the request owns the socket, they only destroy it
      // and reject a promise that is settled already; the request's own handlers report.
      socket.setTimeout(0);
      resolve(socket);
    });
  });
}

export function createPluginClient(storagePath: string): PluginClient {
  const request = async (method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<PluginResponse> => {
    // Read every time: the plugin writes a new secret (and maybe port) at each restart.
    const info = await readAdminInfo(storagePath);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { Authorization: `Bearer wrcadmin.${info.secret}` };
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    // Over HTTPS: a connection of its own, its certificate checked before the request goes out.
    const pinned = info.tls ? await pinnedConnection(info, timeoutMs) : undefined;
    return await new Promise<PluginResponse>((resolve, reject) => {
      const options: https.RequestOptions = { host: '127.0.0.1', port: info.port, method, path, headers, timeout: timeoutMs };
      // (With createConnection and no agent, Node pools nothing: this connection serves this request only.)
      if (pinned) options.createConnection = (): tls.TLSSocket => pinned;
      const req = (info.tls ? https : http).request(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('The plugin did not answer in time')));
      req.on('error', (error: NodeJS.ErrnoException) => {
        reject(error.code === 'ECONNREFUSED' ? new PluginUnavailableError(NOT_RUNNING) : error);
      });
      req.end(payload);
    });
  };
  return {
    info: () => readAdminInfo(storagePath),
    request,
    async json<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T> {
      const res = await request(method, path, body, timeoutMs);
      const text = res.body.toString('utf8');
      let parsed: unknown = undefined;
      if (res.type.startsWith('application/json') && text) parsed = JSON.parse(text) as unknown;
      if (res.status >= 400) {
        const message = (parsed as { message?: unknown } | undefined)?.message;
        throw new Error(typeof message === 'string' ? message : `The plugin answered ${res.status}`);
      }
      return parsed as T;
    },
  };
}
