/**
 * TLS for the web page: the user's own certificate and key (PEM paths from the config), or a
 * self-signed certificate made once and kept in `<storage>/webrtc-cameras/tls/` (made again only
 * when it is missing, damaged, does not match its key or is within 30 days of expiry). Plus the
 * optional plain-HTTP listener that only redirects to HTTPS.
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '../../util/logger.js';
import { formatHost } from '../../util/address.js';
import { ConnectionGuard } from '../connection-guard.js';
import { applySecurityHeaders } from '../http-util.js';
import { createSelfSignedCertificate } from './self-signed.js';
import { ensureStorageDir, writeFileAtomic } from '../../util/storage.js';

export interface TlsSettings {
  selfSigned?: boolean;
  certPath?: string;
  keyPath?: string;
}

export interface TlsCredentials {
  cert: Buffer;
  key: Buffer;
  source: 'configured' | 'self-signed';
  /** SHA-256 fingerprint, for the log: a user can compare it with what the browser shows. */
  fingerprint: string;
  validTo: Date;
  /** Where the files are (for the log and docs). */
  certPath: string;
}

const RENEW_BEFORE_MS = 30 * 86_400_000;

/**
 * The certificate to serve, or `undefined` for plain HTTP. Throws with a message that says which
 * file is wrong and how to fix it; the platform should then not start the web server rather than
 * silently fall back to HTTP.
 */
export async function loadTlsCredentials(
  settings: TlsSettings,
  options: { storagePath: string; log?: Logger; now?: () => number; hostNames?: ReadonlyArray<string> },
): Promise<TlsCredentials | undefined> {
  const log = options.log ?? silentLogger;
  const now = options.now ?? Date.now;
  if (settings.certPath || settings.keyPath) {
    if (!settings.certPath || !settings.keyPath) throw new Error('web.tls.certPath and web.tls.keyPath must be set together');
    return loadConfigured(settings.certPath, settings.keyPath, now, log);
  }
  if (!settings.selfSigned) return undefined;
  return loadOrCreateSelfSigned(options.storagePath, now, log, options.hostNames);
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' ? 'Homebridge may not read it' : (error as Error).message;
    throw new Error(`The ${what} ${file} cannot be read: ${why}.`);
  }
}

