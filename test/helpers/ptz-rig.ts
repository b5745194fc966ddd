/**
 * The PTZ path end to end without Homebridge: the loopback ONVIF responder (which records every SOAP
 * call), the runtime's `CameraPtz` over a real ONVIF connection, and the project's web server with a
 * fake camera tile, with the page's event stream carrying the camera's mover changes (`ptz` events,
 * as plugin-services.ts wires them). Who calls is chosen per request by the `x-test-user` header (a
 * test-only `authorize`), so one server serves an admin, a viewer with the PTZ right and one without,
 * a share link, and an account that may not watch this camera at all.
 */
import { connectOnvifDevice } from '../../src/onvif/device.js';
import { CameraPtz } from '../../src/runtime/camera-ptz.js';
import { EventStream } from '../../src/web/event-stream.js';
import { ptzMoverEvent } from '../../src/web/ptz-types.js';
import { createWebServer, type WebServer } from '../../src/web/server.js';
import { linkPrincipalName, type AccessPrincipal } from '../../src/web/auth/principals.js';
import { silentLogger } from '../../src/util/logger.js';
import { FakeSource, registryOf } from '../web/fixtures.js';
import { startOnvifResponder, type OnvifResponder, type OnvifResponderOptions, type RecordedRequest } from './onvif-responder.js';

export const PTZ_CAMERA_ID = 'dome';
const PASSWORD = 'ptz-rig-pass';

/** The callers a test picks with `x-test-user`; `mover` is the default (the browser test's page). */
export const PTZ_USERS: Readonly<Record<string, AccessPrincipal>> = {
  admin: Object.freeze({ name: 'admin', kind: 'user', cameras: 'all', admin: true }),
  mover: Object.freeze({ name: 'mover', kind: 'user', cameras: [PTZ_CAMERA_ID], admin: false, ptz: true }),
  other: Object.freeze({ name: 'other', kind: 'user', cameras: [PTZ_CAMERA_ID], admin: false, ptz: true }),
  watcher: Object.freeze({ name: 'watcher', kind: 'user', cameras: [PTZ_CAMERA_ID], admin: false }),
  link: Object.freeze({ name: linkPrincipalName('guest-link-id'), kind: 'link', linkId: 'guest-link-id', cameras: [PTZ_CAMERA_ID], admin: false }),
  outsider: Object.freeze({ name: 'outsider', kind: 'user', cameras: ['garage'], admin: false, ptz: true }),
};

export interface PtzRig {
  responder: OnvifResponder;
  ptz: CameraPtz;
  server: WebServer;
  /** The page's `/api/events` stream. */
  events: EventStream;
  /** http://127.0.0.1:<port>/ */
  base: string;
  /** PTZ commands the camera received (discovery's GetNodes/GetConfigurationOptions left out). */
  ptzCalls(command?: string): RecordedRequest[];
  close(): Promise<void>;
}

export async function startPtzRig(options: { responder?: OnvifResponderOptions; minIntervalMs?: number; leaseMs?: number; allowedOrigins?: string[] } = {}): Promise<PtzRig> {
  const responder = await startOnvifResponder({ password: PASSWORD, ...options.responder });
  const device = connectOnvifDevice({ name: 'Dome', host: responder.host, port: responder.port, username: 'admin', password: PASSWORD, log: silentLogger, timeoutMs: 3000 });
  const events = new EventStream();
  const ptz = new CameraPtz({
    camera: 'Dome',
    connect: () => device,
    log: silentLogger,
    onMover: (moverId) => events.publishFor(PTZ_CAMERA_ID, (principal) => ptzMoverEvent(PTZ_CAMERA_ID, moverId, principal)),
    controller: { minIntervalMs: options.minIntervalMs ?? 0, deadManMs: 5000, leaseMs: options.leaseMs ?? 5000 },
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
    routes: [events.route],
    ...(options.allowedOrigins ? { allowedOrigins: options.allowedOrigins } : {}),
  });
  const base = (await server.listen()).url;
  const discovery = new Set(['GetNodes', 'GetConfigurationOptions', 'GetPresets']);
  return {
    responder,
    ptz,
    server,
    events,
    base,
    ptzCalls: (command) => responder.requests.filter((q) => q.service === 'ptz' && !discovery.has(q.command) && (command === undefined || q.command === command)),
    async close() {
      await ptz.stop();
      events.close();
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
