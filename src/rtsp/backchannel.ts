import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { writeRtpHeaderAt, RTP_HEADER_LENGTH } from '../media/rtp.js';
import { every, realTimers, type TimerSeam } from '../media/timers.js';
import { redactingLogger, type Logger } from '../util/logger.js';
import { RtspConnection, type RtspResponse } from './connection.js';
import { readDescribedSdp } from './describe.js';
import { RtspError, RtspErrorFactory } from './errors.js';
import { parseSdp, STATIC_PAYLOAD_TYPES, type SessionDescription } from './sdp.js';
import { DEFAULT_TIMEOUTS } from './session.js';
import {
  DEFAULT_SESSION_TIMEOUT_S,
  describeFollowingRedirects,
  keepaliveIntervalMs,
  keepaliveMethodFor,
  sendKeepalive,
  sessionFromSetup,
  teardownBestEffort,
  type KeepaliveMethod,
} from './session-steps.js';
import { parseTransport, tcpTransport } from './transport-header.js';
import { resolveControlUrl, type RtspEndpoint, type RtspTarget } from './url.js';

/**
 * The RTSP half of two-way audio: an ONVIF back-channel session (ONVIF Streaming Specification,
 * "Back channel connection") that sends G.711 to the camera's speaker.
 *
 * OPTIONS; DESCRIBE with `Require: www.onvif.org/ver20/backchannel`, whose SDP then carries the
 * back-channel as an audio section marked `sendonly` (from the camera's point of view); SETUP of
 * that one section, interleaved on the control connection; PLAY; then RTP packets of 20 ms as `$`
 * frames. Every request after OPTIONS carries the Require header: cameras want it on each. A camera
 * without a back-channel answers 551 Option not supported, or leaves the section out:
 * `NoBackchannelError`. Everything else fails as the playback client does (`RtspError`, the same
 * codes, messages without credentials), through the same connection and steps (`session-steps.ts`).
 */

/** The ONVIF feature tag for the audio back-channel. */
export const BACKCHANNEL_REQUIREMENT = 'www.onvif.org/ver20/backchannel';

export interface BackchannelFormat {
  encoding: 'PCMU' | 'PCMA';
  payloadType: number;
  clockRate: number;
}

export interface BackchannelTimeouts {
  connectMs: number;
  requestMs: number;
  teardownMs: number;
}

export interface RtspBackchannelOptions {
  /** The camera URL without credentials, and the credentials as separate fields (`rtspEndpoint`). */
  endpoint: RtspEndpoint;
  /** Names the camera in every error. */
  cameraName: string;
  /** Every line goes through a redacting wrapper with the endpoint's secrets. */
  logger: Logger;
  timeouts?: Partial<BackchannelTimeouts>;
  /** Monotonic clock in ms (default performance.now): RTP timestamps across pauses. */
  now?: () => number;
  /** Timers for the keep-alive (default the real ones, not keeping the process alive). */
  timers?: TimerSeam;
  /** Called once if the camera ends the open session or the connection fails (not after `close()`). */
  onClosed?: (error: Error) => void;
}

/** Thrown by `open()` when the camera has no back-channel this client can talk into. */
export class NoBackchannelError extends Error {
  override readonly name = 'NoBackchannelError';
  readonly camera: string;

  constructor(camera: string, detail: string) {
    super(`Camera "${camera}" has no audio back-channel to talk into: ${detail}`);
    this.camera = camera;
  }
}

/** What `chooseBackchannel` found in an SDP. */
export type BackchannelChoice =
  | { found: true; format: BackchannelFormat; mediaIndex: number; control?: string }
  | { found: false; reason: string };

/**
 * The back-channel of an SDP (a DESCRIBE answer to a request with the ONVIF Require): the first
 * audio section marked `sendonly`, in its first format that is PCMU or PCMA at 8 kHz (mono). A
 * camera may list several back-channel sections or formats; any other codec is named in `reason`.
 * Throws `SdpError` when given text that is not SDP.
 */
