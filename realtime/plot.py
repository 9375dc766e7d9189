"""`python -m realtime.plot RUN.jsonl -o timeline.png`: what the model said over a run.

One panel per camera: every class's probability over the source's time, and the action
segments as bands in the class's colour (those of `--events FILE` when given, else found from
the predictions as `--events` finds them: `--hysteresis`, `--min-duration`, restarting where
the window restarted after a gap). Reads the JSONL `python -m realtime --jsonl` writes, of one
camera or several (`--camera` picks some). matplotlib draws it; it is imported only here.

Bad input (no such file, a line that is not JSON, no prediction, an unknown camera, an output
that would overwrite an input) is one `error:` line, exit 2. The image is written to a
temporary file beside the output and renamed over it, so a failed plot never leaves half a
file, nor destroys one already there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from realtime.core.cliargs import (
    HelpFormatter,
    OneLineErrorParser,
    add_segment_arguments,
    configure_logging,
    run_reporting_errors,
)
from realtime.core.errors import InputError, first_line
from realtime.outputs.paths import Output, Protected, check_outputs
from realtime.stream.postprocess import Segment, SegmentTracker

#: What matplotlib can write, by extension.
FORMATS = (".png", ".svg", ".pdf")
#: A JSONL line before several cameras had names (the one camera of the run).
DEFAULT_CAMERA = "cam1"


@dataclass(frozen=True)
class Timeline:
    """One camera's predictions, in the order they were made."""

    camera: str
    times: list[float]  # source seconds
    probs: dict[str, list[float]]  # class -> probability at each time
    segments: list[Segment]


def read_predictions(path: Path) -> dict[str, list[dict]]:
    """camera -> its prediction lines (source-state lines are left out)."""
    try:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise InputError(f"no such run: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    by_camera: dict[str, list[dict]] = defaultdict(list)
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InputError(
                    f"{path}, line {number}: not JSON ({first_line(exc, 80)}); "
                    "give the JSONL of `python -m realtime --jsonl`"
                ) from None
            if not isinstance(record, dict) or record.get("type") == "source_state":
                continue
            if not {"timestamp", "probs", "label", "score", "frame"} <= set(record):
                raise InputError(f"{path}, line {number}: not a prediction of realtime --jsonl")
            by_camera[str(record.get("camera") or DEFAULT_CAMERA)].append(record)
    if not by_camera:
        raise InputError(f"{path} holds no prediction")
    return dict(by_camera)


def read_segments(path: Path) -> dict[str, list[Segment]]:
    """camera -> the segments an `--events` file recorded."""
    out: dict[str, list[Segment]] = defaultdict(list)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            segment = Segment(record["label"], float(record["start"]), float(record["end"]))
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}, line {number}: not a segment of realtime --events") from None
        out[str(record.get("camera") or DEFAULT_CAMERA)].append(segment)
    return dict(out)


def find_segments(records: list[dict], hysteresis: int, min_duration: float) -> list[Segment]:
    """The segments `--events` would have written for these predictions (a window that starts
    again at 1 is a gap in the source: what was open ends there)."""
    tracker = SegmentTracker(hysteresis=hysteresis, min_duration=min_duration)
    found, previous_window = [], None
    for record in records:
        window = record.get("window")
        if window == 1 and previous_window not in (None, 1):
            found.append(tracker.reset())
        previous_window = window
        found.append(
            tracker.update(record["label"], record["score"], record["timestamp"], record["frame"])
        )
    found.append(tracker.flush())
    return [segment for segment in found if segment is not None]


