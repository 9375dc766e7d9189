"""`--serve` without a browser: the address and token rules, the feed, the Prometheus text (read
back with prometheus_client's parser), and the HTTP server on 127.0.0.1 (tokens, refused
requests, bounded connections, clients that stall). A fake pipeline stands for the run; the
whole run with a real browser is in test_web_browser.py."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import realtime.web.server as web_server
from realtime.core.errors import InputError
from realtime.stream.capture import Frame
from realtime.stream.metrics import PipelineMetrics
from realtime.stream.pipeline import Status
from realtime.stream.prediction import Prediction
from realtime.stream.reconnect import SourceState
from realtime.web.address import (
    TOKEN_ENV,
    ServeAddress,
    is_loopback,
    parse_serve_address,
    serve_token,
)
from realtime.web.feed import TimelinePoint, WebFeed
from realtime.web.prometheus import escape, render
from realtime.web.server import WebServer

LABELS = ["alpha", "beta", "gamma"]
TOKEN = "s3cret-token-for-tests"


# -- the address and the token ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text, host, port",
    [
        ("8080", "127.0.0.1", 8080),
        ("0", "127.0.0.1", 0),
        ("0.0.0.0:80", "0.0.0.0", 80),
        ("localhost:8080", "localhost", 8080),
        ("[::1]:9000", "::1", 9000),
        (" 10.1.2.3:65535 ", "10.1.2.3", 65535),
    ],
)
def test_serve_address_is_host_and_port_with_loopback_by_default(text, host, port):
    assert parse_serve_address(text) == ServeAddress(host, port)


@pytest.mark.parametrize(
    "text, says",
    [
        ("::1:80", "brackets"),
        (":80", "empty"),
        ("host:http", "port from 0 to 65535"),
        ("65536", "port from 0 to 65535"),
        ("-1", "port from 0 to 65535"),
        ("", "port from 0 to 65535"),
    ],
)
def test_a_bad_serve_address_says_what_is_wrong(text, says):
    with pytest.raises(ValueError, match=says):
        parse_serve_address(text)


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.9.8.7", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
    ],
)
def test_loopback_is_every_address_a_host_names_being_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    "addresses, loopback",
    [
        (["127.0.0.1", "::1"], True),
        (["127.0.0.1", "192.0.2.7"], False),  # one address beyond: not loopback
        (OSError("no such host"), False),  # a name that does not resolve
    ],
)
def test_a_name_is_loopback_when_all_it_resolves_to_is(monkeypatch, addresses, loopback):
    """Names go through the resolver, faked here: a test asks no DNS server anything."""

    def getaddrinfo(host, port, proto=0):
        if isinstance(addresses, Exception):
            raise addresses
        return [(None, None, proto, "", (a, 0)) for a in addresses]

    monkeypatch.setattr("realtime.web.address.socket.getaddrinfo", getaddrinfo)
    assert is_loopback("camera-box.example") is loopback


def test_beyond_loopback_a_token_is_required_from_the_flag_or_the_environment():
    inside, outside = ServeAddress("127.0.0.1", 8080), ServeAddress("0.0.0.0", 8080)
    assert serve_token(None, inside, environ={}) is None
    with pytest.raises(InputError, match=f"--serve-token or {TOKEN_ENV}"):
        serve_token(None, outside, environ={})
    assert serve_token(TOKEN, outside, environ={}) == TOKEN
    assert serve_token(None, outside, environ={TOKEN_ENV: TOKEN}) == TOKEN
    assert serve_token("flag-wins-here", outside, environ={TOKEN_ENV: TOKEN}) == "flag-wins-here"
    assert serve_token(TOKEN, inside, environ={}) == TOKEN  # asked for on loopback too
    with pytest.raises(InputError, match="too short"):
        serve_token("short", inside, environ={})


# -- a fake run ------------------------------------------------------------------------------
def prediction(camera="cam1", top="beta", score=0.7, t=0.0, wall=1000.0, frame=0, label=None):
    rest = (1.0 - score) / 2
    probs = {name: (score if name == top else rest) for name in LABELS}
    return Prediction(
        frame=frame, sample=frame, timestamp=t, wall_time=wall, label=label or top,
        score=score, probs=probs, window=5, window_length=20, frame_age_ms=12.5,
        timings_ms={"backbone": 7.0}, dropped=1, source_state=SourceState.LIVE, top_label=top,
        camera=camera,
    )  # fmt: skip


class FakeCapture:
    def __init__(self, state):
        self.state = state


class FakeCamera:
    """What the views read of a camera: name, status(), latest(), capture.state, metrics."""

    def __init__(self, name, state=SourceState.LIVE, classified=40, display=None):
        self.name = name
        self.capture = FakeCapture(state)
        self.metrics = PipelineMetrics()
        for k in range(classified):
            self.metrics.record({"decode": 1.0, "backbone": 8.0 + k % 3, "head": 0.3}, 20.0 + k)
        self._latest = None
        self.display = display

    def predict(self, p: Prediction):
        frame = Frame(
            index=p.frame, sample=p.sample, image=None, source_time=p.timestamp,
            captured_at=0.0, decode_ms=1.0, preprocess_ms=0.1, segment=0, display=self.display,
        )  # fmt: skip
        self._latest = (p, frame)

    def latest(self):
        return self._latest

    def status(self) -> Status:
        return Status(
            source="rtsp://cam.local/live", model="mobilenet on litert",
            state=self.capture.state, frames_read=50, frames_sampled=48, frames_skipped=2,
            classified=self.metrics.classified, dropped=3, fps=24.5,
            stages_ms={"backbone": 7.25}, frame_age_ms=12.0, elapsed_s=2.0, reconnects=1,
            frames_stale=4, camera=self.name,
        )  # fmt: skip


class FakeBackbone:
    name = 'mobile"net\\v1'
    backend = "litert"


class FakePipeline:
    labels = LABELS
    model_label = "mobilenet on litert"
    backbone = FakeBackbone()

    def __init__(self, cameras):
        self.cameras = cameras


# -- the feed --------------------------------------------------------------------------------
def test_the_feed_keeps_one_point_per_step_and_the_last_span():
    feed = WebFeed(["cam1"], LABELS, span_s=10.0, step_s=0.5)
    for k in range(100):  # 25 points a second for 4 s
        feed.handle(prediction(wall=1000.0 + k * 0.04, t=k * 0.04, frame=k), None)
    points = feed.timeline("cam1", now=1004.0)
    times = [p.wall_time for p in points]
    assert len(points) == 8  # one per 0.5 s
    assert all(b - a >= 0.5 - 1e-9 for a, b in zip(times, times[1:], strict=False))
    assert points[0].probs == pytest.approx((0.15, 0.7, 0.15))
    assert len(feed.timeline("cam1", now=1012.0)) == 4  # only the last 10 s
    assert feed.timeline("cam1", now=1030.0) == []


def test_a_gap_breaks_the_timeline_and_ends_the_open_segment():
    feed = WebFeed(["cam1", "cam2"], LABELS, step_s=0.5, hysteresis=1, min_duration=0.0)
    for k in range(10):
        feed.handle(prediction(wall=1000.0 + k, t=float(k), frame=k), None)
    assert [e["closed"] for e in feed.events()] == [False]  # beta, under way
    feed.on_gap("cam1")
    feed.on_gap("cam1")  # a second gap adds no second break
    feed.handle(prediction(top="gamma", wall=1011.0, t=0.0, frame=0), None)
    points = feed.timeline("cam1", now=1011.0)
    assert [p.probs is None for p in points[-3:]] == [False, True, False]
    events = feed.events()
    assert [(e["label"], e["closed"], e["camera"]) for e in events] == [
        ("beta", True, "cam1"),
        ("gamma", False, "cam1"),
    ]
    assert events[0]["start"] == 0.0 and events[0]["end"] == 9.0 and events[0]["frames"] == 10
    assert feed.timeline("cam2", now=1011.0) == []


# -- /metrics --------------------------------------------------------------------------------
def families(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample(families_, family, name=None, **labels):
    for s in families_[family].samples:
        if s.name == (name or family) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((family, name, labels))


def test_metrics_parse_and_carry_each_camera_s_figures():
    cameras = [FakeCamera("cam1", classified=40), FakeCamera("cam2", SourceState.RECONNECTING, 7)]
    text = render(FakePipeline(cameras), started_at=1.7e9, connections=3, requests={200: 5})
    found = families(text)
    assert found["realtime_frames_classified"].type == "counter"
    assert sample(found, "realtime_frames_classified", "realtime_frames_classified_total",
                  camera="cam1") == 40  # fmt: skip
    assert sample(found, "realtime_frames_classified", "realtime_frames_classified_total",
                  camera="cam2") == 7  # fmt: skip
    for family, value in [("realtime_frames_read", 50), ("realtime_frames_skipped", 2),
                          ("realtime_frames_dropped", 3), ("realtime_frames_stale", 4),
                          ("realtime_reconnects", 1)]:  # fmt: skip
        assert sample(found, family, family + "_total", camera="cam2") == value
    states = {s.labels["state"]: s.value for s in found["realtime_source_state"].samples
              if s.labels["camera"] == "cam2"}  # fmt: skip
    assert states == {
        state.value: float(state is SourceState.RECONNECTING) for state in SourceState
    }
    age = found["realtime_frame_age_seconds"]
    assert age.type == "summary"
    # 40 frames aged 20..59 ms: count, sum and median in seconds
    assert sample(found, "realtime_frame_age_seconds", "realtime_frame_age_seconds_count",
                  camera="cam1") == 40  # fmt: skip
    assert sample(found, "realtime_frame_age_seconds", "realtime_frame_age_seconds_sum",
                  camera="cam1") == pytest.approx(sum(range(20, 60)) / 1000)  # fmt: skip
    assert sample(found, "realtime_frame_age_seconds", camera="cam1",
                  quantile="0.5") == pytest.approx(0.0395)  # fmt: skip
    assert sample(found, "realtime_stage_seconds", "realtime_stage_seconds_count", camera="cam2",
                  stage="backbone") == 7  # fmt: skip
    backbone_sum = sample(found, "realtime_stage_seconds", "realtime_stage_seconds_sum",
                          camera="cam2", stage="backbone")  # fmt: skip
    assert backbone_sum == pytest.approx((8 + 9 + 10 + 8 + 9 + 10 + 8) / 1000)
    info = found["realtime_backbone_info"].samples[0]
    assert info.labels == {"backbone": 'mobile"net\\v1', "backend": "litert"}  # escaped, read back
    assert sample(found, "realtime_http_connections") == 3
    assert (
        sample(found, "realtime_http_responses", "realtime_http_responses_total", code="200") == 5
    )
    assert text.count("# TYPE realtime_stage_seconds summary") == 1  # the stages share a family


def test_label_values_are_escaped_as_the_text_format_says():
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


# -- the server, in process, on 127.0.0.1 ----------------------------------------------------
@pytest.fixture
def serve():
    """serve(cameras, token=None, **server options) -> a started WebServer; all closed at the
    end of the test."""
    started = []

    def start(cameras=None, token=None, **options):
        cameras = cameras or [FakeCamera("cam1")]
        feed = WebFeed([c.name for c in cameras], LABELS)
        server = WebServer(ServeAddress("127.0.0.1", 0), token, feed, **options)
        started.append(server)
        server.start(FakePipeline(cameras))
        return server

    yield start
    for server in started:
        server.close()


def get(server, path, headers=None, method="GET", body=None, timeout=5.0):
    connection = http.client.HTTPConnection(
        server.address.host, server.address.port, timeout=timeout
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw(server, data: bytes, timeout=5.0) -> bytes:
    with socket.create_connection((server.address.host, server.address.port), timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_api_latest_is_each_camera_s_jsonl_line_and_null_before_the_first(serve):
    cam1, cam2 = FakeCamera("cam1"), FakeCamera("cam2")
    p = prediction()
    cam1.predict(p)
    server = serve([cam1, cam2])
    status, headers, body = get(server, "/api/latest")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"cam1": json.loads(p.to_json()), "cam2": None}


def test_healthz_is_200_when_every_camera_is_live_and_503_naming_the_others(serve):
    cameras = [FakeCamera("cam1"), FakeCamera("cam2")]
    server = serve(cameras)
    status, _, body = get(server, "/healthz")
    assert status == 200 and json.loads(body)["not_live"] == []
    cameras[1].capture.state = SourceState.RECONNECTING
    status, _, body = get(server, "/healthz")
    assert status == 503
    assert json.loads(body) == {
        "status": "unhealthy",
        "cameras": {"cam1": "live", "cam2": "reconnecting"},
        "not_live": ["cam2"],
    }


def test_a_camera_s_picture_is_a_jpeg_of_its_frame_with_the_overlay(serve):
    display = np.zeros((360, 640, 3), np.uint8)
    display[200:300, 250:400] = (255, 0, 255)  # a magenta box, BGR
    camera = FakeCamera("cam1", display=display)
    server = serve([camera])
    status, headers, body = get(server, "/api/frame/cam1.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    import cv2

    before = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert before.shape == (360, 640, 3) and before[250, 320].max() < 60  # no frame yet: grey
    camera.predict(prediction())
    time.sleep(0.12)  # past the shared picture's minimum interval
    image = cv2.imdecode(np.frombuffer(get(server, "/api/frame/cam1.jpg")[2], np.uint8), 1)
    assert np.abs(image[250, 320].astype(int) - (255, 0, 255)).max() < 40  # the frame
    band = image[:70]  # the overlay's band: the action drawn in green on the darkened top
    green = (band[..., 1] > 180) & (band[..., 0] < 140) & (band[..., 2] < 140)
    assert green.sum() > 200
    assert get(server, "/api/frame/cam9.jpg")[0] == 404


def test_a_large_frame_is_sent_at_most_960_pixels_wide(serve):
    camera = FakeCamera("cam1", display=np.full((2160, 3840, 3), 90, np.uint8))
    camera.predict(prediction())
    server = serve([camera])
    import cv2

    image = cv2.imdecode(np.frombuffer(get(server, "/api/frame/cam1.jpg")[2], np.uint8), 1)
    assert image.shape == (540, 960, 3)


def test_the_page_and_its_state(serve):
    camera = FakeCamera("cam1")
    server = serve([camera])
    server.feed.handle(prediction(wall=time.time()), None)
    camera.predict(prediction())
    status, headers, body = get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert b"/api/state" in body and b".mjpg" in body and b".jpg" in body
    state = json.loads(get(server, "/api/state")[2])
    assert state["labels"] == LABELS and len(state["colours"]) == 3
    (cam,) = state["cameras"]
    assert cam["name"] == "cam1" and cam["state"] == "live" and cam["classified"] == 40
    assert cam["latest"]["label"] == "beta"
    assert len(cam["timeline"]) == 1 and cam["timeline"][0][1] == [0.15, 0.7, 0.15]


def test_api_events_lists_the_recent_segments(serve):
    server = serve([FakeCamera("cam1")])
    for k in range(10):
        server.feed.handle(prediction(t=k * 0.1, wall=1000 + k * 0.1, frame=k), None)
    (event,) = json.loads(get(server, "/api/events")[2])["events"]
    assert event["label"] == "beta" and event["closed"] is False and event["camera"] == "cam1"


@pytest.mark.parametrize(
    "path", ["/", "/api/state", "/api/latest", "/api/events", "/metrics", "/api/frame/cam1.jpg"]
)
def test_with_a_token_everything_but_healthz_asks_for_it(serve, path):
    server = serve(token=TOKEN)
    status, headers, _ = get(server, path)
    assert status == 401 and headers["WWW-Authenticate"] == "Bearer"
    assert get(server, path, {"Authorization": "Bearer wrong-token-here"})[0] == 401
    assert get(server, f"{path}?token=wrong-token-here")[0] == 401
    assert get(server, path, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert get(server, path, {"Authorization": f"bearer {TOKEN}"})[0] == 200
    assert get(server, f"{path}?token={TOKEN}")[0] == 200
    assert get(server, "/healthz")[0] == 200


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("127.0.0.1:8080", True),
        ("localhost:8080", True),
        ("LOCALHOST", True),
        ("127.1.2.3", True),
        ("[::1]:8080", True),
        ("attacker.example:8080", False),
        ("127.0.0.1.attacker.example", False),
        ("10.0.0.5:8080", False),
        ("", False),
    ],
)
def test_without_a_token_only_loopback_host_names_are_answered(serve, host, allowed):
    """DNS rebinding: a page of attacker.example, its name re-resolved to 127.0.0.1, would
    reach an open loopback server from the user's browser; its Host header gives it away."""
    server = serve()
    status, _, _ = get(server, "/api/latest", {"Host": host})
    assert status == (200 if allowed else 403)
    assert get(server, "/healthz", {"Host": host})[0] == 200  # nothing to hide there
    with_token = serve(token=TOKEN)
    assert get(with_token, f"/api/latest?token={TOKEN}", {"Host": host})[0] == 200


