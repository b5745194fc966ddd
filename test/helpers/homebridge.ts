/**
 * Starts a real Homebridge 2.x with this plugin, in a temporary storage directory, bound to
 * 127.0.0.1 (the bridge and its mDNS advertiser: the test machines may only talk to loopback).
 *
 *   const hb = await startHomebridge({ platform: platformConfig({ cameras: [...], web: { port } }) });
 *   await hb.waitForLog(/adding accessory/);
 *   hb.cachedAccessories();            // what Homebridge saved for the next start
 *   await hb.restart({ ...newPlatformBlock });   // same storage: cached accessories persist
 *   await hb.stop();
 *
 * Homebridge loads the plugin's package `main` (dist/index.js), so the plugin must be built; the
 * helper builds it once if dist/ is missing. Every Homebridge started here is killed when the test
 * process exits, even after a failed test; call `stopAllHomebridges()` in `after()` to do it sooner.
 *
 * Importing this helper also registers file-wide test hooks (print-on-failure.ts): when a test
 * fails, the Homebridge log lines written during that test (plugin debug lines and ffmpeg's
 * complaints included) are printed under it, so a failure on CI names its cause instead of only its
 * symptom.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_PIN, randomBridgeUsername, writeHomebridgeConfig, type PlatformBlock } from './homebridge-config.js';
import { pluginBuildState } from './plugin-build.js';
import { printLogsOnFailure } from './print-on-failure.js';

export { DEFAULT_PIN, platformConfig, randomBridgeUsername, writeHomebridgeConfig, type PlatformBlock, type PlatformSettings } from './homebridge-config.js';

export const PLUGIN_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const HOMEBRIDGE_BIN = join(PLUGIN_DIR, 'node_modules/homebridge/bin/homebridge.js');

/** "Homebridge v2.4.0 (HAP v2.2.3) (Name) is running on port 45755." */
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');
const RUNNING_LINE = /Homebridge v\S+ \(HAP v\S+\) \((.*)\) is running on port (\d+)/;

export interface HomebridgeOptions {
  /** The plugin's platform block, `null` for a config.json without one. Default: a bare block. */
  platform?: PlatformBlock | null;
  /** Merged over the generated config.json (e.g. `{ platforms: [...] }` for several blocks). */
  extraConfig?: Record<string, unknown>;
  /** `-D`: debug lines are captured too (default true, so redaction tests see everything). */
  debug?: boolean;
  /** How long to wait for "is running on port" (default 20 s). */
  startTimeoutMs?: number;
  /** Reuse a storage directory (default: a new temporary one, removed by `stop({ removeStorage })`). */
  storagePath?: string;
  /**
   * Names of bridges that must also report "is running" before `start` resolves: child bridges
   * (their `_bridge.name`, or the platform's `name`).
   */
  waitForBridges?: string[];
  /**
   * Where Homebridge looks for plugins (`-P`, with `--strict-plugin-resolution`). Default: this
   * checkout itself. A folder of installed (or symlinked) plugins works too (see config-ui.ts).
   */
  pluginPath?: string;
  /**
   * `false`: use the config.json already in `storagePath` as it is, never write one (for a
   * config.json that another program, such as the Homebridge UI, owns). Default true.
   */
  writeConfig?: boolean;
}

export interface CachedAccessory {
  plugin: string;
  platform: string;
  displayName: string;
  UUID: string;
  category: number;
  context: Record<string, unknown>;
  services: Array<{ UUID: string; characteristics: Array<{ UUID: string; displayName: string; value: unknown }> }>;
}

export interface WaitOptions {
  /** Search from this line index of `lines` (default: the start of the current run). */
  since?: number;
}

export class HomebridgeProcess {
  /** Every output line (stdout and stderr, in arrival order) of every run of this instance. */
  readonly lines: string[] = [];
  /** Index in `lines` where the current run's output starts. */
  runStart = 0;
  bridgePort = 0;
  readonly pin = DEFAULT_PIN;
  readonly username: string;
  readonly storagePath: string;
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  private waiters = new Set<() => void>();
  private platform: PlatformBlock | null;
  private readonly ownsStorage: boolean;

  constructor(private readonly options: HomebridgeOptions) {
    everyInstance.add(this);
    this.ownsStorage = !options.storagePath;
    this.storagePath = options.storagePath ?? mkdtempSync(join(tmpdir(), 'hb-webrtc-'));
    this.username = randomBridgeUsername();
    this.platform = options.platform === undefined ? { platform: 'WebRTCCameras' } : options.platform;
  }

