/*
 * srtp-fanout: SRTP protection and batched UDP sends for the viewer fan-out.
 *
 * Why native: in JavaScript each protected packet costs a new OpenSSL cipher object
 * (createCipheriv cannot change its IV) and one dgram send through libuv; together they were
 * about half of the plugin's CPU per viewer-packet. Here each outgoing stream keeps one cipher
 * context, keyed once, whose IV is reset per packet, and a viewer's packets of one frame leave in
 * one sendmmsg(2) call.
 *
 * The bytes are exactly those of src/rtp/srtp-writer.ts (the pure-JavaScript writer, which stays
 * the fallback and the reference the tests compare against): a 12-byte RTP header (V=2, no
 * padding, extension or CSRC), the encrypted payload, and the tag, for AES_CM_128_HMAC_SHA1_80
 * (RFC 3711) and AEAD_AES_128_GCM (RFC 7714).
 *
 * It links against nothing: N-API (node_api.h, ABI-stable across Node versions) and the OpenSSL
 * that Node itself exports. Built by scripts/build-native.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#define NAPI_VERSION 8
#include <node_api.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define ADDON_PART "srtp-fanout"
#include "addon.h"

#define PROFILE_AES128_CM_SHA1_80 1
#define PROFILE_AEAD_AES_128_GCM 7
#define RTP_HEADER_BYTES 12
/* The largest payload whose SRTP packet still fits a UDP datagram: 65507 - 12 (header) - 16 (tag). */
#define MAX_PAYLOAD_BYTES 65479
/* sendmmsg() batch: a 1080p keyframe is a few hundred packets, sent in chunks of this many. */
#define BATCH 64

#ifndef SOURCE_HASH
#define SOURCE_HASH "unknown"
#endif

typedef struct {
  int profile;
  uint32_t ssrc;
  /* IV with salt and SSRC folded in; ROC and sequence number are XORed in per packet. */
  uint8_t iv_base[16];
  int tag_bytes;
  EVP_CIPHER_CTX *cipher;
  EVP_MAC_CTX *mac; /* HMAC-SHA1, AES-CM profile only */
  uint32_t roc;
  int32_t last_seq;
} srtp_stream;

/*
 * Where a viewer's datagrams go. With a TURN channel (RFC 8656 §12), each one goes to the TURN
 * server instead, behind the 4-byte ChannelData header (channel number, length) that tells the
 * server which peer to relay it to: a relayed viewer's packets then leave as a direct one's do,
 * a frame per sendmmsg. Over UDP a ChannelData message needs no padding.
 */
typedef struct {
  struct sockaddr_storage addr;
  socklen_t len;
  uint16_t channel; /* 0: no channel, the datagram goes as it is */
} destination;

#define CHANNEL_HEADER_BYTES 4
#define FIRST_CHANNEL 0x4000
#define LAST_CHANNEL 0x4fff

/* ------------------------------------------------------------------------- big-endian bytes */

static void put_u16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void xor_u16(uint8_t *p, uint32_t v) {
  p[0] ^= (uint8_t)(v >> 8);
  p[1] ^= (uint8_t)v;
}

static void xor_u32(uint8_t *p, uint32_t v) {
  p[0] ^= (uint8_t)(v >> 24);
  p[1] ^= (uint8_t)(v >> 16);
  p[2] ^= (uint8_t)(v >> 8);
  p[3] ^= (uint8_t)v;
}

/* ----------------------------------------------------------------------------- N-API helpers */

napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

static int get_u32(napi_env env, napi_value value, uint32_t *out) {
  return napi_get_value_uint32(env, value, out) == napi_ok;
}

int get_buffer(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer) return 0;
  return napi_get_buffer_info(env, value, (void **)data, length) == napi_ok;
}

/* Each handle is tagged with its kind, so a destination passed as a stream is refused, not used. */
static const napi_type_tag STREAM_TAG = {0x5a1f6c0e2b9d4c71ULL, 0x8e3b0a4d6f215c97ULL};
static const napi_type_tag DESTINATION_TAG = {0x0c7d2e9b4f1a6358ULL, 0xa2e5f80b3c6d1947ULL};
static const napi_type_tag FRAME_TAG = {0x7e41b9a03d5c2f18ULL, 0x19c6e2f4a87b0d53ULL};

