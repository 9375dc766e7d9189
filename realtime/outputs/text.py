"""Where predictions go besides the screen: JSONL and action segments (the annotated video:
`realtime.outputs.recording`)."""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from pathlib import Path

from realtime.core.errors import InputError, failed
from realtime.stream.capture import Frame
from realtime.stream.engine import OutputClosed, OutputFailed, Sink
from realtime.stream.postprocess import SegmentTracker
from realtime.stream.prediction import Prediction


def _open_text(path: str):
    """'-' is stdout; anything else a new file (`realtime.outputs.paths` checked it)."""
    if path == "-":
        return sys.stdout, False
    target = Path(path)
    try:
        if target.is_fifo():
            return _open_fifo(target), True
        return open(target, "w", encoding="utf-8", buffering=1), True
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror or exc}") from None


#: How long an output FIFO may wait for its reader to open it.
FIFO_WAIT_S = 10.0


def _open_fifo(target: Path):
    """A named pipe opens for writing only once a reader has opened it: wait for one, but not
    forever (a plain `open` would hang the command before the run even starts)."""
    deadline = time.monotonic() + FIFO_WAIT_S
    while True:
        try:
            fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if time.monotonic() > deadline:
                raise InputError(
                    f"nobody reads the named pipe {target} (waited {FIFO_WAIT_S:g} s)"
                ) from None
            time.sleep(0.05)
    os.set_blocking(fd, True)
    return open(fd, "w", encoding="utf-8", buffering=1)


class _TextSink(Sink):
    """A text output written line by line and flushed, so that every line on disk parses.

    A failed write (disk full, I/O error) raises `OutputFailed` with one line naming the file;
    a reader that went away (a closed pipe) raises `OutputClosed`.
    """

    def __init__(self, path: str):
        self.name = "stdout" if path == "-" else path
        self._handle, self._owned = _open_text(path)
        self._whole = 0  # bytes of a file that hold whole lines

    def _line(self, text: str) -> None:
        if self.failure:
            raise OutputFailed(self.failure.message)
        data = text + "\n"
        try:
            self._handle.write(data)
            self._handle.flush()
        except BrokenPipeError:
            self._handle = _closed_stdout()
            raise OutputClosed(self.name) from None
        except OSError as exc:
            self.failure = failed(f"cannot write {self.name}: {exc.strerror or exc}", exc)
            self._drop_partial_line()
            raise OutputFailed(self.failure.message) from None
        self._whole += len(data.encode("utf-8"))

    def _drop_partial_line(self) -> None:
        """A write failed midway (disk full): cut the file back to its last whole line, so that
        every line in it still parses; then stop writing to it."""
        if not self._owned:
            return
        try:
            os.ftruncate(self._handle.fileno(), self._whole)
        except OSError:
            pass
        handle, self._handle, self._owned = self._handle, open(os.devnull, "w"), True
        try:
            handle.close()
        except OSError:  # what was buffered is cut off anyway
            pass

    def close(self) -> None:
        try:
            if self._owned:
                self._handle.close()
            else:
                self._handle.flush()
        except BrokenPipeError:
            _closed_stdout()
        except OSError as exc:
            if not self.failure:
                self.failure = failed(f"cannot write {self.name}: {exc.strerror or exc}", exc)


def _closed_stdout():
    """stdout's reader is gone: point fd 1 at /dev/null so nothing else (the interpreter's
    flush at exit included) fails on it; returns the handle to use from now on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return sys.stdout


class JsonlSink(_TextSink):
    """One JSON object per prediction, one per line, flushed as it is written (every camera
    of a run into one file; each line says which `camera`)."""

    def handle(self, prediction: Prediction, frame: Frame) -> None:
        self._line(prediction.to_json())

    def write_record(self, record: dict) -> None:
        """A line made elsewhere (a cluster worker's prediction, `realtime.cluster`)."""
        self._line(json.dumps(record))

    def on_source_state(self, camera: str, change) -> None:
        """A live source's state change, as a line of its own: `"type": "source_state"`."""
        self._line(json.dumps({**change.to_record(), "camera": camera}))


class EventSink(_TextSink):
    """Finished action segments, one JSON line each, each camera's segments tracked apart;
    the open ones are flushed at exit."""

    def __init__(self, path: str, hysteresis: int = 3, min_duration: float = 0.5):
        super().__init__(path)
        self.hysteresis = hysteresis
        self.min_duration = min_duration
        self.trackers: dict[str, SegmentTracker] = {}  # camera -> its segments
        self.count = 0

    def _tracker(self, camera: str) -> SegmentTracker:
        if camera not in self.trackers:
            self.trackers[camera] = SegmentTracker(self.hysteresis, self.min_duration)
        return self.trackers[camera]

    def _write(self, segment, camera: str, closed: bool = True) -> None:
        if segment is not None:
            self._line(segment.to_json(closed=closed, camera=camera))
            self.count += 1

    def handle(self, prediction: Prediction, frame: Frame) -> None:
        p = prediction
        self.add(p.camera, p.label, p.score, p.timestamp, p.frame)

    def add(self, camera: str, label: str, score: float, timestamp: float, frame: int) -> None:
        """One prediction's decision (also from a JSONL record: `realtime.cluster`)."""
        self._write(self._tracker(camera).update(label, score, timestamp, frame), camera)

    def on_gap(self, camera: str) -> None:
        self._write(self._tracker(camera).reset(), camera)

    def close(self) -> None:
        try:
            for camera, tracker in self.trackers.items():
                self._write(tracker.flush(), camera, closed=False)
        except (OutputFailed, OutputClosed):
            pass
        super().close()
