/**
 * SOAP 1.2 over HTTP for ONVIF: builds the envelope with a WS-Security UsernameToken (password digest,
 * `Created` corrected by the camera's clock offset), posts it, and turns every kind of bad answer
 * (SOAP 1.1 and 1.2 faults, HTML login pages, wrong content types, unparsable bodies, timeouts) into
 * one `OnvifError` naming the camera and the action.
 */
import { createHash, randomBytes } from 'node:crypto';

import { OnvifError, type OnvifErrorCode } from './errors.js';
import { HttpTransportError, httpRequest, type HttpCredentials, type HttpResponse } from './http-client.js';
import { child, childrenNamed, decodeXmlBytes, escapeXml, textOf, tryParseXml, type XmlElement } from './xml.js';

/** Namespace prefixes available to every request body. */
export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  tds: 'http://www.onvif.org/ver10/device/wsdl',
  trt: 'http://www.onvif.org/ver10/media/wsdl',
  tr2: 'http://www.onvif.org/ver20/media/wsdl',
  tt: 'http://www.onvif.org/ver10/schema',
  tev: 'http://www.onvif.org/ver10/events/wsdl',
  tptz: 'http://www.onvif.org/ver20/ptz/wsdl',
  wsnt: 'http://docs.oasis-open.org/wsn/b-2',
  wsa: 'http://www.w3.org/2005/08/addressing',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
} as const;

const PASSWORD_DIGEST_TYPE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest';
const NONCE_ENCODING = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';

/** base64(sha1(nonce + created + password)), as WS-Security UsernameToken Profile 1.0 defines it. */
export function passwordDigest(nonce: Buffer, created: string, password: string): string {
  return createHash('sha1')
    .update(Buffer.concat([nonce, Buffer.from(created, 'utf8'), Buffer.from(password, 'utf8')]))
    .digest('base64');
}

/** The `wsse:Security` header for `credentials` at the camera's time `cameraNow`. */
export function securityHeader(credentials: HttpCredentials, cameraNow: Date): string {
  const nonce = randomBytes(16);
  // Whole seconds: a few older firmwares reject fractional seconds in Created; nothing needs them.
  const created = cameraNow.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return (
    `<wsse:Security s:mustUnderstand="1"><wsse:UsernameToken>` +
    `<wsse:Username>${escapeXml(credentials.username)}</wsse:Username>` +
    `<wsse:Password Type="${PASSWORD_DIGEST_TYPE}">${passwordDigest(nonce, created, credentials.password)}</wsse:Password>` +
    `<wsse:Nonce EncodingType="${NONCE_ENCODING}">${nonce.toString('base64')}</wsse:Nonce>` +
    `<wsu:Created>${created}</wsu:Created>` +
    `</wsse:UsernameToken></wsse:Security>`
  );
}

export function buildEnvelope(body: string, header = ''): string {
  const declarations = Object.entries(NS)
    .map(([prefix, uri]) => (prefix === 'soap' ? `xmlns:s="${uri}"` : `xmlns:${prefix}="${uri}"`))
    .join(' ');
  return `<?xml version="1.0" encoding="UTF-8"?><s:Envelope ${declarations}><s:Header>${header}</s:Header><s:Body>${body}</s:Body></s:Envelope>`;
}

export interface SoapCall {
  /** Service address to post to. */
  url: string;
  /** Short action name for messages and the SOAP action, e.g. `GetProfiles`. */
  action: string;
  /** Full action URI for the Content-Type `action` parameter (some cameras route on it). */
  soapAction?: string;
  /** Body content (one element), using the prefixes of `NS`. */
  body: string;
  /** Extra header elements, e.g. WS-Addressing for PullPoint calls. */
  header?: string;
  /** False for the few calls that must work before we know the clock (GetSystemDateAndTime). */
  authenticate?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SoapClientOptions {
  camera: string;
  credentials?: HttpCredentials;
  timeoutMs: number;
}

/** Sends ONVIF SOAP requests for one camera. */
export class SoapClient {
  /** Camera clock minus local clock, in ms; applied to WS-Security `Created`. */
  clockOffsetMs = 0;
  /**
   * Calls this device said it will never perform (service address + action), with the error it gave.
   * One client serves one device connection, so an unsupported optional call is sent once per
   * connection; every later attempt (a stream re-resolve, a retry loop, a fallback chain) gets the same
   * error at once instead of another round trip the camera must refuse again. The device connection is
   * long-lived, so the list is forgotten when the camera drops off the network (unreachable, no answer):
   * it may come back rebooted with other firmware.
   */
  private readonly unsupported = new Map<string, OnvifError>();

