/**
 * The camera's accessory as HAP builds it from `HomeKitCamera`, without Homebridge: hap-nodejs's own
 * Accessory and CameraController, a scripted Source (its picture size and tracks; subscriptions
 * counted) and ffmpeg capabilities that are only read. With `recording` on, HAP must publish HomeKit
 * Secure Video (CameraOperatingMode, CameraRecordingManagement, DataStreamTransportManagement) with
 * the ONE motion sensor as its trigger; off, none of it; a camera that does not send H.264 is not
 * offered recording at all. Motion from a web address (issue 16): the same one sensor, driven through
 * the real trigger route on a real web server, on a manual clock.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import hap from '@homebridge/hap-nodejs';
import type { API, PlatformAccessory } from 'homebridge';

import { loadConfig } from '../../src/config/load-config.js';
import type { CameraConfig } from '../../src/config/types.js';
import type { FfmpegCapabilities } from '../../src/ffmpeg/capabilities.js';
import { CROSSING_SENSOR_SUBTYPE, HomeKitCamera, type HomeKitCameraSource } from '../../src/homekit/homekit-camera.js';
import type { CodecName, SourceStats, TrackDescription } from '../../src/media/types.js';
import { connectOnvifDevice, type ConnectedOnvifDevice } from '../../src/onvif/device.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { motionStateOf, webTriggerPath, webTriggerRoutes, type WebTrigger } from '../../src/web/web-trigger.js';
import { ffmpegCapabilities } from '../helpers/fake-ffmpeg.js';
import { FakeTime } from '../helpers/fake-time.js';
import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';
import { registryOf, sampleCameras } from '../web/fixtures.js';
import { memoryLogger, waitFor, type MemoryLogger } from './camera-rig.js';

const { Characteristic, Service } = hap;
const ONVIF = { host: '192.168.0.20', username: 'admin', password: 'pw' };
const HKSV_SERVICES = [Service.CameraOperatingMode.UUID, Service.CameraRecordingManagement.UUID, Service.DataStreamTransportManagement.UUID];
/** HAP's EventTriggerOption bits in SupportedCameraRecordingConfiguration. */
const TRIGGER = { motion: 1, doorbell: 2 } as const;

function cameraFrom(entry: Record<string, unknown>): CameraConfig {
  const { config, messages } = loadConfig({ platform: 'WebRTCCameras', cameras: [{ name: 'Yard', rtspUrl: 'rtsp://127.0.0.1:1/x', ...entry }] });
  assert.equal(config.cameras.length, 1, JSON.stringify(messages));
  return config.cameras[0]!;
}

function track(kind: TrackDescription['kind'], codec: CodecName, clockRate: number, channels?: number): TrackDescription {
  return { kind, codec, payloadType: 96, clockRate, ...(channels ? { channels } : {}), fmtp: {}, controlUrl: 'rtsp://127.0.0.1:1/x/track' };
}

/** A Source that already knows a 1280x720 picture; counts its live subscriptions. */
function scriptedSource(tracks: TrackDescription[]): HomeKitCameraSource & { subscribed: number } {
  const source = {
    subscribed: 0,
    state: { state: 'idle' as const },
    tracks,
    stats: (): SourceStats => ({
      id: 'yard', name: 'Yard', state: 'idle', subscribers: source.subscribed, reconnects: 0, codec: tracks[0]?.codec, width: 1280, height: 720,
      bitrateBps: 0, packetsReceived: 0, packetsLost: 0, gopCacheBytes: 0, gopCacheFrames: 0,
    }),
    subscribe: () => {
      source.subscribed++;
      let live = true;
      return { unsubscribe: () => { if (live) source.subscribed--; live = false; } };
    },
  };
  return source;
}

function newAccessory(): hap.Accessory {
  return Object.assign(new hap.Accessory('Yard', hap.uuid.generate('homekit-camera-test')), { context: {} });
}

interface Built {
  homekit: HomeKitCamera;
  accessory: hap.Accessory;
  source: ReturnType<typeof scriptedSource>;
  log: MemoryLogger;
}

