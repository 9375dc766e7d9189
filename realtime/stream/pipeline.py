"""One run: owns the capture thread, the inference thread and the sinks, and stops them.

Threads: capture (source -> FrameRing), inference (FrameRing -> predictions), an optional
recorder; the UI runs on the main thread and only reads `status()` and `latest()`.
Stopping is explicit: one `threading.Event`, honoured by every loop; `close()` joins the
threads, releases the source and flushes every output.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from realtime.backbones.base import Backbone
from realtime.core.errors import Failure
from realtime.frames.sources import VideoSource
from realtime.head.classifier import ActionClassifier
from realtime.stream.capture import CaptureThread, FrameRing
from realtime.stream.engine import InferenceEngine, Sink
from realtime.stream.metrics import PipelineMetrics
from realtime.stream.postprocess import ProbabilitySmoother
from realtime.stream.reconnect import ReconnectPolicy, SourceState, StateChange


@dataclass
class RunSettings:
    every_frame: bool = False
    loop: bool = False
    max_frames: int | None = None
    smooth: int = 1
    threshold: float = 0.0
    keep_display: bool = False
    reconnect: ReconnectPolicy | None = None  # live sources; None = no reconnect


@dataclass
class Status:
    """A consistent snapshot for the UIs and the summary."""

    source: str
    model: str  # which backbone runs, and how: "inception_v3/imagenet on openvino-bf16"
    state: SourceState
    frames_read: int
    frames_sampled: int
    frames_skipped: int
    classified: int
    dropped: int
    fps: float
    stages_ms: dict
    frame_age_ms: float
    elapsed_s: float
    state_detail: str = ""  # e.g. "reconnecting 2/5 in 1.0 s"
    reconnects: int = 0  # a live source reopened after it was lost
    frames_stale: int = 0  # buffered before reading began, discarded unread


class Pipeline:
    def __init__(
        self,
        source: VideoSource,
        backbone: Backbone,
        classifier: ActionClassifier,
        settings: RunSettings,
        sinks: list[Sink],
        reopen=None,
    ):
        self.source = source
        self.classifier = classifier
        self.settings = settings
        self.sinks = sinks
        self.stop_event = threading.Event()
        self.metrics = PipelineMetrics()
        info = classifier.info
        self.ring = FrameRing(info.window, keep_every_frame=settings.every_frame)
        self.capture = CaptureThread(
            source,
            self.ring,
            image_size=info.image_size,
            sampling_fps=info.sampling_fps,
            stop=self.stop_event,
            pace=not settings.every_frame and not source.is_live,
            keep_display=settings.keep_display,
            loop=settings.loop,
            max_frames=settings.max_frames,
            reopen=reopen,
            reconnect=settings.reconnect,
        )
        self.engine = InferenceEngine(
            self.ring,
            backbone,
            classifier,
            stop=self.stop_event,
            metrics=self.metrics,
            sinks=sinks,
            smoother=ProbabilitySmoother(settings.smooth),
            threshold=settings.threshold,
            source_state=lambda: self.capture.state,
            source_events=self._source_events,
        )
        self.problems: list[Failure] | None = None  # set by close()
        self.source_label = source.describe()
        self.model_label = f"{backbone.name} on {backbone.backend}"

    def _source_events(self) -> list[StateChange]:
        """A live source's state changes worth a JSONL line: not the first connect, nor the
        normal end of the run (file runs thus write predictions only)."""
        changes = self.capture.monitor.poll()
        if not self.source.is_live:
            return []
        quiet = (SourceState.ENDED, SourceState.STOPPED)
        return [c for c in changes if c.previous != SourceState.CONNECTING and c.state not in quiet]

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels

    def warm_up(self) -> None:
        """Run the backbone and the head once so the first frame does not pay for tracing."""
        info = self.classifier.info
        size = info.image_size
        self.engine.backbone.extract(np.zeros((1, size, size, 3), np.uint8))
        mask = np.zeros(info.window, bool)
        mask[0] = True
        self.classifier.predict(np.zeros((info.window, info.feature_size), np.float32), mask)

    def start(self) -> None:
        """Warm up, then start the capture and inference threads."""
        self.warm_up()
        self.capture.start()
        self.engine.start()

    def request_stop(self) -> None:
        self.stop_event.set()

    @property
    def done(self) -> bool:
        return self.engine.finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the inference loop has finished (end of stream, stop or error)."""
        return self.engine.finished.wait(timeout)

    def latest(self):
        return self.engine.latest()

    def status(self) -> Status:
        snap = self.metrics.snapshot()
        stats = self.capture.stats
        return Status(
            source=self.source_label,
            model=self.model_label,
            state=self.capture.state,
            frames_read=stats.frames_read,
            frames_sampled=stats.frames_sampled,
            frames_skipped=stats.frames_skipped,
            classified=snap.classified,
            dropped=self.ring.dropped,
            fps=snap.fps,
            stages_ms=snap.stages_ms,
            frame_age_ms=snap.frame_age_ms,
            elapsed_s=self.metrics.elapsed_s(),
            state_detail=self.capture.monitor.describe(),
            reconnects=self.capture.monitor.reconnects,
            frames_stale=stats.frames_stale,
        )

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, join_timeout: float = 2.0) -> list[Failure]:
        """Stop everything, join the threads, release the source, flush and close the outputs.
        Returns the problems worth one line each (`problems`, also after a second call)."""
        if self.problems is not None:
            return self.problems
        self.problems = []
        self.stop_event.set()
        for thread in (self.engine, self.capture):
            if thread.ident is not None:  # started (a failed warm-up starts neither)
                thread.join(join_timeout)
        if self.capture.ident is None:  # the capture thread releases its source when it ends
            self.source.release()
        self.ring.drop_unread()  # never to be classified: `dropped` is final from here on
        problems = self.problems
        for sink in self.sinks:
            sink.close()
            if sink.failure:
                problems.append(sink.failure)
        if self.engine.failure:
            problems.append(self.engine.failure)
        capture = self.capture.failure
        if capture and self.capture.stats.frames_read:
            problems.append(Failure(f"source stopped early: {capture}", capture.exception))
        return problems
