// A werift receiving peer for viewer tests and the benchmark: it answers the server's offer (or
// makes a WHEP-style offer), reassembles the H.264 (or, with `videoCodec: 'H265'`, the H.265) it
// receives with the project's own depacketizer into Annex-B, and counts what arrived. `watchOverSignalling` drives it through
// the real WebSocket protocol.
import { once } from 'node:events';
import { GenericNack, RTCPeerConnection, RTCRtpCodecParameters, RtcpReceiverInfo, RtcpRrPacket, RtcpTransportLayerFeedback, type MediaStreamTrack, type RTCRtpTransceiver, type RtcpPacket, type RtpPacket } from 'werift';
import { WebSocket } from 'ws';
import { H264Depacketizer } from '../../src/media/h264-depacketizer.js';
import { H265Depacketizer, isH265Irap } from '../../src/media/h265-depacketizer.js';
import type { RtpPacketView } from '../../src/media/types.js';
import { ignoreStaleDtlsHellos } from '../../src/webrtc/dtls-stale-hellos.js';
import { icePeerConfig, LOOPBACK_ICE_SETTINGS } from '../../src/webrtc/ice-config.js';
import type { IceCandidateJson } from '../../src/webrtc/types.js';

const START_CODE = Buffer.from([0, 0, 0, 1]);

export interface ReceiverOptions {
  /** Keep the reassembled Annex-B (default true; the bench turns it off). */
  keepVideo?: boolean;
  /** Called for each video RTP packet (bench: latency probes). */
  onVideoPacket?: (packet: RtpPacket) => void;
  /** What it receives, as a browser that decodes H.265 (Safari 18 and later) would (default H264). */
  videoCodec?: 'H264' | 'H265';
  /** Also receive Opus sound, as browsers do (default: G.711 only). */
  opus?: boolean;
  /** What `watchOverSignalling` says the browser decodes (the page's `videoCodecs`); default: nothing said. */
  videoCodecs?: string[];
  /**
   * Negotiate NACK and PLI (default true, as browsers do). The bench can turn them off: a receiver
   * whose one core is saturated then loses what it loses without asking for it again, and the
   * server's figures stay its own. (The shared fan-out harness's cheap mode keeps "nack pli", which
   * werift takes for generic NACK as well.)
   */
  nack?: boolean;
}

/** The H.265 a Safari 18 offers: Main profile, Main tier, level 3.1, one RTP stream. */
export const H265_RECEIVE_FMTP = 'level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST';

export class WeriftReceiver {
  readonly pc: RTCPeerConnection;
  videoPackets = 0;
  audioPackets = 0;
  videoBytes = 0;
  accessUnits = 0;
  keyframes = 0;
  /** One letter per access unit: I (IDR), p (other), x (damaged), for diagnostics. */
  auKinds = '';
  damaged = 0;
  videoSsrc: number | undefined;
  /** Video packets that arrived again (retransmissions of packets already here). */
  duplicates = 0;
  /** RTCP the server sent, as werift opened and parsed it (see `collectRtcp`). */
  readonly rtcpReceived: RtcpPacket[] = [];
  firstVideoAt: number | undefined;
  firstKeyframeAt: number | undefined;
  readonly createdAt = performance.now();
  /** (sequence number, timestamp) of each frame's marker packet, in arrival order. */
  readonly markers: Array<{ seq: number; ts: number }> = [];
  /** Each new video packet's sequence number, arrival time and payload size (the newest 4096). */
  readonly arrivals: Array<{ seq: number; at: number; bytes: number }> = [];
  /** Payload bytes of the video packets that arrived again (see `duplicates`). */
  duplicateBytes = 0;
  private readonly chunks: Buffer[] = [];
  private readonly seen = new Set<number>();
  private readonly depacketizer: H264Depacketizer | H265Depacketizer;
  private readonly tracks: MediaStreamTrack[] = [];
  readonly localCandidates: IceCandidateJson[] = [];
  onCandidate?: (candidate: IceCandidateJson | null) => void;