  constructor(private readonly options: SoapClientOptions) {}

  get camera(): string {
    return this.options.camera;
  }

  get credentials(): HttpCredentials | undefined {
    return this.options.credentials;
  }

  /** Posts the request and returns the first element inside the SOAP Body of a non-fault reply. */
  async call(request: SoapCall): Promise<XmlElement> {
    // Signed and unsigned requests are remembered apart: a camera may refuse an unsigned call (in any
    // wording) that it performs once signed, and syncClock tries exactly that order.
    const key = `${request.url} ${request.soapAction ?? request.action} ${request.authenticate === false ? 'unsigned' : 'signed'}`;
    const known = this.unsupported.get(key);
    if (known) throw known;
    try {
      return await this.send(request);
    } catch (error) {
      if (error instanceof OnvifError && error.code === 'ACTION_NOT_SUPPORTED') this.unsupported.set(key, error);
      if (error instanceof OnvifError && (error.code === 'UNREACHABLE' || error.code === 'TIMEOUT')) this.unsupported.clear();
      throw error;
    }
  }

  /** True when `action` at `url` was refused as not supported on this connection (no request is sent). */
  isKnownUnsupported(url: string, soapActionOrAction: string, authenticate = true): boolean {
    return this.unsupported.has(`${url} ${soapActionOrAction} ${authenticate ? 'signed' : 'unsigned'}`);
  }

  private async send(request: SoapCall): Promise<XmlElement> {
    const credentials = this.options.credentials;
    const security =
      request.authenticate !== false && credentials && credentials.username
        ? securityHeader(credentials, new Date(Date.now() + this.clockOffsetMs))
        : '';
    const envelope = buildEnvelope(request.body, security + (request.header ?? ''));
    const contentType = `application/soap+xml; charset=utf-8${request.soapAction ? `; action="${request.soapAction}"` : ''}`;
    let response: HttpResponse;
    try {
      response = await httpRequest({
        url: request.url,
        method: 'POST',
        headers: { 'content-type': contentType, accept: 'application/soap+xml, text/xml, */*' },
        body: envelope,
        timeoutMs: request.timeoutMs ?? this.options.timeoutMs,
        // Some cameras protect the SOAP endpoint with HTTP Digest instead of (or on top of) WS-Security.
        credentials,
        maxBytes: 4 * 1024 * 1024,
        signal: request.signal,
      });
    } catch (error) {
      throw this.transportError(error, request.action);
    }
    return this.interpret(response, request.action);
  }

  private fail(code: OnvifErrorCode, action: string, detail?: string, httpStatus?: number, cause?: unknown, htmlBody?: boolean): OnvifError {
    return new OnvifError({
      code,
      camera: this.options.camera,
      action,
      detail,
      httpStatus,
      htmlBody,
      secrets: [this.options.credentials?.password],
      cause,
    });
  }

  transportError(error: unknown, action: string): OnvifError {
    if (error instanceof OnvifError) return error;
    if (error instanceof HttpTransportError) {
      const code: OnvifErrorCode =
        error.kind === 'timeout' ? 'TIMEOUT' : error.kind === 'aborted' ? 'ABORTED' : error.kind === 'too-large' ? 'BAD_RESPONSE' : 'UNREACHABLE';
      return this.fail(code, action, error.message, undefined, error);
    }
    return this.fail('UNREACHABLE', action, error instanceof Error ? error.message : String(error), undefined, error);
  }

