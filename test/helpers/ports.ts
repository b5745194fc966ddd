// Free-port helpers. Ports come from the kernel's ephemeral range (bind to port 0). The kernel
// may hand a port it just handed out again once it is released (here within 60 draws), so a test
// that takes a port for one server and then starts another that takes one too could get the same
// port twice; within one process these helpers never hand a port out twice (the last
// RECENT_PORTS). Parallel test files rarely collide; callers that start a server on the port
// should still retry once on EADDRINUSE.
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

/** How many of the ports handed out last are never handed out again (a test file uses a few dozen). */
const RECENT_PORTS = 4096;
/** Ports handed out by this process, oldest first (a Set iterates in insertion order). */
const handedOut = new Set<number>();

function remember(port: number): void {
  handedOut.add(port);
  if (handedOut.size > RECENT_PORTS) handedOut.delete(handedOut.values().next().value!);
}

/**
 * `count` distinct free TCP ports that this process has not handed out lately (all held open
 * together, then released). A port handed out before stays held while the kernel is asked again,
 * so it cannot come back in the same call.
 */
export async function getFreePorts(count: number, host = LOOPBACK): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count; attempt++) {
      if (attempt >= count + 256) throw new Error(`no ${count} free ports on ${host} that were not handed out lately`);
      const server = createServer();
      servers.push(server);
      const port = await listen(server, host);
      if (!handedOut.has(port)) ports.push(port);
    }
  } finally {
    await Promise.all(servers.map(close));
  }
  for (const port of ports) remember(port);
  return ports;
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
