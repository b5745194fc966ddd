/**
 * Password hashing with scrypt (node:crypto, no dependency). A hash is a self-describing string,
 * `scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64url), so a viewer's password may be given in the
 * config already hashed, with its own cost parameters, and verification needs nothing else.
 *
 * Comparison is constant-time (`timingSafeEqual` on equal-length buffers); the caller makes an
 * unknown user cost the same scrypt as a known one.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  /** log2 of scrypt's N (CPU/memory cost). */
  ln: number;
  r: number;
  p: number;
}

export interface PasswordHash extends ScryptParams {
  salt: Buffer;
  hash: Buffer;
}

/**
 * N = 2^15, r = 8: 32 MiB and roughly 50-150 ms per check on the small computers Homebridge runs on.
 * The login rate limiter, not the hash, is what stops online guessing; the hash mostly keeps the
 * comparison slow and constant for an attacker who reads memory or a pre-hashed config.
 */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ ln: 15, r: 8, p: 1 });
const KEY_BYTES = 32;
const SALT_BYTES = 16;
export const HASH_PREFIX = 'scrypt$';
/** Memory one scrypt call may use; pre-hashed values asking for more are refused (a config must not DoS the host). */
const MAX_MEMORY = 256 * 1024 * 1024;

const HASH_FORMAT = /^scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9_-]{11,88})\$([A-Za-z0-9_-]{22,88})$/;

function memoryFor(params: ScryptParams): number {
  return 128 * 2 ** params.ln * params.r * params.p;
}

export function isPasswordHash(value: string): boolean {
  return value.startsWith(HASH_PREFIX);
}

/** Parses `scrypt$ln=..,r=..,p=..$salt$hash`; throws with a reason a user can act on. */
export function parsePasswordHash(text: string): PasswordHash {
  const match = HASH_FORMAT.exec(text.trim());
  if (!match) throw new Error('a pre-hashed password must look like scrypt$ln=15,r=8,p=1$<salt>$<hash> (base64url)');
  const params = { ln: Number(match[1]), r: Number(match[2]), p: Number(match[3]) };
  if (params.ln < 10 || params.ln > 20 || params.r < 1 || params.r > 32 || params.p < 1 || params.p > 4) {
    throw new Error('the scrypt parameters of a pre-hashed password must be ln 10-20, r 1-32, p 1-4');
  }
  if (memoryFor(params) > MAX_MEMORY) throw new Error('the scrypt parameters of a pre-hashed password need more than 256 MiB');
  const salt = Buffer.from(match[4]!, 'base64url');
  const hash = Buffer.from(match[5]!, 'base64url');
  if (salt.length < 8 || hash.length < 16) throw new Error('the salt or hash of a pre-hashed password is too short');
  return { ...params, salt, hash };
}

export function formatPasswordHash(value: PasswordHash): string {
  return `${HASH_PREFIX}ln=${value.ln},r=${value.r},p=${value.p}$${value.salt.toString('base64url')}$${value.hash.toString('base64url')}`;
}

function derive(password: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(
      password.normalize('NFC'),
      salt,
      length,
      { N: 2 ** params.ln, r: params.r, p: params.p, maxmem: memoryFor(params) + 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

/** Hashes a password with a fresh salt (runs on libuv's thread pool, not the event loop). */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<PasswordHash> {
  const salt = randomBytes(SALT_BYTES);
  return { ...params, salt, hash: await derive(password, salt, params, KEY_BYTES) };
}

/** True when `password` matches; constant-time in the comparison itself. */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const candidate = await derive(password, stored.salt, stored, stored.hash.length);
  return timingSafeEqual(candidate, stored.hash);
}
