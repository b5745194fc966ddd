/**
 * One viewer served by Janus on the plugin's behalf: a streaming-plugin handle that watches the
 * camera's mountpoint. Janus makes the offer, as the plugin's own watch page protocol expects, so
 * the page talks to Janus's ICE and DTLS without knowing it; the signalling stays the plugin's, and
 * with it who may watch what.
 */
import { EventEmitter } from 'node:events';
import { JanusError, type JanusHandle, type JanusIceCandidate, type JanusSession } from './janus-api.js';
import { STREAMING_PLUGIN } from './janus-mountpoint.js';

export interface RelayedViewerEvents {
  /** Janus's PeerConnection with the viewer is up. */
  connected: [];
  /** Ended on Janus's side (hang-up, the gateway went away) or by `close()`. */
  closed: [reason: string];
}

/** A viewer whose media comes from a gateway instead of this process. */
export interface RelayedViewer extends EventEmitter<RelayedViewerEvents> {
  /** Which gateway serves it (for logs and stats; no secret). */
  readonly gateway: string;
  /** The gateway's offer (its ICE candidates are in it). */
  readonly offer: string;
  answer(sdp: string): Promise<void>;
  candidate(candidate: JanusIceCandidate | null): Promise<void>;
  close(): Promise<void>;
}

export class JanusViewer extends EventEmitter<RelayedViewerEvents> implements RelayedViewer {
  private ended = false;

  private constructor(
    private readonly handle: JanusHandle,
    readonly gateway: string,
    readonly offer: string,
  ) {
    super();
    handle.on('webrtcup', () => this.emit('connected'));
    handle.on('hangup', (reason) => this.finish(`the gateway hung up (${reason})`));
    handle.on('detached', () => this.finish('the gateway went away'));
  }

  /** Attaches to the streaming plugin and asks to watch mountpoint `id`; resolves once Janus has offered. */
  static async watch(session: JanusSession, mountpoint: number, gateway: string): Promise<JanusViewer> {
    const handle = await session.attach(STREAMING_PLUGIN);
    try {
      const { jsep } = await handle.message({ request: 'watch', id: mountpoint, offer_audio: true, offer_video: true, offer_data: false });
      if (jsep?.type !== 'offer') throw new JanusError('Janus: no offer in its answer to watch');
      return new JanusViewer(handle, gateway, jsep.sdp);
    } catch (error) {
      await handle.detach();
      throw error;
    }
  }

  async answer(sdp: string): Promise<void> {
    await this.handle.message({ request: 'start' }, { type: 'answer', sdp });
  }

  async candidate(candidate: JanusIceCandidate | null): Promise<void> {
    if (this.ended) return;
    await this.handle.trickle(candidate);
  }

  async close(): Promise<void> {
    if (this.ended) return;
    this.finish('closed');
    await this.handle.detach();
  }

  private finish(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('closed', reason);
  }
}
