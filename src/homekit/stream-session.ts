/**
 * One Home app viewer: the UDP sockets advertised in SetupEndpoints, the SRTP relay, and the
 * ffmpeg that reads the camera's loopback re-stream. It restarts its ffmpeg when that helps (a new
 * bitrate on RECONFIGURE, a failed hardware encoder or audio encoder, a re-stream hiccup; a probe
 * that was too short is RestreamFfmpeg's to retry) and otherwise ends with one log line that says
 * why, in ffmpeg's own words.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { FfmpegCapabilities } from '../ffmpeg/capabilities.js';
import { describeDiagnosis, diagnoseFfmpeg } from '../ffmpeg/ffmpeg-diagnosis.js';
import { RestreamFfmpeg, type FfmpegExit } from '../ffmpeg/ffmpeg-process.js';
import { homeKitStreamArgs, type AudioArgs, type H264LevelName, type H264ProfileName, type VideoArgs } from '../ffmpeg/homekit-args.js';
import type { InputProbe } from '../ffmpeg/input-probe.js';
import type { TalkChannel } from '../media/talk-channel.js';
import type { Logger } from '../util/logger.js';
import { bindUdpSocket } from '../util/udp.js';
import { ReturnAudio } from './return-audio.js';
import { SrtpRelay } from './srtp-relay.js';
import { planVideo, samePlan, type CameraVideoInfo, type RequestedVideo } from './stream-plan.js';
import type { HomeKitAudioCodec } from './streaming-options.js';

/** The parts of HAP's PrepareStreamRequest a session needs (HAP's type satisfies it). */
export interface PrepareRequest {
  sessionID: string;
  sourceAddress: string;
  targetAddress: string;
  video: { port: number; srtp_key: Buffer; srtp_salt: Buffer };
  audio: { port: number; srtp_key: Buffer; srtp_salt: Buffer };
}

/** Our answer: the ports the controller sends RTCP to, our SSRCs, and the SRTP key we encrypt with. */
export interface PrepareAnswer {
  video: { port: number; ssrc: number; srtp_key: Buffer; srtp_salt: Buffer };
  audio: { port: number; ssrc: number; srtp_key: Buffer; srtp_salt: Buffer };
}

/** START's parameters, decoded from HAP's enums. */
export interface StartParameters {
  video: RequestedVideo & { payloadType: number; mtu: number; rtcpIntervalMs: number };
  audio: {
    codec: HomeKitAudioCodec | 'other';
    sampleRateHz: number;
    channels: number;
    bitrateKbps: number;
    vbr: boolean;
    packetTimeMs: number;
    payloadType: number;
  };
}

export interface StreamSessionDeps {
  ffmpeg: FfmpegCapabilities;
  /** The camera's loopback re-stream URL (asked at each ffmpeg start: the port could change). */
  inputUrl(): string;
  /** What the Source knows of the camera's video right now. */
  cameraVideo(): CameraVideoInfo;
  /** Whether the camera has an audio track worth encoding (unknown: true). */
  cameraHasAudio(): boolean;
  videoEncoder: string;
  encoderArgs: readonly string[];
  /** Audio codecs offered to HomeKit; a request for another is streamed without audio. */
  audioCodecs: readonly HomeKitAudioCodec[];
  debug: boolean;
  log: Logger;
  /** No RTCP from the Home app for this long stops the stream. */
  silenceTimeoutMs: number;
  /**
   * The camera's speaker (two-way audio, `twoWayAudio`): the Opus a live view sends back goes to
   * it. Without it, what the Home app sends is only a sign of life.
   */
  talk?: TalkChannel;
}

export interface StreamSessionEvents {
  /** The session ended on its own (ffmpeg failed for good, or the controller went silent). */
  ended: [reason: string];
}

/** SRTP adds a 10-byte authentication tag to every packet; ffmpeg's packets must leave room for it. */
const SRTP_TAG_BYTES = 10;
/** Restarts after a stream that had been running fine (a re-stream hiccup), per session. */
const MAX_TRANSIENT_RESTARTS = 3;
const RAN_FINE_MS = 5000;

