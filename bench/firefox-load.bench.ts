/**
 * A 1080p camera watched in Firefox (no H.264 here, so the VP8 + Opus variant) on a busy machine:
 * the product's whole chain in a real Homebridge (GStreamer camera 1920x1080 25 fps H.264 + PCMU →
 * RTSP client → Source → re-stream → one VP8 ffmpeg → its Source → werift peer → Firefox ESR),
 * first on the machine as it is, then with `stress-ng --cpu N` taking N cores beside it.
 *
 * Each phase waits `--settle` seconds (the variant's keep-up rule needs two 5 s windows to step
 * down), then samples Firefox's own stats every second for `--seconds`: frames decoded per second
 * (median and the lowest second), the picture size it got, Opus packets per second (50 is every
 * packet) and audio concealment where Firefox reports it. The log lines of any step down are
 * quoted. The camera runs on the same machine and takes its share too: this is the pessimistic
 * case of a Raspberry Pi doing everything.
 *
 * Run: npm run bench:firefox-load [-- --stress 1 --seconds 30 --settle 20]
 * Needs stress-ng (apt install stress-ng) for the loaded phase.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchFirefox, readRtcStats, waitForFramesDecoded, type InboundRtpStats, type PeerConnectionStats, type ScriptablePage } from '../test/helpers/browser.js';
import { FakeCamera } from '../test/helpers/fake-camera.js';
import { platformConfig, startHomebridge, stopAllHomebridges } from '../test/helpers/homebridge.js';
import { getFreePort } from '../test/helpers/ports.js';
import { readProcStat, readSchedTimes } from '../test/helpers/proc-stat.js';
import { cleanupAll } from '../test/helpers/processes.js';
import { median } from '../test/helpers/stats.js';

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const STRESS_CPUS = argument('stress', 1);
const SECONDS = argument('seconds', 30);
const SETTLE_SECONDS = argument('settle', 20);
const VIEWER = { username: 'bench', password: 'Bench-Viewer-Pass-4' };

interface Sample {
  at: number;
  frames: number;
  /** Firefox's video report, to tell frames the server never sent from frames Firefox lost or dropped. */
  video?: InboundRtpStats;
  audioPackets: number;
  concealed?: number;
  samples?: number;
  width?: number;
  height?: number;
}

function sampleOf(stats: PeerConnectionStats[]): Sample {
  const pc = stats.find((p) => (p.video?.framesDecoded ?? 0) > 0) ?? stats[0];
  return {
    at: performance.now(),
    frames: pc?.video?.framesDecoded ?? 0,
    ...(pc?.video ? { video: pc.video } : {}),
    audioPackets: pc?.audio?.packetsReceived ?? 0,
    ...(pc?.audio?.concealedSamples !== undefined ? { concealed: pc.audio.concealedSamples } : {}),
    ...(pc?.audio?.totalSamplesReceived !== undefined ? { samples: pc.audio.totalSamplesReceived } : {}),
    ...(pc?.video?.frameWidth ? { width: pc.video.frameWidth, height: pc.video.frameHeight ?? 0 } : {}),
  };
}

interface ProcessTimes {
  command: string;
  parent: number;
  /** utime + stime. */
  seconds: number;
  /** Time its threads were ready to run but waited for a CPU. */
  waitSeconds: number;
}

/** CPU and run-queue time (s) of every process, by pid, with its command and parent. */
function processTimes(): Map<number, ProcessTimes> {
  const all = new Map<number, ProcessTimes>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat) all.set(stat.pid, { command: stat.command, parent: stat.parent, seconds: stat.cpuSeconds, waitSeconds: readSchedTimes(stat.pid)?.waitSeconds ?? 0 });
  }
  return all;
}

/** Whom a process belongs to: the plugin's ffmpeg, the plugin (Homebridge), Firefox, the camera, stress-ng, other. */
function ownerOf(pid: number, all: ReturnType<typeof processTimes>, roots: { homebridge: number; camera: number }): string {
  const command = all.get(pid)?.command ?? '';
  let at: number | undefined = pid;
  for (let hops = 0; at && hops < 20; hops++) {
    if (at === roots.homebridge) return command === 'ffmpeg' ? 'the variant ffmpeg' : 'Homebridge + plugin (node)';
    if (at === roots.camera) return 'the camera (GStreamer, its own encoder)';
    at = all.get(at)?.parent;
  }
  if (/firefox|Web Content|WebExtensions|Socket Process|RDD|Isolated|Privileged/i.test(command)) return 'Firefox';
  if (/stress-ng/.test(command)) return 'stress-ng';
  return 'other';
}

