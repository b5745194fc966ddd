/**
 * What the re-stream keeps per served track of one client session, and the pieces of putting it on
 * the wire that need no session state: the RTP-to-wall-clock anchor and the sender report built
 * from it, parameter sets in front of a keyframe that lacks them, and UDP pacing.
 */
import type { MediaFrame, PacketizedPayload } from '../media/types.js';
import { buildSenderReport } from '../rtp/rtcp.js';
import type { ParameterSets, ServedTrack } from './sdp.js';

export type SessionTransport =
  | { type: 'tcp'; rtpChannel: number; rtcpChannel: number }
  | { type: 'udp'; address: string; rtpPort: number; rtcpPort: number };

/** The server's shared UDP sockets. */
export interface UdpOutput {
  send(parts: ReadonlyArray<Buffer>, port: number, address: string, rtcp: boolean, done: () => void): void;
}

export interface TrackOutput {
  served: ServedTrack;
  transport: SessionTransport;
  controlUrl: string;
  ssrc: number;
  /** Next RTP sequence number this client gets. */
  seq: number;
  tsOffset: number;
  packets: number;
  octets: number;
  /** The Source sequence number expected next; a jump means frames were skipped (shown to the client as loss). */
  nextSourceSeq?: number;
  /** Anchor mapping this track's RTP time to wall-clock time, for sender reports. */
  clock?: { timestamp: number; wallMs: number };
  lastTimestamp?: number;
}

/** Beyond this disagreement between the RTP clock and the wall clock, the anchor is set again. */
const CLOCK_REANCHOR_MS = 1000;

/** Keeps (or, after a jump, resets) the mapping of this track's RTP time to wall-clock time. */
export function anchorClock(output: TrackOutput, frame: MediaFrame): void {
  const wallMs = frame.captureTime ?? performance.timeOrigin + frame.receivedAt;
  const rate = output.served.clockRate;
  const anchor = output.clock;
  if (anchor) {
    const delta = (frame.timestamp - anchor.timestamp) | 0;
    const predicted = anchor.wallMs + (delta / rate) * 1000;
    // Keep the mapping fixed (so reports agree with the RTP clock exactly) unless it has drifted
    // far, e.g. after a camera reconnect or a 32-bit wrap of the signed difference.
    if (Math.abs(predicted - wallMs) <= CLOCK_REANCHOR_MS && Math.abs(delta) < rate * 3600) return;
  }
  output.clock = { timestamp: frame.timestamp, wallMs };
}

/** The track's RTCP sender report (SR + SDES CNAME) for its last frame; undefined before any. */
export function senderReportFor(output: TrackOutput, cname: string): Buffer | undefined {
  const anchor = output.clock;
  const last = output.lastTimestamp ?? anchor?.timestamp;
  if (!anchor || last === undefined) return undefined;
  const ntpMs = anchor.wallMs + (((last - anchor.timestamp) | 0) / output.served.clockRate) * 1000;
  return buildSenderReport({
    ssrc: output.ssrc,
    ntpMs,
    rtpTimestamp: (last + output.tsOffset) >>> 0,
    packetCount: output.packets,
    octetCount: output.octets,
    cname,
  });
}

/** A keyframe must carry SPS/PPS for a client to start on it; adds them when the Source did not. */
export function withParameterSets(frame: MediaFrame, payloads: ReadonlyArray<PacketizedPayload>, sets: ParameterSets | undefined): ReadonlyArray<PacketizedPayload> {
  if (!sets) return payloads;
  if (frame.codec === 'H264' && frame.units.some((u) => (u[0]! & 0x1f) === 7)) return payloads;
  if (frame.codec === 'H265' && frame.units.some((u) => ((u[0]! >> 1) & 0x3f) === 33)) return payloads;
  const extra = [...sets.vps, ...sets.sps, ...sets.pps].map((payload) => ({ payload, marker: false }));
  return [...extra, ...payloads];
}

export interface UdpDatagram {
  parts: Buffer[];
  bytes: number;
  port: number;
  address: string;
  rtcp: boolean;
}

/**
 * UDP output is paced: at most `bytesPerTick` per millisecond tick, so a GOP burst does not
 * overflow the client's socket buffer (UDP has no flow control; the excess would just be lost).
 */
export class UdpPacer {
  private readonly queue: UdpDatagram[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private budget = 0;
  private cleared = false;

  constructor(private readonly udp: UdpOutput, private readonly bytesPerTick: number) {}

  /** Bytes accepted but not yet handed to the socket. */
  get queuedBytes(): number {
    return this.queued;
  }

  push(datagram: UdpDatagram): void {
    if (this.cleared) return;
    this.queue.push(datagram);
    this.queued += datagram.bytes;
    if (!this.timer) this.startTick();
    this.drain();
  }

  /** Drops what is queued and stops for good (the session closed). */
  clear(): void {
    this.cleared = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queued = 0;
  }

  private startTick(): void {
    this.budget = this.bytesPerTick;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.cleared || this.queue.length === 0) return;
      this.startTick();
      this.drain();
    }, 1);
    this.timer.unref();
  }

  private drain(): void {
    if (this.cleared) return;
    while (this.queue.length > 0 && this.budget > 0) {
      const datagram = this.queue.shift()!;
      this.queued -= datagram.bytes;
      this.budget -= datagram.bytes;
      this.udp.send(datagram.parts, datagram.port, datagram.address, datagram.rtcp, () => undefined);
    }
  }
}
