/**
 * Fan-out side by side: this project (Homebridge 2 + the plugin, viewers over WHEP) against tuned
 * Janus (streaming plugin, `event_loops = 1`), in the same run, through the shared harness
 * `../shared/tools/fanout-bench` (its README explains the measurement: fake GStreamer camera on one
 * core with the viewers, the server under test pinned to the other, werift viewers).
 *
 * - The harness folder is read-only, so it is copied to `.bench/fanout-bench` (gitignored), where
 *   its dependencies are installed (`npm ci --offline`, else `npm ci`) and the loopback shim Janus
 *   needs is built with gcc, as its setup.sh does.
 * - The project runs as a user would run it: Homebridge from node_modules with the built plugin
 *   (dist/ is rebuilt first when src/ is newer), one always-on camera pulling the fake camera, the
 *   web page on 127.0.0.1. Viewers authenticate with real share-link tokens, made here with the
 *   plugin's own access state in the Homebridge storage folder, used round-robin; the per-address
 *   cap is raised with its setting (web.maxViewsPerAddress), because every bench viewer is on
 *   127.0.0.1, and so is the budget of views still connecting at once (web.maxConnectingViews), to
 *   the largest storm. (A per-viewer X-Forwarded-For through a trusted proxy would make each viewer look
 *   remote, and the server rightly refuses a remote viewer's loopback ICE candidates.)
 * - Each sweep runs every case on both servers, the server order alternating from sweep to sweep:
 *   the ingest (the camera at 2000 kbit/s and no viewer, 75 s), steady N (default 10, 25 at 2000
 *   kbit/s; 50 at 600 kbit/s, where the viewer core does not saturate) and connect storms (N
 *   viewers joining at once, `--connect-concurrency N`).
 * - The table gives, per case, the median over sweeps of server CPU %, µs of server CPU per
 *   delivered viewer-packet, CPU in the 5 s before the first viewer, connect-all seconds, first
 *   keyframe p50 (and max for storms), sequence loss and RSS per viewer (at the window's peak, the
 *   harness's figure, and at its end, once the server settled; both above the no-viewer RSS once
 *   start-up is over, `--settle`), with the ratio project / Janus.
 *
 * Run: npm run bench:janus [-- --quick] [-- --sweeps 3 --viewers 10,25,50 --storm 25,50
 *      --servers janus,project --cpu-prof]. `--quick`: one sweep, N=10 and a storm of 25, short windows.
 * `--cpu-prof` starts Homebridge with `node --cpu-prof` and prints the top self-time functions.
 * `--node-flags "--max-semi-space-size=1"` starts the project's Node with those flags (a tuning to measure).
 * `--idle 75`: the length in seconds of the ingest case's window (no viewer; default 75, see INGEST_WINDOWS).
 * `--settle 45`: seconds each steady case's server runs with no viewer before the first joins, the
 *   last 5 of them its baseline (default 45, see STEADY_IDLE_S; `--settle 5` is the harness's own).
 * `--dry-run` prepares everything (harness copy, build, storage, tokens) and prints the harness
 * command lines instead of running them.
 * Only one benchmark may run on the machine at a time (both cores are used).
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AccessState } from '../src/web/auth/access-state.js';
import { CONNECTING_LIMIT_CEILING, WEB_DEFAULT_CONNECTING_LIMIT, WEB_DEFAULT_VIEWS_LIMIT } from '../src/config/view-limits.js';
import { pluginBuildState } from '../test/helpers/plugin-build.js';
import { platformConfig, writeHomebridgeConfig } from '../test/helpers/homebridge-config.js';
import { median } from '../test/helpers/stats.js';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HARNESS_SOURCE = resolve(PROJECT, '../shared/tools/fanout-bench');
const SCRATCH = join(PROJECT, '.bench');
const HARNESS = join(SCRATCH, 'fanout-bench');
const CAMERA_ID = 'cam';

type Server = 'janus' | 'project';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.BENCH_QUICK === '1' },
    sweeps: { type: 'string' },
    viewers: { type: 'string' },
    storm: { type: 'string' },
    servers: { type: 'string', default: 'janus,project' },
    'low-bitrate-from': { type: 'string', default: '50' },
    'low-bitrate': { type: 'string', default: '600' },
    bitrate: { type: 'string', default: '2000' },
    'cpu-prof': { type: 'boolean', default: false },
    /** Extra flags for the project's Node (e.g. --max-semi-space-size=1), to measure a tuning. */
    'node-flags': { type: 'string', default: '' },
    /** Seconds of the ingest case's window (no viewer), which starts 1 s after the server is ready. */
    idle: { type: 'string' },
    /** Seconds a steady case's server runs with no viewer before the first joins (its baseline is the last 5). */
    settle: { type: 'string' },
    /** Skip the ingest case. */
    'no-ingest': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'dry-run': { type: 'boolean', default: false },
  },
});

