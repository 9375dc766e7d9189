"""The inference loop: frames in, predictions out, one backbone computation per frame.

    FrameRing.take() (each camera's newest unread frame, cameras in turn)
    -> backbone (one shared by every camera; several frames in flight where it allows)
    -> per camera (`CameraStream`): HeadStream.push (the frame's GRU input projection joins
       that camera's window; masked GRU over it) -> smoothing / threshold -> Prediction
    -> that camera's sinks (JSONL, events, recorder) + its latest result for the UI

One thread (`InferenceEngine`) serves every camera; the UI reads `latest()` from the main
thread. Fairness: the cameras are served round robin from the one after the last served, and
each turn takes a camera's newest unread frame, so no camera starves and no frame is processed
twice; what a camera had no time for is counted as dropped by its ring.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from realtime.backbones.base import Backbone
from realtime.core.errors import Failure, failed
from realtime.head.classifier import ActionClassifier
from realtime.stream.capture import END_OF_STREAM, Frame, FrameRing
from realtime.stream.metrics import PipelineMetrics, WindowPace
from realtime.stream.postprocess import ProbabilitySmoother, decide
from realtime.stream.prediction import Prediction, probs_dict
from realtime.stream.reconnect import SourceState


class OutputFailed(Exception):
    """A sink could not write (disk full, I/O error): the run stops with this one line."""


class OutputClosed(Exception):
    """A sink's reader went away (`--jsonl - | head -1`): the run ends quietly."""


class Sink:
    """Something that receives every prediction (on the inference thread).

    `handle` raises `OutputFailed` when the sink cannot write any more and `OutputClosed`
    when its reader has gone; the inference loop then stops the run (see `InferenceEngine`).
    """

    failure: Failure | None = None  # set by a sink that failed; reported by the pipeline

    def handle(self, prediction: Prediction, frame: Frame) -> None:  # pragma: no cover
        raise NotImplementedError

    def on_gap(self, camera: str) -> None:
        """`camera`'s source had a gap; its window restarts."""

    def on_source_state(self, camera: str, change) -> None:
        """`camera`'s live source changed state (a `realtime.stream.reconnect.StateChange`):
        stalled, reconnecting, live again, failed. Called on the inference thread."""

    def close(self) -> None:
        """Flush and release; called once, after the inference loop ended."""


class CameraStream:
    """One camera's side of the inference loop: its ring, feature window and GRU state,
    smoothing, pace, sinks, figures and newest result. Driven by `InferenceEngine` only."""

    def __init__(
        self,
        name: str,
        ring: FrameRing,
        classifier: ActionClassifier,
        *,
        metrics: PipelineMetrics,
        sinks: list[Sink] = (),
        smoother: ProbabilitySmoother | None = None,
        threshold: float = 0.0,
        source_state: Callable[[], SourceState] = lambda: SourceState.LIVE,
        source_events: Callable[[], list] = list,
    ):
        self.name = name
        self.ring = ring
        self.classifier = classifier
        self.metrics = metrics
        self.sinks = list(sinks)
        self.smoother = smoother or ProbabilitySmoother(1)
        self.threshold = threshold
        self.source_state = source_state
        self.source_events = source_events
        self.window = classifier.stream()  # the sliding window and the head over it
        self.pace = WindowPace(self.window.length, classifier.info.sampling_fps)
        self.ended = False  # its ring said END_OF_STREAM
        self._latest: tuple[Prediction, Frame] | None = None
        self._lock = threading.Lock()
        self._segment = 0

    def latest(self) -> tuple[Prediction, Frame] | None:
        with self._lock:
            return self._latest

    def forward_source_events(self) -> None:
        """Hand the source's state changes (stalled, reconnecting...) to the sinks."""
        for change in self.source_events():
            for sink in self.sinks:
                sink.on_source_state(self.name, change)

    def begin(self, frame: Frame) -> None:
        """Before `frame`'s features are used: a new segment restarts the window."""
        if frame.segment != self._segment:
            self._segment = frame.segment
            self.window.reset()
            self.pace.reset()
            self.smoother.reset()
            for sink in self.sinks:
                sink.on_gap(self.name)

    def finish(
        self, frame: Frame, feature: np.ndarray, backbone_ms: float, clock: Callable[[], float]
    ) -> Prediction:
        """The frame's feature joins the window; the head, the decision, the sinks."""
        t1 = clock()
        raw = self.window.push(feature)
        t2 = clock()
        self.pace.push(frame.source_time)
        probs = self.smoother.update(raw)
        labels = self.classifier.labels
        label, top_label, score = decide(labels, probs, self.threshold)
        timings = {
            "decode": frame.decode_ms,
            "preprocess": frame.preprocess_ms,
            "backbone": backbone_ms,
            "head": (t2 - t1) * 1000.0,
        }
        age_ms = (t2 - frame.captured_at) * 1000.0
        prediction = Prediction(
            frame=frame.index,
            sample=frame.sample,
            timestamp=frame.source_time,
            wall_time=time.time(),
            label=label,
            top_label=top_label,
            score=score,
            probs=probs_dict(labels, probs),
            window=self.window.fill,
            window_length=self.window.length,
            frame_age_ms=age_ms,
            timings_ms=timings,
            dropped=self.ring.dropped,
            source_state=self.source_state(),
            effective_fps=self.pace.effective_fps,
            window_span_s=self.pace.span_s,
            slow=self.pace.slow,
            camera=self.name,
        )
        self.metrics.record(timings, age_ms)
        for sink in self.sinks:
            sink.handle(prediction, frame)
        with self._lock:
            self._latest = (prediction, frame)
        return prediction


