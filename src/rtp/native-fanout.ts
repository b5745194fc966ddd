/**
 * The native fan-out (native/srtp-fanout.c, prebuilt per architecture under prebuilds/): SRTP
 * protection with one OpenSSL context per stream, and a viewer's packets of a frame sent in one
 * sendmmsg(2). Loaded once per process; wherever it does not load (another OS or architecture,
 * musl, a Node without OpenSSL symbols, `WEBRTC_CAMERAS_NATIVE=0`) the JavaScript writer
 * (srtp-writer.ts) does the same job, byte for byte, more slowly. Before it is used, the loaded
 * binary protects a few packets of each profile and must match the JavaScript writer exactly.
 */
import { randomBytes } from 'node:crypto';
import { Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomSessionKeys, SRTP_PROFILE_AEAD_AES_128_GCM, SRTP_PROFILE_AES128_CM_SHA1_80, SrtpStreamWriter, type RtpProtector, type SrtpKeyMaterial } from './srtp-writer.js';

/** Opaque handles owned by the addon (freed by the garbage collector). */
declare const nativeStreamBrand: unique symbol;
declare const nativeDestinationBrand: unique symbol;
export type NativeStreamHandle = { readonly [nativeStreamBrand]: true };
export type NativeDestinationHandle = { readonly [nativeDestinationBrand]: true };
declare const nativeFrameBrand: unique symbol;
export type NativeFrameHandle = { readonly [nativeFrameBrand]: true };
declare const nativeSrtcpBrand: unique symbol;
export type NativeSrtcpHandle = { readonly [nativeSrtcpBrand]: true };
declare const nativeUdpReceiverBrand: unique symbol;
export type NativeUdpReceiverHandle = { readonly [nativeUdpReceiverBrand]: true };

export interface SendFrameResult {
  /** Packets the socket took. */
  sent: number;
  /** Their bytes. */
  bytes: number;
  /** Why the rest were not sent (EAGAIN = 11: the socket buffer is full); 0 when all were. */
  errno: number;
}

/**
 * A send refused because the socket's buffer is full (EAGAIN, ENOBUFS): the datagram is dropped as
 * the network would drop it. Any other errno means the socket is gone.
 */
export function isSocketFull(errno: number): boolean {
  return errno === osConstants.errno.EAGAIN || errno === osConstants.errno.ENOBUFS;
}

export type UdpBatchHandler = (
  slab: Buffer,
  offset: number,
  lengths: Uint32Array,
  count: number,
  foreign: number,
  arrivals: Float64Array,
  deliveredAt: number,
) => void;

/** What the native UDP receiver counts (native/udp-receive.c). */
export interface NativeUdpReceiverStats {
  /** Datagrams dropped for coming from an address that is not the camera's. */
  foreign: number;
  lastForeign: string;
  /** Datagrams dropped for being longer than a jumbo frame. */
  truncated: number;
  /** onBatch calls that threw. */
  callbackErrors: number;
  /** Datagrams the kernel dropped because the socket's receive buffer was full (SO_MEMINFO). */
  kernelDrops: number;
  /**
   * How a hold keeps packets: 'drain' leaves them in the socket until a flush reads them all (no
   * wakeup per datagram), 'poll' reads each burst as it comes. A receiver falls back to 'poll' for
   * good when draining lost a datagram or would come close to it (`holdModeReason` says which).
   */
  holdMode: 'drain' | 'poll';
  holdModeReason: string;
  /** The socket's receive buffer as the kernel granted it (bytes; what it charges datagrams against). */
  receiveBuffer: number;
}

