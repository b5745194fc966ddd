/**
 * The home hub's side of HomeKit Secure Video for tests, written from the protocol (HAP-NodeJS's
 * server side in lib/datastream and lib/camera/RecordingManagement.js, and the unofficial HKSV
 * specification): the recording characteristics a hub writes over a paired HAP connection, and a
 * HomeKit Data Stream (HDS) client that pulls a recording the way a hub does.
 *
 * HDS in short:
 * - SetupDataStreamTransport (a write-response characteristic) takes {session command start,
 *   transport type 0 = HDS over TCP, a random 32-byte controller key salt} and answers {status,
 *   the TCP port, the accessory's 32-byte key salt}.
 * - Both sides derive two keys with HKDF-SHA512 from the HAP session's pair-verify shared secret,
 *   salt = controller salt + accessory salt: "HDS-Read-Encryption-Key" encrypts what the accessory
 *   sends (the hub reads with it), "HDS-Write-Encryption-Key" what the hub sends.
 * - A frame is [type 1][24-bit big-endian length] + ChaCha20-Poly1305 ciphertext + 16-byte tag; the
 *   4 header bytes are the AAD, the nonce is a per-direction 64-bit little-endian counter from 0.
 * - A frame's plaintext is [header length][header dictionary][message dictionary] in HAP-NodeJS's
 *   DataStream encoding (its exported DataStreamParser/Reader/Writer encode and decode it here).
 *   The header says protocol and event, request (with id) or response (with id and status).
 * - The hub starts with control/hello, then for a recording sends dataSend/open {target
 *   "controller", type "ipcamera.recording", streamId}, receives dataSend/data events (packets with
 *   mediaInitialization or mediaFragment chunks, each fragment's chunks numbered, the last flagged)
 *   and ends with a dataSend/close event {streamId, reason}; it acknowledges (dataSend/ack) only a
 *   stream the accessory marked endOfStream.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import hap from '@homebridge/hap-nodejs';
import type { HttpClient } from 'hap-controller';
import { HapCameraClient, tlvDecode, tlvEncode, tlvGet, type CharacteristicRef, type ServiceRef, type TlvEntry } from './hap-camera-client.js';

const { DataStreamParser, DataStreamReader, DataStreamWriter, Int64 } = hap;

// ---- HDS keys ------------------------------------------------------------------------------------

export interface HdsKeys {
  /** Decrypts what the accessory sends ("HDS-Read-Encryption-Key"). */
  accessoryToController: Buffer;
  /** Encrypts what the hub sends ("HDS-Write-Encryption-Key"). */
  controllerToAccessory: Buffer;
}

export function hdsKeys(sharedSecret: Buffer, controllerSalt: Buffer, accessorySalt: Buffer): HdsKeys {
  const salt = Buffer.concat([controllerSalt, accessorySalt]);
  const derive = (info: string): Buffer => Buffer.from(hkdfSync('sha512', sharedSecret, salt, info, 32));
  return { accessoryToController: derive('HDS-Read-Encryption-Key'), controllerToAccessory: derive('HDS-Write-Encryption-Key') };
}

/**
 * The pair-verify ECDH shared secret of the client's verified session. hap-controller keeps it in
 * its (TypeScript-private) pairing protocol object and offers no accessor; every pair-verify
 * replaces it, so read it while only the one persistent connection has been verified.
 */
export function pairVerifySharedSecret(client: HttpClient): Buffer {
  const view = client as unknown as { pairingProtocol?: { pairVerify?: { sharedSecret?: Buffer | null } } };
  const secret = view.pairingProtocol?.pairVerify?.sharedSecret;
  if (!secret) throw new Error('hap-controller has no verified session (no pair-verify shared secret)');
  return Buffer.from(secret);
}

// ---- frames and messages -------------------------------------------------------------------------

const FRAME_HEADER = 4;
const TAG = 16;

