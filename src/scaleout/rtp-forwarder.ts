/**
 * One copy of a camera to one gateway: a `FrameSink` on the camera's shared Source that writes each
 * frame's ready-cut payloads as RTP to the mountpoint's ports, whatever the number of viewers there.
 *
 * - One UDP socket sends both kinds and the RTCP: Janus learns where to send its keyframe requests
 *   (PLI/FIR) from the first RTCP packet it gets on the video RTCP port, so a sender report goes there
 *   at once and every few seconds after.
 * - Sequence numbers and SSRCs are the forwarder's own: a new forwarder (after a gateway restart)
 *   starts a new stream, which Janus accepts as the mountpoint's new source.
 * - SRTP when the gateway is on another machine: AES_CM_128_HMAC_SHA1_80 with the mountpoint's own
 *   SDES key (Janus's `srtpcrypto`), so the camera's picture never crosses the network in clear.
 * - A keyframe request from Janus is counted and not answered with the cached GOP: the mountpoint is
 *   shared, so a replay would rewind every viewer on it. New viewers start from Janus's buffered
 *   keyframe instead (`bufferkf`), and a camera sends a fresh one every GOP.
 */
import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { SrtpSession } from 'werift';
import { writeRtpHeaderAt } from '../media/rtp.js';
import type { FrameSink, MediaFrame } from '../media/types.js';
import { buildSenderReport, RTCP_FMT_FIR, RTCP_FMT_PLI, RTCP_PSFB } from '../rtp/rtcp.js';
import { SrtpStreamWriter, SRTP_PROFILE_AES128_CM_SHA1_80 } from '../rtp/srtp-writer.js';
import { bindUdpSocket } from '../util/udp.js';

const SENDER_REPORT_INTERVAL_MS = 5_000;

export interface ForwardTarget {
  host: string;
  video?: { port: number; rtcpPort?: number; payloadType: number; clockRate: number };
  audio?: { port: number; payloadType: number; clockRate: number };
  /** SDES master key + salt (30 bytes) for SRTP; plain RTP without it. */
  srtpKey?: Buffer;
}

export interface ForwarderStats {
  videoPackets: number;
  audioPackets: number;
  bytes: number;
  keyframeRequests: number;
  sendErrors: number;
}

interface OutStream {
  port: number;
  payloadType: number;
  clockRate: number;
  ssrc: number;
  sequence: number;
  packets: number;
  octets: number;
  lastTimestamp: number;
  writer?: SrtpStreamWriter;
}

export class RtpForwarder implements FrameSink {
  private readonly socket: Socket;
  private readonly video: OutStream | undefined;
  private readonly audio: OutStream | undefined;
  private readonly reports: NodeJS.Timeout;
  private closed = false;
  readonly counters: ForwarderStats = { videoPackets: 0, audioPackets: 0, bytes: 0, keyframeRequests: 0, sendErrors: 0 };

  private constructor(
    private readonly target: ForwardTarget,
    socket: Socket,
  ) {
    this.socket = socket;
    const keys = target.srtpKey ? { localMasterKey: target.srtpKey.subarray(0, 16), localMasterSalt: target.srtpKey.subarray(16, 30), remoteMasterKey: target.srtpKey.subarray(0, 16), remoteMasterSalt: target.srtpKey.subarray(16, 30) } : undefined;
    const context = keys ? new SrtpSession({ keys, profile: SRTP_PROFILE_AES128_CM_SHA1_80 }).localContext : undefined;
    const stream = (spec: { port: number; payloadType: number; clockRate: number }): OutStream => {
      const ssrc = randomInt(1, 0xffff_ffff);
      return {
        port: spec.port,
        payloadType: spec.payloadType,
        clockRate: spec.clockRate,
        ssrc,
        sequence: randomInt(0, 0x10000),
        packets: 0,
        octets: 0,
        lastTimestamp: 0,
        ...(context ? { writer: new SrtpStreamWriter({ profile: SRTP_PROFILE_AES128_CM_SHA1_80, srtpSessionKey: context.srtpSessionKey, srtpSessionSalt: context.srtpSessionSalt, srtpSessionAuthTag: context.srtpSessionAuthTag }, ssrc) } : {}),
      };
    };
    this.video = target.video ? stream(target.video) : undefined;
    this.audio = target.audio ? stream(target.audio) : undefined;
    socket.on('message', (message) => this.onRtcp(message));
    socket.on('error', () => {
      this.counters.sendErrors++;
    });
    this.reports = setInterval(() => this.sendReport(), SENDER_REPORT_INTERVAL_MS);
    this.reports.unref();
  }

  /** Opens the forwarder's socket (on any local address, so that it reaches a gateway elsewhere). */
  static async open(target: ForwardTarget): Promise<RtpForwarder> {
    const socket = createSocket('udp4');
    await bindUdpSocket(socket, target.host === '127.0.0.1' ? '127.0.0.1' : '0.0.0.0');
    const forwarder = new RtpForwarder(target, socket);
    forwarder.sendReport();
    return forwarder;
  }

  write(frame: MediaFrame): boolean {
    if (this.closed) return true;
    const out = frame.kind === 'video' ? this.video : this.audio;
    if (!out) return true;
    for (const packet of frame.packets) {
      const sequence = out.sequence;
      out.sequence = (out.sequence + 1) & 0xffff;
      const parts = out.writer
        ? out.writer.protectParts(out.payloadType, packet.marker, sequence, frame.timestamp, packet.payload)
        : [this.header(out, packet.marker, sequence, frame.timestamp), packet.payload];
      let length = 0;
      for (const part of parts) length += part.length;
      this.socket.send(parts, out.port, this.target.host, (error) => {
        if (error) this.counters.sendErrors++;
      });
      out.packets++;
      out.octets += packet.payload.length;
      this.counters.bytes += length;
      if (frame.kind === 'video') this.counters.videoPackets++;
      else this.counters.audioPackets++;
    }
    out.lastTimestamp = frame.timestamp;
    // UDP to a gateway never pushes back: a congested gateway drops, as it would from a camera.
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.reports);
    this.socket.close();
  }

  private header(out: OutStream, marker: boolean, sequence: number, timestamp: number): Buffer {
    const header = Buffer.allocUnsafe(12);
    writeRtpHeaderAt(header, 0, marker, out.payloadType, sequence, timestamp, out.ssrc);
    return header;
  }

  /** Sender report on the video RTCP port: Janus latches onto its source address for keyframe requests. */
  private sendReport(): void {
    const out = this.video;
    const rtcpPort = this.target.video?.rtcpPort;
    if (this.closed || !out || rtcpPort === undefined) return;
    const report = buildSenderReport({ ssrc: out.ssrc, ntpMs: Date.now(), rtpTimestamp: out.lastTimestamp, packetCount: out.packets, octetCount: out.octets, cname: 'webrtc-cameras-scale-out' });
    this.socket.send(report, rtcpPort, this.target.host, () => undefined);
  }

  /** Keyframe requests from the gateway (compound RTCP; with SRTP the headers are still in clear). */
  private onRtcp(message: Buffer): void {
    let offset = 0;
    while (offset + 4 <= message.length) {
      const first = message[offset] ?? 0;
      const packetType = message[offset + 1];
      const words = message.readUInt16BE(offset + 2);
      if (first >> 6 !== 2) return;
      if (packetType === RTCP_PSFB && ((first & 0x1f) === RTCP_FMT_PLI || (first & 0x1f) === RTCP_FMT_FIR)) this.counters.keyframeRequests++;
      offset += (words + 1) * 4;
    }
  }
}
