"""The one exception type that reaches the user as a clean `error: ...` line."""


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
