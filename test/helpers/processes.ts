// A registry of every child process (and other resource) the tests start, so that nothing
// outlives a test file even when an assertion throws half-way: each entry is killed in a
// node:test `after` hook at the file's root, on process exit, and on SIGINT/SIGTERM/SIGHUP.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { after } from 'node:test';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnTrackedOptions extends Omit<SpawnOptions, 'stdio' | 'detached'> {
  /** Name used in error messages; defaults to the command's base name. */
  name?: string;
  /** How long `kill()` waits after SIGTERM before SIGKILL. Default 2000 ms. */
  killGraceMs?: number;
  /** Pipe stdin (default true). Some tools (ffmpeg) read keys from a terminal stdin. */
  stdin?: 'pipe' | 'ignore';
  /** Keep at most this many characters of stdout/stderr for diagnostics. Default 64 KiB. */
  keepOutputChars?: number;
}

export interface TrackedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** The exit status once it has exited, else undefined. */
  exitInfo(): ExitInfo | undefined;
  /** The last `keepOutputChars` of stdout / stderr. */
  stdoutText(): string;
  stderrText(): string;
  /** SIGTERM, then SIGKILL after the grace period; resolves once it has exited. */
  kill(graceMs?: number): Promise<ExitInfo>;
}

type Cleanup = () => unknown;

const tracked = new Set<TrackedProcess>();
const cleanups = new Set<Cleanup>();

/** Spawns a child that the registry will kill when the test file ends, whatever happens. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnTrackedOptions = {}): TrackedProcess {
  const { name = command.split('/').pop() ?? command, killGraceMs = 2000, stdin = 'pipe', keepOutputChars = 65536, ...rest } =
    options;
  // Its own process group, so kill() also reaches grandchildren (e.g. the chromium shell
  // wrapper's real browser, or a shell's pipeline).
  const child = spawn(command, args, { ...rest, stdio: [stdin, 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  const keep = (prev: string, chunk: Buffer): string => {
    const next = prev + chunk.toString('utf8');
    return next.length > keepOutputChars ? next.slice(next.length - keepOutputChars) : next;
  };
  child.stdout?.on('data', (c: Buffer) => (stdout = keep(stdout, c)));
  child.stderr?.on('data', (c: Buffer) => (stderr = keep(stderr, c)));
  // A child that is killed while we write to it raises EPIPE on stdin; that is expected.
  child.stdin?.on('error', () => undefined);

  // 'exit' can come before the last of the output has been read (Node's docs say so, and on a
  // loaded machine ffprobe's whole JSON was still in the pipe): wait for both pipes to end too,
  // but not for ever, since a grandchild in the process group may hold them open.
  const drained = Promise.all(
    [child.stdout, child.stderr].map((stream) => (stream ? new Promise<void>((done) => stream.once('close', () => done())) : Promise.resolve())),
  );
  let info: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      const finished = { code, signal };
      let timer: NodeJS.Timeout | undefined;
      const cap = new Promise<void>((done) => {
        timer = setTimeout(done, 2000);
      });
      void Promise.race([drained, cap]).then(() => {
        clearTimeout(timer);
        info = finished;
        resolve(finished);
      });
    });
    child.once('error', (err) => {
      stderr += `\n[spawn error] ${err.message}`;
      // 'exit' may never come when the spawn itself failed.
      if (child.pid === undefined) {
        info = { code: -1, signal: null };
        resolve(info);
      }
    });
  });

  const proc: TrackedProcess = {
    name,
    child,
    pid: child.pid ?? -1,
    exited,
    exitInfo: () => info,
    stdoutText: () => stdout,
    stderrText: () => stderr,
    kill: async (graceMs = killGraceMs) => {
      if (info) return info;
      signalGroup(child, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  tracked.add(proc);
  void exited.then(() => tracked.delete(proc));
  ensureHooks();
  return proc;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** Registers something to undo at the end of the test file (browsers, servers, temp dirs). */
export function registerCleanup(fn: Cleanup): () => void {
  cleanups.add(fn);
  ensureHooks();
  return () => {
    cleanups.delete(fn);
  };
}

/** Runs every registered cleanup and kills every tracked process still running. */
export async function cleanupAll(): Promise<void> {
  const fns = [...cleanups].reverse();
  cleanups.clear();
  for (const fn of fns) {
    try {
      await fn();
    } catch (err) {
      console.error('[processes] cleanup failed:', err);
    }
  }
  await Promise.all([...tracked].map((p) => p.kill(1000)));
}

/** Number of tracked processes still running (a test can assert it reaches 0). */
export function runningProcesses(): readonly TrackedProcess[] {
  return [...tracked];
}

let hooksInstalled = false;

function ensureHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // Last resort: synchronous SIGKILL when the process exits for any reason.
  process.once('exit', () => {
    for (const p of tracked) signalGroup(p.child, 'SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const p of tracked) signalGroup(p.child, 'SIGKILL');
      // Re-raise so the default action (or another library's handler) still ends the process.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
  }
}

// Under node:test, hook the root suite of the test file that imported this module, so
// leftovers are killed when the file's tests finish (the event loop would otherwise stay
// alive on their pipes). This must run at import time: an `after` registered from inside
// a running test would belong to that test and fire too early.
function underNodeTest(): boolean {
  if (process.env.NODE_TEST_CONTEXT !== undefined) return true;
  if (process.execArgv.includes('--test') || process.argv.includes('--test')) return true;
  return /\.test\.[cm]?[jt]s$/.test(process.argv[1] ?? '');
}

if (underNodeTest()) {
  after(cleanupAll);
}