void free_block(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

int get_external(napi_env env, napi_value value, const napi_type_tag *tag, void **out) {
  napi_valuetype type;
  bool tagged = false;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external) return 0;
  if (napi_check_object_type_tag(env, value, tag, &tagged) != napi_ok || !tagged) return 0;
  return napi_get_value_external(env, value, out) == napi_ok && *out != NULL;
}

napi_value make_tagged_external(napi_env env, void *data, napi_finalize finalize, const napi_type_tag *tag) {
  napi_value result;
  if (napi_create_external(env, data, finalize, NULL, &result) != napi_ok) {
    finalize(env, data, NULL);
    return throw_error(env, "srtp-fanout: N-API call failed");
  }
  if (napi_type_tag_object(env, result, tag) != napi_ok) return throw_error(env, "srtp-fanout: N-API call failed");
  return result;
}

/* ---------------------------------------------------------------------------------- streams */

static void free_stream(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  srtp_stream *s = data;
  if (s->cipher) EVP_CIPHER_CTX_free(s->cipher);
  if (s->mac) EVP_MAC_CTX_free(s->mac);
  free(s);
}

/* createStream(profile, key, salt, authKey, ssrc) -> external */
static napi_value create_stream(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) return throw_error(env, "createStream(profile, key, salt, authKey, ssrc)");
  uint32_t profile, ssrc;
  uint8_t *key, *salt, *auth;
  size_t key_len, salt_len, auth_len;
  if (!get_u32(env, argv[0], &profile) || !get_buffer(env, argv[1], &key, &key_len) ||
      !get_buffer(env, argv[2], &salt, &salt_len) || !get_buffer(env, argv[3], &auth, &auth_len) ||
      !get_u32(env, argv[4], &ssrc)) {
    return throw_error(env, "createStream: bad arguments");
  }
  if (profile != PROFILE_AES128_CM_SHA1_80 && profile != PROFILE_AEAD_AES_128_GCM) {
    return throw_error(env, "createStream: unsupported SRTP profile");
  }
  if (key_len != 16) return throw_error(env, "createStream: the key must be 16 bytes");
  if (salt_len < (profile == PROFILE_AES128_CM_SHA1_80 ? 14u : 12u)) return throw_error(env, "createStream: salt too short");

  srtp_stream *s = calloc(1, sizeof(srtp_stream));
  if (!s) return throw_error(env, "createStream: out of memory");
  s->profile = (int)profile;
  s->ssrc = ssrc;
  s->last_seq = -1;
  s->cipher = EVP_CIPHER_CTX_new();
  int ok = s->cipher != NULL;
  if (profile == PROFILE_AES128_CM_SHA1_80) {
    /* RFC 3711 4.1.1: IV = (salt << 16) XOR (SSRC << 64) XOR (index << 16). */
    memcpy(s->iv_base, salt, 14);
    xor_u32(s->iv_base + 4, ssrc);
    s->tag_bytes = 10;
    ok = ok && EVP_EncryptInit_ex(s->cipher, EVP_aes_128_ctr(), NULL, key, s->iv_base) == 1;
    EVP_MAC *hmac = ok ? EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
    s->mac = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    if (hmac) EVP_MAC_free(hmac);
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0), OSSL_PARAM_construct_end()};
    ok = ok && s->mac != NULL && EVP_MAC_init(s->mac, auth, auth_len, params) == 1;
  } else {
    /* RFC 7714 8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt, 12 bytes. */
    memcpy(s->iv_base, salt, 12);
    xor_u32(s->iv_base + 2, ssrc);
    s->tag_bytes = 16;
    ok = ok && EVP_EncryptInit_ex(s->cipher, EVP_aes_128_gcm(), NULL, key, s->iv_base) == 1;
  }
  if (!ok) {
    free_stream(env, s, NULL);
    return throw_error(env, "createStream: OpenSSL refused the key");
  }
  return make_tagged_external(env, s, free_stream, &STREAM_TAG);
}

/* The rollover counter for a new packet (advances on a wrap) or for a retransmission. */
static uint32_t roc_for(srtp_stream *s, uint32_t seq, int retransmission) {
  if (retransmission) {
    /* A packet sent just before the last rollover belongs to the previous ROC. */
    return ((int32_t)seq > s->last_seq && (int32_t)seq - s->last_seq > 0x8000) ? s->roc - 1 : s->roc;
  }
  if (s->last_seq >= 0 && (int32_t)seq < s->last_seq && s->last_seq - (int32_t)seq > 0x8000) s->roc++;
  s->last_seq = (int32_t)seq;
  return s->roc;
}

