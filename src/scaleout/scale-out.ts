/**
 * The scale-out: the configured gateways, the cameras published on them, and which gateway serves
 * a new viewer.
 *
 * A camera that is scaled out is published on every gateway (one copy each), and each new viewer
 * goes to the healthy gateway with the fewest viewers, so viewers spread. When no gateway can serve
 * the camera (all down, or the camera not up there yet), `relay` returns undefined and the plugin
 * serves the viewer itself, within its own viewer limits: the family still watches while the
 * gateways are away.
 */
import { createHmac } from 'node:crypto';
import type { ScaleOutConfig } from '../config/types.js';
import type { Logger } from '../util/logger.js';
import type { RelayedViewer, ViewerRelays } from '../webrtc/types.js';
import { JanusGateway, type GatewayState, type GatewayStats, type PublishedCamera } from './janus-gateway.js';

/** One gateway in a line (`ScaleOut.summaries`). */
export interface GatewaySummary {
  url: string;
  state: GatewayState;
  viewers: number;
  /** Cameras published on it now. */
  cameras: number;
  /** Why a camera is not published there, by camera id. */
  problems: Record<string, string>;
}

export class ScaleOut implements ViewerRelays {
  private readonly cameras = new Set<string>();

  constructor(readonly gateways: ReadonlyArray<JanusGateway>) {}

  /**
   * The configured gateways, or undefined when there are none. Mountpoint ids and secrets are keyed
   * to this Homebridge (its storage folder and platform name) and to the gateway's own secrets, so
   * that two plugins sharing a Janus never touch each other's mountpoints.
   */
  static fromConfig(config: ScaleOutConfig, options: { storagePath: string; platformName: string; logger: Logger }): ScaleOut | undefined {
    if (config.janus.length === 0) return undefined;
    return new ScaleOut(config.janus.map((gateway) => new JanusGateway({
      ...gateway,
      instanceKey: createHmac('sha256', `${gateway.apiSecret ?? ''}\0${gateway.token ?? ''}\0${gateway.adminKey ?? ''}`).update(`${options.storagePath}\0${options.platformName}`).digest('base64url'),
      logger: options.logger,
    })));
  }

  start(): void {
    for (const gateway of this.gateways) gateway.start();
  }

  publish(camera: PublishedCamera): void {
    this.cameras.add(camera.id);
    for (const gateway of this.gateways) gateway.publish(camera);
  }

  unpublish(cameraId: string): void {
    this.cameras.delete(cameraId);
    for (const gateway of this.gateways) void gateway.unpublish(cameraId);
  }

  relay(cameraId: string): Promise<RelayedViewer> | undefined {
    if (!this.cameras.has(cameraId)) return undefined;
    let best: JanusGateway | undefined;
    for (const gateway of this.gateways) {
      if (gateway.serves(cameraId) && (!best || gateway.viewers < best.viewers)) best = gateway;
    }
    return best?.watch(cameraId);
  }

  /** One camera across the gateways, for the metrics page (no gateway address: share-link holders read it). */
  cameraStats(cameraId: string): { gateways: number; viewers: number; packetsForwarded: number } | undefined {
    if (!this.cameras.has(cameraId)) return undefined;
    let gateways = 0;
    let viewers = 0;
    let packetsForwarded = 0;
    for (const gateway of this.gateways) {
      const camera = gateway.cameraStats(cameraId);
      if (!camera) continue;
      if (camera.published) gateways++;
      viewers += camera.viewers;
      packetsForwarded += (camera.forwarded?.videoPackets ?? 0) + (camera.forwarded?.audioPackets ?? 0);
    }
    return { gateways, viewers, packetsForwarded };
  }

  stats(): GatewayStats[] {
    return this.gateways.map((g) => g.stats());
  }

  /**
   * Each gateway in a line, for the Homebridge UI: its address (never a secret), whether it is up,
   * its viewers, the cameras published on it, and why any camera is not.
   */
  summaries(): GatewaySummary[] {
    return this.gateways.map((gateway) => {
      const stats = gateway.stats();
      const cameras = Object.entries(stats.cameras);
      return {
        url: stats.url,
        state: stats.state,
        viewers: stats.viewers,
        cameras: cameras.filter(([, camera]) => camera.published).length,
        problems: Object.fromEntries(cameras.flatMap(([id, camera]) => (camera.problem ? [[id, camera.problem]] : []))),
      };
    });
  }

  async stop(): Promise<void> {
    await Promise.all(this.gateways.map((g) => g.stop()));
  }
}
