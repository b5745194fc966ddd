/**
 * A scripted camera behind an UpstreamFactory: it replays real H.264 access units (from ffmpeg) as
 * RTP, plus PCMU audio, and can fail, refuse, hang, stall, reboot (new SSRC, sequence and timestamp
 * bases), send garbage. Time comes from FakeTime, so the Source under test sees a consistent clock.
 */
import type { TrackDescription, UpstreamFactory, UpstreamHandlers, UpstreamSession } from '../../../src/media/types.js';
import { serializeRtp } from '../../../src/media/rtp.js';
import { packetizeH264 } from '../../../src/media/h264-packetizer.js';
import type { FakeTime } from '../../helpers/fake-time.js';
import { encodeStream, groupAccessUnits, splitAnnexB } from './streams.js';

export type ConnectOutcome = { kind: 'ok' } | { kind: 'reject'; error: Error } | { kind: 'hang' };

export function smallH264(gop = 10, seconds = 2): Buffer[][] {
  return groupAccessUnits('h264', splitAnnexB(encodeStream({ codec: 'h264', width: 320, height: 240, seconds, gop })));
}

export class ScriptedCamera {
  attempts = 0;
  closes = 0;
  connectDelayMs = 0;
  /** Outcomes for the next attempts, in order; afterwards every attempt succeeds. */
  readonly script: ConnectOutcome[] = [];
  /** Whether SDP carries sprop-parameter-sets. */
  withSprop = true;
  withAudio = true;
  handlers: UpstreamHandlers | undefined;
  signal: AbortSignal | undefined;
  /** Every signal an attempt received, to check aborted attempts. */
  readonly signals: AbortSignal[] = [];
  frameIndex = 0;
  ssrc = 0x1000;
  sequence = 60000; // wraps soon, on purpose
  timestamp = 0xfff00000;
  audioSsrc = 0x2000;
  audioSequence = 100;
  audioTimestamp = 5000;
  /** Drop every Nth video packet (0 = none). */
  dropEvery = 0;
  /** Drop the first video packet of these frames (by index from the start of the stream). */
  readonly damageFrames = new Set<number>();
  /** Send the first video packet of these frames late: after the next frame's packets (reordering). */
  readonly lateFrames = new Set<number>();
  /** Send the first two video packets of these frames swapped. */
  readonly swapFrames = new Set<number>();
  /** Send every video packet of these frames twice. */
  readonly duplicateFrames = new Set<number>();
  /**
   * Whether its sessions can hold packets while nobody watches (`UpstreamSession.holdDelivery`), as
   * the RTSP session's native UDP receivers do; `holdCalls` records what the Source asked for.
   */
  supportsHold = false;
  readonly holdCalls: number[] = [];
  /** Packets held (with their arrival time) while `holdDelivery` is on. */
  readonly held: Array<{ track: number; packet: Buffer; at: number }> = [];
  private holding = false;
  private lateVideoPacket: Buffer | undefined;
  private packetCount = 0;

  constructor(private readonly time: FakeTime, readonly accessUnits: Buffer[][]) {}

  get tracks(): TrackDescription[] {
    const sps = this.accessUnits.flat().find((n) => (n[0]! & 0x1f) === 7)!;
    const pps = this.accessUnits.flat().find((n) => (n[0]! & 0x1f) === 8)!;
    const video: TrackDescription = {
      kind: 'video', codec: 'H264', payloadType: 96, clockRate: 90000, controlUrl: 'rtsp://cam/stream=0',
      fmtp: { 'packetization-mode': '1' },
    };
    if (this.withSprop) video.parameterSets = [sps, pps];
    const tracks = [video];
    if (this.withAudio) tracks.push({ kind: 'audio', codec: 'PCMU', payloadType: 0, clockRate: 8000, fmtp: {}, controlUrl: 'rtsp://cam/stream=1' });
    return tracks;
  }