const QUICK = args.quick === true;
const SWEEPS = Number(args.sweeps ?? (QUICK ? 1 : 3));
const numbers = (text: string): number[] => text.split(',').map((s) => s.trim()).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
const STEADY = numbers(args.viewers ?? (QUICK ? '10' : '10,25,50'));
const STORM = numbers(args.storm ?? (QUICK ? '25' : '25,50'));
const SERVERS = (args.servers ?? '').split(',').filter((s): s is Server => s === 'janus' || s === 'project');
const LOW_FROM = Number(args['low-bitrate-from']);
const bitrateFor = (n: number): number => Number(n >= LOW_FROM ? args['low-bitrate'] : args.bitrate);
const IDLE_SECONDS = args.idle === undefined ? undefined : Number(args.idle);
if (IDLE_SECONDS !== undefined && !(IDLE_SECONDS > 0)) throw new Error(`--idle ${args.idle}: give seconds`);
/** bench.mjs windows (s): the harness defaults, shorter for --quick and for storms (their point is the join). */
const WINDOWS = QUICK ? { idle: 3, warmup: 2, duration: 5 } : { idle: 5, warmup: 5, duration: 15 };
const STORM_WINDOWS = { idle: WINDOWS.idle, warmup: 2, duration: 5 };
/**
 * How long a steady case's server runs with no viewer before the first joins; its no-viewer
 * baseline (RSS and CPU) is the last BASELINE_S of that. The plugin's RSS climbs for about 40 s
 * after Homebridge starts, viewers or not (the ingest case's samples: 106 MB at 1 s, 113 MB from
 * 40 s on, with V8's first memory-reducing collection in between), where Janus's is flat from its
 * first second. With the harness's own 5 s, the baseline was read on that climb, and the RSS "per
 * viewer" carried about 7 MB of start-up, 0.14 MB a viewer at 50.
 */
const BASELINE_S = QUICK ? WINDOWS.idle : 5;
const STEADY_IDLE_S = args.settle === undefined ? (QUICK ? WINDOWS.idle : 45) : Number(args.settle);
if (!(STEADY_IDLE_S >= BASELINE_S)) throw new Error(`--settle ${args.settle}: give at least ${BASELINE_S} seconds`);
const STEADY_WINDOWS = { ...WINDOWS, idle: STEADY_IDLE_S };
/**
 * The ingest case: a server with its camera and no viewer, read for 75 s from 1 s after it is
 * ready, and reported twice from the harness's per-second samples:
 * - the first 30 s (what the harness's own ingest window would read): for the plugin this includes
 *   V8 compiling and tiering up the camera's path and Homebridge announcing itself, one-time costs
 *   that keep its main thread and V8's worker threads busy for about 35 s after start-up;
 * - the last 30 s (45-75 s after ready): what a running home pays, hour after hour.
 * Each steady case reads its server for 5 s before the first viewer too (its RSS baseline), but that
 * is too short for CPU: the harness counts CPU in clock ticks (10 ms), so 5 s of a server near 1 %
 * of a core came out anywhere from 0.4 to 1.2 %.
 */
