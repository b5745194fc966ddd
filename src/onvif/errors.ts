/**
 * One error type for everything that can go wrong talking to an ONVIF camera, so the platform can log
 * one clear line per camera and decide on a retry from `code` instead of parsing messages.
 */
import { redactText } from '../util/redact.js';

export type OnvifErrorCode =
  /** Wrong user name or password, or the camera refused our WS-Security token (clock). */
  | 'NOT_AUTHORIZED'
  /** The camera does not implement the requested action (or service). */
  | 'ACTION_NOT_SUPPORTED'
  /** Any other SOAP fault. */
  | 'SOAP_FAULT'
  /** A non-SOAP HTTP error status. */
  | 'HTTP_ERROR'
  /** An HTML page where SOAP (or an image) was expected: usually the wrong port or a login page. */
  | 'HTML_RESPONSE'
  /** No answer in time. */
  | 'TIMEOUT'
  /** Connection refused, host unreachable, DNS failure, connection reset. */
  | 'UNREACHABLE'
  /** A reply we cannot use: not XML, no SOAP body, missing fields. */
  | 'BAD_RESPONSE'
  /** The camera has no usable video profile. */
  | 'NO_VIDEO_PROFILE'
  /** Every stream URI the camera gives is multicast although unicast was asked. */
  | 'MULTICAST_STREAM'
  /** The camera has no PTZ (no PTZ service, node or PTZ-capable profile). */
  | 'NO_PTZ'
  /** The camera has no snapshot URI (the platform should grab a frame from the stream instead). */
  | 'NO_SNAPSHOT_URI'
  /** The snapshot URL did not return a JPEG. */
  | 'NOT_A_JPEG'
  /** The caller cancelled the operation. */
  | 'ABORTED';

const HINTS: Record<OnvifErrorCode, string> = {
  NOT_AUTHORIZED: 'check the ONVIF user name and password (and that the camera clock is not far off)',
  ACTION_NOT_SUPPORTED: 'the camera does not support this ONVIF action',
  SOAP_FAULT: 'the camera returned a SOAP fault',
  HTTP_ERROR: 'the camera returned an HTTP error',
  HTML_RESPONSE: 'the camera answered with a web page instead of ONVIF; is this the ONVIF port?',
  TIMEOUT: 'the camera did not answer in time; is it online and is this the ONVIF port?',
  UNREACHABLE: 'the camera cannot be reached; check its address and port',
  BAD_RESPONSE: 'the camera sent a reply that could not be understood',
  NO_VIDEO_PROFILE: 'the camera reports no usable video profile',
  MULTICAST_STREAM:
    'the camera only hands out a multicast stream although unicast was asked; turn on unicast RTSP in the camera settings, or give the RTSP URL by hand',
  NO_PTZ: 'this camera has no PTZ (pan/tilt/zoom)',
  NO_SNAPSHOT_URI: 'the camera offers no snapshot URL',
  NOT_A_JPEG: 'the snapshot URL did not return a JPEG image',
  ABORTED: 'the operation was cancelled',
};

/** Codes after which an unchanged retry cannot help until the user or the camera changes something. */
const PERMANENT: ReadonlySet<OnvifErrorCode> = new Set([
  'NOT_AUTHORIZED',
  'ACTION_NOT_SUPPORTED',
  'NO_VIDEO_PROFILE',
  'MULTICAST_STREAM',
  'NO_PTZ',
  'NO_SNAPSHOT_URI',
  'ABORTED',
]);

export interface OnvifErrorInit {
  code: OnvifErrorCode;
  /** Camera name as configured (or its address), so every message says which camera it is about. */
  camera: string;
  /** The ONVIF action or step, e.g. `GetProfiles`, `snapshot`. */
  action: string;
  /** What the camera said (fault reason, HTTP status line, parse error); redacted before use. */
  detail?: string;
  httpStatus?: number;
  /** The reply was an HTML page, not SOAP (lets a caller tell a wrong port from a refusing camera). */
  htmlBody?: boolean;
  /** Secrets to mask in the detail (the camera password), should a camera echo them back. */
  secrets?: ReadonlyArray<string | undefined>;
  cause?: unknown;
}

export class OnvifError extends Error {
  readonly code: OnvifErrorCode;
  readonly camera: string;
  readonly action: string;
  readonly detail: string | undefined;
  readonly httpStatus: number | undefined;
  readonly htmlBody: boolean;
  /** False when retrying without a configuration change is pointless (the caller may still retry slowly). */
  readonly retryable: boolean;

  constructor(init: OnvifErrorInit) {
    const detail = init.detail ? redactText(init.detail.replace(/\s+/g, ' ').trim(), init.secrets ?? []).slice(0, 300) : undefined;
    super(
      `ONVIF camera "${init.camera}": ${init.action} failed: ${HINTS[init.code]}` +
        (detail ? ` (${detail})` : ''),
      init.cause === undefined ? undefined : { cause: init.cause },
    );
    this.name = 'OnvifError';
    this.code = init.code;
    this.camera = init.camera;
    this.action = init.action;
    this.detail = detail;
    this.httpStatus = init.httpStatus;
    this.htmlBody = init.htmlBody ?? false;
    this.retryable = !PERMANENT.has(init.code);
  }
}

export function isOnvifError(value: unknown): value is OnvifError {
  return value instanceof OnvifError;
}

/** Wraps anything thrown into an `OnvifError` for `camera`, keeping an existing one as is. */
export function toOnvifError(error: unknown, camera: string, action: string, secrets?: ReadonlyArray<string | undefined>): OnvifError {
  if (error instanceof OnvifError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new OnvifError({ code: 'BAD_RESPONSE', camera, action, detail: message, secrets, cause: error });
}
