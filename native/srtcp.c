/*
 * srtcp: a viewer's RTCP protected and opened, both SRTCP profiles werift negotiates:
 * - AES_CM_128_HMAC_SHA1_80 (RFC 3711 3.4): header | ciphertext | E+index | tag(10), the tag
 *   covering everything before it;
 * - AEAD_AES_128_GCM (RFC 7714 9 and 17): header | ciphertext+tag(16) | E+index, the first 8 bytes
 *   and the E+index word as associated data (the whole packet when it is not encrypted).
 *
 * Why native: in JavaScript each packet, sent or received, costs a new cipher and HMAC object
 * (createCipheriv cannot change its IV). With a sender report a second per viewer and the viewer's
 * reports coming back, those objects were the largest share of what a settled viewer allocated,
 * and so of what grew V8's young generation. Here a context keys its ciphers once and resets only
 * the IV per packet, and the caller's buffers take the output.
 *
 * Only the cryptography is here. src/rtp/srtcp.ts keeps the send index per SSRC and the replay
 * window, and its JavaScript cryptography stays the fallback and the reference: the bytes are the
 * same (the plugin checks that once before it uses this, and the tests compare them).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define ADDON_PART "srtcp"
#include "addon.h"

#define PROFILE_AES128_CM_SHA1_80 1
#define PROFILE_AEAD_AES_128_GCM 7
#define HEADER_BYTES 8
#define INDEX_BYTES 4
#define CM_TAG_BYTES 10
#define GCM_TAG_BYTES 16
#define MAX_INDEX 0x7fffffffu
#define ENCRYPTED_FLAG 0x80000000u
/* srtcpUnprotect's answers besides a length. */
#define REFUSED_SHORT (-2)
#define REFUSED_AUTHENTICATION (-1)

static const napi_type_tag SRTCP_TAG = {0x3b8e5d17c4a2f690ULL, 0x6d01f9c37a5e2b48ULL};

typedef struct {
  int profile;
  int salt_bytes;
  uint8_t salt[14];
  /* AES-CTR (both ways) or AES-GCM encrypting. */
  EVP_CIPHER_CTX *encrypt;
  /* AES-GCM decrypting, which checks the tag; NULL for AES-CTR. */
  EVP_CIPHER_CTX *decrypt;
  /* HMAC-SHA1, AES-CM profile only. */
  EVP_MAC_CTX *mac;
} srtcp_context;

static uint32_t read_u32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void write_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void free_context(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  srtcp_context *c = data;
  if (c->encrypt) EVP_CIPHER_CTX_free(c->encrypt);
  if (c->decrypt) EVP_CIPHER_CTX_free(c->decrypt);
  if (c->mac) EVP_MAC_CTX_free(c->mac);
  free(c);
}

/* RFC 3711 4.1.1 (16 bytes: SSRC at 4, index at 10) or RFC 7714 9.1 (12: SSRC at 2, index at 8), salted. */
static void iv_for(const srtcp_context *c, uint32_t ssrc, uint32_t index, uint8_t iv[16]) {
  memset(iv, 0, 16);
  int cm = c->profile == PROFILE_AES128_CM_SHA1_80;
  write_u32(iv + (cm ? 4 : 2), ssrc);
  write_u32(iv + (cm ? 10 : 8), index);
  for (int i = 0; i < c->salt_bytes; i++) iv[i] ^= c->salt[i];
}

/* HMAC-SHA1 of data, truncated to 10 bytes. */
static int cm_tag(srtcp_context *c, const uint8_t *data, size_t length, uint8_t tag[CM_TAG_BYTES]) {
  uint8_t full[64];
  size_t full_len = 0;
  /* A NULL key re-initialises HMAC with the key already set. */
  if (EVP_MAC_init(c->mac, NULL, 0, NULL) != 1 || EVP_MAC_update(c->mac, data, length) != 1) return 0;
  if (EVP_MAC_final(c->mac, full, &full_len, sizeof(full)) != 1 || full_len < CM_TAG_BYTES) return 0;
  memcpy(tag, full, CM_TAG_BYTES);
  return 1;
}

