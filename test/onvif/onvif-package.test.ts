/**
 * Cross-check of the responder fixture with an independent client, the npm `onvif` package (the
 * reference implementation the fixtures come from): if it can read device information and the stream
 * URI from our responder, the responder behaves like a camera and not just like our own client.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, describe, it } from 'node:test';

import { startOnvifResponder, type OnvifResponder } from '../helpers/onvif-responder.js';

type Callback = (error: Error | null, data?: unknown) => void;

/** The few members of the package's `Cam` used here; its own typings are mostly `any`. */
interface OnvifCam {
  connect(callback: Callback): void;
  getDeviceInformation(callback: Callback): void;
  getStreamUri(options: { protocol: string }, callback: Callback): void;
}
interface OnvifModule {
  Cam: new (options: {
    hostname: string;
    port: number;
    username: string;
    password: string;
    preserveAddress: boolean;
    autoconnect: boolean;
    timeout: number;
  }) => OnvifCam;
}

function isOnvifModule(value: unknown): value is OnvifModule {
  return typeof value === 'object' && value !== null && 'Cam' in value && typeof value.Cam === 'function';
}

function call(fn: (callback: Callback) => void): Promise<unknown> {
  return new Promise((resolve, reject) => fn((error, data) => (error ? reject(error) : resolve(data))));
}

function field(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null && name in value ? (value as Record<string, unknown>)[name] : undefined;
}

const responders: OnvifResponder[] = [];
after(async () => {
  await Promise.all(responders.map((r) => r.close()));
});

describe('the responder with the npm onvif client', () => {
  it('serves device information and the stream URI to onvif 0.8.3', async () => {
    const r = await startOnvifResponder({ password: 'secret', streamUrl: 'rtsp://127.0.0.1:8554/live' });
    responders.push(r);
    const loaded: unknown = createRequire(import.meta.url)('onvif');
    assert.ok(isOnvifModule(loaded));
    const cam = new loaded.Cam({
      hostname: r.host,
      port: r.port,
      username: 'admin',
      password: 'secret',
      preserveAddress: true,
      autoconnect: false,
      timeout: 3000,
    });
    await call((cb) => cam.connect(cb));
    const info = await call((cb) => cam.getDeviceInformation(cb));
    assert.equal(field(info, 'manufacturer'), 'Mockup Manufacturer');
    const stream = await call((cb) => cam.getStreamUri({ protocol: 'RTSP' }, cb));
    assert.equal(field(stream, 'uri'), 'rtsp://127.0.0.1:8554/live');
    assert.ok(r.requests.filter((q) => q.command !== 'GetSystemDateAndTime').every((q) => q.authenticated !== false));
  });
});