  constructor(private readonly options: ReceiverOptions = {}) {
    const feedback = options.nack === false ? [] : [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }];
    // This client is the DTLS client when the server makes the offer, and werift's client fails the
    // handshake on a HelloVerifyRequest answering its own retransmitted ClientHello, which a server
    // slowed by a storm sends (browsers ignore it). The server's guard, process-wide, covers it where
    // server and clients share a process; this covers clients in processes of their own (bench).
    ignoreStaleDtlsHellos();
    this.pc = new RTCPeerConnection({
      ...icePeerConfig(LOOPBACK_ICE_SETTINGS),
      bundlePolicy: 'max-bundle',
      codecs: {
        video: [
          options.videoCodec === 'H265'
            ? new RTCRtpCodecParameters({
              mimeType: 'video/H265',
              clockRate: 90000,
              payloadType: 106,
              parameters: H265_RECEIVE_FMTP,
              rtcpFeedback: feedback,
            })
            : new RTCRtpCodecParameters({
              mimeType: 'video/H264',
              clockRate: 90000,
              payloadType: 102,
              parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
              rtcpFeedback: feedback,
            }),
        ],
        audio: [
          new RTCRtpCodecParameters({ mimeType: 'audio/PCMU', clockRate: 8000, channels: 1, payloadType: 0 }),
          new RTCRtpCodecParameters({ mimeType: 'audio/PCMA', clockRate: 8000, channels: 1, payloadType: 8 }),
          ...(options.opus ? [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })] : []),
        ],
      },
    });
    const h265 = options.videoCodec === 'H265';
    const onAccessUnit = (au: { units: Buffer[]; damaged: boolean }): void => {
      this.accessUnits++;
      if (au.damaged) this.damaged++;
      const idr = h265 ? au.units.some((u) => isH265Irap((u[0]! >> 1) & 0x3f)) : au.units.some((u) => (u[0]! & 0x1f) === 5);
      this.auKinds += idr ? 'I' : au.damaged ? 'x' : 'p';
      if (idr) {
        this.keyframes++;
        this.firstKeyframeAt ??= performance.now();
      }
      if (this.options.keepVideo !== false) for (const unit of au.units) this.chunks.push(START_CODE, Buffer.from(unit));
    };
    this.depacketizer = h265 ? new H265Depacketizer(onAccessUnit) : new H264Depacketizer(onAccessUnit);
    this.pc.onIceCandidate.subscribe((candidate) => {
      const json = candidate
        ? { candidate: candidate.candidate, sdpMid: candidate.sdpMid ?? null, sdpMLineIndex: candidate.sdpMLineIndex ?? null }
        : null;
      if (json) this.localCandidates.push(json);
      this.onCandidate?.(json);
    });
    this.pc.onTrack.subscribe((track) => {
      this.tracks.push(track);
      track.onReceiveRtp.subscribe((rtp) => this.onRtp(track.kind, rtp));
    });
  }

  private onRtp(kind: string, rtp: RtpPacket): void {
    if (kind === 'audio') {
      this.audioPackets++;
      return;
    }
    const seq = rtp.header.sequenceNumber;
    // A NACKed packet can arrive twice (original late, then the retransmission); count it once.
    if (this.seen.has(seq)) {
      this.duplicates++;
      this.duplicateBytes += rtp.payload.length;
      return;
    }
    this.seen.add(seq);
    if (this.seen.size > 4096) this.seen.delete(this.seen.values().next().value!);
    this.videoPackets++;
    this.videoBytes += rtp.payload.length;
    this.arrivals.push({ seq, at: performance.now(), bytes: rtp.payload.length });
    if (this.arrivals.length > 4096) this.arrivals.shift();
    this.videoSsrc = rtp.header.ssrc;
    this.firstVideoAt ??= performance.now();
    this.options.onVideoPacket?.(rtp);
    if (rtp.header.marker) this.markers.push({ seq, ts: rtp.header.timestamp });
    // A small reorder buffer, as any real receiver has: NACKed packets come back late, and the
    // depacketizer must see them in order. A gap that stays open 300 ms is real loss.
    if (this.nextSeq < 0) this.nextSeq = seq;
    if (((seq - this.nextSeq) << 16) >> 16 < 0) return; // older than what was released: too late
    this.pending.set(seq, { rtp, at: performance.now() });
    this.release();
  }

  private nextSeq = -1;
  private readonly pending = new Map<number, { rtp: RtpPacket; at: number }>();

  private release(): void {
    for (;;) {
      const entry = this.pending.get(this.nextSeq);
      if (entry) {
        this.pending.delete(this.nextSeq);
        this.push(entry.rtp);
        this.nextSeq = (this.nextSeq + 1) & 0xffff;
        continue;
      }
      if (this.pending.size === 0) return;
      const oldest = Math.min(...[...this.pending.values()].map((e) => e.at));
      if (performance.now() - oldest < 300 && this.pending.size < 1024) return;
      // Give up on the gap: jump to the oldest waiting packet.
      const unwrap = (s: number): number => ((s - this.nextSeq) << 16) >> 16;
      this.nextSeq = [...this.pending.keys()].sort((a, b) => unwrap(a) - unwrap(b))[0]!;
      this.lossPending = true;
    }
  }

  private lossPending = false;

  private push(rtp: RtpPacket): void {
    const view: RtpPacketView = {
      version: 2,
      padding: false,
      extension: false,
      marker: rtp.header.marker,
      payloadType: rtp.header.payloadType,
      sequenceNumber: rtp.header.sequenceNumber,
      timestamp: rtp.header.timestamp,
      ssrc: rtp.header.ssrc,
      csrcs: [],
      payload: rtp.payload,
    };
    this.depacketizer.push(view, this.lossPending);
    this.lossPending = false;
  }

  /** Answers a server offer. */
  async answer(offerSdp: string): Promise<string> {
    // Without NACK the offer's NACK lines go before werift reads it (werift answers what was offered,
    // and takes "nack pli" for NACK too: it checks the feedback's type, "nack", alone).
    const sdp = this.options.nack === false ? offerSdp.split('\r\n').filter((l) => !/^a=rtcp-fb:\S+ nack( pli)?\s*$/.test(l)).join('\r\n') : offerSdp;
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    return this.pc.localDescription?.sdp ?? answer.sdp;
  }

  /** A WHEP-style recvonly offer, after ICE gathering. */
  async offer(): Promise<string> {
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    if (this.pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const sub = this.pc.iceGatheringStateChange.subscribe((s) => {
          if (s === 'complete') {
            sub.unSubscribe();
            resolve();
          }
        });
      });
    }
    return this.pc.localDescription?.sdp ?? offer.sdp;
  }

  async applyAnswer(sdp: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  async addCandidate(candidate: IceCandidateJson | null): Promise<void> {
    await this.pc.addIceCandidate(candidate === null ? null : { candidate: candidate.candidate, sdpMid: candidate.sdpMid ?? undefined, sdpMLineIndex: candidate.sdpMLineIndex ?? undefined });
  }

  private videoTransceiver(): RTCRtpTransceiver {
    const transceiver = this.pc.getTransceivers().find((t) => t.kind === 'video');
    if (!transceiver) throw new Error('no video transceiver');
    return transceiver;
  }

  /** Sends a PLI for the video it receives. */
  async sendPli(): Promise<void> {
    const transceiver = this.videoTransceiver();
    if (this.videoSsrc === undefined) throw new Error('no video yet');
    await transceiver.receiver.sendRtcpPLI(this.videoSsrc);
  }

  /** Sends a generic NACK for these video sequence numbers. */
  async sendNack(lost: number[]): Promise<void> {
    const transceiver = this.videoTransceiver();
    if (this.videoSsrc === undefined) throw new Error('no video yet');
    const nack = new GenericNack({ senderSsrc: transceiver.receiver.rtcpSsrc, mediaSourceSsrc: this.videoSsrc, lost });
    await transceiver.receiver.dtlsTransport.sendRtcp([new RtcpTransportLayerFeedback({ feedback: nack })]);
  }

  /** Sends a receiver report about the video claiming this loss fraction (0..255 of 256). */
  async sendReceiverReport(fractionLost: number): Promise<void> {
    const transceiver = this.videoTransceiver();
    if (this.videoSsrc === undefined) throw new Error('no video yet');
    const report = new RtcpReceiverInfo({ ssrc: this.videoSsrc, fractionLost, packetsLost: 0, highestSequence: 0, jitter: 0, lsr: 0, dlsr: 0 });
    await transceiver.receiver.dtlsTransport.sendRtcp([new RtcpRrPacket({ ssrc: transceiver.receiver.rtcpSsrc, reports: [report] })]);
  }

  /**
   * Sends a receiver report of `fractionLost` (of 256) for the video until `seen()` holds. Sent
   * again every 200 ms, because werift's own receiver reports (every 0.5-1.5 s, saying what this
   * client really lost: nothing) replace ours at the server, and on a loaded machine one can land
   * before a poll has looked.
   */
  async reportLossUntil(fractionLost: number, seen: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!seen()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} after reporting ${fractionLost}/256 lost`);
      await this.sendReceiverReport(fractionLost);
      for (let i = 0; i < 10 && !seen(); i++) await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** From now on keeps the RTCP the server sends (werift decrypts and parses it). */
  collectRtcp(): void {
    this.videoTransceiver().receiver.dtlsTransport.onRtcp.subscribe((packet) => this.rtcpReceived.push(packet));
  }

  async waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${what} (video packets ${this.videoPackets}, AUs ${this.accessUnits}, last AUs ${this.auKinds.slice(-40)}, audio ${this.audioPackets}, state ${this.pc.connectionState})`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Frame timestamps in sending order (retransmissions arrive late; order by sequence number). */
  frameTimestamps(): number[] {
    if (this.markers.length === 0) return [];
    const first = this.markers[0]!.seq;
    const unwrap = (seq: number): number => ((seq - first + 0x8000) & 0xffff) - 0x8000;
    return [...this.markers].sort((a, b) => unwrap(a.seq) - unwrap(b.seq)).map((m) => m.ts);
  }

  annexB(): Buffer {
    return Buffer.concat(this.chunks);
  }

  async close(): Promise<void> {
    for (const track of this.tracks) track.stop();
    this.tracks.length = 0;
    await this.pc.close().catch(() => undefined);
  }
}