/* Compares without leaving when the first byte differs, so the time says nothing of the tag. */
static int same_bytes(const uint8_t *a, const uint8_t *b, size_t length) {
  uint8_t difference = 0;
  for (size_t i = 0; i < length; i++) difference |= (uint8_t)(a[i] ^ b[i]);
  return difference == 0;
}

/* createSrtcp(profile, key, salt, authKey) -> external */
static napi_value create_srtcp(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t profile;
  uint8_t *key, *salt, *auth;
  size_t key_len, salt_len, auth_len;
  if (argc < 4 || napi_get_value_uint32(env, argv[0], &profile) != napi_ok || !get_buffer(env, argv[1], &key, &key_len) ||
      !get_buffer(env, argv[2], &salt, &salt_len) || !get_buffer(env, argv[3], &auth, &auth_len)) {
    return throw_error(env, "createSrtcp(profile, key, salt, authKey): bad arguments");
  }
  if (profile != PROFILE_AES128_CM_SHA1_80 && profile != PROFILE_AEAD_AES_128_GCM) return throw_error(env, "createSrtcp: unsupported SRTP profile");
  if (key_len != 16) return throw_error(env, "createSrtcp: the key must be 16 bytes");
  int salt_bytes = profile == PROFILE_AES128_CM_SHA1_80 ? 14 : 12;
  if (salt_len < (size_t)salt_bytes) return throw_error(env, "createSrtcp: salt too short");

  srtcp_context *c = calloc(1, sizeof(srtcp_context));
  if (!c) return throw_error(env, "createSrtcp: out of memory");
  c->profile = (int)profile;
  c->salt_bytes = salt_bytes;
  memcpy(c->salt, salt, (size_t)salt_bytes);
  c->encrypt = EVP_CIPHER_CTX_new();
  int ok = c->encrypt != NULL;
  if (profile == PROFILE_AES128_CM_SHA1_80) {
    ok = ok && EVP_EncryptInit_ex(c->encrypt, EVP_aes_128_ctr(), NULL, key, NULL) == 1;
    EVP_MAC *hmac = ok ? EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
    c->mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    if (hmac) EVP_MAC_free(hmac);
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0), OSSL_PARAM_construct_end()};
    ok = ok && c->mac != NULL && EVP_MAC_init(c->mac, auth, auth_len, params) == 1;
  } else {
    c->decrypt = EVP_CIPHER_CTX_new();
    ok = ok && c->decrypt != NULL && EVP_EncryptInit_ex(c->encrypt, EVP_aes_128_gcm(), NULL, key, NULL) == 1 &&
         EVP_DecryptInit_ex(c->decrypt, EVP_aes_128_gcm(), NULL, key, NULL) == 1;
  }
  if (!ok) {
    free_context(env, c, NULL);
    return throw_error(env, "createSrtcp: OpenSSL refused the key");
  }
  return make_tagged_external(env, c, free_context, &SRTCP_TAG);
}

/* Writes the protected packet into out; returns its length, 0 when OpenSSL failed. */
static size_t seal(srtcp_context *c, const uint8_t *rtcp, size_t length, uint32_t index, uint8_t *out) {
  uint32_t word = ENCRYPTED_FLAG | index;
  uint8_t iv[16];
  iv_for(c, read_u32(rtcp + 4), index, iv);
  memcpy(out, rtcp, HEADER_BYTES);
  int written = 0;
  int body_len = (int)(length - HEADER_BYTES);
  if (c->profile == PROFILE_AES128_CM_SHA1_80) {
    if (EVP_EncryptInit_ex(c->encrypt, NULL, NULL, NULL, iv) != 1) return 0;
    if (EVP_EncryptUpdate(c->encrypt, out + HEADER_BYTES, &written, rtcp + HEADER_BYTES, body_len) != 1) return 0;
    write_u32(out + length, word);
    if (!cm_tag(c, out, length + INDEX_BYTES, out + length + INDEX_BYTES)) return 0;
    return length + INDEX_BYTES + CM_TAG_BYTES;
  }
  uint8_t aad[HEADER_BYTES + INDEX_BYTES];
  memcpy(aad, rtcp, HEADER_BYTES);
  write_u32(aad + HEADER_BYTES, word);
  if (EVP_EncryptInit_ex(c->encrypt, NULL, NULL, NULL, iv) != 1) return 0;
  if (EVP_EncryptUpdate(c->encrypt, NULL, &written, aad, (int)sizeof(aad)) != 1) return 0;
  if (EVP_EncryptUpdate(c->encrypt, out + HEADER_BYTES, &written, rtcp + HEADER_BYTES, body_len) != 1) return 0;
  if (EVP_EncryptFinal_ex(c->encrypt, out + length, &written) != 1) return 0;
  if (EVP_CIPHER_CTX_ctrl(c->encrypt, EVP_CTRL_GCM_GET_TAG, GCM_TAG_BYTES, out + length) != 1) return 0;
  write_u32(out + length + GCM_TAG_BYTES, word);
  return length + GCM_TAG_BYTES + INDEX_BYTES;
}