const INGEST_WINDOWS = { idle: IDLE_SECONDS ?? (QUICK ? 20 : 75), warmup: 0, duration: 1 };
/** The ingest window's two readings, in seconds from its start: start-up, and the steady state. */
const INGEST_EARLY_S = Math.min(30, INGEST_WINDOWS.idle / 2);
const INGEST_STEADY_FROM_S = Math.max(INGEST_EARLY_S, INGEST_WINDOWS.idle - 30);
/**
 * Share links to make, used round-robin: enough that no link holds more than the default
 * per-principal cap (web.maxViewsPerUser, 32) of viewers.
 */
const SHARE_LINKS = Math.max(2, Math.ceil(Math.max(0, ...STEADY, ...STORM) / WEB_DEFAULT_VIEWS_LIMIT));
/**
 * web.maxConnectingViews for the run: every viewer of a storm joins at once from 127.0.0.1, so the
 * address's budget of views still connecting (default 4; a fifth gets 429) must hold the whole
 * storm, as a user with many screens behind one router would set it (and a steady case's viewers too:
 * the harness adds them one by one without waiting for each to connect). The setting stops at
 * CONNECTING_LIMIT_CEILING; a larger storm is refused in part, and the bench says so.
 */
const CONNECTING_VIEWS = Math.min(CONNECTING_LIMIT_CEILING, Math.max(WEB_DEFAULT_CONNECTING_LIMIT, ...STORM, ...STEADY));

interface Case {
  name: string;
  /** ingest: no viewer, a long window; steady: viewers one by one; storm: all at once. */
  kind: 'ingest' | 'steady' | 'storm';
  viewers: number[];
  bitrate: number;
  /** Connect concurrency; 1 = one after another (the harness default). */
  concurrency: number;
}

/** One of the harness's per-second readings of the server. */
interface IdleSample {
  t: number;
  cpuPct: number | null;
  rssMB?: number | null;
}

interface Step {
  viewers: number;
  errors: string[];
  idle?: { serverCpuPct: number | null; serverRssMB: number | null; samples?: IdleSample[] };
  window?: { serverCpuPct: number | null; serverCpuUsPerDeliveredPkt: number | null; seqLossPct: number | null; serverRssMaxMB: number | null; serverRssMB: number | null };
  connectAllSeconds?: number;
  timeToFirstKeyframeMs?: { p50: number | null; max: number | null };
  signalingMs?: { p50: number | null; max: number | null };
  viewersWithoutVideo?: number;
}

interface RunRecord {
  server: Server;
  sweep: number;
  caseName: string;
  file: string;
  steps: Step[];
  stoppedBecause: string | null;
  profiles: string[];
}

function progress(text: string): void {
  process.stderr.write(`[bench:janus] ${text}\n`);
}

