"""Argument parsing pieces shared by `python -m realtime` and `python -m training`.

Both command lines keep the same promise: a mistake in the arguments is one `error: ...` line
on stderr and exit code 2, like every other input error.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
from collections.abc import Callable

from realtime.core.errors import InputError, first_line, log


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none (None) or the help already says it."""

    def _get_help_string(self, action):
        if action.default is None or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class StoppedBeforeRun(BaseException):
    """A stop signal arrived before the run started: nothing to flush, exit 0.

    A BaseException, like KeyboardInterrupt: the signal can land anywhere, e.g. inside
    TensorFlow's import, whose `except Exception` would turn it into another error."""


#: Signals that end a run as `q` does: Ctrl-C, SIGTERM, and SIGHUP (the terminal closed).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def leave_at_once_on_signals() -> None:
    """For a `__main__` before its heavy imports: a stop signal ends the process at once,
    exit 0. An exception raised inside an import could be caught there (TensorFlow catches
    Exception) or escape with a traceback; nothing has been produced yet, so leave."""
    for s in STOP_SIGNALS:
        signal.signal(s, lambda *_: os._exit(0))


def _stopped_before_the_run(signum, _frame):
    raise StoppedBeforeRun(signal.Signals(signum).name)


def stopping_early(body: Callable[[], int]) -> int:
    """A command's whole `main`: a stop signal from now until its run installs its own
    handlers ends it with exit 0 and no traceback (nothing was produced yet), wherever it
    lands: building the parser, parsing, an import, loading a model."""
    for s in STOP_SIGNALS:
        signal.signal(s, _stopped_before_the_run)
    try:
        return body()
    except StoppedBeforeRun:
        return 0


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one `error: ...` line (no usage block), exit 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see --help)\n")


def _number(text: str, kind, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def int_up_to(high: int) -> Callable[[str], int]:
    """A whole number from 1 to `high` (a value past it is a typo, not a wish)."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"{value} is more than {high}")
        return value

    parse.__name__ = f"whole number up to {high}"
    return parse


def positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def probability(text: str) -> float:
    value = _number(text, float, "a number")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 1")
    return value


MAX_SECONDS = 86_400.0  # a day: any longer timeout or duration is a typo


def seconds(text: str) -> float:
    value = _number(text, float, "a number of seconds")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0 seconds")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{value} s is more than a day")
    return value


def seconds_or_zero(text: str) -> float:
    value = _number(text, float, "a number of seconds")
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{value} must be from 0 to {MAX_SECONDS:g} seconds")
    return value


def run_reporting_errors(command: Callable[[], int]) -> int:
    """Run a command's body; turn expected failures into one `error:` line and an exit code.

    InputError and OS errors (an unwritable folder, a full disk) exit 2; Ctrl-C where no
    handler is installed (training) exits 130 (a stop signal before the run started is
    `stopping_early`'s); a closed stdout pipe ends quietly; anything else is a bug: one line
    naming the exception, exit 1, its traceback logged (`-v`).
    """
    try:
        return command()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line (the traceback with -v), exit 1
        log.debug("unexpected failure", exc_info=exc)
        print(
            f"error: {type(exc).__name__}: {first_line(exc, 200)} (-v shows where)", file=sys.stderr
        )
        return 1


VERBOSE_HELP = "log what happens, with the traceback of every failure (for bug reports)"
#: Marks the handler `configure_logging` adds, so that a second call replaces it.
_VERBOSE_HANDLER = "realtime-verbose"


def configure_logging(verbose: bool) -> None:
    """`-v/--verbose`: the `realtime` logger's messages, with every failure's traceback, on
    stderr. Without it the logger stays silent (the one-line errors are printed anyway)."""
    for handler in [h for h in log.handlers if h.get_name() == _VERBOSE_HANDLER]:
        log.removeHandler(handler)
    if not verbose:
        log.setLevel(logging.WARNING)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_VERBOSE_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)


def add_backbone_arguments(parser, backend_choices) -> None:
    """`--backbone`, `--backbone-weights`, `--backend`, `--cache-dir`, `--threads`: which
    feature extractor runs and how (`realtime.backbones.load_backbone`), in a run and on a
    cluster worker; `backend_choices`: `realtime.backbones.base.CHOICES`."""
    parser.add_argument(
        "--backbone",
        metavar="NAME|FILE.tflite",
        help="feature extractor: inception_v3 or a .tflite file "
        "(default: the one the model was trained with)",
    )
    parser.add_argument(
        "--backbone-weights",
        metavar="FILE",
        help="InceptionV3 ImageNet weights file, for machines without internet",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=backend_choices,
        help="how InceptionV3 runs; exported runtimes are converted from the Keras model once "
        "and cached (auto: the fastest available that matches Keras within 1%%; "
        "see docs/performance.md)",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where converted backbones are cached "
        "(default: $REALTIME_ACTION_CACHE or ~/.cache/realtime-action)",
    )
    parser.add_argument(
        "--threads",
        type=int_up_to(1024),
        metavar="N",
        help="CPU threads for the backbone (default: all cores)",
    )


def add_segment_arguments(parser, purpose: str) -> None:
    """`--hysteresis` and `--min-duration`: how per-frame decisions become action segments
    (`realtime.stream.postprocess.SegmentTracker`), in the run (`--events`) and in the plot
    (finding segments); `purpose` starts their help."""
    parser.add_argument(
        "--hysteresis",
        type=int_up_to(10_000),
        default=3,
        metavar="N",
        help=f"{purpose}: a segment opens/closes after N agreeing predictions",
    )
    parser.add_argument(
        "--min-duration",
        type=seconds_or_zero,
        default=0.5,
        metavar="S",
        help=f"{purpose}: drop segments shorter than S seconds",
    )
