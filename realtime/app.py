"""One run of `python -m realtime`, assembled in three steps the CLI reads as its story:

    plan = plan_run(args)                     # every cheap check; nothing is opened yet
    with assemble(plan, args, console) as run:  # cameras, backbone, head, outputs, pipeline
        problems = run_pipeline(run, plan)      # signals, warm-up, the UI; always closed

Ownership is explicit. While `assemble` opens things, an `ExitStack` owns them: if a later step
fails (a backbone that will not load, an output that cannot be opened), everything opened so
far is closed in reverse order. Once the `Pipeline` is built it owns the source and the outputs,
and `Pipeline.close()` (run by `run_pipeline` however the run ends) stops and joins its threads,
releases the source and flushes and closes every output, in that order. With `--serve`, the web
server is bound first (a port in use is found before anything slow) and closed last, by the
`Run` (`realtime.web` is imported only then).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from realtime.backbones import backbone_spec_from_metadata, load_backbone
from realtime.backbones.base import default_cache_dir
from realtime.backbones.int8 import int8_head_report
from realtime.cameras import CameraConfig, camera_configs, output_path
from realtime.core.cliargs import STOP_SIGNALS
from realtime.core.errors import Failure, InputError, first_line
from realtime.frames.sources import SourceKind, open_source, reopen_source
from realtime.head.classifier import ActionClassifier
from realtime.head.modeldir import ModelInfo, check_compatible, read_model_info
from realtime.outputs.paths import Output, Protected, check_outputs
from realtime.outputs.recording import EXTENSIONS, VideoRecorder
from realtime.outputs.text import EventSink, JsonlSink
from realtime.stream.engine import Sink
from realtime.stream.pipeline import CameraSetup, Pipeline, RunSettings
from realtime.stream.reconnect import OpenAttempt
from realtime.ui.display import UIMode, choose_ui
from realtime.web.address import serve_token

if TYPE_CHECKING:  # imported only when --serve is given
    from realtime.web.server import WebServer


@dataclass(frozen=True)
class RunPlan:
    """What the checks decided, before anything is opened."""

    model_dir: Path
    info: ModelInfo
    backbone_spec: str  # `--backbone`, or what the model directory implies
    cameras: tuple[CameraConfig, ...]
    serve_token: str | None = None  # --serve's token (None: open, on loopback)

    @property
    def several(self) -> bool:
        return len(self.cameras) > 1


def plan_run(args) -> RunPlan:
    """Check everything that can be checked without opening anything, cheapest first: the
    cameras (their file), the model's metadata, the outputs against the inputs."""
    cameras = tuple(camera_configs(args))
    model_dir = Path(args.model)
    info = read_model_info(model_dir)
    backbone_spec = args.backbone or backbone_spec_from_metadata(info.backbone, model_dir)
    check_run_outputs(args, cameras, model_dir, backbone_spec)
    if args.every_frame and any(camera.source.is_live for camera in cameras):
        raise InputError("--every-frame replays files; a live source cannot wait for the model")
    if args.loop and all(camera.source.is_live for camera in cameras):
        raise InputError("--loop applies to video files only")  # (the files among several)
    token = None
    if args.serve is not None:
        token = serve_token(args.serve_token, args.serve)
    elif args.serve_token is not None:
        raise InputError("--serve-token applies with --serve only")
    return RunPlan(model_dir, info, backbone_spec, cameras, token)


def check_run_outputs(args, cameras, model_dir: Path, backbone_spec: str) -> None:
    """Refuse outputs that would overwrite an input of the run, or each other, or that cannot
    be written (`realtime.outputs.paths`); before anything is opened."""
    protected = [Protected("the model directory", model_dir, tree=True)]
    for camera in cameras:
        if camera.source.kind is SourceKind.FILE:
            protected.append(Protected("the source video", Path(camera.source.target)))
    if args.cameras:
        protected.append(Protected("the cameras file", Path(args.cameras)))
    if backbone_spec.endswith(".tflite"):
        protected.append(Protected("the backbone", Path(backbone_spec)))
    if args.backbone_weights:
        protected.append(Protected("the backbone weights", Path(args.backbone_weights)))
    for item in args.calibration or ():
        protected.append(Protected("a calibration input", Path(item), tree=True))
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    protected.append(Protected("the backbone cache", cache, tree=True))
    named = [("--jsonl", args.jsonl), ("--events", args.events)]
    if args.output is not None:
        several = len(cameras) > 1
        named += [("--output", output_path(args.output, c.name, several)) for c in cameras]
    outputs = [Output(flag, path) for flag, path in named if path is not None]
    check_outputs(outputs, protected, video_extensions=EXTENSIONS)