/** The median of the finite values; undefined when a measure has none (the table prints "-"). */
function finiteMedian(values: number[]): number | undefined {
  const finite = values.filter(Number.isFinite);
  return finite.length === 0 ? undefined : median(finite);
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

function run(command: string, argv: string[], cwd: string): { ok: boolean; output: string } {
  const result = spawnSync(command, argv, { cwd, encoding: 'utf8', timeout: 600_000 });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}`.slice(-4000) };
}

/** What the harness needs that npm cannot install; every missing piece is named at once. */
function checkPrerequisites(): void {
  const missing: string[] = [];
  if (!existsSync(join(HARNESS_SOURCE, 'bench.mjs'))) missing.push(`the harness at ${HARNESS_SOURCE}`);
  if (!run('/usr/bin/python3', ['-c', "import gi; gi.require_version('GstRtspServer', '1.0')"], PROJECT).ok) {
    missing.push("Debian's /usr/bin/python3 with GStreamer's RTSP server (python3-gi, gir1.2-gst-rtsp-server-1.0)");
  }
  if (!run('taskset', ['-c', '0', 'true'], PROJECT).ok) missing.push('taskset (util-linux)');
  if (SERVERS.includes('janus')) {
    if (!run('sh', ['-c', 'command -v janus'], PROJECT).ok) missing.push('janus (apt-get install janus)');
    if (!run('sh', ['-c', 'command -v gcc'], PROJECT).ok) missing.push('gcc (for the loopback shim Janus needs)');
  }
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 12)) missing.push(`Node >= 22.12 for Homebridge and the plugin (this is ${process.version}; source scripts/node-env.sh)`);
  if (missing.length > 0) throw new Error(`bench:janus cannot run; missing:\n  - ${missing.join('\n  - ')}\n(see ${relative(PROJECT, HARNESS_SOURCE)}/setup.sh)`);
}

/** Copies the harness (not its results, scratch files or dependencies) and installs what it needs. */
function prepareHarness(): void {
  const lock = join(HARNESS, 'package-lock.json');
  const oldLock = existsSync(lock) ? readFileSync(lock, 'utf8') : '';
  mkdirSync(HARNESS, { recursive: true });
  const skip = new Set(['node_modules', 'results', 'run', 'build']);
  cpSync(HARNESS_SOURCE, HARNESS, {
    recursive: true,
    force: true,
    filter: (source) => !skip.has(relative(HARNESS_SOURCE, source).split('/')[0] ?? ''),
  });
  if (oldLock !== readFileSync(lock, 'utf8') || !existsSync(join(HARNESS, 'node_modules/werift/package.json'))) {
    progress(`installing the harness's dependencies in ${relative(PROJECT, HARNESS)}`);
    const offline = run('npm', ['ci', '--offline', '--no-audit', '--no-fund'], HARNESS);
    if (!offline.ok) {
      const online = run('npm', ['ci', '--no-audit', '--no-fund'], HARNESS);
      if (!online.ok) throw new Error(`npm ci failed in ${HARNESS}:\n${online.output}`);
    }
  }
  if (SERVERS.includes('janus')) {
    mkdirSync(join(HARNESS, 'build'), { recursive: true });
    const shim = run('gcc', ['-shared', '-fPIC', '-O2', '-o', 'build/lo-only-ifaddrs.so', 'adapters/lo-only-ifaddrs.c', '-ldl'], HARNESS);
    if (!shim.ok) throw new Error(`could not build the loopback shim:\n${shim.output}`);
  }
}

function ensureBuilt(): void {
  const state = pluginBuildState(PROJECT);
  if (state === 'fresh') return;
  if (args['no-build'] && state === 'stale') {
    progress('warning: src/ is newer than dist/ and --no-build was given; Homebridge runs the older build');
    return;
  }
  progress(`dist/ is ${state}; running npm run build`);
  const build = run('npm', ['run', 'build'], PROJECT);
  if (!build.ok) throw new Error(`npm run build failed:\n${build.output}`);
}

/** Homebridge storage with one always-on camera on the fake camera, and share-link tokens from the plugin's own store. */
async function prepareProject(cameraPort: number, webPort: number): Promise<{ storage: string; tokens: string[] }> {
  const storage = join(SCRATCH, 'hb-storage');
  rmSync(storage, { recursive: true, force: true });
  const cameras = [{ id: CAMERA_ID, name: 'Bench camera', rtspUrl: `rtsp://127.0.0.1:${cameraPort}/cam`, alwaysOn: true, maxViewers: 100 }];
  const web = { port: webPort, maxViewsPerAddress: 1000, maxConnectingViews: CONNECTING_VIEWS };
  writeHomebridgeConfig(storage, { name: 'fanout bench', platform: platformConfig({ cameras, web }) });
  const access = await AccessState.create({ viewers: [], storagePath: storage, cameraIds: () => [CAMERA_ID] });
  const tokens: string[] = [];
  try {
    for (let i = 0; i < SHARE_LINKS; i++) {
      const link = await access.createLink({ cameras: 'all', expiresIn: 'never', label: `bench ${i + 1}`, createdBy: 'bench:janus' });
      tokens.push(link.token);
    }
  } finally {
    await access.stop();
  }
  return { storage, tokens };
}

