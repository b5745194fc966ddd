// A Home app stream without HomeKit's pairing layer: the session gets exactly what HAP-NodeJS hands a
// streaming delegate (SetupEndpoints, START, RECONFIGURE, STOP), runs the real ffmpeg against the
// loopback re-stream of the GStreamer fake camera, and the test plays the Home app: it receives the
// SRTP, decrypts it with the key it chose, and hands the H.264 inside to ffprobe.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runningFfmpegCount } from '../../src/ffmpeg/ffmpeg-process.js';
import { HomeKitStreamSession, type StartParameters, type StreamSessionDeps } from '../../src/homekit/stream-session.js';
import { shortProbeFfmpeg } from '../helpers/fake-ffmpeg.js';
import { memoryLogger, rigCamera, startCameraRig, streamSessionDeps, waitFor, type CameraRig, type MemoryLogger } from './camera-rig.js';
import { depacketizeH264, nalTypes, probeH264, SrtpReceiver } from './srtp-receiver.js';

function startParameters(overrides: Partial<StartParameters['video']> = {}, audio: Partial<StartParameters['audio']> = {}): StartParameters {
  return {
    video: { width: 1280, height: 720, fps: 30, maxBitrateKbps: 2000, profile: 'main', level: '4.0', payloadType: 99, mtu: 1378, rtcpIntervalMs: 500, ...overrides },
    audio: { codec: 'opus', sampleRateHz: 16000, channels: 1, bitrateKbps: 24, vbr: true, packetTimeMs: 20, payloadType: 110, ...audio },
  };
}

interface Viewer {
  session: HomeKitStreamSession;
  video: SrtpReceiver;
  audio: SrtpReceiver;
  log: MemoryLogger;
  close(): Promise<void>;
}

async function openViewer(rig: CameraRig, overrides: Partial<StreamSessionDeps> = {}): Promise<Viewer> {
  const video = await SrtpReceiver.open();
  const audio = await SrtpReceiver.open();
  const log = memoryLogger();
  const deps = streamSessionDeps(rigCamera(rig), log, overrides);
  const session = await HomeKitStreamSession.prepare({
    sessionID: crypto.randomUUID(),
    sourceAddress: '127.0.0.1',
    targetAddress: '127.0.0.1',
    video: { port: video.port, srtp_key: video.keys.key, srtp_salt: video.keys.salt },
    audio: { port: audio.port, srtp_key: audio.keys.key, srtp_salt: audio.keys.salt },
  }, deps);
  // Like the Home app: RTCP to the ports the accessory answered with.
  video.keepAlive({ address: '127.0.0.1', port: session.answer.video.port });
  audio.keepAlive({ address: '127.0.0.1', port: session.answer.audio.port });
  return {
    session,
    video,
    audio,
    log,
    async close() {
      await session.stop();
      video.close();
      audio.close();
    },
  };
}