function nonce(counter: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeBigUInt64LE(BigInt(counter), 4);
  return n;
}

export function sealFrame(key: Buffer, counter: number, payload: Buffer): Buffer {
  const header = Buffer.from([1, (payload.length >> 16) & 0xff, (payload.length >> 8) & 0xff, payload.length & 0xff]);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: TAG });
  cipher.setAAD(header, { plaintextLength: payload.length });
  const body = Buffer.concat([cipher.update(payload), cipher.final()]);
  return Buffer.concat([header, body, cipher.getAuthTag()]);
}

/** Opens one frame; throws when the tag does not verify (wrong key or counter). */
export function openFrame(key: Buffer, counter: number, header: Buffer, ciphertext: Buffer, tag: Buffer): Buffer {
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce(counter), { authTagLength: TAG });
  decipher.setAAD(header, { plaintextLength: ciphertext.length });
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

export type HdsDictionary = Record<string, unknown>;

export interface HdsMessage {
  protocol: string;
  kind: 'event' | 'request' | 'response';
  topic: string;
  id?: number;
  status?: number;
  body: HdsDictionary;
}

function encodeDictionary(value: HdsDictionary): Buffer {
  const writer = new DataStreamWriter();
  DataStreamParser.encode(value, writer);
  return writer.getData();
}

function decodeDictionary(data: Buffer): HdsDictionary {
  const reader = new DataStreamReader(data);
  const value: unknown = DataStreamParser.decode(reader);
  reader.finished();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('an HDS header or message is not a dictionary');
  return value as HdsDictionary;
}

export function encodePayload(header: HdsDictionary, body: HdsDictionary): Buffer {
  const head = encodeDictionary(header);
  return Buffer.concat([Buffer.from([head.length]), head, encodeDictionary(body)]);
}

export function decodePayload(payload: Buffer): HdsMessage {
  const headerLength = payload.readUInt8(0);
  const header = decodeDictionary(payload.subarray(1, 1 + headerLength));
  const body = decodeDictionary(payload.subarray(1 + headerLength));
  const protocol = String(header['protocol']);
  const number = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
  if (typeof header['event'] === 'string') return { protocol, kind: 'event', topic: header['event'], body };
  const id = number(header['id']);
  if (typeof header['request'] === 'string') return { protocol, kind: 'request', topic: header['request'], ...(id !== undefined ? { id } : {}), body };
  if (typeof header['response'] === 'string') {
    const status = number(header['status']);
    return { protocol, kind: 'response', topic: header['response'], ...(id !== undefined ? { id } : {}), ...(status !== undefined ? { status } : {}), body };
  }
  throw new Error(`an HDS header without event, request or response: ${JSON.stringify(header)}`);
}

// ---- the connection -------------------------------------------------------------------------------