interface Context {
  cameraPort: number;
  webPort: number;
  storage: string;
  tokens: string[];
  stamp: string;
}

function serverOptions(server: Server, ctx: Context, profileDir: string | undefined): string[] {
  if (server === 'janus') return ['eventLoops=1'];
  const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
  const flags = (args['node-flags'] ?? '').split(' ').filter(Boolean).map(quote);
  const node = [quote(process.execPath), ...flags, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${quote(profileDir)}`] : [])];
  const homebridge = join(PROJECT, 'node_modules/homebridge/bin/homebridge.js');
  const cmd = [...node, quote(homebridge), '-U', quote(ctx.storage), '-P', quote(PROJECT), '--strict-plugin-resolution', '-Q', ...(process.env.BENCH_HB_DEBUG ? ['-D'] : [])].join(' ');
  const base = `http://127.0.0.1:${ctx.webPort}`;
  return [
    `cmd=${cmd}`,
    `cwd=${PROJECT}`,
    `url=${base}/whep/${CAMERA_ID}`,
    `token=${ctx.tokens.join(',')}`,
    `readyUrl=${base}/metrics`,
    'readyMatch=state="live"} 1',
    'readyTimeout=60',
  ];
}

async function runHarness(server: Server, sweep: number, c: Case, ctx: Context): Promise<RunRecord> {
  const name = `${ctx.stamp}-s${sweep + 1}-${c.name}-${server}`;
  const file = join(SCRATCH, 'results', `${name}.json`);
  const profileDir = args['cpu-prof'] && server === 'project' ? join(SCRATCH, 'profiles', name) : undefined;
  const windows = { ingest: INGEST_WINDOWS, steady: STEADY_WINDOWS, storm: STORM_WINDOWS }[c.kind];
  const argv = [
    'bench.mjs', '--server', server === 'janus' ? 'janus' : 'whep',
    '--viewers', c.viewers.join(','),
    '--camera-bitrate', String(c.bitrate),
    '--camera-port', String(ctx.cameraPort),
    '--connect-concurrency', String(c.concurrency),
    '--idle', String(windows.idle), '--warmup', String(windows.warmup), '--duration', String(windows.duration),
    '--out', file,
    '--run-dir', join(SCRATCH, 'run', server),
    ...serverOptions(server, ctx, profileDir).flatMap((opt) => ['--server-opt', opt]),
  ];
  mkdirSync(dirname(file), { recursive: true });
  if (args['dry-run']) {
    console.log(`cd ${HARNESS} && ${process.execPath} ${argv.map((a) => (/^[\w./=,:-]+$/.test(a) ? a : `'${a}'`)).join(' ')}`);
    return { server, sweep, caseName: c.name, file, steps: [], stoppedBecause: null, profiles: [] };
  }
  const log = createWriteStream(join(SCRATCH, 'results', `${name}.log`));
  progress(`sweep ${sweep + 1}/${SWEEPS}: ${c.name} on ${server}`);
  const child = spawn(process.execPath, argv, { cwd: HARNESS, stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk: Buffer) => {
      log.write(chunk);
      // The harness's progress lines, indented; its own table is in the log.
      for (const line of chunk.toString().split('\n')) if (/^\[\s*[\d.]+s\]/.test(line)) process.stderr.write(`    ${line}\n`);
    });
  }
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  log.end();
  if (!existsSync(file)) throw new Error(`the harness wrote no results (exit ${String(code)}); see ${file.replace(/\.json$/, '.log')}`);
  const result = JSON.parse(readFileSync(file, 'utf8')) as { steps: Step[]; stoppedBecause: string | null };
  const profiles = profileDir && existsSync(profileDir) ? readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profileDir, f)) : [];
  return { server, sweep, caseName: c.name, file, steps: result.steps, stoppedBecause: result.stoppedBecause, profiles };
}

// ------------------------------------------------------------------ report

interface Metric {
  label: string;
  /** One number per step, or undefined when the step has none. */
  of: (step: Step) => number | null | undefined;
  digits: number;
}

