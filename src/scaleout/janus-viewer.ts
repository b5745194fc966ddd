/**
 * One viewer served by Janus on the plugin's behalf: a streaming-plugin handle that watches the
 * camera's mountpoint. Janus makes the offer, as the plugin's own watch page protocol expects, so
 * the page talks to Janus's ICE and DTLS without knowing it; the signalling stays the plugin's, and
 * with it who may watch what.
 */
import { EventEmitter } from 'node:events';
import type { IceCandidateJson, RelayedViewer, RelayedViewerEvents } from '../webrtc/types.js';
import { JanusError, type JanusHandle, type JanusSession } from './janus-api.js';
import { STREAMING_PLUGIN } from './janus-mountpoint.js';

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

  async candidate(candidate: IceCandidateJson | null): Promise<void> {
    if (this.ended) return;
    await this.handle.trickle(candidate ? { candidate: candidate.candidate, sdpMid: candidate.sdpMid ?? null, sdpMLineIndex: candidate.sdpMLineIndex ?? null } : null);
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
