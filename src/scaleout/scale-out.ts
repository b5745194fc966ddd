/**
 * The scale-out: which gateway serves a new viewer of a camera.
 *
 * A camera that is scaled out is published on every configured gateway (one copy each), and each
 * new viewer goes to the healthy gateway with the fewest viewers, so viewers spread. When no gateway
 * can serve the camera (all down, or the camera is not up there yet), `relay` returns undefined and
 * the plugin serves the viewer itself, within its own viewer limits: the family still watches while
 * the gateways are away.
 */
import type { RelayedViewer } from './janus-viewer.js';
import type { GatewayStats, JanusGateway } from './janus-gateway.js';

/** What the signalling asks: a gateway's viewer for this camera, or undefined to serve it here. */
export interface ViewerRelays {
  relay(cameraId: string): Promise<RelayedViewer> | undefined;
}

export class ScaleOut implements ViewerRelays {
  constructor(
    readonly gateways: ReadonlyArray<JanusGateway>,
    /** The cameras that go through the gateways. */
    private readonly cameras: ReadonlySet<string>,
  ) {}

  relay(cameraId: string): Promise<RelayedViewer> | undefined {
    if (!this.cameras.has(cameraId)) return undefined;
    let best: JanusGateway | undefined;
    for (const gateway of this.gateways) {
      if (gateway.serves(cameraId) && (!best || gateway.viewers < best.viewers)) best = gateway;
    }
    return best?.watch(cameraId);
  }

  stats(): GatewayStats[] {
    return this.gateways.map((g) => g.stats());
  }

  async stop(): Promise<void> {
    await Promise.all(this.gateways.map((g) => g.stop()));
  }
}