export function chooseBackchannel(sdp: SessionDescription | string): BackchannelChoice {
  const description = typeof sdp === 'string' ? parseSdp(sdp) : sdp;
  const offered: string[] = [];
  let sections = 0;
  for (const [mediaIndex, media] of description.media.entries()) {
    if (media.media !== 'audio' || media.direction !== 'sendonly') continue;
    sections++;
    for (const fmt of media.formats) {
      if (!/^\d{1,3}$/.test(fmt)) continue;
      const payloadType = Number(fmt);
      const map = media.rtpmaps.get(payloadType) ?? (payloadType < 96 ? STATIC_PAYLOAD_TYPES.get(payloadType) : undefined);
      if (!map) {
        offered.push(`payload type ${payloadType}`);
        continue;
      }
      const encoding = map.encoding.toUpperCase();
      if ((encoding === 'PCMU' || encoding === 'PCMA') && map.clockRate === 8000 && (map.channels ?? 1) === 1) {
        const format: BackchannelFormat = { encoding, payloadType, clockRate: 8000 };
        return { found: true, format, mediaIndex, ...(media.control !== undefined ? { control: media.control } : {}) };
      }
      offered.push(`${map.encoding}/${map.clockRate}${map.channels && map.channels > 1 ? `/${map.channels}` : ''}`);
    }
  }
  if (sections === 0) return { found: false, reason: 'the camera describes no back-channel (no sendonly audio section)' };
  const list = offered.length > 0 ? offered.join(', ') : 'no format at all';
  return { found: false, reason: `the back-channel takes ${list}, not G.711 (PCMU or PCMA at 8000 Hz), the only formats sent to cameras` };
}

/** 20 ms at 8 kHz, one byte per G.711 sample. */
const SAMPLES_PER_PACKET = 160;
const SAMPLES_PER_MS = 8;
/** Audio arriving later than this after the end of the audio sent before starts a new talk spurt. */
const GAP_MS = 200;
/** Sent bytes still waiting for a full packet are kept at most this long (a second of sound). */
const MAX_PENDING_BYTES = 8000;

type State = 'opening' | 'open' | 'closing' | 'closed';

export class RtspBackchannel {
  private readonly errors: RtspErrorFactory;
  private readonly log: Logger;
  private readonly timeouts: BackchannelTimeouts;
  private readonly now: () => number;
  private readonly clock: TimerSeam;
  private readonly require = { Require: BACKCHANNEL_REQUIREMENT };
  private target: RtspTarget;
  private connection: RtspConnection | undefined;
  private state: State = 'opening';
  private chosen: BackchannelFormat | undefined;
  private channel = 0;
  private sessionId: string | undefined;
  private sessionTimeoutS = DEFAULT_SESSION_TIMEOUT_S;
  private aggregateUrl = '';
  private keepaliveMethod: KeepaliveMethod = 'OPTIONS';
  private keepaliveInFlight = false;
  private stopKeepalive: (() => void) | undefined;
  private lostWhileOpening: RtspError | undefined;
  private closePromise: Promise<void> | undefined;

  // RTP
  private readonly ssrc = randomBytes(4).readUInt32BE(0);
  private sequence = randomBytes(2).readUInt16BE(0);
  private timestamp = randomBytes(4).readUInt32BE(0);
  /** When the audio sent so far ends, on the `now` clock, had it been played as it was sent. */
  private audioEndsAt: number | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private sent = 0;
  private dropped = 0;
  private framesFromCamera = 0;

  private constructor(private readonly options: RtspBackchannelOptions) {
    const { endpoint } = options;
    this.target = endpoint.target;
    this.errors = new RtspErrorFactory(options.cameraName, endpoint.shownUrl, endpoint.secrets);
    this.log = redactingLogger(options.logger, new Set(endpoint.secrets));
    this.timeouts = {
      connectMs: options.timeouts?.connectMs ?? DEFAULT_TIMEOUTS.connectMs,
      requestMs: options.timeouts?.requestMs ?? DEFAULT_TIMEOUTS.requestMs,
      teardownMs: options.timeouts?.teardownMs ?? DEFAULT_TIMEOUTS.teardownMs,
    };
    this.now = options.now ?? (() => performance.now());
    this.clock = options.timers ?? realTimers;
  }

  /**
   * Opens a back-channel session, ready for `sendAudio`. Rejects with `NoBackchannelError` when the
   * camera has none this client can use, otherwise with an `RtspError`; nothing stays open then.
   */
  static async open(options: RtspBackchannelOptions): Promise<RtspBackchannel> {
    const backchannel = new RtspBackchannel(options);
    await backchannel.start();
    return backchannel;
  }

  /** The G.711 law and payload type the camera takes. */
  get format(): BackchannelFormat {
    if (!this.chosen) throw new Error('the back-channel is not open');
    return this.chosen;
  }

  /** RTP packets written to the camera so far. */
  get packetsSent(): number {
    return this.sent;
  }

