/**
 * A viewer's offer/answer and ICE: the media plan (which of the camera's tracks go out, as what),
 * the werift peer connection, the server-offer path (WebSocket signalling) and the client-offer
 * path (WHEP), trickled candidates both ways with the announced public addresses, and the filters
 * on remote candidates. The peer (viewer-peer.ts) owns the life cycle around it.
 */
import { MediaStream, RTCPeerConnection, type RTCRtpCodecParameters, type RTCRtpTransceiver } from 'werift';
import type { TimerSeam } from '../media/timers.js';
import type { Logger } from '../util/logger.js';
import type { BroadcastSource } from '../media/types.js';
import { audioCodec, talkCodec, h264Codec, h265Codec, offerVideoCodec, planMedia, UnsupportedCodecError, vp8Codec, type MediaPlan } from './codecs.js';
import {
  announceCandidates,
  announceInSdp,
  localCandidateAllowed,
  restrictSdpCandidates,
  icePeerConfig,
  resolveAnnouncedAddresses,
  type IceSettings,
} from './ice-config.js';
import type { RemoteCandidateFilter } from './remote-candidates.js';
import { answerAcceptsVideo, filterOfferForH264, filterOfferForH265, filterOfferForVp8 } from './sdp-filter.js';
import type { IceCandidateJson } from './types.js';
import type { ViewerStats } from './viewer-options.js';

export interface ViewerNegotiationOptions {
  id: string;
  source: BroadcastSource;
  ice: IceSettings;
  log: Logger;
  timers: TimerSeam;
  remoteCandidates: RemoteCandidateFilter;
  /** Records a timeline milestone once. */
  mark(milestone: keyof ViewerStats['timeline']): void;
  closed(): boolean;
  /** The peer connection exists: negotiation is under way. */
  onPeerConnection(pc: RTCPeerConnection): void;
  onConnectionState(state: string): void;
  /** A local candidate for the other side (`null`: gathering is complete). */
  onCandidate(candidate: IceCandidateJson | null): void;
  /** The other side has what it needs to connect: from here it gets a few seconds to do so. */
  startConnectTimer(): void;
  /** A werift subscription to release at close. */
  addDisposer(dispose: () => void): void;
  /** Offer a receive-only Opus section for the viewer's microphone (`ViewerPeerOptions.talk`). */
  talk?: boolean;
  /** One RTP packet of the viewer's microphone: its Opus payload and 48 kHz timestamp. */
  onTalkVoice?(payload: Buffer, timestamp: number): void;
  /** The viewer decodes H.265: an H.265 camera's video goes to it as it is (`ViewerPeerOptions.receivesH265`). */
  receivesH265?: boolean;
}

export class ViewerNegotiation {
  private pcValue: RTCPeerConnection | undefined;
  private planValue: MediaPlan | undefined;
  videoTransceiver: RTCRtpTransceiver | undefined;
  audioTransceiver: RTCRtpTransceiver | undefined;
  /** The viewer's microphone, when it may talk (server-offer path only). */
  talkTransceiver: RTCRtpTransceiver | undefined;
  /** Announced public addresses, resolved to IPv4 when negotiation starts. */
  private announced: string[] = [];

  constructor(private readonly options: ViewerNegotiationOptions) {}

  get pc(): RTCPeerConnection | undefined {
    return this.pcValue;
  }

  get plan(): MediaPlan | undefined {
    return this.planValue;
  }

  /**
   * Forgets werift's peer connection and transceivers (closing it is the caller's): the viewer has
   * settled (viewer-settle.ts) or closes. The plan stays: it describes the stream.
   */
  release(): void {
    this.pcValue = undefined;
    this.videoTransceiver = this.audioTransceiver = this.talkTransceiver = undefined;
  }

  /** The Source's tracks changed within the same codecs: the plan follows, its notes stay. */
  replacePlan(plan: MediaPlan): void {
    this.planValue = plan;
  }

  /**
   * Server-offer path (WebSocket signalling). Needs the Source's tracks. Throws
   * `UnsupportedCodecError` when the camera's video cannot be passed through.
   */
  async createOffer(): Promise<string> {
    this.assertOpen();
    const plan = this.decidePlan();
    await this.resolveAnnounced();
    const pc = this.newPeerConnection(plan.video ? offerVideoCodec(plan.video) : undefined);
    // A shared stream id puts audio and video in one sync group, so the browser lip-syncs them.
    const stream = new MediaStream({ id: `camera-${this.options.source.id}` });
    if (plan.video) this.videoTransceiver = pc.addTransceiver('video', { direction: 'sendonly', streams: [stream] });
    if (plan.audio) this.audioTransceiver = pc.addTransceiver('audio', { direction: 'sendonly', streams: [stream] });
    if (this.options.talk) this.addTalkTransceiver(pc);
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.assertOpen();
    this.options.mark('offer');
    this.options.startConnectTimer();
    return restrictSdpCandidates(announceInSdp(pc.localDescription?.sdp ?? offer.sdp, this.announced), this.options.ice);
  }