/* Writes header, encrypted payload and tag into out; returns the packet's length, 0 on failure. */
static size_t seal(srtp_stream *s, uint32_t payload_type, int marker, uint32_t seq, uint32_t timestamp,
                   const uint8_t *payload, size_t payload_len, uint32_t roc, uint8_t *out) {
  out[0] = 0x80;
  out[1] = (uint8_t)((marker ? 0x80 : 0) | (payload_type & 0x7f));
  put_u16(out + 2, seq);
  put_u32(out + 4, timestamp);
  put_u32(out + 8, s->ssrc);
  uint8_t iv[16];
  int len = 0;
  uint8_t *body = out + RTP_HEADER_BYTES;
  if (s->profile == PROFILE_AES128_CM_SHA1_80) {
    memcpy(iv, s->iv_base, 16);
    xor_u32(iv + 8, roc);
    xor_u16(iv + 12, seq);
    if (EVP_EncryptInit_ex(s->cipher, NULL, NULL, NULL, iv) != 1) return 0;
    if (EVP_EncryptUpdate(s->cipher, body, &len, payload, (int)payload_len) != 1) return 0;
    uint8_t roc_bytes[4];
    put_u32(roc_bytes, roc);
    uint8_t tag[64];
    size_t tag_len = 0;
    /* A NULL key re-initialises HMAC with the key already set. */
    if (EVP_MAC_init(s->mac, NULL, 0, NULL) != 1) return 0;
    if (EVP_MAC_update(s->mac, out, RTP_HEADER_BYTES + payload_len) != 1) return 0;
    if (EVP_MAC_update(s->mac, roc_bytes, 4) != 1) return 0;
    if (EVP_MAC_final(s->mac, tag, &tag_len, sizeof(tag)) != 1 || tag_len < 10) return 0;
    memcpy(body + payload_len, tag, 10);
    return RTP_HEADER_BYTES + payload_len + 10;
  }
  memcpy(iv, s->iv_base, 12);
  xor_u32(iv + 6, roc);
  xor_u16(iv + 10, seq);
  if (EVP_EncryptInit_ex(s->cipher, NULL, NULL, NULL, iv) != 1) return 0;
  if (EVP_EncryptUpdate(s->cipher, NULL, &len, out, RTP_HEADER_BYTES) != 1) return 0;
  if (EVP_EncryptUpdate(s->cipher, body, &len, payload, (int)payload_len) != 1) return 0;
  if (EVP_EncryptFinal_ex(s->cipher, body + len, &len) != 1) return 0;
  if (EVP_CIPHER_CTX_ctrl(s->cipher, EVP_CTRL_GCM_GET_TAG, 16, body + payload_len) != 1) return 0;
  return RTP_HEADER_BYTES + payload_len + 16;
}

/* protect(stream, payloadType, marker, seq, timestamp, payload, retransmission) -> Buffer */
static napi_value protect(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  srtp_stream *s;
  uint32_t payload_type, seq, timestamp;
  bool marker = false, retransmission = false;
  uint8_t *payload;
  size_t payload_len;
  if (argc < 7 || !get_external(env, argv[0], &STREAM_TAG, (void **)&s) || !get_u32(env, argv[1], &payload_type) ||
      napi_get_value_bool(env, argv[2], &marker) != napi_ok || !get_u32(env, argv[3], &seq) ||
      !get_u32(env, argv[4], &timestamp) || !get_buffer(env, argv[5], &payload, &payload_len) ||
      napi_get_value_bool(env, argv[6], &retransmission) != napi_ok) {
    return throw_error(env, "protect: bad arguments");
  }
  if (payload_len > MAX_PAYLOAD_BYTES) return throw_error(env, "protect: payload larger than a UDP datagram can carry");
  seq &= 0xffff;
  uint32_t roc = roc_for(s, seq, retransmission);
  uint8_t *out;
  napi_value result;
  CHECK(napi_create_buffer(env, RTP_HEADER_BYTES + payload_len + (size_t)s->tag_bytes, (void **)&out, &result));
  if (seal(s, payload_type, marker, seq, timestamp, payload, payload_len, roc, out) == 0) {
    return throw_error(env, "protect: OpenSSL failed");
  }
  return result;
}

