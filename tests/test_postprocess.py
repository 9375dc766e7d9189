import json

import numpy as np
import pytest

from realtime.stream.postprocess import ProbabilitySmoother, SegmentTracker, decide
from realtime.stream.prediction import NO_ACTION

LABELS = ["run", "jump"]


def test_smoother_averages_last_n():
    smoother = ProbabilitySmoother(2)
    smoother.update(np.array([1.0, 0.0]))
    smoother.update(np.array([0.0, 1.0]))
    out = smoother.update(np.array([0.0, 1.0]))
    assert out == pytest.approx([0.0, 1.0])  # the first vector has left the window of 2
    smoother.reset()
    assert smoother.update(np.array([0.2, 0.8])) == pytest.approx([0.2, 0.8])


def test_threshold_reports_no_action_but_keeps_top_label():
    label, top, score = decide(LABELS, np.array([0.45, 0.55]), threshold=0.6)
    assert (label, top, score) == (NO_ACTION, "jump", pytest.approx(0.55))
    assert decide(LABELS, np.array([0.7, 0.3]), threshold=0.6)[0] == "run"


def feed(tracker, labels, dt=0.1):
    out = []
    for i, label in enumerate(labels):
        seg = tracker.update(label, 0.5 + 0.01 * i, i * dt, i)
        if seg:
            out.append(seg)
    return out


def test_segments_need_agreement_and_ignore_flicker():
    tracker = SegmentTracker(hysteresis=3, min_duration=0.0)
    labels = ["run"] * 6 + ["jump"] + ["run"] * 3 + ["jump"] * 5
    finished = feed(tracker, labels)
    assert [s.label for s in finished] == ["run"]  # one flicker of "jump" did not split it
    run = finished[0]
    assert run.start == pytest.approx(0.0)
    assert run.end == pytest.approx(0.9)  # last "run" before the switch held
    last = tracker.flush()
    assert last.label == "jump" and last.start == pytest.approx(1.0)
    record = json.loads(last.to_json(closed=False))
    assert record["closed"] is False and record["frames"] == 5


def test_short_segments_and_no_action_are_not_reported():
    tracker = SegmentTracker(hysteresis=2, min_duration=0.5)
    finished = feed(tracker, ["run"] * 3 + [NO_ACTION] * 3 + ["jump"] * 8)
    assert finished == []  # "run" lasted 0.2 s < 0.5 s
    assert tracker.flush().label == "jump"


