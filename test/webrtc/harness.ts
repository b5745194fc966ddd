// A loopback WebSocket signalling server around handleSignallingSocket, for viewer tests. It is
// the same handler src/web plugs in; only the HTTP server around it is a stand-in.
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { silentLogger, type Logger } from '../../src/util/logger.js';
import type { BroadcastSource } from '../../src/media/types.js';
import { LOOPBACK_ICE_SETTINGS, type IceSettings } from '../../src/webrtc/ice-config.js';
import { handleSignallingSocket, type SignallingContext } from '../../src/webrtc/signalling.js';
import type { CameraRegistry, Principal } from '../../src/webrtc/types.js';
import { ViewerLimiter } from '../../src/webrtc/viewer-limits.js';
import { warmUpWebRtc, type ViewerPeer } from '../../src/webrtc/viewer-peer.js';
import { registerCleanup } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

export const EVERYONE: Principal = { name: 'everyone', cameras: 'all', admin: false };

export function registryOf(sources: BroadcastSource[]): CameraRegistry {
  const byId = new Map(sources.map((s) => [s.id, s]));
  return { get: (id) => byId.get(id), list: () => sources };
}

export interface HarnessOptions {
  sources: BroadcastSource[];
  /** Instead of `registryOf(sources)`: a registry with transcoded variants, say. */
  registry?: CameraRegistry;
  limits?: ViewerLimiter;
  principal?: Principal;
  ice?: IceSettings;
  logger?: Logger;
  viewerOptions?: SignallingContext['viewerOptions'];
  tracksTimeoutMs?: number;
  /** Scale-out gateways that serve some cameras' viewers. */
  relays?: SignallingContext['relays'];
  /** Each viewer as it is created (before it negotiates). */
  onViewer?: (viewer: ViewerPeer) => void;
}

export interface SignallingHarness {
  url: string;
  limits: ViewerLimiter;
  registry: CameraRegistry;
  viewers: ViewerPeer[];
  close(): Promise<void>;
}

export async function startSignallingServer(options: HarnessOptions): Promise<SignallingHarness> {
  const limits = options.limits ?? new ViewerLimiter({ maxViewersPerCamera: 1000 });
  const registry = options.registry ?? registryOf(options.sources);
  const viewers: ViewerPeer[] = [];
  // What createSignallingHandler does for the real server.
  await warmUpWebRtc();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws) =>
    handleSignallingSocket(ws, {
      registry,
      // The clients are on this machine: their loopback candidates are their own address.
      remoteAddress: '127.0.0.1',
      principal: options.principal ?? EVERYONE,
      ice: options.ice ?? LOOPBACK_ICE_SETTINGS,
      logger: options.logger ?? silentLogger,
      limits,
      ...(options.viewerOptions ? { viewerOptions: options.viewerOptions } : {}),
      ...(options.tracksTimeoutMs !== undefined ? { tracksTimeoutMs: options.tracksTimeoutMs } : {}),
      ...(options.relays ? { relays: options.relays } : {}),
      onViewer: (viewer) => {
        viewers.push(viewer);
        options.onViewer?.(viewer);
      },
    }),
  );
  const port = (wss.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closed ??= (async () => {
      unregister();
      for (const client of wss.clients) client.terminate();
      await Promise.all(viewers.map((v) => v.close()));
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    })());
  const unregister = registerCleanup(close);
  return { url: `ws://127.0.0.1:${port}/signal`, limits, registry, viewers, close };
}

/** Waits (up to 10 s, else fails with its stats) until the viewer has let werift go (viewer-settle.ts). */
export async function settled(viewer: ViewerPeer): Promise<void> {
  await waitFor(() => viewer.stats().weriftReleased, 10_000, 'the viewer to let werift go (settled)', () => JSON.stringify(viewer.stats()));
}
