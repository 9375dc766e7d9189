"""The optional heavy dependencies, imported only where a run needs them, and keeping native
libraries' start-up chatter off the user's terminal.

Every other import in the project sits at the top of its module. The modules below are
imported inside the functions that need them, and only there (tests/test_layers.py checks
it): a run with a cached backbone never imports TensorFlow, a run without `--output` never
loads FFmpeg's libraries, and each costs seconds or hundreds of MB when it is imported.

TensorFlow 2.20+ logs through absl before `TF_CPP_MIN_LOG_LEVEL` is read, and LiteRT prints
an INFO line when it creates its CPU delegate. Both write to file descriptor 2 from C++,
so the only way to keep stderr to our own one-line messages is to point fd 2 elsewhere while
they load (and while OpenCV/FFmpeg probe a source). fd 2 belongs to the whole process and
sources open on several threads at once (every camera of a run, reconnects), so
`native_stderr_silenced` is shared: the first thread in points fd 2 at /dev/null, the last one
out restores it, and meanwhile Python's own `sys.stderr` writes to the real stderr (a copy of
fd 2), so that no warning or error line of ours is ever swallowed by another thread's block.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

#: Imported only inside functions, each for a reason: what needs it, and when.
OPTIONAL_MODULES = {
    "tensorflow": "training, the Keras backends, converting a backbone not yet cached",
    "keras": "the same (Keras 3 on TensorFlow)",
    "realtime.head.layers": "the head's Keras layers (imports Keras when imported)",
    "openvino": "the OpenVINO backends",
    "nncf": "quantizing a backbone to int8 (--backend openvino-int8)",
    "ai_edge_litert": "the LiteRT backends (a .tflite backbone)",
    "flatbuffers": "rewriting a .tflite backbone for --pooling regions (comes with LiteRT)",
    "av": "recording (--output)",
    "matplotlib": "python -m realtime.plot (drawing a run's timeline)",
    "realtime.web.server": "--serve (the web server, its pages and metrics)",
    "ray": "python -m realtime.cluster (the cluster's commands; the `cluster` extra)",
    "realtime.cluster.commands": "python -m realtime.cluster's commands (import Ray)",
}


class _NativeStderr:
    """fd 2 silenced for as long as any thread is inside `native_stderr_silenced`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None  # a copy of the real fd 2 while silenced
        self._python_stderr = None  # sys.stderr before, when it had to be redirected
        self._redirected = None  # what sys.stderr is while silenced, if we set it

    def enter(self) -> bool:
        """Silence fd 2 (or count one more thread inside); False if there is no fd 2."""
        with self._lock:
            if self._depth == 0:
                try:
                    sys.stderr.flush()
                    saved = os.dup(2)
                except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded)
                    return False
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
                self._saved = saved
                if _writes_to_fd2(sys.stderr):  # our own lines go on to the real stderr
                    self._python_stderr = sys.stderr
                    self._redirected = open(  # noqa: SIM115 - closed by leave()
                        saved, "w", buffering=1, closefd=False, errors="backslashreplace"
                    )
                    sys.stderr = self._redirected
            self._depth += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth:
                return
            if self._redirected is not None:
                self._redirected.flush()
                if sys.stderr is self._redirected:  # unless someone else replaced it since
                    sys.stderr = self._python_stderr
                self._redirected.close()
                self._redirected = self._python_stderr = None
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


#: fd 2 is one per process: so is its silencer.
_NATIVE_STDERR = _NativeStderr()


@contextmanager
def native_stderr_silenced():
    """Discard what native code writes to fd 2 inside the block (Python exceptions still rise,
    and `sys.stderr` still reaches the terminal); any thread, nested or at once."""
    if not _NATIVE_STDERR.enter():
        yield
        return
    try:
        yield
    finally:
        _NATIVE_STDERR.leave()


def import_tensorflow():
    """Import TensorFlow and Keras quietly (once) and return the `tensorflow` module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" not in sys.modules:
        with native_stderr_silenced():
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    return sys.modules["tensorflow"]
