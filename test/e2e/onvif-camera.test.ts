/**
 * A camera configured by ONVIF host and credentials alone: the plugin asks the ONVIF responder for
 * the stream (handed out with the camera's "internal" IP, as real cameras do), rewrites it to the
 * address it reached, adds the credentials, and plays it from the real GStreamer camera through the
 * real RTSP client into the Source: ONVIF → RTSP → Source → frames, with one session at the camera.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load-config.js';
import { QueuedSink } from '../../src/media/queued-sink.js';
import { Source } from '../../src/media/source.js';
import { cameraUpstream, onvifConnector } from '../../src/runtime/camera-upstream.js';
import type { Logger } from '../../src/util/logger.js';
import { FakeCamera } from '../helpers/fake-camera.js';
import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';

const USER = 'admin';
const PASSWORD = 'onvif-Secret-42';

function capturingLogger(lines: string[]): Logger {
  const push = (level: string) => (m: string, ...p: unknown[]) => lines.push(`${level} ${m} ${p.map(String).join(' ')}`);
  return { info: push('info'), warn: push('warn'), error: push('error'), debug: push('debug') };
}

describe('e2e: a camera added by ONVIF host and credentials plays', () => {
  let camera: FakeCamera;
  let responder: OnvifResponder;
  const logLines: string[] = [];

  before(async () => {
    camera = await FakeCamera.start({ width: 640, height: 360, audio: 'pcmu', auth: { method: 'digest', user: USER, password: PASSWORD } });
    responder = await startOnvifResponder({
      username: USER,
      password: PASSWORD,
      streamUrl: camera.url,
      streamUriHost: '192.168.68.111', // the camera reports its internal address
    });
  });

  after(async () => {
    await responder?.close();
    await camera?.close();
  });

  it('resolves the stream over ONVIF, rewrites the internal IP, and delivers decodable frames over one session', async () => {
    const { config } = loadConfig({
      platform: 'WebRTCCameras',
      cameras: [{ name: 'Gate', onvif: { host: '127.0.0.1', port: responder.port, username: USER, password: PASSWORD } }],
    });
    const gate = config.cameras[0];
    assert.ok(gate, 'the ONVIF camera passes validation');
    assert.equal(gate.source.kind, 'onvif');
    const log = capturingLogger(logLines);
    const onvifDevice = onvifConnector(gate, log);
    assert.ok(onvifDevice);
    const source = new Source({ id: gate.id, name: gate.name, upstream: cameraUpstream(gate, { log, ffmpeg: undefined, onvifDevice }), logger: log });
    const sink = new QueuedSink();
    const subscription = source.subscribe(sink);
    try {
      let keyframe;
      const deadline = Date.now() + 20_000;
      while (!keyframe && Date.now() < deadline) {
        const frame = await sink.read(AbortSignal.timeout(Math.max(1, deadline - Date.now())));
        if (frame?.kind === 'video' && frame.keyframe) keyframe = frame;
      }
      assert.ok(keyframe, `a keyframe arrived; log:\n${logLines.join('\n')}`);
      const nalTypes = keyframe.units.map((u) => u[0]! & 0x1f);
      assert.ok(nalTypes.includes(7) && nalTypes.includes(8) && nalTypes.includes(5), `SPS, PPS and IDR in the keyframe: ${nalTypes}`);
      const stats = source.stats();
      assert.equal(stats.width, 640);
      assert.equal(stats.height, 360);
      assert.equal(await camera.sessionCount(), 1);
      assert.ok(logLines.some((l) => /ONVIF stream: rtsp:\/\/admin:\*\*\*@127\.0\.0\.1:/.test(l)),
        `the stream URI was rewritten to the reached address and logged without its password:\n${logLines.join('\n')}`);
      assert.ok(!logLines.some((l) => l.includes(PASSWORD)), 'the password appears in no log line');
    } finally {
      subscription.unsubscribe();
      await source.close();
    }
  });
});
