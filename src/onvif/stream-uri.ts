/**
 * Addresses a camera announces for its streams and snapshots, made usable: multicast recognised,
 * the host (and RTSP port) pointed at the address actually reached. Credentials are put in or taken
 * out by util/address.ts (`withCredentials`, `withoutCredentials`), the one place for a URL's log-in.
 */

/**
 * True for a stream URI that is multicast: a group address (IPv4 224.0.0.0/4, IPv6 ff00::/8) or the
 * `transportmode=mcast` query some firmwares add on their own address. Checked before the host is
 * rewritten to the address reached, which would hide the group address.
 */
export function isMulticastStreamUri(uri: string): boolean {
  let url: URL;
  try {
    url = new URL(uri.trim());
  } catch {
    return false;
  }
  for (const [key, value] of url.searchParams) {
    if (key.toLowerCase() === 'transportmode' && /^(mcast|multicast)$/i.test(value.trim())) return true;
  }
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const v4 = /^(\d{1,3})\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.exec(host);
  if (v4) return Number(v4[1]) >= 224 && Number(v4[1]) <= 239;
  return /^ff[0-9a-f]{2}:/.test(host);
}

function sameHost(a: string, b: string): boolean {
  const norm = (h: string): string => h.replace(/^\[|\]$/g, '').toLowerCase();
  return norm(a) === norm(b);
}

export function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Points a stream URI the camera gave at the host actually reached (cameras behind NAT, in Docker, or
 * with a stale DHCP address report an internal IP), and at `rtspPort` when configured.
 */
export function rewriteStreamUri(uri: string, reachedHost: string, rtspPort?: number): { url: URL; rewritten: boolean } {
  let url: URL;
  try {
    url = new URL(uri.trim());
  } catch {
    // A bare path (seen on a few cameras): resolve against the reached host.
    url = new URL(`rtsp://${hostForUrl(reachedHost)}${uri.trim().startsWith('/') ? '' : '/'}${uri.trim()}`);
  }
  let rewritten = false;
  if (!url.hostname || !sameHost(url.hostname, reachedHost) || url.hostname === '0.0.0.0') {
    url.hostname = hostForUrl(reachedHost);
    rewritten = true;
  }
  if (rtspPort !== undefined && url.port !== String(rtspPort)) {
    url.port = String(rtspPort);
    rewritten = true;
  }
  return { url, rewritten };
}

/** Candidate snapshot URLs: as given, or, when it names another host, that path on the reached host. */
export function snapshotCandidates(uri: string, reachedHost: string, onvifPort: number): URL[] {
  const url = new URL(uri.trim());
  if (sameHost(url.hostname, reachedHost)) return [url];
  const sameOrigin = new URL(url.href);
  sameOrigin.hostname = hostForUrl(reachedHost);
  const onOnvifPort = new URL(sameOrigin.href);
  onOnvifPort.port = String(onvifPort);
  return sameOrigin.href === onOnvifPort.href ? [sameOrigin] : [sameOrigin, onOnvifPort];
}
