/**
 * Where RTP over UDP comes in, from a camera (an RTSP track) or from an ffmpeg the plugin runs (a
 * transcoded variant, the demo camera). Two ways, the same behaviour:
 * - native (native/udp-receive.c): one recvmmsg per burst of datagrams and one call into
 *   JavaScript for all of them, strangers dropped in C. With Node's dgram each datagram costs a
 *   trip into JavaScript with its own Buffer and address object, which was most of a camera's CPU
 *   with nobody watching (`npm run bench:ingest`).
 * - dgram: wherever the addon does not load (see src/rtp/native-fanout.ts) or is turned off.
 * Only the sender may feed a session: datagrams from any other address are dropped (anyone on the
 * LAN could otherwise inject video), and the first stranger is reported once.
 * While nobody watches, the native receiver can hold what arrives and hand it over a few times a
 * second (`hold`, `flush`): each packet then comes with how long ago it arrived.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { normalizeAddress } from '../util/address.js';
import { bindUdpSocket } from '../util/udp.js';
import type { NativeFanout, NativeFanoutStatus, NativeUdpReceiverHandle, UdpBatchHandler } from './native-fanout.js';
import { nativeReceive } from './native-receive-check.js';

export interface RtpReceiverEvents {
  /** `ageMs`: how long before this call the packet arrived (0 unless it was held). */
  onPacket(packet: Buffer, ageMs: number): void;
  /** The first datagram from an address that is not the camera's, once. */
  onForeign(address: string): void;
  /**
   * Optional. Once: a hold can no longer leave datagrams in the socket between flushes (the kernel
   * dropped one, or came close to it, in a receive buffer of `receiveBufferBytes`), and reads each
   * burst as it comes from now on. Nothing is lost by that, but an unwatched camera costs more CPU.
   */
  onHoldFallback?(reason: string, receiveBufferBytes: number): void;
}

export interface RtpReceiver {
  readonly port: number;
  readonly path: 'native' | 'dgram';
  /** Accepts datagrams from this address (the camera's RTSP address, a track's `source=`). */
  allow(address: string): void;
  /** Delivers from now on; nothing is delivered before. */
  start(events: RtpReceiverEvents): void;
  /**
   * Holds packets until `flush` (true), or delivers each as it comes (false, the default; what was
   * held goes first). A no-op where packets cannot be held (dgram).
   */
  hold(holding: boolean): void;
  /**
   * Delivers what is held, before returning. Returns how full the socket's receive buffer was when
   * a drained hold read it (0-1), so the caller can flush sooner before draining must be given up;
   * -1 where nothing drains (a polled hold, dgram, not holding).
   */
  flush(): number;
  close(): void;
}

/** Binds `address:port` (0: any) natively; throws when the port is taken or the address is bad. */
export function openNativeRtpReceiver(native: NativeFanout, address: string, port: number, receiveBufferBytes: number): RtpReceiver {
  const allowed = new Set<string>();
  let events: RtpReceiverEvents | undefined;
  let reportedForeign = false;
  const onBatch: UdpBatchHandler = (slab, offset, lengths, count, foreign, arrivals, deliveredAt) => {
    // Called from C: an exception here would only be counted there; handlers must not throw
    // anyway (the session's gate catches theirs).
    try {
      if (!events) return;
      for (let i = 0; i < count; i++) {
        const length = lengths[i]!;
        events.onPacket(slab.subarray(offset, offset + length), deliveredAt - arrivals[i]!);
        offset += length;
      }
      if (foreign > 0 && !reportedForeign) {
        reportedForeign = true;
        events.onForeign(native.udpReceiverStats(opened).lastForeign);
      }
    } catch {
      // Dropped: see above.
    }
  };
  // (onBatch runs only from the poll, never inside this call, so `opened` is set by then.)
  const opened: NativeUdpReceiverHandle = native.openUdpReceiver(address, port, receiveBufferBytes, onBatch);
  let closed = false;
  let holding = false;
  let reportedFallback = false;
  return {
    port: native.udpReceiverPort(opened),
    path: 'native',
    allow(source: string): void {
      // The C side compares bare addresses: an IPv6 zone (%eth0) is not part of one.
      const normalized = normalizeAddress(source)?.split('%')[0];
      if (!normalized || !net.isIP(normalized) || allowed.has(normalized)) return;
      allowed.add(normalized);
      native.setUdpReceiverSources(opened, [...allowed].slice(-8));
    },
    start(next: RtpReceiverEvents): void {
      events = next;
    },
    hold(hold: boolean): void {
      if (closed) return;
      holding = hold;
      native.setUdpReceiverHold(opened, hold);
    },
    flush(): number {
      if (closed) return -1;
      const fill = native.flushUdpReceiver(opened);
      // A drained hold is judged at each flush; once it has fallen back there is nothing more to see.
      if (!holding || fill >= 0 || reportedFallback || !events?.onHoldFallback) return fill;
      const stats = native.udpReceiverStats(opened);
      if (stats.holdMode !== 'poll') return fill;
      reportedFallback = true;
      events.onHoldFallback(stats.holdModeReason, stats.receiveBuffer);
      return fill;
    },
    close(): void {
      if (closed) return;
      closed = true;
      events = undefined;
      native.closeUdpReceiver(opened);
    },
  };
}