/** The addon's exports, as native/srtp-fanout.c, native/udp-receive.c and native/srtcp.c define them. */
export interface NativeFanout {
  readonly sourceHash: string;
  createStream(profile: number, key: Buffer, salt: Buffer, authKey: Buffer, ssrc: number): NativeStreamHandle;
  /**
   * Where sendFrame and sendDatagram send. With a TURN channel number (0x4000-0x4fff), ip and port
   * are the TURN server's and each datagram leaves framed as ChannelData for that channel (RFC 8656
   * §12); sendFrame's byte count stays the SRTP bytes.
   */
  createDestination(ip: string, port: number, turnChannel?: number): NativeDestinationHandle;
  protect(stream: NativeStreamHandle, payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer, retransmission: boolean): Buffer;
  /**
   * A frame's packets gathered once for every viewer's sendFrame (markers: one byte per payload).
   * The handle points into the payloads' memory without holding them: whoever holds the handle
   * must hold the payloads too (FrameBatch does). Throws for a payload no datagram can carry.
   */
  prepareFrame(payloads: Buffer[], markers: Uint8Array): NativeFrameHandle;
  sendFrame(
    stream: NativeStreamHandle,
    fd: number,
    destination: NativeDestinationHandle,
    payloadType: number,
    timestamp: number,
    firstSequenceNumber: number,
    frame: NativeFrameHandle,
    /** Filled in: [sent, bytes, errno] (see SendFrameResult); a Float64Array of 3, reused. */
    result: Float64Array,
  ): void;
  /** One datagram of these parts, sent now: its bytes, or minus the errno. */
  sendDatagram(fd: number, destination: NativeDestinationHandle, parts: Buffer[]): number;
  /**
   * UDP segmentation offload for sendFrame (on by default; off for good once the kernel refuses
   * it): runs of equal-size packets leave as one message the kernel cuts up. Returns the old setting.
   */
  setSegmentationOffload(enabled: boolean): boolean;
  /**
   * The camera's RTP over UDP (native/udp-receive.c): binds ip:port (0: any) and calls onBatch for
   * each burst read by one recvmmsg (or, while held, for what piled up): its `count` datagrams lie
   * back to back in `slab` from `offset`, their lengths and arrival times are the first `count` of
   * `lengths` and `arrivals` (arrays reused for every call; times in ms on the clock of
   * `deliveredAt`); `foreign` counts those dropped for coming from an address not set with
   * setUdpReceiverSources. Throws when the port is taken.
   */
  openUdpReceiver(ip: string, port: number, receiveBufferBytes: number, onBatch: UdpBatchHandler): NativeUdpReceiverHandle;
  udpReceiverPort(receiver: NativeUdpReceiverHandle): number;
  setUdpReceiverSources(receiver: NativeUdpReceiverHandle, ips: string[]): void;
  udpReceiverStats(receiver: NativeUdpReceiverHandle): NativeUdpReceiverStats;
  /**
   * Holds bursts until flushed (true) or delivers each at once (false, the default; what was held
   * goes first). A hold drains the socket at each flush instead of polling it, unless `drain` is
   * false or the receiver gave draining up (see NativeUdpReceiverStats.holdMode).
   */
  setUdpReceiverHold(receiver: NativeUdpReceiverHandle, hold: boolean, drain?: boolean): void;
  /**
   * Delivers what is held before returning. Returns how full the socket's receive buffer was when a
   * drained hold read it (0-1, as the kernel counts it), or -1 where the hold does not drain.
   */
  flushUdpReceiver(receiver: NativeUdpReceiverHandle): number;
  /** No onBatch after this returns; twice is fine. */
  closeUdpReceiver(receiver: NativeUdpReceiverHandle): void;
  /** An SRTCP context (native/srtcp.c): the keys of one direction of a viewer's RTCP. */
  createSrtcp(profile: number, key: Buffer, salt: Buffer, authKey: Buffer): NativeSrtcpHandle;
  /**
   * Protects a compound RTCP packet with this SRTCP index into `out` (room for its length plus the
   * profile's overhead; not the packet's memory); returns the protected length.
   */
  srtcpProtect(context: NativeSrtcpHandle, rtcp: Buffer, index: number, out: Buffer): number;
  /**
   * Opens an SRTCP packet into `out` (at least its length; not its memory): the plaintext's length,
   * -1 when it is not authentic, -2 when it is too short for the profile. The index and replays are
   * the caller's to check.
   */
  srtcpUnprotect(context: NativeSrtcpHandle, packet: Buffer, out: Buffer): number;
  /**
   * Hands the C heap's freed pages back to the system (glibc's malloc_trim): true when some went.
   * Process-wide and a few milliseconds: see native-heap-trim.ts for when it is called.
   */
  trimNativeHeap(): boolean;
  /**
   * Asks V8 for the memory-reducing collection its memory reducer runs when a process goes idle
   * (incremental; it also frees the pages V8 pooled): true when V8 was asked. Process-wide: see
   * native-heap-trim.ts for when it is called.
   */
  hintMemoryReduction(): boolean;
}

export type NativeFanoutStatus = { loaded: true; fanout: NativeFanout; path: string } | { loaded: false; reason: string };

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where this machine's prebuilt binary is (whether or not it exists). */
export function nativeFanoutPath(arch: string = process.arch): string {
  return join(PACKAGE_ROOT, 'prebuilds', `linux-${arch}`, 'srtp-fanout.node');
}

const NATIVE_FUNCTIONS = [
  'createStream',
  'createDestination',
  'protect',
  'prepareFrame',
  'sendFrame',
  'sendDatagram',
  'setSegmentationOffload',
  'openUdpReceiver',
  'udpReceiverPort',
  'setUdpReceiverSources',
  'udpReceiverStats',
  'setUdpReceiverHold',
  'flushUdpReceiver',
  'closeUdpReceiver',
  'trimNativeHeap',
  'hintMemoryReduction',
  'createSrtcp',
  'srtcpProtect',
  'srtcpUnprotect',
];

