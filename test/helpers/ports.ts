// Free-port helpers. Ports come from the kernel's ephemeral range (bind to port 0), which
// it hands out at random, so parallel test files rarely collide; callers that start a
// server on the port should still retry once on EADDRINUSE.
import { createSocket } from 'node:dgram';
import { createConnection, createServer, type Server } from 'node:net';

export const LOOPBACK = '127.0.0.1';

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') reject(new Error('no TCP address'));
      else resolve(addr.port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A TCP port that was free a moment ago on `host`. */
export async function getFreePort(host = LOOPBACK): Promise<number> {
  const [port] = await getFreePorts(1, host);
  return port!;
}

/** `count` distinct free TCP ports (all held open together, then released). */
export async function getFreePorts(count: number, host = LOOPBACK): Promise<number[]> {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(servers.map((s) => listen(s, host)));
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** A UDP port that was free a moment ago on `host`. */
export function getFreeUdpPort(host = LOOPBACK): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4');
    sock.once('error', reject);
    sock.bind(0, host, () => {
      const { port } = sock.address();
      sock.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(port: number, host = LOOPBACK, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host });
    const done = (open: boolean): void => {
      sock.destroy();
      resolve(open);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Waits until host:port accepts TCP connections. */
export async function waitForPort(port: number, { host = LOOPBACK, timeoutMs = 10_000 } = {}): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await isPortOpen(port, host)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
}
