/** A pair of werift SRTP sessions keyed for each other: what one protects, the other decrypts. */
import { randomBytes } from 'node:crypto';
import { SrtpSession } from 'werift';
import { SRTP_PROFILE_AEAD_AES_128_GCM } from '../../src/rtp/srtp-writer.js';

export function srtpSessions(profile: number): { sender: SrtpSession; receiver: SrtpSession } {
  const saltLength = profile === SRTP_PROFILE_AEAD_AES_128_GCM ? 12 : 14;
  const a = { key: randomBytes(16), salt: randomBytes(saltLength) };
  const b = { key: randomBytes(16), salt: randomBytes(saltLength) };
  return {
    sender: new SrtpSession({ keys: { localMasterKey: a.key, localMasterSalt: a.salt, remoteMasterKey: b.key, remoteMasterSalt: b.salt }, profile }),
    receiver: new SrtpSession({ keys: { localMasterKey: b.key, localMasterSalt: b.salt, remoteMasterKey: a.key, remoteMasterSalt: a.salt }, profile }),
  };
}
