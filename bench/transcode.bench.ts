/**
 * The transcoded variants' cost and start-up (VP8; H.264 and the AAC camera's Opus sound beside it), in process with the real parts: a GStreamer fake camera
 * (H.264 25 fps, 2 s GOP, PCMU) → the RTSP client → the camera's Source → the loopback re-stream →
 * one libvpx ffmpeg → the variant Source → a sink.
 *
 * - Join → first VP8 keyframe at the sink, median of 5: with the camera's Source already live
 *   (warm: its GOP cache feeds ffmpeg at once) and idle (cold: the camera session opens first).
 * - What the transcoder holds back: the camera is stopped mid-stream (3 times); how long after the
 *   camera's last frame reached its Source the variant's last VP8 frame arrived, and how many of
 *   the frames that went in never came out (frames an encoder keeps are delay; negative: the
 *   replayed GOP was still draining when the count started).
 * - Steady state over 10 s at 640x360 and 1280x720: the transcoder's CPU (utime + stime of the one
 *   ffmpeg, as % of one core), the variant's frame rate and bitrate, and the camera's session count
 *   with 20 sinks on the variant (it must stay 1, and so must the number of encoders).
 *
 * Run: npm run bench:transcode
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { probeFfmpeg } from '../src/ffmpeg/find-ffmpeg.js';
import { runningFfmpegPids } from '../src/ffmpeg/ffmpeg-process.js';
import { Source } from '../src/media/source.js';
import type { FrameSink, MediaFrame } from '../src/media/types.js';
import { createRestreamServer } from '../src/restream/server.js';
import { rtspUpstream } from '../src/rtsp/upstream.js';
import { TranscodedVariants } from '../src/transcode/variants.js';
import { silentLogger } from '../src/util/logger.js';
import { FakeCamera } from '../test/helpers/fake-camera.js';
import { cpuSeconds } from '../test/helpers/proc-stat.js';
import { median } from '../test/helpers/stats.js';

const RUNS = 5;

class FirstKeyframe implements FrameSink {
  at = -1;
  frames = 0;
  write(frame: MediaFrame): boolean {
    if (frame.kind === 'video') {
      this.frames++;
      if (frame.keyframe && this.at < 0) this.at = performance.now();
    }
    return true;
  }
  async wait(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.at < 0) {
      if (Date.now() > deadline) throw new Error('no VP8 keyframe in time');
      await sleep(5);
    }
  }
}

interface Rig {
  camera: FakeCamera;
  main: Source;
  variants: TranscodedVariants;
  close(): Promise<void>;
}

async function rig(width: number, height: number, audio: 'pcmu' | 'aac' = 'pcmu'): Promise<Rig> {
  const ffmpeg = await probeFfmpeg('ffmpeg', 'PATH');
  const camera = await FakeCamera.start({ width, height, fps: 25, keyframeIntervalFrames: 50, audio, bitrateKbps: width > 1000 ? 2500 : 1000 });
  const main = new Source({ id: 'cam', name: 'Cam', upstream: rtspUpstream({ url: camera.url, cameraName: 'Cam', logger: silentLogger }), logger: silentLogger, idleTimeoutMs: 500 });
  const restream = await createRestreamServer({ getSource: (id) => (id === 'cam' ? main : undefined), log: silentLogger });
  const variants = new TranscodedVariants({ ffmpeg, restreamUrl: (id) => restream.url(id), log: silentLogger, idleTimeoutMs: 500 });
  return {
    camera,
    main,
    variants,
    close: async () => {
      await variants.closeAll();
      await restream.close();
      await main.close();
      await camera.close();
    },
  };
}

async function joins(r: Rig, warm: boolean): Promise<number[]> {
  const out: number[] = [];
  const hold: FrameSink = { write: () => true };
  const held = warm ? r.main.subscribe(hold) : undefined;
  if (warm) await sleep(3000); // live, GOP cache full
  for (let i = 0; i < RUNS; i++) {
    const variant = r.variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: r.main })!;
    const sink = new FirstKeyframe();
    const started = performance.now();
    const subscription = variant.subscribe(sink);
    await sink.wait(30_000);
    out.push(sink.at - started);
    subscription.unsubscribe();
    // Wait for the variant (and, cold, the camera session) to go idle before the next join.
    while (variant.state.state !== 'idle' || runningFfmpegPids().length > 0) await sleep(50);
    if (!warm) await r.camera.waitForSessionCount(0, 30_000);
  }
  held?.unsubscribe();
  return out;
}

async function holdBack(r: Rig): Promise<{ lagMs: number[]; missing: number[] }> {
  const lagMs: number[] = [];
  const missing: number[] = [];
  for (let i = 0; i < 3; i++) {
    const input = new FirstKeyframe();
    const output = new FirstKeyframe();
    const inputLast = { at: 0 };
    const outputLast = { at: 0 };
    const track = (sink: FirstKeyframe, last: { at: number }): FrameSink => ({
      write: (frame) => {
        if (frame.kind === 'video') last.at = performance.now();
        return sink.write(frame);
      },
    });
    const inSub = r.main.subscribe(track(input, inputLast));
    const variant = r.variants.variantFor('VP8', { id: 'cam', name: 'Cam', source: r.main })!;
    const outSub = variant.subscribe(track(output, outputLast));
    await output.wait(30_000);
    // Count from the variant's first frame: the camera's frames from then on all went through it.
    const inputBefore = input.frames;
    const outputBefore = output.frames;
    await sleep(4000);
    await r.camera.stop();
    await sleep(2000);
    lagMs.push(outputLast.at - inputLast.at);
    missing.push((input.frames - inputBefore) - (output.frames - outputBefore));
    outSub.unsubscribe();
    inSub.unsubscribe();
    await r.camera.restart();
    while (r.main.state.state !== 'idle' || variant.state.state !== 'idle') await sleep(50);
  }
  return { lagMs, missing };
}

/** utime + stime (s) of these ffmpegs together. */
function cpuOf(pids: readonly number[]): number {
  return pids.reduce((total, pid) => total + cpuSeconds(pid), 0);
}

