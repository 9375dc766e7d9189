"""Several cameras in one process: the cameras file, the shared inference loop's turns, each
camera's outputs equal to a run of that camera alone, and failures that stay with their camera
(real servers on 127.0.0.1: tests/test_network.py's)."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from realtime.cameras import camera_configs, output_path
from realtime.core.errors import InputError
from realtime.frames.sources import SourceKind
from realtime.stream.capture import END_OF_STREAM, Frame, FrameRing
from realtime.stream.turns import Doorbell, RoundRobin
from tests.conftest import HEADLESS_REPLAY, run_cli, run_inprocess


def args(**given):
    """What the CLI's parser gives `camera_configs` (its defaults, then `given`)."""
    from realtime.cli import build_parser

    parsed = build_parser().parse_args([])
    for key, value in given.items():
        setattr(parsed, key, value)
    return parsed


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- the cameras file ---------------------------------------------------------------------


def test_a_cameras_file_names_each_camera_and_overrides_the_command_line(tmp_path):
    cameras = write(
        tmp_path / "cams.toml",
        """
[[camera]]
name = "door"
source = "rtsp://admin:secret@127.0.0.1:8554/door"
rtsp_transport = "tcp"
read_timeout = 2.5
open_timeout = 4
reconnect = 3

[[camera]]
name = "yard.2"
source = "clips/yard.mp4"

[[camera]]
name = "desk"
source = 0
""",
    )
    given = args(cameras=str(cameras), open_timeout=7.0, reconnect=5, rtsp_transport="udp")
    door, yard, desk = camera_configs(given)
    assert [c.name for c in (door, yard, desk)] == ["door", "yard.2", "desk"]
    assert door.source.kind is SourceKind.STREAM
    assert "secret" not in str(door.source) and "admin" not in str(door.source)
    # the camera's own settings over the command line's
    assert (door.options.rtsp_transport, door.options.read_timeout_s) == ("tcp", 2.5)
    assert door.options.open_timeout_s == 4.0 and door.reconnect.attempts == 3
    # the command line's (given or default) for what a camera does not say
    assert (yard.options.rtsp_transport, yard.options.open_timeout_s) == ("udp", 7.0)
    assert yard.options.read_timeout_s == 5.0 and yard.reconnect.attempts == 5
    assert yard.source.kind is SourceKind.FILE
    assert yard.source.target == str(tmp_path / "clips" / "yard.mp4")  # beside the file
    assert (desk.source.kind, desk.source.target) == (SourceKind.CAMERA, 0)


def test_repeated_sources_are_cam1_cam2_in_order():
    given = args(source=["a.avi", "rtsp://127.0.0.1/x", "0"], reconnect=None,
                 rtsp_transport="tcp", open_timeout=3.0, read_timeout=2.0)  # fmt: skip
    configs = camera_configs(given)
    assert [(c.name, c.source.kind) for c in configs] == [
        ("cam1", SourceKind.FILE),
        ("cam2", SourceKind.STREAM),
        ("cam3", SourceKind.CAMERA),
    ]
    assert all(c.reconnect.attempts is None for c in configs)  # forever
    assert {(c.options.rtsp_transport, c.options.open_timeout_s, c.options.read_timeout_s)
            for c in configs} == {("tcp", 3.0, 2.0)}  # fmt: skip


