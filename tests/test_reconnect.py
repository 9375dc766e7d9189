"""The reconnect state machine and its backoff policy, on an injected clock (no network)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from realtime.reconnect import (
    TRANSITIONS,
    ConnectionMonitor,
    OpenAttempt,
    ReconnectPolicy,
    SourceState,
    parse_reconnect,
)

S = SourceState


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t


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
    assert time.monotonic() - t0 < 0.5
    gate.set()
    attempt.join(5)
    assert not attempt.is_alive()
    assert opened.released.is_set()


def test_a_failed_open_reports_its_error():
    def refuse():
        raise OSError("connection refused")

    attempt = OpenAttempt(refuse)
    attempt.start()
    assert attempt.wait(threading.Event()) is None
    assert attempt.error == "connection refused"
