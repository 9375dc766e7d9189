"""Every bad input: one `error:` line on stderr, exit code 2, no traceback, within 15 s."""

from __future__ import annotations

import shutil
import socket
import time

import pytest

from loopback.servers import SilentServer, closed_port
from realtime.frames.sources import parse_source
from tests.conftest import run_cli


def assert_clean_error(result, *fragments: str, elapsed: float | None = None):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert result.stdout == ""
    if elapsed is not None:
        assert elapsed < 15


def run_timed(*args):
    t0 = time.monotonic()
    result = run_cli(*args, timeout=60)
    return result, time.monotonic() - t0


@pytest.fixture
def model(tflite_model_dir):
    return ["--model", str(tflite_model_dir), "--ui", "none", "--jsonl", "-"]


def test_missing_file(model, tmp_path):
    assert_clean_error(*[run_timed("--source", tmp_path / "nope.avi", *model)[0]], "not found")


def test_directory(model, tmp_path):
    assert_clean_error(run_timed("--source", tmp_path, *model)[0], "is a directory")


def test_not_a_video(model, tmp_path):
    text = tmp_path / "notes.avi"
    text.write_text("this is not a video\n" * 100)
    assert_clean_error(run_timed("--source", text, *model)[0], "not a video")


def test_empty_file(model, tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_clean_error(run_timed("--source", empty, *model)[0], "empty")


def test_truncated_file(model, make_video, tmp_path):
    whole = make_video(n=30)
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[:600])  # the header and no frame
    result, elapsed = run_timed("--source", cut, *model)
    assert_clean_error(result, str(cut.name), elapsed=elapsed)


def test_camera_that_does_not_open(model):
    result, elapsed = run_timed("--source", "97", *model)
    assert_clean_error(result, "camera 97", elapsed=elapsed)


def test_url_that_refuses(model):
    with socket.socket() as sock:  # find a free port, then close it: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, elapsed = run_timed("--source", f"http://127.0.0.1:{port}/video", *model)
    assert_clean_error(result, "could not open stream", elapsed=elapsed)


def test_url_that_never_answers(model):
    """--open-timeout 1 bounds the first open: the default (10 s) would overshoot 7 s."""
    with SilentServer() as server:
        result, elapsed = run_timed(
            "--source", f"rtsp://127.0.0.1:{server.port}/live", "--open-timeout", "1", *model
        )
        accepted = server.accepted
    assert_clean_error(result, f"127.0.0.1:{server.port}", "within 1 s", elapsed=elapsed)
    assert accepted, "the client did connect"
    assert elapsed < 7, elapsed


def test_credentials_in_a_url_are_never_shown(model):
    """The one line names the stream, without its user, password or token."""
    with closed_port() as port:
        url = f"rtsp://admin:s3cret@127.0.0.1:{port}/cam?token=t0ken&fps=5"
        result, elapsed = run_timed("--source", url, "--open-timeout", "2", *model)
    shown = f"rtsp://***@127.0.0.1:{port}/cam?token=***&fps=5"
    assert_clean_error(result, f"could not open stream {shown}:", elapsed=elapsed)
    assert not [secret for secret in ("admin", "s3cret", "t0ken") if secret in result.stderr]


@pytest.mark.parametrize(
    "given, shown",
    [
        ("rtsp://user:pa:ss@cam.local:554/s1", "rtsp://***@cam.local:554/s1"),
        ("rtsp://user@cam.local/s1", "rtsp://***@cam.local/s1"),
        ("http://cam/v.mjpg?user=u&pwd=p&fps=5", "http://cam/v.mjpg?user=***&pwd=***&fps=5"),
        ("http://cam/v.mjpg?Password=p#frag", "http://cam/v.mjpg?Password=***#frag"),
        ("http://cam/v.mjpg?flag&passwords=x", "http://cam/v.mjpg?flag&passwords=x"),
        ("rtsp://cam.local:554/s1", "rtsp://cam.local:554/s1"),
    ],
)
def test_a_stream_is_shown_without_its_credentials(given, shown):
    spec = parse_source(given)
    assert str(spec) == shown
    assert spec.target == given  # what is opened is what was given


