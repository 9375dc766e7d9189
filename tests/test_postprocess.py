import json

import numpy as np
import pytest

from realtime.postprocess import ProbabilitySmoother, SegmentTracker, decide
from realtime.prediction import NO_ACTION

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