class InferenceEngine(threading.Thread):
    """Serves every camera's FrameRing with one backbone until all have ended or stop.

    Each turn takes the newest unread frame of up to `in_flight` cameras, round robin from the
    one after the last served (`in_flight` = how many requests the backbone runs at once to
    advantage, `Backbone.parallel_requests`), computes their features in one backbone call,
    then finishes each camera's prediction. With nothing to take it sleeps on `doorbell`,
    which every ring rings when it gets a frame or ends.
    """

    def __init__(
        self,
        streams: list[CameraStream],
        backbone: Backbone,
        *,
        stop: threading.Event,
        doorbell: threading.Event | None = None,
        in_flight: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(name="inference", daemon=True)
        if not streams:
            raise ValueError("no camera to serve")
        self.streams = list(streams)
        self.backbone = backbone
        self.stop_event = stop
        self.doorbell = doorbell or threading.Event()
        self.in_flight = max(1, in_flight)
        self.clock = clock
        self.failure: Failure | None = None
        self.output_closed = False  # a reader went away: the run ended early, by design
        self.finished = threading.Event()
        self._next = 0  # the camera served first in the next turn

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                self.doorbell.clear()  # before looking: a frame put after this rings again
                batch = self.take_turn()
                for stream in self.streams:  # before the frames: they happened before them
                    stream.forward_source_events()
                if self.stop_event.is_set() or all(s.ended for s in self.streams):
                    break
                if batch:
                    self.process(batch)
                else:
                    self.doorbell.wait(0.2)
            for stream in self.streams:
                stream.forward_source_events()
        except OutputFailed:  # the sink keeps its own `failure`
            self.stop_event.set()
        except OutputClosed:
            self.output_closed = True
            self.stop_event.set()
        except Exception as exc:  # reported by the CLI as one line; outputs so far are kept
            self.failure = failed(f"inference failed: {type(exc).__name__}: {exc}", exc)
            self.stop_event.set()
        finally:
            self.finished.set()

    def take_turn(self) -> list[tuple[CameraStream, Frame]]:
        """The newest unread frame of up to `in_flight` cameras, round robin, each camera once."""
        batch = []
        count = len(self.streams)
        first = self._next
        for k in range(count):
            if len(batch) == self.in_flight:
                break
            i = (first + k) % count
            stream = self.streams[i]
            if stream.ended:
                continue
            item = stream.ring.take(timeout=0)
            if item is END_OF_STREAM:
                stream.ended = True
            elif item is not None:
                batch.append((stream, item))
                self._next = (i + 1) % count
        return batch

    def process(self, batch: list[tuple[CameraStream, Frame]]) -> list[Prediction]:
        for stream, frame in batch:
            stream.begin(frame)
        t0 = self.clock()
        images = np.stack([frame.image for _, frame in batch])
        if len(batch) == 1:
            features = self.backbone.extract(images)
        else:
            features = self.backbone.extract_parallel(images)
        # the time the frames shared the backbone, split evenly between them
        backbone_ms = (self.clock() - t0) * 1000.0 / len(batch)
        return [
            stream.finish(frame, feature, backbone_ms, self.clock)
            for (stream, frame), feature in zip(batch, features, strict=True)
        ]