/** The idle window's per-second samples from `from` s (exclusive) to `to` s. */
function idleSamplesBetween(s: Step, from: number, to: number): IdleSample[] {
  return (s.idle?.samples ?? []).filter((x) => x.t > from && x.t <= to + 0.5);
}

/** Mean CPU % of the idle window's per-second samples from `from` s (exclusive) to `to` s. */
const idleCpuBetween =
  (from: number, to: number) =>
  (s: Step): number | undefined => {
    const inRange = idleSamplesBetween(s, from, to).filter((x) => typeof x.cpuPct === 'number');
    return inRange.length === 0 ? undefined : inRange.reduce((sum, x) => sum + x.cpuPct!, 0) / inRange.length;
  };

/** RSS (MB) of the idle window's per-second samples from `from` s (exclusive) to `to` s, those that have one. */
function idleRssBetween(s: Step, from: number, to: number): number[] {
  return idleSamplesBetween(s, from, to)
    .map((x) => x.rssMB)
    .filter((v): v is number => typeof v === 'number');
}

/**
 * The no-viewer RSS a steady case's viewers are counted above: the median of the idle window's
 * last BASELINE_S per-second samples (the harness's end-of-window figure where it gave none).
 */
function baselineRss(s: Step): number | undefined {
  const rss = idleRssBetween(s, STEADY_IDLE_S - BASELINE_S, STEADY_IDLE_S);
  return rss.length > 0 ? median(rss) : (s.idle?.serverRssMB ?? undefined);
}

/**
 * RSS above the baseline, per viewer: at the window's peak (the harness's own figure, which
 * catches what joining left behind before either server gives it back), and at the window's end
 * (what the server settled to, `window` seconds after the last join).
 */
const rssPerViewer =
  (at: 'serverRssMaxMB' | 'serverRssMB') =>
  (s: Step): number | undefined => {
    const rss = s.window?.[at];
    const base = baselineRss(s);
    return rss != null && base !== undefined ? (rss - base) / s.viewers : undefined;
  };

/**
 * What the RSS per viewer would read against the harness's own baseline, the first BASELINE_S of
 * the idle window (what this bench reported before `--settle`): the start-up climb it includes.
 */
function startUpClimbPerViewer(s: Step): number | undefined {
  if (STEADY_IDLE_S <= BASELINE_S) return undefined;
  const atOldBaseline = idleRssBetween(s, 0, BASELINE_S).at(-1);
  const base = baselineRss(s);
  return atOldBaseline !== undefined && base !== undefined ? (base - atOldBaseline) / s.viewers : undefined;
}

const SERVER_CPU: Metric = { label: 'server CPU %', of: (s) => s.window?.serverCpuPct, digits: 1 };
const TTFK_P50: Metric = { label: 'first keyframe p50 ms', of: (s) => s.timeToFirstKeyframeMs?.p50, digits: 0 };
const LOSS: Metric = { label: 'sequence loss %', of: (s) => s.window?.seqLossPct, digits: 2 };

const STEADY_METRICS: Metric[] = [
  SERVER_CPU,
  { label: 'µs per delivered viewer-packet', of: (s) => s.window?.serverCpuUsPerDeliveredPkt, digits: 1 },
  { label: `no viewer yet, last ${BASELINE_S} s: CPU %`, of: idleCpuBetween(STEADY_IDLE_S - BASELINE_S, STEADY_IDLE_S), digits: 1 },
  { label: 'connect-all s (one by one)', of: (s) => s.connectAllSeconds, digits: 2 },
  TTFK_P50,
  LOSS,
  { label: 'RSS per viewer MB, window peak', of: rssPerViewer('serverRssMaxMB'), digits: 2 },
  { label: 'RSS per viewer MB, window end', of: rssPerViewer('serverRssMB'), digits: 2 },
  { label: `  no viewer: RSS climb ${BASELINE_S}-${STEADY_IDLE_S} s, per viewer`, of: startUpClimbPerViewer, digits: 2 },
];

