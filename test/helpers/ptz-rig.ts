/**
 * The PTZ path end to end without Homebridge: the loopback ONVIF responder (which records every SOAP
 * call), the runtime's `CameraPtz` over a real ONVIF connection, and the project's web server with a
 * fake camera tile. Who calls is chosen per request by the `x-test-user` header (a test-only
 * `authorize`), so one server serves an admin, a viewer with the PTZ right and one without.
 */
import { connectOnvifDevice } from '../../src/onvif/device.js';
import { CameraPtz } from '../../src/runtime/camera-ptz.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import type { Principal } from '../../src/web/types.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeSource, registryOf } from '../web/fixtures.js';
import { startOnvifResponder, type OnvifResponder, type OnvifResponderOptions, type RecordedRequest } from './onvif-responder.js';

export const PTZ_CAMERA_ID = 'dome';
const PASSWORD = 'ptz-rig-pass';

/** The callers a test picks with `x-test-user`; `mover` is the default (the browser test's page). */
export const PTZ_USERS: Readonly<Record<string, Principal>> = {
  admin: Object.freeze({ name: 'admin', cameras: 'all', admin: true }),
  mover: Object.freeze({ name: 'mover', cameras: [PTZ_CAMERA_ID], admin: false, ptz: true }),
  other: Object.freeze({ name: 'other', cameras: [PTZ_CAMERA_ID], admin: false, ptz: true }),
  watcher: Object.freeze({ name: 'watcher', cameras: [PTZ_CAMERA_ID], admin: false }),
};

export interface PtzRig {
  responder: OnvifResponder;
  ptz: CameraPtz;
  server: WebServer;
  /** http://127.0.0.1:<port>/ */
  base: string;
  /** PTZ commands the camera received (discovery's GetNodes/GetConfigurationOptions left out). */
  ptzCalls(command?: string): RecordedRequest[];
  close(): Promise<void>;
}

export async function startPtzRig(options: { responder?: OnvifResponderOptions; minIntervalMs?: number; allowedOrigins?: string[] } = {}): Promise<PtzRig> {
  const responder = await startOnvifResponder({ password: PASSWORD, ...options.responder });
  const device = connectOnvifDevice({ name: 'Dome', host: responder.host, port: responder.port, username: 'admin', password: PASSWORD, log: silentLogger, timeoutMs: 3000 });
  const ptz = new CameraPtz({
    camera: 'Dome',
    connect: () => device,
    log: silentLogger,
    controller: { minIntervalMs: options.minIntervalMs ?? 0, deadManMs: 5000, leaseMs: 5000 },
  });
  ptz.start();
  await ptz.settled();
  const server = createWebServer({
    port: 0,
    host: '127.0.0.1',
    registry: registryOf([new FakeSource(PTZ_CAMERA_ID, 'Dome', { state: { state: 'idle' } })]),
    cameraExtras: () => ({ name: 'Dome' }),
    authorize: (req) => {
      const user = req.headers['x-test-user'];
      return PTZ_USERS[typeof user === 'string' ? user : 'mover'];
    },
    ptz: (id) => (id === PTZ_CAMERA_ID ? ptz.control() : undefined),
    secrets: () => [PASSWORD],
    ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
  });
  const base = (await server.listen()).url;
  const discovery = new Set(['GetNodes', 'GetConfigurationOptions', 'GetPresets']);
  return {
    responder,
    ptz,
    server,
    base,
    ptzCalls: (command) => responder.requests.filter((q) => q.service === 'ptz' && !discovery.has(q.command) && (command === undefined || q.command === command)),
    async close() {
      await ptz.stop();
      await server.close();
      await responder.close();
    },
  };
}

/** Polls `check` every 25 ms until it holds; fails after `ms` naming `what`. */
export async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
