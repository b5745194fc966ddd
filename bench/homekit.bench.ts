/**
 * HomeKit benchmark, through the real path: a Homebridge with the built plugin, paired with the npm
 * `hap-controller` like an iPhone, and GStreamer fake cameras (640x360 H.264 25 fps, 2 s GOP, PCMU).
 *
 * - START → first SRTP packet at the controller (SetupEndpoints done before START, as the Home app
 *   does), median of 5: camera stream copied with the camera session already open (warm), with the
 *   camera idle (cold: the camera session must open first), and re-encoded to 320x180 (warm).
 * - Snapshot latency (getImage over HAP): warm (camera session open, keyframe cached) and cold
 *   (camera idle), median of 5 each; plus, in process, cold against a camera that does not send a
 *   keyframe on PLAY, next to that camera's own connect + first keyframe time (the target is
 *   "under connect + 1 GOP").
 *
 * - HomeKit Secure Video, in process against a GStreamer camera at 720p (2 Mbit/s) and 1080p
 *   (4 Mbit/s), 1 s GOP, PCMU, through the real RTSP client, Source, Prebuffer and recording
 *   delegate: the pre-buffer's bytes of frames held, recording request
 *   → init segment and → first fragment (what the plugin adds after HomeKit's motion event; the
 *   hub's own Data Stream set-up is not in it, as no HomeKit hub runs here), the media seconds the
 *   first fragment starts before the request, and this process's CPU while a recording is pulled,
 *   next to the same camera with the pre-buffer alone. Recordings copy the camera's H.264.
 * - HomeKit Secure Video of an H.265 camera (720p 2 Mbit/s and 1080p 4 Mbit/s, 1 s GOP, AAC), whose
 *   video is re-encoded to H.264 while recording is on (h264-recording-feed.ts): the encoder
 *   ffmpeg's CPU and this process's, in 2 s windows with the pre-buffer running, the pre-buffer's
 *   bytes, and the frames the encoder lost or skipped.
 *
 * Cold runs wait for the plugin to close the idle camera session (10 s idle timeout) in between.
 * Run: npm run build && npm run bench:homekit   (npm run bench:homekit -- hksv: the Secure Video part alone;
 * -- hksv-h265: the H.265 re-encode part alone)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import hapNodejs from '@homebridge/hap-nodejs';
import type { HAP } from 'homebridge';
import { runningFfmpegPids } from '../src/ffmpeg/ffmpeg-process.js';
import { HomeKitRecordingDelegate } from '../src/homekit/recording/recording-delegate.js';
import { hubRecordingConfiguration } from '../test/homekit/hub-configuration.js';
import { FakeCamera } from '../test/helpers/fake-camera.js';
import { startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../test/helpers/homebridge.js';
import { HapCameraClient, newSessionId, type CameraAccessory, type StartOptions } from '../test/homekit/hap-camera-client.js';
import { SrtpReceiver } from '../test/homekit/srtp-receiver.js';
import { startCameraRig } from '../test/homekit/camera-rig.js';
import { findBox } from '../test/helpers/mp4.js';
import { cpuSeconds } from '../test/helpers/proc-stat.js';
import { SnapshotService } from '../src/snapshots/snapshot-service.js';
import { silentLogger } from '../src/util/logger.js';
import { median } from '../test/helpers/stats.js';

const RUNS = 5;

type Row = [string, number[], string];

async function waitCameraIdle(camera: FakeCamera): Promise<void> {
  // The plugin closes an unwatched camera session after its 10 s idle timeout.
  await camera.waitForSessionCount(0, 30_000);
  await sleep(300);
}

async function firstPacket(hap: HapCameraClient, cam: CameraAccessory, options: StartOptions): Promise<number> {
  const service = cam.streamManagements[0]!;
  const video = await SrtpReceiver.open();
  const audio = await SrtpReceiver.open();
  const id = newSessionId();
  try {
    const answer = await hap.setupEndpoints(service, { id, videoPort: video.port, audioPort: audio.port, video: video.keys, audio: audio.keys });
    video.keepAlive({ address: answer.address, port: answer.videoPort });
    const started = performance.now();
    await hap.start(service, id, options);
    await video.waitForPackets(1, 20_000);
    return video.packets[0]!.at - started;
  } finally {
    await hap.end(service, id).catch(() => undefined);
    video.close();
    audio.close();
    await sleep(500);
  }
}

async function snapshot(hap: HapCameraClient, cam: CameraAccessory, width: number, height: number): Promise<number> {
  const started = performance.now();
  const jpeg = await hap.getImage(width, height, cam.aid);
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG');
  return performance.now() - started;
}

/** Distinct sizes so the 4 s snapshot cache never answers. */
const SIZES: Array<[number, number]> = [[640, 360], [480, 270], [320, 180], [320, 240], [480, 360]];

