/**
 * Which web origins may use the API, WHEP and the WebSocket. The default is the page's own origin
 * only: another site open in the same browser must not drive a viewer's session (CSRF, cross-site
 * WebSocket hijacking). Clients that send no Origin (curl, WHEP tools, HomeKit) are not browsers and
 * are judged by `authorize` alone.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class OriginPolicy {
  private readonly allowed: ReadonlySet<string>;
  private readonly anyOrigin: boolean;

  constructor(
    allowedOrigins: ReadonlyArray<string>,
    private readonly tls: boolean,
    /** Origins allowed for a while, for bearer-token WHEP only (the Homebridge UI's preview). */
    private readonly bearerOrigins: (origin: string) => boolean = () => false,
  ) {
    this.anyOrigin = allowedOrigins.includes('*');
    // Origins compare as the browser serialises them: scheme://host[:port], lower-case, no slash.
    this.allowed = new Set(allowedOrigins.filter((o) => o !== '*').map((o) => o.trim().replace(/\/+$/, '').toLowerCase()));
  }

  /** The request's Origin when it is a cross-origin browser request, else `undefined`. */
  crossOrigin(req: IncomingMessage): string | undefined {
    const origin = req.headers.origin;
    if (origin === undefined) return undefined;
    const host = req.headers.host;
    if (host && origin.toLowerCase() === `${this.tls ? 'https' : 'http'}://${host.toLowerCase()}`) return undefined;
    return origin;
  }

  /** Same-origin, no Origin at all, or a configured origin. */
  permits(req: IncomingMessage): boolean {
    const origin = this.crossOrigin(req);
    if (origin === undefined) return true;
    return this.anyOrigin || this.allowed.has(origin.toLowerCase());
  }

  /**
   * A cross-origin WHEP request with its own bearer token from an origin that is allowed for that
   * (the Homebridge UI page while its preview token lives). It is no CSRF risk: a foreign page
   * cannot make the browser attach a token it does not know, and cookies are never honoured this
   * way (no Allow-Credentials). The preflight asks for the Authorization header.
   */
  permitsBearer(req: IncomingMessage): boolean {
    const origin = this.crossOrigin(req);
    if (origin === undefined || !this.bearerOrigins(origin)) return false;
    if (req.method === 'OPTIONS') {
      const asked = req.headers['access-control-request-headers'];
      return typeof asked === 'string' && asked.toLowerCase().split(',').some((h) => h.trim() === 'authorization');
    }
    return /^Bearer +\S/i.test(req.headers.authorization ?? '');
  }

  /** Adds the CORS answer for a permitted cross-origin request (nothing for same-origin ones). */
  applyCors(req: IncomingMessage, res: ServerResponse, preflight?: { methods: ReadonlyArray<string> }, bearerAllowed = false): void {
    const origin = this.crossOrigin(req);
    res.appendHeader('Vary', 'Origin');
    if (origin === undefined) return;
    if (!this.permits(req) && !(bearerAllowed && this.permitsBearer(req))) return;
    res.setHeader('Access-Control-Allow-Origin', origin);
    // WHEP clients need Location (the session) and ETag (for PATCH If-Match) from the answer.
    res.setHeader('Access-Control-Expose-Headers', 'Location, ETag, Link, Accept-Patch, Accept-Post');
    if (preflight) {
      res.setHeader('Access-Control-Allow-Methods', preflight.methods.join(', '));
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type, If-Match');
      res.setHeader('Access-Control-Max-Age', '600');
    }
  }
}