/** One hub connection to the accessory's HDS port, encrypted with the session's keys. */
export class HdsConnection {
  /** Every message the accessory sent, in order. */
  readonly received: HdsMessage[] = [];
  private sendCounter = 0;
  private receiveCounter = 0;
  private pending = Buffer.alloc(0);
  private nextRequestId = 1;
  private readonly waiters = new Set<{ match: (m: HdsMessage) => boolean; resolve: (m: HdsMessage) => void }>();
  private failure: Error | undefined;
  private readonly listeners = new Set<(m: HdsMessage) => void>();
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket, private readonly keys: HdsKeys) {
    socket.setNoDelay(true);
    socket.on('data', (data: Buffer) => this.onData(data));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', (error) => { this.failure ??= error; });
  }

  static open(port: number, keys: HdsKeys, host = '127.0.0.1'): Promise<HdsConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new HdsConnection(socket, keys));
      });
    });
  }

  /** Set when a frame failed to decrypt or decode, or the socket failed. */
  get error(): Error | undefined {
    return this.failure;
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readyState === 'closed';
  }

  onMessage(listener: (m: HdsMessage) => void): void {
    this.listeners.add(listener);
  }

  send(header: HdsDictionary, body: HdsDictionary = {}): void {
    this.socket.write(sealFrame(this.keys.controllerToAccessory, this.sendCounter++, encodePayload(header, body)));
  }

  event(protocol: string, topic: string, body: HdsDictionary): void {
    this.send({ protocol, event: topic }, body);
  }

  /** Sends a request and resolves with the accessory's response to it. */
  async request(protocol: string, topic: string, body: HdsDictionary = {}, timeoutMs = 10_000): Promise<HdsMessage> {
    const id = this.nextRequestId++;
    const answer = this.next((m) => m.kind === 'response' && m.id === id, timeoutMs, `${protocol}/${topic} response`);
    this.send({ protocol, request: topic, id: new Int64(id) }, body);
    return answer;
  }

  /** The next message (from now on) that matches. */
  next(match: (m: HdsMessage) => boolean, timeoutMs: number, what: string): Promise<HdsMessage> {
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (m: HdsMessage) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`HDS: no ${what} within ${timeoutMs} ms${this.failure ? ` (${this.failure.message})` : ''}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  async close(): Promise<void> {
    this.socket.end();
    await Promise.race([this.closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
    this.socket.destroy();
  }

  private onData(data: Buffer): void {
    this.pending = Buffer.concat([this.pending, data]);
    while (this.pending.length >= FRAME_HEADER) {
      const length = this.pending.readUIntBE(1, 3);
      if (this.pending.length < FRAME_HEADER + length + TAG) return;
      const header = this.pending.subarray(0, FRAME_HEADER);
      const ciphertext = this.pending.subarray(FRAME_HEADER, FRAME_HEADER + length);
      const tag = this.pending.subarray(FRAME_HEADER + length, FRAME_HEADER + length + TAG);
      this.pending = this.pending.subarray(FRAME_HEADER + length + TAG);
      let message: HdsMessage;
      try {
        if (header[0] !== 1) throw new Error(`HDS frame of type ${header[0]}`);
        message = decodePayload(openFrame(this.keys.accessoryToController, this.receiveCounter++, header, ciphertext, tag));
      } catch (error) {
        this.failure ??= error instanceof Error ? error : new Error(String(error));
        this.socket.destroy();
        return;
      }
      this.received.push(message);
      for (const listener of this.listeners) listener(message);
      for (const waiter of [...this.waiters]) if (waiter.match(message)) waiter.resolve(message);
    }
  }
}

// ---- dataSend: one recording as the hub receives it ----------------------------------------------

export interface RecordingChunk {
  dataType: string;
  dataSequenceNumber: number;
  dataChunkSequenceNumber: number;
  isLastDataChunk: boolean;
  dataTotalSize: number | undefined;
  data: Buffer;
}

/** One mp4 segment (init segment or fragment), its chunks joined. */
export interface RecordingSegment {
  dataType: string;
  dataSequenceNumber: number;
  chunks: number;
  data: Buffer;
}

const asNumber = (v: unknown, what: string): number => {
  if (typeof v !== 'number') throw new Error(`HDS ${what} is not a number: ${JSON.stringify(v)}`);
  return v;
};

/**
 * A recording stream the hub opened: collects the accessory's dataSend/data chunks, assembles and
 * checks them (chunk numbers in order, the last one flagged, the announced total size), and sends
 * dataSend/ack when the accessory ends the stream itself, or dataSend/close when the hub ends it.
 */
export class RecordingReceiver {
  readonly chunks: RecordingChunk[] = [];
  /** The accessory's dataSend/close reason, if it closed the stream. */
  accessoryCloseReason: number | undefined;
  endOfStream = false;
  private readonly segmentList: RecordingSegment[] = [];
  private current: RecordingSegment | undefined;
  private expectedSize: number | undefined;
  private readonly problems: string[] = [];
  private readonly arrivals: Array<() => void> = [];

  constructor(private readonly connection: HdsConnection, readonly streamId: number) {
    connection.onMessage((m) => this.onMessage(m));
  }

  /** dataSend/open; resolves with the response (status 0 and message status 0 when accepted). */
  async open(reason = 'motion'): Promise<HdsMessage> {
    // HAP-NodeJS checks target and type and only logs the reason.
    return this.connection.request('dataSend', 'open', { target: 'controller', type: 'ipcamera.recording', streamId: this.streamId, reason });
  }

  /** The hub ends the stream (dataSend/close, reason 0 = normal). */
  close(reason = 0): void {
    this.connection.event('dataSend', 'close', { streamId: this.streamId, reason });
  }

  /** Complete segments so far (the first is the init segment). */
  get segments(): RecordingSegment[] {
    return this.segmentList;
  }

  /** Protocol problems seen (out-of-order chunks, wrong sizes, foreign stream ids, ...). */
  get errors(): string[] {
    return this.problems;
  }

  /** Resolves once at least `count` complete segments arrived. */
  async waitForSegments(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.segmentList.length < count) {
      if (this.accessoryCloseReason !== undefined) throw new Error(`the accessory closed the stream (reason ${this.accessoryCloseReason}) after ${this.segmentList.length} segments`);
      if (this.connection.isClosed) throw new Error(`the data stream closed after ${this.segmentList.length} segments${this.connection.error ? `: ${this.connection.error.message}` : ''}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.segmentList.length} of ${count} segments within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.arrivals.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  private onMessage(m: HdsMessage): void {
    if (m.protocol !== 'dataSend' || m.kind !== 'event') return;
    if (m.body['streamId'] !== this.streamId) {
      if (m.topic === 'data') this.problems.push(`data for stream ${String(m.body['streamId'])}`);
      return;
    }
    if (m.topic === 'close') {
      this.accessoryCloseReason = asNumber(m.body['reason'] ?? 0, 'close reason');
    } else if (m.topic === 'data') {
      this.onData(m.body);
      if (m.body['endOfStream'] === true) {
        this.endOfStream = true;
        this.connection.event('dataSend', 'ack', { streamId: this.streamId, endOfStream: true });
      }
    }
    for (const wake of this.arrivals.splice(0)) wake();
  }

  private onData(body: HdsDictionary): void {
    const packets = body['packets'];
    if (!Array.isArray(packets)) {
      this.problems.push('a data event without packets');
      return;
    }
    for (const packet of packets as unknown[]) {
      const p = packet as { data?: unknown; metadata?: Record<string, unknown> };
      const meta = p.metadata ?? {};
      if (!Buffer.isBuffer(p.data)) {
        this.problems.push('a packet without data');
        continue;
      }
      const chunk: RecordingChunk = {
        dataType: String(meta['dataType']),
        dataSequenceNumber: asNumber(meta['dataSequenceNumber'], 'dataSequenceNumber'),
        dataChunkSequenceNumber: asNumber(meta['dataChunkSequenceNumber'], 'dataChunkSequenceNumber'),
        isLastDataChunk: meta['isLastDataChunk'] === true,
        dataTotalSize: typeof meta['dataTotalSize'] === 'number' ? meta['dataTotalSize'] : undefined,
        data: p.data,
      };
      this.chunks.push(chunk);
      this.assemble(chunk);
    }
  }

  private assemble(chunk: RecordingChunk): void {
    const expectedSequence = (this.segmentList.at(-1)?.dataSequenceNumber ?? 0) + 1;
    if (chunk.dataChunkSequenceNumber === 1) {
      if (this.current) this.problems.push(`segment ${this.current.dataSequenceNumber} was left unfinished`);
      if (chunk.dataSequenceNumber !== expectedSequence) this.problems.push(`segment ${chunk.dataSequenceNumber} where ${expectedSequence} was next`);
      const wantType = expectedSequence === 1 ? 'mediaInitialization' : 'mediaFragment';
      if (chunk.dataType !== wantType) this.problems.push(`segment ${chunk.dataSequenceNumber} is ${chunk.dataType}, not ${wantType}`);
      this.current = { dataType: chunk.dataType, dataSequenceNumber: chunk.dataSequenceNumber, chunks: 0, data: Buffer.alloc(0) };
      this.expectedSize = chunk.dataTotalSize;
    } else if (!this.current || this.current.dataSequenceNumber !== chunk.dataSequenceNumber || chunk.dataChunkSequenceNumber !== this.current.chunks + 1) {
      this.problems.push(`chunk ${chunk.dataSequenceNumber}.${chunk.dataChunkSequenceNumber} out of order`);
      return;
    }
    const segment = this.current!;
    segment.chunks++;
    segment.data = Buffer.concat([segment.data, chunk.data]);
    if (!chunk.isLastDataChunk) return;
    if (this.expectedSize !== undefined && this.expectedSize !== segment.data.length) {
      this.problems.push(`segment ${segment.dataSequenceNumber} has ${segment.data.length} bytes, announced ${this.expectedSize}`);
    }
    this.segmentList.push(segment);
    this.current = undefined;
  }
}

