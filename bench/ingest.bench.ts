/**
 * What one camera costs with nobody watching (issue 14's "ingest"), against Node's own floor for
 * receiving the same packets, in the same run.
 *
 * - The camera is the shared fan-out harness's GStreamer camera (`../shared/tools/fanout-bench/
 *   camera.py`: 720p25 H.264 at 2 Mbit/s + PCMU, about 225 + 50 RTP packets/s), the one
 *   `bench:janus` uses, pinned to CPU 1.
 * - Cases, each a fresh process pinned to CPU 0, run in alternating order for several rounds:
 *   - `floor`: a bare Node UDP receiver that only counts datagrams, fed the same pattern (25 bursts
 *     of 9 x 1400 B and 50 x 172 B a second) by a Node sender on CPU 1: what any Node process
 *     pays to receive this stream, before doing anything with it;
 *   - `plugin, UDP` and `plugin, TCP`: Homebridge with the built plugin and one always-on camera,
 *     RTP over UDP (the default, read by the native receiver, native/udp-receive.c) or interleaved
 *     in the RTSP connection; with nobody watching, both hold the camera's packets (in the native
 *     receiver, or in the socket) and hand them on a few times a second (`holdDelivery`);
 *   - `plugin, UDP, dgram`: UDP with the addon turned off (WEBRTC_CAMERAS_NATIVE=0), as on a
 *     machine where it does not load (32-bit Raspberry Pi OS): Node's dgram, a call per datagram.
 * - CPU is every thread's time on a CPU from /proc/<pid>/task/<tid>/schedstat (nanoseconds), over
 *   `--seconds` in 5 s windows after `--settle` s; the first 5 s window right after the camera is
 *   live is reported apart. The default settle is 45 s: for about 35 s after start-up V8 compiles
 *   and tiers up the camera's path (its worker threads busy, the main thread in baseline code), a
 *   one-time cost that read 3-4 times the steady figure (`bench:janus` reports both).
 * - Run it on a quiet machine, alone: on this project's VM the same ingest costs less CPU when the
 *   machine is saturated (the vCPU never sleeps between packets), so a busy machine flatters it.
 *
 * Run: npm run bench:ingest [-- --rounds 3 --seconds 30 --settle 45]
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AccessState } from '../src/web/auth/access-state.js';
import { readSchedTimes } from '../test/helpers/proc-stat.js';
import { getFreePort, getFreeUdpPort } from '../test/helpers/ports.js';
import { pluginBuildState } from '../test/helpers/plugin-build.js';
import { spawnTracked, type TrackedProcess } from '../test/helpers/processes.js';
import { platformConfig, writeHomebridgeConfig } from '../test/helpers/homebridge-config.js';
import { median } from '../test/helpers/stats.js';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CAMERA_SCRIPT = resolve(PROJECT, '../shared/tools/fanout-bench/camera.py');
const STORAGE_ROOT = join(PROJECT, '.bench', 'ingest-storage');
const WINDOW_S = 5;

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '30' },
    settle: { type: 'string', default: '45' },
  },
});
const ROUNDS = Number(args.rounds);
const SECONDS = Math.max(WINDOW_S, Number(args.seconds));
const SETTLE_S = Number(args.settle);

type CaseName = 'floor' | 'plugin, UDP' | 'plugin, UDP, dgram' | 'plugin, TCP';
const CASES: CaseName[] = ['floor', 'plugin, UDP', 'plugin, UDP, dgram', 'plugin, TCP'];

interface Measured {
  /** CPU % of one core, one per window. */
  windows: number[];
  /** The first window from the moment the camera was live (plugin cases only). */
  firstWindow?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function progress(text: string): void {
  process.stderr.write(`[bench:ingest] ${text}\n`);
}

/** A child pinned to one CPU; the registry kills it (SIGTERM, SIGKILL after 5 s) if the bench dies. */
function pinned(cpu: number, command: string, argv: string[], env: NodeJS.ProcessEnv = process.env): TrackedProcess {
  return spawnTracked('taskset', ['-c', String(cpu), command, ...argv], { name: command.split('/').pop(), cwd: PROJECT, killGraceMs: 5000, env });
}

