"""A live H.264 RTSP camera on 127.0.0.1, served by GStreamer's RTSP server (gst-rtsp-server).

Run with Debian's Python, which has the GObject bindings (python3-gi,
gir1.2-gst-rtsp-server-1.0, x264enc from gstreamer1.0-plugins-ugly):

    /usr/bin/python3 tests/rtsp_server_gst.py --port 8554 --path /cam --fps 25 [--protocols tcp]

It prints `READY rtsp://127.0.0.1:PORT/PATH` on stdout once it listens, and serves a moving
test pattern (videotestsrc "ball" over a moving colour background), live: frames are produced
on the wall clock whether or not anyone watches, as a camera does. Each client gets its own
pipeline. SIGTERM/SIGINT stop it; the tests also SIGKILL it (a camera losing power) and
SIGSTOP it (a camera that hangs with its connections open).
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

PROTOCOLS = {
    "any": GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.TCP,
    "tcp": GstRtsp.RTSPLowerTrans.TCP,
    "udp": GstRtsp.RTSPLowerTrans.UDP,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--protocols", choices=PROTOCOLS, default="any", help="transports offered")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball motion=sweep background-color=0xff203040 "
        f"! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 "
        f"! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={args.fps} bitrate=800 "
        f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)
    factory.set_protocols(PROTOCOLS[args.protocols])
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on 127.0.0.1:{args.port}", flush=True)
        return 1
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    port = server.get_bound_port()  # --port 0: the one the system gave
    print(f"READY rtsp://127.0.0.1:{port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
