"""Assembling one run (`realtime.app`): what a failing step leaves behind, and how failures
reach the user: one line, the traceback only with -v."""

from __future__ import annotations

import io
import json
import logging
from contextlib import redirect_stderr

import pytest

import realtime.app
from realtime.core.cliargs import configure_logging, run_reporting_errors
from realtime.core.errors import InputError, log
from tests.conftest import ROOT, run_cli, run_inprocess
from tests.fixtures.make_golden_replay import GOLDEN, model_dir_with_backbone, write_golden_video
from tests.fixtures.make_golden_replay import run as replay


class FakeSource:
    """What `assemble` needs of an opened source, and whether it was released."""

    fps, size, is_live, released = 25.0, (160, 120), False, 0

    def release(self):
        self.released += 1

    def describe(self):
        return "a fake source"


@pytest.fixture
def opened_source(monkeypatch):
    source = FakeSource()
    monkeypatch.setattr(realtime.app, "open_source", lambda spec, options: source)
    return source


def test_a_backbone_that_fails_to_load_releases_the_opened_source(
    opened_source, monkeypatch, make_video, tflite_model_dir
):
    def failing(*args, **kwargs):
        raise InputError("no such backbone here")

    monkeypatch.setattr(realtime.app, "load_backbone", failing)
    code, err = run_inprocess(
        "--source", make_video(n=5), "--model", tflite_model_dir, "--ui", "none"
    )
    assert (code, err) == (2, "error: no such backbone here\n")
    assert opened_source.released == 1


def test_an_output_that_fails_to_open_closes_the_ones_opened_before(
    opened_source, monkeypatch, make_video, tflite_model_dir, tmp_path
):
    def failing(*args, **kwargs):
        raise InputError("the recorder cannot start")

    monkeypatch.setattr(realtime.app, "VideoRecorder", failing)
    jsonl = tmp_path / "run.jsonl"
    code, err = run_inprocess(
        "--source", make_video(n=5), "--model", tflite_model_dir, "--ui", "none",
        "--jsonl", jsonl, "--output", tmp_path / "run.mp4",
    )  # fmt: skip
    assert (code, err) == (2, "error: the recorder cannot start\n")
    assert opened_source.released == 1
    assert jsonl.read_text() == ""  # opened, then closed: a valid, empty JSONL file


def test_a_model_that_does_not_run_closes_the_pipeline_and_its_source(
    opened_source, monkeypatch, make_video, tflite_model_dir
):
    def broken(self):
        raise ValueError("shapes do not match")

    monkeypatch.setattr(realtime.app.Pipeline, "warm_up", broken)
    code, err = run_inprocess(
        "--source", make_video(n=5), "--model", tflite_model_dir, "--ui", "none"
    )
    assert code == 2
    assert err == (
        f"error: the model in {tflite_model_dir} does not run on this backbone "
        "(ValueError: shapes do not match)\n"
    )
    assert opened_source.released == 1  # the capture thread never started: close() released it


def test_a_failed_output_mid_run_is_one_line_and_its_traceback_with_verbose(
    make_video, tflite_model_dir
):
    args = ("--source", make_video(n=8), "--model", tflite_model_dir, "--every-frame",
            "--ui", "none", "--quiet", "--jsonl", "/dev/full")  # fmt: skip
    quiet = run_cli(*args)
    assert quiet.returncode == 1
    assert quiet.stderr == "error: cannot write /dev/full: No space left on device\n"
    verbose = run_cli(*args, "-v")
    assert verbose.returncode == 1
    assert "Traceback (most recent call last)" in verbose.stderr
    assert "OSError: [Errno 28] No space left on device" in verbose.stderr
    assert verbose.stderr.endswith("error: cannot write /dev/full: No space left on device\n")


def failing_command():
    raise RuntimeError("a bug\nwith more lines")


@pytest.fixture
def restored_logging():
    yield
    configure_logging(False)