describe('HomeKit stream session (real ffmpeg, fake camera, loopback re-stream)', { timeout: 240_000 }, () => {
  let rig: CameraRig;
  let silent: CameraRig;
  const viewers: Viewer[] = [];

  before(async () => {
    rig = await startCameraRig({ audio: 'pcmu' });
    silent = await startCameraRig({ audio: 'none', id: 'silent' });
    // Learn the picture size once (what the accessory does at start).
    for (const r of [rig, silent]) {
      const sub = r.source.subscribe({ write: () => true }, { kinds: ['video'] });
      await waitFor(() => !!r.source.stats().width, 15_000, 'the camera size');
      sub.unsubscribe();
    }
  });

  after(async () => {
    await Promise.all(viewers.map((v) => v.close()));
    await rig?.close();
    await silent?.close();
  });

  it('copies the camera\'s H.264 when it fits: SRTP decrypts, ffprobe reads 640x360, Opus reaches the audio port', async (t) => {
    const viewer = await openViewer(rig);
    viewers.push(viewer);
    t.after(() => viewer.close());
    const started = performance.now();
    await viewer.session.begin(startParameters());
    await viewer.video.waitForPackets(1, 10_000);
    const firstPacketMs = viewer.video.packets[0]!.at - started;
    await viewer.video.waitForPackets(200, 20_000);
    await viewer.audio.waitForPackets(20, 20_000);
    assert.match(viewer.log.text(), /copy: the camera's 640x360 H\.264 fits/);
    assert.equal(viewer.video.decryptErrors, 0);
    const video = viewer.video.packets;
    assert.ok(video.every((p) => p.payloadType === 99 && p.ssrc === viewer.session.answer.video.ssrc), 'HomeKit\'s payload type and our SSRC');
    const annexB = depacketizeH264(video);
    assert.ok(nalTypes(annexB).includes(5), 'an IDR arrived');
    const probed = await probeH264(annexB);
    assert.equal(probed.video?.codecName, 'h264');
    assert.equal(probed.video?.width, 640);
    assert.equal(probed.video?.height, 360);
    const audio = viewer.audio.packets;
    assert.ok(audio.every((p) => p.payloadType === 110 && p.ssrc === viewer.session.answer.audio.ssrc));
    // Opus TOC byte: config 0..31 in the top 5 bits; 20 ms SILK/hybrid/CELT frames all decode. A
    // sanity check that this is Opus: every packet is small and non-empty.
    assert.ok(audio.every((p) => p.payload.length > 0 && p.payload.length < 400), 'Opus-sized audio packets');
    // Sequence numbers are consecutive (nothing lost on loopback).
    for (let i = 1; i < video.length; i++) assert.equal(video[i]!.sequenceNumber, (video[i - 1]!.sequenceNumber + 1) & 0xffff);
    console.log(`copy: first SRTP packet ${firstPacketMs.toFixed(0)} ms after START`);
    await viewer.close();
  });

  it('transcodes with libx264 to a smaller request, at the requested size', async (t) => {
    const viewer = await openViewer(rig);
    viewers.push(viewer);
    t.after(() => viewer.close());
    await viewer.session.begin(startParameters({ width: 480, height: 270, fps: 15, maxBitrateKbps: 300, profile: 'baseline', level: '3.1' }));
    await viewer.video.waitForPackets(60, 20_000);
    assert.match(viewer.log.text(), /transcode with libx264 to 480x270/);
    const probed = await probeH264(depacketizeH264(viewer.video.packets));
    assert.equal(probed.video?.width, 480);
    assert.equal(probed.video?.height, 270);
    assert.match(probed.video?.profile ?? '', /Baseline/);
    await viewer.close();
  });

  it('RECONFIGURE applies the new bitrate: ffmpeg restarts, sequence numbers and timestamps continue', async (t) => {
    const viewer = await openViewer(rig);
    viewers.push(viewer);
    t.after(() => viewer.close());
    await viewer.session.begin(startParameters({ width: 480, height: 270, fps: 25, maxBitrateKbps: 300 }));
    await viewer.video.waitForPackets(40, 20_000);
    const before = viewer.video.packets.length;
    await viewer.session.reconfigure({ width: 480, height: 270, fps: 25, maxBitrateKbps: 150 });
    assert.match(viewer.log.text(), /reconfigured to 480x270@25 150 kbit\/s/);
    await viewer.video.waitForPackets(before + 60, 20_000);
    const packets = viewer.video.packets;
    for (let i = 1; i < packets.length; i++) {
      assert.equal(packets[i]!.sequenceNumber, (packets[i - 1]!.sequenceNumber + 1) & 0xffff, `sequence continues at packet ${i}`);
      const step = (packets[i]!.timestamp - packets[i - 1]!.timestamp) | 0;
      assert.ok(step >= 0, `timestamps never go back (packet ${i}: ${step})`);
    }
    await viewer.close();
  });

  it('STOP kills ffmpeg: packets stop and no ffmpeg is left', async (t) => {
    const viewer = await openViewer(rig);
    viewers.push(viewer);
    t.after(() => viewer.close());
    await viewer.session.begin(startParameters());
    await viewer.video.waitForPackets(30, 20_000);
    assert.ok(runningFfmpegCount() >= 1);
    await viewer.session.stop();
    assert.equal(runningFfmpegCount(), 0);
    const count = viewer.video.packets.length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(viewer.video.packets.length, count, 'no packet after STOP');
    await viewer.close();
  });

  it('a camera without audio still streams video (the tee\'s audio output fails alone)', async (t) => {
    const viewer = await openViewer(silent);
    viewers.push(viewer);
    t.after(() => viewer.close());
    await viewer.session.begin(startParameters());
    await viewer.video.waitForPackets(100, 20_000);
    const probed = await probeH264(depacketizeH264(viewer.video.packets));
    assert.equal(probed.video?.width, 640);
    assert.equal(viewer.audio.packets.length, 0);
    await viewer.close();
  });

  it('a broken encoder option: the log quotes ffmpeg\'s reason, and the stream recovers with libx264', async (t) => {
    const viewer = await openViewer(rig, { encoderArgs: ['-preset', 'warp-speed'] });
    viewers.push(viewer);
    t.after(() => viewer.close());
    await viewer.session.begin(startParameters({ width: 320, height: 180, maxBitrateKbps: 200 }));
    await waitFor(() => /ffmpeg said:/.test(viewer.log.text()), 15_000, 'the diagnosis');
    const line = viewer.log.lines.find((l) => /ffmpeg said:/.test(l))!;
    assert.match(line, /^warn /);
    assert.match(line, /rejected its preset \(check ffmpeg\.encoderOptions\)/);
    assert.match(line, /"\[libx264\] Error setting preset\/tune warp-speed\/zerolatency\."/);
    assert.doesNotMatch(line, /frames left in the queue/, 'warnings are not quoted as the reason');
    assert.doesNotMatch(line, /exited with code/);
    assert.match(line, /Retrying with libx264 and no extra encoder options/);
    await viewer.video.waitForPackets(30, 20_000);
    await viewer.close();
  });

  it('a fast probe that ended before the picture size was known: started again with a longer probe, and the video flows', async (t) => {
    // A wrapper in ffmpeg's place fails the fast probe exactly as ffmpeg does on a busy machine
    // (the re-stream's cached GOP was short), and runs the real ffmpeg for any other start.
    const dir = mkdtempSync(join(tmpdir(), 'ffmpeg-probe-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const wrapper = shortProbeFfmpeg(dir, `exec ${rig.ffmpeg.path} "$@"`);
    const viewer = await openViewer(rig, { ffmpeg: { ...rig.ffmpeg, path: wrapper.path } });
    viewers.push(viewer);
    t.after(() => viewer.close());
    await viewer.session.begin(startParameters({ width: 640, height: 360 }));
    await viewer.video.waitForPackets(50, 20_000);
    assert.match(viewer.log.text(), /stopped probing the re-stream before it knew the video's picture size; starting it again with a longer probe/);
    assert.doesNotMatch(viewer.log.text(), /failed:/);
    const probed = await probeH264(depacketizeH264(viewer.video.packets));
    assert.equal(probed.video?.width, 640);
    await viewer.close();
  });

  it('ends the stream when the Home app sends no RTCP for the timeout', async (t) => {
    const viewer = await openViewer(rig, { silenceTimeoutMs: 2000 });
    viewers.push(viewer);
    t.after(() => viewer.close());
    const ended = new Promise<string>((resolve) => viewer.session.once('ended', resolve));
    await viewer.session.begin(startParameters());
    await viewer.video.waitForPackets(10, 20_000);
    viewer.video.stopKeepAlive();
    viewer.audio.stopKeepAlive();
    const reason = await ended;
    assert.match(reason, /silent/);
    assert.match(viewer.log.text(), /no RTCP from the Home app for \d+ s: stopping the stream/);
    assert.equal(runningFfmpegCount(), 0);
    await viewer.close();
  });

  it('every consumer shares the one camera session', async () => {
    assert.equal(await rig.camera.sessionCount(), 1);
  });
});