// ---- the hub's HAP side: data stream setup and the recording characteristics --------------------

const { Characteristic, Service } = hap;
const short = (uuid: string): number => parseInt(uuid.split('-')[0]!, 16);

export const HKSV = {
  service: {
    recordingManagement: short(Service.CameraRecordingManagement.UUID),
    operatingMode: short(Service.CameraOperatingMode.UUID),
    dataStreamManagement: short(Service.DataStreamTransportManagement.UUID),
  },
  characteristic: {
    active: short(Characteristic.Active.UUID),
    supportedCameraRecording: short(Characteristic.SupportedCameraRecordingConfiguration.UUID),
    supportedVideoRecording: short(Characteristic.SupportedVideoRecordingConfiguration.UUID),
    supportedAudioRecording: short(Characteristic.SupportedAudioRecordingConfiguration.UUID),
    selectedCameraRecording: short(Characteristic.SelectedCameraRecordingConfiguration.UUID),
    recordingAudioActive: short(Characteristic.RecordingAudioActive.UUID),
    homeKitCameraActive: short(Characteristic.HomeKitCameraActive.UUID),
    eventSnapshotsActive: short(Characteristic.EventSnapshotsActive.UUID),
    periodicSnapshotsActive: short(Characteristic.PeriodicSnapshotsActive.UUID),
    setupDataStreamTransport: short(Characteristic.SetupDataStreamTransport.UUID),
    supportedDataStreamTransport: short(Characteristic.SupportedDataStreamTransportConfiguration.UUID),
  },
} as const;

