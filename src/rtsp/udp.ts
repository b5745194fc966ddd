import dgram from 'node:dgram';
import net from 'node:net';

/**
 * A pair of UDP sockets for one track: RTP on an even port and RTCP on the next one, as RFC 3550
 * asks and as many cameras insist on (they derive the RTCP port from the RTP port).
 */
export interface UdpPair {
  rtp: dgram.Socket;
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

function bind(socket: dgram.Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      socket.removeListener('listening', onListening);
      reject(err);
    };
    const onListening = (): void => {
      socket.removeListener('error', onError);
      resolve();
    };
    socket.once('error', onError);
    socket.once('listening', onListening);
    socket.bind(port, address);
  });
}

/** Binds an even/odd port pair on `address`, trying a few ephemeral ports. */
export async function bindUdpPair(address: string, attempts = 20): Promise<UdpPair> {
  const type = net.isIPv6(address) ? 'udp6' : 'udp4';
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const rtp = dgram.createSocket({ type, reuseAddr: false });
    try {
      await bind(rtp, 0, address);
    } catch (err) {
      rtp.close();
      lastError = err;
      continue;
    }
    const port = rtp.address().port;
    if (port % 2 !== 0 || port >= 65535) {
      rtp.close();
      continue;
    }
    const rtcp = dgram.createSocket({ type, reuseAddr: false });
    try {
      await bind(rtcp, port + 1, address);
    } catch (err) {
      rtp.close();
      rtcp.close();
      lastError = err;
      continue;
    }
    for (const s of [rtp, rtcp]) {
      try {
        s.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
      } catch {
        // The OS cap (net.core.rmem_max) may be lower; the default still works for small streams.
      }
    }
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
