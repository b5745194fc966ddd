#!/usr/bin/python3
"""A fake IP camera for tests: an RTSP server that plays the part of a D-Link DCS-7010L.

It runs gst-rtsp-server through PyGObject. Run it with /usr/bin/python3 (the distribution's
Python has `gi`; a pyenv Python on PATH usually does not).

Control channel: one JSON object per line on stdin, one JSON object per line on stdout.
  {"id": 1, "cmd": "sessions"}  -> {"id": 1, "ok": true, "sessions": N}
  {"cmd": "clients"}            -> {"ok": true, "clients": N}
  {"cmd": "requests"}           -> {"ok": true, "requests": [{"method", "cseq", "uri", "authorized"}]}
  {"cmd": "drop"}               -> closes every client connection (a camera dropping its viewers)
  {"cmd": "keyframe"}           -> asks the encoder for an IDR now
  {"cmd": "talk-sessions"}      -> {"ok": true, "sessions": N}: open ONVIF back-channel sessions
  {"cmd": "ping"} / {"cmd": "quit"}
Once listening it prints {"ready": true, "port": N}. Every RTSP request is logged to stderr.

With --backchannel pcmu|pcma the server is an ONVIF one (RTSPOnvifServer): a client that sends
"Require: www.onvif.org/ver20/backchannel" gets its own media with an extra sendonly audio section
it can send G.711 to (the camera's speaker). What arrives is decoded, and for every 0.5 s of audio
the camera prints an event line (no "id"):
  {"event": "talk", "frequency": Hz, "rms": 0..1, "packets": N}
frequency is the strongest tone between 100 and 3900 Hz (0 when silent); packets counts the RTP
packets that reached the back-channel of that media so far.
EOF on stdin ends the process, so a dead parent never leaves a camera running.
"""

import argparse
import array
import cmath
import json
import math
import os
import re
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer, GstVideo  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description="Fake RTSP IP camera (gst-rtsp-server)")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--path", default="/live1.sdp")
    p.add_argument("--codec", choices=["h264", "h265"], default="h264")
    p.add_argument("--profile", choices=["baseline", "main", "high"], default="baseline")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--keyint", type=int, default=50, help="frames between keyframes")
    p.add_argument("--bitrate", type=int, default=1024, help="video bitrate, kbit/s")
    p.add_argument("--audio", choices=["pcmu", "pcma", "aac", "none"], default="pcmu")
    p.add_argument("--auth", choices=["none", "basic", "digest"], default="none")
    p.add_argument("--user", default="admin")
    p.add_argument("--password", default="")
    p.add_argument("--realm", default="DCS-7010L")
    p.add_argument("--transports", choices=["tcp", "udp", "both"], default="both")
    p.add_argument("--backchannel", choices=["none", "pcmu", "pcma"], default="none",
                   help="ONVIF audio back-channel (two-way audio) in this G.711 law")
    p.add_argument("--session-timeout", type=int, default=60, help="RTSP session timeout, s")
    p.add_argument("--no-keyframe-on-play", dest="keyframe_on_play", action="store_false",
                   help="no IDR for a client that starts playing (it waits for the next one), and ignore "
                        "clients' keyframe requests")
    sps = p.add_mutually_exclusive_group()
    sps.add_argument("--sps-in-band", dest="sps_in_band", action="store_true", default=True,
                     help="repeat parameter sets in-band before every IDR (default)")
    sps.add_argument("--sps-sdp-only", dest="sps_in_band", action="store_false",
                     help="parameter sets only in the SDP (sprop-parameter-sets), never in-band")
    return p.parse_args(argv)


# Parameter-set NAL unit types: H.264 SPS/PPS, H.265 VPS/SPS/PPS.
PARAMETER_SET_TYPES = {"h264": {7, 8}, "h265": {32, 33, 34}}


