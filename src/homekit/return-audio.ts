/**
 * The Home app's microphone (two-way audio): the Opus a Home app live view sends back on the
 * audio port, handed to the camera's talk channel, the same floor the watch page's Hold to talk
 * uses, so a Home app talker and a browser talker never speak over each other.
 *
 * - Only sound takes and holds the floor. A live view with its microphone muted may go on sending
 *   silence; libopus codes digital silence as 3-8 byte packets, a quiet room as 40 and more. If
 *   silence counted, one open live view would keep the family's browsers from the speaker for as
 *   long as it stays open; this way the floor's idle rule releases it 5 s after the last word.
 * - The RTP clock. RFC 7587 runs Opus RTP at 48 kHz whatever the sample rate, but HomeKit
 *   implementations are known to stamp it at the negotiated rate (16 or 24 kHz). Which one a
 *   controller uses is read off the packets themselves: the timestamp step between two consecutive
 *   packets against the samples the first one holds (its TOC byte says, on the 48 kHz scale). The
 *   talk channel gets 48 kHz timestamps either way, so a lost packet or a pause is filled with
 *   the right amount of silence.
 */
import type { TalkChannel, TalkHolder, TalkTurn } from '../media/talk-channel.js';
import { opusPacketSamples } from '../media/ogg.js';
import { timestampDelta } from '../media/rtp.js';
import type { Logger } from '../util/logger.js';

/** libopus codes digital silence in 3 (audio) to 8 (voip) bytes; anything this small is no voice. */
export const SILENT_OPUS_MAX_BYTES = 10;
/** After a busy floor or a lost turn, the next try waits this long (ms), so a busy floor is not asked 50 times a second. */
const RETRY_MS = 1000;
/** The clocks a controller may stamp Opus with, as 48 kHz ticks per tick. */
const CLOCK_SCALES = [1, 2, 3] as const;

export interface ReturnAudioPacket {
  payload: Buffer;
  timestamp: number;
  sequenceNumber: number;
}

export interface ReturnAudioOptions {
  talk: TalkChannel;
  holder: TalkHolder;
  /** The sample rate START negotiated (Hz): the clock assumed until the packets tell. */
  sampleRateHz: number;
  log: Logger;
  /** Monotonic ms (default performance.now). */
  now?: () => number;
}

export interface ReturnAudioStats {
  packets: number;
  /** Packets passed to the talk channel. */
  forwarded: number;
  /** Packets with sound that arrived while someone else held the floor. */
  refused: number;
  /** Packets that are not Opus (no TOC byte, a code-3 packet without its count). */
  malformed: number;
}

export class ReturnAudio {
  readonly stats: ReturnAudioStats = { packets: 0, forwarded: 0, refused: 0, malformed: 0 };
  private turn: TalkTurn | undefined;
  private retryAt = 0;
  private busyWith: string | undefined;
  private closed = false;
  /** 48 kHz ticks per tick of the controller's clock, once known. */
  private scale: number | undefined;
  private previous: { sequenceNumber: number; timestamp: number; samples: number } | undefined;
  /** The last packet's timestamp on the 48 kHz scale, unwrapped into a JS number. */
  private out48 = 0;
  private readonly now: () => number;

  constructor(private readonly options: ReturnAudioOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  /** The controller's clock rate as read off its packets, in Hz; undefined until two consecutive ones came. */
  get clockRateHz(): number | undefined {
    return this.scale === undefined ? undefined : 48_000 / this.scale;
  }

  packet(packet: ReturnAudioPacket): void {
    if (this.closed) return;
    this.stats.packets++;
    let samples: number;
    try {
      samples = opusPacketSamples(packet.payload);
    } catch {
      this.stats.malformed++;
      return;
    }
    const timestamp48 = this.toClock48(packet, samples);
    if (packet.payload.length <= SILENT_OPUS_MAX_BYTES) return;
    const turn = this.turn ?? this.takeFloor();
    if (!turn) {
      this.stats.refused++;
      return;
    }
    this.stats.forwarded++;
    turn.voice(packet.payload, timestamp48 >>> 0);
  }

  /** The stream ended: let go of the floor. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.turn?.release();
    this.turn = undefined;
  }

  private toClock48(packet: ReturnAudioPacket, samples: number): number {
    const previous = this.previous;
    this.previous = { sequenceNumber: packet.sequenceNumber, timestamp: packet.timestamp, samples };
    if (!previous) return this.out48;
    const step = timestampDelta(previous.timestamp, packet.timestamp);
    if (this.scale === undefined && ((previous.sequenceNumber + 1) & 0xffff) === packet.sequenceNumber && step > 0 && previous.samples > 0) {
      const measured = previous.samples / step;
      const match = CLOCK_SCALES.find((scale) => Math.abs(measured - scale) / scale < 0.05);
      if (match !== undefined) {
        this.scale = match;
        this.options.log.debug(`the Home app's microphone: Opus RTP clock ${48_000 / match} Hz`);
      }
    }
    const scale = this.scale ?? Math.max(1, Math.round(48_000 / this.options.sampleRateHz));
    this.out48 += step * scale;
    return this.out48;
  }

  private takeFloor(): TalkTurn | undefined {
    const now = this.now();
    if (now < this.retryAt) return undefined;
    const result = this.options.talk.take(this.options.holder, (message) => {
      this.turn = undefined;
      this.retryAt = this.now() + RETRY_MS;
      this.options.log.info(`the Home app's microphone no longer reaches the camera: ${message}`);
    });
    if ('busy' in result) {
      this.retryAt = now + RETRY_MS;
      if (this.busyWith !== result.busy) this.options.log.info(`the Home app's microphone is not passed on: ${result.busy} is talking`);
      this.busyWith = result.busy;
      return undefined;
    }
    this.busyWith = undefined;
    this.turn = result;
    this.options.log.info('the Home app talks through the camera');
    return result;
  }
}