  private interpret(response: HttpResponse, action: string): XmlElement {
    const status = response.status;
    const contentType = String(response.headers['content-type'] ?? '').toLowerCase();
    const text = decodeXmlBytes(response.body);
    const parsed = tryParseXml(text);
    const root = parsed.ok ? parsed.root : undefined;
    const body = root?.name === 'Envelope' ? child(root, 'Body') : undefined;
    if (!body) {
      // Judge the content type only when the body is not SOAP: a few firmwares label good SOAP text/html.
      if (looksLikeHtml(contentType, text)) {
        if (status === 401 || status === 403) {
          return throwIt(this.fail('NOT_AUTHORIZED', action, `HTTP ${status} with an HTML login page`, status));
        }
        if (REJECTED_REQUEST_STATUS.has(status)) {
          return throwIt(this.fail('ACTION_NOT_SUPPORTED', action, `HTTP ${status} with an HTML page instead of a SOAP fault, ${htmlTitle(text)}`, status, undefined, true));
        }
        if (status >= 400) return throwIt(this.fail('HTTP_ERROR', action, `HTTP ${status} with an HTML page, ${htmlTitle(text)}`, status, undefined, true));
        return throwIt(this.fail('HTML_RESPONSE', action, `HTTP ${status}, content type ${contentType || 'none'}, ${htmlTitle(text)}`, status, undefined, true));
      }
      if (status === 401 || status === 403) return throwIt(this.fail('NOT_AUTHORIZED', action, `HTTP ${status}`, status));
      if (REJECTED_REQUEST_STATUS.has(status)) return throwIt(this.fail('ACTION_NOT_SUPPORTED', action, `HTTP ${status} without a SOAP fault`, status));
      if (status >= 400) return throwIt(this.fail('HTTP_ERROR', action, `HTTP ${status}`, status));
      const why = parsed.ok ? `reply is <${parsed.root.name}>, not a SOAP envelope` : `unreadable reply: ${parsed.error.message}`;
      return throwIt(this.fail('BAD_RESPONSE', action, why, status));
    }
    const fault = child(body, 'Fault');
    if (fault) {
      const info = readFault(fault);
      return throwIt(this.fail(info.code, action, info.detail, status));
    }
    if (status === 401 || status === 403) return throwIt(this.fail('NOT_AUTHORIZED', action, `HTTP ${status}`, status));
    if (status >= 400) return throwIt(this.fail('HTTP_ERROR', action, `HTTP ${status}`, status));
    const first = body.children[0];
    if (!first) return throwIt(this.fail('BAD_RESPONSE', action, 'empty SOAP body', status));
    return first;
  }
}

/**
 * HTTP statuses that, without a SOAP fault to say more, mean the web server refused the request itself
 * (no such path, method or operation). Our requests are fixed, so asking again cannot change that;
 * 5xx other than 501 (and 408/429) are the device being busy or broken and stay retryable `HTTP_ERROR`s.
 */
const REJECTED_REQUEST_STATUS: ReadonlySet<number> = new Set([400, 404, 405, 415, 501]);

function throwIt(error: OnvifError): never {
  throw error;
}

function looksLikeHtml(contentType: string, text: string): boolean {
  if (contentType.includes('text/html')) return true;
  const head = text.trimStart().slice(0, 100).toLowerCase();
  return head.startsWith('<!doctype html') || head.startsWith('<html');
}

function htmlTitle(text: string): string {
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1]?.trim();
  return title ? `page "${title.slice(0, 80)}"` : 'an HTML page';
}

export interface FaultInfo {
  code: OnvifErrorCode;
  /** Fault codes and reason as the camera gave them, e.g. `env:Sender ter:NotAuthorized: Sender not Authorized`. */
  detail: string;
}

