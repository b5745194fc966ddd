/**
 * The one STUN exchange a connected viewer keeps up: its Binding requests on the selected pair
 * (ICE keepalives and RFC 7675 consent checks, every 2.5-5 s from a browser), and our success
 * answers. Read and written straight from the bytes (RFC 8489 framing, RFC 8445 ICE attributes):
 * werift builds a message object per request and serialises its attributes three times over, which
 * was a large share of what a viewer still allocated once its RTCP was ours (viewer-rtcp.ts).
 *
 * Only plain requests are read here. Anything that can change ICE state (USE-CANDIDATE, a role
 * attribute that conflicts with ours, an unknown comprehension-required attribute) is left to
 * werift, which implements the rest of ICE.
 */
import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { ipAddressBytes } from '../util/address.js';

const HEADER_BYTES = 20;
const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR_MAPPED_ADDRESS_XOR = 0x0020;
const ATTR_USERNAME = 0x0006;
const ATTR_MESSAGE_INTEGRITY = 0x0008;
const ATTR_FINGERPRINT = 0x8028;
const ATTR_PRIORITY = 0x0024;
const ATTR_USE_CANDIDATE = 0x0025;
const ATTR_ICE_CONTROLLED = 0x8029;
const ATTR_ICE_CONTROLLING = 0x802a;
const FINGERPRINT_XOR = 0x5354554e;
const INTEGRITY_BYTES = 20;

export interface BindingRequest {
  /** The 12-byte transaction id (a view into the request). */
  transactionId: Buffer;
  /** USERNAME as bytes: `ours:theirs` for a check on our side of the pair. */
  username: Buffer;
  useCandidate: boolean;
  /** The role the sender claims: it is controlling, or controlled, or says neither. */
  senderRole: 'controlling' | 'controlled' | undefined;
  /** Where MESSAGE-INTEGRITY starts, for `hasValidIntegrity`. */
  integrityAt: number;
}

/**
 * Walks a STUN message of this type whose attributes end with MESSAGE-INTEGRITY and a valid
 * FINGERPRINT (RFC 8489 14.5-14.7): where MESSAGE-INTEGRITY starts, or undefined for anything else
 * or when `visit` refuses an attribute before it.
 */
function signedMessage(data: Buffer, messageType: number, visit: (type: number, value: number, length: number) => boolean): number | undefined {
  if (data.length < HEADER_BYTES + 8 || data.readUInt16BE(0) !== messageType) return undefined;
  if (data.readUInt32BE(4) !== MAGIC_COOKIE || data.readUInt16BE(2) + HEADER_BYTES !== data.length) return undefined;
  let integrityAt = -1;
  let fingerprintOk = false;
  for (let offset = HEADER_BYTES; offset + 4 <= data.length; ) {
    const type = data.readUInt16BE(offset);
    const length = data.readUInt16BE(offset + 2);
    const value = offset + 4;
    const next = value + ((length + 3) & ~3);
    if (next > data.length) return undefined;
    // After MESSAGE-INTEGRITY only FINGERPRINT may follow (RFC 8489 14.5).
    if (integrityAt >= 0 && type !== ATTR_FINGERPRINT) return undefined;
    if (type === ATTR_MESSAGE_INTEGRITY) {
      if (length !== INTEGRITY_BYTES) return undefined;
      integrityAt = offset;
    } else if (type === ATTR_FINGERPRINT) {
      if (length !== 4 || next !== data.length) return undefined;
      fingerprintOk = ((crc32(data.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0) === data.readUInt32BE(value);
    } else if (!visit(type, value, length)) {
      return undefined;
    }
    offset = next;
  }
  return fingerprintOk && integrityAt >= 0 ? integrityAt : undefined;
}

/**
 * A Binding request with a valid FINGERPRINT, USERNAME and MESSAGE-INTEGRITY in that order at the
 * end (RFC 8489 14.5-14.7), and only attributes this module knows; undefined for anything else,
 * which then goes to werift.
 */
export function readBindingRequest(data: Buffer): BindingRequest | undefined {
  let username: Buffer | undefined;
  let useCandidate = false;
  let senderRole: BindingRequest['senderRole'];
  const integrityAt = signedMessage(data, BINDING_REQUEST, (type, value, length) => {
    switch (type) {
      case ATTR_USERNAME:
        username = data.subarray(value, value + length);
        return true;
      case ATTR_USE_CANDIDATE:
        useCandidate = true;
        return true;
      case ATTR_ICE_CONTROLLING:
        senderRole = 'controlling';
        return true;
      case ATTR_ICE_CONTROLLED:
        senderRole = 'controlled';
        return true;
      case ATTR_PRIORITY:
        return true;
      default:
        // An unknown comprehension-required attribute (below 0x8000) needs werift's 420 answer;
        // comprehension-optional ones (browsers' network cost and the like) are ignored.
        return type >= 0x8000;
    }
  });
  if (integrityAt === undefined || !username) return undefined;
  return { transactionId: data.subarray(8, 20), username, useCandidate, senderRole, integrityAt };
}

/** HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, with the length as if it ended there. */
function integrityOf(message: Buffer, integrityAt: number, key: KeyObject): Buffer {
  const header = Buffer.from(message.subarray(0, HEADER_BYTES));
  header.writeUInt16BE(integrityAt + 4 + INTEGRITY_BYTES - HEADER_BYTES, 2);
  return createHmac('sha1', key).update(header).update(message.subarray(HEADER_BYTES, integrityAt)).digest();
}

/** The request's MESSAGE-INTEGRITY matches our ICE password (the key). */
export function hasValidIntegrity(data: Buffer, request: BindingRequest, key: KeyObject): boolean {
  const at = request.integrityAt;
  return timingSafeEqual(integrityOf(data, at, key), data.subarray(at + 4, at + 4 + INTEGRITY_BYTES));
}

/** A message's header, with room for attributes up to `integrityAt` and for `signed` to end it. */
function unsignedMessage(messageType: number, transactionId: Buffer, integrityAt: number): Buffer {
  const out = Buffer.alloc(integrityAt + 4 + INTEGRITY_BYTES + 8);
  out.writeUInt16BE(messageType, 0);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(out, 8, 0, 12);
  return out;
}

/**
 * Ends a message whose attributes are written up to `integrityAt`: MESSAGE-INTEGRITY with the key
 * there, then FINGERPRINT, the header's length counting both (`out` has room for exactly them).
 */
function signed(out: Buffer, integrityAt: number, key: KeyObject): Buffer {
  const fingerprintAt = integrityAt + 4 + INTEGRITY_BYTES;
  out.writeUInt16BE(ATTR_MESSAGE_INTEGRITY, integrityAt);
  out.writeUInt16BE(INTEGRITY_BYTES, integrityAt + 2);
  integrityOf(out, integrityAt, key).copy(out, integrityAt + 4);
  out.writeUInt16BE(fingerprintAt + 8 - HEADER_BYTES, 2);
  out.writeUInt16BE(ATTR_FINGERPRINT, fingerprintAt);
  out.writeUInt16BE(4, fingerprintAt + 2);
  out.writeUInt32BE((crc32(out.subarray(0, fingerprintAt)) ^ FINGERPRINT_XOR) >>> 0, fingerprintAt + 4);
  return out;
}

/**
 * A Binding success answer: XOR-MAPPED-ADDRESS (where the request came from), then
 * MESSAGE-INTEGRITY with our ICE password, then FINGERPRINT.
 */
export function writeBindingSuccess(transactionId: Buffer, host: string, port: number, key: KeyObject): Buffer {
  const address = ipAddressBytes(host);
  if (!address) throw new Error(`not an IP address: ${host}`);
  const v4 = address.length === 4;
  const addressBytes = address.length;
  const mappedLength = 4 + addressBytes;
  const integrityAt = HEADER_BYTES + 4 + mappedLength;
  const out = unsignedMessage(BINDING_SUCCESS, transactionId, integrityAt);
  out.writeUInt16BE(ATTR_MAPPED_ADDRESS_XOR, HEADER_BYTES);
  out.writeUInt16BE(mappedLength, HEADER_BYTES + 2);
  out[HEADER_BYTES + 5] = v4 ? 0x01 : 0x02;
  out.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), HEADER_BYTES + 6);
  // The address XORed with the cookie (IPv4) or with the cookie and transaction id (IPv6).
  for (let i = 0; i < addressBytes; i++) out[HEADER_BYTES + 8 + i] = address[i]! ^ out[4 + i]!;
  return signed(out, integrityAt, key);
}