def video_branch(a):
    # A scrolling test pattern so P-frames carry real data, like a camera looking at a scene.
    # I420 because encoders otherwise pick 4:4:4 from videotestsrc (High 4:4:4, Main 4:4:4 12).
    src = (
        "videotestsrc name=vsrc is-live=true pattern=smpte horizontal-speed=2 "
        f"! video/x-raw,format=I420,width={a.width},height={a.height},framerate={a.fps}/1 "
    )
    # In-band: byte-stream from the encoder, which writes the parameter sets once before
    # every keyframe, as most cameras do. (The payloader's config-interval stays 0 in both
    # modes: -1 or 1 would make it send a second copy next to the encoder's.)
    # SDP-only: length-prefixed output (avc/hvc1), whose codec_data gives the payloader its
    # sprop-parameter-sets; the encoder is told not to repeat headers, and the "psfilter"
    # probe (see strip_parameter_sets) removes any that still slip through (x265enc always
    # prefixes the first frame with them). test/harness checks that IDRs then arrive bare.
    if a.codec == "h264":
        # x264's ultrafast preset turns CABAC and 8x8 transforms off, and the profile x264
        # writes into the SPS follows the features actually used. So a claimed main/high
        # profile must switch those features on, or the stream would really be baseline.
        features = {
            "baseline": "cabac=false dct8x8=false",
            "main": "cabac=true dct8x8=false",
            "high": "cabac=true dct8x8=true",
        }[a.profile]
        fmt, repeat = ("byte-stream", "repeat-headers=1") if a.sps_in_band else ("avc", "repeat-headers=0")
        # threads=1: one slice per picture like most cameras (zerolatency would otherwise
        # use sliced threads); aud=false: cameras rarely send access unit delimiters.
        return (
            src
            + f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={a.keyint} "
            f"bitrate={a.bitrate} bframes=0 threads=1 aud=false {features} option-string=\"{repeat}\" "
            f"! video/x-h264,profile={a.profile},stream-format={fmt},alignment=au "
            "! identity name=psfilter silent=true "
            "! rtph264pay name=pay0 pt=96 config-interval=0"
        )
    # H.265 is always Main profile here (the --profile values are H.264 names). No open GOP,
    # so every keyframe is an IDR, as with cameras.
    fmt, repeat = ("byte-stream", "repeat-headers=1") if a.sps_in_band else ("hvc1", "repeat-headers=0")
    return (
        src
        + f"! x265enc tune=zerolatency speed-preset=ultrafast key-int-max={a.keyint} "
        f"bitrate={a.bitrate} option-string=\"{repeat}:open-gop=0:bframes=0\" "
        "! video/x-h265,profile=main "
        f"! h265parse config-interval=0 ! video/x-h265,stream-format={fmt},alignment=au "
        "! identity name=psfilter silent=true "
        "! rtph265pay name=pay0 pt=96 config-interval=0"
    )


def strip_parameter_sets(codec):
    """Pad probe that removes parameter-set NAL units from length-prefixed access units.

    A probe cannot shrink a buffer in place, so a changed access unit is pushed again as a
    new buffer (with the original's timestamps and flags) and the original is dropped.
    """
    types = PARAMETER_SET_TYPES[codec]

    def nal_type(header):
        return header & 0x1F if codec == "h264" else (header >> 1) & 0x3F

    def probe(pad, info):
        buf = info.get_buffer()
        ok, mapinfo = buf.map(Gst.MapFlags.READ)
        if not ok:
            return Gst.PadProbeReturn.OK
        data = bytes(mapinfo.data)
        buf.unmap(mapinfo)
        kept = bytearray()
        changed = False
        i = 0
        while i + 4 < len(data):
            size = int.from_bytes(data[i:i + 4], "big")
            if nal_type(data[i + 4]) in types:
                changed = True
            else:
                kept += data[i:i + 4 + size]
            i += 4 + size
        if not changed:
            return Gst.PadProbeReturn.OK
        if kept:
            out = Gst.Buffer.new_wrapped(bytes(kept))
            flags = Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.TIMESTAMPS | Gst.BufferCopyFlags.META
            out.copy_into(buf, flags, 0, buf.get_size())
            pad.push(out)
        return Gst.PadProbeReturn.DROP

    return probe


def audio_branch(a):
    if a.audio == "none":
        return ""
    if a.audio in ("pcmu", "pcma"):
        # 20 ms per buffer, the usual G.711 packet time.
        enc, pay, pt = ("mulawenc", "rtppcmupay", 0) if a.audio == "pcmu" else ("alawenc", "rtppcmapay", 8)
        return (
            " audiotestsrc is-live=true wave=sine freq=440 volume=0.2 samplesperbuffer=160 "
            f"! audio/x-raw,rate=8000,channels=1 ! {enc} ! {pay} name=pay1 pt={pt}"
        )
    # AAC-LC 16 kHz mono in RFC 3640 (mpeg4-generic, AAC-hbr), the usual camera flavour.
    return (
        " audiotestsrc is-live=true wave=sine freq=440 volume=0.2 samplesperbuffer=1024 "
        "! audio/x-raw,rate=16000,channels=1 ! voaacenc bitrate=32000 "
        "! rtpmp4gpay name=pay1 pt=97"
    )


