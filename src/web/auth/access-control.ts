/**
 * Access control for the web server: who may watch which camera, and how they proved it.
 *
 * Three ways in, checked by `authorize` on every route, the `/signal` upgrade and WHEP:
 * - `Authorization: Bearer <share-link token>` (WHEP players, scripts); an explicit credential
 *   always wins, and a wrong one is 401 even if a cookie is present;
 * - the session cookie, set by the sign-in form (`/login`) or by opening a share link (`/s/<token>`);
 *   state-changing requests on a cookie session must carry the session's CSRF token
 *   (`X-CSRF-Token`), or they get 403;
 * - with `allowAnonymousLoopback` only (the demo on 127.0.0.1): a request from this machine, to a
 *   loopback host name, without credentials.
 * Nothing else gets in: with no viewer configured the page asks for a sign-in nobody can give,
 * and the log says how to add a viewer.
 *
 * Revocation (a link revoked or expired, a logout) tells every `onRevoke` listener which principals
 * ended (the platform passes them to the web server's `disconnect`), and ends their WHEP sessions.
 *
 * This file assembles the parts: the state and its decisions (access-state.ts), the routes
 * (access-routes.ts), the sign-in form's CSRF tokens (login-form.ts), the contract
 * (access-contract.ts).
 */
import { LOGIN_PATH, type AccessControl, type AccessControlOptions } from './access-contract.js';
import { accessRoutes } from './access-routes.js';
import { AccessState } from './access-state.js';

/** Builds access control: reads or makes the secret, hashes the passwords, loads links and sessions. */
export async function createAccessControl(options: AccessControlOptions): Promise<AccessControl> {
  const state = await AccessState.create(options);
  return {
    authorize: (req) => state.authorize(req),
    routes: accessRoutes(state),
    loginPath: LOGIN_PATH,
    secrets: () => state.plaintextPasswords,
    onRevoke: (listener) => state.onRevoke(listener),
    guardSignalling: (handler) => state.peers.signalling(handler),
    guardWhep: (handler) => state.peers.whep(handler),
    shareLinks: {
      create: (input) => state.createLink({ cameras: input.cameras, expiresIn: input.expiresIn, label: input.label ?? '', createdBy: input.createdBy }),
      list: () => state.listLinks(),
      revoke: (id) => state.revokeById(id, 'the plugin'),
    },
    get accountCount() {
      return state.accounts.size;
    },
    stop: () => state.stop(),
  };
}
