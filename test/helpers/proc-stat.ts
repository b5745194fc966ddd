/**
 * What Linux's /proc/<pid>/stat says of a process, for tests and benchmarks: its command, state,
 * parent and CPU time. One parser, because the format has a trap: the command sits in parentheses
 * and may itself contain spaces and parentheses, so the fields are counted from the last ')'.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime and stime (100 on every Linux this runs on). */
const CLOCK_TICKS = 100;

export interface ProcStat {
  pid: number;
  command: string;
  /** R, S, D, Z (zombie), T... */
  state: string;
  parent: number;
  /** utime + stime, seconds. */
  cpuSeconds: number;
}

/** The process's stat line, parsed; undefined once it is gone. */
export function readProcStat(pid: number): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = stat.lastIndexOf(')');
  const fields = stat.slice(close + 2).split(' ');
  return {
    pid,
    command: stat.slice(stat.indexOf('(') + 1, close),
    state: fields[0] ?? '',
    parent: Number(fields[1]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
  };
}

/** utime + stime of a running process, seconds; throws when it is gone (a measurement would be wrong). */
export function cpuSeconds(pid: number): number {
  const stat = readProcStat(pid);
  if (!stat) throw new Error(`process ${pid} is gone`);
  return stat.cpuSeconds;
}

/** The share of one core a process used over the next `ms` (100 = one core). */
export async function cpuPercentOver(pid: number, ms: number): Promise<number> {
  const start = cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ((cpuSeconds(pid) - start) / ((performance.now() - t0) / 1000)) * 100;
}

export interface SchedTimes {
  /** Seconds its threads ran on a CPU. */
  runSeconds: number;
  /**
   * Seconds its threads were ready to run but waited for a CPU (the run queue). High next to a low
   * CPU share means the machine is short of cores; low means the process was waiting on something
   * else (input, a lock, a pipe).
   */
  waitSeconds: number;
}

/**
 * Run and run-queue times of every thread of a process, summed, from /proc/<pid>/task/<tid>/schedstat
 * (nanoseconds; present when the kernel has schedstats, as Debian's does). Undefined once it is gone.
 */
export function readSchedTimes(pid: number): SchedTimes | undefined {
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let run = 0;
  let wait = 0;
  for (const tid of threads) {
    try {
      const [onCpu, queued] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
      run += onCpu ?? 0;
      wait += queued ?? 0;
    } catch {
      // The thread ended between the listing and the read: it no longer counts.
    }
  }
  return { runSeconds: run / 1e9, waitSeconds: wait / 1e9 };
}
