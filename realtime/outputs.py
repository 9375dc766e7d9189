"""Where predictions go besides the screen: JSONL, action segments, an annotated video."""

from __future__ import annotations

import json
import queue
import sys
import threading
from pathlib import Path

import cv2

from realtime.capture import Frame
from realtime.engine import Sink
from realtime.errors import InputError
from realtime.overlay import draw_overlay
from realtime.postprocess import SegmentTracker
from realtime.prediction import Prediction


def _open_text(path: str):
    """'-' is stdout; anything else a new file (its folder must exist)."""
    if path == "-":
        return sys.stdout, False
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target} is a directory; give a file path")
    if not target.parent.exists():
        raise InputError(f"folder {target.parent} does not exist (for {target})")
    try:
        return open(target, "w", encoding="utf-8", buffering=1), True
    except OSError as exc:
        raise InputError(f"cannot write {target}: {exc.strerror}") from None


class JsonlSink(Sink):
    """One JSON object per prediction, one per line, flushed as it is written."""

    def __init__(self, path: str):
        self._handle, self._owned = _open_text(path)

    def handle(self, prediction: Prediction, frame: Frame) -> None:
        self._handle.write(prediction.to_json() + "\n")
        self._handle.flush()

    def on_source_state(self, change) -> None:
        """A live source's state change, as a line of its own: `"type": "source_state"`."""
        self._handle.write(json.dumps(change.to_record()) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._owned:
            self._handle.close()
        else:
            self._handle.flush()


class EventSink(Sink):
    """Finished action segments, one JSON line each; the open one is flushed at exit."""

    def __init__(self, path: str, hysteresis: int = 3, min_duration: float = 0.5):
        self._handle, self._owned = _open_text(path)
        self.tracker = SegmentTracker(hysteresis=hysteresis, min_duration=min_duration)
        self.count = 0

    def _write(self, segment, closed: bool = True) -> None:
        if segment is not None:
            self._handle.write(segment.to_json(closed=closed) + "\n")
            self._handle.flush()
            self.count += 1

    def handle(self, prediction: Prediction, frame: Frame) -> None:
        self._write(
            self.tracker.update(
                prediction.label, prediction.score, prediction.timestamp, prediction.frame
            )
        )

    def on_gap(self) -> None:
        self._write(self.tracker.reset())

    def close(self) -> None:
        self._write(self.tracker.flush(), closed=False)
        if self._owned:
            self._handle.close()


class VideoRecorder(Sink):
    """Writes each classified frame with its overlay to a video file, on its own thread.

    Frames the live loop dropped are filled by repeating the previous one, so the recording
    keeps real time. The queue is bounded; a full queue makes the inference loop wait.
    """

    def __init__(self, path: str, fps: float, queue_size: int = 8):
        target = Path(path)
        if target.is_dir() or not target.parent.exists():
            raise InputError(f"cannot record to {target}: folder missing or path is a directory")
        self.path = target
        self.fps = fps
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._writer: cv2.VideoWriter | None = None
        self._last_sample: int | None = None
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        self.error: str | None = None
        self.frames_written = 0

    def handle(self, prediction: Prediction, frame: Frame) -> None:
        if frame.display is None:
            return
        repeats = 1 if self._last_sample is None else max(1, frame.sample - self._last_sample)
        self._last_sample = frame.sample
        self._queue.put((prediction, frame.display, repeats))

    def _open(self, image) -> None:
        height, width = image.shape[:2]
        fourcc = cv2.VideoWriter_fourcc(
            *("mp4v" if self.path.suffix.lower() in (".mp4", ".m4v", ".mov") else "MJPG")
        )
        self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (width, height))
        if not self._writer.isOpened():
            self.error = f"cannot record to {self.path} (no encoder for this extension)"

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self.error:
                continue
            prediction, display, repeats = item
            image = draw_overlay(display, prediction)
            if self._writer is None:
                self._open(image)
                if self.error:
                    continue
            for _ in range(repeats):
                self._writer.write(image)
                self.frames_written += 1
        if self._writer is not None:
            self._writer.release()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
