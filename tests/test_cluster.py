"""The cluster (`python -m realtime.cluster`, docs/cluster.md): its parts without Ray, its
command line's refusals, and a whole cluster in a network namespace of its own (head, two
workers, four loopback cameras; a worker SIGKILLed; status; down)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from loopback.servers import closed_port
from realtime.cameras import CameraConfig
from realtime.cluster.collect import ResultFiles, check_out_dir
from realtime.cluster.controller import MAX_PENDING_ITEMS, CameraFigures, Controller
from realtime.cluster.model import pack_model, unpack_model
from realtime.cluster.nodes import DEFAULT_PORT, parse_address
from realtime.cluster.worker import Forward, WorkerLoop
from realtime.core.errors import InputError
from realtime.frames.sources import CaptureOptions, parse_source
from realtime.head.classifier import ActionClassifier
from realtime.stream.pipeline import Pipeline, RunSettings
from realtime.stream.reconnect import ReconnectPolicy
from tests.conftest import ROOT, build_model_dir, missing, run_cli

NAMESPACE_SCRIPT = ROOT / "tests" / "cluster_namespace.py"


def config(name: str, source: str = "rtsp://127.0.0.1:8554/x") -> CameraConfig:
    return CameraConfig(name, parse_source(source), CaptureOptions(), ReconnectPolicy())


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# the controller ------------------------------------------------------------------------------


def test_the_controller_places_moves_and_reports_cameras():
    clock = Clock()
    c = Controller({"labels": ["a"]}, clock=clock)
    c.join("n1", "127.0.0.2", 20, "mobilenet")
    c.join("n2", "127.0.0.3", 12, "mobilenet")
    assert c.add_cameras([config("door"), config("yard")], 5) == []
    assert c.add_cameras([config("gate"), config("door")], 5) == ["door"]  # nothing added
    assert sorted(c.cameras) == ["door", "yard"]
    assert c.placed("door", "n1") == 1
    assert c.placed("yard", "n2") == 1
    assert [a.config.name for a in c.assigned("n1")] == ["door"]
    assert c.free_fps() == {"n1": 15, "n2": 7}

    figures = CameraFigures(state="live", top_label="a", score=0.9, fps=5.0)
    wanted, down = c.sync("n1", [("prediction", "door", {"frame": 1})], {"door": figures})
    assert [(a.config.name, a.placement) for a in wanted] == [("door", 1)] and not down
    assert c.cameras["door"].figures == figures and c.cameras["door"].reported_at == 1000.0

    clock.now = 1002.0
    assert c.placed("door", "n2") == 2  # its machine died: restarted on n2
    assert c.cameras["door"].figures == CameraFigures()  # nothing known there yet
    # the dead machine's last report (sent before it died) does not overwrite the new place
    c.sync("n1", [], {"door": figures})
    assert c.cameras["door"].figures == CameraFigures()
    assert c.assigned("n1") == [] and len(c.assigned("n2")) == 2
    assert c.free_fps() == {"n1": 20, "n2": 2}
    assert c.drain() == [("prediction", "door", {"frame": 1})] and c.drain() == []
    assert c.prune({"n2"}) == ["127.0.0.2"] and list(c.workers) == ["n2"]
    c.request_down()
    assert c.sync("n2", [], {})[1] is True
    assert c.status()["down"] is True


def test_the_controller_keeps_a_bounded_backlog_and_counts_what_it_drops():
    c = Controller({})
    c.sync("n1", [("gap", "x", None)] * (MAX_PENDING_ITEMS + 3), {})
    assert c.lost_items == 3 and len(c.pending) == MAX_PENDING_ITEMS
    assert len(c.drain(limit=10)) == 10 and len(c.pending) == MAX_PENDING_ITEMS - 10


# the head's files ----------------------------------------------------------------------------


def prediction_record(camera, frame, label, t, placement=1, node="127.0.0.2"):
    return {"frame": frame, "timestamp": t, "label": label, "score": 0.9, "camera": camera,
            "window": 1, "node": node, "placement": placement}  # fmt: skip


def test_result_files_are_a_jsonl_and_an_events_file_per_camera(tmp_path):
    files = ResultFiles(tmp_path / "out", hysteresis=1, min_duration=0.0)
    items = [("placement", "door", {"type": "placement", "camera": "door", "placement": 1})]
    items += [
        ("prediction", "door", prediction_record("door", k, "walk", k * 0.2)) for k in range(5)
    ]
    items += [("prediction", "yard", prediction_record("yard", 0, "run", 0.0))]
    items += [("placement", "door", {"type": "placement", "camera": "door", "placement": 2})]
    items += [("prediction", "door", prediction_record("door", 9, "walk", 9.0, placement=2))]
    files.write(items)
    assert files.close() == []
    door = [json.loads(t) for t in (tmp_path / "out" / "door.jsonl").read_text().splitlines()]
    assert [d.get("type", d.get("label")) for d in door] == ["placement"] + ["walk"] * 5 + [
        "placement",
        "walk",
    ]
    events = (tmp_path / "out" / "door.events.jsonl").read_text().splitlines()
    segments = [json.loads(t) for t in events]
    # the move closed the first segment (frames 0-4); the second is flushed open at the end
    assert [(s["label"], s["first_frame"], s["last_frame"]) for s in segments] == [
        ("walk", 0, 4),
        ("walk", 9, 9),
    ]
    assert (tmp_path / "out" / "yard.jsonl").exists()


@pytest.mark.parametrize(
    "case, message",
    [
        ("inside the model", "overlaps the model directory"),
        ("not empty", "is not empty"),
        ("a file", "not a directory"),
        ("no parent", "does not exist"),
    ],
)
def test_the_results_directory_is_new_or_empty_and_apart_from_the_model(tmp_path, case, message):
    model = tmp_path / "model"
    model.mkdir()
    out = {
        "inside the model": model / "out",
        "not empty": tmp_path / "full",
        "a file": tmp_path / "file",
        "no parent": tmp_path / "nowhere" / "out",
    }[case]
    if case == "not empty":
        out.mkdir()
        (out / "old.jsonl").write_text("{}\n")
    if case == "a file":
        out.write_text("x")
    with pytest.raises(InputError, match=message):
        check_out_dir(out, model)
    check_out_dir(tmp_path / "new", model)  # a new directory is fine
    (tmp_path / "empty").mkdir()
    check_out_dir(tmp_path / "empty", model)


# the model shipped ---------------------------------------------------------------------------


def test_the_model_travels_whole_and_cannot_write_outside_where_it_lands(tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "metadata.json").write_text('{"labels": ["a"]}')
    (model / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 100)
    landed = unpack_model(pack_model(model), tmp_path / "landed")
    assert (landed / "metadata.json").read_text() == '{"labels": ["a"]}'
    assert (landed / "sub" / "weights.bin").read_bytes() == bytes(range(256)) * 100

    import io
    import tarfile

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as archive:
        data = b"owned"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(tarfile.TarError):
        unpack_model(evil.getvalue(), tmp_path / "evil")
    assert not (tmp_path / "escaped.txt").exists()


# the worker's loop ---------------------------------------------------------------------------


def test_a_worker_runs_what_the_head_assigns_and_sends_what_it_produced(
    make_video, tflite_model_dir, litert_backbone
):
    path = make_video(n=12, fps=25.0)
    controller = Controller({})
    controller.join("n1", "127.0.0.2", 50, "x")
    controller.add_cameras([config("door", str(path)), config("yard", str(path))], 5)
    controller.placed("door", "n1")
    forward = Forward("127.0.0.2")
    classifier = ActionClassifier(tflite_model_dir)
    pipeline = Pipeline([], litert_backbone, classifier, RunSettings(every_frame=True), [forward],
                        open_ended=True)  # fmt: skip
    lock = threading.Lock()

    def sync(items, figures):
        with lock:
            return controller.sync("n1", items, figures)

    loop = WorkerLoop(pipeline, forward, sync)

    def step_until(condition) -> None:
        end = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < end
            loop.step()
            time.sleep(0.02)

    with pipeline, closing(loop):
        pipeline.start()
        step_until(lambda: list(loop.running) == ["door"])
        step_until(lambda: sum(i[0] == "prediction" for i in controller.pending) == 12)
        controller.placed("yard", "n1")
        controller.placed("door", "n2")  # moved away (its restart landed elsewhere)
        loop.step()
        assert "door" not in loop.running  # left at once
        step_until(lambda: list(loop.running) == ["yard"])
        assert [c.name for c in pipeline.present()] == ["yard"]
    items = controller.drain()
    assert items[0] == ("placement", "door", items[0][2])
    assert items[0][2]["node"] == "127.0.0.2" and items[0][2]["placement"] == 1
    door = [r for kind, camera, r in items if kind == "prediction" and camera == "door"]
    assert [r["frame"] for r in door] == list(range(12))
    assert all(r["node"] == "127.0.0.2" and r["placement"] == 1 for r in door)
    assert controller.cameras["door"].figures == CameraFigures()  # n1 no longer has it


def test_a_failed_sync_keeps_the_items_for_the_next():
    forward = Forward("h")
    forward.on_gap("a")
    forward.on_gap("b")

    class Broken(Exception):
        pass

    def sync(items, figures):
        raise Broken

    class NoCameras:
        def present(self):
            return []

        def close(self):
            pass

    loop = WorkerLoop(NoCameras(), forward, sync)
    with pytest.raises(Broken):
        loop.step()
    forward.on_gap("c")
    assert [i[1] for i in forward.take()] == ["a", "b", "c"]


# the command line ----------------------------------------------------------------------------


def test_addresses():
    assert str(parse_address("127.0.0.5:7000")) == "127.0.0.5:7000"
    assert str(parse_address("head.lan")) == f"head.lan:{DEFAULT_PORT}"
    assert str(parse_address(None)) == f"127.0.0.1:{DEFAULT_PORT}"
    for bad in ("127.0.0.5:x", ":80", "h:0", "h:70000"):
        with pytest.raises(InputError, match="HOST:PORT"):
            parse_address(bad)


def cluster_cli(*args, timeout=60, env=None):
    return run_cli(*args, timeout=timeout, module="realtime.cluster", env=env)


@pytest.mark.parametrize(
    "args, message",
    [
        (("head", "--model", "NOPE", "--out", "OUT"), "model"),
        (("worker", "--address", "127.0.0.1:1", "--capacity", "fast"), "'fast' is not 'auto'"),
        (("up",), "--cameras"),
        (("down", "--address", "nowhere:x"), "HOST:PORT"),
    ],
)
def test_bad_input_is_one_error_line(args, message, tmp_path):
    args = tuple(str(tmp_path / a) if a in ("NOPE", "OUT") else a for a in args)
    done = cluster_cli(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


@pytest.mark.parametrize("command", ["worker", "status", "up", "down"])
def test_a_head_that_cannot_be_reached_is_one_line_at_once(command, tmp_path):
    cameras = tmp_path / "cameras.toml"
    cameras.write_text('[[camera]]\nname = "a"\nsource = "rtsp://127.0.0.1:1/x"\n')
    extra = {"worker": ["--host", "127.0.0.1"], "up": ["--cameras", str(cameras)]}
    with closed_port() as port:  # bound, never listening: connections are refused
        done = cluster_cli(command, "--address", f"127.0.0.1:{port}", *extra.get(command, []))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: cannot reach the cluster's head at 127.0.0.1:{port}")


# a whole cluster -----------------------------------------------------------------------------


def namespace_available() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare/ip not installed (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        return "cannot make a network namespace here (needs root)"
    return None


@pytest.fixture(scope="module")
def slow_model_dir(tmp_path_factory, litert_backbone) -> Path:
    """A model sampled at 5 fps: each camera reserves 5 of a worker's 20 fps."""
    return build_model_dir(tmp_path_factory.mktemp("cluster") / "model5", litert_backbone, fps=5.0)