/** The same over a bound dgram socket (its 'message' events). */
export function dgramRtpReceiver(socket: dgram.Socket): RtpReceiver {
  // An unheard 'error' would throw out of Node's event loop and take Homebridge down. A late ICMP
  // report is the only kind here, and the session's watchdog judges the stream anyway.
  socket.on('error', () => undefined);
  const allowed = new Set<string>();
  let reportedForeign = false;
  let closed = false;
  return {
    port: socket.address().port,
    path: 'dgram',
    allow(source: string): void {
      const normalized = normalizeAddress(source);
      if (normalized) allowed.add(normalized);
    },
    start(events: RtpReceiverEvents): void {
      socket.on('message', (packet, rinfo) => {
        // As on the native path: a handler's exception is dropped here, not thrown out of Node's loop.
        try {
          const from = normalizeAddress(rinfo.address) ?? '';
          if (allowed.has(from)) events.onPacket(packet, 0);
          else if (!reportedForeign) {
            reportedForeign = true;
            events.onForeign(from);
          }
        } catch {
          // Dropped: see above.
        }
      });
    },
    hold(): void {
      // Each datagram is already its own event here: nothing to gain by holding it.
    },
    flush(): number {
      return -1;
    },
    close(): void {
      if (closed) return;
      closed = true;
      socket.close();
    },
  };
}

/**
 * A receiver on `address:port` (0: any): native unless the addon is absent or its receive failed
 * the check (`native` defaults to `nativeReceive()`). `receiveBufferBytes` 0 keeps the system's
 * default. Throws (rejects) when it cannot bind.
 */
export async function openRtpReceiver(address: string, port: number, receiveBufferBytes: number, native?: NativeFanoutStatus): Promise<RtpReceiver> {
  native ??= await nativeReceive();
  if (native.loaded) return openNativeRtpReceiver(native.fanout, address, port, receiveBufferBytes);
  const socket = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4', reuseAddr: false });
  try {
    await bindUdpSocket(socket, address, port);
  } catch (err) {
    socket.close();
    throw err;
  }
  if (receiveBufferBytes > 0) setReceiveBuffer(socket, receiveBufferBytes);
  return dgramRtpReceiver(socket);
}

/** Asks for a bigger receive buffer; the OS may cap it (net.core.rmem_max), and the default still works for small streams. */
export function setReceiveBuffer(socket: dgram.Socket, bytes: number): void {
  try {
    socket.setRecvBufferSize(bytes);
  } catch {
    // Capped or refused: see above.
  }
}

/** A receiver on 127.0.0.1 at a free port, taking RTP only from 127.0.0.1: for an ffmpeg the plugin runs. */
export async function openLoopbackRtpReceiver(native?: NativeFanoutStatus): Promise<RtpReceiver> {
  const receiver = await openRtpReceiver('127.0.0.1', 0, 0, native);
  receiver.allow('127.0.0.1');
  return receiver;
}
