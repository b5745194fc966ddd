/**
 * SRTP + send cost per viewer-packet, the fan-out's inner loop alone: 50 viewer streams each
 * protect and send every packet of a 720p frame (8 packets of 1200 bytes) to a real UDP socket in
 * a child process, for each way the plugin can do it:
 *
 * - `javascript`: srtp-writer.ts (a new OpenSSL cipher per packet) and one dgram send per packet,
 *   the fallback wherever the native binary does not load;
 * - `native, per packet`: the addon's protect and one sendmsg per packet (the pacer's and NACK path);
 * - `native, per frame`: the addon's sendFrame, the frame protected and sent in one sendmmsg;
 * - `native, per frame, UDP GSO`: the same with segmentation offload, the frame's equal-size
 *   packets as one message the kernel cuts up (the live path).
 *
 * CPU time is the process's own (user + system, process.cpuUsage), so the kernel's loopback
 * delivery up to the receiver's socket counts, as it does for a real viewer. Medians of 5 windows,
 * and ratios against `javascript` from the same run.
 *
 * Run: npm run bench:srtp
 */
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { frameBatch, nativeFanout, NativeStreamWriter, udpSocketFd, type NativeTarget } from '../src/rtp/native-fanout.js';
import { SRTP_PROFILE_AEAD_AES_128_GCM, SRTP_PROFILE_AES128_CM_SHA1_80, SrtpStreamWriter, type SrtpKeyMaterial } from '../src/rtp/srtp-writer.js';
import { median } from '../test/helpers/stats.js';

const VIEWERS = 50;
const PACKETS_PER_FRAME = 8;
const WINDOW_MS = 1000;
const WINDOWS = 5;

function keys(profile: number): SrtpKeyMaterial {
  return {
    profile,
    srtpSessionKey: randomBytes(16),
    srtpSessionSalt: randomBytes(profile === SRTP_PROFILE_AEAD_AES_128_GCM ? 12 : 14),
    srtpSessionAuthTag: randomBytes(20),
  };
}

/** Sends frames in a tight loop for one window; returns CPU µs per packet. */
async function window(sendFrame: (seq: number) => number): Promise<number> {
  const start = process.cpuUsage();
  const t0 = performance.now();
  let packets = 0;
  let seq = 0;
  while (performance.now() - t0 < WINDOW_MS) {
    packets += sendFrame(seq);
    seq = (seq + PACKETS_PER_FRAME) & 0xffff;
    // Let libuv flush the JavaScript path's queued sends, as the event loop would between frames.
    if ((seq & 0x3ff) < PACKETS_PER_FRAME) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setImmediate(r));
  const used = process.cpuUsage(start);
  return (used.user + used.system) / packets;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'sink') {
    const sink = createSocket('udp4');
    sink.on('message', () => undefined);
    sink.bind(0, '127.0.0.1', () => process.send?.({ port: sink.address().port }));
    process.on('message', () => process.exit(0));
    return;
  }
  const native = nativeFanout();
  if (!native.loaded) throw new Error(`the native fan-out did not load: ${native.reason}`);
  const child = fork(fileURLToPath(import.meta.url), ['sink'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve((m as { port: number }).port)));
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const target: NativeTarget = { fd: udpSocketFd(socket)!, destination: native.fanout.createDestination('127.0.0.1', port) };
  const packets = Array.from({ length: PACKETS_PER_FRAME }, (_, i) => ({ payload: randomBytes(1200), marker: i === PACKETS_PER_FRAME - 1 }));
  const batch = frameBatch(packets);

  const rows: Array<{ profile: string; path: string; us: number }> = [];
  for (const profile of [SRTP_PROFILE_AEAD_AES_128_GCM, SRTP_PROFILE_AES128_CM_SHA1_80]) {
    const name = profile === SRTP_PROFILE_AEAD_AES_128_GCM ? 'AEAD_AES_128_GCM' : 'AES_CM_128_HMAC_SHA1_80';
    const js = Array.from({ length: VIEWERS }, (_, i) => new SrtpStreamWriter(keys(profile), i + 1));
    const nat = Array.from({ length: VIEWERS }, (_, i) => new NativeStreamWriter(native.fanout, keys(profile), i + 1));
    const paths: Array<[string, (seq: number) => number]> = [
      [
        'javascript',
        (seq) => {
          for (const writer of js) for (let i = 0; i < PACKETS_PER_FRAME; i++) socket.send(writer.protectParts(96, packets[i]!.marker, (seq + i) & 0xffff, 0, packets[i]!.payload), port, '127.0.0.1');
          return VIEWERS * PACKETS_PER_FRAME;
        },
      ],
      [
        'native, per packet',
        (seq) => {
          for (const writer of nat) {
            for (let i = 0; i < PACKETS_PER_FRAME; i++) native.fanout.sendDatagram(target.fd, target.destination, writer.protectParts(96, packets[i]!.marker, (seq + i) & 0xffff, 0, packets[i]!.payload));
          }
          return VIEWERS * PACKETS_PER_FRAME;
        },
      ],
      [
        'native, per frame',
        (seq) => {
          native.fanout.setSegmentationOffload(false);
          for (const writer of nat) writer.sendFrame(target, 96, 0, seq, batch);
          return VIEWERS * PACKETS_PER_FRAME;
        },
      ],
      [
        'native, per frame, UDP GSO',
        (seq) => {
          native.fanout.setSegmentationOffload(true);
          for (const writer of nat) writer.sendFrame(target, 96, 0, seq, batch);
          return VIEWERS * PACKETS_PER_FRAME;
        },
      ],
    ];
    // Windows interleaved across paths, so drift in the machine's load hits each alike.
    const samples = new Map<string, number[]>(paths.map(([path]) => [path, []]));
    for (let w = 0; w < WINDOWS; w++) for (const [path, send] of paths) samples.get(path)!.push(await window(send));
    for (const [path] of paths) rows.push({ profile: name, path, us: median(samples.get(path)!) });
  }
  socket.close();
  child.send('exit');

  const header = ['SRTP profile', 'path', 'CPU µs per viewer-packet (median)', 'vs javascript'];
  const lines = rows.map((r) => {
    const base = rows.find((x) => x.profile === r.profile && x.path === 'javascript')!.us;
    return [r.profile, r.path, r.us.toFixed(2), `${(r.us / base).toFixed(2)}×`];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const line of lines) console.log(fmt(line));
  console.log(`\n${VIEWERS} viewer streams, frames of ${PACKETS_PER_FRAME} × 1200-byte packets, ${WINDOWS} windows of ${WINDOW_MS} ms per path (interleaved); binary ${native.path}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
