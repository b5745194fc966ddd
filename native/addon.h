/* The parts of the addon defined outside srtp-fanout.c, which holds the module's init. */
#ifndef WEBRTC_CAMERAS_ADDON_H
#define WEBRTC_CAMERAS_ADDON_H
#include <node_api.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * In a function returning napi_value: an N-API call that fails throws, naming the file's part
 * (ADDON_PART, defined before this header) and the call, and returns.
 */
#define CHECK(call)                                                                  \
  do {                                                                               \
    if ((call) != napi_ok) {                                                         \
      napi_throw_error(env, NULL, ADDON_PART ": N-API call failed: " #call);         \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

/*
 * What the addon keeps per Node environment (the main thread, or a worker: never shared across
 * threads), set when the module loads there and freed with it.
 */
typedef struct {
  /* udp-receive.c's receive scratch, made when the first receiver opens. */
  void *receive;
  /* srtp-fanout.c's sealed packets of the frame being sent, grown to the largest frame yet. */
  uint8_t *sealed;
  size_t sealed_bytes;
} addon_instance;

/* srtp-fanout.c: this environment's addon_instance; NULL if it is missing. */
addon_instance *addon_instance_of(napi_env env);

/* srtp-fanout.c: the N-API helpers the other files use. */
napi_value throw_error(napi_env env, const char *message);
/* A Buffer's memory and length; 0 when the value is no Buffer. */
int get_buffer(napi_env env, napi_value value, uint8_t **data, size_t *length);
/* An external for data, tagged with its kind; on failure finalize(data) has run and an error is thrown. */
napi_value make_tagged_external(napi_env env, void *data, napi_finalize finalize, const napi_type_tag *tag);
/* A finalizer for one block from malloc that holds nothing else to release. */
void free_block(napi_env env, void *data, void *hint);
/* The native object behind `value` when it is an external tagged `tag`; 0 otherwise. */
int get_external(napi_env env, napi_value value, const napi_type_tag *tag, void **out);
/* A literal IPv4 or IPv6 address (with a zone or not) and a port as a socket address; 0 when it is none. */
int parse_socket_address(const char *ip, uint16_t port, struct sockaddr_storage *out, socklen_t *len);

/* udp-receive.c: adds openUdpReceiver and its companions to the exports; 0 on failure. */
int define_udp_receive(napi_env env, napi_value exports);

/* srtcp.c: adds createSrtcp, srtcpProtect and srtcpUnprotect to the exports; 0 on failure. */
int define_srtcp(napi_env env, napi_value exports);

#endif