async function bindUdp(address: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  await bindUdpSocket(socket, address);
  // A late ICMP "port unreachable" (the Home app left) must not become an uncaught error.
  socket.on('error', () => undefined);
  return socket;
}

/** HAP's SSRCs are 32-bit, never 0. */
function newSsrc(): number {
  return randomInt(1, 0x7fffffff);
}

export class HomeKitStreamSession extends EventEmitter<StreamSessionEvents> {
  readonly id: string;
  readonly shortId: string;
  private relay: SrtpRelay | undefined;
  private returnAudio: ReturnAudio | undefined;
  private ffmpeg: RestreamFfmpeg | undefined;
  private start: StartParameters | undefined;
  private video: VideoArgs | undefined;
  private audioOn = true;
  private encoder: string;
  private encoderArgs: readonly string[];
  private transientRestarts = 0;
  /** The last start's probe: once ffmpeg needed the thorough one, later starts keep it. */
  private probe: InputProbe = 'fast';
  private stopped = false;
  private startedAt = 0;
  private readonly log: Logger;

  private constructor(
    private readonly deps: StreamSessionDeps,
    private readonly request: PrepareRequest,
    private readonly sockets: { video: dgram.Socket; audio: dgram.Socket },
    readonly answer: PrepareAnswer,
  ) {
    super();
    this.id = request.sessionID;
    this.shortId = request.sessionID.slice(0, 8);
    this.encoder = deps.videoEncoder;
    this.encoderArgs = deps.encoderArgs;
    const log = deps.log;
    const tag = `Home app stream ${this.shortId}`;
    this.log = {
      info: (m, ...p) => log.info(`${tag}: ${m}`, ...p),
      warn: (m, ...p) => log.warn(`${tag}: ${m}`, ...p),
      error: (m, ...p) => log.error(`${tag}: ${m}`, ...p),
      debug: (m, ...p) => log.debug(`${tag}: ${m}`, ...p),
    };
  }

  /** SetupEndpoints: bind the two ports we advertise and pick our SSRCs. */
  static async prepare(request: PrepareRequest, deps: StreamSessionDeps): Promise<HomeKitStreamSession> {
    const video = await bindUdp(request.sourceAddress);
    let audio: dgram.Socket;
    try {
      audio = await bindUdp(request.sourceAddress);
    } catch (error) {
      video.close();
      throw error;
    }
    const answer: PrepareAnswer = {
      // We encrypt with the key the controller gave us, so we hand the same one back.
      video: { port: video.address().port, ssrc: newSsrc(), srtp_key: request.video.srtp_key, srtp_salt: request.video.srtp_salt },
      audio: { port: audio.address().port, ssrc: newSsrc(), srtp_key: request.audio.srtp_key, srtp_salt: request.audio.srtp_salt },
    };
    return new HomeKitStreamSession(deps, request, { video, audio }, answer);
  }

  get running(): boolean {
    return !this.stopped && this.ffmpeg !== undefined;
  }

  /** ms from START to the first video packet, once sent. */
  get firstPacketMs(): number | undefined {
    return this.relay?.firstVideoPacketMs;
  }