function parsePair(cert: Buffer, key: Buffer, certPath: string, keyPath: string): { x509: X509Certificate; privateKey: KeyObject } {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new Error(`${certPath} is not a PEM certificate.`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new Error(`${keyPath} is not a PEM private key (an encrypted key is not supported).`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`The key ${keyPath} does not belong to the certificate ${certPath}.`);
  return { x509, privateKey };
}

async function loadConfigured(certPath: string, keyPath: string, now: () => number, log: Logger): Promise<TlsCredentials> {
  const cert = await readPem(certPath, 'certificate');
  const key = await readPem(keyPath, 'key');
  const { x509 } = parsePair(cert, key, certPath, keyPath);
  const validTo = new Date(x509.validTo);
  if (validTo.getTime() <= now()) log.warn(`The certificate ${certPath} expired on ${validTo.toISOString()}; browsers will refuse it.`);
  return { cert, key, source: 'configured', fingerprint: x509.fingerprint256, validTo, certPath };
}

/** DNS names and addresses a browser on the LAN may use for this machine. */
export function localNames(): { dnsNames: string[]; ipAddresses: string[] } {
  const host = hostname().toLowerCase();
  const dnsNames = ['localhost'];
  if (/^[a-z0-9-]{1,63}$/.test(host)) dnsNames.push(host, `${host}.local`);
  const ipAddresses = ['127.0.0.1', '::1'];
  for (const list of Object.values(networkInterfaces())) {
    for (const address of list ?? []) {
      if (address.internal || address.address.startsWith('fe80')) continue;
      ipAddresses.push(address.address.split('%')[0]!);
    }
  }
  return { dnsNames: [...new Set(dnsNames)], ipAddresses: [...new Set(ipAddresses)] };
}

async function loadOrCreateSelfSigned(
  storagePath: string,
  now: () => number,
  log: Logger,
  extraNames: ReadonlyArray<string> = [],
): Promise<TlsCredentials> {
  const dir = path.join(await ensureStorageDir(storagePath), 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700).catch(() => undefined);
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  try {
    const cert = await readFile(certPath);
    const key = await readFile(keyPath);
    const { x509 } = parsePair(cert, key, certPath, keyPath);
    const validTo = new Date(x509.validTo);
    if (validTo.getTime() - now() > RENEW_BEFORE_MS) {
      return { cert, key, source: 'self-signed', fingerprint: x509.fingerprint256, validTo, certPath };
    }
    log.info(`The self-signed certificate expires on ${validTo.toISOString()}; making a new one.`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.warn(`The self-signed certificate in ${dir} is unusable (${error instanceof Error ? error.message : String(error)}); making a new one.`);
    }
  }
  const names = localNames();
  const dnsNames = [...new Set([...names.dnsNames, ...extraNames.filter((n) => /^[a-z0-9.-]{1,253}$/i.test(n))])];
  const made = createSelfSignedCertificate({ dnsNames, ipAddresses: names.ipAddresses, now: new Date(now()) });
  // Key first: a certificate without its key on disk would be "damaged" at the next start.
  await writeFileAtomic(keyPath, made.keyPem);
  await writeFileAtomic(certPath, made.certPem);
  const x509 = new X509Certificate(made.certPem);
  log.info(
    `Made a self-signed certificate for ${[...dnsNames, ...names.ipAddresses].join(', ')} (SHA-256 ${x509.fingerprint256}); ` +
      'browsers warn once until you accept it.',
  );
  return {
    cert: Buffer.from(made.certPem),
    key: Buffer.from(made.keyPem),
    source: 'self-signed',
    fingerprint: x509.fingerprint256,
    validTo: new Date(x509.validTo),
    certPath,
  };
}

export interface RedirectServer {
  listen(): Promise<{ port: number }>;
  close(): Promise<void>;
}

const HOST_NAME = /^(?:[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*|\[[0-9A-Fa-f:.]{2,45}\])$/;

/**
 * The names this machine answers for: its host name (and `.local`), `localhost`, and the
 * addresses of its interfaces. Read per request, because interfaces come and go (DHCP, VPN).
 */
function isOwnHostName(name: string): boolean {
  const lower = name.toLowerCase();
  const bare = lower.startsWith('[') ? lower.slice(1, -1) : lower;
  const own = hostname().toLowerCase();
  if (bare === 'localhost' || bare === own || bare === `${own}.local`) return true;
  for (const list of Object.values(networkInterfaces())) {
    for (const info of list ?? []) {
      if (info.address.toLowerCase() === bare) return true;
    }
  }
  return false;
}

/**
 * A plain-HTTP listener that answers everything with 308 to HTTPS, and serves nothing else (no
 * page, no API, so nothing is ever sent in clear). The target is `publicUrl` when it is an https
 * address; otherwise the Host header's name only when this machine answers for it (its host name,
 * `localhost`, an interface address), else the address the connection arrived on. A forged
 * `Host: evil.example` therefore never becomes a redirect to another site.
 */
export function createHttpsRedirect(options: { port: number; host?: string; httpsPort: number; publicUrl?: string; log?: Logger }): RedirectServer {
  const log = options.log ?? silentLogger;
  const publicBase = (() => {
    if (options.publicUrl === undefined) return undefined;
    try {
      const url = new URL(options.publicUrl);
      return url.protocol === 'https:' ? `${url.origin}${url.pathname.replace(/\/+$/, '')}` : undefined;
    } catch {
      return undefined;
    }
  })();
  const server = createServer({ maxHeaderSize: 8 * 1024, requestTimeout: 10_000, headersTimeout: 5_000, connectionsCheckingInterval: 1_000 }, (req: IncomingMessage, res: ServerResponse) => {
    applySecurityHeaders(res);
    req.resume();
    const target = req.url ?? '/';
    const hostHeader = (req.headers.host ?? '').trim();
    const hostName = hostHeader.startsWith('[') ? hostHeader.slice(0, hostHeader.indexOf(']') + 1) : hostHeader.replace(/:\d+$/, '');
    if (!target.startsWith('/') || !HOST_NAME.test(hostName)) {
      res.statusCode = 400;
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('Open this page with https://\n');
      return;
    }
    // "//evil" would be read as a host by a browser; collapse leading slashes so it stays a path.
    const pathPart = `/${target.replace(/^\/+/, '')}`;
    let base = publicBase;
    if (base === undefined) {
      const host = isOwnHostName(hostName) ? hostName : formatHost(req.socket.localAddress ?? '127.0.0.1');
      base = `https://${host}:${options.httpsPort}`;
    }
    res.statusCode = 308;
    res.setHeader('Location', `${base}${pathPart}`);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Connection', 'close');
    res.end();
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  server.maxConnections = 256;
  // The same per-address share as the page (connection-guard.ts), so one machine cannot fill it.
  const guard = new ConnectionGuard({ maxConnections: 256, maxConnectionsPerAddress: 32, reservedForKnown: 0 }, () => false, log);
  server.on('connection', (socket: Socket) => guard.admit(socket));
  return {
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', (error: NodeJS.ErrnoException) =>
          reject(new Error(`The HTTP-to-HTTPS redirect cannot listen on port ${options.port}: ${error.code === 'EADDRINUSE' ? 'the port is already in use' : error.message}`)),
        );
        server.listen(options.port, options.host ?? '0.0.0.0', () => {
          const address = server.address();
          const port = typeof address === 'object' && address ? address.port : options.port;
          log.debug(`Redirecting http://*:${port}/ to HTTPS port ${options.httpsPort}`);
          resolve({ port });
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