async function build(camera: CameraConfig, options: { accessory?: hap.Accessory; tracks?: TrackDescription[]; time?: FakeTime; onvifDevice?: () => Promise<ConnectedOnvifDevice>; ffmpeg?: FfmpegCapabilities } = {}): Promise<Built> {
  const accessory = options.accessory ?? newAccessory();
  const source = scriptedSource(options.tracks ?? [track('video', 'H264', 90_000), track('audio', 'AAC', 16_000, 1)]);
  const log = memoryLogger();
  const homekit = new HomeKitCamera({
    api: { hap } as unknown as API,
    accessory: accessory as unknown as PlatformAccessory,
    camera,
    source,
    services: { restreamUrl: (id) => `rtsp://127.0.0.1:1/${id}` },
    snapshots: { getSnapshot: () => Promise.resolve(undefined) },
    ffmpeg: options.ffmpeg ?? ffmpegCapabilities({ libopus: true }),
    ffmpegConfig: { debug: false },
    log,
    ...(options.time ? { clock: { now: options.time.clock, timers: options.time } } : {}),
    ...(options.onvifDevice ? { onvifDevice: options.onvifDevice } : {}),
  });
  homekit.start();
  await homekit.configured;
  return { homekit, accessory, source, log };
}

function count(accessory: hap.Accessory, uuid: string): number {
  return accessory.services.filter((s) => s.UUID === uuid).length;
}

/** The motion sensors HAP keeps for the camera (the crossing sensor, a second one by design, aside). */
function motionSensors(accessory: hap.Accessory): hap.Service[] {
  return accessory.services.filter((s) => s.UUID === Service.MotionSensor.UUID && s.subtype !== CROSSING_SENSOR_SUBTYPE);
}

/** SupportedCameraRecordingConfiguration as the hub reads it: pre-buffer ms and the trigger bits. */
function supportedRecording(accessory: hap.Accessory): { prebufferMs: number; triggers: number } {
  const service = accessory.getService(Service.CameraRecordingManagement);
  assert.ok(service, 'no CameraRecordingManagement');
  const value = service.getCharacteristic(Characteristic.SupportedCameraRecordingConfiguration).value;
  const fields = hap.decode(Buffer.from(String(value), 'base64'));
  return { prebufferMs: fields[1]!.readInt32LE(0), triggers: fields[2]!.readInt32LE(0) };
}

