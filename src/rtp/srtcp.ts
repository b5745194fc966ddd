/**
 * SRTCP for a WebRTC viewer's RTCP, both ways, with the session keys werift derived from DTLS.
 *
 * werift opens each RTCP packet from a viewer with fresh buffers and ciphers, then parses it bit by
 * bit through strings: a single receiver report cost tens of kilobytes of garbage, per viewer per
 * second, and that garbage rate is what grew V8's young generation and so most of the memory a
 * viewer costs. Here the keys are KeyObjects, the IV and AAD are patched in reused buffers, and
 * the plaintext is handed on as bytes (see rtcp-feedback.ts for reading it).
 *
 * Both profiles werift negotiates:
 * - AES_CM_128_HMAC_SHA1_80 (RFC 3711 §3.4): `header | ciphertext | E+index | tag(10)`, the tag
 *   covering everything before it;
 * - AEAD_AES_128_GCM (RFC 7714 §9, §17): `header | ciphertext+tag(16) | E+index`, the first 8
 *   bytes and the E+index word as associated data.
 *
 * Replays are refused per sending SSRC with a 64-packet window (RFC 3711 §3.3.2), so a captured
 * keyframe request or NACK cannot be played back at the server.
 *
 * The cryptography is the native addon's where it loaded (native/srtcp.c: ciphers keyed once, the
 * output in the caller's buffers): in JavaScript every packet still costs a cipher and an HMAC
 * object, and at a sender report a second per viewer plus the viewer's own reports, those were
 * the largest share of what a settled viewer allocated. The JavaScript below stays the fallback
 * and the reference: before the addon's SRTCP is used, it must give the same bytes.
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { nativeFanout, type NativeFanout, type NativeSrtcpHandle } from './native-fanout.js';
import { randomSessionKeys, SRTP_PROFILE_AEAD_AES_128_GCM, SRTP_PROFILE_AES128_CM_SHA1_80 } from './srtp-writer.js';

/** The slice of werift's SRTP `Context` (public fields) that SRTCP needs. */
export interface SrtcpKeyMaterial {
  profile: number;
  srtcpSessionKey: Buffer;
  srtcpSessionSalt: Buffer;
  srtcpSessionAuthTag: Buffer;
}

const HEADER_BYTES = 8;
const INDEX_BYTES = 4;
const CM_TAG_BYTES = 10;
const GCM_TAG_BYTES = 16;
const ENCRYPTED_FLAG = 0x8000_0000;
const MAX_INDEX = 0x7fff_ffff;
const REPLAY_WINDOW = 64;
/** What the addon's open buffer starts at: any RTCP a browser sends fits an Ethernet frame. */
const OPENED_BYTES = 1500;

/** Why a packet was not opened: counted by the caller, never thrown at the network. */
export type SrtcpRefusal = 'short' | 'authentication' | 'replay';

interface ReplayState {
  /** Highest index accepted so far. */
  highest: number;
  /** Bit k set: index `highest - k` was accepted (k < 64), as two 32-bit halves. */
  seenLow: number;
  seenHigh: number;
}

/** The addon's answer for a packet that did not authenticate (srtcpUnprotect). */
const NATIVE_NOT_AUTHENTIC = -1;

/** One context's cryptography: the addon's or the JavaScript's, chosen once per context. */
interface SrtcpCipher {
  readonly backend: 'native' | 'javascript';
  /** Writes the protected packet (with index `index`) into `out`, which has room for it. */
  seal(rtcp: Buffer, ssrc: number, index: number, out: Buffer): void;
  /**
   * The opened packet, or undefined when it does not authenticate. `indexAt` is where its E+index
   * word sits; the caller has checked its length.
   */
  open(packet: Buffer, ssrc: number, index: number, word: number, indexAt: number): Buffer | undefined;
}

/** The addon's SRTCP: ciphers keyed once in C, output in this context's buffers. */
class NativeSrtcpCipher implements SrtcpCipher {
  readonly backend = 'native';
  private readonly context: NativeSrtcpHandle;
  /** Where packets are opened, grown to the longest packet yet. */
  private opened: Buffer = Buffer.alloc(0);

  constructor(
    private readonly fanout: NativeFanout,
    keys: SrtcpKeyMaterial,
  ) {
    this.context = fanout.createSrtcp(keys.profile, keys.srtcpSessionKey, keys.srtcpSessionSalt, keys.srtcpSessionAuthTag ?? Buffer.alloc(0));
  }

  seal(rtcp: Buffer, _ssrc: number, index: number, out: Buffer): void {
    this.fanout.srtcpProtect(this.context, rtcp, index, out);
  }

