"""Flags at the edges of what the parser takes, odd sources, odd clocks: one `error:` line
(exit 2) or a correct run, never a traceback. In-process where nothing needs to run."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from realtime.frames.sources import open_source
from tests.conftest import moving_square_frames, need_tools, run_inprocess, write_video

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clip") / "clip.avi", moving_square_frames(10))


FLAG_CASES = [
    ("--max-frames", "1e3"), ("--max-frames", "0"), ("--max-frames", str(10**13)),
    ("--max-frames", "-1"), ("--threads", "0"), ("--threads", "100000"),
    ("--smooth", "99999999999"), ("--hysteresis", "0"), ("--hysteresis", str(10**9)),
    ("--min-duration", "nan"), ("--min-duration", "-1"), ("--min-duration", "inf"),
    ("--min-duration", "1e300"), ("--open-timeout", "1e308"), ("--open-timeout", "0"),
    ("--open-timeout", "nan"), ("--read-timeout", "-inf"), ("--read-timeout", "1e-400"),
    ("--threshold", "1.0000001"), ("--threshold", "nan"), ("--reconnect", "-1"),
    ("--reconnect", "1.5"), ("--reconnect", "99999999999"), ("--smooth", "3.0"),
]  # fmt: skip


@pytest.mark.parametrize("flag,value", FLAG_CASES, ids=[f"{f}={v}" for f, v in FLAG_CASES])
def test_numbers_at_the_edges_are_one_line(tflite_model_dir, clip, flag, value):
    code, err = run_inprocess("--model", tflite_model_dir, "--source", clip, flag, value)
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and flag in err, err


SOURCE_CASES = [
    ("99999", "out of range"),
    ("99999999999999999999999", "out of range"),
    ("²", "video file not found"),  # a Unicode digit is a file name, not a camera
    ("-1", "video file not found"),
    ("0x1", "video file not found"),
    (" ", "--source is empty"),
    ("ftp://127.0.0.1/x.mp4", "unsupported URL scheme"),
    ("/dev/null", "device or special file"),
]


@pytest.mark.parametrize("source,words", SOURCE_CASES, ids=[c[0] for c in SOURCE_CASES])
def test_odd_sources_are_one_line(tflite_model_dir, source, words):
    code, err = run_inprocess("--model", tflite_model_dir, "--source", source, "--ui", "none")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err


def test_a_named_pipe_as_source_is_refused_not_called_empty(tflite_model_dir, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, err = run_inprocess("--model", tflite_model_dir, "--source", fifo, "--ui", "none")
    assert code == 2 and "named pipe" in err and "empty" not in err, err


def test_an_output_pipe_nobody_reads_is_a_bounded_wait(
    tflite_model_dir, clip, tmp_path, monkeypatch
):
    import realtime.outputs.text

    monkeypatch.setattr(realtime.outputs.text, "FIFO_WAIT_S", 1.0)
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    started = time.monotonic()
    code, err = run_inprocess("--model", tflite_model_dir, "--source", clip, "--ui", "none",
                              "--jsonl", fifo)  # fmt: skip
    assert code == 2 and "nobody reads the named pipe" in err, err
    assert time.monotonic() - started < 60


def test_an_output_pipe_with_a_reader_gets_every_line(tflite_model_dir, clip, tmp_path):
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.extend(open(fifo).read().splitlines()))
    reader.start()
    code, err = run_inprocess("--model", tflite_model_dir, "--source", clip, "--ui", "none",
                              "--every-frame", "-q", "--jsonl", fifo)  # fmt: skip
    reader.join(30)
    assert code == 0, err
    assert len(got) == 10


def test_a_1000_fps_file_is_timed_at_1000_fps(tmp_path):
    video = write_video(tmp_path / "fast.avi", moving_square_frames(50), fps=1000.0)
    source = open_source(str(video))
    try:
        assert source.reported_fps == 1000.0
        times = []
        for index in range(50):
            assert source.read() is not None
            times.append(source.frame_time(index))
    finally:
        source.release()
    assert times[-1] == pytest.approx(0.049)


def test_a_variable_frame_rate_file_is_timed_by_its_own_timestamps(tmp_path):
    """2 s at 10 fps then 2 s at 50 fps: the average rate would put the end at 2.4 s."""
    need_tools("ffmpeg")
    video = tmp_path / "vfr.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=2",
         "-f", "lavfi", "-i", "testsrc=size=160x120:rate=50:duration=2", "-filter_complex",
         "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-fps_mode", "vfr", "-c:v", "mjpeg",
         str(video)],
        check=True, timeout=60,
    )  # fmt: skip
    source = open_source(str(video))
    times = []
    try:
        while source.read() is not None:
            times.append(source.frame_time(len(times)))
    finally:
        source.release()
    assert len(times) == 120
    assert times[19] == pytest.approx(1.9, abs=1e-3) and times[20] == pytest.approx(2.0, abs=1e-3)
    assert times[-1] == pytest.approx(3.98, abs=1e-3)
    assert all(b > a for a, b in zip(times, times[1:], strict=False))


def test_a_constant_rate_file_keeps_index_over_fps_exactly(tmp_path):
    video = write_video(tmp_path / "cfr.avi", moving_square_frames(30), fps=30.0)
    source = open_source(str(video))
    try:
        times = []
        while source.read() is not None:
            times.append(source.frame_time(len(times)))
    finally:
        source.release()
    assert times == [i / 30.0 for i in range(30)]


def _csv_set(root, train_rows: str, test_rows: str = "video_name,tag\nt.avi,a\n", bom=""):
    for split in ("train", "test"):
        (root / split).mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text(bom + train_rows, encoding="utf-8")
    (root / "test.csv").write_text(test_rows, encoding="utf-8")
    return root


TRAINING_CASES = [
    ("columns missing", "name,label\na.avi,a\n", "must have the columns video_name,tag"),
    ("row without tag", "video_name,tag\na.avi,\nb.avi,b\n", "without video_name or tag"),
    ("path outside", "video_name,tag\n../x.avi,a\nb.avi,b\n", "outside"),
    ("absolute path", "video_name,tag\n/etc/passwd,a\nb.avi,b\n", "outside"),
    ("escape in a class", "video_name,tag\na.avi,\x1b[2Ja\nb.avi,b\n", "control characters"),
    ("one class", "video_name,tag\na.avi,a\nb.avi,a\n", "only one class"),
    ("test class unknown", "video_name,tag\na.avi,b\nb.avi,c\n", "absent from training"),
    ("empty csv", "", "must have the columns"),
]


@pytest.mark.parametrize("name,rows,words", TRAINING_CASES, ids=[c[0] for c in TRAINING_CASES])
def test_training_data_sets_that_cannot_be_used_are_one_line(tmp_path, name, rows, words):
    from realtime.core.errors import InputError
    from training.dataset import load_dataset

    with pytest.raises(InputError) as caught:
        load_dataset(_csv_set(tmp_path, rows))
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_training_csv_saved_with_a_bom_reads(tmp_path):
    from training.dataset import load_dataset

    data = load_dataset(_csv_set(tmp_path, "video_name,tag\na.avi,a\nb.avi,b\n", bom="\ufeff"))
    assert data.labels == ["a", "b"]


def test_a_non_utf8_training_csv_is_one_line(tmp_path):
    from realtime.core.errors import InputError
    from training.dataset import load_dataset

    _csv_set(tmp_path, "video_name,tag\n")
    (tmp_path / "train.csv").write_bytes(b"video_name,tag\n\xff\xfe.avi,a\n")
    with pytest.raises(InputError, match="cannot read"):
        load_dataset(tmp_path)