/* ----------------------------------------------------------------------------- destinations */

/*
 * An IPv6 literal, with the zone Node gives link-local addresses ("fe80::1%eth0", or a number
 * after the %) as the scope id. Returns 0 when it is not one, or names no interface here.
 */
static int parse_ipv6(const char *text, struct sockaddr_in6 *out) {
  char address[64];
  const char *zone = strchr(text, '%');
  size_t length = zone ? (size_t)(zone - text) : strlen(text);
  if (length >= sizeof(address)) return 0;
  memcpy(address, text, length);
  address[length] = '\0';
  if (inet_pton(AF_INET6, address, &out->sin6_addr) != 1) return 0;
  if (zone) {
    char *end = NULL;
    unsigned long number = strtoul(zone + 1, &end, 10);
    unsigned int index = (zone[1] != '\0' && *end == '\0') ? (unsigned int)number : if_nametoindex(zone + 1);
    if (index == 0) return 0;
    out->sin6_scope_id = index;
  }
  return 1;
}

int parse_socket_address(const char *ip, uint16_t port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof(*out));
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof(struct sockaddr_in);
    return 1;
  }
  if (parse_ipv6(ip, v6)) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *len = sizeof(struct sockaddr_in6);
    return 1;
  }
  return 0;
}

/*
 * createDestination(ip, port[, channel]) -> external; ip is a literal IPv4 or IPv6 address (with a
 * zone or not). With a channel (0x4000-0x4fff), ip and port are the TURN server's, and every
 * datagram sent there is framed as ChannelData for that channel.
 */
static napi_value create_destination(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char ip[64];
  size_t ip_len = 0;
  uint32_t port;
  uint32_t channel = 0;
  napi_valuetype channel_type = napi_undefined;
  if (argc >= 3) CHECK(napi_typeof(env, argv[2], &channel_type));
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], ip, sizeof(ip), &ip_len) != napi_ok ||
      !get_u32(env, argv[1], &port) || port == 0 || port > 65535 ||
      (channel_type != napi_undefined && (!get_u32(env, argv[2], &channel) || channel < FIRST_CHANNEL || channel > LAST_CHANNEL))) {
    return throw_error(env, "createDestination(ip, port[, channel]): bad arguments");
  }
  /* A longer string was cut to fit: it is no address, whatever its first 63 bytes say. */
  if (ip_len >= sizeof(ip) - 1) return throw_error(env, "createDestination: not an IP address");
  destination *d = calloc(1, sizeof(destination));
  if (!d) return throw_error(env, "createDestination: out of memory");
  if (!parse_socket_address(ip, (uint16_t)port, &d->addr, &d->len)) {
    free(d);
    return throw_error(env, "createDestination: not an IP address");
  }
  d->channel = (uint16_t)channel;
  return make_tagged_external(env, d, free_block, &DESTINATION_TAG);
}

/* ------------------------------------------------------------------------------ batch sends */

/*
 * UDP segmentation offload (Linux 4.18+): a run of equal-size packets, and one shorter packet
 * after it, goes to the kernel as one message that it cuts into datagrams (on the network card
 * when it can). A frame's RTP packets are such runs: the packetiser cuts full-size pieces and a
 * remainder. On by default; turned off for good at the first refusal, and by setSegmentationOffload.
 */
static int segmentation_offload = 1;
/* The kernel's limit on segments per message, and the 64 KiB a UDP datagram may carry in all. */
#define MAX_SEGMENTS 64
#define MAX_SEGMENTED_BYTES 65000
/* Larger packets (none the packetiser makes) go alone: a segment must fit a 1500-byte network. */
#define MAX_SEGMENT_BYTES 1472

