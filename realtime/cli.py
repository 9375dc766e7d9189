"""`python -m realtime`: classify the action in a live video stream.

Bad input never produces a traceback: every `InputError` becomes one `error: ...` line on
stderr and exit code 2. Inputs are checked cheapest first (arguments, model metadata, the
source) so that mistakes are reported before TensorFlow is even imported.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from realtime.app import assemble, plan_run, run_pipeline, serve_until_stopped
from realtime.backbones.base import CHOICES as BACKEND_CHOICES
from realtime.cameras import ONE_WAY
from realtime.core.cliargs import (
    VERBOSE_HELP,
    HelpFormatter,
    OneLineErrorParser,
    add_backbone_arguments,
    add_segment_arguments,
    configure_logging,
    int_up_to,
    probability,
    run_reporting_errors,
    seconds,
    stopping_early,
)
from realtime.head.modeldir import DEFAULT_MODEL_DIR
from realtime.stream.reconnect import parse_reconnect
from realtime.ui.display import UIMode
from realtime.web.address import TOKEN_ENV, parse_serve_address


def _reconnect_attempts(text: str) -> int | None:
    try:
        return parse_reconnect(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _serve_address(text: str):
    try:
        return parse_serve_address(text)
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
        action="append",
        metavar="SOURCE",
        help="camera index (0), video file (clip.avi, .mp4, .gif...), or rtsp:// / http(s):// "
        "URL; repeat for several cameras (named cam1, cam2... in this order)",
    )
    src.add_argument(
        "--cameras",
        metavar="FILE.toml",
        help="the cameras to watch, one [[camera]] table each (name, source, and optionally "
        "rtsp_transport, open_timeout, read_timeout, reconnect); instead of --source "
        "(docs/cameras.md)",
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
    add_backbone_arguments(mdl, BACKEND_CHOICES)
    mdl.add_argument(
        "--calibration",
        action="append",
        metavar="VIDEO|DIR",
        help="with --backend openvino-int8: videos (or folders of videos) like the ones it will "
        "see, to calibrate int8 on; quantized once and cached (repeatable)",
    )

    out = p.add_argument_group("output")
    out.add_argument(
        "--ui",
        default=UIMode.AUTO.value,
        choices=[mode.value for mode in UIMode],
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
    add_segment_arguments(out, "--events")
    web = p.add_argument_group("web (docs/web.md)")
    web.add_argument(
        "--serve",
        type=_serve_address,
        metavar="[HOST:]PORT",
        help="serve a live page of every camera, /api/latest, /api/events, /metrics "
        "(Prometheus) and /healthz; bound to 127.0.0.1 unless HOST is given (0: any free "
        "port); after the sources end it keeps serving until Ctrl-C",
    )
    web.add_argument(
        "--serve-token",
        metavar="TOKEN",
        help=f"ask for this token (Bearer header or ?token=) everywhere but /healthz; "
        f"needed beyond loopback (default: ${TOKEN_ENV}, which ps does not show)",
    )
    out.add_argument("--quiet", "-q", action="store_true", help="no summary at exit")
    out.add_argument("--verbose", "-v", action="store_true", help=VERBOSE_HELP)
    return p


def _summary(pipeline, console: Console) -> None:
    if len(pipeline.cameras) > 1:
        _cameras_summary(pipeline, console)
        return
    camera = pipeline.cameras[0]
    status = camera.status()
    table = Table(title="realtime-action summary", title_justify="left", show_edge=False)
    table.add_column("figure")
    table.add_column("mean", justify="right")
    table.add_column("p95", justify="right")
    for row in camera.metrics.summary_rows():
        table.add_row(*row)
    console.print(table)
    console.print(
        f"frames read {status.frames_read}, sampled {status.frames_sampled}, "
        f"classified {status.classified}, dropped {status.dropped}, "
        f"skipped {status.frames_skipped}; {status.elapsed_s:.1f} s; source {status.state.value}; "
        f"backbone {status.model}"
    )
    if status.frames_stale or status.reconnects:
        console.print(
            f"reconnects {status.reconnects}; stale frames discarded unread "
            f"{status.frames_stale} (buffered before reading began)"
        )


def _cameras_summary(pipeline, console: Console) -> None:
    """Per camera and in total: what was read, skipped, classified, dropped; rates; frame age.
    Plain aligned text: every name and figure whole, whatever the terminal's width."""
    statuses = [camera.status() for camera in pipeline.cameras]
    reconnects = any(status.reconnects for status in statuses)
    header = ["camera", "state", "read", "skipped", "classified", "dropped", "fps", "age p50",
              "age p95", *(["reconnects"] if reconnects else [])]  # fmt: skip
    elapsed = max(camera.metrics.elapsed_s() for camera in pipeline.cameras)

    def rate(count: int) -> str:
        return f"{count / elapsed:.1f}" if elapsed > 0 else "-"

    def dropped(count: int, classified: int) -> str:
        return f"{count} {count / max(count + classified, 1):.1%}"

    rows = []
    for camera, status in zip(pipeline.cameras, statuses, strict=True):
        ages = camera.metrics.frame_age
        seen = status.classified > 0
        rows.append([
            camera.name, status.state.value, str(status.frames_read), str(status.frames_skipped),
            str(status.classified), dropped(status.dropped, status.classified),
            rate(status.classified), f"{ages.percentile(50):.0f} ms" if seen else "-",
            f"{ages.percentile(95):.0f} ms" if seen else "-",
            *([str(status.reconnects)] if reconnects else []),
        ])  # fmt: skip
    total = [sum(getattr(status, name) for status in statuses)
             for name in ("frames_read", "frames_skipped", "classified", "dropped")]  # fmt: skip
    read, skipped, classified, lost = total
    rows.append(["total", "", str(read), str(skipped), str(classified), dropped(lost, classified),
                 rate(classified), "", "", *([""] if reconnects else [])])  # fmt: skip
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        return " ".join(
            cell.ljust(width) if k < 2 else cell.rjust(width)
            for k, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    text = ["realtime-action summary", line(header), "-" * len(line(header))]
    text += [line(row) for row in rows]
    text.append(
        f"{len(statuses)} cameras, {elapsed:.1f} s; backbone {pipeline.model_label}, "
        f"{pipeline.engine.in_flight} frame(s) in flight"
    )
    console.print("\n".join(text), highlight=False, markup=False, soft_wrap=True)


def run(args, console: Console) -> int:
    plan = plan_run(args)
    with assemble(plan, args, console) as run:
        problems = run_pipeline(run, plan)
        if not args.quiet:
            _summary(run.pipeline, Console(stderr=True))
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        serve_until_stopped(run)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    # Until the run installs its own handlers, a stop signal ends the command at once, exit 0
    # (nothing was produced yet); afterwards it stops the run, which flushes every output.
    return stopping_early(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.source) == bool(args.cameras):
        parser.error(ONE_WAY)
    configure_logging(args.verbose)
    to_stdout = "-" in (args.jsonl, args.events)
    console = Console(stderr=to_stdout)
    return run_reporting_errors(lambda: run(args, console))
