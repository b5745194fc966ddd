import dgram from 'node:dgram';
import net from 'node:net';
import type { NativeFanoutStatus } from '../rtp/native-fanout.js';
import { openRtpReceiver, setReceiveBuffer, type RtpReceiver } from '../rtp/rtp-receiver.js';
import { bindUdpSocket } from '../util/udp.js';

/**
 * A pair of UDP ports for one track: RTP on an even port and RTCP on the next one, as RFC 3550
 * asks and as many cameras insist on (they derive the RTCP port from the RTP port). RTP comes in
 * through `src/rtp/rtp-receiver.ts` (native where it loads); RTCP, a few packets a second, through dgram.
 */
export interface UdpPair {
  rtp: RtpReceiver;
  rtcp: dgram.Socket;
  rtpPort: number;
  rtcpPort: number;
  close(): void;
}

/** Big enough for a burst of keyframe packets between two event-loop turns. */
const RECEIVE_BUFFER_BYTES = 2 * 1024 * 1024;

/** The address to bind: loopback for a camera on loopback, else every interface of its family. */
export function bindAddressFor(cameraAddress: string): string {
  const family = net.isIPv6(cameraAddress) ? 6 : 4;
  const loopback = family === 4 ? cameraAddress.startsWith('127.') : cameraAddress === '::1';
  if (loopback) return family === 4 ? '127.0.0.1' : '::1';
  return family === 4 ? '0.0.0.0' : '::';
}

/** Binds an even/odd port pair on `address`, trying a few ephemeral ports. */
export async function bindUdpPair(
  address: string,
  attempts = 20,
  /** Default: the addon when its receive passed its check (`nativeReceive()`). */
  native?: NativeFanoutStatus,
  receiveBufferBytes = RECEIVE_BUFFER_BYTES,
): Promise<UdpPair> {
  const type = net.isIPv6(address) ? 'udp6' : 'udp4';
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    let rtp: RtpReceiver;
    try {
      rtp = await openRtpReceiver(address, 0, receiveBufferBytes, native);
    } catch (err) {
      lastError = err;
      continue;
    }
    const port = rtp.port;
    if (port % 2 !== 0 || port >= 65535) {
      rtp.close();
      continue;
    }
    const rtcp = dgram.createSocket({ type, reuseAddr: false });
    try {
      await bindUdpSocket(rtcp, address, port + 1);
    } catch (err) {
      rtp.close();
      rtcp.close();
      lastError = err;
      continue;
    }
    setReceiveBuffer(rtcp, RECEIVE_BUFFER_BYTES);
    let closed = false;
    return {
      rtp,
      rtcp,
      rtpPort: port,
      rtcpPort: port + 1,
      close: () => {
        if (closed) return;
        closed = true;
        rtp.close();
        rtcp.close();
      },
    };
  }
  throw new Error(`could not bind an even/odd UDP port pair on ${address}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
}
