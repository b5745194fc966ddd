/**
 * Media core benchmark: what one camera costs in the Source, and what each extra in-process
 * subscriber adds.
 *
 * - CPU µs per camera packet (video + PCMU audio) for parse + depacketise + re-packetise + fan-out
 *   to 0, 1, 10 and 100 subscribers. The stream is real: 720p25 H.264 (Main, ~2 Mbit/s, 2 s GOP)
 *   from ffmpeg, cut into 1400-byte RTP payloads like a camera does, replayed as fast as possible.
 * - Memory per subscriber (idle, and holding a GOP replay in its queue).
 * - Time to the first keyframe for a new subscriber: warm (GOP cached) and cold (a fake camera with
 *   a 250 ms RTSP set-up, paced at 25 fps with a 4 s GOP, joined at evenly spread GOP phases).
 *
 * Every figure is the median of several runs. Run: npm run bench:source
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Source } from '../src/media/source.js';
import { QueuedSink } from '../src/media/queued-sink.js';
import { serializeRtp } from '../src/media/rtp.js';
import type { FrameSink, MediaFrame, TrackDescription, UpstreamFactory, UpstreamHandlers } from '../src/media/types.js';
import { encodeStream, groupAccessUnits, splitAnnexB, toRtp } from '../test/media/helpers/streams.js';
import { median } from '../test/helpers/stats.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const RUNS = 11;
const LOOPS_PER_RUN = 20;

// ---- the stream ----

interface Stream {
  /** [trackIndex, packet] in arrival order. */
  packets: Array<[number, Buffer]>;
  tracks: TrackDescription[];
  videoPackets: number;
  frames: number;
  seconds: number;
  bytes: number;
}

function buildStream(gop: number, seconds: number, loops: number): Stream {
  const accessUnits = groupAccessUnits('h264', splitAnnexB(encodeStream({
    codec: 'h264', width: 1280, height: 720, fps: 25, seconds, profile: 'main', preset: 'veryfast', gop, bitrateK: 2000,
  })));
  const sps = accessUnits.flat().find((n) => (n[0]! & 0x1f) === 7)!;
  const pps = accessUnits.flat().find((n) => (n[0]! & 0x1f) === 8)!;
  const tracks: TrackDescription[] = [
    { kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90000, fmtp: { 'packetization-mode': '1' }, controlUrl: 'v', parameterSets: [sps, pps] },
    { kind: 'audio', codec: 'PCMU', payloadType: 0, clockRate: 8000, fmtp: {}, controlUrl: 'a' },
  ];
  const packets: Array<[number, Buffer]> = [];
  let videoPackets = 0;
  let bytes = 0;
  let videoSequence = 0;
  let audioSequence = 0;
  let audioTimestamp = 0;
  for (let loop = 0; loop < loops; loop++) {
    const frames = toRtp('h264', accessUnits, {
      firstTimestamp: loop * accessUnits.length * 3600,
      maxPayload: 1400,
    });
    for (const frame of frames) {
      for (const packet of frame.packets) {
        packet.writeUInt16BE(videoSequence++ & 0xffff, 2); // one continuous sequence across loops
        packets.push([0, packet]);
        videoPackets++;
        bytes += packet.length;
      }
      for (let i = 0; i < 2; i++) {
        const audio = serializeRtp({ marker: false, payloadType: 0, sequenceNumber: audioSequence++ & 0xffff, timestamp: audioTimestamp, ssrc: 7 }, Buffer.alloc(160, 0xff));
        audioTimestamp += 160;
        packets.push([1, audio]);
        bytes += audio.length;
      }
    }
  }
  return { packets, tracks, videoPackets, frames: accessUnits.length * loops, seconds: seconds * loops, bytes };
}

/** An upstream whose packets the bench pushes by hand. */
function manualUpstream(tracks: TrackDescription[]): { factory: UpstreamFactory; handlers: () => UpstreamHandlers } {
  let current: UpstreamHandlers | undefined;
  return {
    factory: async (handlers) => {
      current = handlers;
      return { tracks, close: async () => undefined };
    },
    handlers: () => current!,
  };
}