@pytest.mark.parametrize("verbose", [False, True])
def test_an_unexpected_exception_is_one_line_exit_1_and_a_traceback_only_with_verbose(
    verbose, restored_logging
):
    configure_logging(verbose)
    err = io.StringIO()
    handler = logging.StreamHandler(err)  # where -v's handler would write (stderr)
    log.addHandler(handler)
    try:
        with redirect_stderr(err):
            code = run_reporting_errors(failing_command)
    finally:
        log.removeHandler(handler)
    lines = err.getvalue().splitlines()
    assert code == 1
    assert lines[-1] == "error: RuntimeError: a bug (-v shows where)"
    assert ("Traceback (most recent call last):" in lines) is verbose


def test_verbose_logging_is_configured_once_however_often_it_is_asked(restored_logging):
    configure_logging(True)
    configure_logging(True)
    assert len([h for h in log.handlers if h.get_name() == "realtime-verbose"]) == 1
    assert log.getEffectiveLevel() == logging.DEBUG
    configure_logging(False)
    assert not [h for h in log.handlers if h.get_name() == "realtime-verbose"]
    assert not log.isEnabledFor(logging.DEBUG)


#: JSONL fields that depend on the wall clock, and the decimals each is rounded to
WALL_CLOCK = {"wall_time": 4, "frame_age_ms": 2, "timings_ms": 3}
#: the source's state when a frame's prediction is made: a file's capture thread may reach
#: its end before or after the inference loop gets to any of its last frames, so it is live
#: for some leading frames and ended after, never live again (how many: a race, not a value)
SOURCE_STATES = ("live", "ended")


def key_order(value):
    """The keys of every object in `value`, in order, nested."""
    if isinstance(value, dict):
        return [(k, key_order(v)) for k, v in value.items()]
    return None


def assert_like_the_golden(text: str, golden: str) -> None:
    lines, expected_lines = text.splitlines(), golden.splitlines()
    assert len(lines) == len(expected_lines)
    states = []
    for line, expected_line in zip(lines, expected_lines, strict=True):
        record, expected = json.loads(line), json.loads(expected_line)
        if "source_state" in expected and record.get("type") != "source_state":
            states.append(record["source_state"])
            expected = {**expected, "source_state": record["source_state"]}
        assert line == json.dumps(record)  # json.dumps's own separators, nothing else
        # fields are added (at the end), never renamed, dropped or moved
        assert key_order(record)[: len(expected)] == key_order(expected)
        for key, value in ((k, record[k]) for k in expected):
            if key in WALL_CLOCK:
                for number in value.values() if isinstance(value, dict) else [value]:
                    assert number >= 0 and round(number, WALL_CLOCK[key]) == number, (key, line)
            elif isinstance(value, dict):
                assert value == pytest.approx(expected[key], abs=2e-6), (key, line)
            else:
                assert value == pytest.approx(expected[key], abs=2e-6), (key, line)
                assert type(value) is type(expected[key]), (key, line)
    assert all(state in SOURCE_STATES for state in states), states
    assert states == sorted(states, key=SOURCE_STATES.index), states  # never live again


@pytest.mark.shared
def test_jsonl_and_events_are_the_golden_replays(tmp_path, shared_dir):
    """The run of tests/fixtures/make_golden_replay.py, written by the code before the
    packages were layered (4114146): same lines, keys, order, formatting and values; fields
    added since come after those."""
    video = write_golden_video(tmp_path / "golden.avi")
    model = model_dir_with_backbone(shared_dir, tmp_path)
    events = tmp_path / "events.jsonl"
    done = replay(ROOT, video, model, events)
    assert done.returncode == 0, done.stderr
    assert_like_the_golden(done.stdout, (GOLDEN / "replay.jsonl").read_text())
    assert_like_the_golden(events.read_text(), (GOLDEN / "events.jsonl").read_text())