async function throughHomebridge(rows: Row[]): Promise<void> {
  const camera = await FakeCamera.start({ width: 640, height: 360, fps: 25, keyframeIntervalFrames: 50, audio: 'pcmu' });
  let hb: HomebridgeProcess | undefined;
  let hap: HapCameraClient | undefined;
  try {
    hb = await startHomebridge({
      debug: false,
      platform: {
        platform: 'WebRTCCameras',
        name: 'WebRTC Cameras',
        cameras: [{ name: 'Bench', rtspUrl: camera.url }],
        web: { port: 0, bind: '127.0.0.1' },
        restream: { port: 0 },
      },
    });
    await hb.waitForLog(/\[Bench\] Home app camera ready/, 30_000);
    hap = await HapCameraClient.pair(hb.bridgePort, hb.pin);
    const cam = await hap.camera('Bench');

    // Warm: one long-running stream on another stream service keeps the camera session open.
    const keep = cam.streamManagements[3]!;
    const holdVideo = await SrtpReceiver.open();
    const holdAudio = await SrtpReceiver.open();
    const holdId = newSessionId();
    const holdAnswer = await hap.setupEndpoints(keep, { id: holdId, videoPort: holdVideo.port, audioPort: holdAudio.port, video: holdVideo.keys, audio: holdAudio.keys });
    holdVideo.keepAlive({ address: holdAnswer.address, port: holdAnswer.videoPort });
    await hap.start(keep, holdId, { width: 640, height: 360 });
    await holdVideo.waitForPackets(10, 20_000);

    const copyWarm: number[] = [];
    for (let i = 0; i < RUNS; i++) copyWarm.push(await firstPacket(hap, cam, { width: 640, height: 360 }));
    rows.push(['START → first packet, copy 640x360, warm', copyWarm, 'camera session already open']);
    const transcode: number[] = [];
    for (let i = 0; i < RUNS; i++) transcode.push(await firstPacket(hap, cam, { width: 320, height: 180, maxBitrateKbps: 300, profile: 0, level: 0 }));
    rows.push(['START → first packet, libx264 320x180, warm', transcode, 'decode + encode the cached GOP']);
    const snapWarm: number[] = [];
    for (const [w, h] of SIZES) snapWarm.push(await snapshot(hap, cam, w, h));
    rows.push(['snapshot (getImage), warm', snapWarm, 'decode the cached keyframe']);

    await hap.end(keep, holdId);
    holdVideo.close();
    holdAudio.close();

    const copyCold: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await waitCameraIdle(camera);
      copyCold.push(await firstPacket(hap, cam, { width: 640, height: 360 }));
    }
    rows.push(['START → first packet, copy 640x360, cold', copyCold, 'camera session opened by START']);
    const snapCold: number[] = [];
    for (const [w, h] of SIZES) {
      await waitCameraIdle(camera);
      snapCold.push(await snapshot(hap, cam, w, h));
    }
    rows.push(['snapshot (getImage), cold', snapCold, 'camera sends an IDR on PLAY']);
  } finally {
    await hap?.close().catch(() => undefined);
    await hb?.stop({ removeStorage: true });
    await stopAllHomebridges();
    await camera.close();
  }
}

/** Worst case for a cold snapshot: the camera ignores keyframe requests, so the next regular keyframe is awaited. */
async function coldWithoutKeyframeOnPlay(rows: Row[]): Promise<void> {
  const rig = await startCameraRig({ width: 640, height: 360, keyframeIntervalFrames: 50, keyframeOnPlay: false, idleTimeoutMs: 500 });
  try {
    const cold: number[] = [];
    const connect: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await rig.camera.waitForSessionCount(0, 10_000);
      // Spread the join over the camera's GOP phase.
      await sleep(300 + i * 400);
      const snapshots = new SnapshotService({ source: rig.source, ffmpegPath: rig.ffmpeg.path, stillSources: [], log: silentLogger, cacheMs: 0 });
      const result = await snapshots.take({ width: 640, height: 360 });
      if (result?.origin !== 'stream') throw new Error(`cold snapshot came from ${result?.origin ?? 'nowhere'}`);
      cold.push(result.ms);
      connect.push(rig.source.stats().timeToFirstFrameMs ?? Number.NaN);
      snapshots.close();
    }
    rows.push(['snapshot cold, no IDR on PLAY (in process)', cold, `camera connect + first keyframe: median ${median(connect).toFixed(0)} ms; GOP 2000 ms`]);
  } finally {
    await rig.close();
  }
}


/**
 * Where a fragment's video run ends, in 90 kHz ticks from the start of the recording: the first
 * traf's tfdt plus its trun's sample durations (the muxer writes one duration per sample).
 */
