/**
 * A HomeKit controller for tests, on top of the npm `hap-controller` (a real HAP client: SRP
 * pairing, encrypted sessions, characteristic reads and writes). It speaks the camera protocol by
 * hand: SupportedVideoStreamConfiguration, SetupEndpoints and SelectedRTPStreamConfiguration TLVs.
 * Service and characteristic ids are HAP's short UUIDs (110 = Camera RTP Stream Management, 114,
 * 117, 118, ...; see the field notes).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { HttpClient } from 'hap-controller';
import type { SrtpKeys } from './srtp-receiver.js';

export const SERVICE = { accessoryInformation: 0x3e, motionSensor: 0x85, rtpStreamManagement: 0x110, microphone: 0x112 } as const;
export const CHARACTERISTIC = {
  name: 0x23,
  manufacturer: 0x20,
  model: 0x21,
  serialNumber: 0x30,
  motionDetected: 0x22,
  supportedVideoStreamConfiguration: 0x114,
  supportedAudioStreamConfiguration: 0x115,
  supportedRtpConfiguration: 0x116,
  selectedRtpStreamConfiguration: 0x117,
  setupEndpoints: 0x118,
  streamingStatus: 0x120,
} as const;

// ---- TLV8 (HAP chapter 12.1): types may repeat (lists use a 0x00 separator), values > 255 bytes are split.

export type TlvEntry = [type: number, value: Buffer];

export function tlvDecode(buffer: Buffer): TlvEntry[] {
  const out: TlvEntry[] = [];
  let offset = 0;
  let lastWasFull = false;
  while (offset + 2 <= buffer.length) {
    const type = buffer[offset]!;
    const length = buffer[offset + 1]!;
    const value = buffer.subarray(offset + 2, offset + 2 + length);
    offset += 2 + length;
    const previous = out.at(-1);
    // A value longer than 255 bytes continues in the next item of the same type.
    if (previous && lastWasFull && previous[0] === type) previous[1] = Buffer.concat([previous[1], value]);
    else out.push([type, Buffer.from(value)]);
    lastWasFull = length === 255;
  }
  return out;
}

export function tlvEncode(entries: ReadonlyArray<TlvEntry>): Buffer {
  const parts: Buffer[] = [];
  for (const [type, value] of entries) {
    if (value.length === 0) parts.push(Buffer.from([type, 0]));
    for (let i = 0; i < value.length; i += 255) {
      const chunk = value.subarray(i, i + 255);
      parts.push(Buffer.from([type, chunk.length]), chunk);
    }
  }
  return Buffer.concat(parts);
}

export function tlvGet(entries: ReadonlyArray<TlvEntry>, type: number): Buffer | undefined {
  return entries.find(([t]) => t === type)?.[1];
}

const u8 = (n: number): Buffer => Buffer.from([n]);
const u16 = (n: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const f32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(n);
  return b;
};

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/** "00000110-0000-1000-8000-0026BB765291" or "110" → 0x110. */
export function shortType(type: string | undefined): number {
  if (!type) return -1;
  return parseInt(type.includes('-') ? type.split('-')[0]! : type, 16);
}

export interface CharacteristicRef {
  aid: number;
  iid: number;
  value?: unknown;
}

export interface ServiceRef {
  aid: number;
  iid: number;
  type: number;
  linked: number[];
  characteristics: Map<number, CharacteristicRef>;
}

export interface CameraAccessory {
  aid: number;
  name: string;
  services: ServiceRef[];
  streamManagements: ServiceRef[];
  motionSensor?: ServiceRef;
}

export interface Resolution {
  width: number;
  height: number;
  fps: number;
}

export interface SetupAnswer {
  status: number;
  address: string;
  videoPort: number;
  audioPort: number;
  videoSsrc: number;
  audioSsrc: number;
}

export interface StartOptions {
  width: number;
  height: number;
  fps?: number;
  maxBitrateKbps?: number;
  /** 0 baseline, 1 main, 2 high. */
  profile?: number;
  /** 0 = 3.1, 1 = 3.2, 2 = 4.0. */
  level?: number;
  videoPayloadType?: number;
  mtu?: number;
  /** HAP audio codec: 3 = Opus, 2 = AAC-ELD. */
  audioCodec?: number;
  /** 0 = 8 kHz, 1 = 16 kHz, 2 = 24 kHz. */
  audioSampleRate?: number;
  audioPayloadType?: number;
}

/** One paired controller connection to a bridge. */
export class HapCameraClient {
  private constructor(readonly client: HttpClient) {}