def test_unsupported_scheme(model):
    assert_clean_error(run_timed("--source", "ftp://host/x.avi", *model)[0], "ftp")


def test_missing_default_model_says_how_to_make_one(make_video, tmp_path):
    result = run_cli("--source", make_video(), "--model", tmp_path / "absent", "--ui", "none")
    assert_clean_error(result, "python -m training all")


def test_model_dir_with_corrupt_metadata(make_video, tflite_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tflite_model_dir, broken)
    (broken / "metadata.json").write_text("{ not json")
    result = run_cli("--source", make_video(), "--model", broken, "--ui", "none")
    assert_clean_error(result, "corrupt")


def test_model_dir_with_corrupt_weights(make_video, tflite_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tflite_model_dir, broken)
    (broken / "head.weights.h5").write_bytes(b"\x00garbage" * 100)
    result, elapsed = run_timed("--source", make_video(), "--model", broken, "--ui", "none")
    assert_clean_error(result, "head.weights.h5", elapsed=elapsed)


def test_model_backbone_mismatch(make_video, tflite_model_dir, shared_dir):
    other = shared_dir / "models" / "mobilenet_v2_1.0_224_quant.tflite"
    result, elapsed = run_timed(
        "--source", make_video(), "--model", tflite_model_dir, "--backbone", other, "--ui", "none"
    )
    assert_clean_error(result, "1024-d", "1001-d", elapsed=elapsed)


def test_model_backbone_identity_mismatch(make_video, tflite_model_dir, tmp_path, embedder_path):
    """Same feature size, different weights: still refused."""
    import json

    other = tmp_path / "model"
    shutil.copytree(tflite_model_dir, other)
    meta = json.loads((other / "metadata.json").read_text())
    meta["backbone"]["name"] = "tflite/0123456789ab"
    (other / "metadata.json").write_text(json.dumps(meta))
    result = run_cli(
        "--source", make_video(), "--model", other, "--backbone", embedder_path, "--ui", "none"
    )
    assert_clean_error(result, "trained on backbone")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--smooth", "0"], "--smooth"),
        (["--threshold", "1.5"], "--threshold"),
        (["--max-frames", "x"], "--max-frames"),
        (["--ui", "tv"], "--ui"),
        (["--backbone", "resnet"], "unknown backbone"),
        (["--calibration", "clips/"], "--calibration applies to InceptionV3"),
    ],
)
def test_bad_flags(args, fragment, make_video, tflite_model_dir):
    base = ["--source", make_video(), "--model", tflite_model_dir]
    result = run_cli(*base, *args)
    assert_clean_error(result, fragment)


def test_loop_needs_a_file_among_the_sources(make_video, tflite_model_dir):
    """--loop replays files: refused when every source is live; with a file among live
    cameras it applies to the file."""
    live = ["--source", "rtsp://127.0.0.1:9/x", "--source", "http://127.0.0.1:9/y"]
    result = run_cli("--loop", *live, "--model", tflite_model_dir)
    assert_clean_error(result, "--loop applies to video files only")
    # every-frame replay cannot wait for a live camera, even beside a file
    result = run_cli("--every-frame", "--source", make_video(), *live[:2],
                     "--model", tflite_model_dir)  # fmt: skip
    assert_clean_error(result, "--every-frame")


def test_window_ui_without_display(make_video, tflite_model_dir):
    result = run_cli("--source", make_video(), "--model", tflite_model_dir, "--ui", "window")
    assert_clean_error(result, "display")


def test_output_into_missing_folder(make_video, tflite_model_dir, tmp_path):
    result = run_cli(
        "--source",
        make_video(),
        "--model",
        tflite_model_dir,
        "--ui",
        "none",
        "--jsonl",
        tmp_path / "no" / "such" / "out.jsonl",
    )
    assert_clean_error(result, "does not exist")


def test_missing_source_flag():
    result = run_cli("--ui", "none")
    assert_clean_error(result, "--source")
