/** Access control for the web server (accounts, sessions, share links, TLS); see README.md. */
export { createAccessControl } from './access-control.js';
export {
  CSRF_HEADER,
  LOGIN_PATH,
  type AccessControl,
  type AccessControlOptions,
  type CreatedShareLink,
  type RevokeListener,
  type ShareLinkView,
} from './access-contract.js';
export type { ViewerAccountConfig } from './accounts.js';
export { createClientAddressOf, socketAddressOf, type ClientAddressOf } from '../../access/client-address.js';
export { CLOSE_TOO_MANY_PEERS, DEFAULT_PEER_LIMITS, type PeerLimitSettings } from './peer-guard.js';
export { hashPassword, formatPasswordHash, parsePasswordHash, verifyPassword, DEFAULT_SCRYPT } from './password.js';
export { isAccessPrincipal, type AccessPrincipal, type PrincipalKind } from './principals.js';
export { DEFAULT_RATE_LIMIT, type RateLimitSettings } from './rate-limiter.js';
export { DEFAULT_SESSION_SETTINGS, type SessionSettings } from './sessions.js';
export { createSelfSignedCertificate } from './self-signed.js';
export { STORAGE_FOLDER } from '../../util/storage.js';
export { createHttpsRedirect, loadTlsCredentials, type RedirectServer, type TlsCredentials, type TlsSettings } from './tls.js';