/**
 * CPU by owner between two snapshots taken `seconds` apart, as % of one core, with the time its
 * threads spent ready but waiting for a CPU (summed over threads, so it may pass 100 %): a process
 * short of frames with a long wait is starved of CPU; one with a short wait was waiting on its input.
 */
function cpuByOwner(before: ReturnType<typeof processTimes>, after: ReturnType<typeof processTimes>, seconds: number, roots: { homebridge: number; camera: number }): string {
  const shares = new Map<string, { used: number; waited: number }>();
  for (const [pid, now] of after) {
    const earlier = before.get(pid);
    const used = now.seconds - (earlier?.seconds ?? 0);
    const waited = now.waitSeconds - (earlier?.waitSeconds ?? 0);
    if (used <= 0 && waited <= 0) continue;
    const owner = ownerOf(pid, after, roots);
    const share = shares.get(owner) ?? { used: 0, waited: 0 };
    share.used += Math.max(0, used);
    share.waited += Math.max(0, waited);
    shares.set(owner, share);
  }
  return [...shares.entries()].sort((a, b) => b[1].used - a[1].used)
    .map(([owner, { used, waited }]) => `${owner} ${((100 * used) / seconds).toFixed(0)} % (waited for a CPU ${((100 * waited) / seconds).toFixed(0)} %)`).join(', ');
}

/** The camera's frame rate as the plugin receives it (`webrtc_cameras_fps` in /metrics, read with the page's session). */
async function cameraFps(page: ScriptablePage): Promise<number | undefined> {
  const text = await page.evaluate("fetch('/metrics').then((r) => r.text())");
  const match = /^webrtc_cameras_fps\{[^}]*camera="big"[^}]*\} ([\d.]+)/m.exec(String(text));
  return match ? Number(match[1]) : undefined;
}

interface PhaseResult {
  name: string;
  fpsMedian: number;
  fpsLowest: number;
  fpsMean: number;
  size: string;
  audioPerSecond: number;
  concealedPercent: string;
  load: string;
  /** The camera's own frame rate at the plugin, median of the phase's seconds. */
  cameraFps?: number;
  /** Firefox's video counters over the phase. */
  video: string;
}

/** Firefox's video counters the phase reports, with their labels. */
const VIDEO_COUNTERS: ReadonlyArray<[keyof InboundRtpStats, string]> = [
  ['framesReceived', 'received'], ['framesDecoded', 'decoded'], ['framesDropped', 'dropped'],
  ['packetsLost', 'packets lost'], ['nackCount', 'NACKs'], ['pliCount', 'PLIs'], ['freezeCount', 'freezes'],
];

/** Each counter's change over the phase, or '?' where Firefox does not report it. */
function videoCounters(first: InboundRtpStats | undefined, last: InboundRtpStats | undefined): string {
  return VIDEO_COUNTERS.map(([field, label]) => {
    const a = first?.[field];
    const b = last?.[field];
    return `${label} ${typeof a === 'number' && typeof b === 'number' ? b - a : '?'}`;
  }).join(', ');
}