/* Fills msgs for the n packets in iov; returns how many messages; packets_in[k] per message. */
static uint32_t build_messages(struct mmsghdr *msgs, struct iovec *iov, uint32_t n, uint32_t *packets_in,
                               void *control_buffers, destination *d, int segment) {
  union control_buffer {
    char buffer[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } *control = control_buffers;
  uint32_t m = 0;
  for (uint32_t i = 0; i < n;) {
    size_t size = iov[i].iov_len;
    uint32_t j = i + 1;
    if (segment && size <= MAX_SEGMENT_BYTES) {
      uint32_t limit = MAX_SEGMENTED_BYTES / (uint32_t)size;
      if (limit > MAX_SEGMENTS) limit = MAX_SEGMENTS;
      while (j < n && j - i < limit && iov[j].iov_len == size) j++;
      if (j < n && j - i < limit && iov[j].iov_len < size) j++;
    }
    struct msghdr *h = &msgs[m].msg_hdr;
    memset(&msgs[m], 0, sizeof(msgs[m]));
    h->msg_name = &d->addr;
    h->msg_namelen = d->len;
    h->msg_iov = &iov[i];
    h->msg_iovlen = j - i;
    if (j - i > 1) {
      h->msg_control = control[m].buffer;
      h->msg_controllen = sizeof(control[m].buffer);
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t gso_size = (uint16_t)size;
      memcpy(CMSG_DATA(c), &gso_size, sizeof(gso_size));
    }
    packets_in[m++] = j - i;
    i = j;
  }
  return m;
}

/*
 * trimNativeHeap() -> whether memory went back to the system.
 *
 * glibc keeps what C code frees (OpenSSL's handshake state, V8's compiler zones, libuv's buffers)
 * in its arenas for reuse, resident, and returns little of it on its own: after a burst of WebRTC
 * handshakes 8-16 MiB of a Homebridge process's RSS was such freed memory (bench:webrtc). This
 * hands the free pages of every arena back (malloc_trim(0) also advises the kernel of whole free
 * pages inside arenas, not only at their tops): a few milliseconds, which the caller spends rarely.
 */
static napi_value trim_native_heap(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
#ifdef __GLIBC__
  CHECK(napi_get_boolean(env, malloc_trim(0) != 0, &result));
#else
  CHECK(napi_get_boolean(env, false, &result));
#endif
  return result;
}

/*
 * V8's embedder API, v8::Isolate::GetCurrent() and v8::Isolate::MemoryPressureNotification(level),
 * by their (Itanium C++ ABI) names, which every Node this addon supports exports. They are weak: a
 * Node without them still loads the addon, and the hint below then does nothing. N-API has no
 * equivalent.
 */
extern void *_ZN2v87Isolate10GetCurrentEv(void) __attribute__((weak));
extern void _ZN2v87Isolate26MemoryPressureNotificationENS_19MemoryPressureLevelE(void *isolate, int level) __attribute__((weak));
/* v8::MemoryPressureLevel::kModerate */
#define V8_MEMORY_PRESSURE_MODERATE 1

/*
 * hintMemoryReduction() -> whether V8 was told.
 *
 * Asks V8 for the collection its memory reducer runs when a process goes idle: incremental, with
 * concurrent marking, so it costs no long pause (the moderate level; the critical one would be a
 * full collection at once). It also hands back the pages V8 keeps pooled after its young
 * generation shrinks. A burst of WebRTC handshakes grows that generation to its maximum; a
 * process whose allocation rate stays high enough (50 viewers watching) never goes idle in V8's
 * sense, so without this hint those pages stayed resident: about 16 MiB after 50 joins
 * (bench:webrtc, /proc/self/smaps).
 */
static napi_value hint_memory_reduction(napi_env env, napi_callback_info info) {
  (void)info;
  int told = 0;
  if (_ZN2v87Isolate10GetCurrentEv && _ZN2v87Isolate26MemoryPressureNotificationENS_19MemoryPressureLevelE) {
    void *isolate = _ZN2v87Isolate10GetCurrentEv();
    if (isolate) {
      _ZN2v87Isolate26MemoryPressureNotificationENS_19MemoryPressureLevelE(isolate, V8_MEMORY_PRESSURE_MODERATE);
      told = 1;
    }
  }
  napi_value result;
  CHECK(napi_get_boolean(env, told, &result));
  return result;
}

/* setSegmentationOffload(enabled) -> whether it was on (for tests and the benchmark). */
static napi_value set_segmentation_offload(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  bool enabled = true;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_bool(env, argv[0], &enabled) != napi_ok) return throw_error(env, "setSegmentationOffload(enabled)");
  napi_value result;
  CHECK(napi_get_boolean(env, segmentation_offload != 0, &result));
  segmentation_offload = enabled ? 1 : 0;
  return result;
}

/* ------------------------------------------------------------------------------------ frames */

