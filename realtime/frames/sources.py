"""Video sources: camera index, video file, or network stream URL, behind one interface.

`open_source()` is the one factory. It validates the input, opens it with bounded timeouts,
reads the first frame (fail fast: a source that cannot deliver one frame is an input error),
and turns every failure into one clear `InputError` line.
"""

from __future__ import annotations

import math
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from realtime.core.errors import InputError
from realtime.core.optional import native_stderr_silenced
from realtime.core.textenum import TextEnum


class SourceKind(TextEnum):
    """What `--source` names (written out as its value where text is needed)."""

    CAMERA = "camera"
    FILE = "file"
    STREAM = "stream"


STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
DEFAULT_FPS = 25.0
MAX_SOURCE_FPS = 1000.0  # above this, a reported frame rate is a container's time base, not fps

# OpenCV takes FFmpeg capture options only from a process-wide environment variable; it is set
# for the duration of one open call, under this lock.
_FFMPEG_OPTIONS_LOCK = threading.Lock()


def silence_opencv_logging() -> None:
    """OpenCV/FFmpeg warnings would break the one-line error contract; we report ourselves.

    FFmpeg's own log (e.g. "Connection refused" on every reconnect attempt) is silenced too,
    through OpenCV's OPENCV_FFMPEG_LOGLEVEL (-8 = quiet), read when FFmpeg is first used;
    a value the user exported is kept.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # pragma: no cover - older builds
        pass


@dataclass(frozen=True)
class SourceSpec:
    """What `--source` names: a camera index (int), a file or a stream URL (str)."""

    kind: SourceKind
    target: int | str

    @property
    def is_live(self) -> bool:
        return self.kind is not SourceKind.FILE

    def __str__(self) -> str:
        """How the source is shown anywhere (console, window, summary, errors, logs): a
        stream's credentials are never among it (`redacted`)."""
        if self.kind is SourceKind.CAMERA:
            return f"camera {self.target}"
        return redacted(str(self.target)) if self.kind is SourceKind.STREAM else str(self.target)


#: Query parameters that carry secrets in camera URLs (`?user=admin&password=...`).
SECRET_PARAMETERS = re.compile(
    r"(?i)^(user|username|pass|password|passwd|pwd|token|auth|key|secret|signature)$"
)


