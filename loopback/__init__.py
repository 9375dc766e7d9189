"""Servers on 127.0.0.1 for the tests and the benchmarks: an RTSP camera (GStreamer), an MJPEG
camera over HTTP, an HTTP file server and a server that accepts and never answers. Each binds
port 0, reports the port it got, is bounded in time and is stopped by whoever started it.
Not part of the installed package: it lives beside `tests/` and `bench/`, which both import it.
"""