/*
 * A frame's packets as every viewer's sendFrame reads them: the payloads' addresses and lengths,
 * and the markers, gathered once per frame by prepareFrame. Gathering them through N-API in each
 * viewer's call (an element read and a buffer lookup per packet) cost a keyframe of 80 packets
 * 160 N-API calls per viewer.
 *
 * It holds addresses into the payloads' memory, not the payloads: the JavaScript object that
 * holds the handle must hold the payloads too (FrameBatch in src/rtp/native-fanout.ts does), so
 * that they outlive every sendFrame that reads them. Node never moves a Buffer's memory; nothing
 * here transfers or detaches one.
 */
typedef struct {
  uint32_t count;
  /* The sealed packets back to back take at most this many bytes. */
  size_t sealed_bytes;
  uint8_t **payloads;
  size_t *lengths;
  uint8_t *markers;
} frame_batch;

/*
 * prepareFrame(payloads, markers) -> external
 *
 * payloads: Buffers (each one a UDP datagram can carry once sealed); markers: a Uint8Array, one
 * byte per payload. Everything is checked here, so that sendFrame has nothing left to refuse.
 */
static napi_value prepare_frame(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool is_array = false, is_typed = false;
  if (argc < 2 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_is_typedarray(env, argv[1], &is_typed) != napi_ok || !is_typed) {
    return throw_error(env, "prepareFrame(payloads, markers): bad arguments");
  }
  uint32_t count;
  CHECK(napi_get_array_length(env, argv[0], &count));
  napi_typedarray_type marker_type;
  size_t marker_count;
  uint8_t *markers;
  CHECK(napi_get_typedarray_info(env, argv[1], &marker_type, &marker_count, (void **)&markers, NULL, NULL));
  if (marker_type != napi_uint8_array || marker_count < count) return throw_error(env, "prepareFrame: markers must be a Uint8Array, one per payload");
  /* One block: the header, then the addresses, the lengths and the markers. */
  size_t n = count ? count : 1;
  frame_batch *f = malloc(sizeof(frame_batch) + n * (sizeof(uint8_t *) + sizeof(size_t) + 1));
  if (!f) return throw_error(env, "prepareFrame: out of memory");
  f->count = count;
  f->payloads = (uint8_t **)(f + 1);
  f->lengths = (size_t *)(f->payloads + n);
  f->markers = (uint8_t *)(f->lengths + n);
  f->sealed_bytes = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    if (napi_get_element(env, argv[0], i, &element) != napi_ok || !get_buffer(env, element, &f->payloads[i], &f->lengths[i]) ||
        f->lengths[i] > MAX_PAYLOAD_BYTES) {
      free(f);
      return throw_error(env, "prepareFrame: each payload must be a Buffer a UDP datagram can carry");
    }
    f->markers[i] = markers[i] != 0;
    f->sealed_bytes += CHANNEL_HEADER_BYTES + RTP_HEADER_BYTES + f->lengths[i] + 16;
  }
  return make_tagged_external(env, f, free_block, &FRAME_TAG);
}

/*
 * Room for a frame's protected packets back to back (a P-frame's few kilobytes, a keyframe's few
 * hundred), kept per environment and grown to the largest frame yet. The kernel has copied the
 * packets when sendmmsg returns, so every viewer's call can use the same block: a malloc per viewer
 * per frame put each keyframe's block (mmap-sized) through the allocator, and its pages through
 * page faults, once per viewer.
 */
static uint8_t *sealed_scratch(napi_env env, size_t bytes) {
  addon_instance *instance = addon_instance_of(env);
  if (!instance) return NULL;
  if (bytes <= instance->sealed_bytes) return instance->sealed;
  size_t grown = bytes < 65536 ? 65536 : bytes + bytes / 4;
  uint8_t *block = malloc(grown);
  if (!block) return NULL;
  free(instance->sealed);
  instance->sealed = block;
  instance->sealed_bytes = grown;
  return block;
}