@pytest.mark.slow
def test_a_cluster_spreads_cameras_and_moves_a_dead_workers_cameras(
    slow_model_dir, shared_dir, tmp_path
):
    reason = namespace_available()
    if reason:
        missing(reason)
    other_backbone = shared_dir / "models" / "mobilenet_v2_1.0_224_quant.tflite"
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(NAMESPACE_SCRIPT), "--model", str(slow_model_dir),
         "--work", str(work), "--kills", "1", "--deadline", "30", "--overflow", "--leave",
         "--other-backbone", str(other_backbone)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.stdout.strip(), done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "error" not in result, json.dumps(result, indent=1)[-4000:]
    # spread over both workers
    assert sorted(set(result["placed"].values())) == ["127.0.0.2", "127.0.0.3"], result["placed"]
    kill = result["kills"][0]
    assert kill["moved"] and set(kill["resumed_s"]) == set(kill["moved"]), kill
    survivor = ({"127.0.0.2", "127.0.0.3"} - {kill["victim"]}).pop()
    assert set(kill["new_node"].values()) == {survivor}
    assert max(kill["written_s"].values()) <= 15.0, kill  # the bound
    assert all(kill["window_restarted"].values()), kill  # a new segment: the window starts over
    # a worker whose backbone cannot run the model: one line, exit 2, never joined
    refused = result["refused_worker"]
    assert refused["code"] == 2, refused
    lines = refused["output"].strip().splitlines()
    assert len(lines) == 1 and "this worker cannot run the cluster's model" in lines[0], lines
    # Ctrl-C on a worker (its process group, as a terminal sends it): it leaves in order,
    # exit 0, and its cameras go on from the other worker
    leave = result["leave"]
    assert leave["code"] == 0 and "left the cluster" in leave["output"], leave
    assert "error" not in leave["output"], leave
    assert set(leave["resumed_on"].values()) == {leave["to"]}, leave
    # one camera more than the workers have room for: named, exit 2; the others go on
    overflow = result["overflow"]
    assert overflow["code"] == 2, overflow
    error = [line for line in overflow["output"].splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "1 of 1 cameras are not placed (extra)" in error[0], overflow
    assert all(overflow["still_predicting"].values()), overflow
    assert result["status"]["code"] == 0
    for camera in ("cam1", "cam2", "cam3", "cam4"):
        assert camera in result["status"]["output"]
    assert leave["to"] in result["status"]["output"]  # the machine running them now
    assert result["down"]["code"] == 0, result["down"]
    assert set(result["exit_codes"].values()) <= {0, -9}, result["exit_codes"]
    assert result["left_processes"] == [], result["left_processes"]
    assert "cam1.jsonl" in result["files"] and "cam1.events.jsonl" in result["files"]


def test_capacity_is_what_every_parallel_extractor_sustains_times_the_headroom():
    from realtime.cluster.commands import HEADROOM, measure_capacity

    calls = []

    class Backbone:
        """Two ways to run at once, each taking 10 ms a frame: 200 frames/s at most."""

        def parallel_extractors(self):
            def extract(frames):
                calls.append(frames.shape)
                time.sleep(0.01)

            return [extract, extract]

    capacity = measure_capacity(Backbone(), 32, seconds=0.5)
    assert calls and all(shape == (1, 32, 32, 3) for shape in calls)
    # sleeping can only take longer than asked: at most 200 x HEADROOM, and far above one way
    assert 20 <= capacity.fps <= 200 * HEADROOM, capacity
    assert capacity.how.startswith("measured: ") and f"x {HEADROOM}" in capacity.how
