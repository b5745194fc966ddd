// A real TURN server for viewer tests: Debian's coturn on loopback, long-term credentials, UDP
// relays on loopback only. coturn refuses loopback peers by default (a relay must not reach the
// host it runs on); here every peer is on loopback, so that is allowed for this process alone.
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFreeUdpPort, LOOPBACK } from './ports.js';
import { registerCleanup, spawnTracked, type TrackedProcess } from './processes.js';

export interface TurnServer {
  /** `turn:127.0.0.1:<port>?transport=udp` */
  url: string;
  username: string;
  credential: string;
  port: number;
  process: TrackedProcess;
  close(): Promise<void>;
}

/** A STUN Binding request: answered once coturn's listener is up. */
function bindingRequest(): Buffer {
  const message = Buffer.alloc(20);
  message.writeUInt16BE(0x0001, 0);
  message.writeUInt32BE(0x2112a442, 4);
  randomBytes(12).copy(message, 8);
  return message;
}

async function answersStun(port: number, timeoutMs: number): Promise<boolean> {
  const socket = createSocket('udp4');
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      socket.once('message', (reply: Buffer) => {
        clearTimeout(timer);
        resolve(reply.length >= 20 && reply.readUInt16BE(0) === 0x0101);
      });
      socket.once('error', () => resolve(false));
      socket.send(bindingRequest(), port, LOOPBACK);
    });
  } finally {
    socket.close();
  }
}

export interface TurnServerOptions {
  /** Pin coturn to this CPU (benches keep it off the server's core). */
  cpu?: number;
}

export async function startTurnServer(options: TurnServerOptions = {}): Promise<TurnServer> {
  const port = await getFreeUdpPort();
  // 200 relay ports somewhere high; coturn picks among them and skips any taken.
  const relayMin = 40_000 + Math.floor(Math.random() * 100) * 200;
  const workDir = mkdtempSync(join(tmpdir(), 'wrc-turn-'));
  const username = 'viewer';
  const credential = randomBytes(9).toString('base64url');
  const pinning = options.cpu === undefined ? [] : ['taskset', '-c', String(options.cpu)];
  const [command, ...prefix] = [...pinning, 'turnserver'];
  const turn = spawnTracked(
    command!,
    [
      ...prefix,
      '--no-cli', // no telnet admin console
      '-n', // no configuration file: only what is given here
      '--listening-ip=127.0.0.1',
      `--listening-port=${port}`,
      '--relay-ip=127.0.0.1',
      `--min-port=${relayMin}`,
      `--max-port=${relayMin + 199}`,
      '--lt-cred-mech', // long-term credentials, as a user's TURN server has
      `--user=${username}:${credential}`,
      '--realm=webrtc-cameras.test',
      '--no-tls',
      '--no-dtls',
      '--no-tcp-relay',
      '--allow-loopback-peers', // every peer of these tests is on loopback
      `--pidfile=${join(workDir, 'turnserver.pid')}`,
      `--userdb=${join(workDir, 'turndb')}`,
      '--log-file=stdout',
      '--simple-log',
    ],
    { name: 'turnserver' },
  );
  const close = async (): Promise<void> => {
    unregister();
    await turn.kill();
    rmSync(workDir, { recursive: true, force: true });
  };
  const unregister = registerCleanup(close);
  const deadline = Date.now() + 10_000;
  while (!(await answersStun(port, 200))) {
    if (turn.exitInfo() || Date.now() > deadline) {
      await close();
      throw new Error(`coturn did not start on 127.0.0.1:${port}:\n${turn.stdoutText().slice(-2000)}${turn.stderrText().slice(-2000)}`);
    }
  }
  return { url: `turn:127.0.0.1:${port}?transport=udp`, username, credential, port, process: turn, close };
}
