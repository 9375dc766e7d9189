"""The annotated recording (`--output`): written so that every way a run ends leaves it playable.

OpenCV's `VideoWriter` writes an MP4's index (the `moov` box) only when it is closed: a run
killed by a full disk, a dead display, a closed terminal or a crash left an MP4 no player
opens. Recordings are therefore written through PyAV (FFmpeg) in containers that are playable
at every moment:

- `.mp4`, `.m4v`, `.mov`: *fragmented* MP4 (an empty `moov` up front, then one self-contained
  fragment per keyframe, a keyframe every second), each fragment flushed to the file as it is
  complete. H.264 (libx264, no B-frames, so a frame leaves the encoder as soon as it enters)
  where PyAV's FFmpeg has it, MPEG-4 part 2 otherwise;
- `.mkv`: Matroska, clusters of at most one second, flushed;
- `.avi`: Motion JPEG, every frame flushed (AVI needs no index to be read).

So after an abrupt end, everything written more than a second or so before it decodes
(`tests/test_recording.py` kills writers mid-run and checks with ffprobe). A write that fails
(disk full, I/O error) sets `failure` (one line naming the file); the inference loop sees it at
the next frame and stops the run (exit 1), the other outputs flushed.

The container and the encoder are opened in `__init__`, from the source's frame size, before
capture starts: a path that cannot be recorded to is an input error at once, not a surprise
at the end of a session.
"""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from realtime.core.errors import Failure, InputError, failed
from realtime.outputs.overlay import draw_overlay, overlay_size
from realtime.stream.capture import Frame
from realtime.stream.engine import OutputFailed, Sink
from realtime.stream.prediction import Prediction

#: MP4/MOV written as fragments, each playable once written (no index at the end)
_FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
#: extension -> (FFmpeg muxer, muxer options)
CONTAINERS: dict[str, tuple[str, dict[str, str]]] = {
    ".mp4": ("mp4", _FRAGMENTED),
    ".m4v": ("mp4", _FRAGMENTED),
    ".mov": ("mov", _FRAGMENTED),
    ".mkv": ("matroska", {"cluster_time_limit": "1000"}),
    ".avi": ("avi", {}),
}
EXTENSIONS = tuple(CONTAINERS)


def _encoder_for(extension: str) -> str:
    import av

    if extension == ".avi":
        return "mjpeg"
    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # not in this FFmpeg build
            continue
    return "mpeg4"  # pragma: no cover - every PyAV wheel has mpeg4


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return reason.rstrip(".")


class VideoRecorder(Sink):
    """Writes each classified frame with its overlay to a video file, on its own thread.

    Frames the live loop dropped are filled by repeating the previous one, so the recording
    keeps real time. The queue is bounded; a full queue makes the inference loop wait.
    """

    def __init__(
        self, path: str, fps: float, source_size: tuple[int, int], queue_size: int = 8
    ) -> None:
        import av

        self.path = Path(path)
        extension = self.path.suffix.lower()
        if extension not in CONTAINERS:
            raise InputError(f"cannot record to {extension or 'a file without extension'}")
        width, height = overlay_size(*source_size)
        self.size = (width - width % 2, height - height % 2)  # 4:2:0 needs even sizes
        self.fps = fps
        muxer, options = CONTAINERS[extension]
        codec = _encoder_for(extension)
        try:
            self._container = av.open(
                str(self.path), "w", format=muxer, options={**options, "flush_packets": "1"}
            )
        except Exception as exc:
            raise InputError(f"cannot record to {self.path}: {_describe(exc)}") from None
        try:
            stream = self._container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = self.size
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            stream.codec_context.gop_size = max(1, round(fps))  # a keyframe every second
            if codec == "libx264":
                stream.codec_context.options = {"preset": "veryfast", "tune": "zerolatency"}
            elif codec == "mjpeg":
                stream.codec_context.qmin, stream.codec_context.qmax = 2, 8
            else:
                stream.codec_context.bit_rate = 4_000_000
            self._container.start_encoding()  # creates the file and writes the header now
        except Exception as exc:
            self._container.close()
            raise InputError(f"cannot record to {self.path}: {_describe(exc)}") from None
        self._stream = stream
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._last_sample: int | None = None
        self.failure: Failure | None = None
        self.frames_written = 0
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def handle(self, prediction: Prediction, frame: Frame) -> None:
        if self.failure:
            raise OutputFailed(self.failure.message)
        if frame.display is None:
            return
        repeats = 1 if self._last_sample is None else max(1, frame.sample - self._last_sample)
        self._last_sample = frame.sample
        self._queue.put((prediction, frame.display, repeats))

    def _image(self, display: np.ndarray, prediction: Prediction) -> np.ndarray:
        image = draw_overlay(display, prediction)
        if (image.shape[1], image.shape[0]) != self.size:  # e.g. a camera that reconnected
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        return image

    def _write(self, image: np.ndarray | None) -> None:
        import av

        if image is None:
            packets = self._stream.encode(None)  # flush the encoder
        else:
            video_frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            video_frame.pts = self.frames_written
            packets = self._stream.encode(video_frame)
            self.frames_written += 1
        self._container.mux(packets)

    def _run(self) -> None:
        closing = False
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    closing = True
                    break
                prediction, display, repeats = item
                image = self._image(display, prediction)
                for _ in range(repeats):
                    self._write(image)
            self._write(None)
            self._container.close()
        except Exception as exc:  # disk full, I/O error: the run stops and says so
            self.failure = failed(f"cannot write {self.path}: {_describe(exc)}", exc)
            try:
                self._container.close()
            except Exception:  # the file keeps what reached it (playable, see above)
                pass
            # keep taking items so that `handle` never blocks on a full queue
            while not closing and self._queue.get() is not None:
                pass

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
