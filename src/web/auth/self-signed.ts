/**
 * A self-signed X.509 certificate built with node:crypto alone. Node can parse and verify
 * certificates but has no generator, and the alternatives were worse: the openssl CLI is absent on
 * Windows and in slim containers (and its flags differ between OpenSSL and LibreSSL), and a
 * dependency would be a large ASN.1 library for ~100 lines of DER. The certificate is minimal and
 * standard: EC P-256 key, ecdsa-with-SHA256, v3 with subjectAltName (names and IPs of this machine),
 * basicConstraints CA:FALSE (so even a trusted copy cannot sign certificates for other sites),
 * keyUsage digitalSignature and extKeyUsage serverAuth, and at most 825 days of validity (what
 * Apple platforms accept for a TLS server certificate).
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { ipAddressBytes } from '../../util/address.js';

export const MAX_VALIDITY_DAYS = 825;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const sequence = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octetString = (data: Buffer): Buffer => tlv(0x04, data);
const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [parts[0]! * 40 + parts[1]!];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [part & 0x7f];
    for (let v = Math.floor(part / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** A positive INTEGER from unsigned big-endian bytes. */
function integer(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(0x02, trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** UTCTime until 2049, GeneralizedTime from 2050 (RFC 5280 4.1.2.5). */
function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHMMSS
  return date.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

function name(commonName: string): Buffer {
  return sequence(
    set(sequence(oid('2.5.4.10'), utf8String('Homebridge WebRTC Cameras'))),
    set(sequence(oid('2.5.4.3'), utf8String(commonName))),
  );
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), octetString(value));
}

export interface SelfSignedOptions {
  /** DNS names for subjectAltName (the first is also the common name). */
  dnsNames: ReadonlyArray<string>;
  /** IPv4/IPv6 addresses for subjectAltName. */
  ipAddresses: ReadonlyArray<string>;
  validityDays?: number;
  now?: Date;
}

export interface SelfSignedCertificate {
  certPem: string;
  keyPem: string;
}

export function createSelfSignedCertificate(options: SelfSignedOptions): SelfSignedCertificate {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = options.now ?? new Date();
  // An hour of slack for clocks that are a little behind (phones are often a minute or two off).
  const notBefore = new Date(now.getTime() - 3_600_000);
  const days = Math.min(options.validityDays ?? MAX_VALIDITY_DAYS, MAX_VALIDITY_DAYS);
  const notAfter = new Date(now.getTime() + days * 86_400_000 - 3_600_000);
  const ecdsaWithSha256 = sequence(oid('1.2.840.10045.4.3.2'));
  const subject = name(options.dnsNames[0] ?? 'localhost');

  const altNames: Buffer[] = [];
  for (const dns of options.dnsNames) altNames.push(tlv(0x82, Buffer.from(dns, 'ascii')));
  for (const ip of options.ipAddresses) {
    const bytes = ipAddressBytes(ip);
    if (bytes) altNames.push(tlv(0x87, bytes));
  }
  const extensions = explicit(
    3,
    sequence(
      extension('2.5.29.19', true, sequence()), // basicConstraints: CA:FALSE
      extension('2.5.29.15', true, tlv(0x03, Buffer.from([0x07, 0x80]))), // keyUsage: digitalSignature
      extension('2.5.29.37', false, sequence(oid('1.3.6.1.5.5.7.3.1'))), // extKeyUsage: serverAuth
      extension('2.5.29.17', false, sequence(...altNames)), // subjectAltName
    ),
  );
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f; // positive, and at most 16 bytes
  const tbs = sequence(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(serial),
    ecdsaWithSha256,
    subject, // issuer: self-signed
    sequence(time(notBefore), time(notAfter)),
    subject,
    publicKey.export({ type: 'spki', format: 'der' }),
    extensions,
  );
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const der = sequence(tbs, ecdsaWithSha256, tlv(0x03, Buffer.from([0]), signature));
  const base64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return {
    certPem: `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