  open(packet: Buffer): Buffer | undefined {
    if (this.opened.length < packet.length) this.opened = Buffer.alloc(Math.max(packet.length, OPENED_BYTES));
    const length = this.fanout.srtcpUnprotect(this.context, packet, this.opened);
    // The addon also answers "too short" (-2), but SrtcpContext refuses short packets first.
    if (length === NATIVE_NOT_AUTHENTIC || length < 0) return undefined;
    return this.opened.subarray(0, length);
  }
}

/**
 * SRTCP in Node's crypto: the fallback where the addon did not load, and the reference the addon
 * must match. `createCipheriv` cannot change its IV, so each packet costs a cipher (and for CM an
 * HMAC) object; the keys are KeyObjects and the IV and AAD are reused buffers.
 */
class JavascriptSrtcpCipher implements SrtcpCipher {
  readonly backend = 'javascript';
  private readonly cm: boolean;
  private readonly key: KeyObject;
  private readonly authKey: KeyObject | undefined;
  private readonly salt: Buffer;
  private readonly iv: Buffer;
  private readonly aad = Buffer.alloc(HEADER_BYTES + INDEX_BYTES);

  constructor(keys: SrtcpKeyMaterial) {
    this.cm = keys.profile === SRTP_PROFILE_AES128_CM_SHA1_80;
    this.key = createSecretKey(keys.srtcpSessionKey);
    this.authKey = this.cm ? createSecretKey(keys.srtcpSessionAuthTag) : undefined;
    this.iv = Buffer.alloc(this.cm ? 16 : 12);
    // Buffer.alloc, not Buffer.from: a small Buffer from Node's pool would keep its whole 8 KiB
    // slab alive for as long as the viewer watches.
    this.salt = Buffer.alloc(keys.srtcpSessionSalt.length);
    keys.srtcpSessionSalt.copy(this.salt);
  }

  seal(rtcp: Buffer, ssrc: number, index: number, out: Buffer): void {
    const word = (ENCRYPTED_FLAG | index) >>> 0;
    rtcp.copy(out, 0, 0, HEADER_BYTES);
    const iv = this.ivFor(ssrc, index);
    if (this.cm) {
      const body = createCipheriv('aes-128-ctr', this.key, iv).update(rtcp.subarray(HEADER_BYTES));
      body.copy(out, HEADER_BYTES);
      const indexAt = rtcp.length;
      out.writeUInt32BE(word, indexAt);
      const tag = createHmac('sha1', this.authKey!).update(out.subarray(0, indexAt + INDEX_BYTES)).digest();
      tag.copy(out, indexAt + INDEX_BYTES, 0, CM_TAG_BYTES);
      return;
    }
    const cipher = createCipheriv('aes-128-gcm', this.key, iv);
    cipher.setAAD(this.aadFor(rtcp, word));
    const body = cipher.update(rtcp.subarray(HEADER_BYTES));
    cipher.final();
    body.copy(out, HEADER_BYTES);
    cipher.getAuthTag().copy(out, rtcp.length);
    out.writeUInt32BE(word, rtcp.length + GCM_TAG_BYTES);
  }

  open(packet: Buffer, ssrc: number, index: number, word: number, indexAt: number): Buffer | undefined {
    const encrypted = word >>> 31 === 1;
    if (this.cm) {
      const expected = createHmac('sha1', this.authKey!).update(packet.subarray(0, packet.length - CM_TAG_BYTES)).digest();
      if (!timingSafeEqual(expected.subarray(0, CM_TAG_BYTES), packet.subarray(packet.length - CM_TAG_BYTES))) return undefined;
      const plain = Buffer.allocUnsafe(indexAt);
      packet.copy(plain, 0, 0, HEADER_BYTES);
      const body = packet.subarray(HEADER_BYTES, indexAt);
      if (encrypted) createDecipheriv('aes-128-ctr', this.key, this.ivFor(ssrc, index)).update(body).copy(plain, HEADER_BYTES);
      else body.copy(plain, HEADER_BYTES);
      return plain;
    }
    const tagAt = indexAt - GCM_TAG_BYTES;
    const decipher = createDecipheriv('aes-128-gcm', this.key, this.ivFor(ssrc, index));
    // RFC 7714 §17: unencrypted SRTCP authenticates the whole packet as associated data.
    decipher.setAAD(encrypted ? this.aadFor(packet, word) : Buffer.concat([packet.subarray(0, tagAt), packet.subarray(indexAt)]));
    decipher.setAuthTag(packet.subarray(tagAt, indexAt));
    const plain = Buffer.allocUnsafe(tagAt);
    packet.copy(plain, 0, 0, HEADER_BYTES);
    const body = encrypted ? decipher.update(packet.subarray(HEADER_BYTES, tagAt)) : packet.subarray(HEADER_BYTES, tagAt);
    try {
      decipher.final();
    } catch {
      return undefined;
    }
    body.copy(plain, HEADER_BYTES);
    return plain;
  }

