/**
 * WebRTC fan-out benchmark: what each viewer costs the server.
 *
 * - The server (its own process, pinned to CPU 0 when `taskset` works) runs the viewer code behind
 *   the real WebSocket signalling handler, fed by a synthetic 720p25 H.264 (~2.4 Mbit/s, 2 s GOP)
 *   + PCMU camera, packetised once per frame like the Source does.
 * - Receivers are werift peers in separate child processes (pinned to CPU 1), 10 per process,
 *   joining one after another over the real protocol.
 * - Per viewer count (1, 10, 50) and per send path (`native`: this project's fan-out with the
 *   native addon, a frame per sendmmsg; `direct`: the same fan-out with the JavaScript SRTP writer
 *   and a send per packet, the fallback; `werift`: RTCRtpSender.sendRtp, i.e. werift's own
 *   per-packet path, which only this bench has: see `weriftSendPath`) it prints:
 *   time to first frame (watch -> first keyframe reassembled by the receiver, median), server-added
 *   latency (frame available -> its last packet handed to the viewer's socket, p50/p99 over all
 *   viewer-frames, and in the notes the p99 of audio, keyframes and other video apart), server
 *   CPU per viewer-packet (above a no-viewer baseline) and RSS per viewer,
 *   with what of it is V8's young generation (grown with the allocation rate, nobody's state), what
 *   is V8's old generation and code as committed (live or not), and what the process still holds
 *   per viewer after a full GC (the state a viewer keeps). The notes give the receivers' share of
 *   their core: at 90 % and more they fall behind and NACK what their sockets dropped, and the
 *   server's figures then include its answers.
 * - The server asks for the process's memory trim at start-up, as the platform does, and viewers
 *   ask for one as they settle or leave (native-heap-trim.ts); every window starts once no trim is
 *   pending, so the figures are of the steady state a user's process settles into, and no trim
 *   falls inside a window.
 *
 * Run: npm run bench:webrtc   (BENCH_QUICK=1 for a shorter run; BENCH_V8_REDUCTION=0 trims the C heap
 *      without asking V8 for its memory-reducing collection first, to measure what that does;
 *      BENCH_ALLOCATIONS=1 adds who allocates
 *      what per viewer, from V8's sampling heap profiler: see allocation-sampling.ts;
 *      BENCH_HEAP_SNAPSHOT_DIR=<dir> writes the server's heap snapshot after each window, as
 *      <dir>/server-<viewers>.heapsnapshot, to compare what two viewer counts hold;
 *      BENCH_NACK=0 has the receivers negotiate no NACK, see RECEIVER_NACK;
 *      BENCH_RELAY=1 sends every viewer through a TURN relay: a coturn on the receivers' core, the
 *      server set to relay only, as a home that forwards no port is; see RELAY;
 *      BENCH_RPS=1, as root, has loopback's receive processing (the viewers' kernels) run on the
 *      receivers' core instead of the server's, as on a real network, and puts the setting back at
 *      the end: see loopback-rps.ts)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startAllocationSampling, type AllocationSummary } from './allocation-sampling.js';
import { steerLoopbackReceiveUntilExit } from './loopback-rps.js';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { RtpHeader, RtpPacket, type RTCRtpSender } from 'werift';
import type { FrameSink, MediaFrame } from '../src/media/types.js';
import { silentLogger } from '../src/util/logger.js';
import { LOOPBACK_ICE_SETTINGS, type IceServerSetting, type IceSettings } from '../src/webrtc/ice-config.js';
import { handleSignallingSocket } from '../src/webrtc/signalling.js';
import { ViewerLimiter } from '../src/webrtc/viewer-limits.js';
import { OutboundStream } from '../src/webrtc/outbound-stream.js';
import { warmUpWebRtc, type ViewerPeer } from '../src/webrtc/viewer-peer.js';
import { nativeFanout } from '../src/rtp/native-fanout.js';
import { NativeHeapTrimmer, nativeHeapTrimmer, requestNativeHeapTrim, useNativeHeapTrimmer } from '../src/rtp/native-heap-trim.js';
import { SyntheticSource } from '../test/helpers/synthetic-source.js';
import { startTurnServer } from '../test/helpers/turn-server.js';
import { watchOverSignalling, type SignallingClient } from '../test/webrtc/werift-client.js';

const SELF = fileURLToPath(import.meta.url);
const QUICK = process.env.BENCH_QUICK === '1';
/**
 * BENCH_ALLOCATIONS=1: sample the server's allocations in every window and print, per case, the
 * allocation rate per viewer by owner (project, werift, Node, the harness) and its largest sites.
 * The sampler costs CPU, so the CPU columns of such a run are not comparable with a plain one.
 */
