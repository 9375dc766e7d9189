"""`python -m realtime` end to end, as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tests.conftest import HEADLESS_REPLAY, ROOT, run_cli, run_cli_modules


def classify(source, model_dir, *args, **kwargs):
    """`python -m realtime --source SOURCE --model MODEL_DIR ARGS...` as a subprocess."""
    return run_cli("--source", source, "--model", model_dir, *args, **kwargs)


def predictions(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_every_frame_replay_of_a_synthetic_video(make_video, tflite_model_dir):
    path = make_video(n=30, fps=25.0)
    result, imported = run_cli_modules(
        "--source", path, "--model", tflite_model_dir, *HEADLESS_REPLAY, tmp_path=path.parent
    )
    assert result.returncode == 0, result.stderr
    assert "ai_edge_litert" in imported and not {"tensorflow", "keras"} & imported
    # the web server and the plot are imported only by --serve and the plot command
    assert not {"realtime.web.server", "http.server", "matplotlib"} & imported
    records = predictions(result.stdout)
    labels = json.loads((tflite_model_dir / "metadata.json").read_text())["labels"]
    assert len(records) == 30
    assert [r["frame"] for r in records] == list(range(30))
    assert [r["window"] for r in records] == [min(i + 1, 20) for i in range(30)]
    for record in records:
        assert record["label"] in labels
        assert set(record["probs"]) == set(labels)
        assert math.isclose(sum(record["probs"].values()), 1.0, abs_tol=1e-3)
        assert record["score"] == pytest.approx(max(record["probs"].values()), abs=1e-6)
        assert set(record["timings_ms"]) >= {"decode", "preprocess", "backbone", "head"}
        assert record["frame_age_ms"] >= 0
        assert record["source_state"] in ("live", "ended")
    assert "Traceback" not in result.stderr
    assert "frames read 30" in result.stderr  # the exit summary


def test_jsonl_says_how_much_source_time_each_window_spans(make_video, tflite_model_dir):
    """A 10 fps file under a 25 fps model: every frame is admitted, so a full window holds 20
    frames over 1.9 s instead of the 0.76 s the model was trained on; JSONL says so."""
    result = classify(make_video(n=30, fps=10.0), tflite_model_dir, *HEADLESS_REPLAY)
    assert result.returncode == 0, result.stderr
    records = predictions(result.stdout)
    assert records[0]["effective_fps"] is None and records[0]["window_span_s"] == 0.0
    for i, record in enumerate(records[1:], start=1):
        assert record["effective_fps"] == pytest.approx(10.0, abs=0.01), record
        assert record["window_span_s"] == pytest.approx(min(i, 19) / 10, abs=1e-3), record


def test_file_fps_above_model_rate_is_sampled_like_training(make_video, tflite_model_dir):
    """Every JSONL field a user reads for where a prediction sits in the source: a 50 fps file
    under a 25 fps model is classified every other frame (`frame` 0, 2, 4...; `sample` counts
    the sampled frames 0, 1, 2...; `timestamp` = frame / 50 s), nothing dropped with
    --every-frame, `window_length` 20, `wall_time` within the run."""
    path = make_video(n=60, fps=50.0)  # model metadata says 25 fps: every other frame
    started = time.time()
    result = classify(
        path,
        tflite_model_dir,
        *HEADLESS_REPLAY,
    )
    finished = time.time()
    assert result.returncode == 0, result.stderr
    records = predictions(result.stdout)
    assert [r["frame"] for r in records] == list(range(0, 60, 2))
    assert [r["sample"] for r in records] == list(range(30))
    assert [r["timestamp"] for r in records] == pytest.approx([i / 50 for i in range(0, 60, 2)])
    assert {r["window_length"] for r in records} == {20}
    assert {r["dropped"] for r in records} == {0}
    walls = [r["wall_time"] for r in records]
    assert started <= walls[0] and walls[-1] <= finished and walls == sorted(walls)
    # the exit summary: counts of this file, and figures that agree with the JSONL lines
    summary = " ".join(result.stderr.split())
    assert "frames read 60, sampled 30, classified 30, dropped 0, skipped 30;" in summary
    assert "source ended" in summary
    for row, values in (
        ("backbone ms", [r["timings_ms"]["backbone"] for r in records]),
        ("frame age ms", [r["frame_age_ms"] for r in records]),
    ):
        line = next(x for x in result.stderr.splitlines() if x.strip().startswith(row))
        mean, p95 = (float(v) for v in line.replace("│", " ").split()[-2:])
        assert mean == pytest.approx(np.mean(values), abs=0.06), (row, line)
        assert p95 == pytest.approx(np.percentile(values, 95), abs=0.06), (row, line)


def test_quiet_prints_nothing_but_keeps_every_output(make_video, tflite_model_dir):
    path = make_video(n=20, fps=25.0)
    result = classify(path, tflite_model_dir, *HEADLESS_REPLAY, "-q")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert [r["frame"] for r in predictions(result.stdout)] == list(range(20))


def test_paced_replay_with_max_frames_smoothing_threshold_and_events(
    make_video, tflite_model_dir, tmp_path
):
    path = make_video(n=80, fps=25.0)
    events = tmp_path / "events.jsonl"
    out = tmp_path / "preds.jsonl"
    result = classify(
        path,
        tflite_model_dir,
        "--ui",
        "none",
        "--jsonl",
        out,
        "--max-frames",
        50,
        "--smooth",
        5,
        "--threshold",
        0.99,
        "--events",
        events,
    )
    assert result.returncode == 0, result.stderr
    records = predictions(out.read_text())
    assert 0 < len(records) <= 50
    assert max(r["frame"] for r in records) <= 49
    # an untrained 3-class head never reaches 0.99: every decision is "no action"
    assert {r["label"] for r in records} == {"no action"}
    assert events.read_text() == ""  # "no action" forms no segment


def test_smooth_averages_the_last_n_probability_vectors(make_video, tflite_model_dir):
    """--smooth 5 == the running mean of the last 5 raw vectors (--smooth 1), computed here."""
    path = make_video(n=30, fps=25.0)
    runs = {}
    for n in (1, 5):
        result = classify(path, tflite_model_dir, *HEADLESS_REPLAY, "--smooth", n)
        assert result.returncode == 0, result.stderr
        runs[n] = [r["probs"] for r in predictions(result.stdout)]
    labels = sorted(runs[1][0])
    raw = np.array([[p[k] for k in labels] for p in runs[1]])
    smooth = np.array([[p[k] for k in labels] for p in runs[5]])
    expected = np.array([raw[max(0, i - 4) : i + 1].mean(axis=0) for i in range(len(raw))])
    np.testing.assert_allclose(smooth, expected, atol=2e-6)
    assert np.abs(smooth - raw).max() > 1e-3  # the untrained head's output does move


def test_events_are_written_for_a_steady_label(make_video, tflite_model_dir, tmp_path):
    path = make_video(n=60, fps=25.0)
    events = tmp_path / "events.jsonl"
    result = classify(
        path,
        tflite_model_dir,
        "--ui",
        "none",
        "--every-frame",
        "--events",
        events,
        "--hysteresis",
        1,
        "--min-duration",
        0.0,
        "--jsonl",
        "-",
    )
    assert result.returncode == 0, result.stderr
    records = predictions(result.stdout)
    segments = [json.loads(line) for line in events.read_text().splitlines()]
    assert segments, "at least the open segment is flushed at exit"
    covered = sum(s["frames"] for s in segments)
    assert covered == len(records)  # hysteresis 1: every prediction belongs to a segment
    assert segments[-1]["closed"] is False
    assert all(s["closed"] for s in segments[:-1])
    # hysteresis 1: each segment is one run of equal labels in the per-frame records, with
    # its first and last frames, times and scores taken from those records here
    runs: list[list[dict]] = []
    for record in records:
        if runs and runs[-1][0]["label"] == record["label"]:
            runs[-1].append(record)
        else:
            runs.append([record])
    assert [s["label"] for s in segments] == [run[0]["label"] for run in runs]
    for segment, run in zip(segments, runs, strict=True):
        assert segment["frames"] == len(run)
        assert segment["first_frame"] == run[0]["frame"]
        assert segment["last_frame"] == run[-1]["frame"]
        assert segment["start"] == pytest.approx(run[0]["timestamp"], abs=1e-3)
        assert segment["end"] == pytest.approx(run[-1]["timestamp"], abs=1e-3)
        assert segment["duration"] == pytest.approx(segment["end"] - segment["start"], abs=2e-3)
        assert segment["peak_score"] == pytest.approx(max(r["score"] for r in run), abs=1e-4)
        mean = sum(r["score"] for r in run) / len(run)
        assert segment["mean_score"] == pytest.approx(mean, abs=1e-4)


def test_output_recording_has_every_classified_frame(make_video, tflite_model_dir, tmp_path):
    path = make_video(n=24, fps=25.0, width=320, height=240)
    video = tmp_path / "annotated.avi"
    result = classify(
        path,
        tflite_model_dir,
        "--ui",
        "none",
        "--every-frame",
        "--output",
        video,
    )
    assert result.returncode == 0, result.stderr
    capture = cv2.VideoCapture(str(video))
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        count += 1
        assert frame.shape[1] >= 640  # the overlay upscales small frames
    assert count == 24


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_within_a_second_and_keeps_outputs(
    signum, make_video, tflite_model_dir, tmp_path
):
    path = make_video(n=500, fps=25.0)  # 20 s of paced replay
    out = tmp_path / "preds.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DISPLAY", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "realtime",
            "--source",
            str(path),
            "--model",
            str(tflite_model_dir),
            "--ui",
            "none",
            "--jsonl",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().count("\n") >= 5:
            break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("no predictions within 60 s")
    t0 = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=10)
    assert time.monotonic() - t0 < 5
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    lines = out.read_text().splitlines()
    assert len(lines) >= 5 and all(json.loads(line)["frame"] >= 0 for line in lines)
    assert "source stopped" in stderr or "frames read" in stderr


def test_loop_replays_a_file_with_continuous_numbering(make_video, tflite_model_dir):
    path = make_video(n=12, fps=25.0)
    result = classify(
        path,
        tflite_model_dir,
        *HEADLESS_REPLAY,
        "--loop",
        "--max-frames",
        30,
    )
    assert result.returncode == 0, result.stderr
    records = predictions(result.stdout)
    assert [r["frame"] for r in records] == list(range(30))
    times = [r["timestamp"] for r in records]
    assert times == sorted(times) and times[-1] == pytest.approx(29 / 25.0, abs=1e-3)
    # the window keeps sliding across the loop point: a looped file is one long stream
    assert records[-1]["window"] == 20


def test_ui_auto_without_display_falls_back_headless(make_video, tflite_model_dir):
    path = make_video(n=10, fps=25.0)
    result = classify(
        path,
        tflite_model_dir,
        "--ui",
        "auto",
        "--every-frame",
        "--jsonl",
        "-",
    )
    assert result.returncode == 0, result.stderr
    assert len(predictions(result.stdout)) == 10


def test_console_ui_renders_the_panel(make_video, tflite_model_dir):
    path = make_video(n=15, fps=25.0)
    result = classify(
        path,
        tflite_model_dir,
        "--ui",
        "console",
        "--every-frame",
        env={"COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stderr
    for text in ("realtime-action", "window 15/20", "backbone", "alpha", "beta", "gamma"):
        assert text in result.stdout


@pytest.mark.shared
def test_every_shared_clip_runs_through_the_cli(shared_clips, tflite_model_dir):
    for clip in shared_clips:
        result = classify(
            clip,
            tflite_model_dir,
            *HEADLESS_REPLAY,
            "--max-frames",
            40,
        )
        assert result.returncode == 0, f"{clip.name}: {result.stderr}"
        records = predictions(result.stdout)
        assert records, clip.name
        assert records[0]["window"] == 1
        capture = cv2.VideoCapture(str(clip))
        fps = capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        # sampled at the model's 25 fps from the clip's own rate
        assert len(records) == pytest.approx(40 * min(1.0, 25.0 / fps), abs=1), clip.name


def test_help_states_each_default_once_and_never_as_none():
    from realtime.cli import build_parser

    text = " ".join(build_parser().format_help().split())  # argparse wraps lines
    assert "(default: None)" not in text
    assert "RTSP transport (default: FFmpeg's choice) --reconnect" in text  # said once
    assert (
        "--read-timeout S a network read that takes longer than S seconds fails (default: 5.0)"
        in text
    )


@pytest.mark.shared
@pytest.mark.parametrize("flag,expected", [((), os.cpu_count()), (("--threads", "1"), 1)])
def test_threads_reach_the_backbones_interpreter(
    flag, expected, tflite_model_dir, monkeypatch, tmp_path
):
    """`--threads N` is the LiteRT interpreter's thread count; without it, every core."""
    import ai_edge_litert.interpreter as litert

    from tests.conftest import moving_square_frames, run_inprocess, write_video

    made = []
    real = litert.Interpreter

    def recording(*args, **kwargs):
        made.append(kwargs.get("num_threads"))
        return real(*args, **kwargs)

    monkeypatch.setattr(litert, "Interpreter", recording)
    clip = write_video(tmp_path / "clip.avi", moving_square_frames(4), 25.0)
    code, err = run_inprocess(
        "--model", tflite_model_dir, "--source", clip, *HEADLESS_REPLAY[:2], *flag
    )
    assert code == 0, err
    assert made == [expected]