  /** The talk section's mid, once the offer is made. */
  get talkMid(): string | undefined {
    return this.talkTransceiver?.mid ?? undefined;
  }

  /**
   * The microphone's section: receive-only Opus whatever the camera's own sound is (each section
   * keeps its own codec, so a PCMU camera's sound stays PCMU beside it).
   */
  private addTalkTransceiver(pc: RTCPeerConnection): void {
    const transceiver = pc.addTransceiver('audio', { direction: 'recvonly' });
    transceiver.setCodecPreferences([talkCodec()]);
    if (this.audioTransceiver && this.planValue?.audio) this.audioTransceiver.setCodecPreferences([audioCodec(this.planValue.audio)]);
    const onTrack = transceiver.onTrack.subscribe((track) => {
      const rtp = track.onReceiveRtp.subscribe((packet) => {
        if (!this.options.closed()) this.options.onTalkVoice?.(packet.payload, packet.header.timestamp);
      });
      this.options.addDisposer(rtp.unSubscribe);
    });
    this.options.addDisposer(onTrack.unSubscribe);
    this.talkTransceiver = transceiver;
  }

  /** The browser's answer to `createOffer`. Throws `UnsupportedCodecError` when it refused the video. */
  async applyAnswer(sdp: string): Promise<void> {
    this.assertOpen();
    const pc = this.pcValue;
    if (!pc || pc.signalingState !== 'have-local-offer') throw new Error('no offer is waiting for an answer');
    const video = this.planValue?.video;
    if (video && !answerAcceptsVideo(sdp)) {
      const name = video.codec === 'VP8' ? 'VP8' : 'H.264';
      throw new UnsupportedCodecError(
        `Your browser cannot play ${name} video, which this camera sends. Try Chrome, Edge, Safari or Firefox.`,
        `browser answer rejected the ${name} video section`,
      );
    }
    this.options.mark('answer');
    await pc.setRemoteDescription({ type: 'answer', sdp: this.options.remoteCandidates.filterSdp(sdp) });
  }

  /**
   * Client-offer path (WHEP). Cleans the offer (NOTES.md: werift picks the first H.264 by MIME
   * alone), answers, and waits up to `gatherTimeoutMs` for ICE gathering so the answer carries
   * candidates. Throws `UnsupportedCodecError` when the client cannot take the stream's video
   * (H.264 from the camera, or VP8 from its transcoded variant).
   */
  async answerOffer(offerSdp: string, gatherTimeoutMs: number): Promise<string> {
    this.assertOpen();
    const plan = this.decidePlan();
    await this.resolveAnnounced();
    const codec = plan.video?.codec ?? 'H264';
    const filtered = codec === 'VP8' ? filterOfferForVp8(offerSdp) : codec === 'H265' ? filterOfferForH265(offerSdp) : filterOfferForH264(offerSdp);
    if (plan.video && !filtered.h264 && (!plan.audio || !filtered.hasAudio)) {
      const wanted = codec === 'VP8' ? 'VP8, which this stream sends' : codec === 'H265' ? 'H.265, which this camera sends' : 'H.264 (packetization-mode=1), which this camera sends';
      throw new UnsupportedCodecError(`The client did not offer ${wanted}.`, `client offer has no ${codec === 'H264' ? 'H.264 packetization-mode=1' : codec === 'H265' ? 'H.265' : 'VP8'}`);
    }
    const chosen = filtered.h264;
    const videoCodec = plan.video && chosen
      ? codec === 'VP8' ? vp8Codec(chosen.payloadType) : codec === 'H265' ? h265Codec(chosen.payloadType, chosen.fmtp) : h264Codec(chosen.payloadType, chosen.fmtp)
      : undefined;
    const pc = this.newPeerConnection(videoCodec);
    await pc.setRemoteDescription({ type: 'offer', sdp: this.options.remoteCandidates.filterSdp(filtered.sdp) });
    this.assertOpen();
    const stream = new MediaStream({ id: `camera-${this.options.source.id}` });
    for (const transceiver of pc.getTransceivers()) {
      const wanted = transceiver.kind === 'video' ? videoCodec !== undefined && !this.videoTransceiver : !!plan.audio && !this.audioTransceiver;
      if (!wanted) {
        transceiver.setDirection('inactive');
        continue;
      }
      transceiver.setDirection('sendonly');
      transceiver.sender.setStreams([stream]);
      if (transceiver.kind === 'video') this.videoTransceiver = transceiver;
      else this.audioTransceiver = transceiver;
    }
    if (!this.videoTransceiver && !this.audioTransceiver) {
      throw new UnsupportedCodecError('The client offered nothing this camera can send.', 'no usable section in client offer');
    }
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    this.assertOpen();
    await this.waitForGathering(pc, gatherTimeoutMs);
    this.assertOpen();
    // From when the client gets the answer: gathering must not eat into its few seconds.
    this.options.startConnectTimer();
    return restrictSdpCandidates(announceInSdp(pc.localDescription?.sdp ?? answer.sdp, this.announced), this.options.ice);
  }

