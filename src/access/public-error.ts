/**
 * What a viewer may be told about a camera's failure. Both the camera list (src/web) and the
 * signalling socket (src/webrtc) show it to anyone allowed to watch, so it lives below both.
 */
import { redactText } from '../util/redact.js';

/**
 * A URL in running text. It stops at a bracket or quote and gives back trailing punctuation, so that
 * 'Camera "Front" (rtsp://host/x): refused' keeps its ')' and ':' (IPv6 hosts keep their [ ]).
 */
const URL_ANYWHERE = /\b[a-z][a-z0-9+.-]*:\/\/[^\s()<>"']+/gi;

/** An error text fit for any viewer: URLs are replaced (they name hosts and users) and secrets masked. */
export function publicErrorText(text: string | undefined, secrets: Iterable<string> = []): string | null {
  if (!text) return null;
  const redacted = redactText(text, [...secrets]).replace(URL_ANYWHERE, (url) => `<camera url>${/[.,;:!?]+$/.exec(url)?.[0] ?? ''}`);
  // A long stack or ffmpeg dump helps nobody on a phone; the log has the full story.
  return redacted.length > 300 ? `${redacted.slice(0, 297)}...` : redacted;
}
