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
 * Cold runs wait for the plugin to close the idle camera session (10 s idle timeout) in between.
 * Run: npm run build && npm run bench:homekit
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { FakeCamera } from '../test/helpers/fake-camera.js';
import { startHomebridge, stopAllHomebridges, type HomebridgeProcess } from '../test/helpers/homebridge.js';
import { HapCameraClient, newSessionId, type CameraAccessory, type StartOptions } from '../test/homekit/hap-camera-client.js';
import { SrtpReceiver } from '../test/homekit/srtp-receiver.js';
import { startCameraRig } from '../test/homekit/camera-rig.js';
import { SnapshotService } from '../src/snapshots/snapshot-service.js';
import { silentLogger } from '../src/util/logger.js';

const RUNS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

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

async function main(): Promise<void> {
  const rows: Row[] = [];
  console.log('HomeKit benchmark: Homebridge + hap-controller + GStreamer fake camera (640x360 H.264 25 fps, 2 s GOP, PCMU).\n');
  await throughHomebridge(rows);
  await coldWithoutKeyframeOnPlay(rows);
  const header = ['measurement', 'median ms', 'min', 'max', 'runs', 'note'];
  const table = rows.map(([name, values, note]) => [
    name,
    median(values).toFixed(0),
    Math.min(...values).toFixed(0),
    Math.max(...values).toFixed(0),
    String(values.length),
    note,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of table) console.log(line(row));
  console.log('\nhomebridge-camera-ffmpeg users report about 6 s from START to picture; HomeKit gives a snapshot 5 s.');
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
