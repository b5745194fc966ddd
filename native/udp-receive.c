/*
 * udp-receive: the camera's RTP over UDP, read a burst at a time.
 *
 * Why native: with Node's dgram every datagram is one trip from libuv into JavaScript, with a new
 * Buffer and a new address object for it; for a camera's 250-300 packets a second that trip, not
 * the plugin's own work, was most of a camera's CPU with nobody watching (bench:ingest, perf). Here
 * one recvmmsg(2) takes every datagram waiting on the socket (a frame's packets arrive together),
 * datagrams from anyone but the camera are dropped before JavaScript sees them, and JavaScript gets
 * one call per burst: the packets back to back in a slab Buffer, and their lengths.
 *
 * The socket is this file's own (socket, bind, and a libuv poll handle on Node's loop), because a
 * dgram socket's descriptor is already watched by libuv and two watchers on one descriptor break
 * libuv. src/rtsp/rtp-receiver.ts chooses it, and falls back to dgram wherever the addon is absent.
 *
 * While nobody watches a camera, JavaScript has nothing urgent to do with its packets: they only
 * keep the GOP cache current for the next viewer. Then the receiver *holds* them (setUdpReceiverHold),
 * and JavaScript gets them when it asks (flushUdpReceiver, a few times a second). Each datagram
 * carries its arrival time (the kernel's receive timestamp), so the media timing downstream is as if
 * it had been delivered at once. Two ways to hold:
 * - drain (the default): the socket is not even polled. Datagrams wait in the kernel's receive
 *   buffer, and a flush reads them all. The thread then wakes a few times a second instead of once
 *   per datagram: the wakeup (scheduler, epoll, libuv) was the largest cost left of an unwatched
 *   camera, more than half of it right after Homebridge starts, while V8 still runs this path
 *   unoptimized.
 * - poll: bursts are read as they come and pile up in the slab until flushed, or until the slab or
 *   the lengths array is full. A receiver falls back to this for good when the kernel dropped a
 *   datagram while it drained, or when a flush finds half the receive buffer used (a high-bitrate
 *   camera, or a system whose net.core.rmem_max caps the buffer small):
 *   losing packets of the GOP cache would show as a smeared picture when the next viewer joins.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <linux/sock_diag.h>

#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#define ADDON_PART "udp-receive"
#include "addon.h"

/* Datagrams per recvmmsg(2): a 720p keyframe's burst is a few dozen; more just loops once more. */
#define RECEIVE_BATCH 32
/* The largest datagram kept: a jumbo frame. A camera's RTP fits an Ethernet frame; longer is dropped and counted. */
#define SLOT_BYTES 9216
/* Reads per readiness event before libuv's other handles get their turn (level-triggered: it comes back). */
#define MAX_ROUNDS 8
/* The camera's addresses (its RTSP address and each track's `source=`). */
#define MAX_SOURCES 8
/*
 * Bursts are copied one after another into a slab Buffer, handed to JavaScript as views: a new
 * Buffer per burst (malloc, ArrayBuffer, typed array) was the biggest cost left on this path. A
 * full slab is replaced, never reused: a view JavaScript keeps (a frame in the GOP cache) keeps its
 * slab, as Node's own Buffer pool does.
 */
#define SLAB_BYTES (128 * 1024)
/* While holding, a larger slab, so that a few hundred ms of a high-bitrate camera fit before a flush. */
#define HOLD_SLAB_BYTES (512 * 1024)
/* Datagrams held at most before they are delivered anyway: 2 s of a 720p camera's video. */
#define HOLD_CAPACITY 512
/* Reads in one drain at most: more waiting means the buffer holds far too much for draining. */
#define MAX_DRAIN_ROUNDS 64
/* Control space for each datagram's receive timestamp. */
#define CONTROL_BYTES CMSG_SPACE(sizeof(struct timespec))
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