def test_the_token_is_compared_in_constant_time(serve, monkeypatch):
    compared = []
    real = web_server.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(web_server.hmac, "compare_digest", spy)
    server = serve(token=TOKEN)
    assert get(server, "/api/latest?token=guess-guess")[0] == 401
    assert get(server, "/api/latest", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert compared == [(b"guess-guess", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


@pytest.mark.parametrize(
    "path",
    [
        "/../../../../etc/passwd",
        "/api/frame/../../../../etc/passwd",
        "/api/frame/..%2f..%2f..%2fetc%2fpasswd.jpg",
        "/api/frame/%2e%2e/%2e%2e/etc/passwd.jpg",
        "/static/../realtime/web/page.html",
        "/page.html",
        "//etc/passwd",
    ],
)
def test_paths_are_matched_exactly_never_mapped_to_files(serve, path):
    status, _, body = get(serve(), path)
    assert status == 404 and b"root:" not in body and b"<html" not in body


def test_oversized_and_unexpected_requests_are_refused(serve):
    server = serve()
    assert raw(server, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
        b"HTTP/1.1 414"
    )
    status, headers, _ = get(server, "/api/latest", method="POST", body=b"{}")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert get(server, "/api/latest", body=b"x" * 100)[0] == 413
    many = b"".join(b"X-%d: y\r\n" % k for k in range(120))
    assert raw(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n").startswith(
        b"HTTP/1.1 431"
    )
    status, headers, body = get(server, "/api/latest", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0


def test_connections_beyond_the_bound_are_answered_503_and_stalled_clients_are_dropped(serve):
    server = serve(max_connections=3, timeout_s=1.0)
    stalled = [
        socket.create_connection((server.address.host, server.address.port)) for _ in range(3)
    ]
    try:
        time.sleep(0.2)
        assert raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 503")
        # the stalled clients never sent a request: each is dropped after the timeout
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and get(server, "/healthz", timeout=2)[0] == 503:
            time.sleep(0.1)
        assert get(server, "/healthz")[0] == 200
    finally:
        for s in stalled:
            s.close()


def test_a_client_that_never_reads_delays_nobody(serve):
    camera = FakeCamera(
        "cam1", display=np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), np.uint8)
    )
    camera.predict(prediction())
    server = serve([camera], timeout_s=2.0)
    stuck = socket.create_connection((server.address.host, server.address.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        request = b"GET /api/frame/cam1.jpg HTTP/1.1\r\nHost: x\r\n\r\n"
        stuck.sendall(request * 50)  # 50 pictures asked for, none read
        times = []
        for _ in range(20):
            t0 = time.monotonic()
            assert get(server, "/api/latest", timeout=5)[0] == 200
            times.append(time.monotonic() - t0)
        assert max(times) < 1.0  # (a liveness bound, generous: each takes about a millisecond)
    finally:
        stuck.close()


def test_a_view_that_fails_answers_500_and_is_reported(serve, monkeypatch):
    server = serve()

    def broken():
        raise ValueError("a bug in a view")

    monkeypatch.setattr(server.app.views, "events", broken)
    assert get(server, "/api/events")[0] == 500
    assert get(server, "/healthz")[0] == 200  # the server goes on
    assert [str(f) for f in server.failures()] == ["--serve: ValueError: a bug in a view"]


def test_a_port_in_use_is_an_input_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InputError, match=f"--serve 127.0.0.1:{port}: cannot listen there"):
            WebServer(ServeAddress("127.0.0.1", port), None, WebFeed(["cam1"], LABELS))


def test_concurrent_viewers_share_one_picture_encode(serve, monkeypatch):
    camera = FakeCamera("cam1", display=np.zeros((360, 640, 3), np.uint8))
    camera.predict(prediction())
    server = serve([camera])
    made = []
    real = server.app.views._picture

    def counting(c):
        made.append(1)
        return real(c)

    for shared in server.app.views.pictures.values():
        shared.make = lambda c=camera: counting(c)
    threads = [
        threading.Thread(target=get, args=(server, "/api/frame/cam1.jpg")) for _ in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1  # the newest result has not changed: one encode for twenty viewers


@contextmanager
def results_coming(server, camera, period: float):
    """A camera's results arriving every `period` seconds (on a thread) while inside."""
    stop = threading.Event()

    def results():
        k = 0
        while not stop.wait(period):
            p = prediction(frame=k, wall=time.time())
            camera.predict(p)
            server.feed.handle(p, None)
            k += 1

    producer = threading.Thread(target=results)
    producer.start()
    try:
        yield
    finally:
        stop.set()
        producer.join()


# -- the video stream ------------------------------------------------------------------------
def read_parts(sock: socket.socket, seconds: float) -> tuple[bytes, list[bytes]]:
    """(response head, JPEG parts) read from an MJPEG response for `seconds`."""
    data = b""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    parts = []
    for piece in body.split(b"--frame\r\n")[1:]:
        headers, _, rest = piece.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", headers).group(1))
        if len(rest) >= length:
            parts.append(rest[:length])
    return head, parts


def test_a_video_stream_sends_each_new_result_s_picture_at_most_ten_a_second(serve):
    import cv2

    camera = FakeCamera("cam1", display=np.zeros((360, 640, 3), np.uint8))
    server = serve([camera])
    with socket.create_connection((server.address.host, server.address.port)) as s:
        s.sendall(b"GET /api/video/cam1.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head, parts = read_parts(s, 0.5)  # nothing new: the current picture, once
        assert head.startswith(b"HTTP/1.1 200")
        assert b"multipart/x-mixed-replace; boundary=frame" in head
        assert len(parts) == 1
        with results_coming(server, camera, 0.02):  # 50 a second, as two busy cameras give
            _, parts = read_parts(s, 2.0)
    assert 8 <= len(parts) <= 21  # new results come 50 a second; pictures at most 10
    for jpeg in parts:
        assert cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (360, 640, 3)
    assert get(server, "/api/video/cam9.mjpg")[0] == 404


def test_a_video_stream_ends_when_the_server_stops():
    feed = WebFeed(["cam1"], LABELS)
    server = WebServer(ServeAddress("127.0.0.1", 0), None, feed)
    server.start(FakePipeline([FakeCamera("cam1")]))
    with socket.create_connection((server.address.host, server.address.port)) as s:
        s.sendall(b"GET /api/video/cam1.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        read_parts(s, 0.3)
        t0 = time.monotonic()
        server.close()
        s.settimeout(5)
        while s.recv(65536):
            pass
        assert time.monotonic() - t0 < 3  # (the stream noticed the stop; generous bound)


def test_a_stream_viewer_that_never_reads_is_dropped_and_delays_nobody(serve):
    noise = np.random.default_rng(0).integers(0, 255, (540, 960, 3), np.uint8)
    camera = FakeCamera("cam1", display=noise)  # ~500 KB a picture: buffers fill at once
    server = serve([camera], timeout_s=1.0)
    stuck = socket.create_connection((server.address.host, server.address.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with stuck, results_coming(server, camera, 0.05):
        stuck.sendall(b"GET /api/video/cam1.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert wait_for(lambda: server.server.connections == 1, 3)
        for _ in range(10):
            assert get(server, "/api/latest", timeout=5)[0] == 200  # others are answered
        # its writes block; after the timeout its connection is dropped
        assert wait_for(lambda: server.server.connections == 0, 10)


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_twenty_viewers_of_a_camera_are_served_by_one_thread_that_ends_with_the_last(serve):
    camera = FakeCamera("cam1", display=np.zeros((360, 640, 3), np.uint8))
    server = serve([camera])
    viewers = [socket.create_connection((server.address.host, server.address.port))
               for _ in range(20)]  # fmt: skip
    with results_coming(server, camera, 0.04):
        for s in viewers:
            s.sendall(b"GET /api/video/cam1.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        broadcaster = server.app.views.broadcasters["cam1"]
        assert wait_for(lambda: broadcaster.viewers == 20, 5)
        video_threads = [t for t in threading.enumerate() if t.name == "web-video"]
        assert len(video_threads) == 1
        time.sleep(1.5)  # then what each socket holds: ~10 pictures a second, each
        received = [len(read_parts(s, 0.05)[1]) for s in viewers]
        assert min(received) >= 5
        for s in viewers:
            s.close()
    assert wait_for(lambda: broadcaster.viewers == 0, 5)  # each dropped as it went away
    assert wait_for(lambda: not [t for t in threading.enumerate() if t.name == "web-video"], 5)


# -- what the page reads, what monitoring reads ------------------------------------------------
PAGE = Path(__file__).resolve().parent.parent / "realtime" / "web" / "page.html"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "web.md"


def test_the_state_carries_every_field_the_page_reads_with_the_camera_s_figures(serve):
    camera = FakeCamera("cam1")
    camera.predict(prediction())
    server = serve([camera])
    status, headers, body = get(server, "/api/state")
    assert status == 200 and headers["Content-Type"] == "application/json"
    state = json.loads(body)
    script = PAGE.read_text()
    assert set(re.findall(r"\bstate\.([a-z_]+)", script)) <= set(state)
    (cam,) = state["cameras"]
    assert set(re.findall(r"\bcamera\.([a-z_]+)", script)) <= set(cam)
    assert set(re.findall(r"\bp\.([a-z_]+)", script)) - {"to"} <= set(cam["latest"])
    assert {key: cam[key] for key in ("name", "source", "state", "state_detail", "fps",
            "frame_age_ms", "frames_read", "classified", "dropped", "skipped", "reconnects")} == {
        "name": "cam1", "source": "rtsp://cam.local/live", "state": "live",
        "state_detail": "live", "fps": 24.5, "frame_age_ms": 12.0, "frames_read": 50,
        "classified": 40, "dropped": 3, "skipped": 2, "reconnects": 1}  # fmt: skip
    assert state["model"] == "mobilenet on litert" and state["span_s"] == 60.0


def test_timeline_points_are_rounded_for_the_page():
    feed = WebFeed(["cam1"], LABELS)
    p = prediction(wall=1000.123456, score=0.123456)
    from realtime.web.views import _point

    (point,) = feed.timeline("cam1", now=1001.0) or [None]
    assert point is None
    feed.handle(p, None)
    (point,) = feed.timeline("cam1", now=1001.0)
    assert _point(point) == [1000.12, [0.438, 0.123, 0.438]]


def test_the_feed_keeps_a_point_exactly_one_step_on_and_one_exactly_a_span_old():
    feed = WebFeed(["cam1"], LABELS, span_s=10.0, step_s=0.5)
    for wall in (1000.0, 1000.25, 1000.5):
        feed.handle(prediction(wall=wall), None)
    assert [p.wall_time for p in feed.timeline("cam1", now=1010.0)] == [1000.0, 1000.5]
    missing_class = prediction(wall=1001.0)
    missing_class.probs.pop("gamma")
    feed.handle(missing_class, None)
    assert feed.timeline("cam1", now=1001.0)[-1].probs[2] == 0.0  # a class it did not give
    assert feed.count("cam1") == 4 and feed.wait_newer("cam1", 3, 0.01) == 4
    feed.on_gap("cam1")
    assert feed.timeline("cam1", now=1001.0)[-1] == TimelinePoint(1001.0, None)


def test_events_carry_the_frames_of_their_segment():
    feed = WebFeed(["cam1"], LABELS, hysteresis=1, min_duration=0.0)
    for k in range(5):
        feed.handle(prediction(t=k * 0.1, frame=10 + k), None)
    feed.handle(prediction(top="gamma", t=0.5, frame=15), None)
    (finished, current) = feed.events()
    assert (finished["first_frame"], finished["last_frame"], finished["camera"]) == (10, 14, "cam1")
    assert (current["label"], current["first_frame"], current["closed"]) == ("gamma", 15, False)


def test_every_metric_is_the_one_docs_web_md_names_typed_and_documented():
    documented = dict(re.findall(r"^\| `(realtime_[a-z_]+)[^`]*` \| (counter|gauge|summary) \|",
                                 DOCS.read_text(), re.M))  # fmt: skip
    assert len(documented) == 10
    cameras = [FakeCamera("cam1"), FakeCamera("cam2")]
    found = families(render(FakePipeline(cameras), 1.7e9, connections=0, requests={200: 1}))
    for name, kind in documented.items():
        assert found[name.removesuffix("_total")].type == kind, name
    for family in found.values():
        assert family.type in ("counter", "gauge", "summary"), family.name
        doc = family.documentation
        assert doc[0].isupper() and doc.endswith(".") and not doc.isupper(), family.name
        for s in family.samples:
            assert s.name.startswith(family.name), (family.name, s.name)
            if family.name not in PROCESS_FAMILIES:
                assert s.labels["camera"] in ("cam1", "cam2"), s
            if "quantile" in s.labels:
                assert s.labels["quantile"] in ("0.5", "0.95")
    quantiles = {s.labels["quantile"] for s in found["realtime_frame_age_seconds"].samples
                 if "quantile" in s.labels}  # fmt: skip
    assert quantiles == {"0.5", "0.95"}
    from importlib import metadata

    (build,) = found["realtime_build_info"].samples
    assert build.labels == {"version": metadata.version("realtime-action")}
    (start,) = found["realtime_start_time_seconds"].samples
    assert start.value == 1.7e9
    assert sample(found, "realtime_fps", camera="cam2") == 24.5


PROCESS_FAMILIES = {
    "realtime_backbone_info", "realtime_build_info", "realtime_start_time_seconds",
    "realtime_http_connections", "realtime_http_responses",
}  # fmt: skip


def test_numbers_are_written_as_the_text_format_reads_them():
    from realtime.web.prometheus import _number

    assert (_number(3), _number(2.5), _number(1.0)) == ("3", "2.5", "1.0")


def test_healthz_says_ok_when_every_camera_is_live(serve):
    status, _, body = get(serve([FakeCamera("cam1")]), "/healthz")
    assert (status, json.loads(body)["status"]) == (200, "ok")


def test_a_token_of_exactly_the_minimum_length_is_taken_and_the_refusal_is_one_whole_line():
    outside = ServeAddress("0.0.0.0", 8080)
    assert serve_token("12345678", outside, environ={}) == "12345678"
    with pytest.raises(InputError) as refused:
        serve_token(None, outside, environ={})
    assert str(refused.value) == (
        "--serve 0.0.0.0:8080 is reachable beyond this machine: give a token with "
        "--serve-token or REALTIME_SERVE_TOKEN, or bind to loopback (--serve 8080, then e.g. "
        "an SSH tunnel)"
    )
    assert str(ServeAddress("::1", 80)) == "[::1]:80" and str(ServeAddress("a", 1)) == "a:1"
    with pytest.raises(ValueError):
        parse_serve_address("[::1:80")  # an opening bracket alone


def test_the_state_says_when_a_camera_s_window_is_slow(serve):
    camera = FakeCamera("cam1")
    slow = prediction()
    slow.slow, slow.effective_fps, slow.window_span_s = True, 12.5, 1.52
    camera.predict(slow)
    (cam,) = json.loads(get(serve([camera]), "/api/state")[2])["cameras"]
    assert cam["pace_warning"] == slow.pace_warning and "12.5 fps" in cam["pace_warning"]


def test_a_refused_method_closes_its_connection_and_head_sends_no_body(serve):
    server = serve()
    answer = raw(
        server, b"POST /api/latest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 405") and answer.endswith(b"only GET and HEAD\n")
    with socket.create_connection((server.address.host, server.address.port), 5) as s:
        s.sendall(b"HEAD /api/latest HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: " in head
    assert rest.startswith(b"HTTP/1.1 200")  # the next response at once: HEAD had no body


def test_responses_are_counted_by_status_code_in_the_metrics(serve):
    server = serve()
    for path in ("/healthz", "/healthz", "/nothing-here"):
        get(server, path)
    found = families(get(server, "/metrics")[2].decode())
    codes = {s.labels["code"]: s.value for s in found["realtime_http_responses"].samples}
    assert codes == {"200": 2, "404": 1}  # (the scrape itself is counted once answered)


def test_a_failing_view_s_failures_are_kept_with_their_exception_at_most_ten(serve, monkeypatch):
    server = serve()
    error = ValueError("a bug in a view")

    def broken():
        raise error

    monkeypatch.setattr(server.app.views, "events", broken)
    for _ in range(12):
        assert get(server, "/api/events")[0] == 500
    failures = server.failures()
    assert len(failures) == 10 and all(f.exception is error for f in failures)


def test_closing_the_server_ends_its_thread_and_a_stream_says_close(serve):
    server = serve([FakeCamera("cam1", display=np.zeros((36, 64, 3), np.uint8))])
    with socket.create_connection((server.address.host, server.address.port)) as s:
        s.sendall(b"GET /api/video/cam1.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head, _ = read_parts(s, 0.3)
    assert b"\r\nConnection: close" in head and b"\r\nX-Content-Type-Options: nosniff" in head
    thread = server._thread
    server.close()
    assert not thread.is_alive()