/**
 * Fault subcodes (local names) that mean the credentials or the WS-Security token were refused: ONVIF's
 * `ter:NotAuthorized` and the WS-Security 1.0 fault codes (`wsse:FailedAuthentication`, ...).
 */
const AUTH_CODES: ReadonlySet<string> = new Set([
  'NotAuthorized',
  'FailedAuthentication',
  'InvalidSecurity',
  'InvalidSecurityToken',
  'FailedCheck',
  'SecurityTokenUnavailable',
  'MessageExpired',
]);

/**
 * Fault subcodes that mean the device will never perform this request, whatever we send: ONVIF Core's
 * `ter:ActionNotSupported` (Receiver, "optional action not implemented") and `ter:UnknownAction` /
 * `ter:Namespace` (Sender: action or service namespace not recognised), WS-Addressing's
 * `wsa:ActionNotSupported`, and the service-specific refinements (`ter:PTZNotSupported`, ...).
 */
const UNSUPPORTED_CODES: ReadonlySet<string> = new Set([
  'ActionNotSupported',
  'UnknownAction',
  'Namespace',
  'ActionNotImplemented',
  'OptionalActionNotImplemented',
  'NotImplemented',
  'PTZNotSupported',
  'AudioNotSupported',
  'AudioOutputNotSupported',
  'NoImagingForSource',
]);

/** The SOAP 1.2 top-level code for "your request is wrong" and its SOAP 1.1 name. */
const SENDER_CODES: ReadonlySet<string> = new Set(['Sender', 'Client']);

function localName(qname: string): string {
  const trimmed = qname.trim();
  const colon = trimmed.lastIndexOf(':');
  return colon >= 0 ? trimmed.slice(colon + 1) : trimmed;
}

/**
 * Reads a SOAP 1.2 (Code/Subcode/Reason) or SOAP 1.1 (faultcode/faultstring) fault and classifies it by
 * its codes only. The reason text is kept for the message but never decides anything: firmwares word
 * the same fault in many ways and languages ("Optional Action Not Implemented", "method name or
 * namespace not recognized", ...), and a text match once turned a busy camera into "not supported".
 *
 * A Sender (SOAP 1.1: Client) fault without any subcode is what gSOAP-based firmwares send for an
 * operation they do not know. Our requests are fixed, schema-valid bodies, so the same request can only
 * be refused the same way again: it is classed as not supported. Sender faults with a subcode we do not
 * know (`ter:InvalidArgVal`, `wsrf-rw:ResourceUnknownFault`) depend on arguments or state and stay
 * ordinary `SOAP_FAULT`s, as do all Receiver faults other than the "not supported" ones.
 */
export function readFault(fault: XmlElement): FaultInfo {
  const codes: string[] = [];
  // SOAP 1.2: Code/Value, then nested Subcode/Value.
  for (let code = child(fault, 'Code'); code; code = child(code, 'Subcode')) {
    const value = textOf(child(code, 'Value'))?.trim();
    if (value) codes.push(value);
  }
  // SOAP 1.1.
  const faultcode = textOf(child(fault, 'faultcode'))?.trim();
  if (faultcode) codes.push(faultcode);
  const reasons = childrenNamed(child(fault, 'Reason'), 'Text').map((t) => textOf(t) ?? '');
  const reason = [...reasons, textOf(child(fault, 'faultstring')) ?? ''].filter(Boolean).join(' / ');
  const names = codes.map(localName);
  let code: OnvifErrorCode = 'SOAP_FAULT';
  if (names.some((n) => AUTH_CODES.has(n))) code = 'NOT_AUTHORIZED';
  else if (names.some((n) => UNSUPPORTED_CODES.has(n))) code = 'ACTION_NOT_SUPPORTED';
  else if (names.length === 1 && SENDER_CODES.has(names[0]!)) code = 'ACTION_NOT_SUPPORTED';
  const detail = `SOAP fault ${codes.join(' ') || '(no code)'}${reason ? `: ${reason}` : ''}`;
  return { code, detail };
}