const INGEST_METRICS: Metric[] = [
  { label: `server CPU %, first ${INGEST_EARLY_S} s after start-up`, of: idleCpuBetween(0, INGEST_EARLY_S), digits: 2 },
  { label: `server CPU %, steady (${INGEST_STEADY_FROM_S}-${INGEST_WINDOWS.idle} s)`, of: idleCpuBetween(INGEST_STEADY_FROM_S, INGEST_WINDOWS.idle), digits: 2 },
  { label: 'server CPU %, whole window', of: (s) => s.idle?.serverCpuPct, digits: 2 },
  { label: 'server RSS MB', of: (s) => s.idle?.serverRssMB, digits: 1 },
];

const STORM_METRICS: Metric[] = [
  { label: 'connect-all s (all at once)', of: (s) => s.connectAllSeconds, digits: 2 },
  { label: 'signalling max ms', of: (s) => s.signalingMs?.max, digits: 0 },
  TTFK_P50,
  { label: 'first keyframe max ms', of: (s) => s.timeToFirstKeyframeMs?.max, digits: 0 },
  { label: 'viewers without video', of: (s) => s.viewersWithoutVideo, digits: 0 },
  SERVER_CPU,
  LOSS,
];

interface Row {
  label: string;
  janus?: number;
  project?: number;
  ratio?: number;
  sweeps: number;
}

function rowsFor(records: RunRecord[], caseName: string, n: number, metrics: Metric[]): Row[] {
  const steps = (server: Server): Step[] =>
    records.filter((r) => r.caseName === caseName && r.server === server).flatMap((r) => r.steps.filter((s) => s.viewers === n));
  return metrics.map((m) => {
    const values = (server: Server): number[] => steps(server).map(m.of).filter((v): v is number => typeof v === 'number');
    const janus = finiteMedian(values('janus'));
    const project = finiteMedian(values('project'));
    const row: Row = { label: m.label, sweeps: Math.min(...SERVERS.map((server) => values(server).length)) };
    if (janus !== undefined) row.janus = Number(janus.toFixed(m.digits));
    if (project !== undefined) row.project = Number(project.toFixed(m.digits));
    if (janus !== undefined && project !== undefined && janus > 0) row.ratio = Number((project / janus).toFixed(2));
    return row;
  });
}

function printTable(sections: Array<{ title: string; rows: Row[] }>): void {
  const head = ['', 'janus', 'project', 'project/janus', 'sweeps'];
  const lines: string[][] = [head];
  for (const section of sections) {
    lines.push([section.title, '', '', '', '']);
    for (const row of section.rows) {
      const cell = (v: number | undefined): string => (v === undefined ? '-' : String(v));
      lines.push([`  ${row.label}`, cell(row.janus), cell(row.project), row.ratio === undefined ? '-' : `${row.ratio}×`, String(row.sweeps)]);
    }
  }
  const widths = head.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  for (const l of lines) console.log(l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Self time per function over Homebridge's whole life (start-up included), top entries. */
function summarizeProfiles(files: string[], top = 15): string[] {
  const self = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] };
    const usPerSample = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);
    for (const node of profile.nodes) {
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)') continue;
      const where = url ? `${url.replace(/^file:\/\//, '').replace(`${PROJECT}/`, '')}:${lineNumber + 1}` : '';
      const key = `${functionName || '(anonymous)'} ${where}`.trim();
      const us = (node.hitCount ?? 0) * usPerSample;
      self.set(key, (self.get(key) ?? 0) + us);
      total += us;
    }
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, us]) => `${((100 * us) / Math.max(1, total)).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${key}`);
}