def not_seekable(_pad, info):
    query = info.get_query()
    if query.type != Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.OK
    # The query arrives read-only in a probe (set_seeking on it only printed a GStreamer-CRITICAL
    # and changed nothing); a new SEEKING query already says "not seekable", so answering it
    # untouched is the answer wanted.
    return Gst.PadProbeReturn.HANDLED


def launch_line(a):
    line = video_branch(a) + audio_branch(a)
    if a.backchannel != "none":
        # A back-channel client has a media of its own and may set up the back-channel alone. The
        # streams it leaves out stay unlinked, and a live source whose push fails "not-linked"
        # posts an error that stops the whole media, back-channel included. A tee that allows
        # not-linked in front of each payloader keeps those branches quietly running instead.
        line = re.sub(r"! (rtp\w+pay name=pay\d)", r"! tee allow-not-linked=true ! \1", line)
    return "( " + line + " )"


# --- ONVIF back-channel (the camera's speaker) -------------------------------------------
TALK_RATE = 8000
TALK_WINDOW = TALK_RATE // 2  # one report per 0.5 s of audio
FFT_SIZE = 4096
BACKCHANNEL_BIN = "onvif-backchannel"  # the name gst-rtsp-server gives the back-channel bin


def backchannel_launch(a):
    # gst-rtsp-server takes the RTP caps of the SDP's back-channel section from the element
    # named depay_backchannel; sinks must not wait for preroll (async=false).
    if a.backchannel == "pcmu":
        caps, depay, dec = "payload=0,encoding-name=PCMU", "rtppcmudepay", "mulawdec"
    else:
        caps, depay, dec = "payload=8,encoding-name=PCMA", "rtppcmadepay", "alawdec"
    return (
        f'( capsfilter name=depay_backchannel caps="application/x-rtp,media=audio,clock-rate=8000,{caps}" '
        f"! {depay} ! {dec} ! audioconvert ! audioresample "
        f"! audio/x-raw,format=S16LE,rate={TALK_RATE},channels=1 "
        "! appsink name=talksink emit-signals=true sync=false async=false )"
    )


def _fft(values):
    """In-place iterative radix-2 FFT of a list of complex numbers (length a power of two)."""
    n = len(values)
    j = 0
    for i in range(1, n):
        bit = n >> 1
        while j & bit:
            j ^= bit
            bit >>= 1
        j |= bit
        if i < j:
            values[i], values[j] = values[j], values[i]
    size = 2
    while size <= n:
        half = size >> 1
        twiddles = [cmath.exp(-2j * math.pi * k / size) for k in range(half)]
        for start in range(0, n, size):
            for k in range(half):
                a = start + k
                t = twiddles[k] * values[a + half]
                values[a + half] = values[a] - t
                values[a] = values[a] + t
        size <<= 1
    return values


