"""The reconnect state machine and its backoff policy, on an injected clock (no network)."""

from __future__ import annotations

import logging
import random
import threading
import time

import pytest

from realtime.stream.reconnect import (
    TRANSITIONS,
    ConnectionMonitor,
    OpenAttempt,
    ReconnectPolicy,
    SourceState,
    parse_reconnect,
)
from tests.conftest import FakeClock

S = SourceState


def test_backoff_doubles_up_to_the_cap_without_jitter():
    policy = ReconnectPolicy(initial_delay_s=0.5, factor=2.0, max_delay_s=10.0, jitter=0.0)
    delays = [policy.delay(n, rand=0.9) for n in range(1, 9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_jitter_spreads_delays_within_its_bounds():
    policy = ReconnectPolicy(initial_delay_s=1.0, factor=2.0, max_delay_s=30.0, jitter=0.2)
    assert policy.delay(3, rand=0.0) == pytest.approx(4.0 * 0.8)
    assert policy.delay(3, rand=0.5) == pytest.approx(4.0)
    rng = random.Random(7)
    samples = [policy.delay(3, rng.random()) for _ in range(500)]
    assert 3.2 <= min(samples) and max(samples) <= 4.8
    assert max(samples) - min(samples) > 1.0  # really spread, not one value


def test_policy_attempt_limits():
    assert not ReconnectPolicy(attempts=0).enabled
    three = ReconnectPolicy(attempts=3)
    assert [three.allows(n) for n in (1, 3, 4)] == [True, True, False]
    assert ReconnectPolicy(attempts=None).allows(10_000)
    with pytest.raises(ValueError):
        ReconnectPolicy(attempts=-1)


@pytest.mark.parametrize(
    "text, expected", [("forever", None), ("0", 0), ("off", 0), ("5", 5), (" 12 ", 12)]
)
def test_parse_reconnect(text, expected):
    assert parse_reconnect(text) == expected


@pytest.mark.parametrize("text", ["-1", "two", "1.5", ""])
def test_parse_reconnect_rejects(text):
    with pytest.raises(ValueError):
        parse_reconnect(text)


def live_monitor(clock, **kw):
    monitor = ConnectionMonitor(
        kw.pop("policy", ReconnectPolicy(attempts=3, jitter=0.0)),
        clock=clock,
        wall_clock=clock,
        rand=lambda: 0.5,
        **kw,
    )
    monitor.connected()
    return monitor


def feed(monitor, clock, n, interval):
    return [monitor.frame(clock.advance(interval)) for _ in range(n)]


def test_watchdog_marks_a_silent_source_stalled_and_a_resumed_one_live_in_a_new_segment():
    clock = FakeClock()
    monitor = live_monitor(clock, sampling_period_s=0.04)
    assert feed(monitor, clock, 30, 0.04) == [0] * 30
    assert monitor.stall_after_s == pytest.approx(0.25)  # 5 x 40 ms, at least 0.25 s
    clock.advance(0.2)
    monitor.poll()
    assert monitor.state == S.LIVE  # 0.2 s of silence: still live
    clock.advance(0.1)
    changes = monitor.poll()
    assert monitor.state == S.STALLED
    assert [(c.previous, c.state) for c in changes][-1] == (S.LIVE, S.STALLED)
    assert "stalled" in monitor.describe()
    # frames resume before the read gave up: live again, and a new segment (window restart)
    assert monitor.frame(clock.advance(0.5)) == 1
    assert monitor.state == S.LIVE
    assert feed(monitor, clock, 5, 0.04) == [1] * 5


def test_gap_threshold_follows_the_measured_frame_interval():
    clock = FakeClock()
    monitor = live_monitor(clock, sampling_period_s=0.04)
    feed(monitor, clock, 20, 0.2)  # a 5 fps camera: 0.2 s between frames is normal
    assert monitor.stall_after_s == pytest.approx(1.0)
    assert feed(monitor, clock, 20, 0.2) == [0] * 20
    assert monitor.frame(clock.advance(1.1)) == 1


def test_lost_stream_reconnects_with_backoff_and_starts_a_new_segment():
    clock = FakeClock()
    monitor = live_monitor(clock, sampling_period_s=0.04)
    feed(monitor, clock, 10, 0.04)
    monitor.lost("read failed")
    assert monitor.state == S.STALLED
    assert monitor.next_attempt() == pytest.approx(0.5)
    assert monitor.state == S.RECONNECTING
    assert monitor.describe() == "reconnecting 1/3 in 0.5 s"
    monitor.attempt_failed("refused")
    clock.advance(0.5)
    assert monitor.next_attempt() == pytest.approx(1.0)
    assert monitor.attempt == 2
    monitor.connected()
    assert monitor.state == S.LIVE and monitor.reconnects == 1
    assert monitor.frame(clock.advance(0.04)) == 1  # the first frame after a reconnect
    assert monitor.frame(clock.advance(0.04)) == 1
    # the next outage starts counting attempts from 1 again
    monitor.lost("read failed")
    assert monitor.next_attempt() == pytest.approx(0.5)
    states = [(c.previous.value, c.state.value, c.attempt) for c in monitor.history]
    assert states == [
        ("connecting", "live", 0),
        ("live", "stalled", 0),
        ("stalled", "reconnecting", 1),
        ("reconnecting", "reconnecting", 2),
        ("reconnecting", "live", 0),
        ("live", "stalled", 0),
        ("stalled", "reconnecting", 1),
    ]


def test_attempts_run_out_and_the_source_fails_with_the_last_reason():
    clock = FakeClock()
    monitor = live_monitor(clock, policy=ReconnectPolicy(attempts=2, jitter=0.0))
    monitor.lost("read failed")
    assert monitor.next_attempt() is not None
    monitor.attempt_failed("no answer within 2 s")
    assert monitor.next_attempt() is not None
    monitor.attempt_failed("no answer within 2 s")
    assert monitor.next_attempt() is None
    assert monitor.state == S.FAILED
    assert "no answer within 2 s" in monitor.reason and "gave up after 2" in monitor.reason
    record = monitor.history[-1].to_record()
    assert record["type"] == "source_state" and record["source_state"] == "failed"


def test_reconnect_off_fails_at_once():
    clock = FakeClock()
    monitor = live_monitor(clock, policy=ReconnectPolicy(attempts=0))
    monitor.lost("read failed")
    assert monitor.next_attempt() is None
    assert monitor.state == S.FAILED and monitor.reason == "read failed"


def test_illegal_transitions_raise_and_terminal_states_are_final():
    clock = FakeClock()
    monitor = live_monitor(clock)
    monitor.stopped()
    assert monitor.state == S.STOPPED
    monitor.ended()  # no effect once terminal
    assert monitor.state == S.STOPPED
    with pytest.raises(RuntimeError):
        monitor.connected()
    assert all(not TRANSITIONS[s] for s in (S.ENDED, S.FAILED, S.STOPPED))


def test_a_source_that_opens_late_after_failing_at_start_is_not_a_reconnect():
    """connecting -> reconnecting (a camera down when the run starts, retried) -> live: its
    first connection, not a reconnect, and its frames start segment 0."""
    clock = FakeClock()
    monitor = ConnectionMonitor(
        ReconnectPolicy(attempts=3, jitter=0.0), clock=clock, rand=lambda: 0.5
    )
    assert monitor.next_attempt() == 0.5
    assert monitor.state == S.RECONNECTING
    monitor.attempt_failed("refused")
    assert monitor.next_attempt() == 1.0
    monitor.connected()
    assert (monitor.state, monitor.reconnects, monitor.segment) == (S.LIVE, 0, 0)
    names = [(c.previous, c.state) for c in monitor.history]
    assert names == [(S.CONNECTING, S.RECONNECTING), (S.RECONNECTING, S.RECONNECTING),
                     (S.RECONNECTING, S.LIVE)]  # fmt: skip
    # once it has been live, the next outage's reconnect counts
    monitor.lost("read failed")
    monitor.next_attempt()
    monitor.connected()
    assert (monitor.reconnects, monitor.segment) == (1, 1)


def test_files_have_no_watchdog():
    clock = FakeClock()
    monitor = live_monitor(clock, watch=False)
    feed(monitor, clock, 5, 0.04)
    clock.advance(60)
    monitor.poll()
    assert monitor.state == S.LIVE
    assert monitor.frame(clock.advance(0.04)) == 0


def test_poll_hands_over_each_change_once():
    clock = FakeClock()
    monitor = live_monitor(clock)
    first = monitor.poll()
    assert [c.state for c in first] == [S.LIVE]
    assert monitor.poll() == []


class _Released:
    def __init__(self):
        self.released = threading.Event()

    def release(self):
        self.released.set()


def test_an_abandoned_open_returns_at_once_and_its_late_result_is_released():
    opened = _Released()
    gate = threading.Event()

    def slow_open():
        gate.wait(5)
        return opened

    stop = threading.Event()
    attempt = OpenAttempt(slow_open)
    attempt.start()
    threading.Timer(0.1, stop.set).start()
    t0 = time.monotonic()
    assert attempt.wait(stop) is None
    # at once (the wait checks the stop every 50 ms), not after the open's 5 s: 1 s is 20
    # times the promise and still fails a wait that checks once a second
    assert time.monotonic() - t0 < 1.0
    gate.set()
    attempt.join(5)
    assert not attempt.is_alive()
    assert opened.released.is_set()


def test_a_stop_between_the_open_finishing_and_its_attempt_ending_releases_the_source():
    """The narrow window: the open has succeeded and stored its source, but the attempt has
    not yet said it is done, when the stop arrives. The waiter must still release that
    source (nobody else will) and return None. The window is held open deterministically:
    the attempt's `done.set()` blocks until the test lets it go."""
    opened = _Released()
    reached, proceed = threading.Event(), threading.Event()

    class HeldDone(threading.Event):
        def set(self):
            reached.set()  # the source is stored: run() is past its lock
            proceed.wait(5)
            super().set()

    stop = threading.Event()
    attempt = OpenAttempt(lambda: opened)
    attempt.done = HeldDone()
    attempt.start()
    assert reached.wait(5)
    stop.set()
    threading.Timer(0.2, proceed.set).start()  # after wait() has seen the stop
    assert attempt.wait(stop) is None
    assert opened.released.is_set()
    assert not attempt.is_alive()


def test_a_failed_open_reports_its_error():
    def refuse():
        raise OSError("connection refused")

    attempt = OpenAttempt(refuse)
    attempt.start()
    assert attempt.wait(threading.Event()) is None
    assert attempt.error == "connection refused"


def test_a_failed_open_keeps_its_exception_and_logs_its_traceback(caplog):
    refused = OSError("connection refused")

    def refuse():
        raise refused

    caplog.set_level(logging.DEBUG, logger="realtime")
    attempt = OpenAttempt.made(refuse, threading.Event())
    assert attempt.result is None and attempt.exception is refused
    (record,) = [r for r in caplog.records if r.name == "realtime"]
    assert record.getMessage() == "open failed" and record.levelno == logging.DEBUG
    assert record.exc_info[1] is refused  # with -v, the traceback is shown


def test_state_records_carry_every_field_and_the_reason_of_each_change():
    """What the JSONL says about the source, field by field, through an outage: the stall
    with its reason, each attempt with its number, limit and wait, the reason carried along,
    the failure, and the watchdog's own reason with the silence it measured."""
    clock = FakeClock(100.0)
    monitor = live_monitor(clock, sampling_period_s=0.04, policy=ReconnectPolicy(2, jitter=0.0))
    feed(monitor, clock, 5, 0.04)
    clock.advance(0.123456)
    monitor.lost("read failed")
    monitor.next_attempt()
    monitor.attempt_failed("refused")
    monitor.next_attempt()
    monitor.attempt_failed("refused again")
    monitor.next_attempt()
    records = [c.to_record() for c in monitor.history]
    base = {"type": "source_state", "segment": 0}
    assert records == [
        {**base, "source_state": "live", "previous": "connecting", "wall_time": 100.0},
        {**base, "source_state": "stalled", "previous": "live", "wall_time": 100.3235,
         "reason": "read failed"},
        {**base, "source_state": "reconnecting", "previous": "stalled", "wall_time": 100.3235,
         "attempt": 1, "max_attempts": 2, "next_delay_s": 0.5, "reason": "read failed"},
        {**base, "source_state": "reconnecting", "previous": "reconnecting",
         "wall_time": 100.3235, "attempt": 2, "max_attempts": 2, "next_delay_s": 1.0,
         "reason": "refused"},
        {**base, "source_state": "failed", "previous": "reconnecting", "wall_time": 100.3235,
         "reason": "refused again; gave up after 2 attempts"},
    ]  # fmt: skip
    assert monitor.describe() == "failed (refused again; gave up after 2 attempts)"
    # the watchdog's stall says how long the silence was
    watched = live_monitor(FakeClock(10.0), sampling_period_s=0.04)
    watched.clock.advance(0.75)
    stall = watched.poll()[-1]
    assert stall.to_record()["reason"] == "no frame for 0.8 s"
    assert watched.describe() == "stalled (0.8 s without a frame)"


def test_describe_for_every_state():
    clock = FakeClock()
    forever = live_monitor(clock, policy=ReconnectPolicy(attempts=None, jitter=0.0))
    assert forever.describe() == "live"
    forever.lost("read failed")
    assert forever.describe() == "stalled (0.0 s without a frame)"
    forever.next_attempt()
    assert forever.describe() == "reconnecting 1 in 0.5 s"  # no limit shown
    clock.advance(0.5)
    assert forever.describe() == "reconnecting 1"  # due now: no wait left to show
    forever.failed("")
    assert forever.describe() == "failed"  # no reason: the state alone
    ended = live_monitor(clock)
    ended.ended()
    assert ended.describe() == "ended"


def test_the_stall_threshold_is_the_median_interval_times_five():
    clock = FakeClock(0.0)  # binary fractions below: every sum and difference is exact
    monitor = live_monitor(clock, sampling_period_s=0.0)
    monitor.poll()
    assert monitor.stall_after_s == 0.25  # nothing measured yet: the floor
    for interval in (0.125, 0.125, 0.25, 0.5, 0.5):  # sorted; the median is 0.25
        monitor.frame(clock.advance(interval))
    assert monitor.stall_after_s == 5 * 0.25
    clock.advance(1.25)
    assert monitor.poll() == []  # exactly at the threshold: not yet a stall
    clock.advance(0.125)
    assert [c.state for c in monitor.poll()] == [S.STALLED]


def test_policy_and_flag_values_at_their_limits():
    with pytest.raises(ValueError, match=r"^attempts must be >= 0 or None \(forever\)$"):
        ReconnectPolicy(attempts=-1)
    with pytest.raises(ValueError, match=r"^jitter must be in \[0, 1\)$"):
        ReconnectPolicy(jitter=1.0)
    assert ReconnectPolicy(jitter=0.999).jitter == 0.999
    for word in ("forever", "always", "inf", "INF"):
        assert parse_reconnect(word) is None
    for word in ("off", "no", "never", "Never"):
        assert parse_reconnect(word) == 0
    assert parse_reconnect("999999") == 999999
    too_many = r"^1000000 attempts is more than 999999 \(use 'forever'\)$"
    with pytest.raises(ValueError, match=too_many):
        parse_reconnect("1000000")
    with pytest.raises(ValueError, match=r"^'x' is not a number of attempts or 'forever'$"):
        parse_reconnect("x")


def test_monitor_counts_every_reconnect_and_segment():
    clock = FakeClock(0.0)
    monitor = live_monitor(clock, sampling_period_s=0.0)
    assert monitor.reason == "" and monitor.stall_after_s == 0.25  # the floor, nothing measured
    for outage in (1, 2):
        monitor.lost("read failed")
        monitor.next_attempt()
        monitor.connected()
        assert monitor.reconnects == outage and monitor.segment == outage
    feed(monitor, clock, 3, 0.125)
    monitor.frame(clock.advance(1.0))  # a gap (> 5 x 0.125 s): a new segment
    monitor.frame(clock.advance(1.0))
    assert monitor.segment == 4
    monitor.failed("boom")
    assert monitor.reason == "boom"
    assert monitor.history[-1].to_record()["reason"] == "boom"


def test_changes_carry_attempt_and_delay_only_while_reconnecting():
    clock = FakeClock(0.0)
    monitor = live_monitor(clock, policy=ReconnectPolicy(attempts=1, jitter=0.2))
    monitor.lost("read failed")
    monitor.next_attempt()
    monitor.next_attempt()  # no attempts left: failed
    reconnecting, failed = monitor.history[-2], monitor.history[-1]
    assert (reconnecting.attempt, reconnecting.next_delay_s) == (1, 0.5)  # rand 0.5: no jitter
    assert (failed.state, failed.attempt, failed.next_delay_s) == (S.FAILED, 0, None)
    ended = live_monitor(clock)
    ended.ended()
    assert "reason" not in ended.history[-1].to_record()


def test_the_injected_random_source_sets_the_jitter():
    monitor = ConnectionMonitor(
        ReconnectPolicy(jitter=0.2), clock=FakeClock(), wall_clock=FakeClock(), rand=lambda: 0.0
    )
    monitor.connected()
    monitor.lost("read failed")
    assert monitor.next_attempt() == pytest.approx(0.5 * 0.8)  # the lowest jitter
    assert monitor.attempt == 1


def test_delay_rounding_history_bound_and_resumed_reason():
    clock = FakeClock(0.0)
    monitor = live_monitor(
        clock, policy=ReconnectPolicy(initial_delay_s=0.123456, jitter=0.0), history=4
    )
    monitor.lost("read failed")
    monitor.next_attempt()
    assert monitor.history[-1].to_record()["next_delay_s"] == 0.123
    monitor.connected()
    clock.advance(10)
    monitor.poll()  # stalled by the watchdog
    monitor.frame(clock.advance(0.01))
    assert monitor.history[-1].to_record()["reason"] == "frames resumed"
    assert len(monitor.history) == 4  # the oldest changes are forgotten
    default = ConnectionMonitor(clock=clock, wall_clock=clock)
    default.connected()
    for _ in range(300):
        default.lost("x")
        default.frame(clock.advance(0.01))
    assert len(default.history) == 256 and len(default.poll()) == 256


def test_illegal_transition_message_and_open_attempt_thread():
    with pytest.raises(RuntimeError, match="^source state cannot go from connecting to stalled$"):
        ConnectionMonitor(clock=FakeClock(), wall_clock=FakeClock())._go(S.STALLED)
    attempt = OpenAttempt(lambda: None)
    assert attempt.daemon is True and attempt.name == "open-attempt"


def test_the_median_looks_at_the_last_51_intervals_only():
    clock = FakeClock(0.0)
    monitor = live_monitor(clock, sampling_period_s=0.125)  # no gap below 5 x 0.125 s
    assert ConnectionMonitor(clock=clock, wall_clock=clock).stall_after_s == 0.25
    feed(monitor, clock, 26, 0.5)
    assert monitor.stall_after_s == 5 * 0.5
    feed(monitor, clock, 26, 0.125)
    # kept: the last 51 intervals, 25 x 0.5 and 26 x 0.125: the median is 0.125
    assert monitor.stall_after_s == 5 * 0.125


def test_made_returns_the_source_or_the_reason_and_releases_what_a_stop_abandoned():
    source = _Released()
    done = OpenAttempt.made(lambda: source, threading.Event())
    assert done.result is source and done.error is None and not source.released.is_set()

    def refuse():
        raise OSError()  # no message: the exception's name is the reason

    failed = OpenAttempt.made(refuse, threading.Event())
    assert failed.result is None and failed.error == "OSError"
    stopped = threading.Event()
    stopped.set()
    late = _Released()
    assert OpenAttempt.made(lambda: late, stopped).result is None  # opened, but stop was set
    assert late.released.is_set()


def test_repeated_and_first_states_record_nothing_new():
    clock = FakeClock(0.0)
    fresh = ConnectionMonitor(clock=clock, wall_clock=clock)
    assert fresh.attempt == 0 and fresh.segment == 0 and fresh.state == S.CONNECTING
    fresh.connected()
    fresh.connected()  # already live: no second change
    assert [c.state for c in fresh.history] == [S.LIVE]


def test_a_frame_exactly_at_the_gap_threshold_stays_in_its_segment():
    clock = FakeClock(0.0)
    monitor = live_monitor(clock, sampling_period_s=0.0)
    for interval in (0.125, 0.125, 0.25, 0.5, 0.5):  # median 0.25: threshold 1.25 s
        monitor.frame(clock.advance(interval))
    assert monitor.frame(clock.advance(1.25)) == 0
    # measured too: the median is now 0.5, the threshold 2.5 s
    assert monitor.frame(clock.advance(2.625)) == 1