  /** START: build the relay and start ffmpeg. Resolves once ffmpeg is spawned (not when it sends). */
  async begin(parameters: StartParameters): Promise<void> {
    if (this.stopped) throw new Error('the stream was already stopped');
    this.start = parameters;
    const audioCodec = parameters.audio.codec;
    this.audioOn = audioCodec !== 'other' && this.deps.audioCodecs.includes(audioCodec) && this.deps.cameraHasAudio();
    const audioClock = audioCodec === 'opus' ? 48_000 : parameters.audio.sampleRateHz; // RFC 7587: Opus RTP always runs at 48 kHz
    // The Home app's microphone, when the camera has a speaker: Opus only (what the talk channel takes).
    const talk = this.deps.talk;
    const returnAudio = talk && audioCodec === 'opus'
      ? new ReturnAudio({ talk, holder: { id: `homekit-${this.id}`, name: 'the Home app' }, sampleRateHz: parameters.audio.sampleRateHz, log: this.log })
      : undefined;
    this.returnAudio = returnAudio;
    this.relay = await SrtpRelay.create({
      video: {
        kind: 'video',
        socket: this.sockets.video,
        target: { address: this.request.targetAddress, port: this.request.video.port },
        key: this.request.video.srtp_key,
        salt: this.request.video.srtp_salt,
        ssrc: this.answer.video.ssrc,
        payloadType: parameters.video.payloadType,
        clockRate: 90_000,
      },
      audio: {
        kind: 'audio',
        socket: this.sockets.audio,
        target: { address: this.request.targetAddress, port: this.request.audio.port },
        key: this.request.audio.srtp_key,
        salt: this.request.audio.srtp_salt,
        ssrc: this.answer.audio.ssrc,
        payloadType: parameters.audio.payloadType,
        clockRate: audioClock,
        ...(returnAudio ? { onIncomingRtp: (packet) => returnAudio.packet(packet) } : {}),
      },
      rtcpIntervalMs: parameters.video.rtcpIntervalMs,
      silenceTimeoutMs: this.deps.silenceTimeoutMs,
    });
    if (this.stopped) {
      this.relay.close();
      return;
    }
    this.relay.on('first-packet', (kind, ms) => this.log.debug(`first ${kind} packet ${Math.round(ms)} ms after START`));
    this.relay.on('controller-silent', (ms) => {
      this.log.info(`no RTCP from the Home app for ${(ms / 1000).toFixed(0)} s: stopping the stream`);
      this.end('the Home app went silent');
    });
    this.relay.markStart();
    this.startedAt = Date.now();
    this.video = this.plan(parameters.video);
    this.launch();
  }

  /** RECONFIGURE: apply the new size, frame rate and bitrate (restarts ffmpeg only if the plan changes). */
  async reconfigure(video: { width: number; height: number; fps: number; maxBitrateKbps: number }): Promise<void> {
    const start = this.start;
    if (!start || this.stopped) return;
    start.video = { ...start.video, ...video };
    const next = this.plan(start.video);
    if (this.video && samePlan(this.video, next)) {
      this.log.debug(`reconfigure to ${video.width}x${video.height}@${video.fps} ${video.maxBitrateKbps} kbit/s: nothing to change`);
      return;
    }
    this.log.info(`reconfigured to ${video.width}x${video.height}@${video.fps} ${video.maxBitrateKbps} kbit/s`);
    this.video = next;
    await this.restart();
  }