def timelines(
    by_camera: dict[str, list[dict]],
    cameras: list[str] | None,
    recorded: dict[str, list[Segment]] | None,
    hysteresis: int = 3,
    min_duration: float = 0.5,
) -> list[Timeline]:
    """One `Timeline` per camera asked for (all, in the order of the file, by default)."""
    names = cameras or list(by_camera)
    unknown = [name for name in names if name not in by_camera]
    if unknown:
        raise InputError(
            f"no camera {unknown[0]!r} in the run (it has {', '.join(sorted(by_camera))})"
        )
    out = []
    for name in names:
        records = by_camera[name]
        labels = list(records[0]["probs"])
        probs = {label: [float(r["probs"].get(label, 0.0)) for r in records] for label in labels}
        if recorded is not None:
            segments = recorded.get(name, [])
        else:
            segments = find_segments(records, hysteresis, min_duration)
        out.append(Timeline(name, [float(r["timestamp"]) for r in records], probs, segments))
    return out


def draw(lines: list[Timeline], output: Path, title: str | None = None) -> None:
    """Write the figure to `output` (its extension picks the format), whole or not at all."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(lines), 1, figsize=(11, 2.6 * len(lines) + 0.6), squeeze=False, layout="constrained"
    )
    palette = plt.get_cmap("tab10").colors
    every_label = sorted({label for line in lines for label in line.probs})
    colours = {label: palette[k % len(palette)] for k, label in enumerate(every_label)}
    for ax, line in zip(axes[:, 0], lines, strict=True):
        for segment in line.segments:
            colour = colours.get(segment.label, "grey")
            ax.axvspan(segment.start, segment.end, color=colour, alpha=0.18, lw=0)
            ax.text(
                segment.start,
                1.02,
                segment.label,
                color=colour,
                fontsize=8,
                va="bottom",
                clip_on=False,
            )
        for label, values in line.probs.items():
            ax.plot(line.times, values, color=colours[label], lw=1.3, label=label)
        ax.set_ylim(0, 1)
        ax.set_xlim(min(line.times), max(max(line.times), min(line.times) + 1e-3))
        ax.set_ylabel("probability")
        ax.set_title(f"camera {line.camera}", loc="left", fontsize=10, pad=14)
        ax.grid(alpha=0.25)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    axes[-1, 0].set_xlabel("source time (s)")
    if title:
        figure.suptitle(title)
    handle, partial = tempfile.mkstemp(
        prefix=f".{output.name}.", suffix=output.suffix, dir=output.parent
    )
    os.close(handle)
    try:
        figure.savefig(partial, dpi=110)
        os.chmod(partial, 0o666 & ~_umask())  # as a plain new file (mkstemp's is 0600)
        os.replace(partial, output)
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
        if os.path.exists(partial):
            os.unlink(partial)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrorParser(
        prog="python -m realtime.plot",
        description="Draw every class's probability over a run, with the action segments as "
        "bands, one panel per camera.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("jsonl", metavar="RUN.jsonl", help="what `python -m realtime --jsonl` wrote")
    p.add_argument(
        "--output", "-o", required=True, metavar="FILE", help=f"the image ({', '.join(FORMATS)})"
    )
    p.add_argument(
        "--camera",
        action="append",
        metavar="NAME",
        help="only this camera (repeatable; default: every camera)",
    )
    p.add_argument(
        "--events",
        metavar="FILE",
        help="the segments `--events` recorded (default: found from the predictions)",
    )
    add_segment_arguments(p, "finding segments")
    p.add_argument("--title", help="a title over the figure")
    p.add_argument("--verbose", "-v", action="store_true", help="tracebacks of failures")
    return p


def run(args) -> int:
    run_path, output = Path(args.jsonl), Path(args.output)
    if output.suffix.lower() not in FORMATS:
        raise InputError(f"--output must end in {', '.join(FORMATS)}, not {output.name!r}")
    protected = [Protected("the run's JSONL", run_path)]
    if args.events:
        protected.append(Protected("the events file", Path(args.events)))
    check_outputs([Output("--output", str(output))], protected, video_flags=())
    by_camera = read_predictions(run_path)
    recorded = read_segments(Path(args.events)) if args.events else None
    lines = timelines(by_camera, args.camera, recorded, args.hysteresis, args.min_duration)
    draw(lines, output, args.title)
    frames = sum(len(line.times) for line in lines)
    print(f"wrote {output}: {len(lines)} camera(s), {frames} predictions", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    return run_reporting_errors(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