/**
 * Our own Binding request (an RFC 7675 consent check): USERNAME `theirs:ours`, PRIORITY, our role
 * with a tie-breaker, MESSAGE-INTEGRITY with the viewer's ICE password (the key), FINGERPRINT.
 */
export function writeBindingRequest(transactionId: Buffer, username: string, key: KeyObject, controlling: boolean, tieBreaker: bigint, priority: number): Buffer {
  const name = Buffer.from(username, 'utf8');
  const usernameLength = (name.length + 3) & ~3;
  const priorityAt = HEADER_BYTES + 4 + usernameLength;
  const roleAt = priorityAt + 8;
  const integrityAt = roleAt + 12;
  const out = unsignedMessage(BINDING_REQUEST, transactionId, integrityAt);
  out.writeUInt16BE(ATTR_USERNAME, HEADER_BYTES);
  out.writeUInt16BE(name.length, HEADER_BYTES + 2);
  name.copy(out, HEADER_BYTES + 4);
  out.writeUInt16BE(ATTR_PRIORITY, priorityAt);
  out.writeUInt16BE(4, priorityAt + 2);
  out.writeUInt32BE(priority >>> 0, priorityAt + 4);
  out.writeUInt16BE(controlling ? ATTR_ICE_CONTROLLING : ATTR_ICE_CONTROLLED, roleAt);
  out.writeUInt16BE(8, roleAt + 2);
  out.writeBigUInt64BE(BigInt.asUintN(64, tieBreaker), roleAt + 4);
  return signed(out, integrityAt, key);
}

/**
 * The transaction id of a Binding success answer whose FINGERPRINT is right and whose
 * MESSAGE-INTEGRITY (the last attribute but FINGERPRINT) matches the key: the viewer's ICE password,
 * which signs the answers to our requests. Undefined for anything else.
 */
export function readBindingSuccess(data: Buffer, key: KeyObject): Buffer | undefined {
  const integrityAt = signedMessage(data, BINDING_SUCCESS, () => true);
  if (integrityAt === undefined) return undefined;
  if (!timingSafeEqual(integrityOf(data, integrityAt, key), data.subarray(integrityAt + 4, integrityAt + 4 + INTEGRITY_BYTES))) return undefined;
  return data.subarray(8, 20);
}
