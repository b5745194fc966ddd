import dgram from 'node:dgram';
import net from 'node:net';
import { nativeFanout, type NativeFanoutStatus } from '../rtp/native-fanout.js';
import { dgramRtpReceiver, openNativeRtpReceiver, type RtpReceiver } from './rtp-receiver.js';

/**
 * A pair of UDP ports for one track: RTP on an even port and RTCP on the next one, as RFC 3550
 * asks and as many cameras insist on (they derive the RTCP port from the RTP port). RTP comes in
 * through `rtp-receiver.ts` (native where it loads); RTCP, a few packets a second, through dgram.
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

/** The RTP side on `port` (0: any), native unless the addon is absent; throws when it cannot bind. */
async function openRtp(address: string, port: number, native: NativeFanoutStatus): Promise<RtpReceiver> {
  if (native.loaded) return openNativeRtpReceiver(native.fanout, address, port, RECEIVE_BUFFER_BYTES);
  const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4', reuseAddr: false });
  try {
    await bind(socket, port, address);
  } catch (err) {
    socket.close();
    throw err;
  }
  setReceiveBuffer(socket);
  return dgramRtpReceiver(socket);
}

function setReceiveBuffer(socket: dgram.Socket): void {
  try {
    socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
  } catch {
    // The OS cap (net.core.rmem_max) may be lower; the default still works for small streams.
  }
}

/** Binds an even/odd port pair on `address`, trying a few ephemeral ports. */
export async function bindUdpPair(address: string, attempts = 20, native: NativeFanoutStatus = nativeFanout()): Promise<UdpPair> {
  const type = net.isIPv6(address) ? 'udp6' : 'udp4';
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    let rtp: RtpReceiver;
    try {
      rtp = await openRtp(address, 0, native);
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
      await bind(rtcp, port + 1, address);
    } catch (err) {
      rtp.close();
      rtcp.close();
      lastError = err;
      continue;
    }
    setReceiveBuffer(rtcp);
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
