/**
 * Where a viewer's protected packets go once ICE has picked a pair.
 *
 * For a UDP pair the packet goes straight to the pair's dgram socket: werift's `Connection.send`
 * would add two async hops per packet and nothing else. A pair relayed by a TURN server over UDP
 * is nearly the same: once werift has bound a channel to the viewer's address, each packet goes to
 * the TURN server from werift's TURN socket behind the 4-byte ChannelData header, natively too
 * (werift's own relayed send was a channel look-up, a copy and three async hops per packet); werift
 * keeps the allocation, and the channel is refreshed from here. For TCP pairs, and a TURN pair
 * without a channel, werift's `send` is kept (framing, relaying), and the bytes still in its
 * promise chain are counted.
 *
 * Neither path has backpressure in werift, so `queuedBytes()` reports what is really waiting: the
 * libuv send queue of the UDP socket (it only grows when the kernel buffer is full), or the bytes
 * whose send has not completed. The native UDP path queues nothing: a full socket buffer is an
 * EAGAIN at once, which the caller counts as congestion.
 */
import { Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { isSocketFull, nativeFanout, udpSocketDescriptor, type NativeDestinationHandle, type NativeFanout, type NativeFanoutStatus, type NativeTarget } from '../rtp/native-fanout.js';

/** The part of werift's ICE connection used here (structural, so no private types leak). */
export interface IceConnectionLike {
  nominated?: { protocol: unknown; remoteAddr: Readonly<[string, number]> } | undefined;
  send(data: Buffer): Promise<void>;
}

export interface PacketTransport {
  /** `turn`: UDP to a TURN server, on a channel bound to the viewer's address. */
  readonly kind: 'udp' | 'turn' | 'generic';
  /** One datagram; given as parts it is sent scatter/gather (UDP) or joined (other transports). */
  send(packet: Buffer | Buffer[]): void;
  queuedBytes(): number;
  /** The pair this transport was built for; a different nominated pair means: resolve again. */
  readonly pair: unknown;
  /**
   * For a UDP pair when the native fan-out loaded: the socket's descriptor and the pair's address,
   * so a frame's packets leave in one sendmmsg instead of one send each; undefined otherwise, and
   * once the socket is closed. A method and not a getter: V8 keeps an object literal that has a
   * getter in dictionary mode, and every read of the transport's properties, once per viewer per
   * frame, then went through a generic look-up (a sixth of the fan-out's JavaScript time at 50
   * viewers in bench:webrtc).
   */
  nativeTarget(): NativeTarget | undefined;
  /**
   * A UDP pair's transport only: sends to this address from now on (the settled path following a
   * viewer whose address changed, viewer-settle.ts). False, and nothing changed, for an address it
   * cannot send to.
   */
  retarget?(host: string, port: number): boolean;
}

/**
 * werift's `UdpTransport` under an ICE pair's protocol (structural: werift does not export it): its
 * dgram socket, and `onData`, the own, writable property werift's STUN layer reads packets through.
 */
export interface WeriftUdpTransport {
  socket: UdpSocket;
  onData?: (data: Buffer, addr: [string, number]) => void;
}

/** The pair's UDP transport; undefined for TCP and TURN pairs. */
export function weriftUdpTransport(protocol: unknown): WeriftUdpTransport | undefined {
  if (typeof protocol !== 'object' || protocol === null || !('transport' in protocol)) return undefined;
  const transport: unknown = protocol.transport;
  if (typeof transport !== 'object' || transport === null || !('socket' in transport)) return undefined;
  return transport.socket instanceof UdpSocket ? (transport as WeriftUdpTransport) : undefined;
}

/** The addon's form of the pair's address; undefined (so the socket is used) for one it cannot take. */
function nativeDestination(fanout: NativeFanout, host: string, port: number): NativeDestinationHandle | undefined {
  try {
    return fanout.createDestination(host, port);
  } catch {
    return undefined;
  }
}

export function resolvePacketTransport(connection: IceConnectionLike, native: NativeFanoutStatus = nativeFanout()): PacketTransport | undefined {
  const pair = connection.nominated;
  if (!pair) return undefined;
  const socket = weriftUdpTransport(pair.protocol)?.socket;
  const [host, port] = pair.remoteAddr;
  if (socket && isIP(host) !== 0) return udpPacketTransport(socket, host, port, native, pair);
  const generic = genericPacketTransport(connection, pair);
  const channel = weriftTurnChannel(pair.protocol, [host, port]);
  return channel ? turnChannelPacketTransport(channel, native, generic) : generic;
}

/**
 * werift's TURN client under a relay pair (structural: werift exports no such type). Its
 * `channelByAddr` is keyed by the peer's address as JSON, as werift's `getChannel` keys it.
 */
export interface WeriftTurnClient {
  transport: unknown;
  serverEndpoint?: readonly [string, number];
  channelByAddr: Record<string, { number: number } | undefined>;
  getChannel(addr: [string, number]): Promise<unknown>;
}

export function isWeriftTurnClient(value: unknown): value is WeriftTurnClient {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<keyof WeriftTurnClient, unknown>>;
  return typeof candidate.getChannel === 'function' && typeof candidate.channelByAddr === 'object' && candidate.channelByAddr !== null;
}

/** The channel werift bound to this peer address, if any (a number RFC 8656 allows: 0x4000-0x4fff). */
export function boundChannelNumber(turn: WeriftTurnClient, peer: readonly [string, number]): number | undefined {
  const number = turn.channelByAddr[JSON.stringify(peer)]?.number;
  return typeof number === 'number' && number >= 0x4000 && number <= 0x4fff ? number : undefined;
}

/**
 * Sends datagrams on a TURN channel by dgram: each goes to the server behind its ChannelData
 * header (channel number, length). Where the native fan-out does not load, and for the odd STUN
 * answer on another of a viewer's channels.
 */
export function channelDataSender(socket: UdpSocket, server: readonly [string, number], channel: number): (parts: Buffer[]) => void {
  return (parts) => {
    const header = Buffer.alloc(4);
    header.writeUInt16BE(channel, 0);
    header.writeUInt16BE(parts.reduce((sum, part) => sum + part.length, 0), 2);
    socket.send([header, ...parts], server[1], server[0]);
  };
}

/** A relay pair's TURN channel to the viewer, as the native send needs it. */
export interface TurnChannel {
  /** werift's socket to the TURN server. */
  socket: UdpSocket;
  /** The TURN server's address as werift pinned it for this allocation. */
  server: readonly [string, number];
  /** The channel bound to the viewer's address on that server (0x4000-0x4fff). */
  number: number;
  /** Asks werift to refresh the binding when it is due (its own check; at once otherwise). */
  refresh(): Promise<unknown>;
}

/**
 * The channel of a TURN pair over UDP, once werift has bound one to the viewer's address (its ICE
 * checks to the viewer go through it, so a nominated relay pair has one); undefined for anything
 * else (TURN over TCP or TLS, or werift sending Send indications because the bind failed).
 */
export function weriftTurnChannel(protocol: unknown, remote: [string, number]): TurnChannel | undefined {
  if (typeof protocol !== 'object' || protocol === null || !('turn' in protocol)) return undefined;
  const turn: unknown = protocol.turn;
  if (!isWeriftTurnClient(turn)) return undefined;
  const socket = weriftUdpTransport({ transport: turn.transport })?.socket;
  const server = turn.serverEndpoint;
  const number = boundChannelNumber(turn, remote);
  if (!socket || !server || isIP(server[0]) === 0 || number === undefined) return undefined;
  return { socket, server, number, refresh: () => turn.getChannel(remote) };
}

/**
 * werift binds a channel for 600 s and re-binds it once 500 s have passed, but only when it sends
 * to the viewer itself; it no longer does, so the transport asks it this often. An ask before the
 * binding is due costs werift a look-up.
 */
export const TURN_CHANNEL_CHECK_MS = 30_000;

/**
 * A TURN pair's transport: werift's TURN socket, the server's address and the channel, the packets
 * framed as ChannelData natively (or by a dgram send where the addon is not loaded). If a refresh
 * of the channel fails, the channel is not trusted any more, and packets go werift's way again
 * (`generic`), which binds a new channel or falls back to Send indications.
 */
export function turnChannelPacketTransport(channel: TurnChannel, native: NativeFanoutStatus, generic: PacketTransport, now: () => number = Date.now): PacketTransport {
  const [serverHost, serverPort] = channel.server;
  const fanout = native.loaded ? native.fanout : undefined;
  const descriptor = fanout ? udpSocketDescriptor(channel.socket) : undefined;
  const destination = fanout && descriptor ? nativeChannelDestination(fanout, serverHost, serverPort, channel.number) : undefined;
  const target: NativeTarget | undefined = descriptor && destination ? { fd: descriptor.fd, destination } : undefined;
  let failed = false;
  let nextCheck = now() + TURN_CHANNEL_CHECK_MS;
  const usable = (): boolean => {
    if (failed) return false;
    const at = now();
    if (at >= nextCheck) {
      nextCheck = at + TURN_CHANNEL_CHECK_MS;
      channel.refresh().catch(() => {
        failed = true;
      });
    }
    return true;
  };
  const sendByDgram = channelDataSender(channel.socket, channel.server, channel.number);
  return {
    kind: 'turn',
    pair: generic.pair,
    nativeTarget: () => (usable() && target && descriptor?.isOpen() ? target : undefined),
    send: (packet) => {
      if (!usable()) {
        generic.send(packet);
        return;
      }
      const parts = Array.isArray(packet) ? packet : [packet];
      if (fanout && target) {
        if (!descriptor?.isOpen()) throw new Error('the socket is closed');
        const result = fanout.sendDatagram(target.fd, target.destination, parts);
        if (result < 0 && !isSocketFull(-result)) throw new Error(`send failed (errno ${-result})`);
        return;
      }
      sendByDgram(parts);
    },
    queuedBytes: () => (target ? 0 : channel.socket.getSendQueueSize()) + generic.queuedBytes(),
  };
}

/** The addon's form of a TURN channel on this server; undefined (so dgram is used) for one it cannot take. */
function nativeChannelDestination(fanout: NativeFanout, host: string, port: number, channel: number): NativeDestinationHandle | undefined {
  try {
    return fanout.createDestination(host, port, channel);
  } catch {
    return undefined;
  }
}

/**
 * A UDP pair's transport: the socket and the remote address, nothing else of werift's (its
 * closures are made here, apart from `resolvePacketTransport`'s scope, so they hold no ICE
 * connection). `pair` is only the identity `resolvePacketTransport` compares; the settled path
 * (viewer-settle.ts) gives none.
 */
export function udpPacketTransport(socket: UdpSocket, host: string, port: number, native: NativeFanoutStatus, pair: unknown): PacketTransport {
  const descriptor = native.loaded ? udpSocketDescriptor(socket) : undefined;
  const destination = native.loaded && descriptor ? nativeDestination(native.fanout, host, port) : undefined;
  if (native.loaded && descriptor && destination) {
    // Every packet of this viewer then leaves natively and at once: Node's dgram send defers to
    // the next tick, so a frame sent by sendmmsg meanwhile would overtake paced or resent
    // packets queued before it, and a receiver drops what arrives behind a later sequence number.
    // Each send first checks that the socket is still open: the kernel reuses a closed
    // descriptor's number, and a frame must never be written into another socket or file.
    const { fd, isOpen } = descriptor;
    let target: NativeTarget = { fd, destination };
    return {
      kind: 'udp',
      pair,
      nativeTarget: () => (isOpen() ? target : undefined),
      send: (packet) => {
        if (!isOpen()) throw new Error('the socket is closed');
        const result = native.fanout.sendDatagram(fd, target.destination, Array.isArray(packet) ? packet : [packet]);
        // A full socket buffer drops the datagram, as the network would; anything else is the socket gone.
        if (result < 0 && !isSocketFull(-result)) throw new Error(`send failed (errno ${-result})`);
      },
      // Nothing of this viewer's waits in libuv's queue (every send above is immediate and a full
      // socket buffer is EAGAIN, which the caller counts as congestion); only werift's own STUN
      // and DTLS sends could, and they are no media. Asking libuv is a call into C++ per viewer
      // per frame for a figure that is always 0.
      queuedBytes: () => 0,
      retarget: (newHost, newPort) => {
        const moved = isIP(newHost) !== 0 ? nativeDestination(native.fanout, newHost, newPort) : undefined;
        if (!moved) return false;
        target = { fd, destination: moved };
        return true;
      },
    };
  }
  let to = { host, port };
  return {
    kind: 'udp',
    pair,
    nativeTarget: () => undefined,
    send: (packet) => socket.send(packet, to.port, to.host),
    queuedBytes: () => socket.getSendQueueSize(),
    retarget: (newHost, newPort) => {
      if (isIP(newHost) === 0 || !Number.isInteger(newPort) || newPort < 1 || newPort > 65535) return false;
      to = { host: newHost, port: newPort };
      return true;
    },
  };
}

function genericPacketTransport(connection: IceConnectionLike, pair: unknown): PacketTransport {
  let pending = 0;
  return {
    kind: 'generic',
    pair,
    nativeTarget: () => undefined,
    send: (parts) => {
      const packet = Array.isArray(parts) ? Buffer.concat(parts) : parts;
      const size = packet.length;
      pending += size;
      const done = (): void => {
        pending -= size;
      };
      connection.send(packet).then(done, done);
    },
    queuedBytes: () => pending,
  };
}