def redacted(url: str) -> str:
    """`url` with its user name and password (`rtsp://user:pass@host`) and the values of
    secret query parameters replaced by `***`; the rest as given."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = "&".join(
        f"{key}=***" if SECRET_PARAMETERS.match(key) and sep else f"{key}{sep}{value}"
        for key, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_source(text: str) -> SourceSpec:
    text = str(text).strip()
    if not text:
        raise InputError("--source is empty: give a camera index, a video file or a URL")
    if text.isascii() and text.isdigit():
        if len(text) > 4:
            raise InputError(f"camera index {text} is out of range (0 to 9999)")
        return SourceSpec(SourceKind.CAMERA, int(text))
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceSpec(SourceKind.STREAM, text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise InputError(f"unsupported URL scheme {scheme!r} in --source (use rtsp or http)")
    return SourceSpec(SourceKind.FILE, text)


@dataclass
class CaptureOptions:
    """How network and camera sources are opened and read."""

    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    rtsp_transport: str | None = None  # "tcp" or "udp"; None = FFmpeg's default


class VideoSource:
    """An opened source. `read()` returns the next BGR frame, or None at end / on failure."""

    def __init__(self, spec: SourceSpec, capture: cv2.VideoCapture, first_frame: np.ndarray):
        self.spec = spec
        self._capture = capture
        self._pending: np.ndarray | None = first_frame
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.reported_fps = (
            float(fps) if fps and math.isfinite(fps) and 0 < fps <= MAX_SOURCE_FPS else None
        )
        self.frame_count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        height, width = first_frame.shape[:2]
        self.size = (int(width), int(height))
        self.opened_at = time.monotonic()
        self._first_position_s = self.position_s()
        #: set by `skip_backlog`: this network source delivers faster than real time (a file
        #: behind a URL, a VOD stream), so it is to be played like a file (see CaptureThread)
        self.runs_ahead = False

    @property
    def kind(self) -> SourceKind:
        return self.spec.kind

    @property
    def is_live(self) -> bool:
        return self.spec.is_live

    @property
    def fps(self) -> float:
        """The source's own frame rate (25 when the container does not say)."""
        return self.reported_fps or DEFAULT_FPS

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        try:
            ok, frame = self._capture.read()
        except cv2.error:
            return None
        if not ok or frame is None or frame.size == 0:
            return None
        return frame

    def position_s(self) -> float | None:
        """The last frame's time on the stream's own clock (FFmpeg's timestamps), if known."""
        try:
            ms = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        except cv2.error:
            return None
        return ms / 1000.0 if ms is not None and math.isfinite(ms) and ms >= 0 else None

    def frame_time(self, index: int) -> float:
        """Seconds from the start of a file to the frame just read, its `index`-th.

        A constant-frame-rate file: `index / fps`, exactly (the offline chain and the runtime
        agree to the bit). A variable-frame-rate file, whose frames' own timestamps stray more
        than half a frame from that: the frame's own timestamp."""
        nominal = index / self.fps
        own = self._own_time_s()
        if own is None or (index > 0 and own <= 0):  # no timestamps in the container
            return nominal
        return own if abs(own - nominal) > 0.5 / self.fps else nominal

    def _own_time_s(self) -> float | None:
        """The last frame's time on the source's own clock, from its first frame, if known."""
        position = self.position_s()
        if position is None or self._first_position_s is None:
            return None
        return position - self._first_position_s

    def _ahead_of_wall_clock(self, margin_s: float) -> bool:
        """Has the stream's clock run more than `margin_s` ahead of the wall clock since the
        source opened? Frames produced live cannot: at most everything since the open can
        have piled up."""
        own = self._own_time_s()
        return own is not None and own > time.monotonic() - self.opened_at + margin_s

    def skip_backlog(self, caught_up_s: float, limit: int, ahead_margin_s: float = 2.0) -> int:
        """Live sources: discard the frames that piled up in FFmpeg's and the socket's buffers
        while nobody read (e.g. while the model loaded), so the first frame classified is a
        live one, not one seconds old. Buffered frames come back at once; two grabs in a row
        that each had to wait longer than `caught_up_s` mean the stream is live (one slow
        grab may be a busy CPU), and the last of them is kept. Returns the number of frames
        discarded (at most `limit`).

        A network source can also be finite and faster than real time (a file behind an
        HTTP URL): its frames never wait. It is recognised, and `runs_ahead` set, when its
        own clock runs more than `ahead_margin_s` ahead of the wall clock since it opened,
        or when it ends before a single grab had to wait."""
        skipped = 0
        if self._pending is not None:
            self._pending, skipped = None, 1
        slow = 0
        waited = False
        while skipped < limit:
            t0 = time.monotonic()
            try:
                if not self._capture.grab():
                    if self.spec.kind is SourceKind.STREAM and skipped and not waited:
                        self.runs_ahead = True  # ended while we were still catching up
                    break  # the next read() fails too and says so
                slow = slow + 1 if time.monotonic() - t0 > caught_up_s else 0
                waited = waited or slow > 0
                if self.spec.kind is SourceKind.STREAM and self._ahead_of_wall_clock(
                    ahead_margin_s
                ):
                    self.runs_ahead = True
                    break
                if slow == 2:
                    ok, frame = self._capture.retrieve()
                    if ok and frame is not None and frame.size:
                        self._pending = frame
                    break
            except cv2.error:
                break
            skipped += 1
        return skipped

    def release(self) -> None:
        self._capture.release()

    def describe(self) -> str:
        fps = f"{self.reported_fps:.2f} fps" if self.reported_fps else "fps unknown"
        return f"{self.spec} ({self.kind.value}, {self.size[0]}x{self.size[1]}, {fps})"