typedef struct {
  uv_poll_t poll;
  int fd;
  uint16_t port;
  napi_env env;
  napi_ref callback;
  napi_async_context async_context;
  napi_ref slab;        /* the Buffer bursts are copied into */
  uint8_t *slab_data;
  size_t slab_size;
  size_t slab_used;
  napi_ref lengths;     /* a Uint32Array(HOLD_CAPACITY), reused for every delivery */
  uint32_t *lengths_data;
  napi_ref arrivals;    /* a Float64Array(HOLD_CAPACITY): each datagram's arrival, ms on uv_hrtime's clock */
  double *arrivals_data;
  int holding;          /* keep bursts until flushed (nobody watches) */
  int polling;          /* the libuv poll is started (not while draining a hold) */
  int drain_refused;    /* holds poll for good (see the file comment); why, in hold_mode_reason */
  const char *hold_mode_reason;
  size_t receive_buffer; /* the kernel's receive buffer size for this socket (SO_RCVBUF as read back) */
  uint32_t kernel_drops; /* the socket's drop counter (SO_MEMINFO), as udpReceiverStats last read it */
  uint32_t drain_drops;  /* the same counter when the drained hold started, or at its last drain */
  int pending;          /* datagrams in the slab from pending_offset, not yet delivered */
  size_t pending_offset;
  int delivering;       /* inside the JavaScript call: a flush from there is a no-op */
  int open;       /* polling, callback held */
  int uv_closed;  /* libuv has let go of the poll handle */
  int finalized;  /* JavaScript has let go of the handle */
  struct in6_addr sources[MAX_SOURCES]; /* IPv4 as IPv4-mapped IPv6 */
  int source_count;
  double foreign;
  double truncated;
  double callback_errors;
  char last_foreign[INET6_ADDRSTRLEN];
} udp_receiver;

/* One receive scratch per Node environment (main thread or worker): never shared across threads. */
typedef struct {
  uint8_t data[RECEIVE_BATCH][SLOT_BYTES];
  struct mmsghdr messages[RECEIVE_BATCH];
  struct iovec iov[RECEIVE_BATCH];
  struct sockaddr_storage from[RECEIVE_BATCH];
  uint8_t control[RECEIVE_BATCH][CONTROL_BYTES] __attribute__((aligned(8)));
  double arrived[RECEIVE_BATCH]; /* ms on uv_hrtime's clock */
} receive_scratch;

static const napi_type_tag RECEIVER_TAG = {0x3f81c2d7a9e4b065ULL, 0x6d0b95e1c47a2f38ULL};

/* The errno names JavaScript tests for (as Node's own errors carry them); others by number. */
static const char *errno_name(int error, char *fallback, size_t size) {
  switch (error) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EINVAL: return "EINVAL";
    default: snprintf(fallback, size, "errno %d", error); return fallback;
  }
}

static udp_receiver *get_receiver(napi_env env, napi_value value) {
  void *data = NULL;
  return get_external(env, value, &RECEIVER_TAG, &data) ? data : NULL;
}

/* An IPv4 address as IPv4-mapped IPv6 (::ffff:a.b.c.d), so sources of either family compare alike. */
static void map_ipv4(const void *v4, struct in6_addr *out) {
  memset(out, 0, sizeof(*out));
  out->s6_addr[10] = 0xff;
  out->s6_addr[11] = 0xff;
  memcpy(&out->s6_addr[12], v4, 4);
}

/* A literal IPv4 or IPv6 address as IPv6 (IPv4 mapped), for comparing sources of either family. */
static int parse_source(const char *text, struct in6_addr *out) {
  struct in_addr v4;
  if (inet_pton(AF_INET, text, &v4) == 1) {
    map_ipv4(&v4, out);
    return 1;
  }
  return inet_pton(AF_INET6, text, out) == 1;
}

static void sender_address(const struct sockaddr_storage *from, struct in6_addr *out) {
  if (from->ss_family == AF_INET) map_ipv4(&((const struct sockaddr_in *)from)->sin_addr, out);
  else *out = ((const struct sockaddr_in6 *)from)->sin6_addr;
}

static int is_source(const udp_receiver *r, const struct in6_addr *address) {
  for (int i = 0; i < r->source_count; i++) {
    if (memcmp(&r->sources[i], address, sizeof(*address)) == 0) return 1;
  }
  return 0;
}

static void note_foreign(udp_receiver *r, const struct in6_addr *address) {
  r->foreign++;
  int mapped = IN6_IS_ADDR_V4MAPPED(address);
  if (!inet_ntop(mapped ? AF_INET : AF_INET6, mapped ? (const void *)&address->s6_addr[12] : (const void *)address, r->last_foreign,
                 sizeof(r->last_foreign))) {
    r->last_foreign[0] = '\0';
  }
}

static void release(udp_receiver *r) {
  if (r->uv_closed && r->finalized) free(r);
}

static void on_poll_closed(uv_handle_t *handle) {
  udp_receiver *r = handle->data;
  close(r->fd);
  r->fd = -1;
  r->uv_closed = 1;
  release(r);
}