function isNativeFanout(value: unknown): value is NativeFanout {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['sourceHash'] === 'string' && NATIVE_FUNCTIONS.every((name) => typeof v[name] === 'function');
}

/** Protects the same packets with the binary and with srtp-writer.ts; says what differs. */
export function nativeSelfTestError(fanout: NativeFanout): string | undefined {
  for (const profile of [SRTP_PROFILE_AES128_CM_SHA1_80, SRTP_PROFILE_AEAD_AES_128_GCM]) {
    const { key, salt, authKey } = randomSessionKeys(profile);
    const keys: SrtpKeyMaterial = { profile, srtpSessionKey: key, srtpSessionSalt: salt, srtpSessionAuthTag: authKey };
    const ssrc = 0x1234abcd;
    const reference = new SrtpStreamWriter(keys, ssrc);
    const stream = fanout.createStream(profile, keys.srtpSessionKey, keys.srtpSessionSalt, keys.srtpSessionAuthTag, ssrc);
    // Across a sequence-number rollover, with and without the marker.
    for (let i = 0; i < 4; i++) {
      const seq = (0xfffe + i) & 0xffff;
      const payload = randomBytes(50 + i * 400);
      const expected = reference.protect(96, i === 1, seq, 90_000 * i, payload);
      const actual = fanout.protect(stream, 96, i === 1, seq, 90_000 * i, payload, false);
      if (!actual.equals(expected)) return `profile ${profile}, packet ${i}: the binary's bytes differ from the JavaScript writer's`;
    }
  }
  return undefined;
}

let status: NativeFanoutStatus | undefined;

/**
 * The native fan-out for this process, loaded and checked once. `WEBRTC_CAMERAS_NATIVE=0` turns it
 * off (the JavaScript path is then used everywhere).
 */
export function nativeFanout(): NativeFanoutStatus {
  status ??= loadNativeFanout(nativeFanoutPath(), process.env['WEBRTC_CAMERAS_NATIVE']);
  return status;
}

/** What a binary must suit in the Node that runs this process. */
export interface NodeBuild {
  arch: string;
  /** On 32-bit ARM, the ARM architecture version Node was built for ('6', '7'); else undefined. */
  armVersion: string | undefined;
}

export function runningNodeBuild(): NodeBuild {
  const armVersion = (process.config.variables as Record<string, unknown>)['arm_version'];
  return { arch: process.arch, armVersion: armVersion === undefined ? undefined : String(armVersion) };
}