const ALLOCATIONS = process.env.BENCH_ALLOCATIONS === '1';
const VIEWER_COUNTS = (process.env.BENCH_COUNTS ?? '1,10,50').split(',').map(Number);
type SendPath = 'native' | 'direct' | 'werift';
const PATHS = (process.env.BENCH_PATHS ?? 'native,direct,werift').split(',').filter((p): p is SendPath => p === 'native' || p === 'direct' || p === 'werift');
const MEASURE_MS = QUICK ? 3_000 : 5_000;
/** Windows per measurement; the table shows their medians. */
const WINDOWS = QUICK ? 1 : 3;
const SETTLE_MS = 2_000;
const PER_RECEIVER_PROCESS = 10;
/**
 * BENCH_NACK=0: the receivers do not negotiate NACK (the shared fan-out harness's default). Where
 * their one core saturates (50 viewers on a slow 2-core machine), their losses then cost the server
 * no retransmissions, and its latency and CPU are its own; the notes say which was run.
 */
const RECEIVER_NACK = process.env.BENCH_NACK !== '0';
/**
 * BENCH_RPS=1: the receivers' half of each loopback datagram (IP and UDP receive, the socket queue)
 * runs on their core, not on the sender's, as it would on their own devices; without it the
 * server's latency and CPU include their kernels' work (loopback-rps.ts).
 */
const RECEIVE_ON_RECEIVERS_CORE = process.env.BENCH_RPS === '1';
/**
 * BENCH_RELAY=1: the parent starts coturn (pinned to the receivers' core, so its relaying is not
 * the server's CPU) and hands it to the server in BENCH_TURN_SERVER; the server gathers relay
 * candidates only, so each viewer's packets go to coturn framed as TURN ChannelData.
 */
const RELAY = process.env.BENCH_RELAY === '1';
/** stock werift, NOTES.md: 35-40 µs of CPU per SRTP packet sent (track clone per viewer). */
const STOCK_WERIFT_US = '35-40';

type Message = Record<string, unknown> & { type: string };