/* Stops polling and drops the callback; the descriptor is closed once libuv lets go of it. */
static void stop_receiver(udp_receiver *r) {
  if (!r->open) return;
  r->open = 0;
  r->polling = 0;
  uv_poll_stop(&r->poll);
  uv_close((uv_handle_t *)&r->poll, on_poll_closed);
  if (r->callback) napi_delete_reference(r->env, r->callback);
  r->callback = NULL;
  if (r->slab) napi_delete_reference(r->env, r->slab);
  r->slab = NULL;
  if (r->lengths) napi_delete_reference(r->env, r->lengths);
  r->lengths = NULL;
  if (r->arrivals) napi_delete_reference(r->env, r->arrivals);
  r->arrivals = NULL;
  r->pending = 0;
  if (r->async_context) napi_async_destroy(r->env, r->async_context);
  r->async_context = NULL;
}

/*
 * Room for `bytes` more in the slab, replacing it when full (only with nothing pending in it: the
 * caller delivers first); 0 when out of memory.
 */
static int reserve_slab(udp_receiver *r, size_t bytes) {
  if (r->slab && r->slab_size - r->slab_used >= bytes) return 1;
  napi_value buffer;
  void *data = NULL;
  size_t slab_bytes = r->holding ? HOLD_SLAB_BYTES : SLAB_BYTES;
  size_t size = bytes > slab_bytes ? bytes : slab_bytes;
  if (napi_create_buffer(r->env, size, &data, &buffer) != napi_ok) return 0;
  if (r->slab) napi_delete_reference(r->env, r->slab);
  r->slab = NULL;
  if (napi_create_reference(r->env, buffer, 1, &r->slab) != napi_ok) return 0;
  r->slab_data = data;
  r->slab_size = size;
  r->slab_used = 0;
  return 1;
}

/*
 * Hands what is pending to JavaScript: onBatch(slab, offset, lengths, count, foreignSoFar, arrivals,
 * deliveredAt). Also called with nothing pending for the first stranger, which JavaScript logs once.
 */
static void deliver_pending(udp_receiver *r) {
  napi_env env = r->env;
  if (r->delivering || !r->open) return;
  int count = r->pending;
  size_t offset = r->pending_offset;
  r->pending = 0;
  r->pending_offset = r->slab_used;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, receiver, argv[7], result;
  if (!r->slab && !reserve_slab(r, 0)) {
    napi_close_handle_scope(env, scope);
    return;
  }
  r->delivering = 1;
  if (napi_get_reference_value(env, r->slab, &argv[0]) == napi_ok && napi_create_double(env, (double)offset, &argv[1]) == napi_ok &&
      napi_get_reference_value(env, r->lengths, &argv[2]) == napi_ok && napi_create_int32(env, count, &argv[3]) == napi_ok &&
      napi_create_double(env, r->foreign, &argv[4]) == napi_ok && napi_get_reference_value(env, r->arrivals, &argv[5]) == napi_ok &&
      napi_create_double(env, (double)uv_hrtime() / 1e6, &argv[6]) == napi_ok && napi_get_reference_value(env, r->callback, &callback) == napi_ok &&
      napi_get_global(env, &receiver) == napi_ok) {
    /* make_callback, not call_function: it runs the microtasks the handler queued, as a dgram event would. */
    napi_make_callback(env, r->async_context, receiver, callback, 7, argv, &result);
  }
  r->delivering = 0;
  bool exception = false;
  if (napi_is_exception_pending(env, &exception) == napi_ok && exception) {
    /* The JavaScript side catches its own errors; one that escapes must not take down Homebridge. */
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    r->callback_errors++;
  }
  napi_close_handle_scope(env, scope);
}

