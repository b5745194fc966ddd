/**
 * werift's ICE agent (0.25) asks Google's STUN server (stun.l.google.com:19302) whenever it is
 * given none, `iceServers: []` included. Every viewer's gathering then sent a request out of the
 * home to Google, which nobody configured, and without internet it waited out the STUN timeout
 * inside `setLocalDescription` (bench:janus: 10 of 25 WHEP viewers joining at once got their answer
 * only after 2.0 s). With this guard an ICE agent given no STUN server asks none; a configured one is
 * asked as before. It wraps the one werift method that picks the server, once per process; a
 * werift without that method is left as it is.
 */
import { Connection } from 'werift';

interface StunChoice {
  options: { stunServer?: unknown };
  stunServer?: unknown;
}

let guarded = false;

export function guardDefaultStunServer(): void {
  if (guarded) return;
  guarded = true;
  const prototype = Connection.prototype as unknown as { applyStunTurnServersFromOptions?: (this: StunChoice) => void };
  const pick = prototype.applyStunTurnServersFromOptions;
  if (typeof pick !== 'function') return;
  prototype.applyStunTurnServersFromOptions = function applyConfiguredStunOnly(this: StunChoice): void {
    pick.call(this);
    if (this.options.stunServer === undefined) this.stunServer = undefined;
  };
}
