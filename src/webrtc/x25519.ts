/**
 * werift's DTLS does its key exchange (X25519, which browsers pick) with tweetnacl, in JavaScript:
 * a key pair and a shared secret per handshake took 1.7-2.5 ms of the event loop on the 2-core
 * test VM, more on a Raspberry Pi, and in a storm of 50 viewers joining at once they were 9 % of
 * the server's time (a CPU profile of `npm run bench:janus -- --storm 50`), each one holding up
 * every other viewer's handshake for its duration. Node's OpenSSL does the same in about 0.2 ms.
 *
 * werift reaches tweetnacl through the package's one module object (`nacl.box.keyPair()`,
 * `nacl.scalarMult(n, p)`), so this puts OpenSSL behind those two functions there, once. The
 * replacement gives the same bytes for every input: it is checked against tweetnacl itself before
 * it goes in, and anything OpenSSL refuses (a key of the wrong size, a low-order public key, for
 * which tweetnacl returns zeros) goes to tweetnacl's own code, so its results and errors are
 * unchanged for every other user of the module in the process.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';

/** DER framing of a raw X25519 key: PKCS #8 for the private key, SubjectPublicKeyInfo for the public one. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const KEY_BYTES = 32;

type ScalarMult = (n: Uint8Array, p: Uint8Array) => Uint8Array;
type KeyPair = typeof nacl.box.keyPair;

/** tweetnacl's own functions, kept for what OpenSSL refuses and for the check. */
const original = { scalarMult: nacl.scalarMult, keyPair: nacl.box.keyPair };
let state: { replaced: boolean; reason: string } | undefined;

/** A copy in its own 32-byte buffer: werift reads `key.buffer` whole. */
function ownBytes(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(KEY_BYTES);
  copy.set(bytes);
  return copy;
}

function opensslScalarMult(n: Uint8Array, p: Uint8Array): Uint8Array {
  if (!(n instanceof Uint8Array) || !(p instanceof Uint8Array) || n.length !== KEY_BYTES || p.length !== KEY_BYTES) {
    return original.scalarMult(n, p);
  }
  try {
    const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, n]), format: 'der', type: 'pkcs8' });
    const publicKey = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, p]), format: 'der', type: 'spki' });
    return ownBytes(diffieHellman({ privateKey, publicKey }));
  } catch {
    // OpenSSL refuses an all-zero shared secret (a low-order point); tweetnacl returns it.
    return original.scalarMult(n, p);
  }
}

const opensslKeyPair = Object.assign(
  (): nacl.BoxKeyPair => {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    return {
      secretKey: ownBytes(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length)),
      publicKey: ownBytes(publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length)),
    };
  },
  { fromSecretKey: original.keyPair.fromSecretKey },
) as KeyPair;

/** What differs between OpenSSL and tweetnacl on random keys, or undefined when nothing does. */
export function x25519CheckError(scalarMult: ScalarMult = opensslScalarMult, keyPair: KeyPair = opensslKeyPair): string | undefined {
  for (let i = 0; i < 8; i++) {
    const n = new Uint8Array(randomBytes(KEY_BYTES));
    const p = new Uint8Array(randomBytes(KEY_BYTES));
    if (!Buffer.from(scalarMult(n, p)).equals(Buffer.from(original.scalarMult(n, p)))) return 'a shared secret differs from tweetnacl';
    const pair = keyPair();
    if (pair.secretKey.buffer.byteLength !== KEY_BYTES || pair.publicKey.buffer.byteLength !== KEY_BYTES) return 'a key pair is not in 32-byte buffers';
    if (!Buffer.from(pair.publicKey).equals(Buffer.from(original.scalarMult.base(pair.secretKey)))) return "a key pair's public key differs from tweetnacl's";
  }
  return undefined;
}

/**
 * Puts OpenSSL's X25519 behind tweetnacl's `box.keyPair` and `scalarMult` once, if it passes the
 * check; says whether it did and why not.
 */
export function useOpensslX25519(): { replaced: boolean; reason: string } {
  if (state) return state;
  const setting = process.env['WEBRTC_CAMERAS_OPENSSL_X25519'];
  if (setting === '0' || setting === 'false' || setting === 'off') {
    // For measuring what it does (npm run bench:janus, A/B), as WEBRTC_CAMERAS_NATIVE=0 is.
    state = { replaced: false, reason: 'turned off (WEBRTC_CAMERAS_OPENSSL_X25519)' };
    return state;
  }
  try {
    const error = x25519CheckError();
    if (error) {
      state = { replaced: false, reason: error };
    } else {
      // tweetnacl's `scalarMult.base` is a property of the function it replaces: keep it there.
      nacl.scalarMult = Object.assign(opensslScalarMult, { base: original.scalarMult.base, scalarLength: original.scalarMult.scalarLength, groupElementLength: original.scalarMult.groupElementLength });
      nacl.box.keyPair = opensslKeyPair;
      state = { replaced: true, reason: '' };
    }
  } catch (error) {
    state = { replaced: false, reason: error instanceof Error ? error.message : String(error) };
  }
  return state;
}