/* Takes one recvmmsg's datagrams into the slab; delivers them now unless holding. */
static void take_burst(udp_receiver *r, receive_scratch *s, int received) {
  size_t total = 0;
  int kept = 0;
  int first_foreign = r->foreign == 0;
  for (int i = 0; i < received; i++) {
    struct in6_addr from;
    sender_address(&s->from[i], &from);
    if (!is_source(r, &from)) {
      note_foreign(r, &from);
      s->messages[i].msg_len = 0;
      continue;
    }
    if (s->messages[i].msg_hdr.msg_flags & MSG_TRUNC) {
      r->truncated++;
      s->messages[i].msg_len = 0;
      continue;
    }
    total += s->messages[i].msg_len;
    kept++;
  }
  int report_foreign = first_foreign && r->foreign > 0;
  if (kept > 0) {
    /* What is pending must stay in one slab and fit the lengths array: deliver it first when it would not. */
    int slab_full = !r->slab || r->slab_size - r->slab_used < total;
    if (r->pending > 0 && (slab_full || r->pending + kept > HOLD_CAPACITY)) deliver_pending(r);
    if (!r->open) return;
    if (r->pending == 0 && reserve_slab(r, total)) r->pending_offset = r->slab_used;
    if (r->slab && r->slab_size - r->slab_used >= total) {
      uint8_t *at = r->slab_data + r->slab_used;
      for (int i = 0; i < received; i++) {
        uint32_t length = s->messages[i].msg_len;
        if (length == 0) continue;
        memcpy(at, s->data[i], length);
        at += length;
        r->lengths_data[r->pending] = length;
        r->arrivals_data[r->pending] = s->arrived[i];
        r->pending++;
      }
      r->slab_used += total;
    }
  }
  /* Nothing to hand over, unless this is the first datagram from a stranger: JavaScript logs that once. */
  if ((r->pending > 0 && !r->holding) || report_foreign) deliver_pending(r);
}

static int read_bursts(udp_receiver *r, receive_scratch *s, int rounds);

static void on_readable(uv_poll_t *poll, int status, int events) {
  udp_receiver *r = poll->data;
  if (status < 0 || !(events & UV_READABLE) || !r->open) return;
  addon_instance *instance = addon_instance_of(r->env);
  receive_scratch *s = instance ? instance->receive : NULL;
  if (!s) return;
  /* A new slab is a JavaScript object, made outside any JavaScript call: it needs a scope of its own. */
  napi_handle_scope scope;
  if (napi_open_handle_scope(r->env, &scope) != napi_ok) return;
  read_bursts(r, s, MAX_ROUNDS);
  napi_close_handle_scope(r->env, scope);
}

/* The wall clock in ms, to turn the kernel's receive timestamps into uv_hrtime's clock. */
static double wall_clock_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

/*
 * The socket's memory as the kernel counts it (SO_MEMINFO, Linux 4.6): bytes queued, charged at
 * each datagram's true size, against the receive buffer, and datagrams dropped for want of room.
 */
static int socket_memory(int fd, uint32_t *queued, uint32_t *buffer, uint32_t *drops) {
  uint32_t info[SK_MEMINFO_VARS];
  socklen_t length = sizeof(info);
  memset(info, 0, sizeof(info));
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &length) != 0 || length < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)) return 0;
  *queued = info[SK_MEMINFO_RMEM_ALLOC];
  *buffer = info[SK_MEMINFO_RCVBUF];
  *drops = info[SK_MEMINFO_DROPS];
  return 1;
}

/*
 * Each datagram's arrival on uv_hrtime's clock, from its kernel receive timestamp (the read time
 * when it has none, or when the wall clock jumped).
 */
static void read_control(receive_scratch *s, int received, double read_at) {
  double wall_minus_monotonic = wall_clock_ms() - read_at;
  for (int i = 0; i < received; i++) {
    double arrived = read_at;
    struct msghdr *header = &s->messages[i].msg_hdr;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(header); c; c = CMSG_NXTHDR(header, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
        struct timespec stamp;
        memcpy(&stamp, CMSG_DATA(c), sizeof(stamp));
        double at = (double)stamp.tv_sec * 1e3 + (double)stamp.tv_nsec / 1e6 - wall_minus_monotonic;
        /* Later than now, or older than any hold: the wall clock moved; the read time is then the best guess. */
        if (at <= read_at && at > read_at - 60000) arrived = at;
      }
    }
    s->arrived[i] = arrived;
  }
}

/* Watches the socket again (each burst read as it comes), unless it already is or is closed. */
static void start_polling(udp_receiver *r) {
  if (r->open && !r->polling && uv_poll_start(&r->poll, UV_READABLE, on_readable) == 0) r->polling = 1;
}

/* A drained hold is given up for good: the socket is polled again, and bursts pile up in the slab. */
static void refuse_drain(udp_receiver *r, const char *reason) {
  if (!r->drain_refused) {
    r->drain_refused = 1;
    r->hold_mode_reason = reason;
  }
  start_polling(r);
}

/*
 * Reads what waits on the socket into the slab (delivered at once unless holding). `rounds` bounds
 * the recvmmsg calls; returns the datagrams read.
 */