def analyse_talk(samples):
    """(dominant frequency in Hz between 100 and 3900, rms 0..1) of signed 16-bit samples.

    Pure Python (numpy may be absent): a Hann-windowed 4096-point FFT (about 2 Hz per bin at
    8 kHz) and a parabola through the peak bin and its neighbours, well inside +/-1 Hz for a tone.
    """
    n = len(samples)
    if n == 0:
        return 0.0, 0.0
    rms = math.sqrt(sum(x * x for x in samples) / n) / 32768.0
    if rms < 1e-3:
        return 0.0, rms
    mean = sum(samples) / n
    values = [complex((samples[i] - mean) * (0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1)))) for i in range(min(n, FFT_SIZE))]
    values += [0j] * (FFT_SIZE - len(values))
    spectrum = [abs(v) for v in _fft(values)[: FFT_SIZE // 2]]
    lo = int(100 * FFT_SIZE / TALK_RATE)
    hi = int(3900 * FFT_SIZE / TALK_RATE)
    k = max(range(lo, hi + 1), key=lambda i: spectrum[i])
    left, mid, right = (math.log(spectrum[i] + 1e-9) for i in (k - 1, k, k + 1))
    denominator = left - 2 * mid + right
    delta = 0.5 * (left - right) / denominator if denominator != 0 else 0.0
    return (k + delta) * TALK_RATE / FFT_SIZE, rms


class TalkMeter:
    """Listens to one media's back-channel: counts RTP packets and reports every 0.5 s of audio."""

    def __init__(self, element):
        self.packets = 0
        self.samples = array.array("h")
        depay = element.get_by_name("depay_backchannel")
        depay.get_static_pad("sink").add_probe(
            Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST, self._count)
        element.get_by_name("talksink").connect("new-sample", self._on_sample)

    def _count(self, _pad, info):
        if info.type & Gst.PadProbeType.BUFFER_LIST:
            self.packets += info.get_buffer_list().length()
        else:
            self.packets += 1
        return Gst.PadProbeReturn.OK

    def _on_sample(self, sink):
        # The streaming thread: analyse here, print from the main loop (stdout carries replies).
        sample = sink.emit("pull-sample")
        if sample is None:
            return Gst.FlowReturn.OK
        buf = sample.get_buffer()
        ok, mapinfo = buf.map(Gst.MapFlags.READ)
        if ok:
            data = bytes(mapinfo.data)
            buf.unmap(mapinfo)
            self.samples.frombytes(data[: len(data) - len(data) % 2])
        while len(self.samples) >= TALK_WINDOW:
            window = self.samples[:TALK_WINDOW]
            del self.samples[:TALK_WINDOW]
            frequency, rms = analyse_talk(window)
            report = {"event": "talk", "frequency": round(frequency, 1), "rms": round(rms, 4), "packets": self.packets}
            GLib.idle_add(lambda r=report: emit(r) and False)
        return Gst.FlowReturn.OK


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write(f"[fake-camera] {msg}\n")
    sys.stderr.flush()


class LoggingAuth(GstRtspServer.RTSPAuth):
    """RTSPAuth that logs each request; with enforce=False it allows everything."""

    def __init__(self, camera, enforce):
        super().__init__()
        self.camera = camera
        self.enforce = enforce

    def do_check(self, ctx, check):
        allowed = GstRtspServer.RTSPAuth.do_check(self, ctx, check) if self.enforce else True
        try:
            self.camera.record_request(ctx, check, allowed)
        except Exception as exc:  # logging must never break the server
            log(f"request log failed: {exc!r}")
        return allowed


class Camera:
    def __init__(self, a):
        self.a = a
        self.loop = GLib.MainLoop()
        # Without a back-channel nothing differs from before: a plain RTSPServer and factory.
        onvif = a.backchannel != "none"
        self.server = GstRtspServer.RTSPOnvifServer() if onvif else GstRtspServer.RTSPServer()
        self.server.set_address(a.address)
        self.server.set_service(str(a.port))
        self.pool = self.server.get_session_pool()
        # client -> sessions it created. gst-rtsp-server forgets a client's sessions before it
        # emits "closed", so they are remembered here to end them when the client goes away.
        self.clients = {}
        self.requests = []
        self.stdin_buf = b""
        self.media = None
        self.media_held = False
        self.own_keyframe_request = False
        # Buffers seen at each stage of the video branch, for the stall watch (see _watch_flow).
        self.flow = {"source": 0, "encoder": 0, "audio": 0}
        self.flow_seen = dict(self.flow)
        self.stalled_for = 0
        # Since when the current media has had a session (GLib monotonic µs, seen by the stall
        # watch), None while it has none.
        self.media_played_at = None

        factory = GstRtspServer.RTSPOnvifMediaFactory() if onvif else GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(a))
        if onvif:
            factory.set_backchannel_launch(backchannel_launch(a))
            # The ONVIF factory builds only ONVIF medias (it returns none for plain ones).
            factory.set_media_gtype(GstRtspServer.RTSPOnvifMedia)
        # The back-channel media of each talking client: it is never shared (gst-rtsp-server
        # builds one per back-channel DESCRIBE), and talk-sessions counts the sessions using one.
        self.talk_meters = []
        # One encoder for every viewer, like a real camera (except back-channel clients, above). Sessions are still one per
        # client: the session pool counts them, not the media.
        factory.set_shared(True)
        factory.connect("media-configure", self._on_media_configure)
        protocols = {
            "tcp": GstRtsp.RTSPLowerTrans.TCP,
            "udp": GstRtsp.RTSPLowerTrans.UDP,
            "both": GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP,
        }[a.transports]
        factory.set_protocols(protocols)
        # An RTSPAuth is installed even without authentication: its check hook is the one
        # place that sees every request (401s included) with its method and CSeq, for the log.
        self.auth = LoggingAuth(self, enforce=a.auth != "none")
        self.server.set_auth(self.auth)
        if a.auth != "none":
            self._setup_auth(factory)
        self.server.get_mount_points().add_factory(a.path, factory)
        self.server.connect("client-connected", self._on_client_connected)

    def _setup_auth(self, factory):
        a = self.a
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        if a.auth == "basic":
            self.auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
            self.auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        else:
            self.auth.add_digest(a.user, a.password, token)
            self.auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        self.auth.set_realm(a.realm)
        role = Gst.Structure.new_from_string(
            "viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
        )
        factory.add_role_from_structure(role)

    def record_request(self, ctx, check, allowed):
        """Called by LoggingAuth for every access check of every request."""
        if check != GstRtspServer.RTSP_AUTH_CHECK_URL:
            # Later checks of the same request (factory access/construct) can still deny it.
            if not allowed and self.requests:
                self.requests[-1]["authorized"] = False
            return
        req = ctx.request
        method, cseq = "?", None
        if req is not None:
            res, m, _u, _v = req.parse_request()
            if res == GstRtsp.RTSPResult.OK:
                method = GstRtsp.rtsp_method_as_text(m) or str(m)
            hres, value = req.get_header(GstRtsp.RTSPHeaderField.CSEQ, 0)
            if hres == GstRtsp.RTSPResult.OK:
                cseq = int(value)
        uri = ctx.uri.get_request_uri() if ctx.uri is not None else None
        self.requests.append({"method": method, "cseq": cseq, "uri": uri, "authorized": allowed})
        if len(self.requests) > 1000:
            del self.requests[:500]
        log(f"{method} CSeq={cseq} {uri}{'' if allowed else ' -> denied (401)'}")
        if method == "PLAY" and allowed and self.a.keyframe_on_play:
            # Start the new viewer on an IDR, as many cameras do, once PLAY is handled.
            GLib.timeout_add(20, lambda: self.request_keyframe() and False)
        if method == "PLAY" and allowed:
            # For a failed test's log: what the UDP senders did for their clients since.
            GLib.timeout_add(2000, lambda: self._log_udp_senders() and False)

    def _on_media_configure(self, _factory, media):
        if media.get_element().get_by_name(BACKCHANNEL_BIN) is not None:
            self._configure_backchannel_media(media)
            return
        self.media = media
        self.media_played_at = None
        if not getattr(self, "moving", True):
            vsrc = media.get_element().get_by_name("vsrc")
            if vsrc is not None:
                self._apply_scene(vsrc)
        log("new media (encoder pipeline) configured")
        media.connect("prepared", self._on_media_prepared)
        # Without --keyframe-on-play, keyframe requests from clients (RTCP PLI/FIR, which
        # rtpbin turns into force-key-unit events) are dropped too, like on cameras that
        # ignore them; the control channel's "keyframe" command still gets through.
        pay_sink = media.get_element().get_by_name("pay0").get_static_pad("sink")
        pay_sink.add_probe(Gst.PadProbeType.EVENT_UPSTREAM, self._on_upstream_event)
        # Clients send "Range: npt=0.000-" with PLAY, and gst-rtsp-server then does a flushing
        # seek on the shared pipeline if it says it is seekable (the test sources do), so
        # every viewer's timestamps jump back to 0 whenever another one joins. A live camera
        # is not seekable: say so.
        for name in ("pay0", "pay1"):
            pay = media.get_element().get_by_name(name)
            if pay is not None:
                pay.get_static_pad("sink").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, not_seekable)
        self._count_flow(media)
        if not self.a.sps_in_band:
            psfilter = media.get_element().get_by_name("psfilter")
            psfilter.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, strip_parameter_sets(self.a.codec))

    def _configure_backchannel_media(self, media):
        # A talking client's own media: not the shared encoder the commands act on, not held
        # prepared (it goes with its session), and not part of the stall watch.
        log("new back-channel media configured")
        for name in ("pay0", "pay1"):
            pay = media.get_element().get_by_name(name)
            if pay is not None:
                pay.get_static_pad("sink").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, not_seekable)
        self.talk_meters.append(TalkMeter(media.get_element()))
        del self.talk_meters[:-20]

    def talk_session_count(self):
        """Sessions with a back-channel media (the client sent the ONVIF Require header)."""
        self.pool.cleanup()

        def talks(session_media):
            element = session_media.get_media().get_element()
            return element is not None and element.get_by_name(BACKCHANNEL_BIN) is not None

        return self._count_sessions(talks)

    def _count_sessions(self, wanted):
        """Sessions in the pool with at least one session media that `wanted` accepts."""
        return sum(1 for session in self.pool.filter(None, None) if any(wanted(m) for m in session.filter(None, None)))

    def _count_flow(self, media):
        element = media.get_element()

        def counter(stage):
            def probe(_pad, _info):
                self.flow[stage] += 1
                return Gst.PadProbeReturn.OK
            return probe

        for stage, name, pad in (("source", "vsrc", "src"), ("encoder", "psfilter", "sink"), ("audio", "pay1", "sink")):
            found = element.get_by_name(name)
            if found is not None:
                found.get_static_pad(pad).add_probe(Gst.PadProbeType.BUFFER, counter(stage))

    def _watch_flow(self):
        """Logs when the video branch stops while audio goes on: says which stage stopped.

        Watched from a session's PLAY of the media on (plus a second for the encoder to start),
        not only once it has encoded a frame: a new media whose video never starts is a stall too."""
        if self.media is None:
            return True
        moved = {k: self.flow[k] - self.flow_seen[k] for k in self.flow}
        self.flow_seen = dict(self.flow)
        watchers = self._shared_media_sessions()
        now = GLib.get_monotonic_time()
        if watchers == 0:
            self.media_played_at = None
        elif self.media_played_at is None:
            self.media_played_at = now
        playing = self.media_played_at is not None and now - self.media_played_at > 1_000_000
        if moved["encoder"] == 0 and (self.flow["encoder"] > 0 or playing):
            self.stalled_for += 1
            if self.stalled_for == 2:
                log(f"video stalled for 2 s: in the last second {moved['source']} raw frames, "
                    f"0 encoded, {moved['audio']} audio buffers ({self.flow['encoder']} encoded in all); "
                    f"clients {len(self.clients)}, sessions {self.pool.get_n_sessions()}; pipeline {self._pipeline_state()}; "
                    f"test source {self._element_state('vsrc')}; streams blocked: {', '.join(map(str, self._blocking_streams())) or 'none'}")
            # The raw video stopping is enough: it has stopped with the sound still flowing too.
            if moved["source"] == 0 and watchers > 0:
                self._restart_stopped_media()
        else:
            if self.stalled_for >= 2:
                log(f"video flows again after {self.stalled_for} s")
            self.stalled_for = 0
        return True

    def _log_udp_senders(self):
        """Logs each UDP sender of the shared media: its state, and per client the packets
        sent. A client that gets nothing while the encoder runs shows here with 0."""
        if self.media is None or self.media.get_element().get_parent() is None:
            return False
        parts = []
        iterator = self.media.get_element().get_parent().iterate_recurse()
        while True:
            res, element = iterator.next()
            if res != Gst.IteratorResult.OK:
                break
            factory = element.get_factory()
            if factory is None or factory.get_name() != "multiudpsink":
                continue
            _r, state, _p = element.get_state(0)
            clients = [c for c in (element.get_property("clients") or "").split(",") if c]
            sent = []
            for client in clients:
                host, _, port = client.rpartition(":")
                stats = element.emit("get-stats", host, int(port))
                packets = stats.get_value("packets-sent") if stats is not None else None
                sent.append(f"{client} {packets}")
            # bytes-to-serve: what reached the sink at all; 0 there means the stream stopped upstream of it.
            parts.append(f"{element.get_name()} {state.value_nick} got {element.get_property('bytes-to-serve')} B [{', '.join(sent)}]")
        # And whether each branch still moves: a sender at 0 beside a branch that flows is the server's
        # doing, beside one that stopped the pipeline's.
        moved = ", ".join(f"{k} {self.flow[k] - self.flow_seen[k]}" for k in self.flow)
        # A stream gst-rtsp-server still holds blocked (as it does a prepared media's until PLAY)
        # sends nothing to anyone.
        blocked = self._blocking_streams()
        log(f"UDP senders 2 s after PLAY: {'; '.join(parts) or 'none'}; buffers since the last flow check: {moved}; "
            f"streams blocked: {', '.join(map(str, blocked)) or 'none'}")
        return False

    def _shared_media_sessions(self):
        """Sessions PLAYing the shared media (a talking client's back-channel media is its own; a
        session set up but not yet played has not asked for the stream)."""
        return self._count_sessions(
            lambda session_media: session_media.get_media() == self.media
            and session_media.get_rtsp_state() == GstRtsp.RTSPState.PLAYING
        )

    def _blocking_streams(self):
        """The media's streams gst-rtsp-server holds blocked (as it does a prepared media's until PLAY)."""
        return [i for i in range(self.media.n_streams()) if self.media.get_stream(i).is_blocking()]

    def _element_state(self, name):
        element = self.media.get_element().get_by_name(name)
        if element is None:
            return "none"
        _res, current, pending = element.get_state(0)
        return f"{current.value_nick} (pending {pending.value_nick})"

    def _pipeline_state(self):
        pipeline = self.media.get_element().get_parent()
        if pipeline is None:
            return "none"
        _res, current, pending = pipeline.get_state(0)
        return f"{current.value_nick} (pending {pending.value_nick})"

    def _restart_stopped_media(self):
        """A real camera's encoder never stops while somebody watches. gst-rtsp-server 1.22's
        shared media can: once in about a dozen clean runs, after a client vanished while
        another arrived, the whole pipeline (test source and audio too) stood still with a
        client PLAYing, and every reconnect got the same stopped media. Once in a suite run the
        video branch alone stood still (no raw frames, the sound flowing) through every
        reconnect for 25 s (the custom UI suite, after its clients and snapshots had come and
        gone). The plugin did the right thing (lost the camera, reconnected) but could never
        recover, so this test
        camera repairs itself the way a camera reboots: first the pipeline is set playing
        again; if that does not move it, the media is dropped with its clients, and the next
        client gets a new one."""
        if self.stalled_for == 2:
            # A stream still held blocked under a playing session stops its whole branch back to
            # the test source: let it go first.
            for index in self._blocking_streams():
                log(f"unblocking stream {index}, held blocked with a session playing")
                self.media.get_stream(index).set_blocked(False)
            pipeline = self.media.get_element().get_parent()
            if pipeline is not None:
                log("restarting the stopped pipeline")
                pipeline.set_state(Gst.State.PLAYING)
        elif self.stalled_for == 4:
            log(f"the pipeline is still stopped ({self._pipeline_state()}): dropping the media and its clients")
            media, self.media, self.media_held = self.media, None, False
            self.flow = {"source": 0, "encoder": 0, "audio": 0}
            self.flow_seen = dict(self.flow)
            self.stalled_for = 0
            self.drop_clients()
            # The extra "prepare" held in _on_media_prepared: without it the media is
            # unprepared as its sessions end, and leaves the factory's cache.
            media.unprepare()

    def _on_media_prepared(self, media):
        # Once started, the encoder keeps running like a real camera's: hold one extra
        # "prepare" so the media is never unprepared. Besides realism this avoids a
        # gst-rtsp-server race: a shared media being unprepared as the last client leaves
        # stays in the factory's cache, and a client arriving right then gets 503.
        if self.media_held:
            return
        self.media_held = True
        # prepare() of a prepared media only counts, and stops the thread it is given.
        thread = GstRtspServer.RTSPThread.new(GstRtspServer.RTSPThreadType.MEDIA)
        if not media.prepare(thread):
            log("could not hold the media prepared")

    def _on_upstream_event(self, _pad, info):
        event = info.get_event()
        if not GstVideo.video_event_is_force_key_unit(event):
            return Gst.PadProbeReturn.OK
        if self.own_keyframe_request or self.a.keyframe_on_play:
            log("keyframe requested")
            return Gst.PadProbeReturn.OK
        log("keyframe request dropped (--no-keyframe-on-play)")
        return Gst.PadProbeReturn.DROP

    def set_moving(self, moving):
        """Scrolls the test pattern (a scene with motion) or stops it (a still scene)."""
        self.moving = moving
        if self.media is None:
            return False
        vsrc = self.media.get_element().get_by_name("vsrc")
        if vsrc is None:
            return False
        self._apply_scene(vsrc)
        return True

    def _apply_scene(self, vsrc):
        # The smpte pattern has a patch of random snow in its bottom right corner: a still scene
        # is the 75 % bars, which have none, standing still.
        vsrc.set_property("pattern", "smpte" if self.moving else "smpte75")
        vsrc.set_property("horizontal-speed", 2 if self.moving else 0)

    def request_keyframe(self):
        """Asks the encoder for an IDR now (sent upstream from the payloader)."""
        if self.media is None:
            return False
        pay = self.media.get_element().get_by_name("pay0")
        if pay is None:
            return False
        # all-headers would make the payloader re-send the parameter sets, which in SDP-only
        # mode must never appear in-band.
        event = GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, self.a.sps_in_band, 0)
        self.own_keyframe_request = True
        try:
            return pay.get_static_pad("sink").push_event(event)
        finally:
            self.own_keyframe_request = False

    # --- RTSP clients -------------------------------------------------------------------
    def _on_client_connected(self, _server, client):
        self.clients[client] = []
        client.connect("closed", self._on_client_closed)
        client.connect("new-session", self._on_new_session)

    def _on_new_session(self, client, session):
        session.set_timeout(self.a.session_timeout)
        self.clients.setdefault(client, []).append(session)

    def _on_client_closed(self, client):
        sessions = self.clients.pop(client, [])
        # gst-rtsp-server keeps a session in the pool until it times out, even after the
        # client's connection has gone (a client that vanished without TEARDOWN). The
        # camera we imitate ends the session with the control connection, and tests need
        # an exact count, so drop this client's sessions from the pool right away.
        removed = sum(1 for session in sessions if self.pool.remove(session))
        log(f"client closed ({removed} session(s) ended)")

    def session_count(self):
        # Expire timed-out sessions first (UDP clients that vanished without TEARDOWN).
        self.pool.cleanup()
        return self.pool.get_n_sessions()

    def drop_clients(self):
        """Ends every client connection as a network drop does: each socket is shut down under the
        server, which then reads end-of-stream and closes the client by its ordinary path.

        Not client_filter's REMOVE: that closes the connection from outside the client's watch, and
        gst-rtsp-server 1.22 could go on dispatching the watch on the freed stream, a busy loop of
        GLib-GIO-CRITICAL g_pollable_input_stream_read_nonblocking with the client and its session
        never ending (once in a full suite run, test/harness/fake-camera.test.ts)."""
        dropped = 0
        for client in list(self.clients):
            connection = client.get_connection()
            sock = connection.get_read_socket() if connection is not None else None
            if sock is None:
                continue
            try:
                sock.shutdown(True, True)
                dropped += 1
            except GLib.Error as exc:
                log(f"could not drop a client: {exc.message}")
        return dropped

    def stall_video(self):
        """Stops the current media's raw video at the test source and keeps it stopped (a blocking
        probe nothing removes) while the sound flows on: the stall gst-rtsp-server's shared media
        has shown, for the harness test of its repair."""
        if self.media is None:
            return False
        vsrc = self.media.get_element().get_by_name("vsrc")
        if vsrc is None:
            return False
        vsrc.get_static_pad("src").add_probe(Gst.PadProbeType.BLOCK | Gst.PadProbeType.BUFFER, lambda _pad, _info: Gst.PadProbeReturn.OK)
        log("video stalled on request")
        return True

    # --- control channel ----------------------------------------------------------------
    def _on_stdin(self, fd, condition):
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            log("stdin closed; exiting")
            self.loop.quit()
            return False
        self.stdin_buf += chunk
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            if line.strip():
                self._handle_command(line)
        return True

    def _handle_command(self, line):
        req_id = None
        try:
            msg = json.loads(line)
            req_id = msg.get("id")
            cmd = msg.get("cmd")
            if cmd == "sessions":
                reply = {"sessions": self.session_count()}
            elif cmd == "talk-sessions":
                reply = {"sessions": self.talk_session_count()}
            elif cmd == "clients":
                reply = {"clients": len(self.clients)}
            elif cmd == "requests":
                reply = {"requests": self.requests}
            elif cmd == "keyframe":
                reply = {"requested": bool(self.request_keyframe())}
            elif cmd == "scene":
                reply = {"applied": self.set_moving(bool(msg.get("moving", True)))}
            elif cmd == "drop":
                reply = {"dropped": self.drop_clients()}
            elif cmd == "stall-video":
                reply = {"stalled": self.stall_video()}
            elif cmd == "ping":
                reply = {}
            elif cmd == "quit":
                GLib.idle_add(self.loop.quit)
                reply = {}
            else:
                raise ValueError(f"unknown cmd {cmd!r}")
            reply["ok"] = True
        except Exception as exc:
            reply = {"ok": False, "error": str(exc)}
        if req_id is not None:
            reply["id"] = req_id
        emit(reply)

    def _periodic_cleanup(self):
        self.pool.cleanup()
        return True

    def run(self):
        if self.server.attach(None) == 0:
            log(f"cannot listen on {self.a.address}:{self.a.port}")
            emit({"ready": False, "error": f"cannot listen on port {self.a.port}"})
            return 2
        port = self.server.get_bound_port()
        GLib.timeout_add_seconds(1, self._periodic_cleanup)
        GLib.timeout_add_seconds(1, self._watch_flow)
        GLib.unix_fd_add_full(GLib.PRIORITY_DEFAULT, sys.stdin.fileno(),
                              GLib.IOCondition.IN | GLib.IOCondition.HUP, self._on_stdin)
        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, self.loop.quit)
        log(f"serving rtsp://{self.a.address}:{port}{self.a.path} {launch_line(self.a)}")
        emit({"ready": True, "port": port})
        self.loop.run()
        return 0


def main(argv):
    a = parse_args(argv)
    if not a.path.startswith("/"):
        a.path = "/" + a.path
    Gst.init(None)
    return Camera(a).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
