/**
 * Credentials must never reach a log line, an error message or a browser. Every URL that is printed
 * goes through `redactUrl`, and free text that may quote one (ffmpeg's stderr, a library's error)
 * goes through `redactText`.
 */

// The user info runs to the LAST '@' before the path: a password typed with a raw '@' in it
// (rtsp://u:p@ss@host/) must be masked whole, not cut at its first '@'.
const URL_WITH_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#]*)@/gi;

// The re-stream's single-use access tokens (src/restream/server.ts `issueUrl`), a path segment.
const RESTREAM_TOKEN = /\btk_[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])/g;

/**
 * rtsp://user:pass@host/path -> rtsp://user:***@host/path (the user name stays; it helps debugging),
 * and a re-stream token in the path becomes tk_***.
 */
export function redactUrl(url: string): string {
  return url.replace(URL_WITH_USERINFO, (_all, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
    return `${scheme}${user}:***@`;
  }).replace(RESTREAM_TOKEN, 'tk_***');
}

/** Redacts URLs with credentials and every literal secret given, wherever they appear in `text`. */
export function redactText(text: string, secrets: ReadonlyArray<string | undefined> = []): string {
  let out = redactUrl(text);
  for (const secret of secrets) {
    if (!secret || secret.length < 2) continue;
    out = out.split(secret).join('***');
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join('***');
  }
  return out;
}
