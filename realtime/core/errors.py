"""The one exception type that reaches the user as a clean `error: ...` line, and failures
kept whole where they happen (inside a thread, in an output) until the user is told.

Logging goes through the `realtime` logger and is off unless `-v/--verbose` turns it on
(`realtime.core.cliargs.configure_logging`): then every failure's traceback is shown.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("realtime")


class InputError(Exception):
    """Something the user gave us cannot be used (a path, a URL, a model, a flag).

    The message is one line that names the problem and, where possible, what to do about it.
    The command line turns it into `error: <message>` on stderr and exit code 2.
    """


def first_line(exc: BaseException, limit: int) -> str:
    """The first line of an exception's message, at most `limit` characters (its type's name
    when the message is empty): what a one-line `error:` quotes of a library's failure."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


@dataclass(frozen=True)
class Failure:
    """What stopped a thread or an output: the user's one line (`message`, also `str()`) and
    the exception behind it, if any, kept with its traceback."""

    message: str
    exception: BaseException | None = None

    def __str__(self) -> str:
        return self.message


def failed(message: str, exception: BaseException | None = None) -> Failure:
    """Record a failure where it happens: logged with its traceback (shown with -v)."""
    log.debug("%s", message, exc_info=exception)
    return Failure(message, exception)
