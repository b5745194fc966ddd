// The process registry and port helpers that every other test relies on for cleanup.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { getFreePort, getFreePorts, getFreeUdpPort, isPortOpen, waitForPort } from '../helpers/ports.js';
import { readProcStat, readSchedTimes } from '../helpers/proc-stat.js';
import { cleanupAll, registerCleanup, runningProcesses, spawnTracked } from '../helpers/processes.js';

/** Running, or at least not yet a zombie (a killed orphan may wait unreaped for a while). */
const alive = (pid: number): boolean => {
  const state = readProcStat(pid)?.state;
  return state !== undefined && state !== 'Z';
};

describe('processes', () => {
  test('kill() sends SIGTERM, then SIGKILL to a child that ignores it', async () => {
    const stubborn = spawnTracked('sh', ['-c', 'trap "" TERM; echo ready; while :; do sleep 0.1; done'], { killGraceMs: 300 });
    await new Promise((r) => stubborn.child.stdout!.once('data', r));
    const started = Date.now();
    const exit = await stubborn.kill();
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(Date.now() - started >= 250);
    assert.ok(!runningProcesses().includes(stubborn));
  });

  test('keeps the tail of stdout/stderr and reports the exit', async () => {
    const p = spawnTracked('sh', ['-c', 'echo out; echo err >&2; exit 3']);
    const exit = await p.exited;
    assert.equal(exit.code, 3);
    assert.equal(p.stdoutText(), 'out\n');
    assert.equal(p.stderrText(), 'err\n');
  });

  test('a command that does not exist resolves exited instead of hanging', async () => {
    const p = spawnTracked('/nonexistent/tool', []);
    const exit = await p.exited;
    assert.equal(exit.code, -1);
    assert.match(p.stderrText(), /ENOENT/);
  });

  test('cleanupAll() runs registered cleanups and kills whole process groups', async () => {
    const sh = spawnTracked('sh', ['-c', 'sleep 300 & echo $!; wait']);
    const grandchild = Number(await new Promise<string>((r) => sh.child.stdout!.once('data', (d: Buffer) => r(d.toString()))));
    let cleaned = false;
    registerCleanup(() => {
      cleaned = true;
    });
    await cleanupAll();
    assert.ok(cleaned);
    assert.equal(runningProcesses().length, 0);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(!alive(sh.pid) && !alive(grandchild), 'the shell and its sleep are gone');
  });

  test('processes a test file leaves running are killed when that file ends', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/leaky.fixture.ts', import.meta.url));
    // Without our NODE_TEST_CONTEXT the child runs as a top-level test run and prints TAP.
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', fixture], {
      timeout: 30_000,
      env,
    });
    const match = /PIDS (\d+) (\d+) (\d+)/.exec(stdout);
    assert.ok(match, `no PIDS line in:\n${stdout}`);
    const pids = match.slice(1).map(Number);
    await new Promise((r) => setTimeout(r, 200));
    for (const pid of pids) assert.ok(!alive(pid), `pid ${pid} survived the test file`);
  });
});

describe('proc-stat', () => {
  test('readSchedTimes counts a busy thread as running and a sleeping one as neither', async () => {
    const busy = spawnTracked('sh', ['-c', 'while :; do :; done']);
    const idle = spawnTracked('sleep', ['30']);
    try {
      const busyBefore = readSchedTimes(busy.child.pid!)!;
      const idleBefore = readSchedTimes(idle.child.pid!)!;
      await new Promise((r) => setTimeout(r, 600));
      const busyAfter = readSchedTimes(busy.child.pid!)!;
      const idleAfter = readSchedTimes(idle.child.pid!)!;
      // Run + wait: a thread that always wants a CPU is on one or queued for one the whole time.
      const busyWanted = busyAfter.runSeconds - busyBefore.runSeconds + busyAfter.waitSeconds - busyBefore.waitSeconds;
      assert.ok(busyWanted > 0.3, `busy loop ran or waited ${busyWanted.toFixed(3)} s of 0.6`);
      assert.ok(idleAfter.runSeconds - idleBefore.runSeconds < 0.05, 'sleep ran');
      assert.ok(idleAfter.waitSeconds - idleBefore.waitSeconds < 0.05, 'sleep waited for a CPU');
    } finally {
      await Promise.all([busy.kill(), idle.kill()]);
    }
    assert.equal(readSchedTimes(busy.child.pid!), undefined, 'a process that is gone has no times');
  });
});

describe('ports', () => {
  test('getFreePort / getFreePorts / getFreeUdpPort give usable, distinct ports', async () => {
    const ports = await getFreePorts(5);
    assert.equal(new Set(ports).size, 5);
    const port = await getFreePort();
    assert.ok(port > 1024 && port < 65536);
    assert.ok((await getFreeUdpPort()) > 1024);
    assert.equal(await isPortOpen(port), false);
    const server = createServer().listen(port, '127.0.0.1');
    await waitForPort(port, { timeoutMs: 2000 });
    assert.equal(await isPortOpen(port), true);
    await new Promise((r) => server.close(r));
    await assert.rejects(waitForPort(port, { timeoutMs: 200 }), /nothing listening/);
  });

  // A test that takes a port for its web server and then starts a camera that takes one too must
  // never get the same port twice: the kernel may hand a port it just handed out again (seen under
  // load: Homebridge could not listen on the port the camera had been given).
  test('never hands the same port out twice in one process, one at a time or several at once', async () => {
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const port = await getFreePort();
      assert.ok(!seen.has(port), `port ${port} handed out twice (after ${i} others)`);
      seen.add(port);
    }
    const several = await getFreePorts(50);
    assert.equal(new Set(several).size, 50);
    for (const port of several) assert.ok(!seen.has(port), `port ${port} handed out twice`);
  });
});