/*
 * srtcpProtect(context, rtcp, index, out) -> the protected packet's length in out
 *
 * rtcp: a compound RTCP packet (its first SSRC goes into the IV); index: its SRTCP index (the
 * caller counts them per SSRC); out: at least rtcp's length plus 14 (AES-CM) or 20 (GCM) bytes, and
 * not rtcp's own memory. Always encrypted (the E flag set).
 */
static napi_value srtcp_protect(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  srtcp_context *c;
  uint8_t *rtcp, *out;
  size_t length, out_len;
  uint32_t index;
  if (argc < 4 || !get_external(env, argv[0], &SRTCP_TAG, (void **)&c) || !get_buffer(env, argv[1], &rtcp, &length) ||
      napi_get_value_uint32(env, argv[2], &index) != napi_ok || !get_buffer(env, argv[3], &out, &out_len)) {
    return throw_error(env, "srtcpProtect(context, rtcp, index, out): bad arguments");
  }
  size_t overhead = INDEX_BYTES + (c->profile == PROFILE_AES128_CM_SHA1_80 ? CM_TAG_BYTES : GCM_TAG_BYTES);
  if (length < HEADER_BYTES || length > (size_t)INT32_MAX - overhead) return throw_error(env, "srtcpProtect: an RTCP packet has at least 8 bytes");
  if (index > MAX_INDEX) return throw_error(env, "srtcpProtect: the index has 31 bits");
  if (out_len < length + overhead) return throw_error(env, "srtcpProtect: out is too small");
  if (out < rtcp + length && rtcp < out + length + overhead) return throw_error(env, "srtcpProtect: out overlaps rtcp");
  size_t sealed = seal(c, rtcp, length, index, out);
  if (sealed == 0) return throw_error(env, "srtcpProtect: OpenSSL failed");
  napi_value result;
  CHECK(napi_create_uint32(env, (uint32_t)sealed, &result));
  return result;
}

