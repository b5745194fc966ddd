/**
 * Which camera codecs go to a browser as they are, and how they are described in SDP.
 *
 * H.264 passes through. It is always *offered* as Constrained Baseline 3.1 (42e01f) with
 * packetization-mode=1: Chromium refuses an offer whose only H.264 is High (64xxxx) but decodes a
 * High-profile stream sent under 42e01f (NOTES.md), and the level is not enforced by decoders.
 * PCMU, PCMA and Opus audio pass through. H.265 passes through to a viewer that decodes it (Safari
 * 18 and later, Chrome with a hardware decoder: `planMedia`'s `h265`), described with the camera's
 * own profile, tier and level; other viewers of an H.265 camera are fed from its transcoded H.264
 * or VP8 variant (src/transcode/) when ffmpeg can make one, and those pass through here like the
 * camera's own. AAC audio reaches this plan only when ffmpeg has no libopus or the AAC has no ADTS form
 * (AAC-LD/ELD); otherwise the viewer's Source already says Opus (src/transcode/opus-dubbed-source.ts).
 * Here it is dropped and the video still plays.
 */
import { RTCRtpCodecParameters } from 'werift';
import type { TrackDescription } from '../media/types.js';

export const H264_OFFER_PROFILE = '42e01f';
export const H264_FMTP = `level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=${H264_OFFER_PROFILE}`;
export const DEFAULT_H264_PAYLOAD_TYPE = 102;

export type BrowserAudioCodec = 'PCMU' | 'PCMA' | 'OPUS';

export interface AudioPlan {
  track: TrackDescription;
  codec: BrowserAudioCodec;
  mimeType: string;
  clockRate: number;
  channels: number;
  payloadType: number;
}

export interface VideoPlan {
  track: TrackDescription;
  /** VP8 only comes from the plugin's transcoded variant of a camera (src/transcode/); H.265 only to a viewer that decodes it. */
  codec: 'H264' | 'VP8' | 'H265';
}

/** What one viewer is sent. At least one of video/audio is present. */
export interface MediaPlan {
  video?: VideoPlan;
  audio?: AudioPlan;
  /** Plain-language remarks for the viewer and the log (e.g. why audio is missing). */
  notes: string[];
}

/** Raised when nothing the camera sends can be played by the viewer. */
export class UnsupportedCodecError extends Error {
  readonly code = 'unsupported-codec';
  constructor(message: string, readonly reason: string) {
    super(message);
    this.name = 'UnsupportedCodecError';
  }
}

/** Opus in WebRTC is always described as 48000/2, whatever the stream carries. */
const OPUS_FORMAT = { codec: 'OPUS', mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 } as const satisfies Omit<AudioPlan, 'track'>;

function audioPlan(track: TrackDescription): AudioPlan | string {
  switch (track.codec) {
    case 'PCMU':
      return { track, codec: 'PCMU', mimeType: 'audio/PCMU', clockRate: 8000, channels: 1, payloadType: 0 };
    case 'PCMA':
      return { track, codec: 'PCMA', mimeType: 'audio/PCMA', clockRate: 8000, channels: 1, payloadType: 8 };
    case 'OPUS':
      return { track, ...OPUS_FORMAT };
    case 'AAC':
      return "The camera sends AAC audio that browsers cannot play over WebRTC and the plugin cannot turn into Opus (ffmpeg without libopus, or AAC-LD/ELD); playing its video without sound.";
    default:
      return `The camera's audio codec (${String(track.codec)}) cannot be sent to a browser; playing video without sound.`;
  }
}

/**
 * Decides what a browser viewer gets from these camera tracks. Throws `UnsupportedCodecError` when
 * the camera's video cannot be passed through (H.265) or there is nothing playable at all.
 */
