/** Pairs of werift SRTP or SRTCP sessions keyed for each other: what one protects, the other opens. */
import { randomBytes } from 'node:crypto';
import { SrtcpSession, SrtpSession } from 'werift';
import { SRTP_PROFILE_AEAD_AES_128_GCM } from '../../src/rtp/srtp-writer.js';

type SessionConfig = ConstructorParameters<typeof SrtpSession>[0];

/** Two random master keys for the profile, as each side of the pair sees them. */
function crossedKeys(profile: number): { sender: SessionConfig; receiver: SessionConfig } {
  const saltLength = profile === SRTP_PROFILE_AEAD_AES_128_GCM ? 12 : 14;
  const a = { key: randomBytes(16), salt: randomBytes(saltLength) };
  const b = { key: randomBytes(16), salt: randomBytes(saltLength) };
  return {
    sender: { keys: { localMasterKey: a.key, localMasterSalt: a.salt, remoteMasterKey: b.key, remoteMasterSalt: b.salt }, profile },
    receiver: { keys: { localMasterKey: b.key, localMasterSalt: b.salt, remoteMasterKey: a.key, remoteMasterSalt: a.salt }, profile },
  };
}

export function srtpSessions(profile: number): { sender: SrtpSession; receiver: SrtpSession } {
  const { sender, receiver } = crossedKeys(profile);
  return { sender: new SrtpSession(sender), receiver: new SrtpSession(receiver) };
}

export function srtcpSessions(profile: number): { sender: SrtcpSession; receiver: SrtcpSession } {
  const { sender, receiver } = crossedKeys(profile);
  return { sender: new SrtcpSession(sender), receiver: new SrtcpSession(receiver) };
}
