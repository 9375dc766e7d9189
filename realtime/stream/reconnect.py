"""Keeping a live source up: its connection states, the reconnect policy and its backoff.

    connecting --open--> live --silent for stall_after_s--> stalled --frame--> live
        |                 |                                    |
        |                 +------read failed / timed out-------+--> reconnecting --open--> live
        +---------------- not opened at start -------------------->   (attempt failed: wait,
                                                                        try again) |
                                                                 attempts used up --> failed
    any state --stop--> stopped;  live/stalled --end of a file--> ended

`ConnectionMonitor` is the state machine. The capture thread drives it (`connected`, `frame`,
`lost`, `next_attempt`, `attempt_failed`, `ended`, `stopped`, `failed`); anything else may
call `poll()`, which is also the read watchdog: a live source that has sent nothing for
`stall_after_s` (a few frame intervals: `stall_intervals` times the larger of the source's
measured frame interval and the model's sampling period, at least `min_stall_s`) is marked
stalled even while the capture thread still waits inside a (bounded) read.

The monitor also numbers *segments*: the segment changes after every gap in the source
(judged on capture timestamps) and after every reconnect, and the inference engine restarts
its feature window when it does, so frames from before and after a gap are never classified
as one sequence.

`ReconnectPolicy` says how often and how patiently to retry: exponential backoff
(`initial_delay_s * factor**(attempt-1)`, capped at `max_delay_s`) with +/- `jitter` so that
many clients of one camera do not retry in lock step. Time and randomness are injectable.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from realtime.core.errors import log
from realtime.core.textenum import TextEnum


class SourceState(TextEnum):
    """What the capture side is doing; shown in both UIs and in the JSONL output."""

    CONNECTING = "connecting"
    LIVE = "live"
    STALLED = "stalled"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    FAILED = "failed"
    STOPPED = "stopped"


S = SourceState
TERMINAL = frozenset({S.ENDED, S.FAILED, S.STOPPED})
#: Every transition the machine allows; anything else is a bug and raises.
TRANSITIONS: dict[SourceState, frozenset[SourceState]] = {
    S.CONNECTING: frozenset({S.LIVE, S.RECONNECTING, S.FAILED, S.STOPPED}),
    S.LIVE: frozenset({S.STALLED, S.ENDED, S.FAILED, S.STOPPED}),
    S.STALLED: frozenset({S.LIVE, S.RECONNECTING, S.ENDED, S.FAILED, S.STOPPED}),
    S.RECONNECTING: frozenset({S.LIVE, S.FAILED, S.STOPPED}),
    S.ENDED: frozenset(),
    S.FAILED: frozenset(),
    S.STOPPED: frozenset(),
}

FOREVER = None


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a lost live source is retried. `attempts`: 0 = never, None = forever."""

    attempts: int | None = FOREVER
    initial_delay_s: float = 0.5
    max_delay_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2  # each delay is multiplied by a uniform factor in [1-jitter, 1+jitter]

    def __post_init__(self):
        if self.attempts is not None and self.attempts < 0:
            raise ValueError("attempts must be >= 0 or None (forever)")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    @property
    def enabled(self) -> bool:
        return self.attempts is None or self.attempts > 0

    def allows(self, attempt: int) -> bool:
        """May attempt number `attempt` (1-based) be made?"""
        return self.attempts is None or attempt <= self.attempts

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait before attempt `attempt` (1-based); `rand` is uniform in [0, 1)."""
        base = min(self.max_delay_s, self.initial_delay_s * self.factor ** max(0, attempt - 1))
        return base * (1.0 + self.jitter * (2.0 * rand - 1.0))


def parse_reconnect(text: str) -> int | None:
    """`--reconnect` value: a whole number of attempts (0 = off) or 'forever'."""
    value = str(text).strip().lower()
    if value in ("forever", "always", "inf"):
        return FOREVER
    if value in ("off", "no", "never"):
        return 0
    if not (value.isascii() and value.isdigit()):
        raise ValueError(f"{text!r} is not a number of attempts or 'forever'")
    if len(value) > 6:
        raise ValueError(f"{text} attempts is more than 999999 (use 'forever')")
    return int(value)


@dataclass(frozen=True)
class StateChange:
    """One transition, as the JSONL output records it."""

    state: SourceState
    previous: SourceState
    wall_time: float  # Unix time
    segment: int
    attempt: int = 0  # reconnect attempt number (reconnecting), 0 otherwise
    max_attempts: int | None = None
    next_delay_s: float | None = None  # reconnecting: wait before this attempt
    reason: str = ""

    def to_record(self) -> dict:
        record = {
            "type": "source_state",
            "source_state": self.state.value,
            "previous": self.previous.value,
            "wall_time": round(self.wall_time, 4),
            "segment": self.segment,
        }
        if self.state == S.RECONNECTING:
            record["attempt"] = self.attempt
            record["max_attempts"] = self.max_attempts
            record["next_delay_s"] = round(self.next_delay_s or 0.0, 3)
        if self.reason:
            record["reason"] = self.reason
        return record


class ConnectionMonitor:
    """The explicit state machine of one live source (thread-safe; see the module doc)."""

    def __init__(
        self,
        policy: ReconnectPolicy | None = None,
        *,
        watch: bool = True,
        sampling_period_s: float = 0.0,
        stall_intervals: float = 5.0,
        min_stall_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rand: Callable[[], float] | None = None,
        history: int = 256,
    ):
        self.policy = policy or ReconnectPolicy()
        self.watch = watch  # False: no watchdog and no gap detection (files)
        self.sampling_period_s = sampling_period_s
        self.stall_intervals = stall_intervals
        self.min_stall_s = min_stall_s
        self._intervals: deque[float] = deque(maxlen=51)
        self.clock = clock
        self.wall_clock = wall_clock
        self.rand = rand or random.Random().random
        self._lock = threading.Lock()
        self._state = S.CONNECTING
        self._segment = 0
        self._attempt = 0  # attempts in the current outage
        self._next_delay: float | None = None
        self._attempt_due: float | None = None
        self._last_frame_at: float | None = None
        self._reason = ""
        self.reconnects = 0  # successful reconnects over the run
        self.history: deque[StateChange] = deque(maxlen=history)
        self._pending: deque[StateChange] = deque(maxlen=history)

    # -- reading -------------------------------------------------------------------------
    @property
    def state(self) -> SourceState:
        return self._state

    @property
    def segment(self) -> int:
        return self._segment

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def stall_after_s(self) -> float:
        """Silence longer than this is a gap (window restart) and, while it lasts, a stall."""
        with self._lock:
            return self._stall_after()

    def _stall_after(self) -> float:
        intervals = sorted(self._intervals)
        measured = intervals[len(intervals) // 2] if intervals else 0.0
        typical = max(measured, self.sampling_period_s)
        return max(self.min_stall_s, self.stall_intervals * typical)

    def describe(self) -> str:
        """The state with what a person wants to know about it, e.g. 'reconnecting 2/5 in 1.0 s'."""
        with self._lock:
            now = self.clock()
            state = self._state
            if state == S.STALLED and self._last_frame_at is not None:
                return f"stalled ({now - self._last_frame_at:.1f} s without a frame)"
            if state == S.RECONNECTING:
                limit = "" if self.policy.attempts is None else f"/{self.policy.attempts}"
                text = f"reconnecting {self._attempt}{limit}"
                if self._attempt_due is not None and self._attempt_due > now:
                    text += f" in {self._attempt_due - now:.1f} s"
                return text
            if state == S.FAILED and self._reason:
                return f"failed ({self._reason})"
            return state.value

    def poll(self) -> list[StateChange]:
        """Run the watchdog, then hand over the transitions made since the last poll."""
        with self._lock:
            self._check_silence(self.clock())
            changes = list(self._pending)
            self._pending.clear()
            return changes

    # -- driven by the capture thread ----------------------------------------------------
    def connected(self) -> None:
        """The source opened and can deliver frames (first time or after a reconnect)."""
        with self._lock:
            if self._state == S.RECONNECTING and self._last_frame_at is not None:
                self.reconnects += 1  # not a source that opens late, after failing at start
                self._segment += 1  # frames after the outage never join the window before it
            self._attempt = 0
            self._next_delay = self._attempt_due = None
            self._last_frame_at = self.clock()
            self._go(S.LIVE)

    def frame(self, now: float) -> int:
        """A frame arrived at `now` (capture clock). Returns its segment number."""
        with self._lock:
            silence = None if self._last_frame_at is None else now - self._last_frame_at
            gap = self.watch and silence is not None and silence > self._stall_after()
            if gap:
                self._segment += 1
            elif silence is not None:
                self._intervals.append(silence)
            self._last_frame_at = now
            if self._state == S.STALLED:
                self._go(S.LIVE, reason="frames resumed")
            return self._segment

    def lost(self, reason: str) -> None:
        """A read failed or timed out: the source is stalled until reconnected or given up."""
        with self._lock:
            self._reason = reason
            if self._state == S.LIVE:
                self._go(S.STALLED, reason=reason)

    def next_attempt(self) -> float | None:
        """Start the next reconnect attempt: the delay to wait first, or None when the policy
        allows no more attempts (the state is then `failed`)."""
        with self._lock:
            attempt = self._attempt + 1
            if not self.policy.allows(attempt):
                if self.policy.enabled:
                    self._reason = f"{self._reason}; gave up after {self._attempt} attempts"
                self._go(S.FAILED, reason=self._reason)
                return None
            self._attempt = attempt
            self._next_delay = self.policy.delay(attempt, self.rand())
            self._attempt_due = self.clock() + self._next_delay
            self._go(S.RECONNECTING, reason=self._reason, force=True)
            return self._next_delay

    def attempt_failed(self, reason: str) -> None:
        with self._lock:
            self._reason = reason

    def ended(self) -> None:
        with self._lock:
            if self._state not in TERMINAL:
                self._go(S.ENDED)

    def stopped(self) -> None:
        with self._lock:
            if self._state not in TERMINAL:
                self._go(S.STOPPED)

    def failed(self, reason: str) -> None:
        with self._lock:
            self._reason = reason
            if self._state not in TERMINAL:
                self._go(S.FAILED, reason=reason)

    @property
    def reason(self) -> str:
        return self._reason

    # -- internals (lock held) -----------------------------------------------------------
    def _check_silence(self, now: float) -> None:
        if (
            self._state == S.LIVE
            and self.watch
            and self._last_frame_at is not None
            and now - self._last_frame_at > self._stall_after()
        ):
            self._go(S.STALLED, reason=f"no frame for {now - self._last_frame_at:.1f} s")

    def _go(self, state: SourceState, reason: str = "", force: bool = False) -> None:
        previous = self._state
        if state == previous and not force:
            return
        if state != previous and state not in TRANSITIONS[previous]:
            raise RuntimeError(f"source state cannot go from {previous.value} to {state.value}")
        self._state = state
        change = StateChange(
            state=state,
            previous=previous,
            wall_time=self.wall_clock(),
            segment=self._segment,
            attempt=self._attempt if state == S.RECONNECTING else 0,
            max_attempts=self.policy.attempts,
            next_delay_s=self._next_delay if state == S.RECONNECTING else None,
            reason=reason,
        )
        self.history.append(change)
        self._pending.append(change)


class OpenAttempt(threading.Thread):
    """One (bounded) open call on its own short-lived thread, so that a stop request never
    waits for it: `wait()` returns as soon as the stop event is set; a source that opens after
    it was abandoned is released right away."""

    def __init__(self, opener: Callable[[], object]):
        super().__init__(name="open-attempt", daemon=True)
        self._opener = opener
        self._lock = threading.Lock()
        self._abandoned = False
        self.result = None
        self.exception: Exception | None = None  # what the open raised, kept whole
        self.done = threading.Event()

    @property
    def error(self) -> str | None:
        """Why the open failed, in one line (an InputError carries the user's reason)."""
        if self.exception is None:
            return None
        return str(self.exception) or type(self.exception).__name__

    def run(self) -> None:
        try:
            result = self._opener()
        except Exception as exc:  # InputError carries the one-line reason
            result, self.exception = None, exc
            log.debug("open failed", exc_info=exc)
        with self._lock:
            if self._abandoned:
                if result is not None:
                    result.release()
                result = None
            self.result = result
        self.done.set()

    @classmethod
    def made(cls, opener: Callable[[], object], stop: threading.Event) -> OpenAttempt:
        """An attempt started and waited for (see `wait`): its `result` is the opened source,
        or None (then `error` says why, unless `stop` was set first)."""
        attempt = cls(opener)
        attempt.start()
        attempt.result = attempt.wait(stop)
        return attempt

    def wait(self, stop: threading.Event, poll_s: float = 0.05):
        """The opened source; None if the open failed (see `error`) or `stop` was set first."""
        while not self.done.wait(poll_s):
            if stop.is_set():
                with self._lock:
                    self._abandoned = True
                    if self.result is None:
                        return None
                break
        self.join()
        if stop.is_set() and self.result is not None:
            self.result.release()
            return None
        return self.result