function fragmentEnd(chunk: Buffer): number | undefined {
  const traf = findBox(chunk, ['moof', 'traf']);
  const tfdt = traf && findBox(traf, ['tfdt']);
  const trun = traf && findBox(traf, ['trun']);
  if (!tfdt || !trun) return undefined;
  // findBox gives a leaf box with its 8-byte header.
  let end = tfdt[8] === 1 ? Number(tfdt.readBigUInt64BE(12)) : tfdt.readUInt32BE(12);
  const flags = trun.readUInt32BE(8) & 0xffffff;
  const count = trun.readUInt32BE(12);
  let at = 16 + (flags & 0x1 ? 4 : 0) + (flags & 0x4 ? 4 : 0);
  const perSample = [0x100, 0x200, 0x400, 0x800].filter((bit) => flags & bit).length * 4;
  if (!(flags & 0x100)) return undefined;
  for (let i = 0; i < count; i++, at += perSample) end += trun.readUInt32BE(at);
  return end;
}

function cpuMsOver(ms: number): Promise<number> {
  const before = process.cpuUsage();
  return sleep(ms).then(() => {
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  });
}

async function secureVideo(rows: Row[], memory: Array<[string, number[], string]>): Promise<void> {
  const HAP_API = hapNodejs as unknown as HAP;
  for (const [width, height, kbps] of [[1280, 720, 2000], [1920, 1080, 4000]] as const) {
    const label = `${height}p ${kbps / 1000} Mbit/s`;
    const rig = await startCameraRig({ width, height, fps: 25, keyframeIntervalFrames: 25, bitrateKbps: kbps, audio: 'pcmu', idleTimeoutMs: 60_000 });
    const delegate = new HomeKitRecordingDelegate({ hap: HAP_API, source: rig.source, log: silentLogger });
    // The newest video and keyframe timestamps: a live fragment is cut when the next keyframe
    // arrives, so its end (from the recording's start) against that keyframe's timestamp tells
    // where the recording began on the camera's clock.
    let newest: number | undefined;
    let newestKey: number | undefined;
    const clock = rig.source.subscribe({
      write: (frame) => {
        if (frame.kind === 'video') {
          newest = frame.timestamp;
          if (frame.keyframe) newestKey = frame.timestamp;
        }
        return true;
      },
    });
    try {
      delegate.updateRecordingConfiguration(hubRecordingConfiguration({}, [width, height, 25]));
      delegate.updateRecordingActive(true);
      // Fill: 4 s plus one GOP, then sample the steady state once a second.
      await sleep(7_000);
      const bytes: number[] = [];
      const seconds: number[] = [];
      for (let i = 0; i < 10; i++) {
        await sleep(1_000);
        const stats = delegate.prebuffer.stats();
        bytes.push(stats.bytes / 1e6);
        seconds.push(stats.seconds);
      }
      memory.push([`pre-buffer, ${label} (MB of frames)`, bytes, `holds ${median(seconds).toFixed(1)} s (4 s + up to 1 GOP)`]);

      const idleCpu = await cpuMsOver(10_000);
      const toInit: number[] = [];
      const toFragment: number[] = [];
      const lead: number[] = [];
      let recordingCpu = 0;
      for (let run = 0; run < RUNS; run++) {
        const abort = new AbortController();
        const started = performance.now();
        const requestedAt = newest;
        const stream = delegate.handleRecordingStreamRequest(run + 1, abort.signal);
        const init = await stream.next();
        toInit.push(performance.now() - started);
        const first = await stream.next();
        toFragment.push(performance.now() - started);
        if (init.done || first.done) throw new Error('the recording ended before its first fragment');
        // Keep pulling as a hub would; the last run measures the CPU of a running recording. The
        // first fragment that had to wait for the camera is a live one: it gives the lead.
        let leadTaken = false;
        const pulling = (async () => {
          for (;;) {
            const next = await stream.next();
            if (next.done) return;
            if (performance.now() - started < 200 || requestedAt === undefined || newestKey === undefined) continue;
            const end = fragmentEnd(next.value.data);
            if (end !== undefined && !leadTaken) {
              leadTaken = true;
              lead.push(((requestedAt - (newestKey - end)) >>> 0) / 90);
            }
          }
        })();
        // A live fragment comes once the hub's 4 s fragment is full (up to 5 s with a 1 s GOP).
        if (run === RUNS - 1) recordingCpu = await cpuMsOver(10_000);
        else await sleep(6_000);
        delegate.closeRecordingStream(run + 1, undefined);
        abort.abort();
        await pulling;
      }
      rows.push([`HKSV ${label}: request → init segment`, toInit, 'in process; the hub\'s Data Stream set-up is not included']);
      rows.push([`HKSV ${label}: request → first fragment`, toFragment, 'the pre-buffer, muxed at once']);
      if (lead.length > 0) rows.push([`HKSV ${label}: first fragment starts before the request`, lead, 'media ms; at least the 4000 ms asked']);
      memory.push([`CPU, ${label}: pre-buffer only (% of one core)`, [idleCpu / 100], 'RTSP client + Source + Prebuffer, this process']);
      memory.push([`CPU, ${label}: + one recording, copy (% of one core)`, [recordingCpu / 100], 'plus fMP4 muxing of every frame']);
    } finally {
      clock.unsubscribe();
      delegate.close();
      await rig.close();
    }
  }
}