  /** The current run's lines. */
  runLines(): string[] {
    return this.lines.slice(this.runStart);
  }

  output(): string {
    return this.lines.join('\n');
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Writes config.json: the bridge on 127.0.0.1 with an ephemeral port, only this plugin loaded. */
  writeConfig(platform: PlatformBlock | null = this.platform): void {
    this.platform = platform;
    writeHomebridgeConfig(this.storagePath, { name: 'WebRTC Test Bridge', username: this.username, pin: this.pin, platform, extra: this.options.extraConfig });
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('Homebridge is already running');
    ensurePluginBuilt();
    if (this.options.writeConfig !== false) this.writeConfig();
    this.runStart = this.lines.length;
    const pluginPath = this.options.pluginPath ?? PLUGIN_DIR;
    const args = [HOMEBRIDGE_BIN, '-U', this.storagePath, '-P', pluginPath, '--strict-plugin-resolution', '-I', '-Q', '-T'];
    if (this.options.debug !== false) args.push('-D');
    const env = { ...process.env };
    // The test runner's markers would make a child Node think it is a test file.
    delete env['NODE_TEST_CONTEXT'];
    delete env['NODE_OPTIONS'];
    const child = spawn(process.execPath, args, {
      cwd: this.storagePath,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: stopping kills child bridges too, even when Homebridge cannot.
      detached: true,
    });
    this.child = child;
    live.add(this);
    this.exited = new Promise((done) => {
      const finished = (code: number | null) => {
        live.delete(this);
        this.notify();
        done(code);
      };
      child.once('exit', finished);
      child.once('error', (error) => {
        this.lines.push(`homebridge helper: could not start Homebridge: ${error.message}`);
        finished(null);
      });
    });
    this.collect(child.stdout);
    this.collect(child.stderr);

    const timeoutMs = this.options.startTimeoutMs ?? 20_000;
    try {
      const line = await this.waitForLog(RUNNING_LINE, timeoutMs);
      this.bridgePort = Number(RUNNING_LINE.exec(line)?.[2]);
      for (const name of this.options.waitForBridges ?? []) {
        await this.waitForLog(new RegExp(`\\(HAP v\\S+\\) \\(${escapeRegExp(name)}\\) is running on port \\d+`), timeoutMs);
      }
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  private collect(stream: NodeJS.ReadableStream | null): void {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n/);
      partial = parts.pop() ?? '';
      // Strip colour codes in case a child bridge forces them.
      for (const part of parts) this.lines.push(part.replace(ANSI_COLOUR, ''));
      this.notify();
    });
    stream.on('end', () => {
      if (partial) this.lines.push(partial);
      partial = '';
      this.notify();
    });
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /**
   * Resolves with the first line (of the current run, by default) matching `pattern`. Rejects when
   * Homebridge exits first or after `timeoutMs`, with the captured log in the error message.
   */
  waitForLog(pattern: RegExp, timeoutMs = 10_000, options: WaitOptions = {}): Promise<string> {
    const since = options.since ?? this.runStart;
    return new Promise((resolvePromise, reject) => {
      const finish = (fn: () => void) => {
        this.waiters.delete(check);
        clearTimeout(timer);
        fn();
      };
      const check = () => {
        const found = this.lines.slice(since).find((line) => pattern.test(line));
        if (found !== undefined) finish(() => resolvePromise(found));
        else if (!this.running) finish(() => reject(new Error(`Homebridge exited before logging ${pattern}.\n${this.tail()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`Homebridge did not log ${pattern} within ${timeoutMs} ms.\n${this.tail()}`))), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  private tail(): string {
    return `--- Homebridge log (${this.storagePath}) ---\n${this.runLines().slice(-80).join('\n')}\n---`;
  }

  /** SIGTERM (Homebridge saves its cache and tears down child bridges), then SIGKILL after `graceMs`. */
  async stop(options: { graceMs?: number; removeStorage?: boolean } = {}): Promise<void> {
    const child = this.child;
    if (child && this.running && child.pid) {
      // Only Homebridge itself: it tears its child bridges down in order (signalling the whole group
      // at once makes it wait out its 5 s force-exit timer).
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((done) => {
        timer = setTimeout(() => {
          if (child.pid) signalGroup(child.pid, 'SIGKILL');
          done();
        }, options.graceMs ?? 8000);
      });
      await Promise.race([this.exited, killed]);
      clearTimeout(timer);
      await this.exited;
    }
    // A child bridge can outlive its parent for a moment; make sure the group is gone.
    if (child?.pid) signalGroup(child.pid, 'SIGKILL');
    this.child = undefined;
    if (options.removeStorage && this.ownsStorage) rmSync(this.storagePath, { recursive: true, force: true });
  }

  /** Stops and starts again with the same storage (cached accessories persist), optionally a new block. */
  async restart(platform?: PlatformBlock | null): Promise<void> {
    await this.stop();
    if (platform !== undefined) this.platform = platform;
    await this.start();
  }

  /** Names of the cached-accessory files: `cachedAccessories` and `cachedAccessories.<CHILD MAC>`. */
  cacheFiles(): string[] {
    const dir = join(this.storagePath, 'accessories');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((name) => /^cachedAccessories(\.[0-9A-F]+)?$/.test(name));
  }

  /**
   * The accessories Homebridge cached on disk: of the main bridge, or of the child bridge with that
   * MAC user name. Homebridge writes the file when accessories are (un)registered and on shutdown.
   */
  cachedAccessories(bridgeUsername?: string): CachedAccessory[] {
    const name = bridgeUsername ? `cachedAccessories.${bridgeUsername.replace(/:/g, '').toUpperCase()}` : 'cachedAccessories';
    const file = join(this.storagePath, 'accessories', name);
    if (!existsSync(file)) return [];
    return JSON.parse(readFileSync(file, 'utf8')) as CachedAccessory[];
  }
}

/** Starts Homebridge and resolves once it logs "is running on port". */
export async function startHomebridge(options: HomebridgeOptions = {}): Promise<HomebridgeProcess> {
  const hb = new HomebridgeProcess(options);
  await hb.start();
  return hb;
}

const live = new Set<HomebridgeProcess>();
/** Every instance of this test file, running or not: a failed test prints what each one logged. */
const everyInstance = new Set<HomebridgeProcess>();
const FAILURE_LOG_LINES = 400;
printLogsOnFailure(everyInstance, {
  logged: (hb) => hb.lines.length,
  report: (hb, since, testName) => {
    const lines = hb.lines.slice(since);
    if (lines.length === 0) return undefined;
    const shown = lines.slice(-FAILURE_LOG_LINES);
    const cut = lines.length - shown.length;
    return [
      `----- Homebridge log (${hb.storagePath}) during the failed test "${testName}"${cut ? `, last ${shown.length} of ${lines.length} lines` : ''} -----`,
      ...shown,
      '----- end of Homebridge log -----',
    ].join('\n');
  },
});

/** Stops every Homebridge this helper started; for `after()`. */
export async function stopAllHomebridges(): Promise<void> {
  await Promise.all([...live].map((hb) => hb.stop()));
}

process.on('exit', () => {
  // Last resort (synchronous): a failed or interrupted test must not leave Homebridge running.
  for (const hb of live) if (hb.pid) signalGroup(hb.pid, 'SIGKILL');
});

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

let buildChecked = false;

/**
 * Homebridge loads dist/index.js. Builds once when it is missing; a failed build is one clear error
 * (not a Homebridge that hangs or complains about a missing module). A dist/ older than src/ is
 * only reported: rebuilding under other running tests would pull dist/ from under them.
 */
export function ensurePluginBuilt(): void {
  if (buildChecked) return;
  const entry = join(PLUGIN_DIR, 'dist/index.js');
  const state = pluginBuildState(PLUGIN_DIR);
  if (state === 'missing') {
    process.stderr.write('homebridge helper: dist/index.js is missing; running `npm run build` once\n');
    const result = spawnSync('npm', ['run', 'build'], { cwd: PLUGIN_DIR, encoding: 'utf8', timeout: 180_000 });
    if (!existsSync(entry)) {
      throw new Error(
        `The plugin is not built (dist/index.js is missing) and \`npm run build\` did not produce it (exit ${String(result.status)}).\n` +
          `${(result.stdout ?? '').slice(-3000)}${(result.stderr ?? '').slice(-3000)}`,
      );
    }
  } else if (state === 'stale') {
    process.stderr.write('homebridge helper: warning: src/ is newer than dist/; run `npm run build` so Homebridge tests the current code\n');
  }
  buildChecked = true;
}