  /** STOP (or shutdown): kill ffmpeg, close the relay and the sockets. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const ffmpeg = this.ffmpeg;
    this.ffmpeg = undefined;
    if (ffmpeg) await ffmpeg.stop();
    this.relay?.close();
    this.returnAudio?.close();
    for (const socket of [this.sockets.video, this.sockets.audio]) {
      try {
        socket.close();
      } catch {
        // already closed
      }
    }
    if (this.startedAt) {
      const stats = this.relay?.stats();
      this.log.debug(`stopped after ${((Date.now() - this.startedAt) / 1000).toFixed(1)} s, ${stats?.video.packetsSent ?? 0} video and ${stats?.audio?.packetsSent ?? 0} audio packets sent`);
    }
  }

  private plan(request: RequestedVideo): VideoArgs {
    const plan = planVideo(this.deps.cameraVideo(), request, {
      encoder: this.encoder,
      extraArgs: this.encoderArgs,
    });
    this.log.info(`${request.width}x${request.height}@${request.fps} ${request.maxBitrateKbps} kbit/s requested; ${plan.reason}${this.audioOn && this.start ? `; audio ${this.start.audio.codec === 'opus' ? 'Opus' : 'AAC-ELD'} ${this.start.audio.sampleRateHz / 1000} kHz` : '; no audio'}`);
    return plan.args;
  }

  private audioArgs(): AudioArgs | undefined {
    const start = this.start;
    const relay = this.relay;
    if (!start || !relay || !this.audioOn || relay.audioPort === undefined) return undefined;
    const codec = start.audio.codec;
    if (codec === 'other') return undefined;
    return {
      codec,
      sampleRate: start.audio.sampleRateHz,
      bitrateKbps: start.audio.bitrateKbps,
      packetTimeMs: start.audio.packetTimeMs,
      vbr: start.audio.vbr,
      channels: start.audio.channels,
      target: { port: relay.audioPort, payloadType: start.audio.payloadType, ssrc: this.answer.audio.ssrc, packetSize: 1200 },
    };
  }

  private launch(): void {
    const start = this.start;
    const relay = this.relay;
    const video = this.video;
    if (!start || !relay || !video || this.stopped) return;
    const audio = this.audioArgs();
    // Asked at every start, the restart with a longer probe (RestreamFfmpeg's) included.
    const args = (probe: InputProbe): string[] => {
      this.probe = probe;
      relay.newEpoch();
      return homeKitStreamArgs({
        inputUrl: this.deps.inputUrl(),
        video,
        videoTarget: {
          port: relay.videoPort,
          payloadType: start.video.payloadType,
          ssrc: this.answer.video.ssrc,
          packetSize: Math.max(576, start.video.mtu - SRTP_TAG_BYTES),
        },
        ...(audio ? { audio } : {}),
        debug: this.deps.debug,
        probe,
      });
    };
    const ffmpeg = new RestreamFfmpeg({
      ffmpegPath: this.deps.ffmpeg.path,
      args,
      probe: this.probe,
      label: `Home app stream ${this.shortId}`,
      log: this.deps.log,
      debug: this.deps.debug,
    });
    this.ffmpeg = ffmpeg;
    ffmpeg.once('exit', (exit) => {
      if (this.ffmpeg !== ffmpeg) return; // replaced on purpose (restart) or stopped
      this.ffmpeg = undefined;
      this.onFfmpegExit(exit, video, audio);
    });
  }

  private async restart(): Promise<void> {
    const old = this.ffmpeg;
    this.ffmpeg = undefined;
    if (old) await old.stop();
    this.launch();
  }

  private onFfmpegExit(exit: FfmpegExit, video: VideoArgs, audio: AudioArgs | undefined): void {
    if (this.stopped || exit.requested) return;
    const encoder = video.mode === 'copy' ? 'copy' : video.encoder;
    const diagnosis = diagnoseFfmpeg(exit, {
      videoEncoder: encoder,
      ...(audio ? { audioEncoder: audio.codec === 'opus' ? 'libopus' : 'libfdk_aac' } : {}),
      userOptions: video.mode === 'transcode' && video.extraArgs.length > 0,
    });
    const said = describeDiagnosis(diagnosis);
    if (diagnosis.remedy === 'drop-audio' && audio) {
      this.log.warn(`${said} Continuing with video only.`);
      this.audioOn = false;
      this.launch();
      return;
    }
    if (diagnosis.remedy === 'default-video-encoder' && video.mode === 'transcode' && (video.encoder !== 'libx264' || video.extraArgs.length > 0)) {
      this.log.warn(`${said} Retrying with libx264 and no extra encoder options.`);
      this.encoder = 'libx264';
      this.encoderArgs = [];
      this.video = { ...video, encoder: 'libx264', extraArgs: [] };
      this.launch();
      return;
    }
    if (exit.ranMs >= RAN_FINE_MS && this.transientRestarts < MAX_TRANSIENT_RESTARTS) {
      this.transientRestarts++;
      this.log.warn(`ffmpeg stopped after ${(exit.ranMs / 1000).toFixed(0)} s (${said}); restarting it.`);
      this.launch();
      return;
    }
    this.log.error(`failed: ${said}`);
    this.end(diagnosis.cause);
  }

  private end(reason: string): void {
    if (this.stopped) return;
    void this.stop().finally(() => this.emit('ended', reason));
  }
}

/** HAP's profile/level enums (0, 1, 2) as ffmpeg names. */
export function profileName(value: number): H264ProfileName {
  return value === 2 ? 'high' : value === 1 ? 'main' : 'baseline';
}

export function levelName(value: number): H264LevelName {
  return value === 2 ? '4.0' : value === 1 ? '3.2' : '3.1';
}