/** An H.265 camera's recordings: the one H.264 encoder's cost while the pre-buffer runs. */
async function reencodedSecureVideo(memory: Array<[string, number[], string]>): Promise<void> {
  const HAP_API = hapNodejs as unknown as HAP;
  for (const [width, height, kbps] of [[1280, 720, 2000], [1920, 1080, 4000]] as const) {
    const label = `H.265 ${height}p ${kbps / 1000} Mbit/s`;
    const rig = await startCameraRig({ codec: 'h265', width, height, fps: 25, keyframeIntervalFrames: 25, bitrateKbps: kbps, audio: 'aac', idleTimeoutMs: 60_000 });
    const before = new Set(runningFfmpegPids());
    const delegate = new HomeKitRecordingDelegate({ hap: HAP_API, source: rig.source, reencode: true, ffmpeg: rig.ffmpeg, log: silentLogger });
    try {
      delegate.updateRecordingConfiguration(hubRecordingConfiguration({}, [width, height, 25]));
      delegate.updateRecordingActive(true);
      await sleep(7_000);
      const feed = delegate.feed;
      if (!feed) throw new Error(`${label}: no H.264 feed`);
      const pid = runningFfmpegPids().find((p) => !before.has(p));
      if (pid === undefined) throw new Error(`${label}: the H.264 encoder is not running`);
      const encoder: number[] = [];
      const plugin: number[] = [];
      const bytes: number[] = [];
      for (let i = 0; i < 5; i++) {
        const startEncoder = cpuSeconds(pid);
        const own = process.cpuUsage();
        const t0 = performance.now();
        await sleep(2_000);
        const wall = (performance.now() - t0) / 1000;
        encoder.push(((cpuSeconds(pid) - startEncoder) / wall) * 100);
        const used = process.cpuUsage(own);
        plugin.push(((used.user + used.system) / 1e6 / wall) * 100);
        bytes.push(delegate.prebuffer.stats().bytes / 1e6);
      }
      const stats = feed.stats();
      memory.push([`CPU, ${label}: the H.264 encoder (% of one core)`, encoder, `libx264 superfast ${width}x${height} at the hub's ${delegate.selectedBitrateKbps()} kbit/s; ${stats.framesLost} frames lost, ${stats.framesSkipped} skipped of ${stats.framesIn}`]);
      memory.push([`CPU, ${label}: this process (% of one core)`, plugin, 'RTSP client + Source + feed + Prebuffer']);
      memory.push([`pre-buffer, ${label} re-encoded (MB of frames)`, bytes, `H.264 at the hub's ${delegate.selectedBitrateKbps()} kbit/s`]);
    } finally {
      delegate.close();
      await rig.close();
    }
  }
}

function printTable(header: string[], rows: Array<[string, number[], string]>, digits: number): void {
  const table = rows.map(([name, values, note]) => [
    name,
    median(values).toFixed(digits),
    Math.min(...values).toFixed(digits),
    Math.max(...values).toFixed(digits),
    String(values.length),
    note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const memory: Array<[string, number[], string]> = [];
  const only = process.argv[2];
  console.log('HomeKit benchmark: Homebridge + hap-controller + GStreamer fake camera (640x360 H.264 25 fps, 2 s GOP, PCMU).\n');
  if (only !== 'hksv' && only !== 'hksv-h265') {
    await throughHomebridge(rows);
    await coldWithoutKeyframeOnPlay(rows);
  }
  if (only !== 'hksv-h265') await secureVideo(rows, memory);
  await reencodedSecureVideo(memory);
  if (rows.length > 0) {
    printTable(['measurement', 'median ms', 'min', 'max', 'runs', 'note'], rows, 0);
    console.log('');
  }
  printTable(['HomeKit Secure Video cost', 'median', 'min', 'max', 'samples', 'note'], memory, 1);
  console.log('\nhomebridge-camera-ffmpeg users report about 6 s from START to picture; HomeKit gives a snapshot 5 s.');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