async function main(): Promise<void> {
  const own = Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal);
  if (own.length === 0) throw new Error('Firefox ESR gathers no loopback candidates: this bench needs a non-loopback IPv4 interface');
  const haveStress = spawnSync('stress-ng', ['--version']).status === 0;
  if (STRESS_CPUS > 0 && !haveStress) throw new Error('stress-ng is not installed (apt-get install stress-ng), or run with --stress 0');
  const camera = await FakeCamera.start({ width: 1920, height: 1080, fps: 25, keyframeIntervalFrames: 50, audio: 'pcmu', bitrateKbps: 4000 });
  const hb = await startHomebridge({
    platform: platformConfig({ cameras: [{ name: 'Big', id: 'big', rtspUrl: camera.url }], web: { port: await getFreePort() }, viewers: [VIEWER] }),
    debug: false,
  });
  const line = await hb.waitForLog(/Watch page: (\S+)/, 20_000);
  const base = /Watch page: (\S+)/.exec(line)![1]!.replace(/\/$/, '');
  const firefox = await launchFirefox();
  let stress: ChildProcess | undefined;
  const results: PhaseResult[] = [];
  try {
    const page = await firefox.openPage(`${base}/#camera=big`);
    if (new URL(page.url()).pathname === '/login') {
      await page.type('input[name=username]', VIEWER.username);
      await page.type('input[name=password]', VIEWER.password);
      await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
      await page.goto('about:blank');
      await page.goto(`${base}/#camera=big`);
    }
    await waitForFramesDecoded(page, 25, 60_000);
    for (const phase of STRESS_CPUS > 0 ? ['as it is', `stress-ng --cpu ${STRESS_CPUS}`] : ['as it is']) {
      if (phase !== 'as it is') {
        stress = spawn('stress-ng', ['--cpu', String(STRESS_CPUS), '--timeout', `${SETTLE_SECONDS + SECONDS + 30}s`], { stdio: 'ignore' });
      }
      const since = hb.lines.length;
      await sleep(SETTLE_SECONDS * 1000);
      const timesBefore = processTimes();
      const samples: Sample[] = [sampleOf(await readRtcStats(page))];
      const cameraRates: number[] = [];
      for (let i = 0; i < SECONDS; i++) {
        await sleep(1000);
        samples.push(sampleOf(await readRtcStats(page)));
        const rate = await cameraFps(page).catch(() => undefined);
        if (rate !== undefined) cameraRates.push(rate);
      }
      const cpu = cpuByOwner(timesBefore, processTimes(), (samples.at(-1)!.at - samples[0]!.at) / 1000, { homebridge: hb.pid!, camera: camera.pid! });
      const fps = samples.slice(1).map((s, i) => ((s.frames - samples[i]!.frames) * 1000) / (s.at - samples[i]!.at));
      const first = samples[0]!;
      const last = samples.at(-1)!;
      const seconds = (last.at - first.at) / 1000;
      const concealed = last.concealed !== undefined && first.concealed !== undefined && last.samples !== undefined && first.samples !== undefined && last.samples > first.samples
        ? `${((100 * (last.concealed - first.concealed)) / (last.samples - first.samples)).toFixed(1)} %`
        : 'not reported';
      const steps = hb.lines.slice(since).filter((l) => /encoder gave|kept up for a while/.test(l)).map((l) => l.replace(/^.*?\] /, ''));
      results.push({
        name: phase,
        fpsMedian: median(fps),
        fpsLowest: Math.min(...fps),
        fpsMean: (last.frames - first.frames) / seconds,
        size: last.width ? `${last.width}x${last.height}` : '?',
        audioPerSecond: (last.audioPackets - first.audioPackets) / seconds,
        concealedPercent: concealed,
        load: (await import('node:os')).loadavg()[0]!.toFixed(1),
        ...(cameraRates.length ? { cameraFps: median(cameraRates) } : {}),
        video: videoCounters(first.video, last.video),
      });
      console.log(`# ${phase}: CPU by process (% of one core): ${cpu}`);
      if (steps.length) console.log(`# ${phase}: ${steps.join(' | ')}`);
      stress?.kill();
      stress = undefined;
    }
  } finally {
    stress?.kill();
    await firefox.close();
    await hb.stop({ removeStorage: true });
    await stopAllHomebridges();
    await camera.close();
    await cleanupAll();
  }
  console.log(`\nFirefox ESR on a 1920x1080 25 fps camera (VP8 + Opus variant), ${SECONDS} s per phase after ${SETTLE_SECONDS} s to settle\n`);
  console.log('| machine | camera fps at the plugin | fps median | lowest second | mean | picture | Opus packets/s (50 = all) | audio concealed | load (1 min) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    console.log(`| ${r.name} | ${r.cameraFps?.toFixed(1) ?? '?'} | ${r.fpsMedian.toFixed(1)} | ${r.fpsLowest.toFixed(1)} | ${r.fpsMean.toFixed(1)} | ${r.size} | ${r.audioPerSecond.toFixed(1)} | ${r.concealedPercent} | ${r.load} |`);
  }
  for (const r of results) console.log(`# ${r.name}: Firefox video over the phase: ${r.video}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
