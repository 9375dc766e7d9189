"""An open-ended run: cameras join and leave while it runs (what a cluster worker does with the
cameras Ray places on its machine, `realtime.cluster`)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime.frames.sources import open_source
from realtime.head.classifier import ActionClassifier
from realtime.stream.capture import Frame, FrameRing
from realtime.stream.engine import CameraStream, InferenceEngine, Sink
from realtime.stream.metrics import PipelineMetrics
from realtime.stream.pipeline import CameraSetup, Pipeline, RunSettings
from realtime.stream.turns import RoundRobin


class Collect(Sink):
    def __init__(self):
        self.lock = threading.Lock()
        self.by_camera: dict[str, list] = {}
        self.gaps: list[str] = []

    def handle(self, prediction, frame):
        with self.lock:
            self.by_camera.setdefault(prediction.camera, []).append(prediction)

    def on_gap(self, camera):
        self.gaps.append(camera)

    def count(self, camera: str) -> int:
        with self.lock:
            return len(self.by_camera.get(camera, []))


class Closing(Sink):
    """A camera's own output: records that it was closed."""

    def __init__(self):
        self.closed = 0

    def handle(self, prediction, frame):
        pass

    def close(self):
        self.closed += 1


def setup(name: str, path, sinks=()) -> CameraSetup:
    source = open_source(str(path))
    return CameraSetup(name, source.describe(), False, source, sinks=tuple(sinks))


def frame(sample: int) -> Frame:
    return Frame(sample, sample, sample / 25, 0.0, None, None, 0.0, 0.0)


def wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def probs(predictions) -> list[tuple]:
    return [(p.frame, p.window, tuple(round(v, 5) for v in p.probs.values())) for p in predictions]


def test_round_robin_serves_a_camera_that_joins_and_never_one_that_left():
    rings = [FrameRing(4, True) for _ in range(2)]
    turns = RoundRobin(rings[:1])
    assert turns.add(rings[1]) == 1
    for ring in rings:
        ring.put(frame(0))
    taken = {turns.take()[0], turns.take()[0]}
    assert taken == {0, 1}
    turns.release(0)
    turns.release(1)
    rings[0].put(frame(1))
    turns.retire(0)
    assert turns.take() is None  # camera 0 left: its frame is never taken
    assert turns.ended(0) and not turns.ended(1)


def test_cameras_join_and_leave_a_running_open_ended_pipeline(
    make_video, tflite_model_dir, litert_backbone
):
    first = make_video(n=24, name="first.avi")
    second = make_video(n=24, name="second.avi", seed=3)
    classifier = ActionClassifier(tflite_model_dir)
    settings = RunSettings(every_frame=True)

    alone = Collect()  # what each video gives in a run of its own
    for name, path in (("a", first), ("b", second)):
        single = Pipeline.single(
            open_source(str(path)), litert_backbone, classifier, settings, [alone], name=name
        )
        single.start()
        assert single.wait(120)
        assert single.close() == []

    collect = Collect()
    own = Closing()
    pipeline = Pipeline([], litert_backbone, classifier, settings, [collect], open_ended=True)
    with pipeline:
        pipeline.start()
        time.sleep(0.5)
        assert not pipeline.done  # no camera yet: it waits for one instead of ending
        pipeline.add_camera(setup("a", first, [own]))
        with pytest.raises(ValueError, match="already in the run"):
            pipeline.add_camera(setup("a", first))
        assert wait_until(lambda: collect.count("a") == 24)
        assert not pipeline.done  # its only camera ended: still open for the next one
        pipeline.add_camera(setup("b", second))
        assert wait_until(lambda: collect.count("b") == 24)

        assert pipeline.remove_camera("a") == []
        assert own.closed == 1  # the camera's own outputs are closed when it leaves
        assert [c.name for c in pipeline.present()] == ["b"]
        with pytest.raises(KeyError):
            pipeline.remove_camera("a")
        pipeline.add_camera(setup("a", first))  # a name that left may come back: a new window
        assert wait_until(lambda: collect.count("a") == 48)
    assert pipeline.problems == []
    assert own.closed == 1  # not closed again by the run's close

    assert probs(collect.by_camera["b"]) == probs(alone.by_camera["b"])
    assert probs(collect.by_camera["a"][:24]) == probs(alone.by_camera["a"])
    assert probs(collect.by_camera["a"][24:]) == probs(alone.by_camera["a"])  # window restarted


def test_a_live_camera_that_leaves_stops_reading_and_releases_its_source(
    make_video, tflite_model_dir, litert_backbone
):
    path = make_video(n=50, fps=25.0)
    classifier = ActionClassifier(tflite_model_dir)
    collect = Collect()
    pipeline = Pipeline([], litert_backbone, classifier, RunSettings(loop=True), [collect],
                        open_ended=True)  # fmt: skip
    with pipeline:
        pipeline.start()
        camera = pipeline.add_camera(setup("looped", path))
        assert wait_until(lambda: collect.count("looped") >= 3)
        pipeline.remove_camera("looped")
        assert not camera.capture.is_alive()
        assert camera.capture.source is None or camera.capture.finished.is_set()
        count = collect.count("looped")
        time.sleep(0.5)
        assert collect.count("looped") == count  # nothing more from a camera that left
        assert not pipeline.done
    assert pipeline.problems == []


def test_a_frame_in_flight_when_its_camera_leaves_gives_no_prediction(tflite_model_dir):
    """The backbone is still computing camera "gone"'s frame when the camera leaves: that
    frame is thrown away (its own outputs may already be closed); the other camera goes on.
    A gated backbone makes the order certain on any machine."""
    classifier = ActionClassifier(tflite_model_dir)
    collect = Collect()
    rings = {name: FrameRing(4, True) for name in ("gone", "stays")}
    streams = {
        name: CameraStream(name, ring, classifier, metrics=PipelineMetrics(), sinks=[collect])
        for name, ring in rings.items()
    }
    computing, go_on = threading.Event(), threading.Event()

    def extract(images):
        computing.set()
        go_on.wait(30)
        return np.zeros((len(images), classifier.info.feature_size), np.float32)

    stop = threading.Event()
    engine = InferenceEngine(list(streams.values()), [extract], stop=stop, open_ended=True)
    image = np.zeros((8, 8, 3), np.uint8)
    engine.start()
    try:
        rings["gone"].put(Frame(0, 0, 0.0, 0.0, image, None, 0.0, 0.0))
        assert computing.wait(30)  # the one worker is inside the backbone with "gone"'s frame
        engine.retire(streams["gone"])
        rings["stays"].put(Frame(0, 0, 0.0, 0.0, image, None, 0.0, 0.0))
        go_on.set()
        # one worker: "stays"'s frame is taken only after "gone"'s was done with
        assert wait_until(lambda: collect.count("stays") == 1, 30)
        assert collect.count("gone") == 0
    finally:
        go_on.set()
        stop.set()
        engine.join(30)
    assert engine.failure is None


def test_cameras_join_an_open_ended_run_only(make_video, tflite_model_dir, litert_backbone):
    classifier = ActionClassifier(tflite_model_dir)
    path = make_video(n=4)
    pipeline = Pipeline([setup("a", path)], litert_backbone, classifier, RunSettings(), [])
    with pytest.raises(RuntimeError, match="open-ended"):
        pipeline.add_camera(setup("b", path))
    pipeline.close()
    with pytest.raises(ValueError):
        Pipeline([], litert_backbone, classifier, RunSettings(), [])
