"""Which camera an inference worker serves next, and waking the workers when there is work.

`RoundRobin` hands a free worker the newest unread frame of the next camera that has one and
has no frame in flight, going round the cameras from the one after the last served: no camera
starves, no frame is taken twice, and each camera's frames are finished in the order they were
taken (one in flight at a time). `Doorbell` is what an idle worker sleeps on; every FrameRing
rings it when it gets a frame or ends, and `RoundRobin.release` rings it when a camera is free
again.
"""

from __future__ import annotations

import threading

from realtime.stream.capture import END_OF_STREAM, Frame, FrameRing


class Doorbell:
    """Rings counted, so that a worker that looked and found nothing never misses a ring that
    came before it started waiting (`rings` before looking, then `wait_after`)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._rings = 0

    def set(self) -> None:
        with self._cond:
            self._rings += 1
            self._cond.notify_all()

    @property
    def rings(self) -> int:
        with self._cond:
            return self._rings

    def wait_after(self, seen: int, timeout: float) -> None:
        """Return once it has rung since `rings` was `seen`, or after `timeout` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: self._rings != seen, timeout)


class RoundRobin:
    """The turn order over the cameras' rings (any number of workers, thread-safe)."""

    def __init__(self, rings: list[FrameRing], doorbell: Doorbell | None = None):
        self.rings = list(rings)
        self.doorbell = doorbell or Doorbell()
        self._lock = threading.Lock()
        self._ended = [False] * len(self.rings)  # the ring said END_OF_STREAM
        self._busy: set[int] = set()  # cameras with a frame in flight
        self._next = 0  # the camera looked at first by the next take

    def take(self) -> tuple[int, Frame] | None:
        """(camera index, its newest unread frame) for the next camera round robin that has
        one and no frame in flight, which is then in flight until `release`; None if none."""
        with self._lock:
            count = len(self.rings)
            first = self._next
            for k in range(count):
                i = (first + k) % count
                if self._ended[i] or i in self._busy:
                    continue
                item = self.rings[i].take(timeout=0)
                if item is END_OF_STREAM:
                    self._ended[i] = True
                elif item is not None:
                    self._busy.add(i)
                    self._next = (i + 1) % count
                    return i, item
            return None

    def add(self, ring: FrameRing) -> int:
        """A camera joining while the workers run; returns its index (indices never change:
        a camera that leaves is `retire`d, not removed)."""
        with self._lock:
            self.rings.append(ring)
            self._ended.append(False)
            return len(self.rings) - 1

    def retire(self, index: int) -> None:
        """Camera `index` has left: never taken again (a frame in flight still finishes)."""
        with self._lock:
            self._ended[index] = True
        self.doorbell.set()

    def release(self, index: int) -> None:
        """Camera `index`'s frame is finished: its next frame may be taken."""
        with self._lock:
            self._busy.discard(index)
        self.doorbell.set()

    def ended(self, index: int) -> bool:
        with self._lock:
            return self._ended[index]

    @property
    def all_ended(self) -> bool:
        """Every camera's ring has ended and been drained."""
        with self._lock:
            return all(self._ended)
