/**
 * Steers the loopback device's receive processing to another CPU (Receive Packet Steering), for
 * `BENCH_RPS=1 npm run bench:webrtc`.
 *
 * Why: a UDP datagram sent on `lo` is delivered into the receiving socket in softirq context on the
 * sender's own core, so on one machine the server pays for its viewers' kernels too (the shared
 * fan-out harness's README says the same of every server it measures). On a real network that half
 * runs on the viewers' devices. With RPS the sender's core only queues each datagram to the chosen
 * CPU's backlog (and interrupts it), which is closer to a network card's transmit, and still a
 * little dearer: the figures stay on the pessimistic side.
 *
 * It is a machine-wide setting, so it needs root, is put back exactly as it was when the bench ends
 * (also on SIGINT and SIGTERM), and is never on unless asked for.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export const LOOPBACK_RPS_PATH = '/sys/class/net/lo/queues/rx-0/rps_cpus';

/** The hexadecimal CPU mask sysfs takes for one CPU: 0 -> "1", 1 -> "2", 4 -> "10". */
export function cpuMask(cpu: number): string {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu > 1023) throw new RangeError(`not a CPU number: ${String(cpu)}`);
  // Groups of 32 CPUs are comma-separated, most significant first, as sysfs prints them.
  const lowerGroups = Array<string>(Math.floor(cpu / 32)).fill('00000000');
  return [(2 ** (cpu % 32)).toString(16), ...lowerGroups].join(',');
}

export interface LoopbackSteering {
  /** What the bench's header says of it. */
  readonly description: string;
  /** Puts the mask back as it was; safe to call more than once. */
  restore(): void;
}

interface SysfsFile {
  read(): string;
  write(value: string): void;
}

const sysfs = (path: string): SysfsFile => ({
  read: () => readFileSync(path, 'utf8').trim(),
  write: (value) => writeFileSync(path, `${value}\n`),
});

/**
 * Sends `lo`'s receive processing to `cpu` until `restore()`. Throws, with what to do, where the
 * setting cannot be read or written (not root, no sysfs, a kernel without RPS).
 */
export function steerLoopbackReceive(cpu: number, file: SysfsFile = sysfs(LOOPBACK_RPS_PATH)): LoopbackSteering {
  const wanted = cpuMask(cpu);
  let before: string;
  try {
    before = file.read();
    file.write(wanted);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`BENCH_RPS=1 needs root and a kernel with Receive Packet Steering (${LOOPBACK_RPS_PATH}): ${reason}`);
  }
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    file.write(before);
  };
  return { description: `loopback receive processing on CPU ${cpu} (RPS mask ${wanted}; it was ${before})`, restore };
}

/** steerLoopbackReceive, undone also when the process is interrupted or terminated. */
export function steerLoopbackReceiveUntilExit(cpu: number): LoopbackSteering {
  const steering = steerLoopbackReceive(cpu);
  const onSignal = (signal: NodeJS.Signals): void => {
    steering.restore();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', steering.restore);
  return {
    description: steering.description,
    restore: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.off('exit', steering.restore);
      steering.restore();
    },
  };
}