/*
 * sendFrame(stream, fd, destination, payloadType, timestamp, firstSeq, frame, result)
 *   -> undefined; result (a Float64Array of 3, reused by the caller) = [sent, bytes, errno]
 *
 * The figures go into the caller's array rather than a new object: this runs once per viewer per
 * frame, and an object with three named properties per call was a measurable share of what a
 * viewer allocated (bench:webrtc BENCH_ALLOCATIONS), and slow to build through N-API.
 *
 * Protects the frame's (prepareFrame) payload i as sequence number firstSeq + i (mod 2^16), with
 * its marker, and sends them to the destination in sendmmsg() chunks. Every packet is protected
 * (so the rollover counter sees every sequence number) even when the socket refuses some: `sent`
 * says how many left; `errno` is the reason the rest did not (EAGAIN: the socket buffer is full,
 * which the caller treats as congestion), 0 when all left.
 */
static napi_value send_frame(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  srtp_stream *s;
  destination *d;
  frame_batch *f;
  int32_t fd;
  uint32_t payload_type, timestamp, first_seq;
  bool result_is_typed = false;
  if (argc < 8 || !get_external(env, argv[0], &STREAM_TAG, (void **)&s) || napi_get_value_int32(env, argv[1], &fd) != napi_ok ||
      !get_external(env, argv[2], &DESTINATION_TAG, (void **)&d) || !get_u32(env, argv[3], &payload_type) ||
      !get_u32(env, argv[4], &timestamp) || !get_u32(env, argv[5], &first_seq) ||
      !get_external(env, argv[6], &FRAME_TAG, (void **)&f) ||
      napi_is_typedarray(env, argv[7], &result_is_typed) != napi_ok || !result_is_typed) {
    return throw_error(env, "sendFrame: bad arguments");
  }
  napi_typedarray_type result_type;
  size_t result_count;
  double *result;
  CHECK(napi_get_typedarray_info(env, argv[7], &result_type, &result_count, (void **)&result, NULL, NULL));
  if (result_type != napi_float64_array || result_count < 3) return throw_error(env, "sendFrame: result must be a Float64Array of 3");
  uint32_t count = f->count;
  uint8_t **payloads = f->payloads;
  size_t *lengths = f->lengths;
  uint8_t *markers = f->markers;
  uint8_t *scratch = sealed_scratch(env, f->sealed_bytes);
  if (!scratch) return throw_error(env, "sendFrame: out of memory");
  size_t offset = 0;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  uint32_t packets_in[BATCH]; /* packets carried by each message */
  union {
    char buffer[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control[BATCH];
  uint32_t sent = 0;
  double bytes = 0;
  int error = 0;
  /* A TURN channel's header goes in front of each packet, in the same block. */
  size_t head = d->channel ? CHANNEL_HEADER_BYTES : 0;
  for (uint32_t start = 0; start < count; start += BATCH) {
    uint32_t n = count - start < BATCH ? count - start : BATCH;
    for (uint32_t i = 0; i < n; i++) {
      uint32_t seq = (first_seq + start + i) & 0xffff;
      uint32_t roc = roc_for(s, seq, 0);
      size_t len = seal(s, payload_type, markers[start + i] != 0, seq, timestamp, payloads[start + i], lengths[start + i], roc, scratch + offset + head);
      if (len == 0) {
        return throw_error(env, "sendFrame: OpenSSL failed");
      }
      if (head) {
        put_u16(scratch + offset, d->channel);
        put_u16(scratch + offset + 2, (uint32_t)len);
      }
      iov[i].iov_base = scratch + offset;
      iov[i].iov_len = head + len;
      offset += head + len;
    }
    /* Once the socket refused, the rest of the frame is only protected (see above). */
    uint32_t done = 0; /* packets of this chunk handled */
    while (error == 0 && done < n) {
      uint32_t m = build_messages(msgs, iov + done, n - done, packets_in, control, d, segmentation_offload);
      int r;
      do {
        r = sendmmsg(fd, msgs, m, MSG_DONTWAIT);
      } while (r < 0 && errno == EINTR);
      if (r < 0 && segmentation_offload && m > 0 && packets_in[0] > 1 && (errno == EIO || errno == EINVAL || errno == EMSGSIZE || errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
        /* This kernel or route cannot segment: one datagram per packet from now on. */
        segmentation_offload = 0;
        continue;
      }
      if (r < 0) {
        error = errno;
        break;
      }
      for (int k = 0; k < r; k++) {
        /* The SRTP bytes: a channel's headers are the relay's framing, not the viewer's media. */
        for (uint32_t q = 0; q < packets_in[k]; q++) bytes += (double)(iov[done + q].iov_len - head);
        done += packets_in[k];
      }
    }
    sent += done;
  }
  result[0] = (double)sent;
  result[1] = bytes;
  result[2] = (double)error;
  return NULL;
}

/*
 * sendDatagram(fd, destination, parts) -> bytes sent, or -errno
 *
 * One datagram made of the given Buffers (scatter/gather), sent now. Everything else a viewer gets
 * (paced GOP replays, retransmissions, RTCP) goes this way once its frames go by sendFrame: Node's
 * dgram send defers to the next tick, and a frame sent natively in the meantime would overtake
 * packets queued before it. To a TURN channel's destination it goes as ChannelData; the bytes
 * returned are then the ChannelData message's, header included.
 */
static napi_value send_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  destination *d;
  bool is_array = false;
  uint32_t count = 0;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || !get_external(env, argv[1], &DESTINATION_TAG, (void **)&d) ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[2], &count) != napi_ok ||
      count == 0 || count > 8) {
    return throw_error(env, "sendDatagram: bad arguments");
  }
  struct iovec iov[9];
  uint8_t header[CHANNEL_HEADER_BYTES];
  uint32_t first = d->channel ? 1 : 0;
  size_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    uint8_t *data;
    size_t length;
    if (napi_get_element(env, argv[2], i, &element) != napi_ok || !get_buffer(env, element, &data, &length)) {
      return throw_error(env, "sendDatagram: each part must be a Buffer");
    }
    iov[first + i].iov_base = data;
    iov[first + i].iov_len = length;
    total += length;
  }
  if (d->channel) {
    /* The length field has 16 bits; a UDP datagram could not carry more anyway. */
    if (total > 65535 - CHANNEL_HEADER_BYTES) {
      napi_value too_long;
      CHECK(napi_create_double(env, -(double)EMSGSIZE, &too_long));
      return too_long;
    }
    put_u16(header, d->channel);
    put_u16(header + 2, (uint32_t)total);
    iov[0].iov_base = header;
    iov[0].iov_len = CHANNEL_HEADER_BYTES;
  }
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_name = &d->addr;
  msg.msg_namelen = d->len;
  msg.msg_iov = iov;
  msg.msg_iovlen = first + count;
  ssize_t r;
  do {
    r = sendmsg(fd, &msg, MSG_DONTWAIT);
  } while (r < 0 && errno == EINTR);
  napi_value result;
  CHECK(napi_create_double(env, r < 0 ? -(double)errno : (double)r, &result));
  return result;
}