BAD_FILES = {
    "syntax": ('[[camera]]\nname = "a"\nsource = "x.avi\n', "not valid TOML"),
    "unknown key": (
        '[[camera]]\nname = "a"\nsource = "x.avi"\nfps = 5\n',
        "camera 'a': unknown key 'fps' (known: name, source, rtsp_transport, open_timeout, "
        "read_timeout, reconnect)",
    ),
    "unknown table": ('[[cameras]]\nname = "a"\nsource = "x.avi"\n', "unknown key 'cameras'"),
    "duplicate": (
        '[[camera]]\nname = "a"\nsource = "x.avi"\n[[camera]]\nname = "a"\nsource = "y.avi"\n',
        "two cameras are named 'a'",
    ),
    "no source": ('[[camera]]\nname = "a"\n', "camera 'a': no 'source'"),
    "no name": ('[[camera]]\nsource = "x.avi"\n', "camera 1: 'name' must be"),
    "unsafe name": (
        '[[camera]]\nname = "../a"\nsource = "x.avi"\n',
        "camera '../a': 'name' must be 1 to 40 letters, digits, '.', '_' or '-' "
        "(starting with a letter or digit)",
    ),
    "a number as name": ('[[camera]]\nname = 5\nsource = "x.avi"\n', "camera 1: 'name' must"),
    "not a table": ("camera = [1, 2]\n", "camera 1 is not a table"),
    "one table, not a list": ('[camera]\nname = "a"\nsource = "x.avi"\n', "no camera"),
    "source of another type": (
        '[[camera]]\nname = "a"\nsource = true\n',
        "camera 'a': 'source' must be a camera index, a file or a URL",
    ),
    "reconnect of another type": (
        '[[camera]]\nname = "a"\nsource = "x.avi"\nreconnect = true\n',
        "camera 'a': 'reconnect' must be a number of attempts or 'forever'",
    ),
    "timeout of another type": (
        '[[camera]]\nname = "a"\nsource = "x.avi"\nread_timeout = "5"\n',
        "camera 'a': 'read_timeout' must be a number of seconds",
    ),
    "bad transport": (
        '[[camera]]\nname = "a"\nsource = "x.avi"\nrtsp_transport = "http"\n',
        "camera 'a': 'rtsp_transport' must be one of tcp, udp",
    ),
    "bad timeout": (
        '[[camera]]\nname = "a"\nsource = "x.avi"\nopen_timeout = -1\n',
        "camera 'a': -1.0 must be more than 0 seconds",
    ),
    "bad reconnect": (
        '[[camera]]\nname = "a"\nsource = "x.avi"\nreconnect = "often"\n',
        "camera 'a': 'often' is not a number of attempts",
    ),
    "empty": ("", "no camera"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_cameras_file_is_one_error_line_before_anything_opens(case, tmp_path):
    text, expected = BAD_FILES[case]
    cameras = write(tmp_path / "cams.toml", text)
    code, err = run_inprocess("--cameras", cameras, "--model", tmp_path / "no-model-needed")
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert expected in lines[0] and str(cameras) in lines[0]


def test_a_cameras_file_that_cannot_be_read_is_one_error_line(tmp_path):
    code, err = run_inprocess("--cameras", tmp_path / "none.toml")
    assert (code, err) == (2, f"error: cameras file not found: {tmp_path / 'none.toml'}\n")
    folder = tmp_path / "a-folder.toml"
    folder.mkdir()
    code, err = run_inprocess("--cameras", folder)
    assert code == 2 and err.startswith(f"error: cannot read the cameras file {folder}: ")
    assert len(err.splitlines()) == 1


def test_source_and_cameras_are_one_or_the_other(tmp_path):
    cameras = write(tmp_path / "c.toml", '[[camera]]\nname = "a"\nsource = "x.avi"\n')
    for argv in (["--source", "x.avi", "--cameras", cameras], []):
        code, err = run_inprocess(*argv)
        assert code == 2 and err.startswith("error: give the cameras with --source"), err


def test_recording_names_come_from_a_pattern_with_the_camera():
    assert output_path("rec-{camera}.mp4", "door", several=True) == "rec-door.mp4"
    assert output_path("out/{camera}/{camera}.mkv", "yard", several=True) == "out/yard/yard.mkv"
    assert output_path("rec.mp4", "cam1", several=False) == "rec.mp4"
    assert output_path("rec-{camera}.mp4", "cam1", several=False) == "rec-cam1.mp4"
    with pytest.raises(InputError) as refused:
        output_path("rec.mp4", "cam1", several=True)
    assert str(refused.value) == (
        "--output records one file per camera: put {camera} in its name (e.g. rec-{camera}.mp4)"
    )


@pytest.mark.shared
def test_recordings_of_several_cameras_need_a_camera_field(tmp_path, make_video, tflite_model_dir):
    video = make_video(n=5)
    code, err = run_inprocess(
        "--source", video, "--source", video, "--model", tflite_model_dir,
        "--output", tmp_path / "r.mp4",
    )  # fmt: skip
    assert code == 2 and "put {camera} in its name" in err
    assert not (tmp_path / "r.mp4").exists()


# -- the inference workers' turns -----------------------------------------------------------


def frame(sample: int) -> Frame:
    image = np.zeros((4, 4, 3), np.uint8)
    return Frame(sample, sample, sample / 25, 0.0, image, None, 0.0, 0.0)


def take(turns: RoundRobin) -> tuple[int, int] | None:
    """(camera, sample) of the next frame a worker takes, or None."""
    taken = turns.take()
    return None if taken is None else (taken[0], taken[1].sample)


def test_takes_go_round_the_cameras_newest_frame_each_none_twice():
    rings = [FrameRing(20) for _ in range(3)]
    turns = RoundRobin(rings)
    for sample in range(5):
        rings[0].put(frame(sample))
    rings[2].put(frame(0))
    # camera 0's newest (its 4 older frames dropped), then camera 2; camera 1 has nothing
    assert take(turns) == (0, 4)
    turns.release(0)
    assert take(turns) == (2, 0)
    turns.release(2)
    assert take(turns) is None  # nothing is taken twice
    assert (rings[0].dropped, rings[2].dropped) == (4, 0)
    # a busy camera does not starve the others: after camera 0 comes camera 1, then 0 again
    for sample in range(5, 8):
        rings[0].put(frame(sample))
    rings[1].put(frame(0))
    assert take(turns) == (0, 7)
    turns.release(0)
    rings[0].put(frame(8))
    assert take(turns) == (1, 0)
    turns.release(1)
    assert take(turns) == (0, 8)
    turns.release(0)
    # from the one after the last served, onwards: camera 1 has nothing, so 2 comes before 0
    rings[0].put(frame(9))
    rings[2].put(frame(1))
    assert take(turns) == (2, 1)


def test_a_camera_with_a_frame_in_flight_waits_and_the_ended_are_marked():
    """Workers at the same time take different cameras: a camera's next frame waits until its
    frame in flight is released (its frames are finished in order, one at a time)."""
    rings = [FrameRing(20) for _ in range(3)]
    turns = RoundRobin(rings)
    for ring in rings:
        ring.put(frame(0))
    assert take(turns) == (0, 0)  # worker 1
    assert take(turns) == (1, 0)  # worker 2, while camera 0 is in flight
    rings[0].put(frame(1))
    assert take(turns) == (2, 0)  # camera 0 is still in flight: passed over
    assert take(turns) is None
    rings[1].close()
    turns.release(0)
    turns.release(1)
    assert take(turns) == (0, 1)
    turns.release(0)
    assert take(turns) is None and turns.ended(1)
    assert not turns.ended(0) and not turns.all_ended and rings[0].dropped == 0
    rings[0].close()
    rings[2].close()
    assert take(turns) is None and not turns.all_ended  # camera 2 still has a frame
    turns.release(2)
    assert take(turns) is None and turns.all_ended


def test_the_doorbell_wakes_a_waiting_worker_and_is_never_missed():
    bell = Doorbell()
    seen = bell.rings
    bell.set()  # rung between looking and waiting: the wait returns at once
    started = time.monotonic()
    bell.wait_after(seen, timeout=5)
    assert time.monotonic() - started < 1
    seen = bell.rings
    waiter = threading.Thread(target=bell.wait_after, args=(seen, 5))
    waiter.start()
    time.sleep(0.05)
    assert waiter.is_alive()  # nothing rang since: it waits
    bell.set()
    waiter.join(1)
    assert not waiter.is_alive()
    started = time.monotonic()  # and nothing rings: it returns after its timeout
    bell.wait_after(bell.rings, timeout=0.1)
    assert 0.09 < time.monotonic() - started < 2


def test_a_ring_rings_the_doorbell_when_it_gets_a_frame_or_ends():
    bell = threading.Event()
    ring = FrameRing(4, doorbell=bell)
    assert not bell.is_set()
    ring.put(frame(0))
    assert bell.is_set()
    bell.clear()
    assert ring.take(timeout=0) is not None and not bell.is_set()  # the reader never rings
    ring.close()
    assert bell.is_set() and ring.take(timeout=0) is END_OF_STREAM


OVERLAPPING_SILENCE = """
import os, sys, threading
from realtime.core.optional import native_stderr_silenced
a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
def a():
    with native_stderr_silenced():
        a_in.set(); b_in.wait()
        os.write(2, b"native noise A\\n")
    a_out.set()
def b():
    a_in.wait()
    with native_stderr_silenced():
        b_in.set(); a_out.wait()
        print("warning: ours, while B is still silenced", file=sys.stderr, flush=True)
        os.write(2, b"native noise B\\n")
threads = [threading.Thread(target=a), threading.Thread(target=b)]
[t.start() for t in threads]; [t.join() for t in threads]
os.write(2, b"fd 2 is back\\n")
"""


def test_cameras_opening_at_once_never_swallow_stderr():
    """Sources open on several threads at once, each silencing native chatter on fd 2: blocks
    that overlap (A in, B in, A out, B out) leave fd 2 restored, and our own lines printed
    meanwhile reach the terminal (before, B restored fd 2 to A's /dev/null: stderr was lost
    for good and a run that could open no camera exited 2 without a word)."""
    from tests.conftest import _run_python

    result = _run_python(["-c", OVERLAPPING_SILENCE], timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "warning: ours, while B is still silenced\nfd 2 is back\n"


# -- a run of several cameras -------------------------------------------------------------


def records_by_camera(text: str) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for line in text.splitlines():
        record = json.loads(line)
        out[record.pop("camera")].append(record)
    return out


def comparable(records: list[dict]) -> list[tuple]:
    """What must not depend on the other cameras: position, window, label, probabilities."""
    return [(r["frame"], r["sample"], r["timestamp"], r["window"], r["label"],
             tuple(r["probs"].values())) for r in records]  # fmt: skip


@pytest.mark.shared
def test_every_frame_replay_of_two_cameras_gives_each_what_it_gives_alone(
    make_video, tflite_model_dir, tmp_path
):
    """Per camera the same predictions (probabilities within 1e-4) and the same action
    segments as a run of its file alone; every line says which camera."""
    first = make_video(n=45, name="first.avi", seed=1)
    second = make_video(n=30, name="second.avi", seed=2, width=200, height=100)
    events = tmp_path / "both.events.jsonl"
    both = run_cli(
        "--source", first, "--source", second, "--model", tflite_model_dir, *HEADLESS_REPLAY,
        "--events", events, "--hysteresis", "1", "--min-duration", "0",
    )  # fmt: skip
    assert both.returncode == 0, both.stderr
    together = records_by_camera(both.stdout)
    assert sorted(together) == ["cam1", "cam2"]
    segments = records_by_camera(events.read_text())
    for name, video in (("cam1", first), ("cam2", second)):
        alone_events = tmp_path / f"{name}.events.jsonl"
        alone = run_cli(
            "--source", video, "--model", tflite_model_dir, *HEADLESS_REPLAY,
            "--events", alone_events, "--hysteresis", "1", "--min-duration", "0",
        )  # fmt: skip
        assert alone.returncode == 0, alone.stderr
        expected = records_by_camera(alone.stdout)["cam1"]
        got = together[name]
        assert len(got) == len(expected) == (45 if name == "cam1" else 30)
        for a, b in zip(comparable(got), comparable(expected), strict=True):
            assert a[:5] == b[:5]
            np.testing.assert_allclose(a[5], b[5], atol=1e-4)
        assert segments[name] == records_by_camera(alone_events.read_text())["cam1"]
    # the summary gives each camera and the total
    assert "cam1" in both.stderr and "cam2" in both.stderr and "total" in both.stderr


@pytest.mark.shared
def test_a_camera_that_cannot_open_is_a_warning_and_the_others_run(
    make_video, tflite_model_dir, tmp_path
):
    video = make_video(n=20)
    result = run_cli(
        "--source", video, "--source", tmp_path / "missing.avi", "--model", tflite_model_dir,
        *HEADLESS_REPLAY,
    )  # fmt: skip
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [f"warning: camera cam2: video file not found: {tmp_path}/missing.avi;"
                        " left out"]  # fmt: skip
    assert "Traceback" not in result.stderr
    assert len(records_by_camera(result.stdout)["cam1"]) == 20
    assert result.returncode == 1  # a camera failed for good: said at the end
    assert result.stderr.splitlines()[-1].startswith("error: camera cam2: could not open")
    # none at all: one error line, exit 2
    result = run_cli(
        "--source", tmp_path / "a.avi", "--source", tmp_path / "b.avi",
        "--model", tflite_model_dir, *HEADLESS_REPLAY,
    )  # fmt: skip
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.splitlines() == [
        f"error: no camera could be opened (camera cam1: video file not found: {tmp_path}/a.avi)"
    ]


# -- live cameras on loopback servers -----------------------------------------------------


@pytest.mark.shared
@pytest.mark.slow
def test_three_live_cameras_one_killed_and_restarted_one_refused(tflite_model_dir, tmp_path):
    """cam1 (MJPEG) keeps predicting while cam2's RTSP server is killed and restarted; cam2
    reconnects and predicts again; cam3 (a refused port) is one warning and keeps retrying;
    every line says which camera; Ctrl-C ends it all with exit 0."""
    from loopback.servers import MjpegCamera, RtspCamera, closed_port
    from tests.test_network import StreamingCli, check_predictions, need_rtsp

    need_rtsp()
    with MjpegCamera() as steady, RtspCamera() as flaky, closed_port() as port:
        cameras = write(
            tmp_path / "cams.toml",
            f"""
[[camera]]
name = "steady"
source = "{steady.url}"

[[camera]]
name = "flaky"
source = "{flaky.url}"
read_timeout = 2

[[camera]]
name = "refused"
source = "rtsp://user:pw@127.0.0.1:{port}/none"
open_timeout = 2
""",
        )
        cli = StreamingCli("--cameras", cameras, "--model", tflite_model_dir, quiet=False)
        try:

            def count(name, since=0):
                return sum(1 for p in cli.predictions[since:] if p["camera"] == name)

            assert cli.wait_for(lambda: count("steady") >= 20 and count("flaky") >= 20, 60), (
                cli.records[-3:]
            )
            flaky.kill()
            assert cli.wait_for(
                lambda: any(
                    s["camera"] == "flaky" and s["source_state"] == "reconnecting"
                    for s in cli.states
                ),
                15,
            )
            cut = len(cli.predictions)
            # while flaky is down, steady goes on; from flaky, at most the frames it had read
            # before it stalled and that still waited for the backbone (a slow machine) come
            # out: its old connection's window, full, never a new one's
            assert cli.wait_for(lambda: count("steady", cut) >= 15, 30)
            stale = [p for p in cli.predictions[cut:] if p["camera"] == "flaky"]
            assert len(stale) <= 2, stale
            assert all(p["window"] == p["window_length"] for p in stale), stale
            cut = len(cli.predictions)
            flaky.start()
            assert cli.wait_for(lambda: count("flaky", cut) >= 15, 30)
            cli.interrupt()
            rc = cli.finish(15)
        finally:
            if cli.process.poll() is None:
                cli.process.kill()
    assert rc == 0, cli.stderr
    assert "Traceback" not in cli.stderr
    warnings = [line for line in cli.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: camera refused: ")
    assert "retrying" in warnings[0] and "pw" not in cli.stderr
    assert {p["camera"] for p in cli.predictions} == {"steady", "flaky"}
    check_predictions(cli.predictions)
    flaky_states = [(s["previous"], s["source_state"]) for s in cli.states
                    if s["camera"] == "flaky"]  # fmt: skip
    assert ("stalled", "reconnecting") in flaky_states
    assert flaky_states[-1] == ("reconnecting", "live")
    assert not any(s["camera"] == "steady" for s in cli.states)  # nothing happened to it
    refused = [s for s in cli.states if s["camera"] == "refused"]
    assert refused and all(s["source_state"] == "reconnecting" for s in refused)
    assert "pw" not in json.dumps(cli.records)
    after = [p for p in cli.predictions[cut:] if p["camera"] == "flaky"]
    assert [p["window"] for p in after[:3]] == [1, 2, 3]  # its window restarted, alone
    # the summary: a row per camera
    summary = cli.stderr[cli.stderr.index("realtime-action summary") :]
    rows = {line.split()[0]: line.split()[1:] for line in summary.splitlines()[3:-1]}
    assert list(rows) == ["steady", "flaky", "refused", "total"], summary
    assert rows["refused"][:4] == ["stopped", "0", "0", "0"]  # read, skipped, classified
    assert rows["flaky"][-1] == "1" and rows["steady"][-1] == "0"  # reconnects