static int read_bursts(udp_receiver *r, receive_scratch *s, int rounds) {
  int total = 0;
  for (int round = 0; round < rounds && r->open; round++) {
    for (int i = 0; i < RECEIVE_BATCH; i++) {
      s->iov[i].iov_base = s->data[i];
      s->iov[i].iov_len = SLOT_BYTES;
      memset(&s->messages[i].msg_hdr, 0, sizeof(s->messages[i].msg_hdr));
      s->messages[i].msg_hdr.msg_iov = &s->iov[i];
      s->messages[i].msg_hdr.msg_iovlen = 1;
      s->messages[i].msg_hdr.msg_name = &s->from[i];
      s->messages[i].msg_hdr.msg_namelen = sizeof(s->from[i]);
      s->messages[i].msg_hdr.msg_control = s->control[i];
      s->messages[i].msg_hdr.msg_controllen = CONTROL_BYTES;
    }
    int received = recvmmsg(r->fd, s->messages, RECEIVE_BATCH, MSG_DONTWAIT, NULL);
    if (received <= 0) break; /* EAGAIN: all read; other errors (an ICMP report) are the watchdog's to judge */
    read_control(s, received, (double)uv_hrtime() / 1e6);
    take_burst(r, s, received);
    total += received;
    if (received < RECEIVE_BATCH) break;
  }
  return total;
}

/*
 * Reads everything that waited on the socket while a hold drained it (or while a hold ends), after
 * judging from the kernel's own count whether draining stays safe (see the file comment). Returns
 * how full the receive buffer was (0-1, as the kernel counts it), or -1 when that is unknown.
 */
static double drain(udp_receiver *r) {
  addon_instance *instance = r->open ? addon_instance_of(r->env) : NULL;
  receive_scratch *s = instance ? instance->receive : NULL;
  if (!s) return -1;
  uint32_t queued = 0, buffer = 0, drops = 0;
  double fill = -1;
  if (!socket_memory(r->fd, &queued, &buffer, &drops)) {
    if (r->holding) refuse_drain(r, "the kernel no longer reports the socket's memory");
  } else {
    fill = buffer > 0 ? (double)queued / (double)buffer : -1;
    int lost = drops != r->drain_drops;
    r->drain_drops = drops;
    if (r->holding && lost) refuse_drain(r, "the kernel dropped datagrams while the hold drained the socket");
    else if (r->holding && queued > buffer / 2) refuse_drain(r, "one drain found half the receive buffer used");
  }
  int datagrams = read_bursts(r, s, MAX_DRAIN_ROUNDS);
  if (r->holding && datagrams >= MAX_DRAIN_ROUNDS * RECEIVE_BATCH) refuse_drain(r, "more datagrams waited than one drain reads");
  return fill;
}

static void finalize_receiver(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  udp_receiver *r = data;
  r->finalized = 1;
  /* Open still only when Node tears the environment down (an open receiver's callback holds it). */
  if (r->open) stop_receiver(r);
  release(r); /* or once libuv has closed the poll handle */
}

/*
 * openUdpReceiver(ip, port, receiveBufferBytes, onBatch) -> handle. Binds ip:port (port 0: any),
 * and calls onBatch(slab: Buffer, offset, lengths: Uint32Array, count, foreign, arrivals:
 * Float64Array, deliveredAt) for each burst with datagrams from an allowed source (or, while
 * holding, for what piled up), and once (with none) for the first datagram from anyone else: the
 * `count` datagrams lie back to back in `slab` from `offset`, their lengths and arrival times (ms,
 * the clock of `deliveredAt`) are the first `count` of `lengths` and `arrivals` (the same arrays
 * every call: read them before returning), and `foreign` counts the datagrams dropped so far. Nothing is allowed until setUdpReceiverSources.
 * Throws "udp-receive: bind <ip>:<port>: EADDRINUSE (...)" and the like when it cannot bind.
 */
