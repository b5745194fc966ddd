// Shared bits of the RTSP client tests: short timeouts, a recording logger, and an opener that
// captures every handler call.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { UpstreamSession } from '../../src/media/types.js';
import { RtspError, type RtspErrorCode } from '../../src/rtsp/errors.js';
import type { RtspTimeouts } from '../../src/rtsp/session.js';
import { rtspUpstream, type RtspUpstreamOptions } from '../../src/rtsp/upstream.js';
import type { Logger } from '../../src/util/logger.js';
import { readProcUdpSockets } from '../helpers/proc-net-udp.js';

export const FAST: RtspTimeouts = {
  connectMs: 1000,
  requestMs: 600,
  teardownMs: 300,
  stallMs: 800,
  udpFirstPacketMs: 500,
  rtcpIntervalMs: 200,
};

export const CAMERA = 'Test cam';
export const SECRET = 's3cr3t!pw';

export interface RecordingLogger extends Logger {
  lines: string[];
  text(): string;
}

export function recordingLogger(echo = false): RecordingLogger {
  const lines: string[] = [];
  const add =
    (level: string) =>
    (m: string, ...p: unknown[]): void => {
      const line = `${level} ${[m, ...p.map(String)].join(' ')}`;
      lines.push(line);
      if (echo) console.log(line);
    };
  return { lines, text: () => lines.join('\n'), info: add('info'), warn: add('warn'), error: add('error'), debug: add('debug') };
}

export interface Opened {
  session: UpstreamSession;
  /** `ageMs`: how long before its delivery the packet arrived (held while nobody watches). */
  rtp: Array<{ track: number; packet: Buffer; at: number; ageMs: number }>;
  senderReports: Array<{ track: number; rtpTimestamp: number; wallClockMs: number }>;
  closes: Array<Error | undefined>;
  /** True when onRtp ran before the factory's promise resolved. */
  rtpBeforeResolve: boolean;
  log: RecordingLogger;
  closed: Promise<Error | undefined>;
}

export type OpenOptions = Partial<Omit<RtspUpstreamOptions, 'timeouts'>> & { timeouts?: Partial<RtspTimeouts>; signal?: AbortSignal };

export async function openUpstream(url: string, options: OpenOptions = {}): Promise<Opened> {
  const log = (options.logger as RecordingLogger | undefined) ?? recordingLogger();
  const rtp: Opened['rtp'] = [];
  const senderReports: Opened['senderReports'] = [];
  const closes: Opened['closes'] = [];
  let resolved = false;
  let rtpBeforeResolve = false;
  let onClosed: (e: Error | undefined) => void = () => undefined;
  const closed = new Promise<Error | undefined>((r) => (onClosed = r));
  const { signal, ...rest } = options;
  const factory = rtspUpstream({ cameraName: CAMERA, ...rest, url, logger: log, timeouts: { ...FAST, ...options.timeouts } });
  const session = await factory(
    {
      onRtp: (track, packet, ageMs) => {
        if (!resolved) rtpBeforeResolve = true;
        rtp.push({ track, packet, at: performance.now(), ageMs: ageMs ?? 0 });
      },
      onSenderReport: (track, rtpTimestamp, wallClockMs) => senderReports.push({ track, rtpTimestamp, wallClockMs }),
      onClose: (e) => {
        closes.push(e);
        onClosed(e);
      },
    },
    signal ?? new AbortController().signal,
  );
  resolved = true;
  return {
    session,
    rtp,
    senderReports,
    closes,
    log,
    closed,
    get rtpBeforeResolve() {
      return rtpBeforeResolve;
    },
  };
}

/** Asserts an RtspError with the code, naming the camera and free of the password. */
export function assertRtspError(err: unknown, code: RtspErrorCode, pattern?: RegExp): RtspError {
  assert.ok(err instanceof RtspError, `expected an RtspError, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  assert.equal(err.code, code, `code of: ${err.message}`);
  assert.ok(err.message.includes(`Camera "${CAMERA}"`), err.message);
  assert.ok(!err.message.includes(SECRET), `password leaked: ${err.message}`);
  assert.ok(!(err.stack ?? '').includes(SECRET), 'password leaked in the stack');
  if (pattern) assert.match(err.message, pattern);
  return err;
}

export async function expectOpenError(url: string, code: RtspErrorCode, pattern?: RegExp, options: OpenOptions = {}): Promise<RtspError> {
  try {
    const opened = await openUpstream(url, options);
    await opened.session.close();
  } catch (err) {
    return assertRtspError(err, code, pattern);
  }
  assert.fail(`expected the session to fail with ${code}`);
}

/**
 * How often the main thread (the event loop) has blocked and been woken: its voluntary context
 * switches. Only the main thread's, from /proc, because the process-wide count in
 * `process.resourceUsage()` also counts V8's GC helpers and libuv's pool, which under a full
 * suite's load wake far more often than any socket and drown what a test measures.
 */
export function mainThreadWakeups(): number {
  const status = readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8');
  const match = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(status);
  assert.ok(match, 'voluntary_ctxt_switches in /proc/self/task/<pid>/status');
  return Number(match[1]);
}

/**
 * This process's UDP sockets as the kernel sees them (/proc/net/udp): local port, bytes queued
 * unread, and datagrams dropped for want of room. For a failure message: media that stop with
 * bytes queued were not read here; media that stop with nothing queued never came.
 */
export function ownUdpSockets(): string {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) inodes.add(match[1]!);
    } catch {
      // The descriptor closed while we looked.
    }
  }
  const sockets = readProcUdpSockets()
    .filter((socket) => inodes.has(socket.inode))
    .map((socket) => `:${socket.port} queued ${socket.queued} B, dropped ${socket.drops}`);
  return sockets.length > 0 ? sockets.join('; ') : 'none';
}

/** What has come in on each track so far, for a failure message. */
export function flowReport(opened: Opened): string {
  const now = performance.now();
  const tracks = [...new Set(opened.rtp.map((p) => p.track))].sort();
  const perTrack = tracks.map((track) => {
    const packets = opened.rtp.filter((p) => p.track === track);
    return `track ${track}: ${packets.length} packets, the last ${(now - packets.at(-1)!.at).toFixed(0)} ms ago`;
  });
  return `${perTrack.join(', ') || 'no packets'}; closes ${opened.closes.length}; UDP sockets: ${ownUdpSockets()}`;
}

export { sleep, waitFor } from '../helpers/wait.js';