class CountingSink implements FrameSink {
  frames = 0;
  packets = 0;
  write(frame: MediaFrame): boolean {
    this.frames++;
    this.packets += frame.packets.length;
    return true;
  }
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// ---- CPU per packet ----

async function cpuPerPacket(stream: Stream, subscribers: number, kind: 'counting' | 'queued'): Promise<number> {
  const upstream = manualUpstream(stream.tracks);
  // alwaysOn, so the Source pulls (and the 0-subscriber row measures the media work alone).
  const source = new Source({ id: 'bench', upstream: upstream.factory, stallTimeoutMs: 3_600_000, alwaysOn: true });
  const queues: QueuedSink[] = [];
  for (let i = 0; i < subscribers; i++) {
    if (kind === 'counting') {
      source.subscribe(new CountingSink());
    } else {
      const queue = new QueuedSink();
      queues.push(queue);
      source.subscribe(queue);
    }
  }
  await flush();
  const handlers = upstream.handlers();
  gc();
  const packets = stream.packets;
  const start = process.cpuUsage();
  for (let i = 0; i < packets.length; i++) {
    const [track, packet] = packets[i]!;
    handlers.onRtp(track, packet);
    // In-process consumers read as frames come; drain once per video frame's worth of packets.
    if (queues.length > 0 && (i & 7) === 7) for (const queue of queues) while (queue.tryRead());
  }
  const used = process.cpuUsage(start);
  const framesOut = source.stats().video?.framesOut ?? 0;
  if (framesOut < stream.frames) throw new Error(`lost frames: ${framesOut} < ${stream.frames}`);
  await source.close();
  return (used.user + used.system) / packets.length;
}

// ---- memory per subscriber ----

async function memoryPerSubscriber(stream: Stream, withReplay: boolean): Promise<number> {
  const upstream = manualUpstream(stream.tracks);
  const source = new Source({ id: 'bench', upstream: upstream.factory, stallTimeoutMs: 3_600_000 });
  source.subscribe(new CountingSink());
  await flush();
  const handlers = upstream.handlers();
  // Stop a second into a GOP, so the cache holds 25 frames and their audio.
  const until = Math.floor(stream.packets.length / (stream.seconds / 3));
  for (let i = 0; i < until; i++) handlers.onRtp(stream.packets[i]![0], stream.packets[i]![1]);
  const count = 1000;
  const sinks: QueuedSink[] = [];
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < count; i++) {
    const sink = new QueuedSink();
    sinks.push(sink);
    source.subscribe(sink, { fromKeyframe: withReplay });
  }
  gc();
  gc();
  const after = process.memoryUsage().heapUsed;
  if (sinks.length !== count) throw new Error('unreachable');
  await source.close();
  return (after - before) / count;
}

// ---- time to first keyframe ----

async function warmFirstKeyframe(stream: Stream): Promise<number> {
  const upstream = manualUpstream(stream.tracks);
  const source = new Source({ id: 'bench', upstream: upstream.factory, stallTimeoutMs: 3_600_000 });
  source.subscribe(new CountingSink());
  await flush();
  const handlers = upstream.handlers();
  const until = Math.floor(stream.packets.length / (stream.seconds / 3));
  for (let i = 0; i < until; i++) handlers.onRtp(stream.packets[i]![0], stream.packets[i]![1]);
  let firstAt = -1;
  const sink: FrameSink = {
    write: (frame) => {
      if (firstAt < 0 && frame.kind === 'video' && frame.keyframe) firstAt = performance.now();
      return true;
    },
  };
  const start = performance.now();
  source.subscribe(sink);
  await source.close();
  return (firstAt - start) * 1000;
}

/** A camera paced in real time: connects after `connectMs`, then streams from `phase` (0..1) into its GOP. */
async function coldFirstKeyframe(stream: Stream, gopFrames: number, phase: number, connectMs: number): Promise<number> {
  // Group the packet list by frame (each video frame: its packets, then 2 audio packets).
  const frames: Array<Array<[number, Buffer]>> = [];
  let current: Array<[number, Buffer]> = [];
  for (const entry of stream.packets) {
    current.push(entry);
    if (entry[0] === 1 && current.filter((e) => e[0] === 1).length === 2) {
      frames.push(current);
      current = [];
    }
  }
  let timer: NodeJS.Timeout | undefined;
  const factory: UpstreamFactory = (handlers, signal) => new Promise((resolve) => {
    setTimeout(() => {
      let index = Math.round(phase * gopFrames) + 1; // never exactly on a keyframe
      timer = setInterval(() => {
        if (signal.aborted) return;
        for (const [track, packet] of frames[index % frames.length]!) handlers.onRtp(track, packet);
        index++;
      }, 40);
      resolve({ tracks: stream.tracks, close: async () => clearInterval(timer) });
    }, connectMs);
  });
  const source = new Source({ id: 'bench', upstream: factory });
  const start = performance.now();
  const firstKeyframe = await new Promise<number>((resolve) => {
    source.subscribe({
      write: (frame) => {
        if (frame.kind === 'video' && frame.keyframe) resolve(performance.now());
        return true;
      },
    });
  });
  await source.close();
  clearInterval(timer);
  return firstKeyframe - start;
}