  /** RFC 3711 4.1.1 (CM, 16 bytes) or RFC 7714 9.1 (GCM, 12 bytes), in the reused scratch buffer. */
  private ivFor(ssrc: number, index: number): Buffer {
    const iv = this.iv;
    iv.fill(0);
    if (this.cm) {
      iv.writeUInt32BE(ssrc, 4);
      iv.writeUInt32BE(index, 10);
    } else {
      iv.writeUInt32BE(ssrc, 2);
      iv.writeUInt32BE(index, 8);
    }
    for (let i = 0; i < iv.length && i < this.salt.length; i++) iv[i]! ^= this.salt[i]!;
    return iv;
  }

  private aadFor(packet: Buffer, word: number): Buffer {
    packet.copy(this.aad, 0, 0, HEADER_BYTES);
    this.aad.writeUInt32BE(word, HEADER_BYTES);
    return this.aad;
  }
}

export class SrtcpContext {
  private readonly cm: boolean;
  private readonly cipher: SrtcpCipher;
  private readonly tagBytes: number;
  private readonly sendIndex = new Map<number, number>();
  private readonly replay = new Map<number, ReplayState>();
  /** The last refusal, for the caller's counters and debug line. */
  lastRefusal: SrtcpRefusal | undefined;

  /**
   * `fanout`: the addon whose SRTCP to use, or null for the JavaScript cryptography; by default the
   * process's addon when it loaded and passed the SRTCP check (`nativeSrtcp`).
   */
  constructor(keys: SrtcpKeyMaterial, fanout: NativeFanout | null = nativeSrtcp() ?? null) {
    if (keys.profile !== SRTP_PROFILE_AES128_CM_SHA1_80 && keys.profile !== SRTP_PROFILE_AEAD_AES_128_GCM) {
      throw new Error(`unsupported SRTP profile ${keys.profile}`);
    }
    this.cm = keys.profile === SRTP_PROFILE_AES128_CM_SHA1_80;
    this.tagBytes = this.cm ? CM_TAG_BYTES : GCM_TAG_BYTES;
    // Only the chosen backend's state is built: a viewer has two contexts for as long as it watches.
    this.cipher = fanout ? new NativeSrtcpCipher(fanout, keys) : new JavascriptSrtcpCipher(keys);
  }

  /** Whose cryptography this context uses. */
  get backend(): 'native' | 'javascript' {
    return this.cipher.backend;
  }

  /** Bytes SRTCP adds to a compound packet. */
  get overhead(): number {
    return INDEX_BYTES + this.tagBytes;
  }

  /**
   * Protects an outgoing compound RTCP packet (its first SSRC names the index counter), encrypted.
   */
  protect(rtcp: Buffer): Buffer {
    if (rtcp.length < HEADER_BYTES) throw new Error('an RTCP packet has at least 8 bytes');
    const ssrc = rtcp.readUInt32BE(4);
    const index = this.sendIndex.get(ssrc) ?? 0;
    this.sendIndex.set(ssrc, index >= MAX_INDEX ? 0 : index + 1);
    const out = Buffer.allocUnsafe(rtcp.length + this.overhead);
    this.cipher.seal(rtcp, ssrc, index, out);
    return out;
  }

  /**
   * Opens a compound packet from the peer. Undefined when it is too short, fails authentication or
   * replays an index already seen (`lastRefusal` says which); nothing is thrown. The bytes returned
   * are good until the next call: read them, or copy what must be kept.
   */
  unprotect(packet: Buffer): Buffer | undefined {
    this.lastRefusal = undefined;
    if (packet.length < HEADER_BYTES + this.overhead) return this.refuse('short');
    const ssrc = packet.readUInt32BE(4);
    const indexAt = this.cm ? packet.length - CM_TAG_BYTES - INDEX_BYTES : packet.length - INDEX_BYTES;
    const word = packet.readUInt32BE(indexAt);
    const index = word & MAX_INDEX;
    const replay = this.replay.get(ssrc);
    if (replay && this.seenBefore(replay, index)) return this.refuse('replay');
    const plain = this.cipher.open(packet, ssrc, index, word, indexAt);
    if (!plain) return this.refuse('authentication');
    this.accept(ssrc, index, replay);
    return plain;
  }

