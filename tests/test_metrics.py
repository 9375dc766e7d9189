"""The live figures and the exit summary's rows, on inputs whose answers are worked out by hand."""

from __future__ import annotations

import pytest

from realtime.stream.metrics import PipelineMetrics, RateMeter, StageStats, WindowPace
from tests.conftest import FakeClock


def test_stage_stats_mean_over_the_run_and_p95_over_the_recent_sample():
    empty = StageStats()
    assert (empty.mean, empty.recent_mean(), empty.percentile(95)) == (0.0, 0.0, 0.0)
    stats = StageStats(recent=10)
    for value in range(1, 101):
        stats.add(float(value))
    assert stats.count == 100 and stats.total == 5050.0
    assert stats.mean == 50.5  # the whole run, not only what is kept for p95
    # only 91..100 are kept: p95 by linear interpolation at rank 0.95 * 9 = 8.55
    assert stats.percentile(95) == pytest.approx(99.55)
    assert stats.percentile(0) == 91.0
    assert stats.recent_mean(3) == 99.0  # 98, 99, 100
    assert stats.recent_mean() == 95.5  # fewer than 30 kept: all ten


def test_stage_stats_recent_mean_defaults_to_the_last_30():
    stats = StageStats()
    for value in range(1, 101):
        stats.add(float(value))
    assert stats.recent_mean() == 85.5  # 71..100
    assert stats.percentile(95) == pytest.approx(95.05)  # rank 0.95 * 99 = 94.05


def test_rate_meter_counts_intervals_within_its_span():
    clock = FakeClock(0.0)
    meter = RateMeter(span_s=2.0, clock=clock)
    assert meter.rate() == 0.0
    meter.tick()
    assert meter.rate() == 0.0  # one tick is no interval
    for t in (0.1, 0.3, 1.0):
        clock.t = t
        meter.tick()
    assert meter.rate() == pytest.approx(3 / 1.0)  # 4 ticks, 3 intervals over 1 s
    clock.t = 2.0
    assert meter.rate() == pytest.approx(3 / 1.0)  # exactly 2 s old still counts
    clock.t = 2.05
    assert meter.rate() == pytest.approx(2 / 0.9)  # the tick at 0 fell out
    clock.t = 4.0
    assert meter.rate() == 0.0  # none within 2 s of 4.0
    same = RateMeter(clock=FakeClock(5.0))
    same.tick()
    same.tick()
    assert same.rate() == 0.0  # two ticks at one instant: no elapsed time, no rate


def test_pipeline_metrics_snapshot_and_summary_rows():
    clock = FakeClock(10.0)
    metrics = PipelineMetrics(clock=clock)
    metrics.record({"decode": 1.0, "backbone": 10.0, "not a stage": 5.0}, 40.0)
    clock.t = 10.5
    metrics.record({"decode": 3.0, "backbone": 30.0}, 60.0)
    snapshot = metrics.snapshot()
    assert snapshot.classified == 2 and metrics.classified == 2
    assert snapshot.fps == pytest.approx(2.0)  # two frames 0.5 s apart
    assert snapshot.stages_ms == {
        "decode": 2.0,
        "preprocess": 0.0,
        "backbone": 20.0,
        "head": 0.0,
    }
    assert snapshot.frame_age_ms == 50.0
    assert metrics.summary_rows() == [
        ("decode ms", "2.00", "2.90"),  # p95 of (1, 3): 1 + 0.95 * 2
        ("preprocess ms", "0.00", "0.00"),
        ("backbone ms", "20.00", "29.00"),
        ("head ms", "0.00", "0.00"),
        ("frame age ms", "50.0", "59.0"),
    ]
    assert "not a stage" not in metrics.stages


def test_stage_stats_keep_the_last_2000_for_p95_by_default():
    stats = StageStats()
    stats.add(0.0)
    for _ in range(2000):
        stats.add(1.0)
    assert stats.percentile(0) == 1.0  # the first value has left the recent sample
    assert stats.mean == pytest.approx(2000 / 2001)  # but still counts in the run's mean


def test_rate_meter_keeps_the_last_1000_ticks_and_metrics_time_the_run():
    clock = FakeClock(0.0)
    meter = RateMeter(span_s=10.0, clock=clock)
    meter.tick()  # one early tick, then 1000 in the next second
    for i in range(1000):
        clock.t = 1.0 + i / 1000
        meter.tick()
    # only the last 1000 are kept: 999 intervals over 0.999 s, not 1000 over 1.999 s
    assert meter.rate() == pytest.approx(1000.0)
    run = FakeClock(5.0)
    metrics = PipelineMetrics(clock=run)
    run.t = 7.5
    assert metrics.elapsed_s() == 2.5


def test_rate_meter_spans_2_s_by_default():
    clock = FakeClock(0.0)
    meter = RateMeter(clock=clock)
    meter.tick()
    clock.advance(2.5)
    meter.tick()
    assert meter.rate() == 0.0  # the first tick is older than the 2 s span


def test_window_pace_spans_the_window_and_is_slow_only_after_holding_below_the_rate():
    pace = WindowPace(length=4, model_fps=10.0, ratio=0.9, hold_s=1.0)
    assert (pace.span_s, pace.effective_fps, pace.slow) == (0.0, None, False)
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):  # 10 fps: the window keeps the last 4
        pace.push(t)
    assert pace.span_s == pytest.approx(0.3) and pace.effective_fps == pytest.approx(10.0)
    for t in (0.6, 0.8, 1.0):  # 5 fps from here: the window's rate falls below 9
        pace.push(t)
    assert pace.effective_fps == pytest.approx(3 / 0.6) and not pace.slow
    for t in (1.2, 1.4, 1.6):  # below the rate since 0.6 (when it first fell): 1.0 s at 1.6
        pace.push(t)
        assert pace.slow is (t >= 1.6)
    pace.push(1.7)
    pace.push(1.8)  # 10 fps again, but the window (1.4 .. 1.8) is at 7.5: still slow
    assert pace.effective_fps == pytest.approx(7.5) and pace.slow
    pace.push(1.9)  # the last 4 frames 0.1 s apart: back at 10 fps
    assert pace.effective_fps == pytest.approx(10.0) and not pace.slow
    pace.reset()
    assert (pace.span_s, pace.effective_fps, pace.slow) == (0.0, None, False)


def test_window_pace_without_a_model_rate_is_never_slow():
    pace = WindowPace(length=3, model_fps=None, hold_s=0.0)
    for t in (0.0, 5.0, 10.0):
        pace.push(t)
    assert pace.effective_fps == pytest.approx(0.2) and not pace.slow


def test_window_pace_by_default_is_slow_below_nine_tenths_of_the_rate_held_for_5_s():
    fast_enough = WindowPace(length=4, model_fps=10.0)
    for i in range(200):  # 16 fps for 12.4 s: above 0.9 x 10
        fast_enough.push(i * 0.0625)
    assert not fast_enough.slow
    slow = WindowPace(length=4, model_fps=10.0)
    for i in range(50):  # 8 fps: below 9 from the second frame (t = 0.125) on
        slow.push(i * 0.125)
        assert slow.slow is (i * 0.125 - 0.125 >= 5.0), i


def test_window_pace_at_exactly_the_threshold_is_not_slow():
    pace = WindowPace(length=2, model_fps=16.0, ratio=0.5, hold_s=0.0)
    for t in (0.0, 0.125, 0.25):  # 8 fps: exactly 0.5 x 16
        pace.push(t)
    assert pace.effective_fps == 8.0 and not pace.slow