function isMessage(value: unknown): value is Message {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

function median(values: number[]): number {
  return percentile(values, 50);
}

/** The median over windows of one kind's p99 (see LATENCY_KINDS), or a dash where no window had that kind. */
function kindP99(windows: ReadonlyArray<Record<string, number>>, kind: (typeof LATENCY_KINDS)[number]): string {
  const values = windows.map((w) => w[`latencyP99_${kind}`]!).filter((v) => Number.isFinite(v));
  return values.length > 0 ? median(values).toFixed(2) : '–';
}

function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Array.from(values).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function progress(text: string): void {
  process.stderr.write(`[bench] ${text}\n`);
}

function send(message: Message): void {
  process.send?.(message);
}

// ------------------------------------------------------------------ werift's own send path

/** The viewer's default: a frame older than this is a replay and is moved to the present. */
const STALE_FRAME_MS = 300;

/**
 * werift's own per-packet send path (RTCRtpSender.sendRtp), kept here for comparison with the
 * plugin's direct SRTP path, which is the only one the plugin has. It takes the place of the
 * viewer's `write` (its negotiation, ICE/DTLS and RTCP handling stay the viewer's), numbers and
 * times packets with an `OutboundStream` of its own as the plugin once did, and counts what it
 * hands werift, since the viewer's own counters then see nothing.
 */
function weriftSendPath(viewer: ViewerPeer): { write(frame: MediaFrame): boolean; packets(): number } {
  const streams = new Map<'video' | 'audio', { out: OutboundStream; sender: RTCRtpSender }>();
  let packets = 0;
  const streamFor = (kind: 'video' | 'audio'): { out: OutboundStream; sender: RTCRtpSender } | undefined => {
    const known = streams.get(kind);
    if (known) return known;
    const transceiver = viewer.peerConnection?.getTransceivers().find((t) => t.kind === kind && t.sender.codec !== undefined);
    const codec = transceiver?.sender.codec;
    if (!transceiver || !codec) return undefined;
    const out = new OutboundStream({ kind, ssrc: transceiver.sender.ssrc, payloadType: codec.payloadType, clockRate: codec.clockRate, historySize: 0 });
    const entry = { out, sender: transceiver.sender };
    streams.set(kind, entry);
    return entry;
  };
  return {
    packets: () => packets,
    write: (frame) => {
      if (viewer.phase !== 'connected') return true;
      const entry = streamFor(frame.kind);
      if (!entry) return true;
      const out = entry.out;
      if (out.waitingForKeyframe && !frame.keyframe) return true;
      const age = performance.now() - frame.receivedAt;
      // Old audio (a replayed cache) would only put sound out of step, as in the viewer.
      if (frame.kind === 'audio' && age > STALE_FRAME_MS) return true;
      const timestamp = out.timestampFor(frame, age, STALE_FRAME_MS);
      if (frame.keyframe && frame.kind === 'video') out.waitingForKeyframe = false;
      for (const p of frame.packets) {
        const header = new RtpHeader({
          payloadType: out.payloadType,
          sequenceNumber: out.nextSequence(p.payload.length),
          timestamp,
          marker: p.marker,
          ssrc: out.ssrc,
        });
        packets++;
        void entry.sender.sendRtp(new RtpPacket(header, p.payload));
      }
      return true;
    },
  };
}

/**
 * The frames a latency belongs to, for its tail: a keyframe is many packets to fan out, and the
 * largest frames, sent to the last viewers, make the p99.
 */
const LATENCY_KINDS = ['audio', 'keyframes', 'other video'] as const;

// ------------------------------------------------------------------ server role

/** "native x 49, javascript x 1": how many of each. */
function countedList(values: string[]): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].map(([value, count]) => `${value} x ${count}`).join(', ');
}

/** Loopback; relay only through the parent's coturn when BENCH_RELAY=1. */
function serverIceSettings(): IceSettings {
  const turn = process.env.BENCH_TURN_SERVER;
  if (!turn) return LOOPBACK_ICE_SETTINGS;
  return { ...LOOPBACK_ICE_SETTINGS, relayOnly: true, iceServers: [JSON.parse(turn) as IceServerSetting] };
}