static napi_value open_receiver(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char ip[64];
  size_t ip_len = 0;
  uint32_t port, receive_buffer;
  napi_valuetype callback_type;
  if (argc < 4 || napi_get_value_string_utf8(env, argv[0], ip, sizeof(ip), &ip_len) != napi_ok || ip_len >= sizeof(ip) - 1 ||
      napi_get_value_uint32(env, argv[1], &port) != napi_ok || port > 65535 || napi_get_value_uint32(env, argv[2], &receive_buffer) != napi_ok ||
      napi_typeof(env, argv[3], &callback_type) != napi_ok || callback_type != napi_function) {
    return throw_error(env, "openUdpReceiver(ip, port, receiveBufferBytes, onBatch): bad arguments");
  }
  struct sockaddr_storage address;
  socklen_t address_len;
  if (!parse_socket_address(ip, (uint16_t)port, &address, &address_len)) return throw_error(env, "openUdpReceiver: not an IP address");

  addon_instance *instance = addon_instance_of(env);
  if (!instance) return throw_error(env, "udp-receive: the addon's instance data is missing");
  if (!instance->receive) {
    instance->receive = calloc(1, sizeof(receive_scratch));
    if (!instance->receive) return throw_error(env, "udp-receive: out of memory");
  }
  uv_loop_t *loop = NULL;
  CHECK(napi_get_uv_event_loop(env, &loop));

  int fd = socket(address.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_error(env, "udp-receive: socket() failed");
  if (address.ss_family == AF_INET6) {
    int only = 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only));
  }
  if (bind(fd, (struct sockaddr *)&address, address_len) != 0) {
    int error = errno;
    char message[160], number[24];
    snprintf(message, sizeof(message), "udp-receive: bind %s:%u: %s (%s)", ip, port, errno_name(error, number, sizeof(number)), strerror(error));
    close(fd);
    return throw_error(env, message);
  }
  /*
   * SO_RCVBUF is capped at net.core.rmem_max (a Raspberry Pi's default grants 416 KiB), which a
   * drained hold of a high-bitrate camera outgrows (see refuse_drain). A process allowed to
   * (CAP_NET_ADMIN: root, as in the usual Homebridge container) gets the asked size past that cap,
   * for this socket only, as GStreamer's udpsrc does; anyone else gets what the cap allows.
   */
  int buffer_bytes = (int)receive_buffer;
  if (buffer_bytes > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof(buffer_bytes)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
  /* Arrival times from the kernel: a drained hold reads datagrams long after they came. */
  int on = 1;
  int stamped = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) == 0;
  uint32_t queued = 0, granted = 0, drops = 0;
  int counted = socket_memory(fd, &queued, &granted, &drops);
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) != 0) {
    close(fd);
    return throw_error(env, "udp-receive: getsockname() failed");
  }

  udp_receiver *r = calloc(1, sizeof(udp_receiver));
  if (!r) {
    close(fd);
    return throw_error(env, "udp-receive: out of memory");
  }
  r->fd = fd;
  r->env = env;
  r->receive_buffer = granted;
  /* Without receive timestamps a drained datagram's age is unknown, without the kernel's counts its loss unseen: poll. */
  if (!stamped || !counted) {
    r->drain_refused = 1;
    r->hold_mode_reason = "the socket gives no receive timestamps or memory counts";
  }
  r->port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port : ((struct sockaddr_in6 *)&bound)->sin6_port);
  napi_value resource_name, handle, lengths_buffer, lengths, arrivals_buffer, arrivals;
  void *lengths_data = NULL, *arrivals_data = NULL;
  if (napi_create_arraybuffer(env, HOLD_CAPACITY * sizeof(uint32_t), &lengths_data, &lengths_buffer) != napi_ok ||
      napi_create_typedarray(env, napi_uint32_array, HOLD_CAPACITY, lengths_buffer, 0, &lengths) != napi_ok ||
      napi_create_reference(env, lengths, 1, &r->lengths) != napi_ok ||
      napi_create_arraybuffer(env, HOLD_CAPACITY * sizeof(double), &arrivals_data, &arrivals_buffer) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, HOLD_CAPACITY, arrivals_buffer, 0, &arrivals) != napi_ok ||
      napi_create_reference(env, arrivals, 1, &r->arrivals) != napi_ok || napi_create_reference(env, argv[3], 1, &r->callback) != napi_ok ||
      napi_create_string_utf8(env, "WebRtcCamerasUdpReceive", NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_async_init(env, NULL, resource_name, &r->async_context) != napi_ok || uv_poll_init_socket(loop, &r->poll, fd) != 0) {
    if (r->lengths) napi_delete_reference(env, r->lengths);
    if (r->arrivals) napi_delete_reference(env, r->arrivals);
    if (r->callback) napi_delete_reference(env, r->callback);
    if (r->async_context) napi_async_destroy(env, r->async_context);
    close(fd);
    free(r);
    return throw_error(env, "udp-receive: could not set up the receiver");
  }
  r->lengths_data = lengths_data;
  r->arrivals_data = arrivals_data;
  r->poll.data = r;
  r->open = 1;
  r->polling = 1;
  if (uv_poll_start(&r->poll, UV_READABLE, on_readable) != 0) {
    stop_receiver(r);
    r->finalized = 1; /* never handed to JavaScript: freed when libuv closes the poll */
    return throw_error(env, "udp-receive: could not poll the socket");
  }
  if (napi_create_external(env, r, finalize_receiver, NULL, &handle) != napi_ok || napi_type_tag_object(env, handle, &RECEIVER_TAG) != napi_ok) {
    stop_receiver(r);
    r->finalized = 1;
    return throw_error(env, "udp-receive: N-API call failed");
  }
  return handle;
}