  /**
   * G.711 bytes at 8 kHz (any length), in the law of `format`; sent as RTP in 20 ms (160-byte)
   * packets over the interleaved TCP channel. Bytes short of a packet wait for the next call. Never
   * throws; drops when not open. The caller paces it in real time: nothing here buffers for a
   * smooth play-out, and a pause of more than 200 ms starts a new talk spurt (marker bit, the RTP
   * timestamp moved on by the pause).
   */
  sendAudio(g711: Buffer): void {
    if (this.state !== 'open' || !this.connection?.alive) {
      this.dropped += g711.length;
      return;
    }
    try {
      const data = this.pending.length > 0 ? Buffer.concat([this.pending, g711]) : g711;
      let offset = 0;
      while (data.length - offset >= SAMPLES_PER_PACKET) {
        this.sendPacket(data.subarray(offset, offset + SAMPLES_PER_PACKET));
        offset += SAMPLES_PER_PACKET;
      }
      // Copied: the caller may reuse its buffer.
      const rest = data.subarray(offset);
      this.pending = rest.length > MAX_PENDING_BYTES ? Buffer.from(rest.subarray(rest.length - MAX_PENDING_BYTES)) : Buffer.from(rest);
    } catch (err) {
      this.log.debug(`back-channel: a packet could not be sent: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Resolves when TEARDOWN is sent (best effort) and the socket is closed. */
  close(): Promise<void> {
    this.closePromise ??= this.shutdown();
    return this.closePromise;
  }

  // ---------------------------------------------------------------- opening

  private async start(): Promise<void> {
    try {
      if (this.target.secure) throw this.errors.create('unsupported', 'rtsps:// (RTSP over TLS) is not supported; use rtsp://');
      const described = await this.describe();
      this.keepaliveMethod = keepaliveMethodFor(described.publicMethods);
      const { sdp, baseUrl, aggregateUrl } = readDescribedSdp(described.describe, this.errors, this.log);
      this.aggregateUrl = aggregateUrl;
      const choice = chooseBackchannel(sdp);
      if (!choice.found) throw new NoBackchannelError(this.options.cameraName, this.errors.clean(choice.reason));
      await this.setup(resolveControlUrl(baseUrl, choice.control), choice.format);
      await this.play();
      // E.g. the camera hung up right after answering PLAY: not an open session.
      if (this.lostWhileOpening) throw this.lostWhileOpening;
    } catch (err) {
      await this.release();
      if (err instanceof RtspError || err instanceof NoBackchannelError) throw err;
      throw this.errors.create('protocol', `unexpected failure: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.state = 'open';
    this.stopKeepalive = every(this.clock, keepaliveIntervalMs(this.sessionTimeoutS), () => void this.keepalive());
    const format = this.format;
    const auth = this.connection?.authDescription ? ` (${this.connection.authDescription})` : '';
    this.log.info(`back-channel open: talking in ${format.encoding}/${format.clockRate} over TCP${auth}`);
  }

  private async describe() {
    try {
      return await describeFollowingRedirects(this.target, {
        errors: this.errors,
        log: this.log,
        maxRedirects: 5,
        describeHeaders: this.require,
        connect: async (next) => {
          this.connection?.close();
          this.connection = undefined;
          this.target = next;
          this.connection = await RtspConnection.open(this.connectionOptions(next));
          return this.connection;
        },
      });
    } catch (err) {
      throw this.unsupportedOption(err) ?? err;
    }
  }

  /** 551 Option not supported: the camera does not know the back-channel Require. */
  private unsupportedOption(err: unknown): NoBackchannelError | undefined {
    if (!(err instanceof RtspError) || err.status !== 551) return undefined;
    return new NoBackchannelError(this.options.cameraName, `the camera answered ${err.method ?? 'a request'} with 551 Option not supported (it does not offer the ONVIF back-channel)`);
  }

  private connectionOptions(target: RtspTarget) {
    const credentials = this.options.endpoint.credentials;
    return {
      target,
      errors: this.errors,
      logger: this.log,
      ...(credentials ? { credentials } : {}),
      connectTimeoutMs: this.timeouts.connectMs,
      requestTimeoutMs: this.timeouts.requestMs,
      userAgent: 'homebridge-webrtc-cameras',
      // The camera may send RTCP (or anything) on the channels; nothing here needs it.
      onInterleaved: () => {
        this.framesFromCamera++;
      },
      onLost: (err: RtspError) => this.onConnectionLost(err),
    };
  }

  private async setup(controlUrl: string, format: BackchannelFormat): Promise<void> {
    const conn = this.requireConnection();
    const response = await conn.request('SETUP', controlUrl, { headers: { Transport: tcpTransport([0, 1]), ...this.require } });
    this.check('SETUP', response);
    const { id, timeoutS } = sessionFromSetup(response, this.sessionId, this.errors, this.log);
    this.sessionId = id;
    if (timeoutS !== undefined) this.sessionTimeoutS = timeoutS;
    const answered = parseTransport(response.headers.get('transport') ?? '');
    this.channel = answered.interleaved?.[0] ?? 0;
    this.chosen = format;
  }

  private async play(): Promise<void> {
    const conn = this.requireConnection();
    const response = await conn.request('PLAY', this.aggregateUrl, { headers: { Session: this.sessionId ?? '', ...this.require } });
    this.check('PLAY', response);
  }

  private check(method: string, response: RtspResponse): void {
    if (response.status >= 200 && response.status < 300) return;
    const error = this.errors.fromStatus(method, response.status, response.reason);
    throw this.unsupportedOption(error) ?? error;
  }

  private requireConnection(): RtspConnection {
    if (!this.connection) throw this.errors.create('transport', 'not connected');
    return this.connection;
  }

  // ---------------------------------------------------------------- sending

  private sendPacket(payload: Buffer): void {
    const conn = this.connection;
    if (!conn) return;
    const now = this.now();
    let marker = false;
    if (this.audioEndsAt === undefined) {
      marker = true;
    } else if (now - this.audioEndsAt > GAP_MS) {
      // A pause in the talk: the timestamp moves on by it, so the camera plays the gap as silence.
      marker = true;
      this.timestamp = (this.timestamp + Math.round((now - this.audioEndsAt) * SAMPLES_PER_MS)) >>> 0;
    }
    // Audio that comes early (a burst) queues behind what was sent; late audio starts now.
    this.audioEndsAt = Math.max(this.audioEndsAt ?? now, now) + payload.length / SAMPLES_PER_MS;
    const packet = Buffer.allocUnsafe(RTP_HEADER_LENGTH + payload.length);
    writeRtpHeaderAt(packet, 0, marker, this.format.payloadType, this.sequence, this.timestamp, this.ssrc);
    payload.copy(packet, RTP_HEADER_LENGTH);
    this.sequence = (this.sequence + 1) & 0xffff;
    this.timestamp = (this.timestamp + payload.length) >>> 0;
    if (conn.sendInterleaved(this.channel, packet)) this.sent++;
    else this.dropped += payload.length;
  }

  // ---------------------------------------------------------------- keeping alive and ending

  private async keepalive(): Promise<void> {
    const conn = this.connection;
    if (this.state !== 'open' || !conn?.alive || this.keepaliveInFlight) return;
    this.keepaliveInFlight = true;
    try {
      const headers = { Session: this.sessionId ?? '', ...this.require };
      const outcome = await sendKeepalive(conn, this.keepaliveMethod, this.aggregateUrl, headers, this.errors, this.log);
      if (this.state !== 'open') return;
      this.keepaliveMethod = outcome.next;
      if (outcome.failed) this.log.debug(outcome.failed);
      if (outcome.sessionLost) this.fail(outcome.sessionLost);
    } finally {
      this.keepaliveInFlight = false;
    }
  }

  private onConnectionLost(err: RtspError): void {
    if (this.state === 'opening') {
      // A pending request fails with this error too; after PLAY's answer nothing is pending.
      this.lostWhileOpening ??= err;
      return;
    }
    if (this.state === 'open') this.fail(err);
  }

  /** The camera ended the session or the connection failed: release and tell the caller once. */
  private fail(error: RtspError): void {
    if (this.state !== 'open') return;
    this.log.warn(`back-channel ended: ${error.message}`);
    this.closePromise = this.release();
    // Once: `release()` leaves the 'open' state, which the check above requires.
    this.options.onClosed?.(error);
  }

  private async shutdown(): Promise<void> {
    if (this.state === 'closed') return;
    await this.release();
    if (this.sent > 0 || this.dropped > 0) {
      this.log.debug(`back-channel closed: ${this.sent} packets sent, ${this.dropped} bytes dropped, ${this.framesFromCamera} frames from the camera ignored`);
    }
  }

  /** Stops the keep-alive, sends TEARDOWN when there is a session, closes the socket. */
  private async release(): Promise<void> {
    this.state = 'closing';
    this.stopKeepalive?.();
    this.stopKeepalive = undefined;
    this.pending = Buffer.alloc(0);
    if (this.sessionId) {
      await teardownBestEffort(this.connection, this.aggregateUrl || this.target.url, { Session: this.sessionId, ...this.require }, this.timeouts.teardownMs, this.log);
    }
    this.connection?.close();
    this.state = 'closed';
  }
}