async function steady(r: Rig, codec: 'VP8' | 'H264' = 'VP8'): Promise<{ cpu: number; fps: number; kbps: number; sessions: number; encoders: number }> {
  const variant = r.variants.variantFor(codec, { id: 'cam', name: 'Cam', source: r.main })!;
  const sinks = Array.from({ length: 20 }, () => new FirstKeyframe());
  const subscriptions = sinks.map((sink) => variant.subscribe(sink));
  await sinks[0]!.wait(30_000);
  await sleep(3000); // past start-up
  // The variant's ffmpegs: its picture's and its sound's (two processes since the sound got its own).
  // All of them count; measuring only the first found measured the sound alone.
  const pids = runningFfmpegPids();
  const cpuBefore = cpuOf(pids);
  const framesBefore = sinks[0]!.frames;
  const started = performance.now();
  await sleep(10_000);
  const wall = (performance.now() - started) / 1000;
  const result = {
    cpu: ((cpuOf(pids) - cpuBefore) / wall) * 100,
    fps: (sinks[0]!.frames - framesBefore) / wall,
    kbps: variant.stats().bitrateBps / 1000,
    sessions: await r.camera.sessionCount(),
    encoders: pids.length,
  };
  for (const subscription of subscriptions) subscription.unsubscribe();
  while (runningFfmpegPids().length > 0) await sleep(50);
  return result;
}

