/**
 * Tells an authentic DTLS alert from the viewer (it closed its connection) once werift's DTLS
 * socket has been let go (viewer-settle.ts).
 *
 * A browser that closes its RTCPeerConnection sends a close_notify alert; werift closed the viewer
 * on any alert it could decrypt. After the handshake an alert is an encrypted record: only its
 * header (content type 21, epoch, sequence number) is plain, so anyone who can put a datagram on
 * the wire with the viewer's source address could forge one. This opens the record with the key
 * the viewer writes with (DTLS 1.2 AEAD, RFC 5288/6655: AES-GCM, 4-byte implicit salt + 8-byte
 * explicit nonce, 16-byte tag), so only the viewer itself can end its session early; anything else
 * is left to the RTCP silence timeout.
 */
import { createDecipheriv, type CipherGCMTypes } from 'node:crypto';

const RECORD_HEADER_BYTES = 13;
const CONTENT_TYPE_ALERT = 21;
const EXPLICIT_NONCE_BYTES = 8;
const IMPLICIT_NONCE_BYTES = 4;
const TAG_BYTES = 16;

/** The key material the viewer protects its records with (copied: nothing of werift is kept). */
export interface DtlsReadKeys {
  algorithm: CipherGCMTypes;
  writeKey: Buffer;
  /** The 4-byte implicit part of the nonce (client_write_IV or server_write_IV). */
  implicitNonce: Buffer;
}

export class DtlsAlertReader {
  private readonly keys: DtlsReadKeys;

  constructor(keys: DtlsReadKeys) {
    if (keys.implicitNonce.length < IMPLICIT_NONCE_BYTES) throw new Error('DTLS implicit nonce too short');
    // Buffer.alloc, not a slice or Buffer.from: a small pooled Buffer would keep an 8 KiB slab alive.
    const writeKey = Buffer.alloc(keys.writeKey.length);
    keys.writeKey.copy(writeKey);
    const implicitNonce = Buffer.alloc(IMPLICIT_NONCE_BYTES);
    keys.implicitNonce.copy(implicitNonce, 0, 0, IMPLICIT_NONCE_BYTES);
    this.keys = { algorithm: keys.algorithm, writeKey, implicitNonce };
  }

  /**
   * True when the datagram holds an alert record the viewer really sent (any alert: close_notify or
   * a fatal one both end the session). Plain-text records (epoch 0), other content types, broken
   * framing and records that fail authentication are false.
   */
  isAuthenticAlert(datagram: Buffer): boolean {
    let offset = 0;
    while (offset + RECORD_HEADER_BYTES <= datagram.length) {
      const length = datagram.readUInt16BE(offset + 11);
      const end = offset + RECORD_HEADER_BYTES + length;
      if (end > datagram.length) return false;
      const epoch = datagram.readUInt16BE(offset + 3);
      if (datagram[offset] === CONTENT_TYPE_ALERT && epoch > 0 && this.opens(datagram.subarray(offset, end))) return true;
      offset = end;
    }
    return false;
  }

  private opens(record: Buffer): boolean {
    const fragment = record.subarray(RECORD_HEADER_BYTES);
    const plainLength = fragment.length - EXPLICIT_NONCE_BYTES - TAG_BYTES;
    if (plainLength < 2) return false;
    const nonce = Buffer.concat([this.keys.implicitNonce, fragment.subarray(0, EXPLICIT_NONCE_BYTES)]);
    // RFC 5246 6.2.3.3: additional data = epoch + sequence number (8) + type + version + plain length.
    const aad = Buffer.alloc(13);
    record.copy(aad, 0, 3, 11);
    aad[8] = record[0]!;
    record.copy(aad, 9, 1, 3);
    aad.writeUInt16BE(plainLength, 11);
    try {
      const decipher = createDecipheriv(this.keys.algorithm, this.keys.writeKey, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad, { plaintextLength: plainLength });
      decipher.setAuthTag(fragment.subarray(fragment.length - TAG_BYTES));
      decipher.update(fragment.subarray(EXPLICIT_NONCE_BYTES, fragment.length - TAG_BYTES));
      decipher.final();
      return true;
    } catch {
      return false;
    }
  }
}

/** werift's AEAD cipher suite object (structural: werift does not export its type). */
interface WeriftAeadCipher {
  blockAlgorithm?: unknown;
  clientWriteKey?: unknown;
  serverWriteKey?: unknown;
  clientNonce?: unknown;
  serverNonce?: unknown;
}

/**
 * The viewer's read keys from werift's DTLS transport (`RTCDtlsTransport.dtls`: its DtlsSocket,
 * whose `cipher.cipher` is the negotiated suite and `sessionType` 1 = client, 2 = server). Undefined
 * when the shape is not the one known here (another werift, another suite): alerts are then not
 * read, and the silence timeout ends a viewer that left.
 */
export function dtlsAlertReaderFromWerift(dtlsTransport: unknown): DtlsAlertReader | undefined {
  const socket = (dtlsTransport as { dtls?: { cipher?: { cipher?: WeriftAeadCipher }; sessionType?: unknown } } | undefined)?.dtls;
  const cipher = socket?.cipher?.cipher;
  if (!cipher) return undefined;
  const algorithm = cipher.blockAlgorithm;
  if (algorithm !== 'aes-128-gcm' && algorithm !== 'aes-256-gcm') return undefined;
  // We are the client (1): the viewer writes with the server's keys; we are the server (2): with the client's.
  const weAreClient = socket?.sessionType === 1;
  const writeKey = weAreClient ? cipher.serverWriteKey : cipher.clientWriteKey;
  const nonce = weAreClient ? cipher.serverNonce : cipher.clientNonce;
  if (!Buffer.isBuffer(writeKey) || !Buffer.isBuffer(nonce)) return undefined;
  try {
    return new DtlsAlertReader({ algorithm, writeKey, implicitNonce: nonce });
  } catch {
    return undefined;
  }
}