/* The receiver of a call whose only argument is the handle; NULL, with a thrown error, otherwise. */
static udp_receiver *only_receiver_argument(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  udp_receiver *r = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 1) r = get_receiver(env, argv[0]);
  if (!r) throw_error(env, usage);
  return r;
}

/* udpReceiverPort(handle) -> the bound port */
static napi_value receiver_port(napi_env env, napi_callback_info info) {
  napi_value result;
  udp_receiver *r = only_receiver_argument(env, info, "udpReceiverPort(handle): bad arguments");
  if (!r) return NULL;
  CHECK(napi_create_uint32(env, r->port, &result));
  return result;
}

/* The receiver of a call (handle, argument) and its argument in `argument`; NULL when the handle is not one. */
static udp_receiver *receiver_and_argument(napi_env env, napi_callback_info info, napi_value *argument) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) return NULL;
  *argument = argv[1];
  return get_receiver(env, argv[0]);
}

/* setUdpReceiverSources(handle, ips: string[]): only datagrams from these addresses are delivered. */
static napi_value set_sources(napi_env env, napi_callback_info info) {
  napi_value list = NULL;
  udp_receiver *r = receiver_and_argument(env, info, &list);
  bool is_array = false;
  uint32_t count = 0;
  if (!r || napi_is_array(env, list, &is_array) != napi_ok || !is_array || napi_get_array_length(env, list, &count) != napi_ok) {
    return throw_error(env, "setUdpReceiverSources(handle, ips): bad arguments");
  }
  if (count > MAX_SOURCES) return throw_error(env, "setUdpReceiverSources: too many addresses");
  struct in6_addr parsed[MAX_SOURCES];
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    char text[64];
    size_t text_len = 0;
    CHECK(napi_get_element(env, list, i, &item));
    if (napi_get_value_string_utf8(env, item, text, sizeof(text), &text_len) != napi_ok || text_len >= sizeof(text) - 1 || !parse_source(text, &parsed[i])) {
      return throw_error(env, "setUdpReceiverSources: not an IP address");
    }
  }
  memcpy(r->sources, parsed, count * sizeof(parsed[0]));
  r->source_count = (int)count;
  return NULL;
}

/*
 * udpReceiverStats(handle) -> { foreign, lastForeign, truncated, callbackErrors, kernelDrops,
 * holdMode: 'drain' | 'poll', holdModeReason, receiveBuffer }
 */
static napi_value receiver_stats(napi_env env, napi_callback_info info) {
  napi_value result, value;
  udp_receiver *r = only_receiver_argument(env, info, "udpReceiverStats(handle): bad arguments");
  if (!r) return NULL;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_double(env, r->foreign, &value));
  CHECK(napi_set_named_property(env, result, "foreign", value));
  CHECK(napi_create_string_utf8(env, r->last_foreign, NAPI_AUTO_LENGTH, &value));
  CHECK(napi_set_named_property(env, result, "lastForeign", value));
  CHECK(napi_create_double(env, r->truncated, &value));
  CHECK(napi_set_named_property(env, result, "truncated", value));
  CHECK(napi_create_double(env, r->callback_errors, &value));
  CHECK(napi_set_named_property(env, result, "callbackErrors", value));
  uint32_t queued = 0, buffer = 0, drops = 0;
  if (r->open && socket_memory(r->fd, &queued, &buffer, &drops)) r->kernel_drops = drops;
  CHECK(napi_create_double(env, r->kernel_drops, &value));
  CHECK(napi_set_named_property(env, result, "kernelDrops", value));
  CHECK(napi_create_string_utf8(env, r->drain_refused ? "poll" : "drain", NAPI_AUTO_LENGTH, &value));
  CHECK(napi_set_named_property(env, result, "holdMode", value));
  CHECK(napi_create_string_utf8(env, r->hold_mode_reason ? r->hold_mode_reason : "", NAPI_AUTO_LENGTH, &value));
  CHECK(napi_set_named_property(env, result, "holdModeReason", value));
  CHECK(napi_create_double(env, (double)r->receive_buffer, &value));
  CHECK(napi_set_named_property(env, result, "receiveBuffer", value));
  return result;
}