describe('HomeKitCamera: HomeKit Secure Video on the accessory', () => {
  it('recording on: HAP adds the three HKSV services, with the one motion sensor as the trigger', async () => {
    const { homekit, accessory, source, log } = await build(cameraFrom({ onvif: ONVIF, recording: { enabled: true, prebufferSeconds: 6 } }));
    for (const uuid of HKSV_SERVICES) assert.equal(count(accessory, uuid), 1, uuid);
    const sensors = motionSensors(accessory);
    assert.equal(sensors.length, 1, 'one MotionSensor, not a second one for recording');
    const controller = homekit.cameraController;
    assert.ok(controller?.recordingManagement);
    assert.equal(controller.motionService, sensors[0]);
    const management = controller.recordingManagement.recordingManagementService;
    assert.ok(management.linkedServices.includes(sensors[0]!), 'the motion sensor is linked to CameraRecordingManagement');
    assert.equal(sensors[0]!.getCharacteristic(Characteristic.StatusActive).value, true);
    assert.deepEqual(supportedRecording(accessory), { prebufferMs: 6000, triggers: TRIGGER.motion });
    assert.equal(controller.recordingManagement.delegate, homekit.recording);
    assert.match(log.text(), /HomeKit Secure Video offered \(6 s pre-buffer; recordings start on motion\)/);

    // The hub turns recording on: the pre-buffer subscribes to the shared Source; stop() lets go.
    assert.equal(source.subscribed, 0);
    assert.equal(homekit.recordingStatus()?.state, 'off', 'offered, not yet on at the hub');
    await management.getCharacteristic(Characteristic.Active).handleSetRequest(Characteristic.Active.ACTIVE);
    assert.equal(homekit.recording?.prebuffer.active, true);
    assert.equal(source.subscribed, 1);
    assert.equal(homekit.recordingStatus()?.state, 'buffering');
    assert.equal(homekit.recordingStatus()?.prebufferSeconds, 6);
    await homekit.stop();
    assert.equal(homekit.recording?.prebuffer.active, false);
    assert.equal(source.subscribed, 0);
  });

  it('recording off: no HKSV service, and the motion sensor is still one', async () => {
    const { homekit, accessory, log } = await build(cameraFrom({ onvif: ONVIF, motion: true }));
    for (const uuid of HKSV_SERVICES) assert.equal(count(accessory, uuid), 0, uuid);
    assert.equal(motionSensors(accessory).length, 1);
    assert.equal(homekit.cameraController?.recordingManagement, undefined);
    assert.equal(homekit.recording, undefined);
    assert.doesNotMatch(log.text(), /Secure Video/);
    assert.equal(homekit.recordingStatus(), undefined, 'the UI shows no recording line');
    await homekit.stop();
  });

  it('turning recording on for a cached accessory with a motion sensor keeps that sensor (no second one)', async () => {
    const first = await build(cameraFrom({ onvif: ONVIF, motion: true }));
    const sensor = motionSensors(first.accessory)[0];
    assert.ok(sensor);
    await first.homekit.stop();
    // What Homebridge keeps between starts: the accessory and its controller's service map.
    const cached = Object.assign(hap.Accessory.deserialize(hap.Accessory.serialize(first.accessory)), { context: {} });
    const again = await build(cameraFrom({ onvif: ONVIF, recording: true }), { accessory: cached });
    const sensors = motionSensors(cached);
    assert.equal(sensors.length, 1);
    assert.equal(sensors[0]!.iid, sensor.iid, 'the same MotionSensor, restored');
    for (const uuid of HKSV_SERVICES) assert.equal(count(cached, uuid), 1, uuid);
    assert.equal(supportedRecording(cached).triggers, TRIGGER.motion);
    await again.homekit.stop();
  });

  it('a doorbell that records without a motion sensor: HAP triggers on presses only', async () => {
    const { homekit, accessory, log } = await build(cameraFrom({ doorbell: { enabled: true, httpTrigger: true }, recording: true }));
    assert.equal(motionSensors(accessory).length, 0);
    assert.equal(count(accessory, Service.Doorbell.UUID), 1);
    for (const uuid of HKSV_SERVICES) assert.equal(count(accessory, uuid), 1, uuid);
    assert.deepEqual(supportedRecording(accessory), { prebufferMs: 4000, triggers: TRIGGER.doorbell });
    assert.match(log.text(), /recordings start on doorbell presses/);
    // A press is the event the recording's pre-buffer counts back from.
    const recording = homekit.recording;
    assert.ok(recording);
    let marked = 0;
    recording.markEvent = () => { marked++; };
    assert.equal(homekit.ringDoorbell(), true);
    assert.equal(marked, 1);
    await homekit.stop();
  });

  it('a camera that sends H.265: recording is offered, made from one H.264 encoder on the camera\'s clock', async () => {
    const { homekit, accessory } = await build(cameraFrom({ onvif: ONVIF, recording: true }), { tracks: [track('video', 'H265', 90_000), track('audio', 'AAC', 16_000, 1)] });
    for (const uuid of HKSV_SERVICES) assert.equal(count(accessory, uuid), 1, uuid);
    const recording = homekit.recording;
    assert.ok(recording);
    assert.equal(recording.reencodes, true);
    assert.deepEqual(recording.source.tracks.map((t) => [t.kind, t.codec]), [['video', 'H264'], ['audio', 'AAC']], 'the recording sees H.264 and the camera\'s own AAC');
    assert.equal(homekit.recordingStatus()?.state, 'off');
    await homekit.stop();
  });

  it('a camera that sends H.265 with an ffmpeg that has no libx264: recording is not offered, said once, with the way out', async () => {
    const { homekit, accessory, log } = await build(cameraFrom({ onvif: ONVIF, recording: true }), {
      tracks: [track('video', 'H265', 90_000)],
      ffmpeg: ffmpegCapabilities({ libopus: true, libx264: false }),
    });
    for (const uuid of HKSV_SERVICES) assert.equal(count(accessory, uuid), 0, uuid);
    assert.equal(homekit.recording, undefined);
    assert.equal(motionSensors(accessory).length, 1, 'the motion sensor stays for notifications');
    const why = 'this camera sends H.265 and this ffmpeg has no libx264 to re-encode it; use an ffmpeg with libx264 (ffmpeg.videoProcessor) or set the camera\'s stream to H.264';
    const said = log.lines.filter((line) => /Secure Video/.test(line));
    assert.deepEqual(said, [`warn HomeKit Secure Video is not offered: ${why}.`]);
    // The Homebridge UI's card says it too.
    assert.deepEqual(homekit.recordingStatus(), {
      state: 'unavailable', prebufferSeconds: 4, bufferedSeconds: 0, bufferedBytes: 0, recordings: 0,
      problem: `not offered: ${why}`,
    });
    await homekit.stop();
  });
});

