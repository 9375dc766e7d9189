"""Argument parsing pieces shared by `python -m realtime` and `python -m training`.

Both command lines keep the same promise: a mistake in the arguments is one `error: ...` line
on stderr and exit code 2, like every other input error.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from realtime.errors import InputError


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


def seconds(text: str) -> float:
    value = _number(text, float, "a number of seconds")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be more than 0 seconds")
    return value


def run_reporting_errors(command: Callable[[], int]) -> int:
    """Run a command's body; turn expected failures into one `error:` line and an exit code.

    InputError and OS errors (an unwritable folder, a full disk) exit 2, Ctrl-C before the
    run installed its own handler exits 130, a closed stdout pipe ends quietly.
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