  readonly factory: UpstreamFactory = (handlers, signal) => {
    this.attempts++;
    this.signals.push(signal);
    const outcome = this.script.shift() ?? { kind: 'ok' };
    return new Promise<UpstreamSession>((resolve, reject) => {
      const settle = (): void => {
        if (outcome.kind === 'hang') return;
        if (outcome.kind === 'reject') {
          reject(outcome.error);
          return;
        }
        const fed: UpstreamHandlers = this.supportsHold ? { ...handlers, onRtp: (track, packet) => this.feed(handlers, track, packet) } : handlers;
        this.handlers = fed;
        this.signal = signal;
        this.holding = false;
        const session: UpstreamSession = {
          tracks: this.tracks,
          close: async () => {
            this.closes++;
            this.held.length = 0;
            if (this.handlers === fed) this.handlers = undefined;
          },
        };
        if (this.supportsHold) {
          session.holdDelivery = (everyMs) => {
            this.holdCalls.push(everyMs);
            if (everyMs === 0) this.flushHeld(handlers);
            this.holding = everyMs > 0;
          };
          session.flushDelivery = () => this.flushHeld(handlers);
        }
        resolve(session);
      };
      if (this.connectDelayMs > 0) this.time.setTimeout(settle, this.connectDelayMs);
      else settle();
    });
  };

  private feed(handlers: UpstreamHandlers, track: number, packet: Buffer): void {
    if (this.holding) this.held.push({ track, packet, at: this.time.clock() });
    else handlers.onRtp(track, packet, 0);
  }

  private flushHeld(handlers: UpstreamHandlers): void {
    const now = this.time.clock();
    for (const { track, packet, at } of this.held.splice(0)) handlers.onRtp(track, packet, now - at);
  }

  /** Sends the next access unit's packets (and, with audio, 40 ms of PCMU) without moving time. */
  sendFrame(): void {
    const handlers = this.handlers;
    if (!handlers) return;
    const units = this.accessUnits[this.frameIndex % this.accessUnits.length]!;
    const frame = this.frameIndex;
    this.frameIndex++;
    const packets: Buffer[] = [];
    for (const [index, p] of packetizeH264(units, 1400).entries()) {
      const packet = serializeRtp({ marker: p.marker, payloadType: 96, sequenceNumber: this.sequence, timestamp: this.timestamp, ssrc: this.ssrc }, p.payload);
      this.sequence = (this.sequence + 1) & 0xffff;
      this.packetCount++;
      if (this.dropEvery > 0 && this.packetCount % this.dropEvery === 0) continue;
      if (index === 0 && this.damageFrames.has(frame)) continue;
      packets.push(packet);
    }
    const late = this.lateVideoPacket;
    this.lateVideoPacket = this.lateFrames.has(frame) ? packets.shift() : undefined;
    if (this.swapFrames.has(frame) && packets.length >= 2) packets.splice(0, 2, packets[1]!, packets[0]!);
    for (const packet of packets) {
      handlers.onRtp(0, packet);
      if (this.duplicateFrames.has(frame)) handlers.onRtp(0, Buffer.from(packet));
    }
    if (late) handlers.onRtp(0, late);
    this.timestamp = (this.timestamp + 3600) >>> 0;
    if (this.withAudio) {
      for (let i = 0; i < 2; i++) {
        handlers.onRtp(1, serializeRtp({ marker: false, payloadType: 0, sequenceNumber: this.audioSequence, timestamp: this.audioTimestamp, ssrc: this.audioSsrc }, Buffer.alloc(160, 0xff)));
        this.audioSequence = (this.audioSequence + 1) & 0xffff;
        this.audioTimestamp = (this.audioTimestamp + 160) >>> 0;
      }
    }
  }

  /** Plays `frames` frames at 25 fps in fake time. */
  async play(frames: number): Promise<void> {
    for (let i = 0; i < frames; i++) {
      this.sendFrame();
      await this.time.advance(40);
    }
  }

  /** Seeks to the first frame after the next keyframe boundary minus `beforeKeyframe` frames. */
  seekBeforeKeyframe(beforeKeyframe: number): void {
    const gop = this.accessUnits.findIndex((au, i) => i > 0 && au.some((n) => (n[0]! & 0x1f) === 5));
    this.frameIndex = gop - beforeKeyframe;
  }

  /** The camera reboots: new SSRC and random bases, stream starts at an IDR. */
  reboot(): void {
    this.ssrc = (this.ssrc + 0x1111) >>> 0;
    this.sequence = 12345;
    this.timestamp = 777;
    this.audioSsrc = (this.audioSsrc + 0x1111) >>> 0;
    this.audioSequence = 4242;
    this.audioTimestamp = 99;
    this.frameIndex = 0;
  }

  /** The connection breaks. */
  drop(error = new Error('connection reset by camera')): void {
    const handlers = this.handlers;
    this.handlers = undefined;
    handlers?.onClose(error);
  }
}
