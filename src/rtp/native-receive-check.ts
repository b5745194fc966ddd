/**
 * The addon's camera receive (native/udp-receive.c), checked once per process before a camera
 * depends on it, as its SRTP is checked at load (native-fanout.ts) and its SRTCP at first use
 * (srtcp.ts). Those compare bytes with the JavaScript; a receive can only be compared with what
 * was sent, so this sends datagrams to a native receiver on loopback and reads them back, as they
 * come and held then flushed, the two ways rtp-receiver.ts reads a camera.
 *
 * What it guards against is a binary that loads and protects correctly but reads wrongly on the
 * machine it runs on: a kernel without what it relies on (recvmmsg, the receive timestamps, the
 * socket's memory figures), or a C library whose `struct mmsghdr` or `timespec` differs from the
 * one it was built against (32-bit ARM's 64-bit time). A camera fed by such a receive would
 * silently show nothing, or the wrong age for held packets; with the check it uses dgram.
 */
import dgram from 'node:dgram';
import { bindUdpSocket } from '../util/udp.js';
import { nativeFanout, type NativeFanout, type NativeFanoutStatus, type NativeUdpReceiverHandle } from './native-fanout.js';

/** Long enough for a Raspberry Pi busy starting Homebridge; a working receive takes milliseconds. */
const CHECK_TIMEOUT_MS = 3_000;

/** Datagram sizes: an RTP header alone, audio, a full video packet, and a jumbo one (loopback carries it). */
const CHECK_SIZES = [12, 172, 1400, 8000];

/**
 * Receives on loopback with the addon and says what went wrong, or undefined when every datagram
 * came back whole, in order, with a sane age. Rejects never.
 */
export async function nativeReceiveCheckError(fanout: NativeFanout, timeoutMs = CHECK_TIMEOUT_MS): Promise<string | undefined> {
  let receiver: NativeUdpReceiverHandle | undefined;
  const sender = dgram.createSocket('udp4');
  sender.on('error', () => undefined);
  try {
    const got: Array<{ packet: Buffer; ageMs: number }> = [];
    let wake: (() => void) | undefined;
    receiver = fanout.openUdpReceiver('127.0.0.1', 0, 0, (slab, offset, lengths, count, _foreign, arrivals, deliveredAt) => {
      for (let i = 0; i < count; i++) {
        const length = lengths[i]!;
        got.push({ packet: Buffer.from(slab.subarray(offset, offset + length)), ageMs: deliveredAt - arrivals[i]! });
        offset += length;
      }
      wake?.();
    });
    fanout.setUdpReceiverSources(receiver, ['127.0.0.1']);
    await bindUdpSocket(sender, '127.0.0.1', 0);
    const deadline = performance.now() + timeoutMs;
    const until = async (count: number): Promise<boolean> => {
      while (got.length < count) {
        const left = deadline - performance.now();
        if (left <= 0) return false;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 20));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      return true;
    };
    const port = fanout.udpReceiverPort(receiver);
    const send = (payload: Buffer): Promise<void> =>
      new Promise((resolve, reject) => sender.send(payload, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
    // Each datagram's bytes say which it is, so a mix-up or a cut shows.
    const datagrams = CHECK_SIZES.map((size, i) => Buffer.alloc(size, 0x41 + i));

    // As they come (a watched camera).
    for (const datagram of datagrams) await send(datagram);
    if (!(await until(datagrams.length))) return `${got.length} of ${datagrams.length} datagrams arrived in ${timeoutMs} ms`;
    const live = compare(got, datagrams, 'as they came');
    if (live) return live;

    // Held, then flushed (an unwatched camera): the same bytes, each with how long ago it came.
    got.length = 0;
    fanout.setUdpReceiverHold(receiver, true);
    for (const datagram of datagrams) await send(datagram);
    const heldFor = 30;
    await new Promise((resolve) => setTimeout(resolve, heldFor));
    fanout.flushUdpReceiver(receiver);
    if (!(await until(datagrams.length))) return `${got.length} of ${datagrams.length} held datagrams came out of a flush`;
    const held = compare(got, datagrams, 'held');
    if (held) return held;
    const ages = got.map((g) => g.ageMs);
    // Each waited about `heldFor` ms; a receive time read wrongly gives a negative, huge or NaN age.
    if (!ages.every((age) => Number.isFinite(age) && age >= 0 && age < 60_000)) return `held datagrams came with impossible ages (${ages.map((a) => a.toFixed(1)).join(', ')} ms)`;
    return undefined;
  } catch (error) {
    return `it threw: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    if (receiver) fanout.closeUdpReceiver(receiver);
    sender.close();
  }
}

function compare(got: ReadonlyArray<{ packet: Buffer }>, sent: readonly Buffer[], how: string): string | undefined {
  if (got.length !== sent.length) return `${how}: ${got.length} datagrams arrived for ${sent.length} sent`;
  for (let i = 0; i < sent.length; i++) {
    if (!got[i]!.packet.equals(sent[i]!)) return `${how}: datagram ${i + 1} (${sent[i]!.length} bytes) came back as ${got[i]!.packet.length} other bytes`;
  }
  return undefined;
}

let checked: Promise<NativeFanoutStatus> | undefined;

/**
 * The addon for camera receives in this process: `nativeFanout()` once its receive passed the
 * check, else not loaded, with why (the check runs at the first call; later calls share it).
 */
export function nativeReceive(): Promise<NativeFanoutStatus> {
  checked ??= checkNativeReceive(nativeFanout());
  return checked;
}

/** `status`, or not loaded when its receive fails the check. */
export async function checkNativeReceive(status: NativeFanoutStatus, timeoutMs = CHECK_TIMEOUT_MS): Promise<NativeFanoutStatus> {
  if (!status.loaded) return status;
  const error = await nativeReceiveCheckError(status.fanout, timeoutMs);
  return error ? { loaded: false, reason: `its UDP receive failed a check on loopback: ${error}` } : status;
}
