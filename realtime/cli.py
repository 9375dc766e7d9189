"""`python -m realtime`: classify the action in a live video stream.

Bad input never produces a traceback: every `InputError` becomes one `error: ...` line on
stderr and exit code 2. Inputs are checked cheapest first (arguments, model metadata, the
source) so that mistakes are reported before TensorFlow is even imported.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.table import Table

from realtime.backbones import backbone_spec_from_metadata, load_backbone
from realtime.backbones.base import CHOICES as BACKEND_CHOICES
from realtime.backbones.base import default_cache_dir
from realtime.backbones.int8 import int8_head_report
from realtime.core.cliargs import (
    STOP_SIGNALS,
    HelpFormatter,
    OneLineErrorParser,
    int_up_to,
    probability,
    run_reporting_errors,
    seconds,
    seconds_or_zero,
    stop_early_on_signals,
)
from realtime.core.errors import InputError, first_line
from realtime.frames.sources import FILE, CaptureOptions, open_source, parse_source, reopen_source
from realtime.head.classifier import ActionClassifier
from realtime.head.modeldir import DEFAULT_MODEL_DIR, check_compatible, read_model_info
from realtime.outputs.paths import Output, Protected, check_outputs
from realtime.outputs.recording import EXTENSIONS, VideoRecorder
from realtime.outputs.text import EventSink, JsonlSink
from realtime.stream.pipeline import Pipeline, RunSettings
from realtime.stream.reconnect import OpenAttempt, ReconnectPolicy, parse_reconnect
from realtime.ui.display import choose_ui


def _reconnect_attempts(text: str) -> int | None:
    try:
        return parse_reconnect(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        prog="python -m realtime",
        description="Classify the action in a webcam, IP-camera or video-file stream, live.",
        formatter_class=HelpFormatter,
    )
    src = p.add_argument_group("source")
    src.add_argument(
        "--source",
        "-s",
        required=True,
        help="camera index (0), video file (clip.avi, .mp4, .gif...), or rtsp:// / http(s):// URL",
    )
    src.add_argument(
        "--every-frame",
        action="store_true",
        help="deterministic replay: classify every sampled frame, drop nothing (files; no pacing)",
    )
    src.add_argument("--loop", action="store_true", help="replay a file forever")
    src.add_argument(
        "--max-frames",
        type=int_up_to(10**12),
        metavar="N",
        help="stop after reading N frames from the source",
    )
    src.add_argument(
        "--open-timeout",
        type=seconds,
        default=10.0,
        metavar="S",
        help="give up opening a network stream after S seconds",
    )
    src.add_argument(
        "--read-timeout",
        type=seconds,
        default=5.0,
        metavar="S",
        help="a network read that takes longer than S seconds fails",
    )
    src.add_argument(
        "--rtsp-transport", choices=("tcp", "udp"), help="RTSP transport (default: FFmpeg's choice)"
    )
    src.add_argument(
        "--reconnect",
        type=_reconnect_attempts,
        default="forever",
        metavar="N|forever",
        help="when a live stream that was playing drops, reopen it up to N times per outage "
        "(0 = never), with exponential backoff from 0.5 s up to 10 s and jitter",
    )

    mdl = p.add_argument_group("model")
    mdl.add_argument(
        "--model",
        "-m",
        default=str(DEFAULT_MODEL_DIR),
        metavar="DIR",
        help="model directory (head weights + metadata.json)",
    )
    mdl.add_argument(
        "--backbone",
        metavar="NAME|FILE.tflite",
        help="feature extractor: inception_v3 or a .tflite file "
        "(default: the one the model was trained with)",
    )
    mdl.add_argument(
        "--backbone-weights",
        metavar="FILE",
        help="InceptionV3 ImageNet weights file, for machines without internet",
    )
    mdl.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_CHOICES,
        help="how InceptionV3 runs; exported runtimes are converted from the Keras model once "
        "and cached (auto: the fastest available that matches Keras within 1%%; "
        "see docs/performance.md)",
    )
    mdl.add_argument(
        "--calibration",
        action="append",
        metavar="VIDEO|DIR",
        help="with --backend openvino-int8: videos (or folders of videos) like the ones it will "
        "see, to calibrate int8 on; quantized once and cached (repeatable)",
    )
    mdl.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where converted backbones are cached "
        "(default: $REALTIME_ACTION_CACHE or ~/.cache/realtime-action)",
    )
    mdl.add_argument(
        "--threads",
        type=int_up_to(1024),
        metavar="N",
        help="CPU threads for the backbone (default: all cores)",
    )

    out = p.add_argument_group("output")
    out.add_argument(
        "--ui",
        default="auto",
        choices=("auto", "console", "window", "none"),
        help="auto: a window if there is a display, else the console",
    )
    out.add_argument(
        "--jsonl", metavar="PATH", help="write one JSON object per prediction ('-' = stdout)"
    )
    out.add_argument(
        "--events",
        metavar="PATH",
        help="write one JSON object per finished action segment ('-' = stdout)",
    )
    out.add_argument(
        "--output", "-o", metavar="FILE", help="record the annotated video (.mp4 or .avi)"
    )
    out.add_argument(
        "--smooth",
        type=int_up_to(10_000),
        default=1,
        metavar="N",
        help="average the last N probability vectors",
    )
    out.add_argument(
        "--threshold",
        type=probability,
        default=0.0,
        metavar="P",
        help="report 'no action' when the top probability is below P",
    )
    out.add_argument(
        "--hysteresis",
        type=int_up_to(10_000),
        default=3,
        metavar="N",
        help="--events: a segment opens/closes after N agreeing predictions",
    )
    out.add_argument(
        "--min-duration",
        type=seconds_or_zero,
        default=0.5,
        metavar="S",
        help="--events: drop segments shorter than S seconds",
    )
    out.add_argument("--quiet", "-q", action="store_true", help="no summary at exit")
    return p


def _summary(pipeline, console: Console) -> None:
    status = pipeline.status()
    table = Table(title="realtime-action summary", title_justify="left", show_edge=False)
    table.add_column("figure")
    table.add_column("mean", justify="right")
    table.add_column("p95", justify="right")
    for row in pipeline.metrics.summary_rows():
        table.add_row(*row)
    console.print(table)
    console.print(
        f"frames read {status.frames_read}, sampled {status.frames_sampled}, "
        f"classified {status.classified}, dropped {pipeline.dropped_total}, "
        f"skipped {status.frames_skipped}; {status.elapsed_s:.1f} s; source {status.state.value}; "
        f"backbone {status.model}"
    )
    capture = pipeline.capture
    if capture.stats.frames_stale or capture.monitor.reconnects:
        console.print(
            f"reconnects {capture.monitor.reconnects}; stale frames discarded unread "
            f"{capture.stats.frames_stale} (buffered before reading began)"
        )


def _check_outputs(args, spec, model_dir: Path, backbone_spec: str) -> None:
    """Refuse outputs that would overwrite an input of the run, or each other, or that cannot
    be written (`realtime.outputs.paths`); before anything is opened."""
    protected = [Protected("the model directory", model_dir, tree=True)]
    if spec.kind == FILE:
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


def _sinks(args, fps: float, source_size: tuple[int, int], opened: list) -> None:
    if args.jsonl:
        opened.append(JsonlSink(args.jsonl))
    if args.events:
        opened.append(EventSink(args.events, args.hysteresis, args.min_duration))
    if args.output:
        opened.append(VideoRecorder(args.output, fps, source_size))


def _open_interruptibly(spec, options):
    """Open the source on a helper thread, so that a signal (Ctrl-C, SIGTERM, SIGHUP) during
    a slow network open is handled at once by the main thread instead of after the open
    timeout; the abandoned open is released when it returns."""
    attempt = OpenAttempt.made(lambda: open_source(spec, options), threading.Event())
    if attempt.result is None:
        raise InputError(attempt.error or f"could not open {spec}")
    return attempt.result


def run(args, console: Console) -> int:
    model_dir = Path(args.model)
    info = read_model_info(model_dir)
    backbone_spec = args.backbone or backbone_spec_from_metadata(info.backbone, model_dir)
    spec = parse_source(args.source)
    _check_outputs(args, spec, model_dir, backbone_spec)
    if args.every_frame and spec.is_live:
        raise InputError("--every-frame replays files; a live source cannot wait for the model")
    if args.loop and spec.is_live:
        raise InputError("--loop applies to video files only")
    options = CaptureOptions(args.open_timeout, args.read_timeout, args.rtsp_transport)
    source = _open_interruptibly(spec, options)
    sinks: list = []
    pipeline = None
    try:
        ui = choose_ui(args.ui, console)
        backbone = load_backbone(
            backbone_spec,
            args.backbone_weights,
            args.threads,
            backend=args.backend,
            cache_dir=args.cache_dir,
            calibration=args.calibration,
        )
        check_compatible(info, backbone.describe(), model_dir)
        classifier = ActionClassifier(model_dir, info)
        head_report = int8_head_report(backbone, classifier)
        if head_report:
            console.print(head_report, highlight=False, markup=False, soft_wrap=True)
        _sinks(args, info.sampling_fps or source.fps, source.size, sinks)
        settings = RunSettings(
            every_frame=args.every_frame,
            loop=args.loop,
            max_frames=args.max_frames,
            smooth=args.smooth,
            threshold=args.threshold,
            keep_display=ui.name == "window" or bool(args.output),
            reconnect=ReconnectPolicy(attempts=args.reconnect),
        )
        pipeline = Pipeline(
            source,
            backbone,
            classifier,
            settings,
            sinks,
            # live sources reopen without open_source's first-open extras (see reopen_source)
            reopen=(lambda: reopen_source(spec, options))
            if spec.is_live
            else (lambda: open_source(spec, options)),
        )
        source = None  # the pipeline owns it now

        def on_signal(signum, _frame):
            pipeline.request_stop()

        previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
        try:
            try:
                pipeline.start()
            except Exception as exc:  # the warm-up ran the backbone and head on a blank frame
                raise InputError(
                    f"the model in {model_dir} does not run on this backbone "
                    f"({type(exc).__name__}: {first_line(exc, 120)})"
                ) from None
            ui.run(pipeline)
        finally:
            pipeline.request_stop()
            problems = pipeline.close()
            for s, handler in previous.items():
                signal.signal(s, handler)
        if not args.quiet:
            _summary(pipeline, Console(stderr=True))
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1 if problems else 0
    finally:
        if source is not None:
            source.release()
        if pipeline is None:
            for sink in sinks:
                sink.close()


def main(argv: list[str] | None = None) -> int:
    # Until the run installs its own handlers, a stop signal ends the command at once, exit 0
    # (nothing was produced yet); afterwards it stops the run, which flushes every output.
    stop_early_on_signals()
    args = build_parser().parse_args(argv)
    to_stdout = "-" in (args.jsonl, args.events)
    console = Console(stderr=to_stdout)
    return run_reporting_errors(lambda: run(args, console))
