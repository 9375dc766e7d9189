"""The capture thread and the frame ring buffer it fills.

    source --read--> CaptureThread --sample, preprocess--> FrameRing --take--> inference loop

- `SamplingClock` admits frames at the model's frame rate (from its metadata), judged on the
  source's own clock, so the frames inside a window are spaced in time as in training.
  Frames between sampling ticks are *skipped* (never preprocessed).
- `FrameRing` holds the last `capacity` sampled, preprocessed frames. In live mode the writer
  never waits: the oldest slot is overwritten, and the reader takes the *newest* frame it has
  not processed, so lag cannot build up. Sampled frames the reader had no time for are counted
  as *dropped*, exactly, from the frames' sample numbers. In every-frame mode the writer waits
  for the reader instead (deterministic replay, nothing dropped).
- `CaptureThread` reads, paces a file at its own frame rate (a file replayed as a fake live
  stream), samples, preprocesses and writes into the ring. End of stream and stop are
  explicit: the ring is closed (the reader gets `END_OF_STREAM`), a stop `Event` is honoured.
  A live source is watched by a `ConnectionMonitor` (realtime/reconnect.py): a lost stream
  is reopened with backoff, and frames after a gap or a reconnect start a new `segment`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from realtime.core.errors import Failure, failed
from realtime.frames.clock import SamplingClock
from realtime.frames.preprocessing import preprocess_frame
from realtime.frames.sources import VideoSource
from realtime.stream.reconnect import ConnectionMonitor, OpenAttempt, ReconnectPolicy, SourceState

__all__ = ["CaptureThread", "Frame", "FrameRing", "SamplingClock", "SourceState", "END_OF_STREAM"]


@dataclass
class Frame:
    """One sampled, preprocessed frame on its way to the inference loop."""

    index: int  # position in the source: every frame read counts (0-based)
    sample: int  # sequence number among sampled frames (0-based, no gaps)
    source_time: float  # seconds on the source's clock (file position; live: since start)
    captured_at: float  # clock() when the frame was read (paced files: when it was due)
    image: np.ndarray  # preprocessed RGB uint8, S x S x 3
    display: np.ndarray | None  # the original BGR frame, kept only when something shows it
    decode_ms: float
    preprocess_ms: float
    segment: int = 0  # bumped after a gap in the source: the feature window must restart


class _EndOfStream:
    def __repr__(self) -> str:
        return "END_OF_STREAM"


#: What `FrameRing.take()` returns once the writer has closed the ring and it is drained.
END_OF_STREAM = _EndOfStream()


class FrameRing:
    """Bounded buffer of the newest sampled frames, one writer and one reader.

    `keep_every_frame=False` (live): `put` never blocks, the oldest slot is overwritten, and
    `take` returns the newest unread frame. `keep_every_frame=True` (replay): `put` waits while
    `capacity` frames are unread and `take` returns the oldest unread frame.

    `doorbell`: anything with `set()` (an Event, `realtime.stream.turns.Doorbell`), which the
    writer calls after every `put` and at `close`, so that readers serving several rings (the
    multi-camera inference workers) can sleep until any of them has something, then
    `take(timeout=0)` from each in turn.
    """

    def __init__(
        self,
        capacity: int = 20,
        keep_every_frame: bool = False,
        doorbell=None,
    ):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.keep_every_frame = keep_every_frame
        self._slots: list[Frame | None] = [None] * capacity
        self._cond = threading.Condition()
        self._written = 0  # frames put so far (== next sample number)
        self._read_upto = 0  # every sample number below this has been taken or dropped
        self._taken = 0
        self._closed = False
        self._doorbell = doorbell

    # -- writer side -------------------------------------------------------------------
    def put(self, frame: Frame, stop: threading.Event | None = None) -> bool:
        """Store `frame` (its `sample` must equal `self.written`). False if stopped first."""
        with self._cond:
            if self.keep_every_frame:
                while self._written - self._read_upto >= self.capacity:
                    if stop is not None and stop.is_set():
                        return False
                    self._cond.wait(0.1)
            self._slots[frame.sample % self.capacity] = frame
            self._written += 1
            self._cond.notify_all()
        self._ring_doorbell()
        return True

    def close(self) -> None:
        """End of stream: the reader drains what is left (replay) or the newest (live)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._ring_doorbell()

    def _ring_doorbell(self) -> None:
        if self._doorbell is not None:
            self._doorbell.set()

    # -- reader side -------------------------------------------------------------------
    def take(self, timeout: float | None = None):
        """The next frame to process, `END_OF_STREAM`, or None if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._written == self._read_upto:
                if self._closed:
                    return END_OF_STREAM
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self.keep_every_frame:
                sample = self._read_upto
            else:
                # the newest; frames overwritten or passed over are dropped
                sample = self._written - 1
            frame = self._slots[sample % self.capacity]
            self._read_upto = sample + 1
            self._taken += 1
            self._cond.notify_all()
            return frame

    # -- counters ----------------------------------------------------------------------
    @property
    def written(self) -> int:
        return self._written

    @property
    def taken(self) -> int:
        return self._taken

    @property
    def dropped(self) -> int:
        """Sampled frames the reader passed over (exact; unread frames are not yet dropped)."""
        with self._cond:
            return self._read_upto - self._taken

    @property
    def unread(self) -> int:
        with self._cond:
            return self._written - self._read_upto

    def drop_unread(self) -> int:
        """Reader side, once the reader has stopped for good: the frames still unread will never
        be classified, so they count as dropped from now on. Returns how many there were."""
        with self._cond:
            unread = self._written - self._read_upto
            self._read_upto = self._written
            return unread


@dataclass
class CaptureStats:
    """Counters the capture thread keeps (read by the UI and the summary)."""

    frames_read: int = 0
    frames_sampled: int = 0
    frames_skipped: int = 0  # between sampling ticks: not meant for the model
    frames_stale: int = 0  # live: piled up in buffers before reading began; discarded unread
    loops: int = 0


# Outside mutation testing (tests/mutation.py): its tests run real sources and servers.
class CaptureThread(threading.Thread):  # pragma: no mutate block
    """Reads a source into a FrameRing on its own thread.

    `pace=True` releases a file's frames at the file's own frame rate (fake live stream);
    live sources are never paced (the source itself is). `keep_display` keeps the original
    frame for the window UI or the recorder. A live source that stops delivering (a read
    fails or times out) is reopened with `reopen` as `reconnect` allows; every wait is an
    `Event` wait and every open runs as an abandonable `OpenAttempt`, so a stop request is
    honoured at once (a read already in progress still ends within the read timeout).

    `source=None`: the source could not be opened at start (`open_error` says why); the thread
    begins by retrying it as `reconnect` allows (a camera of a multi-camera run that is down
    when the run starts), and fails at once when no retry is allowed. `live` then says what
    kind of source it is.
    """

    def __init__(
        self,
        source: VideoSource | None,
        ring: FrameRing,
        *,
        image_size: int,
        sampling_fps: float | None,
        stop: threading.Event,
        pace: bool,
        keep_display: bool = False,
        loop: bool = False,
        max_frames: int | None = None,
        reopen: Callable[[], VideoSource] | None = None,
        reconnect: ReconnectPolicy | None = None,
        monitor: ConnectionMonitor | None = None,
        clock: Callable[[], float] = time.monotonic,
        live: bool | None = None,
        open_error: str = "",
        name: str = "capture",
    ):
        super().__init__(name=name, daemon=True)
        self.live = source.is_live if live is None else live
        self.open_error = open_error
        self._was_open = source is not None
        self.source = source
        self.ring = ring
        self.image_size = image_size
        self.sampler = SamplingClock(sampling_fps)
        self.stop_event = stop
        self.pace = pace
        self.keep_display = keep_display
        self.loop = loop
        self.max_frames = max_frames
        self.reopen = reopen
        self.clock = clock
        self.stats = CaptureStats()
        self.monitor = monitor or ConnectionMonitor(
            reconnect or ReconnectPolicy(attempts=0),
            watch=self.live,
            sampling_period_s=1.0 / sampling_fps if sampling_fps else 0.0,
            clock=clock,
        )
        self.failure: Failure | None = None
        #: a network source found to run ahead of real time (see `_skip_backlog`)
        self.plays_like_file = False
        self.finished = threading.Event()

    @property
    def state(self) -> SourceState:
        return self.monitor.state

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a broken stream ends the run cleanly, with a reason
            self.failure = failed(f"capture failed: {exc}", exc)
            self.monitor.failed(self.failure.message)
        finally:
            if self.stop_event.is_set():
                self.monitor.stopped()
            else:
                self.monitor.ended()
            self.ring.close()
            try:
                if self.source is not None:
                    self.source.release()
            finally:
                self.finished.set()

    def _skip_backlog(self) -> None:
        if not self.source.is_live or self.plays_like_file:
            return
        fps = self.source.fps
        skipped = self.source.skip_backlog(0.5 / fps, int(30 * fps))
        if not self.source.runs_ahead or self.reopen is None:
            self.stats.frames_stale += skipped
            return
        # Frames come faster than real time: a file behind a URL, not a live stream. Start it
        # over and play it like a file: paced at its own frame rate, timed like a file
        # (`VideoSource.frame_time`), and its end is the end of the run, not a lost stream.
        self.source.release()
        self.source = None
        attempt = OpenAttempt.made(self.reopen, self.stop_event)
        self.source = attempt.result
        if self.source is None and not self.stop_event.is_set():
            raise RuntimeError(
                f"could not restart a stream that plays like a file: {attempt.error}"
            )
        self.plays_like_file = True

    def _run(self) -> None:
        if self.source is None:  # not opened at start: retried as the policy allows
            if not self._reconnect(self.open_error or "could not open the source"):
                return
        self._skip_backlog()
        if self.source is None:  # stopped while a stream that plays like a file restarted
            return
        self.monitor.connected()
        start = self.clock()
        file_fps = self.source.fps
        offset = 0.0  # source time where the current pass over a looped file starts
        index_in_pass, pass_length = 0, 0.0
        while not self.stop_event.is_set():
            if self.max_frames is not None and self.stats.frames_read >= self.max_frames:
                return
            t0 = self.clock()
            frame = self.source.read()
            t1 = self.clock()
            decode_ms = (t1 - t0) * 1000.0
            if frame is None:
                if self.loop and not self.source.is_live and self.reopen and index_in_pass:
                    self.source.release()
                    self.source = self.reopen()
                    offset += pass_length
                    index_in_pass = 0
                    self.stats.loops += 1
                    continue
                if self.source.is_live and not self.plays_like_file:
                    if self._reconnect(f"read failed after {t1 - t0:.1f} s (closed or timed out)"):
                        continue
                return
            index = self.stats.frames_read
            self.stats.frames_read += 1
            segment = self.monitor.frame(t1)
            if self.source.is_live and not self.plays_like_file:
                source_time = t1 - start
            else:
                in_pass = self.source.frame_time(index_in_pass)
                pass_length = in_pass + 1.0 / file_fps
                source_time = offset + in_pass
                index_in_pass += 1
                if self.pace or self.plays_like_file:
                    delay = start + source_time - self.clock()
                    if delay > 0 and self.stop_event.wait(delay):
                        return
                    t1 = self.clock()
            if not self.sampler.admit(source_time):
                self.stats.frames_skipped += 1
                continue
            image = preprocess_frame(frame, self.image_size)
            t2 = self.clock()
            item = Frame(
                index=index,
                sample=self.stats.frames_sampled,
                source_time=source_time,
                captured_at=t1,
                image=image,
                display=frame if self.keep_display else None,
                decode_ms=decode_ms,
                preprocess_ms=(t2 - t1) * 1000.0,
                segment=segment,
            )
            if not self.ring.put(item, self.stop_event):
                return
            self.stats.frames_sampled += 1

    def _reconnect(self, reason: str) -> bool:
        """The live source stopped delivering: reopen it with backoff. True once live again;
        False when stopped or when the policy gives up (state `failed`, `failure` set)."""
        self.monitor.lost(reason)
        if self.source is not None:
            self.source.release()
            self.source = None
        while not self.stop_event.is_set():
            delay = self.monitor.next_attempt() if self.reopen else None
            if delay is None:
                if not self.reopen:
                    self.monitor.failed(reason)
                what = "the stream was lost" if self._was_open else "could not open the source"
                self.failure = failed(f"{what}: {self.monitor.reason}")
                return False
            if self.stop_event.wait(delay):
                return False
            attempt = OpenAttempt.made(self.reopen, self.stop_event)
            if attempt.result is not None:
                self.source = attempt.result
                self._was_open = True
                self._skip_backlog()
                self.sampler.reset()
                self.monitor.connected()
                return True
            if attempt.error:
                self.monitor.attempt_failed(attempt.error)
        return False