describe('HomeKitCamera: motion from a web address (issue 16)', () => {
  const TOKEN = 'W'.repeat(16) + 'e'.repeat(16);
  const servers: WebServer[] = [];
  after(async () => {
    await Promise.all(servers.map((server) => server.close()));
  });

  /** The camera 'yard' built on a manual clock, and the real trigger routes on a real web server calling it as the runtime does. */
  async function withRoute(entry: Record<string, unknown>, maxPerWindow?: number): Promise<Built & { time: FakeTime; call: (path: string, method?: string) => Promise<number>; detected: () => unknown }> {
    const time = new FakeTime();
    const built = await build(cameraFrom(entry), { time });
    const trigger: WebTrigger = { token: TOKEN, fire: (query) => built.homekit.motionFromWeb(motionStateOf(query)) };
    const server = createWebServer({
      port: 0, host: '127.0.0.1', registry: registryOf(sampleCameras()), log: memoryLogger(),
      routes: webTriggerRoutes({ trigger: (kind, id) => (kind === 'motion' && id === 'yard' ? trigger : undefined), ...(maxPerWindow ? { maxPerWindow } : {}) }),
    });
    servers.push(server);
    const { port } = await server.listen();
    const call = async (path: string, method = 'POST'): Promise<number> => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { method });
      await response.arrayBuffer();
      return response.status;
    };
    const detected = (): unknown => motionSensors(built.accessory)[0]?.getCharacteristic(Characteristic.MotionDetected).value;
    return { ...built, time, call, detected };
  }

  it('without ONVIF: one motion sensor, on at a call, held motionResetSeconds after the last call, then off', async () => {
    const { homekit, accessory, time, call, detected, log } = await withRoute({ motionHttpTrigger: true, motionResetSeconds: 30 });
    assert.equal(motionSensors(accessory).length, 1);
    assert.equal(detected(), false);
    assert.match(log.text(), /motion sensor on \(web trigger\)/);
    const path = webTriggerPath('motion', 'yard', TOKEN);
    assert.equal(await call(path), 200);
    assert.equal(detected(), true);
    await time.advance(20_000);
    // Each new call extends it: 30 s from this one, not from the first.
    assert.equal(await call(path, 'GET'), 200);
    await time.advance(29_999);
    assert.equal(detected(), true, '49.999 s after the first call, 29.999 s after the last');
    await time.advance(1);
    assert.equal(detected(), false);
    await homekit.stop();
    assert.equal(time.pending, 0, 'stop() leaves no reset timer');
  });

  it('state=off turns it off at once; wrong token and unknown camera get the same 403 and change nothing', async () => {
    const { homekit, time, call, detected } = await withRoute({ motionHttpTrigger: true, motionResetSeconds: 30 });
    const path = webTriggerPath('motion', 'yard', TOKEN);
    assert.equal(await call(path), 200);
    assert.equal(detected(), true);
    assert.equal(await call(`${path}?state=off`), 200);
    assert.equal(detected(), false, 'off without waiting for the reset time');
    assert.equal(time.pending, 0);
    assert.equal(await call(webTriggerPath('motion', 'yard', TOKEN.slice(0, -1) + 'x')), 403);
    assert.equal(await call(webTriggerPath('motion', 'porch', TOKEN)), 403);
    assert.equal(await call(webTriggerPath('doorbell', 'yard', TOKEN)), 403);
    assert.equal(detected(), false);
    await homekit.stop();
  });

  it('throttling: past the per-camera cap the call is refused (429) and the sensor is not set off', async () => {
    const { homekit, call, detected } = await withRoute({ motionHttpTrigger: true }, 2);
    const path = webTriggerPath('motion', 'yard', TOKEN);
    assert.deepEqual([await call(path), await call(`${path}?state=off`), await call(path)], [200, 200, 429]);
    assert.equal(detected(), false, 'the refused call did not turn it on');
    await homekit.stop();
  });

  it('with ONVIF motion too: one sensor for both sources; recording on "http" starts clips from that same sensor', async () => {
    const { homekit, accessory, call, detected, log } = await withRoute({ onvif: ONVIF, motion: true, motionHttpTrigger: true, recording: { enabled: true, motionSource: 'http' } });
    assert.equal(motionSensors(accessory).length, 1, 'one sensor for both sources');
    assert.equal(supportedRecording(accessory).triggers, TRIGGER.motion);
    assert.match(log.text(), /motion sensor on \(ONVIF events and web trigger\)/);
    assert.equal(await call(webTriggerPath('motion', 'yard', TOKEN)), 200);
    assert.equal(detected(), true);
    await homekit.stop();
  });
});