async function runServer(path: SendPath): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const native = nativeFanout();
  if (process.env.BENCH_V8_REDUCTION === '0' && native.loaded) {
    // The A/B of native-heap-trim.ts's V8 collection: the same trims of the C heap, without it.
    useNativeHeapTrimmer(new NativeHeapTrimmer({ trim: () => native.fanout.trimNativeHeap() }));
  }
  // As the platform does once Homebridge has started.
  requestNativeHeapTrim();
  const source = await SyntheticSource.create({ id: 'cam', width: 1280, height: 720, gop: 50, seconds: 8, bitrateKbps: 2400 });
  // A no-op subscriber keeps the camera running, so the baseline includes its own cost.
  const idle: FrameSink = { write: () => true };
  source.subscribe(idle);
  await warmUpWebRtc();
  const viewers: ViewerPeer[] = [];
  /** Packets handed to werift by the bench's own send path (werift path only), per viewer. */
  const weriftPackets = new Map<ViewerPeer, () => number>();
  let measuring = false;
  const latencies = new Float64Array(2_000_000);
  /** Each latency's frame: what the tail is made of (see LATENCY_KINDS). */
  const latencyKinds = new Uint8Array(latencies.length);
  let latencyCount = 0;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const limits = new ViewerLimiter({ maxViewersPerCamera: 1000 });
  wss.on('connection', (ws) =>
    handleSignallingSocket(ws, {
      registry: { get: (id) => (id === 'cam' ? source : undefined), list: () => [source] },
      principal: { name: 'bench', cameras: 'all', admin: false },
      remoteAddress: '127.0.0.1',
      ice: serverIceSettings(),
      logger: silentLogger,
      limits,
      // `direct` is the same fan-out with the JavaScript SRTP writer and one send per packet.
      ...(path === 'direct' ? { viewerOptions: { nativeFanout: { loaded: false, reason: 'bench path direct' } } } : {}),
      // werift's own send path needs werift's peer connection for as long as the viewer watches.
      ...(path === 'werift' ? { viewerOptions: { releaseWerift: false } } : {}),
      onViewer: (viewer) => {
        viewers.push(viewer);
        viewer.once('closed', () => {
          viewers.splice(viewers.indexOf(viewer), 1);
          weriftPackets.delete(viewer);
        });
        // Frame in -> last packet out, measured around the viewer's own write (live frames only).
        const sink = viewer.sink;
        let write = sink.write.bind(sink);
        if (path === 'werift') {
          const werift = weriftSendPath(viewer);
          write = werift.write;
          weriftPackets.set(viewer, werift.packets);
        }
        sink.write = (frame: MediaFrame): boolean => {
          const accepted = write(frame);
          if (measuring && viewer.phase === 'connected') {
            const latency = performance.now() - frame.receivedAt;
            if (latency < 250 && latencyCount < latencies.length) {
              latencyKinds[latencyCount] = frame.kind === 'audio' ? 0 : frame.keyframe ? 1 : 2;
              latencies[latencyCount++] = latency;
            }
          }
          return accepted;
        };
      },
    }),
  );
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/signal`;
  type Counts = { packets: number; congestion: number; nacks: number; retransmissions: number; keyframes: number };
  /** Each viewer's counters now: a window's figures are per-viewer differences (see `sinceThen`). */
  const totals = (): Map<ViewerPeer, Counts> => {
    const counts = new Map<ViewerPeer, Counts>();
    for (const v of viewers) {
      const s = v.stats();
      counts.set(v, {
        packets: s.packetsSent + (weriftPackets.get(v)?.() ?? 0),
        congestion: s.congestionEvents,
        nacks: s.nacks,
        retransmissions: s.retransmissions,
        keyframes: s.keyframeRequests,
      });
    }
    return counts;
  };
  /**
   * What the viewers did between two readings: each viewer's own difference, so that a viewer of
   * the previous count released during the window takes nothing away (a difference of sums did,
   * and a window could report minus 150 retransmissions).
   */
  const sinceThen = (before: Map<ViewerPeer, Counts>, after: Map<ViewerPeer, Counts>): Counts => {
    const sum: Counts = { packets: 0, congestion: 0, nacks: 0, retransmissions: 0, keyframes: 0 };
    for (const [viewer, now] of after) {
      const then = before.get(viewer);
      for (const key of Object.keys(sum) as Array<keyof Counts>) sum[key] += now[key] - (then?.[key] ?? 0);
    }
    return sum;
  };
  process.on('message', async (raw: unknown) => {
    if (!isMessage(raw)) return;
    if (raw.type === 'measure') {
      const ms = Number(raw.ms);
      // The process's trims (after start-up, after viewers settle) run before a window, not in it.
      const trimmer = nativeHeapTrimmer();
      const trimDeadline = performance.now() + 60_000;
      while (trimmer.pending && performance.now() < trimDeadline) await new Promise((resolve) => setTimeout(resolve, 100));
      gc();
      const before = totals();
      const cpu = process.cpuUsage();
      const started = performance.now();
      latencyCount = 0;
      measuring = true;
      const stopSampling = ALLOCATIONS ? startAllocationSampling() : undefined;
      setTimeout(async () => {
        measuring = false;
        const used = process.cpuUsage(cpu);
        const elapsed = performance.now() - started;
        const counted = sinceThen(before, totals());
        const measured = latencies.subarray(0, latencyCount);
        const allocations = stopSampling ? await stopSampling() : undefined;
        gc();
        if (process.env.BENCH_HEAP_SNAPSHOT_DIR) writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT_DIR}/server-${viewers.length}.heapsnapshot`);
        send({
          type: 'measured',
          cpuUs: used.user + used.system,
          sysUs: used.system,
          elapsedMs: elapsed,
          packets: counted.packets,
          congestion: counted.congestion,
          nacks: counted.nacks,
          retransmissions: counted.retransmissions,
          keyframeRequests: counted.keyframes,
          latencyP50: percentile(measured, 50),
          latencyP99: percentile(measured, 99),
          ...Object.fromEntries(LATENCY_KINDS.map((kind, index) => [`latencyP99_${kind}`, percentile(measured.filter((_, i) => latencyKinds[i] === index), 99)])),
          rss: process.memoryUsage().rss,
          ...keptMemory(),
          viewers: viewers.filter((v) => v.phase === 'connected').length,
          srtpProfiles: [...new Set(viewers.map((v) => v.stats().srtpProfile))].join(','),
          // How the viewers' packets left: the send path, and whether through a TURN relay.
          sentBy: countedList(
            viewers.map((v) => {
              const { sendPath, transport } = v.stats();
              return `${sendPath ?? 'none'} over ${transport ?? 'nothing'}`;
            }),
          ),
          ...(allocations ? { allocations } : {}),
        });
      }, ms);
    } else if (raw.type === 'count') {
      send({ type: 'count', viewers: viewers.length, subscribers: source.subscriberCount - 1 });
    } else if (raw.type === 'exit') {
      source.close();
      wss.close();
      // A normal exit (not process.exit) lets --cpu-prof write its profile.
      process.disconnect();
      setTimeout(() => process.exit(0), 2_000).unref();
    }
  });
  send({ type: 'ready', url });
}

