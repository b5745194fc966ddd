/**
 * One RTSP client session of the re-stream: a `FrameSink` on the camera's Source that puts the
 * Source's shared packets on the wire with this client's own RTP headers (SSRC, sequence numbers,
 * timestamp offset), over TCP interleaved or UDP, and sends RTCP sender reports so the client can
 * line audio up with video.
 *
 * Output is bounded: when more than `maxQueuedBytes` wait to be sent, `write` drops the frame and
 * returns false, the Source then skips this client's video to the next keyframe, and video here
 * also restarts only at a keyframe. The one exception is the GOP burst at PLAY (the Source's cached
 * frames, bounded by the Source's own cache size), which may exceed the limit for a few seconds,
 * because cutting it would throw away the very keyframe the client is meant to start from.
 */
import { randomBytes, randomInt } from 'node:crypto';
import type { FrameSink, MediaFrame, SourceState, Subscribable, TrackDescription } from '../media/types.js';
import type { Logger } from '../util/logger.js';
import { RTP_HEADER_LENGTH, writeRtpHeader } from '../media/rtp.js';
import { payloadsFor } from './payloads.js';
import type { ParameterSets, ServedTrack } from './sdp.js';
import { anchorClock, senderReportFor, UdpPacer, withParameterSets, type SessionTransport, type TrackOutput, type UdpOutput } from './track-output.js';

export type { SessionTransport, UdpOutput } from './track-output.js';

/** The RTSP connection's socket, as far as the session needs it. */
export interface TcpOutput {
  write(data: Buffer): void;
  readonly writableLength: number;
}

export interface SessionLimits {
  maxQueuedBytes: number;
  senderReportIntervalMs: number;
  /** How long the PLAY burst may exceed `maxQueuedBytes` before normal limits apply. */
  burstGraceMs: number;
  /** UDP pacing: bytes sent per timer tick, so a GOP burst does not overflow the client's socket buffer. */
  udpBytesPerTick: number;
}

export interface SessionStats {
  id: string;
  cameraId: string;
  remote: string;
  transport: 'tcp' | 'udp' | 'none';
  playing: boolean;
  framesSent: number;
  framesDropped: number;
  bytesSent: number;
  /** Bytes accepted but not yet handed to the kernel (TCP socket buffer or UDP pacing queue). */
  queuedBytes: number;
}

export class RestreamSession implements FrameSink {
  readonly id = randomBytes(8).toString('hex');
  readonly startedAt = performance.now();
  lastActivity = performance.now();
  private readonly outputs = new Map<'video' | 'audio', TrackOutput>();
  private subscription: { unsubscribe(): void } | undefined;
  private held: MediaFrame[] | undefined;
  private playing = false;
  private closed = false;
  private videoNeedsKeyframe = true;
  private burstAllowance = 0;
  private burstDeadline = 0;
  private srTimer: NodeJS.Timeout | undefined;
  private readonly pacer: UdpPacer | undefined;
  private readonly cname = `restream-${randomBytes(4).toString('hex')}`;
  private framesSent = 0;
  private framesDropped = 0;
  private bytesSent = 0;

  constructor(
    readonly cameraId: string,
    readonly remote: string,
    private readonly videoSets: ParameterSets | undefined,
    private readonly tcp: TcpOutput,
    udp: UdpOutput | undefined,
    private readonly limits: SessionLimits,
    private readonly log: Logger,
    /** Called once when the session ends on its own (source gone, tracks changed); not on `close()`. */
    private readonly onEnd: (reason: string) => void,
  ) {
    this.pacer = udp ? new UdpPacer(udp, limits.udpBytesPerTick) : undefined;
  }

  get isPlaying(): boolean {
    return this.playing;
  }

  get hasTracks(): boolean {
    return this.outputs.size > 0;
  }

  /** Transports in use, for the interleaved channel bookkeeping of the connection. */
  get transports(): SessionTransport[] {
    return [...this.outputs.values()].map((o) => o.transport);
  }

  isSetUp(trackId: number): boolean {
    return [...this.outputs.values()].some((o) => o.served.trackId === trackId);
  }

  /** Adds a track; returns the SSRC this client will see on it. */
  setupTrack(served: ServedTrack, transport: SessionTransport, controlUrl: string): number {
    const ssrc = randomBytes(4).readUInt32BE(0);
    this.outputs.set(served.kind, {
      served,
      transport,
      controlUrl,
      ssrc,
      seq: randomInt(0, 0x8000),
      tsOffset: randomBytes(4).readUInt32BE(0),
      packets: 0,
      octets: 0,
    });
    return ssrc;
  }