export function loadNativeFanout(path: string, setting: string | undefined, node: NodeBuild = runningNodeBuild()): NativeFanoutStatus {
  if (setting === '0' || setting === 'false' || setting === 'off') return { loaded: false, reason: 'turned off (WEBRTC_CAMERAS_NATIVE)' };
  if (process.platform !== 'linux') return { loaded: false, reason: `no binary for ${process.platform}` };
  // The linux-arm binary is ARMv7 code. On a Pi 1 or Zero (ARMv6, with a Node built for it) it
  // would stop the whole process at its first ARMv7 instruction, which no try/catch here can catch.
  if (node.arch === 'arm' && !(Number(node.armVersion) >= 7)) {
    return { loaded: false, reason: `no binary for ARMv${node.armVersion ?? '?'} (the linux-arm one needs ARMv7 or later)` };
  }
  if (!existsSync(path)) return { loaded: false, reason: `no binary for linux-${process.arch}` };
  const module: { exports: unknown } = { exports: {} };
  try {
    process.dlopen(module, path);
  } catch (error) {
    return { loaded: false, reason: `the binary did not load: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (!isNativeFanout(module.exports)) return { loaded: false, reason: 'the binary lacks its functions' };
  try {
    const error = nativeSelfTestError(module.exports);
    if (error) return { loaded: false, reason: error };
  } catch (error) {
    return { loaded: false, reason: `the binary failed its self-test: ${error instanceof Error ? error.message : String(error)}` };
  }
  return { loaded: true, fanout: module.exports, path };
}

/**
 * The descriptor under an open dgram socket, for sendmmsg, and a check that the socket is still
 * that one, which the sends ask before each write: a closed descriptor's number is given by the
 * kernel to the next socket or file opened, and a frame must never be written there. Node keeps the
 * handle internally (`socket._handle` is deprecated and warns): found by its symbol's description.
 * dgram's close() closes the descriptor and drops the handle in the same synchronous step, so "the
 * handle is still the one we read the descriptor from" is the check; it is a property read, where
 * reading `handle.fd` again is a call into C++ (3-6 ns against 14-22 ns a check, once per viewer
 * per frame, timed on 50 sockets).
 * Undefined when the socket is closed, or when a Node version stores the handle differently (the
 * caller then sends through the socket).
 */
export function udpSocketDescriptor(socket: UdpSocket): { fd: number; isOpen: () => boolean } | undefined {
  const stateSymbol = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'state symbol');
  if (!stateSymbol) return undefined;
  const state: unknown = (socket as unknown as Record<symbol, unknown>)[stateSymbol];
  if (typeof state !== 'object' || state === null || !('handle' in state)) return undefined;
  const handle: unknown = state.handle;
  if (typeof handle !== 'object' || handle === null || !('fd' in handle)) return undefined;
  const fd: unknown = handle.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) return undefined;
  const holder = state as { handle: unknown };
  return { fd, isOpen: () => holder.handle === handle };
}

/** The descriptor under a dgram socket now (see `udpSocketDescriptor`). */
export function udpSocketFd(socket: UdpSocket): number | undefined {
  return udpSocketDescriptor(socket)?.fd;
}

/** Where one viewer's datagrams go, for the native send: its socket and its ICE pair's address. */
export interface NativeTarget {
  readonly fd: number;
  readonly destination: NativeDestinationHandle;
}

/**
 * A frame's packets as the native send takes them, and their bytes as every viewer's sender reports
 * count them: built once per frame for every viewer.
 */
export interface FrameBatch {
  readonly payloads: Buffer[];
  readonly markers: Uint8Array;
  /** The payloads' bytes together, as sender reports count them. */
  readonly payloadBytes: number;
  /**
   * The same, gathered by the addon (prepareFrame) at the first native send. It points into
   * `payloads` without holding them, so it lives here, beside them, and nowhere else.
   */
  native?: NativeFrameHandle;
}

const batches = new WeakMap<readonly { payload: Buffer; marker: boolean }[], FrameBatch>();

/** The batch form of a frame's shared packets (cached on the packets array, which the Source shares). */
export function frameBatch(packets: readonly { payload: Buffer; marker: boolean }[]): FrameBatch {
  let batch = batches.get(packets);
  if (!batch) {
    const markers = new Uint8Array(packets.length);
    const payloads = new Array<Buffer>(packets.length);
    let payloadBytes = 0;
    for (let i = 0; i < packets.length; i++) {
      payloads[i] = packets[i]!.payload;
      payloadBytes += packets[i]!.payload.length;
      markers[i] = packets[i]!.marker ? 1 : 0;
    }
    batch = { payloads, markers, payloadBytes };
    batches.set(packets, batch);
  }
  return batch;
}

/** One outgoing stream protected by the addon; it owns the stream's rollover counter. */
export class NativeStreamWriter implements RtpProtector {
  private readonly stream: NativeStreamHandle;
  private readonly figures = new Float64Array(3);
  private readonly result: SendFrameResult = { sent: 0, bytes: 0, errno: 0 };

  constructor(
    private readonly fanout: NativeFanout,
    keys: SrtpKeyMaterial,
    readonly ssrc: number,
  ) {
    this.stream = fanout.createStream(keys.profile, keys.srtpSessionKey, keys.srtpSessionSalt, keys.srtpSessionAuthTag, ssrc);
  }

  protectParts(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer): Buffer[] {
    return [this.fanout.protect(this.stream, payloadType, marker, sequenceNumber, timestamp, payload, false)];
  }

  reprotectParts(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer): Buffer[] {
    return [this.fanout.protect(this.stream, payloadType, marker, sequenceNumber, timestamp, payload, true)];
  }

  /** Protects a frame's packets as `firstSequenceNumber`, +1, ... and sends them in one sendmmsg. */
  /**
   * Sends a frame natively. The result is this writer's one object, overwritten by the next call:
   * read it at once (a result object per viewer per frame was garbage worth avoiding).
   */
  sendFrame(target: NativeTarget, payloadType: number, timestamp: number, firstSequenceNumber: number, batch: FrameBatch): Readonly<SendFrameResult> {
    const figures = this.figures;
    const frame = (batch.native ??= this.fanout.prepareFrame(batch.payloads, batch.markers));
    this.fanout.sendFrame(this.stream, target.fd, target.destination, payloadType, timestamp, firstSequenceNumber, frame, figures);
    const result = this.result;
    result.sent = figures[0]!;
    result.bytes = figures[1]!;
    result.errno = figures[2]!;
    return result;
  }
}

/** The protector for a new outgoing stream: native when the addon loaded, else JavaScript. */
export function createRtpProtector(keys: SrtpKeyMaterial, ssrc: number, native: NativeFanoutStatus = nativeFanout()): RtpProtector {
  return native.loaded ? new NativeStreamWriter(native.fanout, keys, ssrc) : new SrtpStreamWriter(keys, ssrc);
}
