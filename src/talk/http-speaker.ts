/**
 * A camera's speaker over HTTP, for cameras without the ONVIF audio back-channel (`talkUrl`): one
 * long request whose body is the G.711 stream, the way Axis (`POST /axis-cgi/audio/transmit.cgi`,
 * `audio/basic`) and Dahua, Amcrest and Lorex (`POST /cgi-bin/audio.cgi?action=postAudio&httptype=
 * singlepart&channel=1`, `Audio/G.711A`) take it.
 *
 * - The body is announced with a Content-Length it never reaches (9,999,999 bytes, about 20 minutes
 *   at 8 kB/s), not with chunked coding: those cameras play the body as it comes but do not speak
 *   chunked transfer coding. The request is cut (not ended) when the talk is over, and a stream that
 *   nears the announced length ends the turn rather than overrun it.
 * - Log-in: a camera answers 401 before it reads a body, so an empty request goes first to learn
 *   the challenge (Digest or Basic, src/util/http-digest.ts); the stream then carries the answer.
 * - Errors name the camera's answer and never the password; the URL is shown without its log-in.
 */
import http from 'node:http';
import https from 'node:https';
import { authorizationFor } from '../util/http-digest.js';
import type { Logger } from '../util/logger.js';
import { redactUrl } from '../util/redact.js';
import type { TalkOutput } from './camera-talk.js';

export type SpeakerEncoding = 'PCMU' | 'PCMA';

/** The Content-Type each G.711 law goes out with: Axis's name for µ-law, Dahua's for A-law. */
export const SPEAKER_CONTENT_TYPES: Record<SpeakerEncoding, string> = { PCMU: 'audio/basic', PCMA: 'Audio/G.711A' };
/** The length announced for the stream, larger than any talk needs. */
export const ANNOUNCED_LENGTH = 9_999_999;
/** The stream ends its turn this close to the announced length. */
const LENGTH_MARGIN = 80_000;
/** Sound waiting for the camera to read it, at most (about 8 s of G.711). */
const MAX_UNSENT_BYTES = 64 * 1024;

export interface HttpSpeakerOptions {
  url: string;
  encoding: SpeakerEncoding;
  credentials?: { username: string; password: string };
  cameraName: string;
  log: Logger;
  /** The camera refused or ended the stream while it was open. */
  onClosed(error: Error): void;
  /** For the connection and the first answer (default 5 s). */
  timeoutMs?: number;
}

/** Opens the speaker stream; rejects with a plain message when the camera refuses it. */
export async function openHttpSpeaker(options: HttpSpeakerOptions): Promise<TalkOutput> {
  const url = new URL(options.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the speaker address must start with http:// or https:// (it is ${redactUrl(options.url)})`);
  // A log-in written into the address travels as `credentials`; node would send it as Basic.
  url.username = '';
  url.password = '';
  const shown = redactUrl(options.url);
  const timeoutMs = options.timeoutMs ?? 5000;
  const path = `${url.pathname}${url.search}`;
  const contentType = SPEAKER_CONTENT_TYPES[options.encoding];
  let authorization: string | undefined;
  const first = await ask(url, { 'Content-Type': contentType, 'Content-Length': '0' }, timeoutMs);
  if (first.status === 401) {
    if (!options.credentials) throw new Error(`the camera's speaker address ${shown} asks for a log-in, and the camera has no user name set`);
    authorization = authorizationFor(first.challenges, options.credentials, 'POST', path);
    if (!authorization) throw new Error(`the camera's speaker address ${shown} asks for a log-in this plugin does not speak`);
  } else if (first.status >= 300) {
    throw new Error(`the camera answered ${first.status} ${first.statusText} to its speaker address ${shown}`);
  }
  return openStream(url, { 'Content-Type': contentType, 'Content-Length': String(ANNOUNCED_LENGTH), ...(authorization ? { Authorization: authorization } : {}) }, options, shown, timeoutMs);
}

interface FirstAnswer {
  status: number;
  statusText: string;
  challenges: string[];
}

function requestFor(url: URL, headers: Record<string, string>): http.ClientRequest {
  const client = url.protocol === 'https:' ? https : http;
  // Cameras' certificates are their own (self-signed); the address is the admin's, never a viewer's.
  return client.request(url, { method: 'POST', headers: { ...headers, Connection: 'close' }, ...(url.protocol === 'https:' ? { rejectUnauthorized: false } : {}) });
}

/** The empty request: the camera's answer, and its log-in challenges. */
function ask(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<FirstAnswer> {
  return new Promise((resolve, reject) => {
    const request = requestFor(url, headers);
    const timer = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    request.on('response', (response) => {
      clearTimeout(timer);
      const challenge = response.headers['www-authenticate'];
      resolve({ status: response.statusCode ?? 0, statusText: response.statusMessage ?? '', challenges: challenge === undefined ? [] : Array.isArray(challenge) ? challenge : [challenge] });
      response.resume();
    });
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`the camera's speaker address cannot be reached: ${error.message}`));
    });
    request.end();
  });
}

function openStream(url: URL, headers: Record<string, string>, options: HttpSpeakerOptions, shown: string, timeoutMs: number): Promise<TalkOutput> {
  return new Promise((resolve, reject) => {
    const request = requestFor(url, headers);
    let opened = false;
    let closed = false;
    let sent = 0;
    const end = (error: Error): void => {
      if (closed) return;
      closed = true;
      request.destroy();
      if (opened) options.onClosed(error);
      else reject(error);
    };
    const timer = setTimeout(() => end(new Error(`the camera's speaker address ${shown} did not take the connection within ${timeoutMs / 1000} s`)), timeoutMs);
    request.on('response', (response) => {
      response.resume();
      const status = response.statusCode ?? 0;
      // Cameras answer a speaker stream at its end, or refuse it at once.
      const why = status === 401 ? `the camera refused the log-in for its speaker address ${shown} (check the user name and password)`
        : status >= 300 ? `the camera answered ${status} ${response.statusMessage ?? ''} to its speaker address ${shown}`
          : 'the camera ended the speaker stream';
      end(new Error(why));
    });
    request.on('error', (error) => end(new Error(`the speaker stream to ${shown} broke: ${error.message}`)));
    request.on('close', () => end(new Error('the camera closed the speaker stream')));
    request.flushHeaders();
    const output: TalkOutput = {
      format: { encoding: options.encoding },
      sendAudio: (g711) => {
        if (closed) return;
        if (sent + g711.length > ANNOUNCED_LENGTH - LENGTH_MARGIN) {
          end(new Error('the speaker stream reached the length it announced; press again to go on'));
          return;
        }
        if (request.writableLength > MAX_UNSENT_BYTES) {
          end(new Error(`the camera stopped reading its speaker stream (${Math.round(request.writableLength / 1024)} KiB unsent)`));
          return;
        }
        sent += g711.length;
        request.write(g711);
      },
      close: async () => {
        if (closed) return;
        closed = true;
        request.destroy();
      },
    };
    request.on('socket', (socket) => {
      const ready = (): void => {
        clearTimeout(timer);
        if (closed) return;
        opened = true;
        options.log.debug(`Camera ${options.cameraName}: speaker stream open (${options.encoding}, ${shown})`);
        resolve(output);
      };
      if (socket.connecting) socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', ready);
      else ready();
    });
  });
}
