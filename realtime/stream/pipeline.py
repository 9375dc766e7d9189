"""One run: owns every camera's capture thread, the one inference thread and the sinks, and
stops them.

Threads: per camera a capture thread (source -> its FrameRing); the inference threads serving
every camera's ring with the one backbone, one per request it has in flight
(`realtime.stream.engine`); a recorder thread per recorded camera. The UI runs on the main
thread and only reads `Camera.status()` and `Camera.latest()`. Stopping is explicit: one
`threading.Event`, honoured by every loop; `close()` joins the threads, releases the sources
and flushes every output.

A camera changes nothing for the others: its source stalls, reconnects, ends or fails inside
its own capture thread; the inference loop goes on serving the rest, and the run ends when
every camera has ended (or on a stop).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from realtime.backbones.base import Backbone
from realtime.core.errors import Failure
from realtime.frames.sources import VideoSource
from realtime.head.classifier import ActionClassifier
from realtime.stream.capture import CaptureThread, FrameRing
from realtime.stream.engine import CameraStream, InferenceEngine, Sink
from realtime.stream.metrics import PipelineMetrics
from realtime.stream.postprocess import ProbabilitySmoother
from realtime.stream.reconnect import ReconnectPolicy, SourceState, StateChange
from realtime.stream.turns import Doorbell


@dataclass
class RunSettings:
    every_frame: bool = False
    loop: bool = False
    max_frames: int | None = None
    smooth: int = 1
    threshold: float = 0.0
    keep_display: bool = False


@dataclass(frozen=True)
class CameraSetup:
    """What the application hands the pipeline for one camera.

    `source` is the opened source, or None when it could not be opened at start (`open_error`
    says why): the camera's capture thread then retries it as `reconnect` allows.
    """

    name: str
    label: str  # what to show for the source (credentials redacted)
    live: bool
    source: VideoSource | None
    reopen: Callable[[], VideoSource] | None = None
    reconnect: ReconnectPolicy | None = None  # live sources; None = no reconnect
    sinks: tuple[Sink, ...] = ()  # this camera's own outputs (its recording)
    open_error: str = ""


@dataclass
class Status:
    """A consistent snapshot of one camera for the UIs and the summary."""

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
    camera: str = ""

    @property
    def state_text(self) -> str:
        """The state as the UIs and the page show it: with its detail, if any."""
        return self.state_detail or self.state.value


@dataclass
class Camera:
    """One camera of a run: its source, ring, capture thread, inference state and outputs."""

    name: str
    label: str
    ring: FrameRing
    capture: CaptureThread
    stream: CameraStream
    metrics: PipelineMetrics
    sinks: list[Sink] = field(default_factory=list)  # its own (the shared ones: Pipeline)
    model_label: str = ""
    #: what its capture thread honours: the run's stop, or (open-ended runs) its own, set
    #: when the camera leaves or the run stops
    stop: threading.Event = field(default_factory=threading.Event)
    left: bool = False  # it left an open-ended run (`Pipeline.remove_camera`)

    def latest(self):
        return self.stream.latest()

    def status(self) -> Status:
        snap = self.metrics.snapshot()
        stats = self.capture.stats
        return Status(
            source=self.label,
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
            camera=self.name,
        )


def source_events(capture: CaptureThread, live: bool) -> list[StateChange]:
    """A live source's state changes worth a JSONL line: not the first connect, nor the normal
    end of the run (file runs thus write predictions only)."""
    changes = capture.monitor.poll()
    if not live:
        return []
    quiet = (SourceState.ENDED, SourceState.STOPPED)
    return [c for c in changes if c.previous != SourceState.CONNECTING and c.state not in quiet]


class Pipeline:
    def __init__(
        self,
        cameras: list[CameraSetup],
        backbone: Backbone,
        classifier: ActionClassifier,
        settings: RunSettings,
        sinks: list[Sink],
        *,
        open_ended: bool = False,
    ):
        """`sinks` receive every camera's predictions (JSONL, events); each camera's own
        outputs come with its `CameraSetup`. `open_ended`: cameras join (`add_camera`) and
        leave (`remove_camera`) while it runs, and it runs until stopped, with no camera at
        times (a cluster worker: `realtime.cluster`); otherwise it ends with its cameras."""
        if not cameras and not open_ended:
            raise ValueError("a run needs at least one camera")
        self.open_ended = open_ended
        self.classifier = classifier
        self.backbone = backbone
        self.settings = settings
        self.sinks = list(sinks)
        self.stop_event = threading.Event()
        self.stop_requested = False  # True once someone asked the run to stop
        self.doorbell = Doorbell()
        self.model_label = f"{backbone.name} on {backbone.backend}"
        self.cameras = [self._camera(setup) for setup in cameras]
        # several cameras: as many frames in flight as the backend runs at once to advantage
        several = len(self.cameras) > 1 or open_ended
        extractors = backbone.parallel_extractors() if several else []
        if not open_ended:
            extractors = extractors[: len(self.cameras)]
        self.engine = InferenceEngine(
            [camera.stream for camera in self.cameras],
            extractors or [backbone.extract],
            stop=self.stop_event,
            doorbell=self.doorbell,
            open_ended=open_ended,
        )
        self._joining = threading.Lock()  # add_camera / remove_camera / close, one at a time
        self._started = False
        self.problems: list[Failure] | None = None  # set by close()

    @classmethod
    def single(
        cls,
        source: VideoSource,
        backbone: Backbone,
        classifier: ActionClassifier,
        settings: RunSettings,
        sinks: list[Sink],
        reopen: Callable[[], VideoSource] | None = None,
        reconnect: ReconnectPolicy | None = None,
        name: str = "cam1",
    ) -> Pipeline:
        """A run of one camera (the tests' and the benches' form)."""
        setup = CameraSetup(name, source.describe(), source.is_live, source, reopen, reconnect)
        return cls([setup], backbone, classifier, settings, sinks)

    def _camera(self, setup: CameraSetup) -> Camera:
        info = self.classifier.info
        settings = self.settings
        ring = FrameRing(info.window, settings.every_frame, doorbell=self.doorbell)
        stop = threading.Event() if self.open_ended else self.stop_event
        capture = CaptureThread(
            setup.source,
            ring,
            image_size=info.image_size,
            sampling_fps=info.sampling_fps,
            stop=stop,
            pace=not settings.every_frame and not setup.live,
            keep_display=settings.keep_display,
            loop=settings.loop,
            max_frames=settings.max_frames,
            reopen=setup.reopen,
            reconnect=setup.reconnect,
            live=setup.live,
            open_error=setup.open_error,
            name=f"capture-{setup.name}",
        )
        metrics = PipelineMetrics()
        stream = CameraStream(
            setup.name,
            ring,
            self.classifier,
            metrics=metrics,
            sinks=[*self.sinks, *setup.sinks],
            smoother=ProbabilitySmoother(settings.smooth),
            threshold=settings.threshold,
            source_state=lambda: capture.state,
            source_events=lambda: source_events(capture, setup.live),
        )
        return Camera(
            name=setup.name,
            label=setup.label,
            ring=ring,
            capture=capture,
            stream=stream,
            metrics=metrics,
            sinks=list(setup.sinks),
            model_label=self.model_label,
            stop=stop,
        )

    def add_camera(self, setup: CameraSetup) -> Camera:
        """An open-ended run: a camera joins (its capture starts at once if the run has
        started; its window starts empty). Names are unique among the cameras present."""
        with self._joining:
            if not self.open_ended:
                raise RuntimeError("cameras join an open-ended run only")
            if self.problems is not None:
                raise RuntimeError("the run is closed")
            if any(c.name == setup.name and not c.left for c in self.cameras):
                raise ValueError(f"camera {setup.name!r} is already in the run")
            camera = self._camera(setup)
            self.cameras.append(camera)
            self.engine.add(camera.stream)
            if self._started:
                camera.capture.start()
            return camera

    def remove_camera(self, name: str, join_timeout: float = 2.0) -> list[Failure]:
        """An open-ended run: camera `name` leaves. Its capture stops and releases the
        source, its unread frames are counted as dropped, its own outputs are closed; what
        went wrong with it is returned (its outputs' failures)."""
        with self._joining:
            camera = next((c for c in self.cameras if c.name == name and not c.left), None)
            if camera is None:
                raise KeyError(name)
            camera.left = True
            camera.stop.set()
            self.engine.retire(camera.stream)
            return self._release(camera, join_timeout)

    def _release(self, camera: Camera, join_timeout: float) -> list[Failure]:
        """A stopped camera (its `stop` set): its capture joined or its source released, its
        unread frames dropped, its own outputs closed; their failures."""
        capture = camera.capture
        if capture.ident is not None:  # started (a failed warm-up starts none)
            capture.join(join_timeout)
        elif capture.source is not None:
            capture.source.release()  # the capture thread releases its source when it ends
        camera.ring.drop_unread()  # never to be classified: `dropped` is final from here
        problems = []
        for sink in camera.sinks:
            sink.close()
            if sink.failure:
                problems.append(sink.failure)
        return problems

    def present(self) -> list[Camera]:
        """The cameras in the run now (an open-ended run's cameras come and go)."""
        return [camera for camera in list(self.cameras) if not camera.left]

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels

    def warm_up(self) -> None:
        """Run the backbone and the head once so the first frame does not pay for tracing."""
        info = self.classifier.info
        size = info.image_size
        blank = np.zeros((1, size, size, 3), np.uint8)
        for extract in self.engine.extractors:  # each interpreter or request the run uses
            extract(blank)
        mask = np.zeros(info.window, bool)
        mask[0] = True
        self.classifier.predict(np.zeros((info.window, info.feature_size), np.float32), mask)

    def start(self) -> None:
        """Warm up, then start the capture threads and the inference thread."""
        self.warm_up()
        with self._joining:
            for camera in self.cameras:
                camera.capture.start()
            self._started = True
        self.engine.start()

    def request_stop(self) -> None:
        """Stop the run (the window's q, any thread); `stop_requested` says so."""
        self.stop_requested = True
        self.stop_event.set()

    def request_stop_from_signal(self) -> None:
        """Stop the run, from a signal handler: only marks the request, taking no lock. A
        handler runs between two bytecodes of the main thread, which may be inside the very
        lock `Event.set` takes (setting the event while a second Ctrl-C arrives): that hung
        the run for good. The main thread's next `wait()` or `done` sets the stop event."""
        self.stop_requested = True

    def _honour_stop_request(self) -> None:
        if self.stop_requested and not self.stop_event.is_set():
            self.stop_event.set()

    @property
    def done(self) -> bool:
        self._honour_stop_request()
        return self.engine.finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the inference loop has finished (every camera ended, stop or error);
        the UIs call this (or `done`) on the main thread at least 4 times a second."""
        self._honour_stop_request()
        return self.engine.finished.wait(timeout)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, join_timeout: float = 2.0) -> list[Failure]:
        """Stop everything, join the threads, release the sources, flush and close the outputs.
        Returns the problems worth one line each (`problems`, also after a second call)."""
        if self.problems is not None:
            return self.problems
        with self._joining:
            return self._close(join_timeout)

    def _close(self, join_timeout: float) -> list[Failure]:
        self.problems = []
        self.stop_event.set()
        for camera in self.cameras:
            camera.stop.set()
        if self.engine.ident is not None:  # started (a failed warm-up starts none)
            self.engine.join(join_timeout)
        present = self.present()  # (those that left were released then)
        own = [problem for camera in present for problem in self._release(camera, join_timeout)]
        problems = self.problems
        for sink in self.sinks:
            sink.close()
            if sink.failure:
                problems.append(sink.failure)
        problems += own
        several = len(self.cameras) > 1 or self.open_ended
        if self.engine.failure:
            problems.append(self.engine.failure)
        for camera in present:
            failure = camera.capture.failure
            if failure is None:
                continue
            if camera.capture.stats.frames_read:
                message = f"source stopped early: {failure}"
            elif several:  # never delivered a frame: a camera that failed for good
                message = str(failure)
            else:
                continue  # one camera that never read: the open error was already an error
            if several:
                message = f"camera {camera.name}: {message}"
            problems.append(Failure(message, failure.exception))
        return problems