  private refuse(reason: SrtcpRefusal): undefined {
    this.lastRefusal = reason;
    return undefined;
  }

  private seenBefore(state: ReplayState, index: number): boolean {
    if (index > state.highest) return false;
    const age = state.highest - index;
    if (age >= REPLAY_WINDOW) return true;
    return age < 32 ? ((state.seenLow >>> age) & 1) === 1 : ((state.seenHigh >>> (age - 32)) & 1) === 1;
  }

  private accept(ssrc: number, index: number, state: ReplayState | undefined): void {
    if (!state) {
      this.replay.set(ssrc, { highest: index, seenLow: 1, seenHigh: 0 });
      return;
    }
    if (index > state.highest) {
      const shift = index - state.highest;
      if (shift >= REPLAY_WINDOW) {
        state.seenLow = 1;
        state.seenHigh = 0;
      } else if (shift >= 32) {
        state.seenHigh = (state.seenLow << (shift - 32)) >>> 0;
        state.seenLow = 1;
      } else {
        state.seenHigh = ((state.seenHigh << shift) | (state.seenLow >>> (32 - shift))) >>> 0;
        state.seenLow = ((state.seenLow << shift) | 1) >>> 0;
      }
      state.highest = index;
      return;
    }
    const age = state.highest - index;
    if (age < 32) state.seenLow = (state.seenLow | (1 << age)) >>> 0;
    else state.seenHigh = (state.seenHigh | (1 << (age - 32))) >>> 0;
  }
}

/**
 * Opens and protects a few packets of each profile with the addon and with the JavaScript above,
 * across SSRCs and sizes, and refuses a tampered one: says what differs, undefined when nothing.
 */
export function nativeSrtcpSelfTestError(fanout: NativeFanout): string | undefined {
  for (const profile of [SRTP_PROFILE_AES128_CM_SHA1_80, SRTP_PROFILE_AEAD_AES_128_GCM]) {
    const { key, salt, authKey } = randomSessionKeys(profile);
    const keys: SrtcpKeyMaterial = { profile, srtcpSessionKey: key, srtcpSessionSalt: salt, srtcpSessionAuthTag: authKey };
    const [referenceOut, nativeOut] = [new SrtcpContext(keys, null), new SrtcpContext(keys, fanout)];
    const [referenceIn, nativeIn] = [new SrtcpContext(keys, null), new SrtcpContext(keys, fanout)];
    for (let i = 0; i < 6; i++) {
      const rtcp = randomBytes(8 + i * 60);
      rtcp.writeUInt32BE(0x1000 + (i % 2), 4);
      const expected = referenceOut.protect(rtcp);
      const sealed = nativeOut.protect(rtcp);
      if (!sealed.equals(expected)) return `SRTCP profile ${profile}, packet ${i}: the binary's bytes differ from the JavaScript's`;
      if (!nativeIn.unprotect(sealed)?.equals(rtcp)) return `SRTCP profile ${profile}, packet ${i}: the binary did not open its own packet`;
      if (!referenceIn.unprotect(sealed)?.equals(rtcp)) return `SRTCP profile ${profile}, packet ${i}: the JavaScript did not open the binary's packet`;
    }
    const tampered = nativeOut.protect(Buffer.alloc(28, 1));
    tampered[10]! ^= 1;
    if (nativeIn.unprotect(tampered) !== undefined) return `SRTCP profile ${profile}: the binary opened a tampered packet`;
  }
  return undefined;
}

let checked: { fanout: NativeFanout | undefined; reason: string } | undefined;

/**
 * The addon for SRTCP in this process, checked once against the JavaScript; undefined where it did
 * not load or its SRTCP differs (`srtcpBackendReason` says why).
 */
export function nativeSrtcp(): NativeFanout | undefined {
  checked ??= checkNativeSrtcp();
  return checked.fanout;
}

/** Why SRTCP runs in JavaScript here; empty when the addon does it. */
export function srtcpBackendReason(): string {
  checked ??= checkNativeSrtcp();
  return checked.reason;
}

function checkNativeSrtcp(): { fanout: NativeFanout | undefined; reason: string } {
  const status = nativeFanout();
  if (!status.loaded) return { fanout: undefined, reason: status.reason };
  try {
    const error = nativeSrtcpSelfTestError(status.fanout);
    return error ? { fanout: undefined, reason: error } : { fanout: status.fanout, reason: '' };
  } catch (error) {
    return { fanout: undefined, reason: `the binary's SRTCP failed its self-test: ${error instanceof Error ? error.message : String(error)}` };
  }
}