static void free_instance(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  addon_instance *instance = data;
  free(instance->receive);
  free(instance->sealed);
  free(instance);
}

addon_instance *addon_instance_of(napi_env env) {
  addon_instance *instance = NULL;
  return napi_get_instance_data(env, (void **)&instance) == napi_ok ? instance : NULL;
}

NAPI_MODULE_INIT() {
  addon_instance *instance = calloc(1, sizeof(addon_instance));
  if (!instance) return NULL;
  if (napi_set_instance_data(env, instance, free_instance, NULL) != napi_ok) {
    free(instance);
    return NULL;
  }
  napi_property_descriptor properties[] = {
      {"createStream", NULL, create_stream, NULL, NULL, NULL, napi_default, NULL},
      {"createDestination", NULL, create_destination, NULL, NULL, NULL, napi_default, NULL},
      {"protect", NULL, protect, NULL, NULL, NULL, napi_default, NULL},
      {"prepareFrame", NULL, prepare_frame, NULL, NULL, NULL, napi_default, NULL},
      {"sendFrame", NULL, send_frame, NULL, NULL, NULL, napi_default, NULL},
      {"sendDatagram", NULL, send_datagram, NULL, NULL, NULL, napi_default, NULL},
      {"setSegmentationOffload", NULL, set_segmentation_offload, NULL, NULL, NULL, napi_default, NULL},
      {"trimNativeHeap", NULL, trim_native_heap, NULL, NULL, NULL, napi_default, NULL},
      {"hintMemoryReduction", NULL, hint_memory_reduction, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) != napi_ok) return NULL;
  if (!define_udp_receive(env, exports)) return NULL;
  if (!define_srtcp(env, exports)) return NULL;
  napi_value hash;
  if (napi_create_string_utf8(env, SOURCE_HASH, NAPI_AUTO_LENGTH, &hash) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sourceHash", hash) != napi_ok) return NULL;
  return exports;
}
