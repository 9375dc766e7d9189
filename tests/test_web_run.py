"""`python -m realtime --serve` as a user runs it, with the shared LiteRT backbone: the metrics
and the API during and after a paced replay against the exit summary and the JSONL, /healthz
following a killed and restarted RTSP camera, the token beyond loopback and a real browser
(both inside a network namespace of the test's own, `tests/web_namespace.py`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loopback.servers import RtspCamera, rtsp_available
from tests.conftest import ROOT, missing, need_tools, write_video

pytestmark = [pytest.mark.shared, pytest.mark.slow]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
MAGENTA = (255, 0, 255)  # BGR and RGB alike


def magenta_frames(n: int, width: int = 160, height: int = 120):
    """A magenta square moving over a dark, noisy background (4:3: the page letterboxes it)."""
    rng = np.random.default_rng(1)
    for i in range(n):
        frame = rng.integers(20, 50, (height, width, 3), dtype=np.uint8)
        x = 10 + (i * 3) % (width - 70)
        cv2.rectangle(frame, (x, 30), (x + 50, 90), MAGENTA, -1)
        yield frame


@pytest.fixture
def magenta_video(tmp_path) -> Path:
    return write_video(tmp_path / "magenta.avi", magenta_frames(75))


def get(url: str, headers=None, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until(predicate, timeout: float, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    return predicate()


class ServingCli:
    """`python -m realtime --ui none --serve 0 ...` in the background, its stderr collected."""

    def __init__(self, *args):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("DISPLAY", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "realtime", "--ui", "none", "--serve", "0", *map(str, args)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        line = wait_until(lambda: self._line("serving http://"), 120)
        assert line, self.stderr
        self.url = line.split()[1]

    def _read(self):
        for line in self.process.stderr:
            self.lines.append(line)

    def _line(self, start: str) -> str | None:
        return next((line for line in self.lines if line.startswith(start)), None)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def metrics(self) -> dict[tuple[str, tuple], float]:
        status, body = get(self.url + "metrics")
        assert status == 200
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples
        }

    def stop(self, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(5)
        return self.process.returncode


def counter(metrics, name: str, camera: str) -> float:
    return metrics[(name, (("camera", camera),))]


def test_metrics_and_api_follow_a_replay_and_match_its_summary(
    magenta_video, make_video, tflite_model_dir, tmp_path
):
    other = make_video(n=60, name="other.avi")
    jsonl = tmp_path / "run.jsonl"
    cli = ServingCli(
        "--source", magenta_video, "--source", other, "--model", tflite_model_dir,
        "--jsonl", jsonl,
    )  # fmt: skip
    try:
        classified = "realtime_frames_classified_total"

        def scrape_once(more_than: float):
            metrics = cli.metrics()
            return metrics if counter(metrics, classified, "cam1") > more_than else None

        first = wait_until(lambda: scrape_once(4), 60)
        assert first, cli.stderr
        second = wait_until(lambda: scrape_once(counter(first, classified, "cam1")), 30)
        assert second, "the counters did not increase during the replay"
        for name in ("realtime_frames_read_total", "realtime_frame_age_seconds_count"):
            assert counter(second, name, "cam1") >= counter(first, name, "cam1")
        during = json.loads(get(cli.url + "api/latest")[1])
        assert set(during) == {"cam1", "cam2"} and during["cam1"]["camera"] == "cam1"
        assert get(cli.url + "healthz")[0] == 200  # both files playing

        # both files end; the server stays up with the final figures
        assert wait_until(lambda: cli._line("every camera has ended"), 60), cli.stderr
        final = cli.metrics()
        latest = json.loads(get(cli.url + "api/latest")[1])
        events = json.loads(get(cli.url + "api/events")[1])["events"]
        status, body = get(cli.url + "healthz")
        assert status == 503 and json.loads(body)["not_live"] == ["cam1", "cam2"]
        t0 = time.monotonic()
        code = cli.stop()
        assert time.monotonic() - t0 < 10
    finally:
        cli.stop()
    assert code == 0, cli.stderr
    assert "Traceback" not in cli.stderr
    # the exit summary's rows: camera state read skipped classified dropped ...
    rows = {m.group(1): m.groups()[1:] for m in re.finditer(
        r"^(cam\d)\s+ended\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", cli.stderr, re.M)}  # fmt: skip
    assert set(rows) == {"cam1", "cam2"}, cli.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    for camera, (read, skipped, classified, dropped) in rows.items():
        assert counter(final, "realtime_frames_read_total", camera) == int(read)
        assert counter(final, "realtime_frames_skipped_total", camera) == int(skipped)
        assert counter(final, "realtime_frames_classified_total", camera) == int(classified)
        assert counter(final, "realtime_frames_dropped_total", camera) == int(dropped)
        assert counter(final, "realtime_frame_age_seconds_count", camera) == int(classified)
        mine = [r for r in records if r["camera"] == camera]
        assert len(mine) == int(classified)
        assert latest[camera] == mine[-1]  # the JSONL line's fields, exactly
        state = final[("realtime_source_state", (("camera", camera), ("state", "ended")))]
        assert state == 1
    assert int(rows["cam1"][0]) == 75 and int(rows["cam2"][0]) == 60
    for event in events:
        assert event["camera"] in ("cam1", "cam2") and event["label"] in ("alpha", "beta", "gamma")


def test_a_run_stopped_by_the_user_does_not_keep_serving(magenta_video, tflite_model_dir):
    cli = ServingCli("--source", magenta_video, "--model", tflite_model_dir, "--loop")
    try:
        assert wait_until(lambda: json.loads(get(cli.url + "api/latest")[1])["cam1"], 60)
        code = cli.stop()
    finally:
        cli.stop()
    assert code == 0 and "still serving" not in cli.stderr
    with pytest.raises(OSError):
        NO_PROXY.open(cli.url + "healthz", timeout=2)  # the port is closed


def test_healthz_follows_a_killed_and_restarted_rtsp_camera_never_showing_its_password(
    tflite_model_dir,
):
    reason = rtsp_available()
    if reason:
        missing(reason)
    with RtspCamera() as camera:
        # with credentials in the URL (the test server asks for none): never shown
        url = camera.url.replace("rtsp://", "rtsp://admin:s3cret@")
        cli = ServingCli("--source", url, "--model", tflite_model_dir, "--read-timeout", "2")
        try:

            def health(expected):
                status, body = get(cli.url + "healthz")
                return (status, json.loads(body)) if status == expected else None

            assert wait_until(lambda: health(200), 60), cli.stderr
            camera.kill()
            down = wait_until(lambda: health(503), 15)
            assert down, "healthz stayed 200 after the camera was killed"
            assert down[1]["not_live"] == ["cam1"]
            assert down[1]["cameras"]["cam1"] in ("stalled", "reconnecting")
            camera.start()
            assert wait_until(lambda: health(200), 30), cli.stderr
            metrics = cli.metrics()
            assert counter(metrics, "realtime_reconnects_total", "cam1") >= 1
            for path in ("", "api/state", "api/latest", "api/events", "metrics", "healthz"):
                assert b"s3cret" not in get(cli.url + path)[1], path
            state = json.loads(get(cli.url + "api/state")[1])
            assert state["cameras"][0]["source"].startswith("rtsp://***@127.0.0.1:")
            code = cli.stop()
        finally:
            cli.stop()
    assert code == 0, cli.stderr


# -- inside a network namespace of the test's own ---------------------------------------------
def in_namespace(tmp_path: Path, *args) -> dict:
    need_tools("unshare", "ip")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        missing("needs network namespaces (unshare -n; root in CI)")
    out = tmp_path / "scenario.json"
    subprocess.run(
        ["unshare", "-n", sys.executable, str(ROOT / "tests" / "web_namespace.py"),
         *map(str, args[:3]), out, *map(str, args[3:])],
        timeout=300,
        check=True,
    )  # fmt: skip
    return json.loads(out.read_text())


def test_beyond_loopback_the_token_is_required_and_healthz_stays_open(
    magenta_video, tflite_model_dir, tmp_path
):
    result = in_namespace(tmp_path, "token", magenta_video, tflite_model_dir)
    refused = result["refused"]
    assert refused["code"] == 2
    assert refused["stderr"].startswith("error: --serve 10.123.0.1:0 is reachable beyond")
    assert refused["stderr"].count("\n") == 1
    assert result["url"].startswith("http://10.123.0.1:"), result
    for path, answers in result["answers"].items():
        if path == "healthz":
            assert answers == {"none": 200}
        else:
            assert answers == {"none": 401, "wrong": 401, "bearer": 200, "query": 200}, path
    assert result["exit"] == 0


def test_a_browser_shows_the_frame_the_action_and_the_timeline(
    magenta_video, tflite_model_dir, tmp_path
):
    if not shutil.which("chromium"):
        missing("needs Debian's chromium (apt install chromium)")
    screenshot = tmp_path / "page.png"
    result = in_namespace(tmp_path, "browser", magenta_video, tflite_model_dir, screenshot)
    assert result.get("ready"), result
    assert result["chromium"]["code"] == 0, result["chromium"]["stderr"]
    assert result["exit"] == 0
    image = cv2.imread(str(screenshot))[..., ::-1].astype(int)  # RGB

    def near(colour, tolerance):
        return np.abs(image - np.array(colour)).max(axis=2) <= tolerance

    # the timeline: its canvas's own background; class-coloured lines inside it
    background = near((24, 27, 32), 0)  # (a dark video has such pixels too, a few per row)
    rows = np.nonzero(background.sum(axis=1) > 300)[0]
    assert rows.size > 50, "no timeline canvas on the page"
    top, bottom = rows.min(), rows.max()
    columns = np.nonzero(background[top : bottom + 1].sum(axis=0) > 20)[0]
    left, right = columns.min(), columns.max()
    canvas = image[top : bottom + 1, left : right + 1]
    lines = sum(
        (np.abs(canvas - np.array(colour)).max(axis=2) <= 12).sum()
        for colour in (tuple(int(c[k : k + 2], 16) for k in (1, 3, 5)) for c in result["colours"])
    )
    assert lines > 150, f"{lines} class-coloured pixels in the timeline"
    # the picture: the video's magenta square, above the timeline; the letterbox gives its
    # bottom (black columns either side of a 4:3 frame in the 16:9 box)
    above = image[:top]
    assert near(MAGENTA, 40)[:top].sum() > 1000, "the camera's frame is not on the page"
    black = (above.max(axis=2) == 0).sum(axis=1)
    picture_bottom = np.nonzero(black > 100)[0].max()
    # the action: the page's headline green, between the picture and the timeline
    headline = near((95, 211, 95), 10)[picture_bottom:top]
    assert headline.sum() > 80, "no action label under the picture"
    shutil.copy(screenshot, tmp_path / "kept.png")  # (for a look when this fails)