def open_cameras(cameras, stop: threading.Event) -> list[OpenAttempt]:
    """Open every camera at once, each on a helper thread (`OpenAttempt`): a slow or dead
    network camera delays the start by its open timeout, not by the sum of them all, and a
    signal (Ctrl-C, SIGTERM, SIGHUP) during the opens is handled at once by the main thread;
    an abandoned open is released when it returns. One attempt per camera, in order."""
    attempts = [start_opening(camera) for camera in cameras]
    for attempt in attempts:
        attempt.result = attempt.wait(stop)
    return attempts


def start_opening(camera: CameraConfig) -> OpenAttempt:
    """`camera`'s source opening on a helper thread (`OpenAttempt`), started."""
    attempt = OpenAttempt(lambda: open_source(camera.source, camera.options))
    attempt.start()
    return attempt


def camera_setup(camera: CameraConfig, attempt: OpenAttempt) -> CameraSetup:
    """The `CameraSetup` of a camera whose open `attempt` has finished: one that did not open
    is retried by its reconnect policy (a file: never; it is left out)."""
    spec, options = camera.source, camera.options
    live = spec.is_live
    # live sources reopen without open_source's first-open extras (see reopen_source)
    reopen = reopen_source if live else open_source
    source = attempt.result
    return CameraSetup(
        name=camera.name,
        label=source.describe() if source is not None else str(spec),
        live=live,
        source=source,
        reopen=lambda: reopen(spec, options),
        reconnect=camera.reconnect if live else None,  # a file is never retried
        open_error=attempt.error or "",
    )


def camera_setups(plan: RunPlan, attempts: list[OpenAttempt], warn) -> list[CameraSetup]:
    """One `CameraSetup` per camera. A camera that did not open is retried by its reconnect
    policy (a file: never) after one warning; none opened at all is an InputError."""
    if all(attempt.result is None for attempt in attempts):
        camera, attempt = plan.cameras[0], attempts[0]
        reason = attempt.error or f"could not open {camera.source}"
        if plan.several:
            reason = f"no camera could be opened (camera {camera.name}: {reason})"
        raise InputError(reason)
    setups = []
    for camera, attempt in zip(plan.cameras, attempts, strict=True):
        if attempt.result is None:
            retries = camera.source.is_live and camera.reconnect.enabled
            retry = "retrying as its reconnect policy allows" if retries else "left out"
            warn(f"camera {camera.name}: {attempt.error or 'could not open'}; {retry}")
        setups.append(camera_setup(camera, attempt))
    return setups


def open_outputs(args, plan: RunPlan, setups, opened: ExitStack):
    """The outputs the arguments ask for, each closed by `opened` if a later one fails: the
    sinks every camera writes to (JSONL, events) and each camera's own (its recording)."""
    shared: list[Sink] = []
    makers = (
        (args.jsonl, lambda: JsonlSink(args.jsonl)),
        (args.events, lambda: EventSink(args.events, args.hysteresis, args.min_duration)),
    )
    for wanted, make in makers:
        if wanted:
            sink = make()
            opened.callback(sink.close)
            shared.append(sink)
    if not args.output:
        return shared, setups
    recorded = []
    for setup in setups:
        if setup.source is None:  # its frame size is unknown: nothing to record into
            recorded.append(setup)
            continue
        source = setup.source
        path = output_path(args.output, setup.name, plan.several)
        recorder = VideoRecorder(path, plan.info.sampling_fps or source.fps, source.size)
        opened.callback(recorder.close)
        recorded.append(replace(setup, sinks=(*setup.sinks, recorder)))
    return shared, recorded


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


@dataclass
class Run:
    """What `assemble` opened: the pipeline, the UI that shows it, and the web server with
    `--serve` (closed on leaving the `with`, after everything else)."""

    pipeline: Pipeline
    ui: object
    server: WebServer | None = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.pipeline.close()
        if self.server is not None:
            self.server.close()