/*
 * setUdpReceiverHold(handle, hold: boolean, drain = true): hold bursts until flushed (true), or
 * deliver each as it comes (false, the default), delivering what was held first. `drain` false
 * holds by polling (see the file comment) even where draining is allowed.
 */
static napi_value set_hold(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  udp_receiver *r = NULL;
  bool hold = false, drain_allowed = true;
  napi_valuetype drain_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= 2) r = get_receiver(env, argv[0]);
  if (!r || napi_get_value_bool(env, argv[1], &hold) != napi_ok || (argc >= 3 && napi_typeof(env, argv[2], &drain_type) != napi_ok) ||
      (drain_type != napi_undefined && (drain_type != napi_boolean || napi_get_value_bool(env, argv[2], &drain_allowed) != napi_ok))) {
    return throw_error(env, "setUdpReceiverHold(handle, hold, drain): bad arguments");
  }
  if (!r->open) return NULL;
  if (!hold) {
    /* What waited on the socket came before anything the poll will read: take it first. */
    if (!r->polling) drain(r);
    r->holding = 0;
    if (r->pending > 0) deliver_pending(r);
    start_polling(r);
    return NULL;
  }
  /* Holding starts in a slab of the larger size, so that the first hold does not fill it at once. */
  if (!r->holding && r->pending == 0 && r->slab && r->slab_size < HOLD_SLAB_BYTES) {
    napi_delete_reference(env, r->slab);
    r->slab = NULL;
  }
  r->holding = 1;
  if (drain_allowed && !r->drain_refused) {
    if (r->polling) {
      /* Losses counted from here are the drained hold's own. */
      uint32_t queued = 0, buffer = 0, drops = 0;
      if (socket_memory(r->fd, &queued, &buffer, &drops)) r->drain_drops = drops;
      uv_poll_stop(&r->poll);
    }
    r->polling = 0;
  } else if (!r->polling) {
    /* Asked to poll while draining: what waited goes first, then each burst as it comes. */
    drain(r);
    start_polling(r);
  }
  return NULL;
}

/*
 * flushUdpReceiver(handle) -> fill: delivers what is held now, before returning (nothing from inside
 * onBatch). `fill` is how full the socket's receive buffer was when a drained hold read it (0-1, as
 * the kernel counts it), so the caller can flush more often before draining has to be given up;
 * -1 where the hold does not drain (it polls, or nothing is held).
 */
static napi_value flush_receiver(napi_env env, napi_callback_info info) {
  udp_receiver *r = only_receiver_argument(env, info, "flushUdpReceiver(handle): bad arguments");
  double fill = -1;
  if (r && r->open && !r->delivering) {
    if (!r->polling) fill = drain(r);
    /* A drain that just gave draining up says so as -1: flushing faster no longer matters. */
    if (r->drain_refused) fill = -1;
    if (r->pending > 0) deliver_pending(r);
  }
  napi_value result;
  if (napi_create_double(env, fill, &result) != napi_ok) return NULL;
  return result;
}

/* closeUdpReceiver(handle): no callback after this returns; closing twice is fine. */
static napi_value close_receiver(napi_env env, napi_callback_info info) {
  udp_receiver *r = only_receiver_argument(env, info, "closeUdpReceiver(handle): bad arguments");
  if (r) stop_receiver(r);
  return NULL;
}

int define_udp_receive(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"openUdpReceiver", NULL, open_receiver, NULL, NULL, NULL, napi_default, NULL},
      {"udpReceiverPort", NULL, receiver_port, NULL, NULL, NULL, napi_default, NULL},
      {"setUdpReceiverSources", NULL, set_sources, NULL, NULL, NULL, napi_default, NULL},
      {"udpReceiverStats", NULL, receiver_stats, NULL, NULL, NULL, napi_default, NULL},
      {"setUdpReceiverHold", NULL, set_hold, NULL, NULL, NULL, napi_default, NULL},
      {"flushUdpReceiver", NULL, flush_receiver, NULL, NULL, NULL, napi_default, NULL},
      {"closeUdpReceiver", NULL, close_receiver, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(properties) / sizeof(properties[0]), properties) == napi_ok;
}
