/**
 * RTSP URL handling: splitting credentials off the camera URL, and resolving the per-track control
 * URLs of an SDP the way cameras expect (which is not RFC 3986 resolution, see resolveControlUrl).
 */
import { lastUserinfoAt, stripCredentials } from '../util/address.js';
import type { Credentials } from '../util/http-digest.js';

export interface RtspTarget {
  /** The URL without user info: the only form ever sent to the camera or printed. */
  url: string;
  /** Host name as written (IPv6 without brackets). */
  hostname: string;
  port: number;
  secure: boolean;
  username?: string;
  password?: string;
}

export const DEFAULT_RTSP_PORT = 554;

/**
 * Parses a camera URL. Users paste passwords into URLs unencoded ("admin:p@ss#1@cam/"), so the
 * user info is taken up to the last "@" before the path, and each part is percent-decoded when it
 * decodes cleanly. Throws a plain Error with a credential-free message when the URL is unusable.
 */
export function parseRtspUrl(input: string): RtspTarget {
  const trimmed = input.trim();
  const scheme = /^(rtsps?):\/\//i.exec(trimmed);
  if (!scheme) throw new Error('not an rtsp:// URL');
  const rest = trimmed.slice(scheme[0].length);
  let username: string | undefined;
  let password: string | undefined;
  let hostAndPath = rest;

  const at = lastUserinfoAt(rest);
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    hostAndPath = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    username = safeDecode(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
    if (colon >= 0) password = safeDecode(userinfo.slice(colon + 1));
  }

  let parsed: URL;
  try {
    parsed = new URL(`${scheme[1]!.toLowerCase()}://${hostAndPath}`);
  } catch {
    throw new Error('malformed URL');
  }
  if (!parsed.hostname) throw new Error('URL without a host');
  const hostname = parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname;
  const port = parsed.port ? Number(parsed.port) : DEFAULT_RTSP_PORT;
  const target: RtspTarget = {
    url: parsed.toString(),
    hostname,
    port,
    secure: scheme[1]!.toLowerCase() === 'rtsps',
  };
  if (username !== undefined && username !== '') target.username = username;
  if (password !== undefined) target.password = password;
  return target;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a raw "%" in a password: take it literally
  }
}

/**
 * The base for relative control URLs: Content-Base, then Content-Location, then the request URL
 * (RFC 2326 C.1.1).
 */
export function baseUrlFor(requestUrl: string, contentBase?: string, contentLocation?: string): string {
  for (const candidate of [contentBase, contentLocation]) {
    const v = candidate?.trim();
    if (!v) continue;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) return stripCredentials(v);
    // A relative Content-Location is resolved against the request URL.
    try {
      return stripCredentials(new URL(v, requestUrl).toString());
    } catch {
      continue;
    }
  }
  return requestUrl;
}

/**
 * Resolves an `a=control` value. Absolute URLs are used as they are; `*` (or nothing) means the base
 * itself; a path starting with "/" replaces the base's path. A relative value is APPENDED to the
 * base with a "/" rather than resolved by RFC 3986: cameras mean it that way. Dahua, for example,
 * sends base `rtsp://cam/cam/realmonitor?channel=1&subtype=0/` with `trackID=0`, and Hikvision
 * omits Content-Base on `rtsp://cam/Streaming/Channels/101` with `trackID=1`; RFC 3986 would drop
 * the query or the last path segment and the camera would answer 404.
 */
export function resolveControlUrl(base: string, control: string | undefined): string {
  const c = control?.trim();
  if (!c || c === '*') return stripCredentials(base);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(c)) return stripCredentials(c);
  if (c.startsWith('/')) {
    const origin = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(stripCredentials(base));
    return origin ? origin[0] + c : c;
  }
  const b = stripCredentials(base);
  return b.endsWith('/') ? b + c : `${b}/${c}`;
}

/**
 * The camera URL as it may be shown: user name kept, password masked. Built from parseRtspUrl,
 * because a generic redaction stops at the first "@" and would print the rest of a password
 * pasted with a raw "@" in it ("admin:p@ss@cam" -> "admin:***@ss@cam").
 */
export function displayUrl(input: string): string {
  try {
    const t = parseRtspUrl(input);
    if (t.username === undefined && t.password === undefined) return t.url;
    return shownWithLogin(t.url, t.username ?? '');
  } catch {
    // Not parseable: mask everything between "://" and the last "@" before the path.
    return input.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/]*)@/i, (_all, scheme: string) => `${scheme}***@`);
  }
}

/**
 * A camera URL without user info, shown with its separate log-in the way `displayUrl` shows a URL
 * that carries one: `rtsp://user:***@host/path`, or the URL as it is when there is no user name.
 */
export function displayRtspUrl(url: string, username: string | undefined): string {
  return username === undefined ? url : shownWithLogin(url, username);
}

function shownWithLogin(url: string, username: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  return `${scheme}${encodeURIComponent(username)}:***@${url.slice(scheme.length)}`;
}

/**
 * A camera as the client uses it: the URL without credentials, and the credentials beside it as
 * separate fields. The URL's user info is split off exactly once, here, when the upstream factory
 * is made; sessions, connections and redirects never read credentials out of a URL again.
 */
export interface RtspEndpoint {
  /** The parsed URL; its `username` and `password` are never set. */
  target: RtspTarget;
  /** The fields given, else the URL's user info. */
  credentials?: Credentials;
  /** The URL as it may be shown: user name kept, password masked. */
  shownUrl: string;
  /** Literal secrets to remove from anything a camera sends back (both passwords when a field overrode the URL's). */
  secrets: ReadonlyArray<string>;
}

/**
 * Splits a camera URL into its target and credentials; `username`/`password` override the URL's.
 * The plugin's own cameras arrive here with a URL that has no user info (the config loader split it
 * off, or ONVIF handed the log-in beside its URI), so only the fields count; a URL that still carries
 * one (a typed address in the admin connection test, test rigs) is accepted the same way.
 * Throws a plain Error with a credential-free message when the URL is unusable (see parseRtspUrl).
 */
export function rtspEndpoint(url: string, username?: string, password?: string): RtspEndpoint {
  const { username: urlUsername, password: urlPassword, ...target } = parseRtspUrl(url);
  const user = username ?? urlUsername;
  const secret = password ?? urlPassword ?? '';
  return {
    target,
    ...(user !== undefined ? { credentials: { username: user, password: secret } } : {}),
    shownUrl: displayUrl(url),
    secrets: [...new Set([secret, urlPassword ?? ''])].filter((s) => s !== ''),
  };
}
