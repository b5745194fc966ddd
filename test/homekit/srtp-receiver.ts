/**
 * The Home app's side of a stream, for tests and the bench: a UDP port that receives SRTP, decrypts
 * it with the negotiated key (werift's SrtpSession, AES_CM_128_HMAC_SHA1_80), keeps the RTP
 * packets, turns H.264 RTP (single NAL, STAP-A, FU-A) back into an Annex-B stream, and can send
 * RTCP-sized packets back so the accessory sees a live controller.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RtpHeader, SrtcpSession, SrtpSession } from 'werift';
import { probe, type ProbeResult } from '../helpers/ffprobe.js';

export interface ReceivedPacket {
  payloadType: number;
  marker: boolean;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  payload: Buffer;
  /** performance.now() on arrival. */
  at: number;
}

export interface SrtpKeys {
  key: Buffer;
  salt: Buffer;
}

export function newSrtpKeys(): SrtpKeys {
  return { key: randomBytes(16), salt: randomBytes(14) };
}

export class SrtpReceiver {
  readonly packets: ReceivedPacket[] = [];
  /** RTCP packets (sender reports) decrypted from the accessory. */
  rtcpPackets = 0;
  decryptErrors = 0;
  private readonly srtp: SrtpSession;
  private readonly srtcp: SrtcpSession;
  private waiters: Array<() => void> = [];
  private rtcpTimer: NodeJS.Timeout | undefined;

  private constructor(readonly socket: dgram.Socket, readonly keys: SrtpKeys) {
    const config = { keys: { localMasterKey: keys.key, localMasterSalt: keys.salt, remoteMasterKey: keys.key, remoteMasterSalt: keys.salt }, profile: 1 as const };
    this.srtp = new SrtpSession(config);
    this.srtcp = new SrtcpSession(config);
    socket.on('message', (message) => this.onMessage(message));
  }

  static async open(keys: SrtpKeys = newSrtpKeys()): Promise<SrtpReceiver> {
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    return new SrtpReceiver(socket, keys);
  }

  get port(): number {
    return this.socket.address().port;
  }

  private onMessage(message: Buffer): void {
    const second = message[1] ?? 0;
    if (second >= 200 && second <= 204) {
      try {
        this.srtcp.decrypt(message);
        this.rtcpPackets++;
      } catch {
        this.decryptErrors++;
      }
      return;
    }
    try {
      const plain = this.srtp.decrypt(message);
      const csrcCount = plain[0]! & 0x0f;
      const extension = (plain[0]! & 0x10) !== 0;
      let offset = 12 + csrcCount * 4;
      if (extension) offset += 4 + plain.readUInt16BE(offset + 2) * 4;
      this.packets.push({
        payloadType: plain[1]! & 0x7f,
        marker: (plain[1]! & 0x80) !== 0,
        sequenceNumber: plain.readUInt16BE(2),
        timestamp: plain.readUInt32BE(4),
        ssrc: plain.readUInt32BE(8),
        payload: Buffer.from(plain.subarray(offset)),
        at: performance.now(),
      });
    } catch {
      this.decryptErrors++;
    }
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Waits until `count` packets arrived in total. */
  async waitForPackets(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.packets.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`only ${this.packets.length} of ${count} packets (decrypt errors: ${this.decryptErrors}) within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends a small datagram to the accessory every `intervalMs`, like the Home app's RTCP receiver reports. */
  keepAlive(target: { address: string; port: number }, intervalMs = 500): void {
    this.stopKeepAlive();
    const send = (): void => {
      // The accessory only notes that the controller is alive; the content does not matter to it.
      this.socket.send(Buffer.from([0x80, 201, 0, 1, 0, 0, 0, 1]), target.port, target.address);
    };
    send();
    this.rtcpTimer = setInterval(send, intervalMs);
  }

  /**
   * Sends one SRTP packet to the accessory from this port, as the Home app sends its microphone
   * (two-way audio): the stream's own key, the controller's own SSRC.
   */
  sendRtp(target: { address: string; port: number }, packet: { payloadType: number; sequenceNumber: number; timestamp: number; ssrc: number; payload: Buffer; marker?: boolean }): void {
    const header = new RtpHeader({
      payloadType: packet.payloadType,
      sequenceNumber: packet.sequenceNumber & 0xffff,
      timestamp: packet.timestamp >>> 0,
      ssrc: packet.ssrc,
      marker: packet.marker ?? false,
    });
    this.socket.send(this.srtp.encrypt(packet.payload, header), target.port, target.address);
  }

  stopKeepAlive(): void {
    clearInterval(this.rtcpTimer);
    this.rtcpTimer = undefined;
  }

  close(): void {
    this.stopKeepAlive();
    try {
      this.socket.close();
    } catch {
      // closed
    }
  }
}

const START_CODE = Buffer.from([0, 0, 0, 1]);

/** H.264 RTP payloads (RFC 6184: single NAL, STAP-A, FU-A) in sequence order → Annex-B. */
export function depacketizeH264(packets: readonly ReceivedPacket[]): Buffer {
  const sorted = [...packets];
  const out: Buffer[] = [];
  let fragment: Buffer[] | undefined;
  for (const packet of sorted) {
    const payload = packet.payload;
    if (payload.length < 1) continue;
    const type = payload[0]! & 0x1f;
    if (type >= 1 && type <= 23) {
      out.push(START_CODE, payload);
    } else if (type === 24) {
      let offset = 1;
      while (offset + 2 <= payload.length) {
        const size = payload.readUInt16BE(offset);
        offset += 2;
        out.push(START_CODE, payload.subarray(offset, offset + size));
        offset += size;
      }
    } else if (type === 28 && payload.length > 2) {
      const header = payload[1]!;
      const start = (header & 0x80) !== 0;
      const end = (header & 0x40) !== 0;
      if (start) fragment = [Buffer.from([(payload[0]! & 0xe0) | (header & 0x1f)])];
      if (fragment) fragment.push(payload.subarray(2));
      if (end && fragment) {
        out.push(START_CODE, Buffer.concat(fragment));
        fragment = undefined;
      }
    }
  }
  return Buffer.concat(out);
}

/** NAL unit types present in an Annex-B stream. */
export function nalTypes(annexB: Buffer): number[] {
  const types: number[] = [];
  for (let i = 0; i + 4 < annexB.length; i++) {
    if (annexB[i] === 0 && annexB[i + 1] === 0 && annexB[i + 2] === 0 && annexB[i + 3] === 1) types.push(annexB[i + 4]! & 0x1f);
  }
  return types;
}

/** Writes the stream to a temporary .h264 file and asks ffprobe about it. */
export async function probeH264(annexB: Buffer): Promise<ProbeResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hk-h264-'));
  const file = join(dir, 'stream.h264');
  try {
    writeFileSync(file, annexB);
    return await probe(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