export interface DataStreamSetup {
  status: number;
  port: number;
  controllerSalt: Buffer;
  accessorySalt: Buffer;
  keys: HdsKeys;
}

/** What the camera offers in the three Supported*RecordingConfiguration characteristics. */
export interface RecordingSupport {
  prebufferMs: number;
  eventTriggers: number;
  containers: Array<{ type: number; fragmentMs: number }>;
  video: Array<{ codec: number; profiles: number[]; levels: number[]; resolutions: Array<[number, number, number]> }>;
  audio: Array<{ codec: number; channels: number; bitrateModes: number[]; sampleRates: number[] }>;
}

/** The hub's choice, written to SelectedCameraRecordingConfiguration. */
export interface RecordingChoice {
  prebufferMs: number;
  eventTriggers: number;
  container: { type: number; fragmentMs: number };
  video: { codec: number; profile: number; level: number; bitrateKbps: number; iFrameIntervalMs: number; resolution: [number, number, number] };
  audio: { codec: number; channels: number; bitrateMode: number; sampleRate: number; maxBitrateKbps: number };
}

const u8 = (n: number): Buffer => Buffer.from([n]);
const le = (bytes: 2 | 4 | 8, n: number): Buffer => {
  const b = Buffer.alloc(bytes);
  b.writeUIntLE(n, 0, Math.min(bytes, 6));
  return b;
};
/** Every value of `type` in a TLV list (lists repeat the type, with 0-type separators between). */
const all = (entries: ReadonlyArray<TlvEntry>, type: number): Buffer[] => entries.filter(([t]) => t === type).map(([, v]) => v);
const need = (entries: ReadonlyArray<TlvEntry>, type: number, what: string): Buffer => {
  const value = tlvGet(entries, type);
  if (!value) throw new Error(`${what}: no TLV item ${type}`);
  return value;
};

