/**
 * RTSP URL handling: splitting a typed log-in off the camera URL (once, where it is typed), the
 * endpoint the client uses (a bare URL and credentials as fields), and resolving the per-track control
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
 * A camera address as everything below the config loader takes it: the URL without user info, and
 * the log-in beside it as fields.
 */
export interface RtspLogin {
  url: string;
  /** Set only when there is a log-in: without a user name there is none. */
  username?: string;
  /** Set (possibly empty) whenever `username` is. */
  password?: string;
}

/** A split camera address, and what the split had to decide (the config loader warns about both). */
export interface RtspLoginSplit {
  login: RtspLogin;
  /** The user name field replaced a log-in written into the URL. */
  replacedUrlLogin: boolean;
  /** A password field came without any user name, so it was dropped. */
  passwordWithoutUser: boolean;
}

/**
 * Splits a log-in typed into a camera URL off into fields: the one split, made where a person's
 * text comes in (the config loader for configured cameras, the admin connection test for an
 * address typed into the UI). The user name/password fields win over the URL's log-in (they are
 * what was typed last); a password field alone completes a user name written in the URL. The text
 * is read by `parseRtspUrl`, so a raw '#', '?', '@' or ':' pasted into a password works. Throws
 * parseRtspUrl's credential-free errors.
 */
export function splitRtspLogin(text: string, fields: { username?: string | undefined; password?: string | undefined }): RtspLoginSplit {
  const target = parseRtspUrl(text);
  let username = target.username ?? '';
  let password = target.password ?? '';
  let replacedUrlLogin = false;
  let passwordWithoutUser = false;
  if (fields.username !== undefined) {
    replacedUrlLogin = username !== '' || password !== '';
    username = fields.username;
    password = fields.password ?? '';
  } else if (fields.password !== undefined) {
    if (username) password = fields.password;
    else passwordWithoutUser = true;
  }
  // Without a user name there is no log-in (a URL with only a password never sent one either).
  return { login: { url: target.url, ...(username ? { username, password } : {}) }, replacedUrlLogin, passwordWithoutUser };
}

/** Why `rtspEndpoint` refuses a URL with user info; says nothing of what the user info was. */
export const URL_WITH_LOGIN =
  'the camera URL carries a log-in (user info); pass the user name and password as separate fields (splitRtspLogin splits a typed URL once)';

/**
 * A camera as the client uses it: the URL without credentials, and the credentials beside it as
 * separate fields. Sessions, connections and redirects never read credentials out of a URL.
 */
export interface RtspEndpoint {
  /** The parsed URL; its `username` and `password` are never set. */
  target: RtspTarget;
  /** The fields given. */
  credentials?: Credentials;
  /** The URL as it may be shown: user name kept, password masked. */
  shownUrl: string;
  /** Literal secrets to remove from anything a camera sends back. */
  secrets: ReadonlyArray<string>;
}

/**
 * The target and credentials of a camera URL without user info and its log-in fields. A URL that
 * still carries user info is refused (`URL_WITH_LOGIN`): the log-in is split off once, where it
 * was typed (`splitRtspLogin`), and travels as fields from there, so no second reader can disagree
 * about where a pasted password ends. Throws a plain Error with a credential-free message when the
 * URL is unusable (see parseRtspUrl).
 */
export function rtspEndpoint(url: string, username?: string, password?: string): RtspEndpoint {
  const { username: urlUsername, password: urlPassword, ...target } = parseRtspUrl(url);
  if (urlUsername !== undefined || urlPassword !== undefined) throw new Error(URL_WITH_LOGIN);
  return {
    target,
    ...(username !== undefined ? { credentials: { username, password: password ?? '' } } : {}),
    shownUrl: displayRtspUrl(target.url, username),
    secrets: password ? [password] : [],
  };
}
