"""The optional heavy dependencies, imported only where a run needs them, and keeping native
libraries' start-up chatter off the user's terminal.

Every other import in the project sits at the top of its module. The modules below are
imported inside the functions that need them, and only there (tests/test_layers.py checks
it): a run with a cached backbone never imports TensorFlow, a run without `--output` never
loads FFmpeg's libraries, and each costs seconds or hundreds of MB when it is imported.

TensorFlow 2.20+ logs through absl before `TF_CPP_MIN_LOG_LEVEL` is read, and LiteRT prints
an INFO line when it creates its CPU delegate. Both write to file descriptor 2 from C++,
so the only way to keep stderr to our own one-line messages is to point fd 2 elsewhere while
they load. This happens on the main thread at start-up, before any worker thread exists.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

#: Imported only inside functions, each for a reason: what needs it, and when.
OPTIONAL_MODULES = {
    "tensorflow": "training, the Keras backends, converting a backbone not yet cached",
    "keras": "the same (Keras 3 on TensorFlow)",
    "realtime.head.layers": "the head's Keras layers (imports Keras when imported)",
    "openvino": "the OpenVINO backends",
    "nncf": "quantizing a backbone to int8 (--backend openvino-int8)",
    "ai_edge_litert": "the LiteRT backends (a .tflite backbone)",
    "av": "recording (--output)",
}


@contextmanager
def native_stderr_silenced():
    """Discard what native code writes to fd 2 inside the block (Python exceptions still rise)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Import TensorFlow and Keras quietly (once) and return the `tensorflow` module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" not in sys.modules:
        with native_stderr_silenced():
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    return sys.modules["tensorflow"]
