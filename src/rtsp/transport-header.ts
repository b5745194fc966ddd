/** The RTSP Transport header (RFC 2326 section 12.39), as much of it as a unicast client needs. */

export interface TransportSpec {
  /** e.g. "RTP/AVP", "RTP/AVP/TCP", "RTP/AVP/UDP". */
  protocol: string;
  tcp: boolean;
  multicast: boolean;
  interleaved?: [number, number];
  clientPort?: [number, number];
  serverPort?: [number, number];
  source?: string;
  ssrc?: number;
  mode?: string;
}

/** Parses the first transport of a (possibly comma-separated) Transport value. */
export function parseTransport(value: string): TransportSpec {
  const first = value.split(',')[0]!.trim();
  const parts = first.split(';').map((p) => p.trim()).filter((p) => p.length > 0);
  const protocol = parts[0] ?? '';
  const spec: TransportSpec = {
    protocol,
    tcp: /\/TCP$/i.test(protocol),
    multicast: false,
  };
  for (const part of parts.slice(1)) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? '' : part.slice(eq + 1).trim();
    switch (key) {
      case 'multicast':
        spec.multicast = true;
        break;
      case 'interleaved': {
        const r = range(val);
        if (r) spec.interleaved = r;
        break;
      }
      case 'client_port': {
        const r = range(val);
        if (r) spec.clientPort = r;
        break;
      }
      case 'server_port': {
        const r = range(val);
        if (r) spec.serverPort = r;
        break;
      }
      case 'source':
        if (val) spec.source = val;
        break;
      case 'ssrc':
        if (/^[0-9a-f]{1,8}$/i.test(val)) spec.ssrc = parseInt(val, 16);
        break;
      case 'mode':
        spec.mode = val.replace(/"/g, '');
        break;
    }
  }
  return spec;
}

/** "4-5" -> [4, 5]; "4" -> [4, 5] (a lone value implies the next port or channel). */
function range(v: string): [number, number] | undefined {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(v);
  if (!m) return undefined;
  const a = Number(m[1]);
  const b = m[2] === undefined ? a + 1 : Number(m[2]);
  if (a > 65535 || b > 65535) return undefined;
  return [a, b];
}

export function tcpTransport(channels: [number, number]): string {
  return `RTP/AVP/TCP;unicast;interleaved=${channels[0]}-${channels[1]}`;
}

export function udpTransport(ports: [number, number]): string {
  return `RTP/AVP;unicast;client_port=${ports[0]}-${ports[1]}`;
}
