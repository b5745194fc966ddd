// OpenSSL's X25519 behind tweetnacl's two functions that werift's DTLS uses (src/webrtc/x25519.ts):
// the same bytes as tweetnacl for every input, tweetnacl's own answer where OpenSSL refuses, a
// failed check leaves tweetnacl alone, and a real werift viewer's DTLS runs on it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import nacl from 'tweetnacl';

import { useOpensslX25519, x25519CheckError } from '../../src/webrtc/x25519.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { startSignallingServer, type SignallingHarness } from './harness.js';
import { watchOverSignalling } from './werift-client.js';

/** RFC 7748 section 5.2, the first test vector. */
const RFC7748_SCALAR = Buffer.from('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4', 'hex');
const RFC7748_POINT = Buffer.from('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', 'hex');
const RFC7748_RESULT = 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552';

describe('X25519 for werift DTLS', () => {
  const tweetnaclScalarMult = nacl.scalarMult;
  const tweetnaclKeyPair = nacl.box.keyPair;

  test('goes in once, and then gives what tweetnacl gives: the RFC vector, random keys, the base point', () => {
    const state = useOpensslX25519();
    assert.deepEqual(state, { replaced: true, reason: '' });
    assert.equal(useOpensslX25519(), state, 'once');
    assert.notEqual(nacl.scalarMult, tweetnaclScalarMult);
    assert.notEqual(nacl.box.keyPair, tweetnaclKeyPair);
    assert.equal(Buffer.from(nacl.scalarMult(new Uint8Array(RFC7748_SCALAR), new Uint8Array(RFC7748_POINT))).toString('hex'), RFC7748_RESULT);
    assert.equal(Buffer.from(tweetnaclScalarMult(new Uint8Array(RFC7748_SCALAR), new Uint8Array(RFC7748_POINT))).toString('hex'), RFC7748_RESULT);
    // The high bit of the point is ignored by both (RFC 7748: masked).
    const highBit = new Uint8Array(RFC7748_POINT);
    highBit[31]! |= 0x80;
    assert.equal(Buffer.from(nacl.scalarMult(new Uint8Array(RFC7748_SCALAR), highBit)).toString('hex'), RFC7748_RESULT);
    assert.equal(x25519CheckError(nacl.scalarMult, nacl.box.keyPair), undefined);
    // What werift does with a key pair: Buffer.from(key.buffer), which must be the key alone.
    const pair = nacl.box.keyPair();
    assert.equal(Buffer.from(pair.secretKey.buffer).length, 32);
    assert.deepEqual(Buffer.from(nacl.scalarMult.base(pair.secretKey)), Buffer.from(pair.publicKey));
    assert.equal(nacl.box.keyPair.fromSecretKey, tweetnaclKeyPair.fromSecretKey);
  });

  test("what OpenSSL refuses gets tweetnacl's own answer: a low-order point's zeros, a short key's error", () => {
    useOpensslX25519();
    const scalar = new Uint8Array(RFC7748_SCALAR);
    const zeroPoint = new Uint8Array(32); // order 1: the shared secret is all zeros
    assert.deepEqual(Buffer.from(nacl.scalarMult(scalar, zeroPoint)), Buffer.alloc(32));
    assert.throws(() => nacl.scalarMult(scalar, new Uint8Array(31)), /bad (n|p) size/);
  });

  test('a replacement that differs from tweetnacl fails the check', () => {
    const wrong = (n: Uint8Array, p: Uint8Array): Uint8Array => {
      const result = tweetnaclScalarMult(n, p);
      result[0]! ^= 1;
      return result;
    };
    assert.match(x25519CheckError(wrong) ?? '', /a shared secret differs/);
    const pooled = (): nacl.BoxKeyPair => {
      const pair = tweetnaclKeyPair();
      const pool = new Uint8Array(64);
      pool.set(pair.secretKey);
      pool.set(pair.publicKey, 32);
      return { secretKey: pool.subarray(0, 32), publicKey: pool.subarray(32) };
    };
    assert.match(x25519CheckError(tweetnaclScalarMult, pooled as typeof nacl.box.keyPair) ?? '', /not in 32-byte buffers/);
  });

  describe('a werift viewer over it', () => {
    let source: SyntheticSource;
    let harness: SignallingHarness;
    before(async () => {
      source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
      harness = await startSignallingServer({ sources: [source] });
    });
    after(async () => {
      await harness.close();
      source.close();
    });

    test('completes DTLS (X25519 on both sides) and decodes frames', async () => {
      useOpensslX25519();
      let calls = 0;
      const counted = nacl.scalarMult;
      nacl.scalarMult = Object.assign((n: Uint8Array, p: Uint8Array) => {
        calls++;
        return counted(n, p);
      }, { base: counted.base, scalarLength: counted.scalarLength, groupElementLength: counted.groupElementLength });
      try {
        const client = await watchOverSignalling(harness.url, 'cam1');
        try {
          await client.receiver.waitFor(() => client.receiver.accessUnits >= 10 && client.receiver.keyframes >= 1, 15_000, 'frames');
          assert.equal(client.receiver.damaged, 0);
          // The server's and the viewer's shared secret: both sides are werift in this process.
          assert.equal(calls, 2, 'both ends of the handshake went through it');
        } finally {
          await client.close();
        }
      } finally {
        nacl.scalarMult = counted;
      }
    });
  });
});
