/**
 * The re-stream's UDP side: one RTP socket and one RTCP socket shared by every UDP client (clients
 * are told apart by their address and port), so UDP costs two ports in total, not two per client.
 * Datagrams only ever go to the address the RTSP request came from, never to a `destination=`
 * the client names, so the server cannot be used to flood a third party.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { bindUdpSocket } from '../util/udp.js';
import { isIPv6 } from 'node:net';

export interface UdpPairEvents {
  /** Any datagram from a client: RTCP receiver reports, or ffmpeg's NAT "hole punch" packets. */
  onPacket(from: RemoteInfo, rtcp: boolean): void;
}

export class UdpPair {
  private constructor(
    private readonly rtp: Socket,
    private readonly rtcp: Socket,
    readonly rtpPort: number,
    readonly rtcpPort: number,
  ) {}

  /** Binds an even RTP port and the odd RTCP port above it (RFC 3550 §11), retrying on collisions. */
  static async bind(host: string, events: UdpPairEvents): Promise<UdpPair> {
    const type = isIPv6(host) ? 'udp6' : 'udp4';
    for (let attempt = 0; attempt < 32; attempt++) {
      const rtp = createSocket({ type });
      const port = await bindUdpSocket(rtp, host, 0).catch(() => undefined);
      if (port === undefined || port % 2 !== 0 || port === 65535) {
        rtp.close();
        continue;
      }
      const rtcp = createSocket({ type });
      const rtcpPort = await bindUdpSocket(rtcp, host, port + 1).catch(() => undefined);
      if (rtcpPort === undefined) {
        rtp.close();
        rtcp.close();
        continue;
      }
      rtp.on('message', (_msg, from) => events.onPacket(from, false));
      rtcp.on('message', (_msg, from) => events.onPacket(from, true));
      // A client that went away makes the kernel report ICMP errors on later sends; they are not fatal.
      rtp.on('error', () => undefined);
      rtcp.on('error', () => undefined);
      return new UdpPair(rtp, rtcp, port, rtcpPort);
    }
    throw new Error('could not bind a UDP port pair for the re-stream');
  }

  send(parts: ReadonlyArray<Buffer>, port: number, address: string, rtcp: boolean, done: () => void): void {
    const socket = rtcp ? this.rtcp : this.rtp;
    try {
      socket.send(parts as Buffer[], port, address, () => done());
    } catch {
      done();
    }
  }

  close(): void {
    for (const socket of [this.rtp, this.rtcp]) {
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    }
  }
}