// ------------------------------------------------------------------ receivers role

async function runReceivers(url: string, count: number): Promise<void> {
  const clients: SignallingClient[] = [];
  const ttff: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const t0 = Date.now();
    const client = await watchOverSignalling(url, 'cam', { keepVideo: false, nack: RECEIVER_NACK });
    await client.receiver.waitFor(() => client.receiver.firstKeyframeAt !== undefined, 20_000, 'first keyframe');
    ttff.push(client.receiver.firstKeyframeAt! - started);
    if (process.env.BENCH_VERBOSE) progress(`receiver ${i} joined in ${Date.now() - t0} ms`);
    clients.push(client);
  }
  send({ type: 'joined', ttff });
  process.on('message', (raw: unknown) => {
    if (!isMessage(raw) || raw.type !== 'stop') return;
    void (async () => {
      const received = clients.reduce((sum, c) => sum + c.receiver.videoPackets + c.receiver.audioPackets, 0);
      for (const client of clients) await client.close();
      send({ type: 'stopped', received });
      setTimeout(() => process.exit(0), 100);
    })();
  });
}

// ------------------------------------------------------------------ orchestrator

interface Child {
  proc: ChildProcess;
  next(type: string, timeoutMs?: number): Promise<Message>;
}

function startChild(cpu: number, args: string[]): Child {
  const profile = args[0] === 'server' && process.env.BENCH_CPU_PROF_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF_DIR}`] : [];
  const nodeArgs = [...process.execArgv, ...profile, SELF, ...args];
  const useTaskset = process.env.BENCH_NO_TASKSET !== '1';
  const proc = useTaskset
    ? spawn('taskset', ['-c', String(cpu), process.execPath, ...nodeArgs], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    : spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const inbox: Message[] = [];
  const waiters: Array<{ type: string; resolve: (m: Message) => void }> = [];
  proc.on('message', (raw: unknown) => {
    if (!isMessage(raw)) return;
    const index = waiters.findIndex((w) => w.type === raw.type);
    if (index >= 0) waiters.splice(index, 1)[0]!.resolve(raw);
    else inbox.push(raw);
  });
  return {
    proc,
    next: (type, timeoutMs = 120_000) => {
      const index = inbox.findIndex((m) => m.type === type);
      if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
  };
}

interface Row {
  path: string;
  viewers: number;
  ttffMs: number;
  latencyP50: number;
  latencyP99: number;
  usPerPacket: number;
  packetsPerSecond: number;
  cpuPercent: number;
  rssPerViewerMiB: number;
  /** Of the RSS: V8's young generation grown since no viewer watched, per viewer. */
  youngPerViewerMiB: number;
  /** Heap and Buffers still held after a full GC, per viewer: the state a viewer keeps. */
  keptPerViewerMiB: number;
  /** Of the RSS: V8's old generation, code and large objects as committed (not only live), per viewer. */
  oldPerViewerMiB: number;
  notes: string;
  /** BENCH_ALLOCATIONS: KiB/s allocated per viewer above the no-viewer baseline, by owner and by site. */
  allocations?: { byOwner: Record<string, number>; topSites: Array<[string, number]> };
}

/**
 * Memory after a full GC, split the way RSS hides: `kept` is what the process still holds (V8's
 * live heap plus Buffers outside it), the state viewers keep; `youngGeneration` is the space V8
 * reserves for new objects, which it grows with the allocation rate and which counts in RSS without
 * being anybody's state.
 */
function keptMemory(): { kept: number; youngGeneration: number; oldGeneration: number } {
  const usage = process.memoryUsage();
  const young = getHeapSpaceStatistics().filter((s) => s.space_name === 'new_space' || s.space_name === 'new_large_object_space');
  const youngGeneration = young.reduce((total, s) => total + s.space_size, 0);
  return { kept: usage.heapUsed + usage.external, youngGeneration, oldGeneration: usage.heapTotal - youngGeneration };
}

/**
 * The receivers share one core: past this share of it they fall behind, lose packets in their
 * sockets and NACK them, and the server's figures then include the answers (a 2-core VM at 50
 * viewers of 2.4 Mbit/s, where `bench:janus` uses 600 kbit/s for that reason).
 */
const RECEIVERS_SATURATED_PERCENT = 90;

/** CPU seconds the processes have used so far (Linux /proc; 0 where it cannot be read). */
function processesCpuSeconds(children: Child[]): number {
  let ticks = 0;
  for (const child of children) {
    try {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${child.proc.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone or not Linux: counted as nothing.
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ, which /proc reports CPU times in: 100 on every Linux this runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

async function measureServer(server: Child, ms: number): Promise<Message> {
  server.proc.send({ type: 'measure', ms });
  return server.next('measured', ms + 30_000);
}

async function runPath(path: SendPath): Promise<Row[]> {
  const server = startChild(0, ['server', path]);
  const ready = await server.next('ready');
  const url = String(ready.url);
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const bases: Message[] = [];
  for (let w = 0; w < WINDOWS; w++) bases.push(await measureServer(server, MEASURE_MS));
  const baseCpuPerMs = median(bases.map((b) => Number(b.cpuUs) / Number(b.elapsedMs)));
  const baseSysPerMs = median(bases.map((b) => Number(b.sysUs) / Number(b.elapsedMs)));
  const baseRss = median(bases.map((b) => Number(b.rss)));
  const baseKept = median(bases.map((b) => Number(b.kept)));
  const baseYoung = median(bases.map((b) => Number(b.youngGeneration)));
  const baseOld = median(bases.map((b) => Number(b.oldGeneration)));
  const baseAllocations = bases.map((b) => b.allocations as AllocationSummary | undefined);
  const rows: Row[] = [];
  for (const n of VIEWER_COUNTS) {
    const receivers: Child[] = [];
    const ttff: number[] = [];
    for (let left = n; left > 0; left -= PER_RECEIVER_PROCESS) {
      const child = startChild(1, ['receivers', url, String(Math.min(PER_RECEIVER_PROCESS, left))]);
      receivers.push(child);
      const joined = await child.next('joined', 180_000);
      progress(`${path}: ${n - Math.max(0, left - PER_RECEIVER_PROCESS)} of ${n} viewers joined`);
      ttff.push(...(joined.ttff as number[]));
    }
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const windows: Message[] = [];
    const receiversBefore = processesCpuSeconds(receivers);
    const windowsStarted = performance.now();
    for (let w = 0; w < WINDOWS; w++) windows.push(await measureServer(server, MEASURE_MS));
    const receiversPercent = ((processesCpuSeconds(receivers) - receiversBefore) / ((performance.now() - windowsStarted) / 1000)) * 100;
    const per = windows.map((m) => {
      const elapsed = Number(m.elapsedMs);
      const packets = Math.max(1, Number(m.packets));
      return {
        usPerPacket: (Number(m.cpuUs) - baseCpuPerMs * elapsed) / packets,
        sysPerPacket: (Number(m.sysUs) - baseSysPerMs * elapsed) / packets,
        packetsPerSecond: (packets / elapsed) * 1000,
        cpuPercent: (Number(m.cpuUs) / (elapsed * 1000)) * 100,
        latencyP50: Number(m.latencyP50),
        latencyP99: Number(m.latencyP99),
        // (A window without such a frame sent NaN, which JSON carries as null.)
        ...Object.fromEntries(LATENCY_KINDS.map((kind) => [`latencyP99_${kind}`, m[`latencyP99_${kind}`] === null ? Number.NaN : Number(m[`latencyP99_${kind}`])])),
        rssPerViewerMiB: (Number(m.rss) - baseRss) / n / 1048576,
        youngPerViewerMiB: (Number(m.youngGeneration) - baseYoung) / n / 1048576,
        keptPerViewerMiB: (Number(m.kept) - baseKept) / n / 1048576,
        oldPerViewerMiB: (Number(m.oldGeneration) - baseOld) / n / 1048576,
      };
    });
    const med = (key: keyof (typeof per)[number]): number => median(per.map((x) => x[key]));
    const sum = (key: string): number => windows.reduce((total, m) => total + Number(m[key]), 0);
    rows.push({
      path,
      viewers: n,
      ttffMs: percentile(ttff, 50),
      latencyP50: med('latencyP50'),
      latencyP99: med('latencyP99'),
      usPerPacket: med('usPerPacket'),
      packetsPerSecond: med('packetsPerSecond'),
      cpuPercent: med('cpuPercent'),
      rssPerViewerMiB: med('rssPerViewerMiB'),
      youngPerViewerMiB: med('youngPerViewerMiB'),
      keptPerViewerMiB: med('keptPerViewerMiB'),
      oldPerViewerMiB: med('oldPerViewerMiB'),
      notes: `p99 ms by frame: ${LATENCY_KINDS.map((kind) => `${kind} ${kindP99(per, kind)}`).join(', ')}; kernel ${med('sysPerPacket').toFixed(1)} µs/pkt; sent by ${String(windows[0]!.sentBy)}; srtp=${String(windows[0]!.srtpProfiles)} nack=${RECEIVER_NACK ? sum('nacks') : 'not negotiated (BENCH_NACK=0)'} rtx=${sum('retransmissions')} pli/fir=${sum('keyframeRequests')} congested=${sum('congestion')}; receivers ${receiversPercent.toFixed(0)} % of their core${receiversPercent >= RECEIVERS_SATURATED_PERCENT ? (RECEIVER_NACK ? ' (saturated: the NACKs are their losses)' : ' (saturated: they lose packets, unasked for again)') : ''}`,
    });
    const allocations = allocationsPerViewer(windows, bases, baseAllocations, n);
    if (allocations) rows[rows.length - 1]!.allocations = allocations;
    for (const child of receivers) child.proc.send({ type: 'stop' });
    await Promise.all(receivers.map((c) => c.next('stopped', 60_000)));
    for (let i = 0; i < 100; i++) {
      server.proc.send({ type: 'count' });
      const count = await server.next('count');
      if (Number(count.viewers) === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  server.proc.send({ type: 'exit' });
  await new Promise((r) => server.proc.once('exit', r));
  return rows;
}

/** KiB/s per viewer from the windows' allocation samples: medians by owner above the baseline, sites of the first window. */
function allocationsPerViewer(windows: Message[], bases: Message[], baseAllocations: Array<AllocationSummary | undefined>, n: number): Row['allocations'] {
  const rate = (summary: AllocationSummary | undefined, m: Message, pick: (s: AllocationSummary) => number): number =>
    summary ? pick(summary) / (Number(m.elapsedMs) / 1000) / 1024 : 0;
  const summaries = windows.map((m) => m.allocations as AllocationSummary | undefined);
  if (!ALLOCATIONS || n === 0 || summaries.some((s) => !s)) return undefined;
  const owners = new Set(summaries.flatMap((s) => Object.keys(s!.byOwner)));
  const byOwner: Record<string, number> = {};
  for (const owner of owners) {
    const base = median(bases.map((b, i) => rate(baseAllocations[i], b, (s) => s.byOwner[owner] ?? 0)));
    byOwner[owner] = (median(windows.map((m, i) => rate(summaries[i], m, (s) => s.byOwner[owner] ?? 0))) - base) / n;
  }
  const first = summaries[0]!;
  const seconds = Number(windows[0]!.elapsedMs) / 1000;
  return { byOwner, topSites: first.topSites.map(([site, bytes]) => [site, bytes / seconds / 1024 / n]) };
}

function printAllocations(rows: Row[]): void {
  const measured = rows.filter((r) => r.allocations);
  if (measured.length === 0) return;
  const owners = [...new Set(measured.flatMap((r) => Object.keys(r.allocations!.byOwner)))].sort();
  console.log('\nAllocated per viewer, KiB/s above the no-viewer baseline, by owner (BENCH_ALLOCATIONS; sampled, so CPU above is inflated)\n');
  const header = ['path', 'viewers', 'all', ...owners];
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const r of measured) {
    const by = r.allocations!.byOwner;
    const all = Object.values(by).reduce((a, b) => a + b, 0);
    console.log(`| ${[r.path, String(r.viewers), all.toFixed(1), ...owners.map((o) => (by[o] ?? 0).toFixed(1))].join(' | ')} |`);
  }
  for (const r of measured) {
    console.log(`\n${r.path}, ${r.viewers} viewers: largest sites, KiB/s per viewer (no baseline taken off)`);
    for (const [site, kib] of r.allocations!.topSites) console.log(`  ${kib.toFixed(2).padStart(7)}  ${site}`);
  }
}

function printTable(rows: Row[]): void {
  const header = ['path', 'viewers', 'first frame ms (p50)', 'latency p50 ms', 'latency p99 ms', 'CPU µs/viewer-pkt', 'viewer-pkts/s', 'server CPU %', 'RSS/viewer MiB', 'of it young gen. MiB', 'old gen. + code MiB', 'kept/viewer MiB', 'notes'];
  const lines = rows.map((r) => [
    r.path,
    String(r.viewers),
    r.ttffMs.toFixed(0),
    r.latencyP50.toFixed(2),
    r.latencyP99.toFixed(2),
    r.usPerPacket.toFixed(1),
    r.packetsPerSecond.toFixed(0),
    r.cpuPercent.toFixed(1),
    r.rssPerViewerMiB.toFixed(2),
    r.youngPerViewerMiB.toFixed(2),
    r.oldPerViewerMiB.toFixed(2),
    r.keptPerViewerMiB.toFixed(2),
    r.notes,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const line of lines) console.log(fmt(line));
  console.log(`\nstock werift (NOTES.md, MediaStreamTrack clone per viewer): ${STOCK_WERIFT_US} µs of CPU per SRTP packet sent.`);
}

async function main(): Promise<void> {
  const [role, ...args] = process.argv.slice(2);
  if (role === 'server') {
    await runServer(args[0] === 'werift' || args[0] === 'direct' ? args[0] : 'native');
    return;
  }
  if (role === 'receivers') {
    await runReceivers(args[0]!, Number(args[1]));
    return;
  }
  const steering = RECEIVE_ON_RECEIVERS_CORE ? steerLoopbackReceiveUntilExit(1) : undefined;
  console.log(`WebRTC fan-out bench: 720p25 H.264 ~2.4 Mbit/s + PCMU; medians of ${WINDOWS} x ${MEASURE_MS / 1000} s windows; server on CPU 0, receivers${RELAY ? ' and coturn' : ''} on CPU 1${RELAY ? '; every viewer through the TURN relay' : ''}; ${steering ? steering.description : "the viewers' loopback receive on the sender's core (BENCH_RPS=1 moves it)"}\n`);
  const turn = RELAY ? await startTurnServer({ cpu: 1 }) : undefined;
  if (turn) process.env.BENCH_TURN_SERVER = JSON.stringify({ urls: turn.url, username: turn.username, credential: turn.credential });
  const rows: Row[] = [];
  try {
    for (const path of PATHS) rows.push(...(await runPath(path)));
  } finally {
    await turn?.close();
    steering?.restore();
  }
  printTable(rows);
  printAllocations(rows);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