/** CPU % of one core in consecutive windows of WINDOW_S, from the process's schedstat. */
async function cpuWindows(pid: number, count: number): Promise<number[]> {
  const out: number[] = [];
  let before = readSchedTimes(pid);
  let at = performance.now();
  for (let i = 0; i < count; i++) {
    await sleep(WINDOW_S * 1000);
    const after = readSchedTimes(pid);
    const now = performance.now();
    if (!before || !after) throw new Error(`process ${pid} went away during the measurement`);
    out.push(((after.runSeconds - before.runSeconds) / ((now - at) / 1000)) * 100);
    before = after;
    at = now;
  }
  return out;
}

// ---- the floor: a bare Node receiver and a sender of the camera's packet pattern

const FLOOR_RECEIVER = `
import dgram from 'node:dgram';
let packets = 0;
const socket = dgram.createSocket('udp4');
socket.on('message', () => { packets++; });
socket.bind(Number(process.argv[1]), '127.0.0.1', () => process.stdout.write('ready\\n'));
process.stdin.on('end', () => { console.error('received', packets); process.exit(0); });
process.stdin.resume();
`;
const FLOOR_SENDER = `
import dgram from 'node:dgram';
const port = Number(process.argv[1]);
const socket = dgram.createSocket('udp4');
const video = Buffer.alloc(1400, 1), audio = Buffer.alloc(172, 2);
setInterval(() => { for (let i = 0; i < 9; i++) socket.send(video, port, '127.0.0.1'); }, 40);
setInterval(() => socket.send(audio, port, '127.0.0.1'), 20);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
`;

async function measureFloor(): Promise<Measured> {
  const port = await getFreeUdpPort();
  const receiver = pinned(0, process.execPath, ['--input-type=module', '-e', FLOOR_RECEIVER, String(port)]);
  await new Promise<void>((ready, fail) => {
    receiver.child.stdout!.once('data', () => ready());
    void receiver.exited.then((exit) => fail(new Error(`the floor receiver exited (${String(exit.code)})`)));
  });
  const sender = pinned(1, process.execPath, ['--input-type=module', '-e', FLOOR_SENDER, String(port)]);
  try {
    await sleep(Math.min(SETTLE_S, 5) * 1000); // a bare receiver has no path to warm up
    return { windows: await cpuWindows(receiver.pid, SECONDS / WINDOW_S) };
  } finally {
    await sender.kill();
    await receiver.kill();
  }
}

// ---- the plugin in Homebridge

interface Storage {
  path: string;
  webPort: number;
  /** A share-link token (from the plugin's own store) to read /metrics with. */
  token: string;
}

/** Homebridge storage with the one camera, made once per transport and kept across rounds. */
async function writeStorage(cameraPort: number, transport: 'auto' | 'tcp'): Promise<Storage> {
  const dir = join(STORAGE_ROOT, transport);
  const webPort = await getFreePort();
  rmSync(dir, { recursive: true, force: true });
  const cameras = [{ id: 'cam', name: 'Bench camera', rtspUrl: `rtsp://127.0.0.1:${cameraPort}/cam`, alwaysOn: true, transport }];
  writeHomebridgeConfig(dir, { name: 'ingest bench', platform: platformConfig({ cameras, web: { port: webPort } }) });
  const access = await AccessState.create({ viewers: [], storagePath: dir, cameraIds: () => ['cam'] });
  try {
    const link = await access.createLink({ cameras: 'all', expiresIn: 'never', label: 'bench:ingest', createdBy: 'bench:ingest' });
    return { path: dir, webPort, token: link.token };
  } finally {
    await access.stop();
  }
}