export function planMedia(tracks: ReadonlyArray<TrackDescription>, viewer: { h265?: boolean } = {}): MediaPlan {
  const notes: string[] = [];
  const videoTrack = tracks.find((t) => t.kind === 'video');
  const audioTrack = tracks.find((t) => t.kind === 'audio');
  let video: VideoPlan | undefined;
  if (videoTrack?.codec === 'H265' && viewer.h265) {
    video = { track: videoTrack, codec: 'H265' };
  } else if (videoTrack) {
    if (videoTrack.codec !== 'H264' && videoTrack.codec !== 'VP8') {
      const name = videoTrack.codec === 'H265' ? 'H.265 (HEVC)' : String(videoTrack.codec);
      throw new UnsupportedCodecError(
        `This camera sends ${name} video, which browsers cannot play as it is, and it cannot be transcoded here (that needs ffmpeg with libvpx). Set the camera to H.264 to watch it here.`,
        `camera video codec ${String(videoTrack.codec)} needs transcoding`,
      );
    }
    video = { track: videoTrack, codec: videoTrack.codec };
  }
  let audio: AudioPlan | undefined;
  if (audioTrack) {
    const planned = audioPlan(audioTrack);
    if (typeof planned === 'string') notes.push(planned);
    else audio = planned;
  }
  if (!video && !audio) {
    throw new UnsupportedCodecError(
      'This camera sends nothing a browser can play without transcoding.',
      'no playable track',
    );
  }
  return { ...(video ? { video } : {}), ...(audio ? { audio } : {}), notes };
}

const VIDEO_FEEDBACK = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }];

/** A werift video codec with the feedback every video m-line asks for (NACK, PLI, FIR). */
function videoCodec(mimeType: string, payloadType: number, fmtp?: string): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({
    mimeType,
    clockRate: 90000,
    payloadType,
    ...(fmtp === undefined ? {} : { parameters: fmtp }),
    rtcpFeedback: VIDEO_FEEDBACK.map((f) => ({ ...f })),
  });
}

/** The werift codec for the video m-line. `fmtp`/`payloadType` follow a client offer on the WHEP path. */
export function h264Codec(payloadType = DEFAULT_H264_PAYLOAD_TYPE, fmtp = H264_FMTP): RTCRtpCodecParameters {
  return videoCodec('video/H264', payloadType, fmtp);
}

export const DEFAULT_VP8_PAYLOAD_TYPE = 96;

/** The werift codec for a VP8 video m-line (the transcoded variant). */
export function vp8Codec(payloadType = DEFAULT_VP8_PAYLOAD_TYPE): RTCRtpCodecParameters {
  return videoCodec('video/VP8', payloadType);
}

export const DEFAULT_H265_PAYLOAD_TYPE = 104;

/**
 * How an H.265 stream is described (RFC 7798 section 7.1): the camera's own profile, tier and
 * level when its SDP names them, else Main profile, Main tier, level 3.1 (what browsers list first;
 * as with H.264, decoders do not enforce the level). One stream, one RTP session: tx-mode SRST.
 */
export function h265Fmtp(track?: Pick<TrackDescription, 'fmtp'>): string {
  const fmtp = track?.fmtp ?? {};
  const pick = (key: string, fallback: string): string => (/^\d{1,3}$/.test(fmtp[key] ?? '') ? fmtp[key]! : fallback);
  return `level-id=${pick('level-id', '93')};profile-id=${pick('profile-id', '1')};tier-flag=${pick('tier-flag', '0')};tx-mode=SRST`;
}

/** The werift codec for an H.265 video m-line. `fmtp`/`payloadType` follow a client offer on the WHEP path. */
export function h265Codec(payloadType = DEFAULT_H265_PAYLOAD_TYPE, fmtp = h265Fmtp()): RTCRtpCodecParameters {
  return videoCodec('video/H265', payloadType, fmtp);
}

/** The werift codec for the server's offer of this plan's video. */
export function offerVideoCodec(plan: VideoPlan): RTCRtpCodecParameters {
  return plan.codec === 'VP8' ? vp8Codec() : plan.codec === 'H265' ? h265Codec(DEFAULT_H265_PAYLOAD_TYPE, h265Fmtp(plan.track)) : h264Codec();
}

export function audioCodec(plan: Omit<AudioPlan, 'track'>): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({
    mimeType: plan.mimeType,
    clockRate: plan.clockRate,
    channels: plan.channels,
    payloadType: plan.payloadType,
    rtcpFeedback: [],
    ...(plan.codec === 'OPUS' ? { parameters: 'minptime=10;useinbandfec=1' } : {}),
  });
}

/**
 * The viewer's microphone: Opus, which every browser sends, described as the camera's own Opus is,
 * so that when the camera's sound is Opus too both sections share one codec entry.
 */
export function talkCodec(): RTCRtpCodecParameters {
  return audioCodec(OPUS_FORMAT);
}
