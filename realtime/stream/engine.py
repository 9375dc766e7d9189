"""The inference loop: frames in, predictions out, one backbone computation per frame.

    FrameRing.take() (each camera's newest unread frame, cameras in turn)
    -> backbone (one shared by every camera; several frames in flight where it allows)
    -> per camera (`CameraStream`): HeadStream.push (the frame's GRU input projection joins
       that camera's window; masked GRU over it) -> smoothing / threshold -> Prediction
    -> that camera's sinks (JSONL, events, recorder) + its latest result for the UI

`InferenceEngine` serves every camera, with one worker thread per request the backbone can
have in flight; the UI reads `latest()` from the main thread. Fairness: the cameras are served
round robin from the one after the last served, and each take is a camera's newest unread
frame, so no camera starves and no frame is processed twice; what a camera had no time for is
counted as dropped by its ring.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from realtime.core.errors import Failure, failed
from realtime.head.classifier import ActionClassifier
from realtime.stream.capture import Frame, FrameRing
from realtime.stream.metrics import PipelineMetrics, WindowPace
from realtime.stream.postprocess import ProbabilitySmoother, decide
from realtime.stream.prediction import Prediction, probs_dict
from realtime.stream.reconnect import SourceState
from realtime.stream.turns import Doorbell, RoundRobin


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


Extract = Callable[[np.ndarray], np.ndarray]


class InferenceEngine(threading.Thread):
    """Serves every camera's FrameRing with one backbone until every camera has ended, or stop.

    One worker thread per extractor (`extractors`: ways to run the backbone that may run at the
    same time, each with its own interpreter or request: `Backbone.parallel_extractors`; one
    camera, or a backend without them: `[backbone.extract]`). Each worker takes the newest
    unread frame of the next camera round robin, from the one after the last served, that has
    no frame in flight (so each camera's frames are finished in order, one at a time),
    computes its features, and finishes its prediction under one lock (so the sinks see one
    caller at a time). With nothing to take, a worker sleeps on `doorbell`. Several requests
    are thus in flight without a barrier between them: a slow frame holds up only its camera.
    """

    def __init__(
        self,
        streams: list[CameraStream],
        extractors: list[Extract],
        *,
        stop: threading.Event,
        doorbell: Doorbell | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_ended: bool = False,
    ):
        """`open_ended`: cameras join (`add`) and leave (`retire`) while it runs, and it runs
        until `stop` even with no camera (a cluster worker's engine); otherwise it serves
        `streams` until they have all ended."""
        super().__init__(name="inference", daemon=True)
        if not extractors or not (streams or open_ended):
            raise ValueError("no camera to serve, or nothing to serve it with")
        self.open_ended = open_ended
        self.streams = list(streams)
        self.extractors = list(extractors)
        self.stop_event = stop
        self.doorbell = doorbell or Doorbell()
        self.clock = clock
        self.failure: Failure | None = None
        self.output_closed = False  # a reader went away: the run ended early, by design
        self.finished = threading.Event()
        self._finishing = threading.Lock()  # heads, decisions, sinks: one frame at a time
        self.turns = RoundRobin([stream.ring for stream in self.streams], self.doorbell)
        self._retired: set[int] = set()  # indices of cameras that left (under `_finishing`)

    def add(self, stream: CameraStream) -> None:
        """A camera joins a running open-ended engine (from any thread)."""
        if not self.open_ended:
            raise RuntimeError("cameras join an open-ended engine only")
        with self._finishing:  # the stream is in `streams` before its first frame is taken
            self.streams.append(stream)
            self.turns.add(stream.ring)

    def retire(self, stream: CameraStream) -> None:
        """A camera leaves: its frames are no longer taken, and a frame of it in flight is not
        finished (its features are thrown away): once this returns, nothing more comes from
        it, and its own sinks may be closed."""
        with self._finishing:
            index = self.streams.index(stream)
            self._retired.add(index)
            self.turns.retire(index)

    @property
    def in_flight(self) -> int:
        """How many frames (of different cameras) may be computed at once."""
        return len(self.extractors)

    def run(self) -> None:
        helpers = [
            threading.Thread(target=self._work, args=(extract,), name=f"inference-{k}", daemon=True)
            for k, extract in enumerate(self.extractors[1:], start=2)
        ]
        try:
            for helper in helpers:
                helper.start()
            self._work(self.extractors[0])
            for helper in helpers:
                helper.join()
            with self._finishing:
                self.forward_source_events()
        except Exception as exc:
            self._failed(exc)
        finally:
            self.finished.set()

    def _work(self, extract: Extract) -> None:
        try:
            while not self.stop_event.is_set():
                seen = self.doorbell.rings
                taken = self.turns.take()
                if taken is None:
                    with self._finishing:
                        self.forward_source_events()  # also runs each source's watchdog
                    if self.turns.all_ended and not self.open_ended:
                        return
                    self.doorbell.wait_after(seen, 0.2)
                    continue
                index, frame = taken
                try:
                    self.process(index, frame, extract)
                finally:
                    self.turns.release(index)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        """Stop the run; an output's failure is its own (`Sink.failure`), a reader that went
        away ends it quietly, anything else is the engine's one line."""
        if isinstance(exc, OutputClosed):
            self.output_closed = True
        elif not isinstance(exc, OutputFailed) and self.failure is None:
            self.failure = failed(f"inference failed: {type(exc).__name__}: {exc}", exc)
        self.stop_event.set()

    def forward_source_events(self) -> None:
        for stream in list(self.streams):
            stream.forward_source_events()

    def process(self, index: int, frame: Frame, extract: Extract) -> Prediction | None:
        """One frame of camera `index`: its features (`extract`, at the same time as other
        workers'), then its prediction, after the state changes that came before it; None if
        the run stopped or the camera left meanwhile."""
        t0 = self.clock()
        feature = extract(frame.image[None])[0]
        backbone_ms = (self.clock() - t0) * 1000.0
        stream = self.streams[index]
        with self._finishing:
            if self.stop_event.is_set() or index in self._retired:
                return None
            self.forward_source_events()
            stream.begin(frame)
            return stream.finish(frame, feature, backbone_ms, self.clock)
