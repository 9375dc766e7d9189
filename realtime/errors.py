"""The one exception type that reaches the user as a clean `error: ...` line."""


class InputError(Exception):
    """Something the user gave us cannot be used (a path, a URL, a model, a flag).

    The message is one line that names the problem and, where possible, what to do about it.
    The command line turns it into `error: <message>` on stderr and exit code 2.
    """