  /**
   * Subscribes to the Source. Frames the Source hands over during `subscribe` (its GOP cache) are
   * held back until `startFlow()`, so the PLAY response, which must come first on the wire, can
   * carry RTP-Info naming the very first packet of each track. Returns that RTP-Info value.
   */
  play(source: Subscribable): string {
    if (this.closed || this.playing) return '';
    this.playing = true;
    this.held = [];
    this.videoNeedsKeyframe = true;
    try {
      this.subscription = source.subscribe(this, { kinds: [...this.outputs.keys()] });
    } catch (error) {
      this.playing = false;
      this.held = undefined;
      throw error;
    }
    const info: string[] = [];
    for (const output of this.outputs.values()) {
      const first = this.held.find((f) => f.kind === output.served.kind && (f.kind === 'audio' || f.keyframe));
      let entry = `url=${output.controlUrl};seq=${output.seq}`;
      if (first) entry += `;rtptime=${(first.timestamp + output.tsOffset) >>> 0}`;
      info.push(entry);
    }
    return info.join(',');
  }

  /** Sends the held GOP burst and lets live frames through; call right after the PLAY response. */
  startFlow(): void {
    const held = this.held;
    this.held = undefined;
    if (!held || this.closed) return;
    const before = this.queuedBytes();
    for (const frame of held) this.deliver(frame);
    this.burstAllowance = Math.max(0, this.queuedBytes() - before);
    this.burstDeadline = performance.now() + this.limits.burstGraceMs;
    this.srTimer = setInterval(() => this.sendSenderReports(), this.limits.senderReportIntervalMs);
    this.srTimer.unref();
  }

  pause(): void {
    if (!this.playing) return;
    this.playing = false;
    this.held = undefined;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    if (this.srTimer) clearInterval(this.srTimer);
    this.srTimer = undefined;
  }

  close(): void {
    if (this.closed) return;
    this.pause();
    this.closed = true;
    this.pacer?.clear();
  }

  touch(): void {
    this.lastActivity = performance.now();
  }

  /** Whether a UDP datagram from this address and port belongs to this session. */
  ownsUdpPeer(address: string, port: number): boolean {
    for (const { transport } of this.outputs.values()) {
      if (transport.type === 'udp' && transport.address === address && (transport.rtpPort === port || transport.rtcpPort === port)) {
        return true;
      }
    }
    return false;
  }

  stats(): SessionStats {
    const kinds = new Set(this.transports.map((t) => t.type));
    return {
      id: this.id,
      cameraId: this.cameraId,
      remote: this.remote,
      transport: kinds.has('tcp') ? 'tcp' : kinds.has('udp') ? 'udp' : 'none',
      playing: this.playing,
      framesSent: this.framesSent,
      framesDropped: this.framesDropped,
      bytesSent: this.bytesSent,
      queuedBytes: this.queuedBytes(),
    };
  }

  // ---- FrameSink ----

  write(frame: MediaFrame): boolean {
    if (this.closed || !this.playing) return false;
    if (this.held) {
      this.held.push(frame);
      return true;
    }
    const output = this.outputs.get(frame.kind);
    if (!output) return true;
    if (output.served.codec !== frame.codec) {
      this.end(`the camera now sends ${frame.codec} instead of ${output.served.codec}`);
      return false;
    }
    if (frame.kind === 'video' && this.videoNeedsKeyframe && !frame.keyframe) return true;
    if (this.congested()) {
      this.framesDropped++;
      if (frame.kind === 'video') this.videoNeedsKeyframe = true;
      return false;
    }
    this.deliver(frame);
    return true;
  }

  onTracks(tracks: ReadonlyArray<TrackDescription>): void {
    for (const output of this.outputs.values()) {
      const track = tracks[output.served.sourceIndex];
      const same = track && track.kind === output.served.kind && track.codec === output.served.codec &&
        track.clockRate === output.served.clockRate;
      if (!same) {
        // The client's SDP no longer describes the stream; ending it lets the consumer reconnect.
        this.end('the camera changed its tracks');
        return;
      }
    }
  }

  onState(state: SourceState): void {
    if (state.state === 'stopped') this.end('the camera source was stopped');
  }

  // ---- internals ----

  private end(reason: string): void {
    if (this.closed) return;
    this.close();
    this.onEnd(reason);
  }