/** The Opus sound encoder of an AAC camera (its one ffmpeg), with 20 viewers' sinks on the dubbed camera. */
async function opusSound(r: Rig): Promise<{ cpu: number; packetsPerSecond: number; encoders: number; sessions: number }> {
  const dubbed = r.variants.withOpusSound({ id: 'cam', name: 'Cam', source: r.main })!;
  let packets = 0;
  const sinks: FrameSink[] = Array.from({ length: 20 }, (_, i) => ({
    write: (frame) => {
      if (i === 0 && frame.codec === 'OPUS') packets++;
      return true;
    },
  }));
  const subscriptions = sinks.map((sink) => dubbed.subscribe(sink, { kinds: ['audio'] }));
  while (packets < 50) await sleep(20);
  await sleep(2000);
  const pids = runningFfmpegPids();
  const cpuBefore = cpuOf(pids);
  const packetsBefore = packets;
  const started = performance.now();
  await sleep(10_000);
  const wall = (performance.now() - started) / 1000;
  const result = { cpu: ((cpuOf(pids) - cpuBefore) / wall) * 100, packetsPerSecond: (packets - packetsBefore) / wall, encoders: pids.length, sessions: await r.camera.sessionCount() };
  for (const subscription of subscriptions) subscription.unsubscribe();
  while (runningFfmpegPids().length > 0) await sleep(50);
  return result;
}

async function main(): Promise<void> {
  const lines: string[] = ['| measurement | median | all runs |', '| --- | --- | --- |'];
  const small = await rig(640, 360);
  try {
    const warm = await joins(small, true);
    lines.push(`| join → first VP8 keyframe, 640x360, camera Source warm | ${median(warm).toFixed(0)} ms | ${warm.map((v) => v.toFixed(0)).join(', ')} |`);
    const cold = await joins(small, false);
    lines.push(`| join → first VP8 keyframe, 640x360, camera idle | ${median(cold).toFixed(0)} ms | ${cold.map((v) => v.toFixed(0)).join(', ')} |`);
    const held = await holdBack(small);
    lines.push(`| camera stops → the variant's last VP8 frame, after the camera's last frame | ${median(held.lagMs).toFixed(0)} ms | ${held.lagMs.map((v) => v.toFixed(0)).join(', ')} ms; frames in minus frames out over those 4 s: ${held.missing.join(', ')} |`);
    const s = await steady(small);
    lines.push(`| VP8 variant (libvpx) CPU, picture + sound ffmpegs, 640x360 25 fps, 20 sinks | ${s.cpu.toFixed(0)} % of a core | ${s.fps.toFixed(1)} fps, ${s.kbps.toFixed(0)} kbit/s, camera sessions ${s.sessions}, encoders ${s.encoders} |`);
    const h = await steady(small, 'H264');
    lines.push(`| H.264 variant (libx264) CPU, picture + sound ffmpegs, 640x360 25 fps, 20 sinks | ${h.cpu.toFixed(0)} % of a core | ${h.fps.toFixed(1)} fps, ${h.kbps.toFixed(0)} kbit/s, camera sessions ${h.sessions}, encoders ${h.encoders} |`);
  } finally {
    await small.close();
  }
  const large = await rig(1280, 720);
  try {
    const s = await steady(large);
    lines.push(`| VP8 variant (libvpx) CPU, picture + sound ffmpegs, 1280x720 25 fps, 20 sinks | ${s.cpu.toFixed(0)} % of a core | ${s.fps.toFixed(1)} fps, ${s.kbps.toFixed(0)} kbit/s, camera sessions ${s.sessions}, encoders ${s.encoders} |`);
    const h = await steady(large, 'H264');
    lines.push(`| H.264 variant (libx264) CPU, picture + sound ffmpegs, 1280x720 25 fps, 20 sinks | ${h.cpu.toFixed(0)} % of a core | ${h.fps.toFixed(1)} fps, ${h.kbps.toFixed(0)} kbit/s, camera sessions ${h.sessions}, encoders ${h.encoders} |`);
  } finally {
    await large.close();
  }
  const aac = await rig(640, 360, 'aac');
  try {
    const o = await opusSound(aac);
    lines.push(`| AAC → Opus sound encoder CPU (16 kHz mono camera), 20 sinks | ${o.cpu.toFixed(1)} % of a core | ${o.packetsPerSecond.toFixed(1)} Opus packets/s, camera sessions ${o.sessions}, encoders ${o.encoders} |`);
  } finally {
    await aac.close();
  }
  console.log(lines.join('\n'));
}

await main();