  /** A remote ICE candidate (trickle); `null` or an empty candidate means end of candidates. */
  async addRemoteCandidate(candidate: IceCandidateJson | null): Promise<void> {
    const pc = this.pcValue;
    if (!pc || this.options.closed()) return;
    if (candidate === null || candidate.candidate === '') {
      await pc.addIceCandidate(null);
      return;
    }
    const verdict = this.options.remoteCandidates.admit(candidate.candidate);
    if (!verdict.ok) {
      this.options.log.debug(`Camera ${this.options.source.id}, viewer ${this.options.id}: remote candidate ignored (${verdict.reason})`);
      return;
    }
    await pc.addIceCandidate({
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? undefined,
      sdpMLineIndex: candidate.sdpMLineIndex ?? undefined,
    });
  }

  private decidePlan(): MediaPlan {
    if (this.planValue) return this.planValue;
    this.options.mark('tracks');
    const plan = planMedia(this.options.source.tracks, { h265: this.options.receivesH265 === true });
    for (const note of plan.notes) this.options.log.warn(`Camera ${this.options.source.id}, viewer ${this.options.id}: ${note}`);
    this.planValue = plan;
    return plan;
  }

  private newPeerConnection(videoCodec: RTCRtpCodecParameters | undefined): RTCPeerConnection {
    const plan = this.decidePlan();
    const pc = new RTCPeerConnection({
      ...icePeerConfig(this.options.ice),
      // One transport for audio and video: one ICE check list, one DTLS handshake, one socket.
      bundlePolicy: 'max-bundle',
      codecs: {
        video: videoCodec ? [videoCodec] : [],
        audio: [
          ...(plan.audio ? [audioCodec(plan.audio)] : []),
          ...(this.options.talk && plan.audio?.codec !== 'OPUS' ? [talkCodec()] : []),
        ],
      },
      headerExtensions: { video: [], audio: [] },
    });
    this.pcValue = pc;
    this.options.onPeerConnection(pc);
    const candidate = pc.onIceCandidate.subscribe((c) => this.onLocalCandidate(c));
    const state = pc.connectionStateChange.subscribe((s) => this.options.onConnectionState(s));
    const ice = pc.iceConnectionStateChange.subscribe((s) => {
      if (s === 'connected') this.options.mark('iceConnected');
    });
    for (const dispose of [candidate.unSubscribe, state.unSubscribe, ice.unSubscribe]) this.options.addDisposer(dispose);
    return pc;
  }

  private async resolveAnnounced(): Promise<void> {
    const configured = this.options.ice.announcedAddresses ?? [];
    if (configured.length === 0) return;
    this.announced = await resolveAnnouncedAddresses(configured, (problem) => this.options.log.warn(problem));
    this.assertOpen();
  }

  private waitForGathering(pc: RTCPeerConnection, timeoutMs: number): Promise<void> {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.options.timers.clearTimeout(timer);
        sub.unSubscribe();
        resolve();
      };
      const sub = pc.iceGatheringStateChange.subscribe((state) => {
        if (state === 'complete') done();
      });
      const timer = this.options.timers.setTimeout(done, timeoutMs);
    });
  }

  private onLocalCandidate(candidate: { candidate: string; sdpMid?: string; sdpMLineIndex?: number } | undefined): void {
    if (this.options.closed()) return;
    if (!candidate) {
      this.options.onCandidate(null);
      return;
    }
    if (!localCandidateAllowed(candidate.candidate, this.options.ice)) return;
    const json: IceCandidateJson = {
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? null,
      sdpMLineIndex: candidate.sdpMLineIndex ?? null,
    };
    this.options.onCandidate(json);
    for (const extra of announceCandidates(candidate.candidate, this.announced)) {
      this.options.onCandidate({ ...json, candidate: extra });
    }
  }

  private assertOpen(): void {
    if (this.options.closed()) throw new Error('viewer closed');
  }
}
