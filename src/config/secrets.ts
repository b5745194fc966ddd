/**
 * Collects every secret in the raw config, before and regardless of validation: an invalid camera
 * is skipped, but its password must still never reach a log line (the error about it included).
 */

const SECRET_KEY = /pass(word)?|credential|secret|token|adminkey/i;

/** The password inside a URL's userinfo, decoded, or undefined. Works on malformed URLs too. */
export function urlPassword(text: string): string[] {
  const found: string[] = [];
  // Not `new URL`: an invalid URL must still give up its password.
  const match = /^[a-z][a-z0-9+.-]*:\/\/([^\s/]*)@/i.exec(text.trim());
  if (!match?.[1]) return found;
  const userinfo = match[1];
  const colon = userinfo.indexOf(':');
  if (colon < 0) return found;
  const raw = userinfo.slice(colon + 1);
  if (raw) found.push(raw);
  try {
    const decoded = decodeURIComponent(raw);
    if (decoded && decoded !== raw) found.push(decoded);
  } catch {
    // A malformed %-escape: the raw form is already registered.
  }
  return found;
}

/** Walks any JSON value and returns the set of secrets to redact from logs. */
export function collectSecrets(raw: unknown): Set<string> {
  const secrets = new Set<string>();
  const visit = (value: unknown, key: string | undefined): void => {
    if (typeof value === 'string') {
      if (key !== undefined && SECRET_KEY.test(key) && value.length > 0) secrets.add(value);
      for (const password of urlPassword(value)) secrets.add(password);
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) visit(item, key);
      return;
    }
    if (value !== null && typeof value === 'object') {
      for (const [childKey, child] of Object.entries(value)) visit(child, childKey);
    }
  };
  visit(raw, undefined);
  return secrets;
}
