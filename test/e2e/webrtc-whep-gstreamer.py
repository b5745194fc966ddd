#!/usr/bin/python3
"""A WHEP client built on GStreamer's own WebRTC stack (webrtcbin, gst-plugins-bad + libnice):
Debian's GStreamer 1.22 has no `whepsrc` (that lives in gst-plugins-rs), so the few lines of WHEP
(POST the offer, apply the answer, DELETE the Location) are done here and everything WebRTC (ICE,
DTLS, SRTP, RTP depacketising, H.264 decoding with avdec_h264) is GStreamer's.

Usage: webrtc-whep-gstreamer.py <whep-url> [seconds] [min-frames]
With WHEP_BEARER_TOKEN set (a share-link token), every request carries it as a bearer token.
Prints one JSON line: status, location, frames, width, height, audioBuffers, deleteStatus.
"""
import json
import os
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402


def http(method, url, body=None, content_type=None):
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    if os.environ.get("WHEP_BEARER_TOKEN"):
        req.add_header("Authorization", "Bearer " + os.environ["WHEP_BEARER_TOKEN"])
    try:
        with urllib.request.urlopen(req, timeout=20) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode("utf-8")


def main():
    url = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    min_frames = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    Gst.init(None)
    loop = GLib.MainLoop()
    result = {"frames": 0, "audioBuffers": 0, "width": None, "height": None}
    lock = threading.Lock()

    pipeline = Gst.Pipeline.new("whep")
    webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
    webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    pipeline.add(webrtc)
    # libnice gathers on every interface except loopback; on a loopback-only test machine the other
    # addresses do not carry traffic, so name 127.0.0.1 explicitly (it then gathers only there).
    address = Nice.Address.new()
    address.set_from_string("127.0.0.1")
    ice = webrtc.get_property("ice-agent")
    ice.get_property("agent").add_local_address(address)

    # recvonly m-lines for what a camera sends: H.264 (packetization-mode 1) and G.711.
    video_caps = Gst.Caps.from_string(
        "application/x-rtp,media=video,encoding-name=H264,payload=102,clock-rate=90000,"
        "packetization-mode=(string)1,profile-level-id=(string)42e01f"
    )
    audio_caps = Gst.Caps.from_string("application/x-rtp,media=audio,encoding-name=PCMU,payload=0,clock-rate=8000")
    recvonly = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
    webrtc.emit("add-transceiver", recvonly, video_caps)
    webrtc.emit("add-transceiver", recvonly, audio_caps)

    def count_video(_sink, buffer, pad):
        with lock:
            result["frames"] += 1
            caps = pad.get_current_caps()
            if caps:
                s = caps.get_structure(0)
                result["width"] = s.get_value("width")
                result["height"] = s.get_value("height")
            if result["frames"] >= min_frames:
                GLib.idle_add(loop.quit)

    def count_audio(_sink, _buffer, _pad):
        with lock:
            result["audioBuffers"] += 1

    def on_pad_added(_element, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_value("media")
        if media == "video":
            chain = "rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! fakesink name=vsink signal-handoffs=true sync=false"
        else:
            chain = "fakesink name=asink signal-handoffs=true sync=false"
        branch = Gst.parse_bin_from_description(chain, True)
        pipeline.add(branch)
        branch.sync_state_with_parent()
        pad.link(branch.get_static_pad("sink"))
        sink = branch.get_by_name("vsink" if media == "video" else "asink")
        sink.connect("handoff", count_video if media == "video" else count_audio)

    webrtc.connect("pad-added", on_pad_added)

    state = {"location": None}

    def on_answer_set(_promise, _data=None):
        pass

    def post_offer():
        offer_sdp = webrtc.get_property("local-description").sdp.as_text()
        status, headers, body = http("POST", url, offer_sdp.encode("utf-8"), "application/sdp")
        result["status"] = status
        if status != 201:
            result["error"] = body
            loop.quit()
            return False
        state["location"] = headers.get("location")
        result["location"] = state["location"]
        _, sdp = GstSdp.SDPMessage.new_from_text(body)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        webrtc.emit("set-remote-description", answer, Gst.Promise.new_with_change_func(on_answer_set, None))
        return False

    # WHEP has no trickle from the server here: send the offer once gathering is complete.
    def on_gathering(element, _pspec):
        if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE and "status" not in result:
            GLib.idle_add(post_offer)

    webrtc.connect("notify::ice-gathering-state", on_gathering)

    def on_offer_created(promise, _data=None):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            print("create-offer failed: %s" % (reply.to_string() if reply else None), file=sys.stderr, flush=True)
            GLib.idle_add(loop.quit)
            return
        webrtc.emit("set-local-description", offer, Gst.Promise.new())

    def on_negotiation_needed(element):
        # Only the first time: webrtcbin asks again after the answer, and WHEP has one offer.
        if state.get("offered"):
            return
        state["offered"] = True
        element.emit("create-offer", None, Gst.Promise.new_with_change_func(on_offer_created, None))

    webrtc.connect("on-negotiation-needed", on_negotiation_needed)

    pipeline.set_state(Gst.State.PLAYING)
    GLib.timeout_add(int(seconds * 1000), loop.quit)
    loop.run()
    if state["location"]:
        result["deleteStatus"] = http("DELETE", urllib.parse.urljoin(url, state["location"]))[0]
    pipeline.set_state(Gst.State.NULL)
    print(json.dumps(result), flush=True)


main()
