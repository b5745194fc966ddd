#!/usr/bin/python3
"""A WHEP client that is not ours: aiortc (Debian's python3-aiortc) POSTs a recvonly offer,
applies the answer, decodes the video it receives and prints one JSON line with what it got.
Then it DELETEs the session. Usage: whep-client.py <whep-url> [seconds] [min-frames]
With WHEP_BEARER_TOKEN set (a share-link token), every request carries it as a bearer token.
With WHEP_VIDEO_CODEC set (e.g. VP8), the offer names only that video codec."""
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

import re

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription


def http(method, url, body=None, content_type=None):
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    if os.environ.get("WHEP_BEARER_TOKEN"):
        req.add_header("Authorization", "Bearer " + os.environ["WHEP_BEARER_TOKEN"])
    try:
        with urllib.request.urlopen(req, timeout=20) as res:
            return res.status, dict(res.headers), res.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode("utf-8")


async def main():
    url = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
    min_frames = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    result = {"frames": 0, "audioFrames": 0, "width": None, "height": None}
    pc = RTCPeerConnection()
    video = pc.addTransceiver("video", direction="recvonly")
    only = os.environ.get("WHEP_VIDEO_CODEC")
    if only:
        codecs = RTCRtpReceiver.getCapabilities("video").codecs
        video.setCodecPreferences([c for c in codecs if c.mimeType.lower() == "video/" + only.lower()])
    pc.addTransceiver("audio", direction="recvonly")
    done = asyncio.Event()

    async def consume(track):
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    result["frames"] += 1
                    result["width"] = frame.width
                    result["height"] = frame.height
                    if result["frames"] >= min_frames and result["audioFrames"] > 0:
                        done.set()
                else:
                    result["audioFrames"] += 1
        except Exception:
            pass

    @pc.on("track")
    def on_track(track):
        asyncio.ensure_future(consume(track))

    await pc.setLocalDescription(await pc.createOffer())
    loop = asyncio.get_running_loop()
    status, headers, body = await loop.run_in_executor(
        None, http, "POST", url, pc.localDescription.sdp.encode("utf-8"), "application/sdp"
    )
    result["status"] = status
    if status != 201:
        result["error"] = body
        print(json.dumps(result))
        await pc.close()
        return
    location = headers.get("Location") or headers.get("location")
    result["location"] = location
    result["contentType"] = headers.get("Content-Type") or headers.get("content-type")
    result["etag"] = headers.get("ETag") or headers.get("etag")
    video_section = body.split("m=video", 1)[1].split("\nm=", 1)[0] if "m=video" in body else ""
    result["videoCodecs"] = re.findall(r"a=rtpmap:\d+ ([A-Za-z0-9-]+)/", video_section)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    try:
        await asyncio.wait_for(done.wait(), timeout=seconds)
    except asyncio.TimeoutError:
        pass
    delete_url = urllib.parse.urljoin(url, location)
    result["deleteStatus"] = (await loop.run_in_executor(None, http, "DELETE", delete_url))[0]
    await pc.close()
    print(json.dumps(result))


asyncio.run(main())