// ---- main ----

async function main(): Promise<void> {
  console.log('Preparing streams with ffmpeg (cached after the first run)...');
  const stream = buildStream(50, 10, LOOPS_PER_RUN);
  const mbit = (stream.bytes * 8) / stream.seconds / 1e6;
  const packetsPerSecond = stream.packets.length / stream.seconds;
  console.log(`Stream: 1280x720 H.264 Main 25 fps, 2 s GOP, + PCMU; ${stream.packets.length} packets ` +
    `(${stream.videoPackets} video) over ${stream.seconds} s = ${packetsPerSecond.toFixed(0)} packets/s, ${mbit.toFixed(2)} Mbit/s\n`);

  // Warm-up: let the JIT settle before measuring.
  await cpuPerPacket(stream, 1, 'counting');
  await cpuPerPacket(stream, 10, 'queued');

  // Configurations are measured round-robin, so drift on a shared machine hits them all alike.
  const configs = [
    [0, 'counting'], [1, 'counting'], [10, 'counting'], [100, 'counting'], [10_000, 'counting'],
    [1, 'queued'], [10, 'queued'], [100, 'queued'],
  ] as const;
  const samples: number[][] = configs.map(() => []);
  for (let run = 0; run < RUNS; run++) {
    for (let c = 0; c < configs.length; c++) samples[c]!.push(await cpuPerPacket(stream, configs[c]![0], configs[c]![1]));
  }
  const baseline = median(samples[0]!);
  const rows = configs.map(([subscribers, kind], c) => {
    const us = median(samples[c]!);
    return [
      String(subscribers),
      kind === 'counting' ? 'counting sink' : 'QueuedSink, drained',
      us.toFixed(2),
      `${Math.min(...samples[c]!).toFixed(2)}–${Math.max(...samples[c]!).toFixed(2)}`,
      // Fan-out costs a few ns: only the 10,000 row rises clearly above the run-to-run noise.
      subscribers >= 10_000 ? `${(((us - baseline) / subscribers) * 1000).toFixed(2)} ns/packet, ` +
        `${(((us - baseline) / subscribers) * 1000 * (stream.packets.length / (stream.frames * 3))).toFixed(1)} ns/frame` : '',
      `${((us * packetsPerSecond) / 1e4).toFixed(3)} %`,
    ];
  });
  printTable(`CPU per camera packet: parse + depacketise + re-packetise + fan-out (median of ${RUNS} runs)`,
    ['subscribers', 'sink', 'µs/packet', 'range', 'added per subscriber', 'CPU of one core for this camera'], rows);

  const idle: number[] = [];
  const replaying: number[] = [];
  for (let run = 0; run < 5; run++) {
    idle.push(await memoryPerSubscriber(stream, false));
    replaying.push(await memoryPerSubscriber(stream, true));
  }
  printTable('Memory per in-process subscriber (1000 QueuedSinks, heap delta after GC, median of 5)', ['subscriber', 'bytes'], [
    ['idle (subscribed, queue empty)', median(idle).toFixed(0)],
    ['holding a 1 s GOP replay in its queue (frames are shared, not copied)', median(replaying).toFixed(0)],
  ]);

  const warm: number[] = [];
  for (let run = 0; run < 21; run++) warm.push(await warmFirstKeyframe(stream));
  const coldStream = buildStream(100, 8, 1);
  const cold: number[] = [];
  const phases = [0.1, 0.3, 0.5, 0.7, 0.9];
  for (const phase of phases) cold.push(await coldFirstKeyframe(coldStream, 100, phase, 250));
  printTable('Time to first keyframe for a new subscriber', ['case', 'median', 'range'], [
    ['warm: GOP cached (21 runs)', `${median(warm).toFixed(0)} µs`, `${Math.min(...warm).toFixed(0)}–${Math.max(...warm).toFixed(0)} µs`],
    ['cold: 250 ms connect, 4 s GOP, joined at GOP phase 0.1..0.9 (5 runs)', `${median(cold).toFixed(0)} ms`,
      `${Math.min(...cold).toFixed(0)}–${Math.max(...cold).toFixed(0)} ms`],
  ]);
}

function printTable(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(`${title}\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
  console.log('');
}

await main();