async function waitLive(webPort: number, token: string, homebridge: TrackedProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const exit = homebridge.exitInfo();
    if (exit) throw new Error(`Homebridge exited (${String(exit.code)}) before the camera was live`);
    try {
      const metrics = await (await fetch(`http://127.0.0.1:${webPort}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text();
      if (metrics.includes('state="live"} 1')) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error('the camera was not live within 60 s');
}

/**
 * Homebridge with the storage; `windows` = 0 only starts it until the camera is live (the warm-up:
 * a fresh storage's first start makes the bridge's identity and advertises it, which a home's
 * Homebridge, restarted with its storage, does not do again).
 */
async function measurePlugin(storage: Storage, windows = SECONDS / WINDOW_S, native = true): Promise<Measured> {
  const { path: dir, webPort, token } = storage;
  const env = native ? process.env : { ...process.env, WEBRTC_CAMERAS_NATIVE: '0' };
  const homebridge = pinned(0, process.execPath, [join(PROJECT, 'node_modules/homebridge/bin/homebridge.js'), '-U', dir, '-P', PROJECT, '--strict-plugin-resolution', '-Q'], env);
  try {
    await waitLive(webPort, token, homebridge).catch((error: unknown) => {
      throw new Error(`${String(error)}\nHomebridge's last output:\n${homebridge.stdoutText().slice(-4000)}`);
    });
    if (windows === 0) return { windows: [] };
    const [firstWindow] = await cpuWindows(homebridge.pid, 1);
    await sleep(Math.max(0, SETTLE_S - WINDOW_S) * 1000);
    return { windows: await cpuWindows(homebridge.pid, windows), firstWindow: firstWindow! };
  } finally {
    await homebridge.kill();
  }
}

// ---- run

async function main(): Promise<void> {
  if (!existsSync(CAMERA_SCRIPT)) throw new Error(`bench:ingest needs the shared harness's camera at ${CAMERA_SCRIPT}`);
  const state = pluginBuildState(PROJECT);
  if (state !== 'fresh') throw new Error(`dist/ is ${state}: run npm run build first (Homebridge loads the built plugin)`);
  const cameraPort = await getFreePort();
  const camera = pinned(1, '/usr/bin/python3', [CAMERA_SCRIPT, '--host', '127.0.0.1', '--port', String(cameraPort), '--path', '/cam', '--max-seconds', '7200']);
  await new Promise<void>((ready, fail) => {
    camera.child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('"ready"')) ready();
    });
    void camera.exited.then(({ code }) => fail(new Error(`the camera exited (${String(code)}); it needs Debian's /usr/bin/python3 with GStreamer's RTSP server`)));
  });
  const results = new Map<CaseName, Measured[]>(CASES.map((c) => [c, []]));
  try {
    const storages = { udp: await writeStorage(cameraPort, 'auto'), tcp: await writeStorage(cameraPort, 'tcp') };
    progress('warm-up: a first start of each storage');
    for (const storage of Object.values(storages)) await measurePlugin(storage, 0);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? CASES : [...CASES].reverse();
      for (const name of order) {
        progress(`round ${round + 1}/${ROUNDS}: ${name}`);
        const measured =
          name === 'floor' ? await measureFloor() : await measurePlugin(name === 'plugin, TCP' ? storages.tcp : storages.udp, SECONDS / WINDOW_S, name !== 'plugin, UDP, dgram');
        results.get(name)!.push(measured);
      }
    }
  } finally {
    camera.child.stdin!.end();
    await camera.kill();
  }
  printTable(results);
}

function printTable(results: Map<CaseName, Measured[]>): void {
  const floor = median(results.get('floor')!.map((m) => median(m.windows)));
  console.log(`\nIngest with no viewer: CPU % of one core, median of ${SECONDS / WINDOW_S} windows of ${WINDOW_S} s per round, then of ${ROUNDS} rounds\n`);
  console.log('| case | CPU % | rounds | × Node floor | first 5 s after live |');
  console.log('|---|---|---|---|---|');
  for (const [name, runs] of results) {
    const perRound = runs.map((m) => median(m.windows));
    const first = runs.flatMap((m) => (m.firstWindow === undefined ? [] : [m.firstWindow]));
    console.log(
      `| ${name} | ${median(perRound).toFixed(2)} | ${perRound.map((v) => v.toFixed(2)).join(' / ')} | ${(median(perRound) / floor).toFixed(2)} | ${first.length ? median(first).toFixed(2) : '-'} |`,
    );
  }
  console.log("\nfloor = a bare Node UDP receiver of the camera's packet pattern; compare Janus's ingest in bench:janus, run on the same machine (its steady reading).");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
