"""`python -m training download` against a local HTTP server (no internet needed)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

from loopback.servers import SilentServer
from realtime.core.download import fetch
from realtime.core.errors import InputError
from tests.conftest import run_cli
from training.download import prepare

VIDEO_BYTES = bytes(range(256)) * 64  # content is not decoded by the download step


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_archive(path: Path, extra=None, drop: str | None = None) -> Path:
    """A small UCF101-top-5-shaped tar.gz: train.csv, test.csv, train/, test/."""
    rows = {"train": ["v_a_1.avi,A", "v_b_1.avi,B"], "test": ["v_a_2.avi,A"]}
    with tarfile.open(path, "w:gz") as tar:
        for split, lines in rows.items():
            _add(tar, f"{split}.csv", ("video_name,tag\n" + "\n".join(lines) + "\n").encode())
            for line in lines:
                name = f"{split}/{line.split(',')[0]}"
                if name != drop:
                    _add(tar, name, VIDEO_BYTES + name.encode())
        for item in extra or []:
            item(tar)
    return path


class _Server:
    """Serves one file; optionally cuts the first response short; logs Range headers."""

    def __init__(self, payload: bytes, cut_first_at: int | None = None, ranges: bool = True):
        self.payload = payload
        self.cut_first_at = cut_first_at
        self.ranges = ranges
        self.requests: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                if self.path != "/ucf101_top5.tar.gz":
                    self.send_error(404)
                    return
                header = self.headers.get("Range")
                server.requests.append(header)
                start = 0
                if header and server.ranges:
                    start = int(header.split("=")[1].split("-")[0])
                body = server.payload[start:]
                self.send_response(206 if start else 200)
                if start:
                    total = len(server.payload)
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_first_at is not None and len(server.requests) == 1:
                    self.wfile.write(body[: server.cut_first_at])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/ucf101_top5.tar.gz"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_full_download_extracts_and_records_sha256(tmp_path):
    archive = make_archive(tmp_path / "src.tar.gz")
    payload = archive.read_bytes()
    dest = tmp_path / "data"
    with _Server(payload) as server:
        result = run_cli("download", "--dest", dest, "--url", server.url, module="training")
    assert result.returncode == 0, result.stderr
    data = dest / "ucf101_top5"
    assert (data / "train.csv").is_file() and (data / "test" / "v_a_2.avi").is_file()
    assert (data / "train" / "v_b_1.avi").read_bytes() == VIDEO_BYTES + b"train/v_b_1.avi"
    recorded = json.loads((data / "dataset.json").read_text())
    assert recorded["sha256"] == hashlib.sha256(payload).hexdigest()
    assert recorded["size"] == len(payload)
    assert recorded["url"] == server.url
    assert (dest / "ucf101_top5.tar.gz").read_bytes() == payload
    assert not (dest / "ucf101_top5.tar.gz.part").exists()


def test_resume_after_a_cut_transfer(tmp_path):
    payload = make_archive(tmp_path / "src.tar.gz").read_bytes()
    cut = len(payload) // 3
    with _Server(payload, cut_first_at=cut) as server:
        target = fetch(server.url, tmp_path / "dl" / "a.tar.gz", Console(quiet=True), backoff=0)
        requests = list(server.requests)
    assert target.read_bytes() == payload
    assert requests == [None, f"bytes={cut}-"]  # the second request resumed, not restarted


def test_resume_from_an_earlier_partial_file(tmp_path):
    payload = make_archive(tmp_path / "src.tar.gz").read_bytes()
    dest = tmp_path / "data"
    dest.mkdir()
    half = len(payload) // 2
    (dest / "ucf101_top5.tar.gz.part").write_bytes(payload[:half])
    with _Server(payload) as server:
        result = run_cli("download", "--dest", dest, "--url", server.url, module="training")
        requests = list(server.requests)
    assert result.returncode == 0, result.stderr
    assert requests == [f"bytes={half}-"]
    assert "resuming" in result.stdout
    assert (dest / "ucf101_top5.tar.gz").read_bytes() == payload


def test_server_without_range_support_restarts_cleanly(tmp_path):
    payload = make_archive(tmp_path / "src.tar.gz").read_bytes()
    part = tmp_path / "a.tar.gz.part"
    part.write_bytes(b"x" * 500)  # junk that must not end up in the archive
    with _Server(payload, ranges=False) as server:
        target = fetch(server.url, tmp_path / "a.tar.gz", Console(quiet=True), backoff=0)
    assert target.read_bytes() == payload


def test_corrupt_archive_leaves_nothing_behind(tmp_path):
    payload = make_archive(tmp_path / "src.tar.gz").read_bytes()
    corrupt = payload[: len(payload) // 2]  # the server sends a truncated archive in full
    dest = tmp_path / "data"
    with _Server(corrupt) as server:
        result = run_cli("download", "--dest", dest, "--url", server.url, module="training")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "corrupt" in result.stderr
    assert _leftovers(dest) == []  # no half-extracted data, bad download removed


def test_local_corrupt_archive_is_kept_but_not_extracted(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    result = run_cli("download", "--dest", tmp_path / "d", "--from", bad, module="training")
    assert result.returncode == 2 and "corrupt" in result.stderr
    assert bad.exists() and _leftovers(tmp_path / "d") == []


@pytest.mark.parametrize(
    "member",
    [
        lambda tar: _add(tar, "../escaped.txt", b"evil"),
        lambda tar: _add(tar, "/tmp/absolute-escape.txt", b"evil"),
    ],
    ids=["dotdot", "absolute"],
)
def test_path_escape_is_refused(tmp_path, member):
    archive = make_archive(tmp_path / "evil.tar.gz", extra=[member])
    dest = tmp_path / "inner" / "data"
    with pytest.raises(Exception) as info:
        prepare(dest, Console(quiet=True), from_file=archive)
    assert "unsafe archive" in str(info.value)
    assert not (tmp_path / "inner" / "escaped.txt").exists()
    assert _leftovers(dest) == []


def test_symlink_pointing_outside_is_refused(tmp_path):
    def link(tar):
        info = tarfile.TarInfo("train/link.avi")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../../outside"
        tar.addfile(info)

    archive = make_archive(tmp_path / "link.tar.gz", extra=[link])
    result = run_cli("download", "--dest", tmp_path / "d", "--from", archive, module="training")
    assert result.returncode == 2
    assert "unsafe archive" in result.stderr and result.stderr.count("\n") == 1
    assert _leftovers(tmp_path / "d") == []


def test_archive_missing_a_listed_video_is_incomplete(tmp_path):
    archive = make_archive(tmp_path / "a.tar.gz", drop="train/v_b_1.avi")
    result = run_cli("download", "--dest", tmp_path / "d", "--from", archive, module="training")
    assert result.returncode == 2
    assert "incomplete" in result.stderr and "v_b_1.avi" in result.stderr
    assert _leftovers(tmp_path / "d") == []


def test_from_file_extracts_and_second_run_is_a_no_op(tmp_path):
    archive = make_archive(tmp_path / "a.tar.gz")
    dest = tmp_path / "d"
    first = run_cli("download", "--dest", dest, "--from", archive, module="training")
    assert first.returncode == 0, first.stderr
    recorded = json.loads((dest / "ucf101_top5" / "dataset.json").read_text())
    assert recorded["url"] is None and recorded["size"] == archive.stat().st_size
    second = run_cli("download", "--dest", dest, "--from", archive, module="training")
    assert second.returncode == 0 and "already extracted" in second.stdout


def test_http_errors_are_one_line(tmp_path):
    payload = make_archive(tmp_path / "a.tar.gz").read_bytes()
    with _Server(payload) as server:
        missing = server.url.replace("ucf101_top5", "nothing")
        result = run_cli("download", "--dest", tmp_path / "d", "--url", missing, module="training")
    assert result.returncode == 2
    assert result.stderr.startswith("error: download failed: HTTP 404")
    assert result.stderr.count("\n") == 1
    refused = run_cli(
        "download", "--dest", tmp_path / "d", "--url", server.url, module="training"
    )  # the server is gone now: connection refused
    assert refused.returncode == 2 and refused.stderr.startswith("error: cannot download")
    assert "--from FILE" in refused.stderr
    nofile = run_cli("download", "--from", tmp_path / "nope.tar.gz", module="training")
    assert nofile.returncode == 2 and "archive not found" in nofile.stderr


def test_a_server_that_never_answers_is_one_line_after_the_timeout(tmp_path):
    """Accepts the connection, never answers: one stall is an error, not minutes of retries."""
    started = time.monotonic()
    with SilentServer() as server:
        url = f"http://127.0.0.1:{server.port}/ucf101_top5.tar.gz"
        with pytest.raises(InputError, match="stalled: nothing received for 1 s"):
            fetch(url, tmp_path / "a.tar.gz", Console(quiet=True), timeout=1.0, backoff=0)
    assert time.monotonic() - started < 10


def test_a_transfer_that_stalls_midway_keeps_its_part_file(tmp_path):
    payload = bytes(200_000)

    class Stalling(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[:1000])
            self.wfile.flush()
            time.sleep(3)  # silence, connection open

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.tar.gz"
        with pytest.raises(InputError, match="run the command again to resume"):
            fetch(url, tmp_path / "dl" / "a.tar.gz", Console(quiet=True), timeout=1.0)
        assert (tmp_path / "dl" / "a.tar.gz.part").stat().st_size == 1000
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