export function parseRecordingSupport(camera: string, video: string, audio: string): RecordingSupport {
  const general = tlvDecode(Buffer.from(camera, 'base64'));
  return {
    prebufferMs: need(general, 1, 'prebuffer length').readInt32LE(0),
    eventTriggers: need(general, 2, 'event triggers').readInt32LE(0),
    containers: all(general, 3).map((c) => {
      const container = tlvDecode(c);
      return { type: need(container, 1, 'container type').readUInt8(0), fragmentMs: need(tlvDecode(need(container, 2, 'container parameters')), 1, 'fragment length').readInt32LE(0) };
    }),
    video: all(tlvDecode(Buffer.from(video, 'base64')), 1).map((c) => {
      const codec = tlvDecode(c);
      const parameters = tlvDecode(need(codec, 2, 'video parameters'));
      return {
        codec: need(codec, 1, 'video codec').readUInt8(0),
        profiles: all(parameters, 1).map((v) => v.readUInt8(0)),
        levels: all(parameters, 2).map((v) => v.readUInt8(0)),
        resolutions: all(codec, 3).map((a): [number, number, number] => {
          const attributes = tlvDecode(a);
          return [need(attributes, 1, 'width').readUInt16LE(0), need(attributes, 2, 'height').readUInt16LE(0), need(attributes, 3, 'fps').readUInt8(0)];
        }),
      };
    }),
    audio: all(tlvDecode(Buffer.from(audio, 'base64')), 1).map((c) => {
      const codec = tlvDecode(c);
      const parameters = tlvDecode(need(codec, 2, 'audio parameters'));
      return {
        codec: need(codec, 1, 'audio codec').readUInt8(0),
        channels: need(parameters, 1, 'channels').readUInt8(0),
        bitrateModes: all(parameters, 2).map((v) => v.readUInt8(0)),
        sampleRates: all(parameters, 3).map((v) => v.readUInt8(0)),
      };
    }),
  };
}

/**
 * What a hub picks: the camera's pre-buffer and triggers, its first container, H.264 High (else the
 * highest profile offered) at the highest level, the largest size at up to 1920x1080 and its
 * highest frame rate, 2 Mbit/s with a keyframe every fragment, and the first audio codec offered.
 */
export function chooseRecordingConfiguration(support: RecordingSupport): RecordingChoice {
  const video = support.video.find((v) => v.codec === 0) ?? support.video[0];
  const container = support.containers[0];
  const audio = support.audio[0];
  if (!video || !container || !audio) throw new Error(`the camera offers no complete recording configuration: ${JSON.stringify(support)}`);
  const sizes = video.resolutions.filter(([w, h]) => w * h <= 1920 * 1080).sort((a, b) => b[0] * b[1] - a[0] * a[1] || b[2] - a[2]);
  const resolution = sizes[0];
  if (!resolution) throw new Error('the camera offers no recording size');
  return {
    prebufferMs: support.prebufferMs,
    eventTriggers: support.eventTriggers,
    container,
    video: {
      codec: video.codec,
      profile: Math.max(...video.profiles),
      level: Math.max(...video.levels),
      bitrateKbps: 2000,
      iFrameIntervalMs: container.fragmentMs,
      resolution,
    },
    audio: { codec: audio.codec, channels: audio.channels, bitrateMode: audio.bitrateModes[0] ?? 0, sampleRate: audio.sampleRates[0]!, maxBitrateKbps: 64 },
  };
}