def open_server(args, plan: RunPlan, opened: ExitStack):
    """With `--serve`: the web server, bound now (not serving yet), closed by `opened`; its
    feed keeps each camera's last minute for the page."""
    if args.serve is None:
        return None
    from realtime.web.server import WebFeed, WebServer

    names = [camera.name for camera in plan.cameras]
    feed = WebFeed(names, plan.info.labels, hysteresis=args.hysteresis,
                   min_duration=args.min_duration)  # fmt: skip
    server = WebServer(args.serve, plan.serve_token, feed)
    opened.callback(server.close)
    return server


def assemble(plan: RunPlan, args, console: Console) -> Run:
    """Bind the web server (`--serve`), open the cameras, choose the UI, load the backbone and
    the head, open the outputs and hand them to a `Pipeline`. A failing step closes what was
    opened."""
    with ExitStack() as opened:
        server = open_server(args, plan, opened)
        attempts = open_cameras(plan.cameras, threading.Event())
        for attempt in attempts:
            if attempt.result is not None:
                opened.callback(attempt.result.release)
        setups = camera_setups(plan, attempts, warn)
        ui = choose_ui(UIMode(args.ui), console)
        backbone = load_backbone(
            plan.backbone_spec,
            args.backbone_weights,
            args.threads,
            backend=args.backend,
            cache_dir=args.cache_dir,
            calibration=args.calibration,
            pooling=plan.info.backbone.pooling,
            motion=plan.info.backbone.motion,
        )
        check_compatible(plan.info, backbone.identity(), plan.model_dir)
        classifier = ActionClassifier(plan.model_dir, plan.info)
        report = int8_head_report(backbone, classifier)
        if report:
            console.print(report, highlight=False, markup=False, soft_wrap=True)
        sinks, setups = open_outputs(args, plan, setups, opened)
        settings = RunSettings(
            every_frame=args.every_frame,
            loop=args.loop,
            max_frames=args.max_frames,
            smooth=args.smooth,
            threshold=args.threshold,
            keep_display=ui.mode is UIMode.WINDOW or bool(args.output) or server is not None,
        )
        if server is not None:
            sinks.append(server.feed)
        pipeline = Pipeline(setups, backbone, classifier, settings, sinks)
        if server is not None:
            server.start(pipeline)
            print(f"serving {server.url}{_access(plan)}", file=sys.stderr, flush=True)
        opened.pop_all()  # the pipeline owns the sources and the outputs now
    return Run(pipeline, ui, server)


def _access(plan: RunPlan) -> str:
    return " (token required; /healthz open)" if plan.serve_token else ""


class StopFlag:
    """Raised by a signal handler without taking a lock (a plain attribute: see
    `Pipeline.request_stop_from_signal`), polled by the main thread."""

    def __init__(self):
        self.raised = False

    def raise_(self) -> None:
        self.raised = True


@contextmanager
def signals_call(stop) -> Iterator[None]:
    """While inside: Ctrl-C, SIGTERM and SIGHUP call `stop()`, which must take no lock (the
    pipeline's `request_stop_from_signal`: the run stops and every output is flushed)."""

    def on_signal(signum, _frame):
        stop()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_pipeline(run: Run, plan: RunPlan) -> list[Failure]:
    """Warm up, start, show the UI until the end, a stop or a failure; the pipeline is closed
    however this ends. Returns what went wrong, one `Failure` each."""
    pipeline, ui = run.pipeline, run.ui
    with signals_call(pipeline.request_stop_from_signal), pipeline:
        try:
            pipeline.start()
        except Exception as exc:  # the warm-up ran the backbone and head on a blank frame
            raise InputError(
                f"the model in {plan.model_dir} does not run on this backbone "
                f"({type(exc).__name__}: {first_line(exc, 120)})"
            ) from None
        ui.run(pipeline)
    problems = pipeline.problems
    if run.server is not None:
        problems = [*problems, *run.server.failures()]
    return problems


def serve_until_stopped(run: Run) -> None:
    """`--serve` after a run that ended by itself (its files ended, --max-frames): the page,
    the API and the metrics stay up with the final figures until Ctrl-C (or SIGTERM, SIGHUP).
    A run stopped by the user ends at once."""
    if run.server is None or run.pipeline.stop_requested:
        return
    print(
        f"every camera has ended; still serving {run.server.url} (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    stopped = StopFlag()
    with signals_call(stopped.raise_):
        while not stopped.raised:
            time.sleep(0.2)
