/**
 * werift parses its DTLS certificate's PEM again, with @fidm/x509's ASN.1 parser in JavaScript,
 * every time it needs something from it: each read of a transport's `localParameters` (several per
 * viewer while its SDP is made) parses the certificate for its fingerprint, and each DTLS handshake
 * parses the certificate and the private key. Every viewer shares one certificate (werift's
 * process-wide `RTCDtlsTransport.localCertificate`), so it is the same parse each time: in a storm
 * of 50 viewers joining at once (`npm run bench:janus -- --storm 50`, V8's profile of Homebridge)
 * it took 95 ms of the 1.3 s the server was busy in the storm's first 1.5 s, about 1.9 ms a viewer,
 * while the others' WHEP answers waited.
 *
 * This keeps the results per certificate text. Nothing is kept that werift changes afterwards:
 * the fingerprint list is copied out for each caller, the certificate bytes are copied by werift
 * before use, and @fidm/x509's PrivateKey only fills its own PEM string in once.
 */
import { CipherContext, RTCCertificate } from 'werift';

interface Fingerprint {
  algorithm: string;
  value: string;
}

interface CertificateLike {
  certPem: string;
  getFingerprints(): Fingerprint[];
}

interface CipherContextLike {
  localCert: unknown;
  localPrivateKey: unknown;
  signatureHashAlgorithm: unknown;
  parseX509(certPem: unknown, keyPem: unknown, signatureHash: unknown): void;
}

/** How many distinct certificates' parses are kept (werift makes one per process). */
const MAX_KEPT = 4;

/** How often the real parses ran, for tests and for the bench's reading of a profile. */
export const dtlsCertificateParses = { fingerprints: 0, handshakeKeys: 0 };

let installed = false;

/** Puts the memory behind werift's two parsing sites, once per process. */
export function cacheDtlsCertificateParsing(): void {
  if (installed) return;
  installed = true;
  const certificate = RTCCertificate.prototype as unknown as CertificateLike;
  const originalFingerprints = certificate.getFingerprints;
  const fingerprints = new Map<string, Fingerprint[]>();
  certificate.getFingerprints = function (this: CertificateLike): Fingerprint[] {
    const key = this.certPem;
    if (typeof key !== 'string') return originalFingerprints.call(this);
    let known = fingerprints.get(key);
    if (!known) {
      dtlsCertificateParses.fingerprints++;
      known = originalFingerprints.call(this);
      remember(fingerprints, key, known);
    }
    // Each caller gets its own list of its own objects: werift's SDP code may hold on to either.
    return known.map((f) => Object.assign(Object.create(Object.getPrototypeOf(f) as object) as Fingerprint, f));
  };

  const cipher = CipherContext.prototype as unknown as CipherContextLike;
  const originalParse = cipher.parseX509;
  const parsed = new Map<string, { localCert: unknown; localPrivateKey: unknown }>();
  cipher.parseX509 = function (this: CipherContextLike, certPem: unknown, keyPem: unknown, signatureHash: unknown): void {
    if (typeof certPem !== 'string' || typeof keyPem !== 'string') {
      originalParse.call(this, certPem, keyPem, signatureHash);
      return;
    }
    const key = `${certPem}\u0000${keyPem}`;
    const known = parsed.get(key);
    if (known) {
      this.localCert = known.localCert;
      this.localPrivateKey = known.localPrivateKey;
      this.signatureHashAlgorithm = signatureHash;
      return;
    }
    dtlsCertificateParses.handshakeKeys++;
    originalParse.call(this, certPem, keyPem, signatureHash);
    remember(parsed, key, { localCert: this.localCert, localPrivateKey: this.localPrivateKey });
  };
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  // A new certificate is rare (werift makes one per process); forget the oldest past a few.
  if (map.size >= MAX_KEPT) map.delete(map.keys().next().value!);
  map.set(key, value);
}