export function selectedRecordingConfiguration(choice: RecordingChoice): Buffer {
  const general = tlvEncode([
    [1, le(4, choice.prebufferMs)],
    [2, le(8, choice.eventTriggers)],
    [3, tlvEncode([[1, u8(choice.container.type)], [2, tlvEncode([[1, le(4, choice.container.fragmentMs)]])]])],
  ]);
  const v = choice.video;
  const video = tlvEncode([
    [1, u8(v.codec)],
    [2, tlvEncode([[1, u8(v.profile)], [2, u8(v.level)], [3, le(4, v.bitrateKbps)], [4, le(4, v.iFrameIntervalMs)]])],
    [3, tlvEncode([[1, le(2, v.resolution[0])], [2, le(2, v.resolution[1])], [3, u8(v.resolution[2])]])],
  ]);
  const a = choice.audio;
  const audio = tlvEncode([
    [1, u8(a.codec)],
    [2, tlvEncode([[1, u8(a.channels)], [2, u8(a.bitrateMode)], [3, u8(a.sampleRate)], [4, le(4, a.maxBitrateKbps)]])],
  ]);
  return tlvEncode([[1, general], [2, video], [3, audio]]);
}

/** The HKSV services of one camera accessory, as the hub found them in /accessories. */
export interface HksvServices {
  recordingManagement: ServiceRef;
  operatingMode: ServiceRef;
  dataStreamManagement: ServiceRef;
}

export function hksvServices(services: ReadonlyArray<ServiceRef>): HksvServices {
  const find = (type: number, name: string): ServiceRef => {
    const service = services.find((s) => s.type === type);
    if (!service) throw new Error(`the accessory has no ${name} service`);
    return service;
  };
  return {
    recordingManagement: find(HKSV.service.recordingManagement, 'CameraRecordingManagement'),
    operatingMode: find(HKSV.service.operatingMode, 'CameraOperatingMode'),
    dataStreamManagement: find(HKSV.service.dataStreamManagement, 'DataStreamTransportManagement'),
  };
}

/**
 * A home hub on one paired HAP connection: reads what the camera can record, selects and enables
 * recording, sets up the data stream and opens recording streams on it.
 */
export class HksvHub {
  constructor(readonly hap: HapCameraClient, readonly services: HksvServices) {}

  private ref(service: ServiceRef, type: number): CharacteristicRef {
    return HapCameraClient.characteristic(service, type);
  }

  async recordingSupport(): Promise<RecordingSupport> {
    const s = this.services.recordingManagement;
    const c = HKSV.characteristic;
    const [camera, video, audio] = await Promise.all([c.supportedCameraRecording, c.supportedVideoRecording, c.supportedAudioRecording].map((t) => this.hap.read(this.ref(s, t))));
    return parseRecordingSupport(String(camera), String(video), String(audio));
  }

  /**
   * What the Home app's "Stream & Allow Recording" makes a hub write: the selected configuration,
   * CameraRecordingManagement Active, CameraOperatingMode's switches and RecordingAudioActive (a
   * timed write, as HAP requires for it).
   */
  async enableRecording(choice: RecordingChoice, options: { audio: boolean }): Promise<void> {
    const c = HKSV.characteristic;
    const { recordingManagement, operatingMode } = this.services;
    await this.hap.write(this.ref(recordingManagement, c.selectedCameraRecording), selectedRecordingConfiguration(choice).toString('base64'));
    await this.hap.write(this.ref(operatingMode, c.homeKitCameraActive), true);
    await this.hap.write(this.ref(operatingMode, c.eventSnapshotsActive), true);
    await this.timedWrite(this.ref(recordingManagement, c.recordingAudioActive), options.audio ? 1 : 0);
    await this.hap.write(this.ref(recordingManagement, c.active), 1);
  }

