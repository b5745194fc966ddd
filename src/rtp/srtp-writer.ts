/**
 * SRTP protection for the viewer fan-out, without werift's per-packet object churn.
 *
 * werift's send path (RTCRtpSender.sendRtp -> RtpPacket.clone -> header-extension rebuild ->
 * RtpHeader.serialize -> SrtpSession.encrypt -> Buffer.concat -> async ICE send) costs 35-40 µs of
 * CPU per packet. Here the 12-byte RTP header is written straight into the output buffer, the IV
 * is patched from a per-stream precomputed base, and the keys are KeyObjects so OpenSSL does not
 * re-import raw key bytes per packet. The session keys are the ones werift derived from the DTLS
 * handshake (`dtlsTransport.srtp.localContext`), so the receiver needs nothing special.
 *
 * Both profiles werift negotiates are covered: AES_CM_128_HMAC_SHA1_80 (RFC 3711) and
 * AEAD_AES_128_GCM (RFC 7714, werift's preference, so what Chromium and werift peers get).
 */
import { createCipheriv, createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { RTP_HEADER_LENGTH as RTP_HEADER_BYTES, writeRtpHeaderAt } from '../media/rtp.js';

export const SRTP_PROFILE_AES128_CM_SHA1_80 = 1;
export const SRTP_PROFILE_AEAD_AES_128_GCM = 7;

/** The slice of werift's SRTP context this writer needs (public fields of `Context`). */
export interface SrtpKeyMaterial {
  profile: number;
  srtpSessionKey: Buffer;
  srtpSessionSalt: Buffer;
  srtpSessionAuthTag: Buffer;
}

/** Random session keys of a profile's sizes (key, salt, auth key), for the native binary's self-tests. */
export function randomSessionKeys(profile: number): { key: Buffer; salt: Buffer; authKey: Buffer } {
  return { key: randomBytes(16), salt: randomBytes(profile === SRTP_PROFILE_AEAD_AES_128_GCM ? 12 : 14), authKey: randomBytes(20) };
}

/** Protects one outgoing RTP stream's packets: this JavaScript writer, or the native one (native-fanout.ts). */
export interface RtpProtector {
  /** A new packet as the pieces of one datagram; sequence numbers in sending order. */
  protectParts(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer): Buffer[];
  /** An already-sent sequence number again (a retransmission): the same bytes as the first time. */
  reprotectParts(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer): Buffer[];
}

/**
 * One outgoing RTP stream (one SSRC) of one viewer. It owns the rollover counter, so it must see
 * every packet of that SSRC in sequence order; retransmissions reuse already-protected bytes.
 */
export class SrtpStreamWriter implements RtpProtector {
  private readonly profile: number;
  private readonly key: KeyObject;
  /** HMAC-SHA1 key (AES-CM profile only; unused for GCM). */
  private readonly authKey: KeyObject;
  /** IV with salt and SSRC folded in; ROC and sequence number are XORed in per packet. */
  private readonly ivBase: Buffer;
  private readonly iv: Buffer;
  private readonly rocBytes = Buffer.alloc(4);
  private readonly overhead: number;
  private roc = 0;
  private lastSeq = -1;

  constructor(keys: SrtpKeyMaterial, readonly ssrc: number) {
    if (keys.profile !== SRTP_PROFILE_AES128_CM_SHA1_80 && keys.profile !== SRTP_PROFILE_AEAD_AES_128_GCM) {
      throw new Error(`unsupported SRTP profile ${keys.profile}`);
    }
    this.profile = keys.profile;
    this.key = createSecretKey(keys.srtpSessionKey);
    if (this.profile === SRTP_PROFILE_AES128_CM_SHA1_80) {
      this.authKey = createSecretKey(keys.srtpSessionAuthTag);
      // RFC 3711 4.1.1: IV = (salt << 16) XOR (SSRC << 64) XOR (index << 16), 16 bytes.
      this.ivBase = Buffer.alloc(16);
      keys.srtpSessionSalt.copy(this.ivBase, 0, 0, 14);
      this.ivBase.writeUInt32BE((this.ivBase.readUInt32BE(4) ^ ssrc) >>> 0, 4);
      this.iv = Buffer.alloc(16);
      this.overhead = 10;
    } else {
      this.authKey = this.key;
      // RFC 7714 8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt, 12 bytes.
      this.ivBase = Buffer.alloc(12);
      keys.srtpSessionSalt.copy(this.ivBase, 0, 0, 12);
      this.ivBase.writeUInt32BE((this.ivBase.readUInt32BE(2) ^ ssrc) >>> 0, 2);
      this.iv = Buffer.alloc(12);
      this.overhead = 16;
    }
  }

  /** Bytes SRTP adds after the payload (auth tag). */
  get trailerBytes(): number {
    return this.overhead;
  }

  /**
   * Builds and protects one RTP packet: V=2, no padding/extension/CSRC, this writer's SSRC.
   * Sequence numbers must be given in sending order (the ROC advances on wrap).
   */
  protect(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer): Buffer {
    if (this.lastSeq >= 0 && sequenceNumber < this.lastSeq && this.lastSeq - sequenceNumber > 0x8000) {
      this.roc = (this.roc + 1) >>> 0;
    }
    this.lastSeq = sequenceNumber;
    return this.seal(payloadType, marker, sequenceNumber, timestamp, payload, this.roc);
  }

  /**
   * Protects an already-sent sequence number again (a retransmission): same index, so the same
   * bytes as the first time. Works across a rollover for packets sent just before it.
   */
  reprotect(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer): Buffer {
    return this.seal(payloadType, marker, sequenceNumber, timestamp, payload, this.rocFor(sequenceNumber));
  }

  /**
   * Like `protect`, but as the three pieces of the packet (header, encrypted payload, tag) for a
   * scatter/gather datagram send: it saves allocating and copying a whole-packet buffer per viewer
   * per packet, which mattered for GC at 50 viewers.
   */
  protectParts(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer): Buffer[] {
    if (this.lastSeq >= 0 && sequenceNumber < this.lastSeq && this.lastSeq - sequenceNumber > 0x8000) {
      this.roc = (this.roc + 1) >>> 0;
    }
    this.lastSeq = sequenceNumber;
    return this.sealParts(payloadType, marker, sequenceNumber, timestamp, payload, this.roc);
  }

  /** `reprotect` as parts (see `protectParts`). */
  reprotectParts(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer): Buffer[] {
    return this.sealParts(payloadType, marker, sequenceNumber, timestamp, payload, this.rocFor(sequenceNumber));
  }

  private rocFor(sequenceNumber: number): number {
    // A retransmission of a packet sent just before the last rollover belongs to the previous ROC.
    return sequenceNumber > this.lastSeq && sequenceNumber - this.lastSeq > 0x8000 ? (this.roc - 1) >>> 0 : this.roc;
  }

  /** The IV for this packet, in the reused scratch buffer (createCipheriv copies it). */
  private ivFor(sequenceNumber: number, roc: number): Buffer {
    const iv = this.iv;
    this.ivBase.copy(iv);
    if (this.profile === SRTP_PROFILE_AES128_CM_SHA1_80) {
      iv.writeUInt32BE((iv.readUInt32BE(8) ^ roc) >>> 0, 8);
      iv.writeUInt16BE(iv.readUInt16BE(12) ^ sequenceNumber, 12);
    } else {
      iv.writeUInt32BE((iv.readUInt32BE(6) ^ roc) >>> 0, 6);
      iv.writeUInt16BE(iv.readUInt16BE(10) ^ sequenceNumber, 10);
    }
    return iv;
  }

  private sealParts(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer, roc: number): Buffer[] {
    const header = Buffer.allocUnsafe(RTP_HEADER_BYTES);
    writeRtpHeaderAt(header, 0, marker, payloadType, sequenceNumber, timestamp, this.ssrc);
    const iv = this.ivFor(sequenceNumber, roc);
    if (this.profile === SRTP_PROFILE_AES128_CM_SHA1_80) {
      const enc = createCipheriv('aes-128-ctr', this.key, iv).update(payload);
      this.rocBytes.writeUInt32BE(roc, 0);
      const tag = createHmac('sha1', this.authKey).update(header).update(enc).update(this.rocBytes).digest().subarray(0, 10);
      return [header, enc, tag];
    }
    const cipher = createCipheriv('aes-128-gcm', this.key, iv);
    cipher.setAAD(header);
    const enc = cipher.update(payload);
    cipher.final();
    return [header, enc, cipher.getAuthTag()];
  }

  private seal(payloadType: number, marker: boolean, sequenceNumber: number, timestamp: number, payload: Buffer, roc: number): Buffer {
    const out = Buffer.allocUnsafe(RTP_HEADER_BYTES + payload.length + this.overhead);
    writeRtpHeaderAt(out, 0, marker, payloadType, sequenceNumber, timestamp, this.ssrc);
    const header = out.subarray(0, RTP_HEADER_BYTES);
    const iv = this.ivFor(sequenceNumber, roc);
    if (this.profile === SRTP_PROFILE_AES128_CM_SHA1_80) {
      const enc = createCipheriv('aes-128-ctr', this.key, iv).update(payload);
      enc.copy(out, RTP_HEADER_BYTES);
      const authEnd = RTP_HEADER_BYTES + payload.length;
      this.rocBytes.writeUInt32BE(roc, 0);
      const tag = createHmac('sha1', this.authKey).update(out.subarray(0, authEnd)).update(this.rocBytes).digest();
      tag.copy(out, authEnd, 0, 10);
    } else {
      const cipher = createCipheriv('aes-128-gcm', this.key, iv);
      cipher.setAAD(header);
      const enc = cipher.update(payload);
      cipher.final();
      enc.copy(out, RTP_HEADER_BYTES);
      cipher.getAuthTag().copy(out, RTP_HEADER_BYTES + payload.length);
    }
    return out;
  }
}