def test_smoother_is_the_mean_of_the_last_n_as_float32():
    smoother = ProbabilitySmoother(3)
    inputs = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.0, 1.0]]
    outputs = [smoother.update(np.array(p, np.float64)) for p in inputs]
    expected = [[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [1 / 6, 5 / 6]]
    np.testing.assert_allclose(np.array(outputs), expected, atol=1e-7)
    assert all(o.dtype == np.float32 for o in outputs)
    smoother.reset()
    np.testing.assert_allclose(smoother.update(np.array([0.3, 0.7])), [0.3, 0.7], atol=1e-7)
    raw = np.array([0.9, 0.1])
    assert ProbabilitySmoother().update(raw) is raw  # size 1: passed through untouched
    with pytest.raises(ValueError, match="^smoothing size must be at least 1$"):
        ProbabilitySmoother(0)


def test_decide_at_the_threshold_and_without_one():
    assert decide(LABELS, np.array([0.6, 0.4]), threshold=0.6) == ("run", "run", 0.6)
    assert decide(LABELS, np.array([0.1, 0.9])) == ("jump", "jump", pytest.approx(0.9))
    label, top, score = decide(LABELS, np.array([0.5, 0.5]), threshold=0.51)
    assert (label, top) == (NO_ACTION, "run") and type(score) is float


def test_segment_record_has_every_field_rounded():
    from realtime.stream.postprocess import Segment

    segment = Segment("run", 1.23456, 2.56789, [0.51234, 0.912345, 0.7], 3, 7)
    assert json.loads(segment.to_json(camera="door")) == {
        "label": "run",
        "start": 1.235,
        "end": 2.568,
        "duration": 1.333,
        "peak_score": 0.9123,
        "mean_score": 0.7082,
        "frames": 3,
        "first_frame": 3,
        "last_frame": 7,
        "closed": True,
        "camera": "door",
    }
    assert json.loads(segment.to_json(closed=False))["closed"] is False


def test_segment_opens_after_hysteresis_agreeing_decisions():
    tracker = SegmentTracker(hysteresis=2, min_duration=0.0)
    assert tracker.update("run", 0.6, 0.0, 0) is None
    assert tracker.update("jump", 0.7, 0.1, 1) is None  # the candidate starts again
    assert tracker.update("run", 0.8, 0.2, 2) is None
    assert tracker.current is None
    assert tracker.update("run", 0.9, 0.3, 3) is None  # two in a row: the segment opens
    opened = tracker.current
    assert (opened.label, opened.start, opened.end) == ("run", 0.2, 0.3)
    assert (opened.first_frame, opened.last_frame, opened.scores) == (2, 3, [0.8, 0.9])
    assert tracker.update("run", 0.5, 0.4, 4) is None  # it goes on
    assert (opened.end, opened.last_frame, opened.scores[-1]) == (0.4, 4, 0.5)
    assert tracker.update("jump", 0.6, 0.5, 5) is None
    closed = tracker.update("jump", 0.6, 0.6, 6)  # another label held as long: it closes
    assert closed is opened and (closed.end, closed.last_frame) == (0.4, 4)
    assert tracker.current.label == "jump" and tracker.current.start == 0.5
    assert tracker.current.first_frame == 5


def test_hysteresis_below_one_means_one_and_min_duration_is_inclusive():
    tracker = SegmentTracker(hysteresis=0, min_duration=0.5)
    assert tracker.hysteresis == 1
    tracker.update("run", 0.9, 0.0, 0)
    assert tracker.current is not None  # one decision opens it
    tracker.update("run", 0.9, 0.5, 1)
    finished = tracker.update(NO_ACTION, 0.2, 0.6, 2)  # "no action" closes, opens nothing
    assert finished is not None and finished.end - finished.start == 0.5
    assert tracker.current is None and tracker.flush() is None


def test_reset_closes_the_open_segment_and_forgets_the_candidate():
    tracker = SegmentTracker(hysteresis=2, min_duration=0.0)
    feed(tracker, ["run", "run", "run"])
    tracker.update("jump", 0.5, 0.3, 3)  # a candidate that must not survive the reset
    closed = tracker.reset()
    assert closed is not None and closed.label == "run" and closed.last_frame == 2
    assert tracker.update("jump", 0.5, 0.4, 4) is None
    assert tracker.current is None  # one "jump" after the reset is not two
    short = SegmentTracker(hysteresis=1, min_duration=1.0)
    short.update("run", 0.5, 0.0, 0)
    assert short.reset() is None  # too short to report


def test_default_tracker_needs_three_decisions_and_half_a_second():
    tracker = SegmentTracker()
    feed(tracker, ["run"] * 2)
    assert tracker.current is None
    tracker.update("run", 0.5, 0.2, 2)
    assert tracker.current is not None  # the third agreeing decision opens it
    tracker.update("run", 0.5, 0.5, 3)  # 0.0 .. 0.5 s
    assert tracker.flush() is not None  # half a second is enough
    short = SegmentTracker()
    feed(short, ["run"] * 4, dt=0.1)  # 0.0 .. 0.3 s
    assert short.flush() is None


def test_a_short_segment_late_in_the_run_is_not_reported():
    tracker = SegmentTracker(hysteresis=1, min_duration=0.5)
    tracker.update("run", 0.5, 10.0, 100)
    tracker.update("run", 0.5, 10.2, 101)  # 0.2 s long, starting at 10 s
    assert tracker.flush() is None