/* The plaintext's length in out, or REFUSED_AUTHENTICATION. The caller checked the length. */
static int32_t open_packet(srtcp_context *c, const uint8_t *packet, size_t length, uint8_t *out) {
  int cm = c->profile == PROFILE_AES128_CM_SHA1_80;
  size_t index_at = cm ? length - CM_TAG_BYTES - INDEX_BYTES : length - INDEX_BYTES;
  size_t body_end = cm ? index_at : index_at - GCM_TAG_BYTES;
  uint32_t word = read_u32(packet + index_at);
  int encrypted = (word & ENCRYPTED_FLAG) != 0;
  uint8_t iv[16];
  iv_for(c, read_u32(packet + 4), word & MAX_INDEX, iv);
  int written = 0;
  int body_len = (int)(body_end - HEADER_BYTES);
  if (cm) {
    uint8_t expected[CM_TAG_BYTES];
    if (!cm_tag(c, packet, length - CM_TAG_BYTES, expected) || !same_bytes(expected, packet + length - CM_TAG_BYTES, CM_TAG_BYTES)) {
      return REFUSED_AUTHENTICATION;
    }
    memcpy(out, packet, HEADER_BYTES);
    if (!encrypted) {
      memcpy(out + HEADER_BYTES, packet + HEADER_BYTES, (size_t)body_len);
    } else if (EVP_EncryptInit_ex(c->encrypt, NULL, NULL, NULL, iv) != 1 ||
               EVP_EncryptUpdate(c->encrypt, out + HEADER_BYTES, &written, packet + HEADER_BYTES, body_len) != 1) {
      return REFUSED_AUTHENTICATION;
    }
    return (int32_t)body_end;
  }
  uint8_t tag[GCM_TAG_BYTES];
  memcpy(tag, packet + body_end, GCM_TAG_BYTES);
  EVP_CIPHER_CTX *d = c->decrypt;
  if (EVP_DecryptInit_ex(d, NULL, NULL, NULL, iv) != 1) return REFUSED_AUTHENTICATION;
  if (encrypted) {
    /* RFC 7714 17: the header and the E+index word are the associated data. */
    if (EVP_DecryptUpdate(d, NULL, &written, packet, HEADER_BYTES) != 1 ||
        EVP_DecryptUpdate(d, NULL, &written, packet + index_at, INDEX_BYTES) != 1 ||
        EVP_DecryptUpdate(d, out + HEADER_BYTES, &written, packet + HEADER_BYTES, body_len) != 1) {
      return REFUSED_AUTHENTICATION;
    }
  } else {
    /* Not encrypted: the whole packet but its tag is associated data. */
    if (EVP_DecryptUpdate(d, NULL, &written, packet, (int)body_end) != 1 ||
        EVP_DecryptUpdate(d, NULL, &written, packet + index_at, INDEX_BYTES) != 1) {
      return REFUSED_AUTHENTICATION;
    }
    memcpy(out + HEADER_BYTES, packet + HEADER_BYTES, (size_t)body_len);
  }
  uint8_t final_block[16];
  if (EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_GCM_SET_TAG, GCM_TAG_BYTES, tag) != 1 || EVP_DecryptFinal_ex(d, final_block, &written) <= 0) {
    /* What was decrypted is not authentic: nothing of it is handed back. */
    memset(out, 0, body_end);
    return REFUSED_AUTHENTICATION;
  }
  memcpy(out, packet, HEADER_BYTES);
  return (int32_t)body_end;
}

/*
 * srtcpUnprotect(context, packet, out) -> the plaintext's length in out; -1: not authentic;
 * -2: too short to be SRTCP of this profile
 *
 * out: at least the packet's length, and not its memory. The index and the replay window are the
 * caller's (it reads the index word itself).
 */
static napi_value srtcp_unprotect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  srtcp_context *c;
  uint8_t *packet, *out;
  size_t length, out_len;
  if (argc < 3 || !get_external(env, argv[0], &SRTCP_TAG, (void **)&c) || !get_buffer(env, argv[1], &packet, &length) ||
      !get_buffer(env, argv[2], &out, &out_len)) {
    return throw_error(env, "srtcpUnprotect(context, packet, out): bad arguments");
  }
  size_t overhead = INDEX_BYTES + (c->profile == PROFILE_AES128_CM_SHA1_80 ? CM_TAG_BYTES : GCM_TAG_BYTES);
  int32_t opened;
  if (length < HEADER_BYTES + overhead || length > INT32_MAX) {
    opened = REFUSED_SHORT;
  } else {
    if (out_len < length) return throw_error(env, "srtcpUnprotect: out is too small");
    if (out < packet + length && packet < out + out_len) return throw_error(env, "srtcpUnprotect: out overlaps the packet");
    opened = open_packet(c, packet, length, out);
  }
  napi_value result;
  CHECK(napi_create_int32(env, opened, &result));
  return result;
}

int define_srtcp(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"createSrtcp", NULL, create_srtcp, NULL, NULL, NULL, napi_default, NULL},
      {"srtcpProtect", NULL, srtcp_protect, NULL, NULL, NULL, napi_default, NULL},
      {"srtcpUnprotect", NULL, srtcp_unprotect, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) == napi_ok;
}
