/**
 * The re-stream's small RTSP vocabulary, free of connection state: where a request URL points
 * (camera, single-use token, track), which transport a SETUP asks for, and how a response is
 * written. Errors that become a status line are `HttpishError`s.
 */
import type { RtspRequest } from './request-parser.js';

export const TOKEN_SEGMENT = /^tk_[A-Za-z0-9_-]{22}$/;
export const PUBLIC_METHODS = 'OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER';
export const SERVER_NAME = 'homebridge-webrtc-cameras';
const STATUS_TEXT: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Request Entity Too Large', 451: 'Parameter Not Understood',
  453: 'Not Enough Bandwidth', 454: 'Session Not Found', 455: 'Method Not Valid in This State',
  459: 'Aggregate Operation Not Allowed', 461: 'Unsupported Transport', 500: 'Internal Server Error',
  501: 'Not Implemented', 503: 'Service Unavailable', 505: 'RTSP Version Not Supported',
};


/** A failure that is answered with its status (and headers) rather than a 500. */
export class HttpishError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Array<[string, string]> = []) {
    super(message);
  }
}

export /** Where a request points: a camera, and a track when the URL ends in `trackID=N`. */
interface Target {
  cameraId: string;
  /** The single-use token segment in front of the camera id, if any. */
  token?: string;
  trackId?: number;
  /** The request URL without credentials, query or trailing slash, for Content-Base. */
  base: string;
}

/** Parses a request URL into camera id and track; absolute rtsp:// URLs and bare paths both work. */
export function parseTarget(uri: string): Target {
  let path: string;
  let base: string;
  if (/^rtsps?:\/\//i.test(uri)) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new HttpishError(400, 'Malformed URL');
    }
    path = url.pathname;
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    base = url.toString();
  } else if (uri.startsWith('/')) {
    path = uri.split('?')[0]!;
    base = path;
  } else {
    throw new HttpishError(400, 'Malformed URL');
  }
  const segments = path.split('/').filter((s) => s.length > 0);
  const token = segments.length > 1 && TOKEN_SEGMENT.test(segments[0]!) ? segments.shift() : undefined;
  let trackId: number | undefined;
  const last = segments[segments.length - 1];
  const track = last !== undefined ? /^trackID=(\d{1,3})$/i.exec(last) : null;
  if (track) {
    trackId = Number(track[1]);
    segments.pop();
    base = base.replace(/\/+$/, '').replace(/\/[^/]*$/, '');
  }
  base = base.replace(/\/+$/, '');
  let cameraId: string;
  try {
    cameraId = segments.map((s) => decodeURIComponent(s)).join('/');
  } catch {
    throw new HttpishError(400, 'Malformed URL');
  }
  if (cameraId.length === 0) throw new HttpishError(404, 'No camera in the URL');
  return { cameraId, base, ...(trackId !== undefined ? { trackId } : {}), ...(token !== undefined ? { token } : {}) };
}

/** `parseTarget` for the auth check, which also sees `*` and other camera-less URLs. */
export function tryParseTarget(uri: string): Target | undefined {
  try {
    return parseTarget(uri);
  } catch {
    return undefined;
  }
}

export type TransportChoice = { type: 'tcp'; channels?: [number, number] } | { type: 'udp'; ports: [number, number] };

/** Picks the first transport in the client's list that we serve (unicast RTP over TCP or UDP). */
export function chooseTransport(header: string, udpAvailable: boolean): TransportChoice | undefined {
  for (const spec of header.split(',')) {
    const params = spec.split(';').map((p) => p.trim()).filter((p) => p.length > 0);
    const protocol = (params[0] ?? '').toUpperCase();
    if (params.some((p) => p.toLowerCase() === 'multicast')) continue;
    const value = (name: string): string | undefined => {
      const found = params.find((p) => p.toLowerCase().startsWith(`${name}=`));
      return found?.slice(name.length + 1);
    };
    if (protocol === 'RTP/AVP/TCP') {
      const channels = parseRange(value('interleaved'), 255);
      return channels ? { type: 'tcp', channels } : { type: 'tcp' };
    }
    if ((protocol === 'RTP/AVP' || protocol === 'RTP/AVP/UDP') && udpAvailable) {
      const ports = parseRange(value('client_port'), 65535);
      if (ports && ports[0] > 0) return { type: 'udp', ports };
    }
  }
  return undefined;
}

function parseRange(text: string | undefined, max: number): [number, number] | undefined {
  if (!text) return undefined;
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!match) return undefined;
  const a = Number(match[1]);
  const b = match[2] !== undefined ? Number(match[2]) : a + 1;
  if (a > max || b > max) return undefined;
  return [a, b];
}

export function sessionIdOf(request: RtspRequest): string | undefined {
  const header = request.headers.get('session');
  if (header === undefined) return undefined;
  return header.split(';')[0]!.trim();
}


/** One response: status line, CSeq, Server and Date, the headers, and Content-Length with a body or an error. */
export function formatResponse(status: number, cseq: string | undefined, headers: Array<[string, string]>, body?: Buffer): Buffer {
  const lines = [`RTSP/1.0 ${status} ${STATUS_TEXT[status] ?? 'Error'}`];
  if (cseq !== undefined) lines.push(`CSeq: ${cseq}`);
  lines.push(`Server: ${SERVER_NAME}`, `Date: ${new Date().toUTCString()}`);
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  if (body && body.length > 0) lines.push(`Content-Length: ${body.length}`);
  else if (status >= 400) lines.push('Content-Length: 0');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  return body && body.length > 0 ? Buffer.concat([head, body]) : head;
}