  private queuedBytes(): number {
    let tcp = false;
    for (const { transport } of this.outputs.values()) if (transport.type === 'tcp') tcp = true;
    return (tcp ? this.tcp.writableLength : 0) + (this.pacer?.queuedBytes ?? 0);
  }

  private congested(): boolean {
    const queued = this.queuedBytes();
    if (this.burstAllowance > 0 && (queued <= this.limits.maxQueuedBytes || performance.now() > this.burstDeadline)) {
      this.burstAllowance = 0;
    }
    return queued > this.limits.maxQueuedBytes + this.burstAllowance;
  }

  private deliver(frame: MediaFrame): void {
    const output = this.outputs.get(frame.kind);
    if (!output) return;
    if (frame.kind === 'video') {
      if (this.videoNeedsKeyframe && !frame.keyframe) return;
      if (frame.keyframe) this.videoNeedsKeyframe = false;
    }
    let payloads = payloadsFor(frame);
    if (frame.kind === 'video' && frame.keyframe) payloads = withParameterSets(frame, payloads, this.videoSets);

    if (output.nextSourceSeq !== undefined) {
      // Frames the Source skipped for us (or that we dropped) show up as a sequence gap: honest loss.
      const gap = (frame.sequenceNumber - output.nextSourceSeq) & 0xffff;
      if (gap > 0 && gap < 0x8000) output.seq = (output.seq + gap) & 0xffff;
    }
    output.nextSourceSeq = (frame.sequenceNumber + frame.packets.length) & 0xffff;
    anchorClock(output, frame);
    const timestamp = (frame.timestamp + output.tsOffset) >>> 0;
    if (output.packets === 0) this.sendSenderReport(output);

    const { payloadType, kind } = output.served;
    const transport = output.transport;
    let bytes = 0;
    if (transport.type === 'tcp') {
      let total = 0;
      for (const p of payloads) total += 4 + RTP_HEADER_LENGTH + p.payload.length;
      // One write per frame: fewer syscalls, and the interleaved stream is never split mid-frame.
      const out = Buffer.allocUnsafe(total);
      let offset = 0;
      for (const p of payloads) {
        const length = RTP_HEADER_LENGTH + p.payload.length;
        out[offset] = 0x24;
        out[offset + 1] = transport.rtpChannel;
        out.writeUInt16BE(length, offset + 2);
        writeRtpHeader(out, { payloadType, marker: p.marker, sequenceNumber: output.seq, timestamp, ssrc: output.ssrc }, offset + 4);
        p.payload.copy(out, offset + 4 + RTP_HEADER_LENGTH);
        offset += 4 + length;
        output.seq = (output.seq + 1) & 0xffff;
        bytes += p.payload.length;
      }
      this.tcp.write(out);
    } else {
      for (const p of payloads) {
        const header = Buffer.allocUnsafe(RTP_HEADER_LENGTH);
        writeRtpHeader(header, { payloadType, marker: p.marker, sequenceNumber: output.seq, timestamp, ssrc: output.ssrc });
        output.seq = (output.seq + 1) & 0xffff;
        // The payload is shared with every other client: send it by reference, never modify it.
        this.pacer?.push({ parts: [header, p.payload], bytes: RTP_HEADER_LENGTH + p.payload.length, port: transport.rtpPort, address: transport.address, rtcp: false });
        bytes += p.payload.length;
      }
    }
    output.packets += payloads.length;
    output.octets += bytes;
    output.lastTimestamp = frame.timestamp;
    this.framesSent++;
    this.bytesSent += bytes;
    if (kind === 'video' && this.framesSent === 1) this.log.debug(`re-stream session ${this.id} sent its first keyframe`);
  }

  private sendSenderReports(): void {
    for (const output of this.outputs.values()) if (output.packets > 0) this.sendSenderReport(output);
  }

  private sendSenderReport(output: TrackOutput): void {
    const report = senderReportFor(output, this.cname);
    if (!report) return;
    const transport = output.transport;
    if (transport.type === 'tcp') {
      const frame = Buffer.allocUnsafe(4 + report.length);
      frame[0] = 0x24;
      frame[1] = transport.rtcpChannel;
      frame.writeUInt16BE(report.length, 2);
      report.copy(frame, 4);
      this.tcp.write(frame);
    } else {
      this.pacer?.push({ parts: [report], bytes: report.length, port: transport.rtcpPort, address: transport.address, rtcp: true });
    }
  }
}