describe('HomeKitCamera: ONVIF and web motion on the one sensor (issue 16)', () => {
  const responders: OnvifResponder[] = [];
  after(async () => {
    await Promise.all(responders.map((r) => r.close()));
  });

  it('shows motion while either source has it: a web "off" does not clear ONVIF motion, ONVIF ending does not clear web motion', async () => {
    const r = await startOnvifResponder({ password: 'secret' });
    responders.push(r);
    const camera = cameraFrom({ onvif: { host: r.host, port: r.port, username: 'admin', password: 'secret' }, motion: true, motionHttpTrigger: true, motionResetSeconds: 1 });
    // The web motion on a manual clock (it only changes when told); ONVIF on the real one.
    const time = new FakeTime();
    const { homekit, accessory, log } = await build(camera, {
      time,
      onvifDevice: () => connectOnvifDevice({ name: 'Yard', host: r.host, port: r.port, username: 'admin', password: 'secret', log: memoryLogger(), timeoutMs: 2000 }),
    });
    try {
      const detected = (): unknown => motionSensors(accessory)[0]?.getCharacteristic(Characteristic.MotionDetected).value;
      await waitFor(() => r.activeSubscriptions() > 0, 5000, 'the ONVIF subscription');
      r.emitMotion(true);
      await waitFor(() => detected() === true, 5000, 'ONVIF motion on the sensor');
      assert.deepEqual(homekit.motionFromWeb(false), { motion: true }, 'ONVIF still reports motion');
      assert.equal(detected(), true);
      assert.deepEqual(homekit.motionFromWeb(true), { motion: true });
      r.emitMotion(false);
      // ONVIF's own state runs out its 1 s reset (its MotionState logs it); the web motion holds the sensor.
      await waitFor(() => /^debug motion cleared$/m.test(log.text()), 5000, 'ONVIF motion to clear');
      assert.equal(detected(), true, 'the web motion still holds it');
      assert.deepEqual(homekit.motionFromWeb(false), { motion: false });
      assert.equal(detected(), false);
    } finally {
      await homekit.stop();
    }
  });
});
