// werift's DTLS certificate parsed once per process instead of once per SDP read and per
// handshake (src/webrtc/dtls-certificate-cache.ts): the same fingerprints as werift's own code,
// lists each caller may keep, and real werift viewers' DTLS on the kept parse.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CipherContext, RTCCertificate, RTCDtlsTransport } from 'werift';

import { cacheDtlsCertificateParsing, dtlsCertificateParses } from '../../src/webrtc/dtls-certificate-cache.js';
import { SyntheticSource } from '../helpers/synthetic-source.js';
import { startSignallingServer } from './harness.js';
import { watchOverSignalling } from './werift-client.js';

interface Fingerprint {
  algorithm: string;
  value: string;
}

async function newCertificate(): Promise<RTCCertificate> {
  const { certPem, keyPem, signatureHash } = await CipherContext.createSelfSignedCertificateWithKey({ signature: 3, hash: 4 }, 23);
  return new RTCCertificate(keyPem, certPem, signatureHash);
}

describe("werift's DTLS certificate parsed once", () => {
  const werifts = (RTCCertificate.prototype as unknown as { getFingerprints(): Fingerprint[] }).getFingerprints;

  test("each certificate's fingerprint is werift's own, parsed once, in a list of its own per call", async () => {
    cacheDtlsCertificateParsing();
    cacheDtlsCertificateParsing();
    const [a, b] = [await newCertificate(), await newCertificate()];
    const before = dtlsCertificateParses.fingerprints;
    const first = a.getFingerprints() as Fingerprint[];
    const second = a.getFingerprints() as Fingerprint[];
    assert.equal(dtlsCertificateParses.fingerprints - before, 1, 'the second read is the kept one');
    assert.deepEqual(first.map((f) => ({ ...f })), werifts.call(a).map((f) => ({ ...f })));
    assert.match(first[0]!.value, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.notEqual(first, second, 'a list per caller');
    assert.notEqual(first[0], second[0], 'objects per caller');
    first[0]!.value = 'changed by a caller';
    assert.deepEqual(a.getFingerprints().map((f) => f.value), werifts.call(a).map((f) => f.value), 'what a caller changes is its own');
    const other = b.getFingerprints();
    assert.equal(dtlsCertificateParses.fingerprints - before, 2, 'another certificate is parsed for itself');
    assert.notEqual(other[0]!.value, a.getFingerprints()[0]!.value);
  });

  test("a handshake's certificate and key: werift's own bytes, parsed once for any number of handshakes", async () => {
    cacheDtlsCertificateParsing();
    const { certPem, keyPem, signatureHash } = await CipherContext.createSelfSignedCertificateWithKey({ signature: 3, hash: 4 }, 23);
    const before = dtlsCertificateParses.handshakeKeys;
    // 2: werift's SessionType.SERVER (not exported from its index).
    const contexts = [0, 1, 2].map(() => new CipherContext(2, certPem, keyPem, signatureHash) as unknown as { localCert: Buffer; localPrivateKey: { toPEM(): string }; signatureHashAlgorithm: unknown });
    assert.equal(dtlsCertificateParses.handshakeKeys - before, 1);
    for (const c of contexts) {
      assert.equal(c.signatureHashAlgorithm, signatureHash);
      assert.ok(Buffer.isBuffer(c.localCert) && c.localCert.length > 100);
      assert.deepEqual(c.localCert, contexts[0]!.localCert);
      assert.match(c.localPrivateKey.toPEM(), /-----BEGIN PRIVATE KEY-----/);
    }
    // The certificate's DER is what the PEM says.
    const der = Buffer.from(certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    assert.deepEqual(contexts[0]!.localCert, der);
  });

  test('three werift viewers complete DTLS and decode frames, the shared certificate parsed at most once', async () => {
    cacheDtlsCertificateParsing();
    await RTCDtlsTransport.SetupCertificate();
    const source = await SyntheticSource.create({ id: 'cam1', gop: 25 });
    const harness = await startSignallingServer({ sources: [source] });
    const fingerprintParses = dtlsCertificateParses.fingerprints;
    const keyParses = dtlsCertificateParses.handshakeKeys;
    const clients = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await watchOverSignalling(harness.url, 'cam1'));
      for (const client of clients) {
        await client.receiver.waitFor(() => client.receiver.accessUnits >= 10 && client.receiver.keyframes >= 1, 15_000, 'frames');
        assert.equal(client.receiver.damaged, 0);
      }
      // Six handshake ends (server and viewer are werift in this process, on the one certificate).
      assert.ok(dtlsCertificateParses.fingerprints - fingerprintParses <= 1, `fingerprint parses: ${dtlsCertificateParses.fingerprints - fingerprintParses}`);
      assert.ok(dtlsCertificateParses.handshakeKeys - keyParses <= 1, `handshake key parses: ${dtlsCertificateParses.handshakeKeys - keyParses}`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await harness.close();
      source.close();
    }
  });
});