  /**
   * Pairs by setup code (pair-setup, SRP) and keeps one persistent, verified connection.
   * `sameConnectionEvents` puts event subscriptions on that connection too, as a home hub does (and
   * as the data stream needs: its keys come from the one pair-verify session, see hds-client.ts).
   */
  static async pair(port: number, pin: string, address = '127.0.0.1', options: { sameConnectionEvents?: boolean } = {}): Promise<HapCameraClient> {
    const deviceId = Array.from(randomBytes(6)).map((b) => b.toString(16).padStart(2, '0')).join(':').toUpperCase();
    const pairing = new HttpClient(deviceId, address, port);
    await pairing.pairSetup(pin);
    const data = pairing.getLongTermData();
    await pairing.close();
    if (!data) throw new Error('pairing produced no long-term keys');
    // A new client for the verified session: HAP-NodeJS ties stream sessions to that connection.
    return new HapCameraClient(new HttpClient(deviceId, address, port, data, { usePersistentConnections: true, subscriptionsUseSameConnection: options.sameConnectionEvents ?? false }));
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  async cameras(): Promise<CameraAccessory[]> {
    const { accessories } = await this.client.getAccessories();
    const out: CameraAccessory[] = [];
    for (const accessory of accessories) {
      const services: ServiceRef[] = accessory.services.map((service) => {
        const characteristics = new Map<number, CharacteristicRef>();
        for (const c of service.characteristics) {
          characteristics.set(shortType(c.type), { aid: accessory.aid, iid: c.iid ?? -1, value: c.value });
        }
        return { aid: accessory.aid, iid: service.iid, type: shortType(service.type), linked: service.linked ?? [], characteristics };
      });
      const streamManagements = services.filter((s) => s.type === SERVICE.rtpStreamManagement);
      if (streamManagements.length === 0) continue;
      const info = services.find((s) => s.type === SERVICE.accessoryInformation);
      const motionSensor = services.find((s) => s.type === SERVICE.motionSensor);
      out.push({
        aid: accessory.aid,
        name: String(info?.characteristics.get(CHARACTERISTIC.name)?.value ?? ''),
        services,
        streamManagements,
        ...(motionSensor ? { motionSensor } : {}),
      });
    }
    return out;
  }

  async camera(name: string): Promise<CameraAccessory> {
    const found = (await this.cameras()).find((c) => c.name === name);
    if (!found) throw new Error(`no camera accessory named ${name}`);
    return found;
  }

  async read(ref: CharacteristicRef): Promise<unknown> {
    const { characteristics } = await this.client.getCharacteristics([`${ref.aid}.${ref.iid}`]);
    return characteristics[0]?.value;
  }

  async write(ref: CharacteristicRef, value: unknown): Promise<void> {
    const result = await this.client.setCharacteristics({ [`${ref.aid}.${ref.iid}`]: value });
    const failures = JSON.stringify(result);
    if (/"status":\s*-?[1-9]/.test(failures)) throw new Error(`write ${ref.aid}.${ref.iid} failed: ${failures}`);
  }

  static characteristic(service: ServiceRef, type: number): CharacteristicRef {
    const found = service.characteristics.get(type);
    if (!found) throw new Error(`service ${service.type.toString(16)} has no characteristic ${type.toString(16)}`);
    return found;
  }

  /** The resolutions in SupportedVideoStreamConfiguration (114). */
  async supportedResolutions(service: ServiceRef): Promise<Resolution[]> {
    const value = await this.read(HapCameraClient.characteristic(service, CHARACTERISTIC.supportedVideoStreamConfiguration));
    const top = tlvDecode(Buffer.from(String(value), 'base64'));
    const out: Resolution[] = [];
    for (const [type, codecConfig] of top) {
      if (type !== 1) continue;
      for (const [inner, attributes] of tlvDecode(codecConfig)) {
        if (inner !== 3) continue;
        const a = tlvDecode(attributes);
        out.push({ width: tlvGet(a, 1)!.readUInt16LE(0), height: tlvGet(a, 2)!.readUInt16LE(0), fps: tlvGet(a, 3)!.readUInt8(0) });
      }
    }
    return out;
  }

  /** The audio codec types (HAP numbers: 2 AAC-ELD, 3 Opus) in SupportedAudioStreamConfiguration (115). */
  async supportedAudioCodecs(service: ServiceRef): Promise<number[]> {
    const value = await this.read(HapCameraClient.characteristic(service, CHARACTERISTIC.supportedAudioStreamConfiguration));
    return tlvDecode(Buffer.from(String(value), 'base64')).filter(([t]) => t === 1).map(([, v]) => tlvGet(tlvDecode(v), 1)!.readUInt8(0));
  }

  /** SetupEndpoints (118): write our address, ports and SRTP keys, read back the accessory's. */
  async setupEndpoints(service: ServiceRef, session: { id: string; videoPort: number; audioPort: number; video: SrtpKeys; audio: SrtpKeys }): Promise<SetupAnswer> {
    const ref = HapCameraClient.characteristic(service, CHARACTERISTIC.setupEndpoints);
    const srtp = (keys: SrtpKeys): Buffer => tlvEncode([[1, u8(0)], [2, keys.key], [3, keys.salt]]);
    const request = tlvEncode([
      [1, uuidBytes(session.id)],
      [3, tlvEncode([[1, u8(0)], [2, Buffer.from('127.0.0.1')], [3, u16(session.videoPort)], [4, u16(session.audioPort)]])],
      [4, srtp(session.video)],
      [5, srtp(session.audio)],
    ]);
    await this.write(ref, request.toString('base64'));
    const answer = tlvDecode(Buffer.from(String(await this.read(ref)), 'base64'));
    const address = tlvDecode(tlvGet(answer, 3) ?? Buffer.alloc(0));
    return {
      status: tlvGet(answer, 2)?.readUInt8(0) ?? -1,
      address: tlvGet(address, 2)?.toString('utf8') ?? '',
      videoPort: tlvGet(address, 3)?.readUInt16LE(0) ?? 0,
      audioPort: tlvGet(address, 4)?.readUInt16LE(0) ?? 0,
      videoSsrc: tlvGet(answer, 6)?.readUInt32LE(0) ?? 0,
      audioSsrc: tlvGet(answer, 7)?.readUInt32LE(0) ?? 0,
    };
  }

  private sessionControl(id: string, command: number): Buffer {
    return tlvEncode([[1, uuidBytes(id)], [2, u8(command)]]);
  }

  private videoParameters(o: StartOptions): Buffer {
    return tlvEncode([
      [1, u8(0)], // H.264
      [2, tlvEncode([[1, u8(o.profile ?? 1)], [2, u8(o.level ?? 2)], [3, u8(0)]])],
      [3, tlvEncode([[1, u16(o.width)], [2, u16(o.height)], [3, u8(o.fps ?? 30)]])],
      [4, tlvEncode([[1, u8(o.videoPayloadType ?? 99)], [2, u32(0x1234_5678)], [3, u16(o.maxBitrateKbps ?? 2000)], [4, f32(0.5)], [5, u16(o.mtu ?? 1378)]])],
    ]);
  }

  /** SelectedRTPStreamConfiguration (117) START; HAP-NodeJS requires the audio block even for video only. */
  async start(service: ServiceRef, id: string, o: StartOptions): Promise<void> {
    const audio = tlvEncode([
      [1, u8(o.audioCodec ?? 3)],
      [2, tlvEncode([[1, u8(1)], [2, u8(0)], [3, u8(o.audioSampleRate ?? 1)], [4, u8(20)]])],
      [3, tlvEncode([[1, u8(o.audioPayloadType ?? 110)], [2, u32(0x2345_6789)], [3, u16(24)], [4, f32(5)], [6, u8(13)]])],
      [4, u8(0)],
    ]);
    const value = tlvEncode([[1, this.sessionControl(id, 1)], [2, this.videoParameters(o)], [3, audio]]);
    await this.write(HapCameraClient.characteristic(service, CHARACTERISTIC.selectedRtpStreamConfiguration), value.toString('base64'));
  }

  async reconfigure(service: ServiceRef, id: string, o: StartOptions): Promise<void> {
    const value = tlvEncode([[1, this.sessionControl(id, 4)], [2, this.videoParameters(o)]]);
    await this.write(HapCameraClient.characteristic(service, CHARACTERISTIC.selectedRtpStreamConfiguration), value.toString('base64'));
  }

  async end(service: ServiceRef, id: string): Promise<void> {
    const value = tlvEncode([[1, this.sessionControl(id, 0)]]);
    await this.write(HapCameraClient.characteristic(service, CHARACTERISTIC.selectedRtpStreamConfiguration), value.toString('base64'));
  }

  getImage(width: number, height: number, aid: number): Promise<Buffer> {
    return this.client.getImage(width, height, aid);
  }
}

export function newSessionId(): string {
  return randomUUID();
}