export interface SignallingClient {
  ws: WebSocket;
  receiver: WeriftReceiver;
  messages: Array<Record<string, unknown>>;
  /** Resolves with the first message of this type (already received or future). */
  next(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Opens a WebSocket, sends `watch`, answers the offer and trickles candidates both ways. */
export async function watchOverSignalling(url: string, camera: string, options: ReceiverOptions = {}, connect: { headers?: Record<string, string>; localAddress?: string } = {}): Promise<SignallingClient> {
  const ws = new WebSocket(url, { ...(connect.headers ? { headers: connect.headers } : {}), ...(connect.localAddress ? { localAddress: connect.localAddress } : {}) });
  // Bounded, so that a server that never upgrades fails the test that asked instead of hanging its file.
  await once(ws, 'open', { signal: AbortSignal.timeout(15_000) }).catch((error: unknown) => {
    ws.terminate();
    throw new Error(`the signalling socket did not open: ${error instanceof Error ? error.message : String(error)}`);
  });
  const receiver = new WeriftReceiver(options);
  const messages: Array<Record<string, unknown>> = [];
  const waiters: Array<{ type: string; resolve: (m: Record<string, unknown>) => void }> = [];
  let chain = Promise.resolve();
  receiver.onCandidate = (candidate) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'candidate', candidate }));
  };
  ws.on('message', (data: Buffer) => {
    const message = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    messages.push(message);
    for (const waiter of waiters.splice(0)) {
      if (waiter.type === message.type) waiter.resolve(message);
      else waiters.push(waiter);
    }
    chain = chain
      .then(async () => {
        if (message.type === 'offer' && typeof message.sdp === 'string') {
          const answer = await receiver.answer(message.sdp);
          ws.send(JSON.stringify({ type: 'answer', sdp: answer }));
        } else if (message.type === 'candidate') {
          await receiver.addCandidate((message.candidate as IceCandidateJson | null) ?? null);
        }
      })
      .catch(() => undefined);
  });
  ws.send(JSON.stringify({ type: 'watch', camera, ...(options.videoCodecs ? { videoCodecs: options.videoCodecs } : {}) }));
  return {
    ws,
    receiver,
    messages,
    next: (type, timeoutMs = 10_000) => {
      const found = messages.find((m) => m.type === type);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${type}" message; got ${JSON.stringify(messages.map((m) => m.type))}`)), timeoutMs);
        waiters.push({
          type,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
    close: async () => {
      if (ws.readyState === ws.OPEN) {
        ws.send(JSON.stringify({ type: 'stop' }));
        ws.close();
      }
      await receiver.close();
    },
  };
}