def _first_frame(capture: cv2.VideoCapture) -> np.ndarray | None:
    try:
        ok, frame = capture.read()
    except cv2.error:
        return None
    return frame if ok and frame is not None and frame.size else None


def _with_first_frame(
    spec: SourceSpec, capture: cv2.VideoCapture, not_opened: str, no_frame: str
) -> VideoSource:
    """The source around `capture` and its first frame; otherwise the capture is released
    and the source refused with `not_opened` or `no_frame`."""
    if not capture.isOpened():
        capture.release()
        raise InputError(not_opened)
    frame = _first_frame(capture)
    if frame is None:
        capture.release()
        raise InputError(no_frame)
    return VideoSource(spec, capture, frame)


def _open_file(spec: SourceSpec) -> VideoSource:
    path = Path(spec.target)
    if not path.exists():
        raise InputError(f"video file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a video file")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}: permission denied")
    info = path.stat()
    if stat.S_ISFIFO(info.st_mode):
        raise InputError(
            f"{path} is a named pipe: not supported as --source (give a file, a camera index "
            "or a URL; a stream can be served with `ffmpeg ... -f mpegts tcp://127.0.0.1:PORT?listen`)"
        )
    if not stat.S_ISREG(info.st_mode):
        raise InputError(
            f"{path} is a device or special file, not a video file (a camera: give its index)"
        )
    if info.st_size == 0:
        raise InputError(f"{path} is empty (0 bytes), not a video")
    return _with_first_frame(
        spec,
        cv2.VideoCapture(str(path)),
        f"{path} is not a video OpenCV can read (unknown format or corrupt file)",
        f"{path} has no decodable frames (truncated or corrupt video)",
    )


def _open_camera(spec: SourceSpec, options: CaptureOptions) -> VideoSource:
    capture = cv2.VideoCapture(int(spec.target))
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not a backlog
    return _with_first_frame(
        spec,
        capture,
        f"camera {spec.target} could not be opened (no such device, or it is busy); "
        "check the index, or pass a file or URL to --source",
        f"camera {spec.target} opened but delivered no frame",
    )


def _open_stream(spec: SourceSpec, options: CaptureOptions) -> VideoSource:
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(options.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(options.read_timeout_s * 1000),
    ]
    with _FFMPEG_OPTIONS_LOCK:
        saved = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")
        if options.rtsp_transport and str(spec.target).lower().startswith("rtsp"):
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{options.rtsp_transport}"
        try:
            capture = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, params)
        finally:
            if saved is None:
                os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
            else:
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = saved
    return _with_first_frame(
        spec,
        capture,
        f"could not open stream {spec}: refused, not found, or no answer within "
        f"{options.open_timeout_s:g} s",
        f"stream {spec} opened but sent no frame within {options.read_timeout_s:g} s",
    )


def reopen_source(spec: SourceSpec, options: CaptureOptions | None = None) -> VideoSource:
    """Open again, from the capture thread, a live source that opened before (reconnect).

    Unlike a first open, this never redirects the process's stderr (fd 2) to keep native
    chatter quiet: that redirection is process-wide, and while a reconnect attempt waits up
    to its open timeout it would swallow what the main thread prints meanwhile (the console
    UI, the exit summary, `error:` lines). FFmpeg's own log is already off
    (`silence_opencv_logging`).
    """
    return _open(spec, options or CaptureOptions())


def _open(spec: SourceSpec, options: CaptureOptions) -> VideoSource:
    if spec.kind is SourceKind.FILE:
        return _open_file(spec)
    if spec.kind is SourceKind.CAMERA:
        return _open_camera(spec, options)
    return _open_stream(spec, options)


def open_source(spec: SourceSpec | str, options: CaptureOptions | None = None) -> VideoSource:
    """Open what --source names, or raise InputError with one clear line."""
    silence_opencv_logging()
    spec = parse_source(spec) if isinstance(spec, str) else spec
    options = options or CaptureOptions()
    # OpenCV's container parsers and FFmpeg print their own complaints on fd 2 while probing;
    # we report failures ourselves, in one line.
    with native_stderr_silenced():
        return _open(spec, options)
