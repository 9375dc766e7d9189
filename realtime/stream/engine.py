"""The inference loop: frames in, predictions out, one backbone call per frame.

    FrameRing.take() -> backbone (1 frame) -> HeadStream.push (the frame's GRU input projection
    joins the window; masked GRU over it) -> smoothing / threshold -> Prediction
    -> sinks (JSONL, events, recorder) + latest for the UI

It runs on its own thread; the UI reads `latest()` from the main thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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

    def on_gap(self) -> None:
        """The source had a gap; the window restarts."""

    def on_source_state(self, change) -> None:
        """A live source changed state (a `realtime.stream.reconnect.StateChange`): stalled,
        reconnecting, live again, failed. Called on the inference thread."""

    def close(self) -> None:
        """Flush and release; called once, after the inference loop ended."""


class InferenceEngine(threading.Thread):
    """Consumes a FrameRing until end of stream or stop; keeps the newest result for the UI."""

    def __init__(
        self,
        ring: FrameRing,
        backbone: Backbone,
        classifier: ActionClassifier,
        *,
        stop: threading.Event,
        metrics: PipelineMetrics,
        sinks: list[Sink] = (),
        smoother: ProbabilitySmoother | None = None,
        threshold: float = 0.0,
        source_state: Callable[[], SourceState] = lambda: SourceState.LIVE,
        source_events: Callable[[], list] = list,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__(name="inference", daemon=True)
        self.ring = ring
        self.backbone = backbone
        self.classifier = classifier
        self.stop_event = stop
        self.metrics = metrics
        self.sinks = list(sinks)
        self.smoother = smoother or ProbabilitySmoother(1)
        self.threshold = threshold
        self.source_state = source_state
        self.source_events = source_events
        self.clock = clock
        self.window = classifier.stream()  # the sliding window and the head over it
        self.pace = WindowPace(self.window.length, classifier.info.sampling_fps)
        self.failure: Failure | None = None
        self.output_closed = False  # a reader went away: the run ended early, by design
        self.finished = threading.Event()
        self._latest: tuple[Prediction, Frame] | None = None
        self._lock = threading.Lock()
        self._segment = 0

    def latest(self) -> tuple[Prediction, Frame] | None:
        with self._lock:
            return self._latest

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                item = self.ring.take(timeout=0.2)
                self.forward_source_events()  # before the frame: they happened before it
                if item is None:
                    continue
                if item is END_OF_STREAM or self.stop_event.is_set():
                    break
                self.process(item)
            self.forward_source_events()
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

    def forward_source_events(self) -> None:
        """Hand the source's state changes (stalled, reconnecting...) to the sinks."""
        for change in self.source_events():
            for sink in self.sinks:
                sink.on_source_state(change)

    def process(self, frame: Frame) -> Prediction:
        if frame.segment != self._segment:
            self._segment = frame.segment
            self.window.reset()
            self.pace.reset()
            self.smoother.reset()
            for sink in self.sinks:
                sink.on_gap()
        t0 = self.clock()
        feature = self.backbone.extract(frame.image[None])[0]
        t1 = self.clock()
        raw = self.window.push(feature)
        t2 = self.clock()
        self.pace.push(frame.source_time)
        probs = self.smoother.update(raw)
        labels = self.classifier.labels
        label, top_label, score = decide(labels, probs, self.threshold)
        timings = {
            "decode": frame.decode_ms,
            "preprocess": frame.preprocess_ms,
            "backbone": (t1 - t0) * 1000.0,
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
        )
        self.metrics.record(timings, age_ms)
        for sink in self.sinks:
            sink.handle(prediction, frame)
        with self._lock:
            self._latest = (prediction, frame)
        return prediction
