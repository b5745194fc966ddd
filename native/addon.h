/* The parts of the addon defined outside srtp-fanout.c, which holds the module's init. */
#ifndef WEBRTC_CAMERAS_ADDON_H
#define WEBRTC_CAMERAS_ADDON_H
#include <node_api.h>

/* udp-receive.c: adds openUdpReceiver and its companions to the exports; 0 on failure. */
int define_udp_receive(napi_env env, napi_value exports);

#endif
