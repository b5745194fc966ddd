/**
 * What a signalling client may send, checked before anything acts on it: a frame is size-checked
 * before it is parsed, must be a JSON text frame holding an object whose `type` we know and whose
 * fields have the right types. Anything else is a `BadRequest` with a short reason for the client.
 */
import type { RawData } from 'ws';
import type { IceCandidateJson } from './types.js';

export type ClientMessage =
  | { type: 'watch'; camera: string; videoCodecs?: string[] }
  | { type: 'answer'; sdp: string }
  | { type: 'candidate'; candidate: IceCandidateJson | null }
  | { type: 'stop' }
  /** Press-to-talk: take the floor (`start`) or let go (`stop`). */
  | { type: 'talk'; action: 'start' | 'stop' };

const CAMERA_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/;
const VIDEO_CODEC_NAME = /^[A-Za-z0-9-]{1,16}$/;

/** A message refused; `message` is said to the client. */
export class BadRequest extends Error {}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rawLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, chunk) => sum + chunk.length, 0);
  return data instanceof ArrayBuffer ? data.byteLength : data.length;
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return (data instanceof ArrayBuffer ? Buffer.from(data) : data).toString('utf8');
}

function parseCandidate(value: unknown): IceCandidateJson | null {
  if (value === null || value === undefined) return null;
  if (!isRecord(value)) throw new BadRequest('candidate must be an object or null');
  const { candidate, sdpMid, sdpMLineIndex, usernameFragment } = value;
  if (typeof candidate !== 'string' || candidate.length > 1024) throw new BadRequest('candidate.candidate must be a string');
  if (sdpMid !== undefined && sdpMid !== null && (typeof sdpMid !== 'string' || sdpMid.length > 64)) {
    throw new BadRequest('candidate.sdpMid must be a string or null');
  }
  if (
    sdpMLineIndex !== undefined &&
    sdpMLineIndex !== null &&
    (typeof sdpMLineIndex !== 'number' || !Number.isInteger(sdpMLineIndex) || sdpMLineIndex < 0 || sdpMLineIndex > 64)
  ) {
    throw new BadRequest('candidate.sdpMLineIndex must be a small integer or null');
  }
  if (usernameFragment !== undefined && usernameFragment !== null && typeof usernameFragment !== 'string') {
    throw new BadRequest('candidate.usernameFragment must be a string or null');
  }
  if (candidate !== '' && !candidate.startsWith('candidate:')) throw new BadRequest('candidate.candidate must start with "candidate:"');
  return {
    candidate,
    sdpMid: typeof sdpMid === 'string' ? sdpMid : null,
    sdpMLineIndex: typeof sdpMLineIndex === 'number' ? sdpMLineIndex : null,
  };
}

/** Validates one decoded message. Throws BadRequest with a short reason. */
export function parseClientMessage(value: unknown, maxSdpBytes: number): ClientMessage {
  if (!isRecord(value)) throw new BadRequest('a message must be a JSON object');
  switch (value.type) {
    case 'watch': {
      const camera = value.camera;
      if (typeof camera !== 'string' || !CAMERA_ID.test(camera)) throw new BadRequest('watch needs a camera id');
      const codecs = value.videoCodecs;
      if (codecs === undefined) return { type: 'watch', camera };
      if (!Array.isArray(codecs) || codecs.length > 32 || !codecs.every((c) => typeof c === 'string' && VIDEO_CODEC_NAME.test(c))) {
        throw new BadRequest('watch.videoCodecs must be a short list of codec names');
      }
      return { type: 'watch', camera, videoCodecs: codecs.map((c: string) => c.toUpperCase()) };
    }
    case 'answer': {
      const sdp = value.sdp;
      if (typeof sdp !== 'string' || !sdp.startsWith('v=0') || Buffer.byteLength(sdp) > maxSdpBytes) {
        throw new BadRequest('answer needs an SDP string');
      }
      return { type: 'answer', sdp };
    }
    case 'candidate':
      return { type: 'candidate', candidate: parseCandidate(value.candidate) };
    case 'stop':
      return { type: 'stop' };
    case 'talk':
      if (value.action !== 'start' && value.action !== 'stop') throw new BadRequest('talk.action must be "start" or "stop"');
      return { type: 'talk', action: value.action };
    default:
      throw new BadRequest(typeof value.type === 'string' ? 'unknown message type' : 'a message needs a string "type"');
  }
}

/** Decodes and validates one WebSocket frame. Throws BadRequest with a short reason. */
export function decodeClientMessage(data: RawData, isBinary: boolean, maxBytes: number): ClientMessage {
  if (isBinary) throw new BadRequest('messages must be JSON text frames');
  if (rawLength(data) > maxBytes) throw new BadRequest(`a message may not exceed ${maxBytes} bytes`);
  let decoded: unknown;
  try {
    decoded = JSON.parse(rawText(data));
  } catch {
    throw new BadRequest('a message must be valid JSON');
  }
  return parseClientMessage(decoded, maxBytes);
}