async function main(): Promise<void> {
  if (SERVERS.length === 0) throw new Error('--servers must name janus, project or both');
  checkPrerequisites();
  if (Math.max(0, ...STORM) > CONNECTING_LIMIT_CEILING) {
    progress(`warning: a storm above ${CONNECTING_LIMIT_CEILING} exceeds web.maxConnectingViews' ceiling; the project answers the rest 429 until some have connected`);
  }
  prepareHarness();
  if (SERVERS.includes('project')) ensureBuilt();
  const cameraPort = await freePort();
  const webPort = await freePort();
  const { storage, tokens } = SERVERS.includes('project') ? await prepareProject(cameraPort, webPort) : { storage: '', tokens: [] };
  const ctx: Context = { cameraPort, webPort, storage, tokens, stamp: new Date().toISOString().replace(/[:.]/g, '-') };

  const cases: Case[] = [];
  if (!args['no-ingest']) cases.push({ name: `ingest-${args.bitrate}k`, kind: 'ingest', viewers: [0], bitrate: Number(args.bitrate), concurrency: 1 });
  for (const bitrate of [...new Set(STEADY.map(bitrateFor))]) {
    const viewers = STEADY.filter((n) => bitrateFor(n) === bitrate);
    cases.push({ name: `steady-${bitrate}k`, kind: 'steady', viewers, bitrate, concurrency: 1 });
  }
  for (const n of STORM) cases.push({ name: `storm-${n}`, kind: 'storm', viewers: [n], bitrate: bitrateFor(n), concurrency: n });

  const records: RunRecord[] = [];
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    // Alternate which server goes first, so neither always gets the cooler (or warmer) machine.
    const order = sweep % 2 === 0 ? SERVERS : [...SERVERS].reverse();
    for (const c of cases) for (const server of order) records.push(await runHarness(server, sweep, c, ctx));
  }
  if (args['dry-run']) return;

  const sections: Array<{ title: string; rows: Row[] }> = [];
  for (const c of cases) {
    for (const n of c.viewers) {
      const title = {
        ingest: `ingest: camera, no viewer, ${c.bitrate} kbit/s, ${INGEST_WINDOWS.idle} s`,
        steady: `N=${n}, ${c.bitrate} kbit/s`,
        storm: `connect storm: ${n} viewers at once, ${c.bitrate} kbit/s`,
      }[c.kind];
      sections.push({ title, rows: rowsFor(records, c.name, n, { ingest: INGEST_METRICS, steady: STEADY_METRICS, storm: STORM_METRICS }[c.kind]) });
    }
  }
  console.log(`\nfan-out, medians over ${SWEEPS} sweep${SWEEPS === 1 ? '' : 's'} (Janus ${SERVERS.includes('janus') ? 'event_loops=1' : 'not run'}):\n`);
  printTable(sections);
  const trouble = records.flatMap((r) => [
    ...r.steps.flatMap((s) => s.errors.map((e) => `${r.server} ${r.caseName} sweep ${r.sweep + 1} N=${s.viewers}: ${e}`)),
    ...(r.stoppedBecause ? [`${r.server} ${r.caseName} sweep ${r.sweep + 1}: ${r.stoppedBecause}`] : []),
  ]);
  if (trouble.length > 0) console.log(`\nerrors and early stops:\n  ${trouble.slice(0, 30).join('\n  ')}`);

  if (args['cpu-prof']) {
    for (const c of cases) {
      const files = records.filter((r) => r.caseName === c.name).flatMap((r) => r.profiles);
      if (files.length === 0) continue;
      console.log(`\nproject CPU profile, ${c.name} (self time, Homebridge start-up included; ${files.length} file${files.length === 1 ? '' : 's'}):`);
      for (const line of summarizeProfiles(files)) console.log(`  ${line}`);
      console.log(`  files: ${dirname(files[0]!)}`);
    }
  }
  const summary = join(SCRATCH, 'results', `${ctx.stamp}-summary.json`);
  writeFileSync(summary, `${JSON.stringify({ sweeps: SWEEPS, servers: SERVERS, cases, sections, runs: records.map((r) => ({ ...r, steps: undefined })) }, null, 2)}\n`);
  console.log(`\nraw results (one harness JSON per server, case and sweep):\n  ${records.map((r) => r.file).join('\n  ')}\nsummary: ${summary}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
