"""One run of `python -m realtime`, assembled in three steps the CLI reads as its story:

    plan = plan_run(args)                       # every cheap check; nothing is opened yet
    pipeline, ui = assemble(plan, args, console)  # source, backbone, head, outputs, pipeline
    problems = run_pipeline(pipeline, ui, plan)   # signals, warm-up, the UI; always closed

Ownership is explicit. While `assemble` opens things, an `ExitStack` owns them: if a later step
fails (a backbone that will not load, an output that cannot be opened), everything opened so
far is closed in reverse order. Once the `Pipeline` is built it owns the source and the outputs,
and `Pipeline.close()` (run by `run_pipeline` however the run ends) stops and joins its threads,
releases the source and flushes and closes every output, in that order.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from realtime.backbones import backbone_spec_from_metadata, load_backbone
from realtime.backbones.base import default_cache_dir
from realtime.backbones.int8 import int8_head_report
from realtime.core.cliargs import STOP_SIGNALS
from realtime.core.errors import Failure, InputError, first_line
from realtime.frames.sources import (
    CaptureOptions,
    SourceKind,
    SourceSpec,
    VideoSource,
    open_source,
    parse_source,
    reopen_source,
)
from realtime.head.classifier import ActionClassifier
from realtime.head.modeldir import ModelInfo, check_compatible, read_model_info
from realtime.outputs.paths import Output, Protected, check_outputs
from realtime.outputs.recording import EXTENSIONS, VideoRecorder
from realtime.outputs.text import EventSink, JsonlSink
from realtime.stream.engine import Sink
from realtime.stream.pipeline import Pipeline, RunSettings
from realtime.stream.reconnect import OpenAttempt, ReconnectPolicy
from realtime.ui.display import UIMode, choose_ui


@dataclass(frozen=True)
class RunPlan:
    """What the checks decided, before anything is opened."""

    model_dir: Path
    info: ModelInfo
    backbone_spec: str  # `--backbone`, or what the model directory implies
    source: SourceSpec
    options: CaptureOptions


def plan_run(args) -> RunPlan:
    """Check everything that can be checked without opening anything, cheapest first: the
    model's metadata, the source's form, the outputs against the inputs."""
    model_dir = Path(args.model)
    info = read_model_info(model_dir)
    backbone_spec = args.backbone or backbone_spec_from_metadata(info.backbone, model_dir)
    spec = parse_source(args.source)
    check_run_outputs(args, spec, model_dir, backbone_spec)
    if args.every_frame and spec.is_live:
        raise InputError("--every-frame replays files; a live source cannot wait for the model")
    if args.loop and spec.is_live:
        raise InputError("--loop applies to video files only")
    options = CaptureOptions(args.open_timeout, args.read_timeout, args.rtsp_transport)
    return RunPlan(model_dir, info, backbone_spec, spec, options)


def check_run_outputs(args, spec: SourceSpec, model_dir: Path, backbone_spec: str) -> None:
    """Refuse outputs that would overwrite an input of the run, or each other, or that cannot
    be written (`realtime.outputs.paths`); before anything is opened."""
    protected = [Protected("the model directory", model_dir, tree=True)]
    if spec.kind is SourceKind.FILE:
        protected.append(Protected("the source video", Path(spec.target)))
    if backbone_spec.endswith(".tflite"):
        protected.append(Protected("the backbone", Path(backbone_spec)))
    if args.backbone_weights:
        protected.append(Protected("the backbone weights", Path(args.backbone_weights)))
    for item in args.calibration or ():
        protected.append(Protected("a calibration input", Path(item), tree=True))
    cache = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    protected.append(Protected("the backbone cache", cache, tree=True))
    named = (("--jsonl", args.jsonl), ("--events", args.events), ("--output", args.output))
    outputs = [Output(flag, path) for flag, path in named if path is not None]
    check_outputs(outputs, protected, video_extensions=EXTENSIONS)


def open_interruptibly(spec: SourceSpec, options: CaptureOptions) -> VideoSource:
    """Open the source on a helper thread, so that a signal (Ctrl-C, SIGTERM, SIGHUP) during
    a slow network open is handled at once by the main thread instead of after the open
    timeout; the abandoned open is released when it returns."""
    attempt = OpenAttempt.made(lambda: open_source(spec, options), threading.Event())
    if attempt.result is None:
        raise InputError(attempt.error or f"could not open {spec}")
    return attempt.result


def open_outputs(args, fps: float, size: tuple[int, int], opened: ExitStack) -> list[Sink]:
    """The outputs the arguments ask for, each closed by `opened` if a later one fails."""
    sinks: list[Sink] = []
    makers = (
        (args.jsonl, lambda: JsonlSink(args.jsonl)),
        (args.events, lambda: EventSink(args.events, args.hysteresis, args.min_duration)),
        (args.output, lambda: VideoRecorder(args.output, fps, size)),
    )
    for wanted, make in makers:
        if wanted:
            sink = make()
            opened.callback(sink.close)
            sinks.append(sink)
    return sinks


def assemble(plan: RunPlan, args, console: Console):
    """Open the source, choose the UI, load the backbone and the head, open the outputs and
    hand them to a `Pipeline`: (pipeline, ui). A failing step closes what was opened."""
    with ExitStack() as opened:
        source = open_interruptibly(plan.source, plan.options)
        opened.callback(source.release)
        ui = choose_ui(UIMode(args.ui), console)
        backbone = load_backbone(
            plan.backbone_spec,
            args.backbone_weights,
            args.threads,
            backend=args.backend,
            cache_dir=args.cache_dir,
            calibration=args.calibration,
        )
        check_compatible(plan.info, backbone.identity(), plan.model_dir)
        classifier = ActionClassifier(plan.model_dir, plan.info)
        report = int8_head_report(backbone, classifier)
        if report:
            console.print(report, highlight=False, markup=False, soft_wrap=True)
        sinks = open_outputs(args, plan.info.sampling_fps or source.fps, source.size, opened)
        settings = RunSettings(
            every_frame=args.every_frame,
            loop=args.loop,
            max_frames=args.max_frames,
            smooth=args.smooth,
            threshold=args.threshold,
            keep_display=ui.mode is UIMode.WINDOW or bool(args.output),
            reconnect=ReconnectPolicy(attempts=args.reconnect),
        )
        spec, options = plan.source, plan.options
        # live sources reopen without open_source's first-open extras (see reopen_source)
        reopen = reopen_source if spec.is_live else open_source
        pipeline = Pipeline(
            source, backbone, classifier, settings, sinks, reopen=lambda: reopen(spec, options)
        )
        opened.pop_all()  # the pipeline owns the source and the outputs now
    return pipeline, ui


@contextmanager
def signals_stop(pipeline: Pipeline) -> Iterator[None]:
    """While inside: Ctrl-C, SIGTERM and SIGHUP stop the run (every output is flushed)."""

    def on_signal(signum, _frame):
        pipeline.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_pipeline(pipeline: Pipeline, ui, plan: RunPlan) -> list[Failure]:
    """Warm up, start, show the UI until the end, a stop or a failure; the pipeline is closed
    however this ends. Returns what went wrong, one `Failure` each."""
    with signals_stop(pipeline), pipeline:
        try:
            pipeline.start()
        except Exception as exc:  # the warm-up ran the backbone and head on a blank frame
            raise InputError(
                f"the model in {plan.model_dir} does not run on this backbone "
                f"({type(exc).__name__}: {first_line(exc, 120)})"
            ) from None
        ui.run(pipeline)
    return pipeline.problems