  async disableRecording(): Promise<void> {
    await this.hap.write(this.ref(this.services.recordingManagement, HKSV.characteristic.active), 0);
  }

  /**
   * A timed write (HAP 6.7.2.4): PUT /prepare with a ttl and pid, then the write with that pid, on
   * the same verified connection. hap-controller has no call for it, so this uses its persistent
   * connection directly.
   */
  async timedWrite(ref: CharacteristicRef, value: unknown): Promise<void> {
    await this.hap.read(ref); // makes sure the persistent, verified connection exists
    const view = this.hap.client as unknown as { _defaultConnection?: { put(path: string, body: Buffer, contentType?: string): Promise<{ statusCode: number; body: Buffer }> } };
    const connection = view._defaultConnection;
    if (!connection) throw new Error('hap-controller has no persistent connection for a timed write');
    const pid = randomBytes(4).readUInt32BE(0);
    const prepared = await connection.put('/prepare', Buffer.from(JSON.stringify({ ttl: 5000, pid })), 'application/hap+json');
    const answer = JSON.parse(prepared.body.toString() || '{}') as { status?: number };
    if (prepared.statusCode !== 200 || answer.status !== 0) throw new Error(`prepare failed: ${prepared.statusCode} ${prepared.body.toString()}`);
    const written = await connection.put('/characteristics', Buffer.from(JSON.stringify({ characteristics: [{ aid: ref.aid, iid: ref.iid, value }], pid })), 'application/hap+json');
    if (written.statusCode !== 204) throw new Error(`timed write ${ref.aid}.${ref.iid} failed: ${written.statusCode} ${written.body.toString()}`);
  }

  /**
   * SetupDataStreamTransport: start an HDS session over TCP with a fresh controller salt; the write
   * response carries the port and the accessory salt. The keys come from this connection's
   * pair-verify secret.
   */
  async setupDataStream(): Promise<DataStreamSetup> {
    const ref = this.ref(this.services.dataStreamManagement, HKSV.characteristic.setupDataStreamTransport);
    const controllerSalt = randomBytes(32);
    const request = tlvEncode([[1, u8(0)], [2, u8(0)], [3, controllerSalt]]);
    const result = await this.hap.client.setCharacteristics({ [`${ref.aid}.${ref.iid}`]: { value: request.toString('base64'), r: true } });
    const item = (result as { characteristics?: Array<{ status?: number; value?: unknown }> }).characteristics?.[0];
    if (!item || (item.status ?? 0) !== 0 || typeof item.value !== 'string') throw new Error(`SetupDataStreamTransport failed: ${JSON.stringify(result)}`);
    const answer = tlvDecode(Buffer.from(item.value, 'base64'));
    const accessorySalt = need(answer, 3, 'accessory key salt');
    const port = need(tlvDecode(need(answer, 2, 'transport session parameters')), 1, 'TCP port').readUInt16LE(0);
    return {
      status: need(answer, 1, 'status').readUInt8(0),
      port,
      controllerSalt,
      accessorySalt,
      keys: hdsKeys(pairVerifySharedSecret(this.hap.client), controllerSalt, accessorySalt),
    };
  }

  /** Sets up the data stream, connects and says hello (control/hello must be the first message). */
  async connectDataStream(): Promise<{ connection: HdsConnection; setup: DataStreamSetup; hello: HdsMessage }> {
    const setup = await this.setupDataStream();
    if (setup.status !== 0) throw new Error(`SetupDataStreamTransport status ${setup.status}`);
    const connection = await HdsConnection.open(setup.port, setup.keys);
    const hello = await connection.request('control', 'hello', {});
    return { connection, setup, hello };
  }
}
