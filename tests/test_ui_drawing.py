"""What the UIs draw from a prediction and the source's state, without a terminal or display:
the console panel rendered to text, the window's overlay as pixels."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from realtime.outputs.overlay import (
    ACTION_COLOUR,
    NO_ACTION_COLOUR,
    PALETTE,
    draw_history_panel,
    draw_overlay,
)
from realtime.stream.pipeline import Status
from realtime.stream.prediction import NO_ACTION, Prediction
from realtime.stream.reconnect import SourceState as S
from realtime.ui.display import ConsoleUI

LABELS = ["alpha", "beta", "gamma"]


def prediction(
    top="alpha", score=0.93, action=True, state=S.LIVE, dropped=0, slow=False
) -> Prediction:
    rest = (1.0 - score) / 2
    probs = {label: (score if label == top else rest) for label in LABELS}
    return Prediction(
        frame=41, sample=40, timestamp=1.6, wall_time=0.0,
        label=top if action else NO_ACTION, score=score, probs=probs,
        window=20, window_length=20, frame_age_ms=12.0, timings_ms={}, dropped=dropped,
        source_state=state, top_label=top, effective_fps=12.5 if slow else 25.0,
        window_span_s=1.52 if slow else 0.76, slow=slow,
    )  # fmt: skip


class FakeCamera:
    """What ConsoleUI reads of a camera: status(), latest()."""

    def __init__(self, latest: Prediction | None, state=S.LIVE, detail="", name="cam1"):
        self._latest, self.state, self.detail, self.name = latest, state, detail, name

    def status(self) -> Status:
        return Status(
            source="clip.avi", model="mobilenet on litert", state=self.state,
            frames_read=50, frames_sampled=48, frames_skipped=2, classified=40, dropped=3,
            fps=24.5, stages_ms={"backbone": 7.25, "head": 0.31}, frame_age_ms=12.0,
            elapsed_s=2.0, state_detail=self.detail, camera=self.name,
        )  # fmt: skip

    def latest(self):
        return None if self._latest is None else (self._latest, None)


class FakePipeline:
    """What ConsoleUI reads: labels, cameras, the backbone's label and requests in flight."""

    labels = LABELS
    model_label = "mobilenet on litert"

    class engine:  # noqa: N801 - stands for the pipeline's InferenceEngine
        in_flight = 1

    def __init__(self, latest: Prediction | None, state=S.LIVE, detail="", cameras=None):
        self.cameras = cameras or [FakeCamera(latest, state, detail)]


def console_text(pipeline) -> str:
    console = Console(width=100, record=True, color_system=None, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(ConsoleUI(console).render(pipeline))
    console.file.close()
    return console.export_text()


def test_console_shows_the_action_and_each_class_bar():
    text = console_text(FakePipeline(prediction("beta", 0.8)))
    assert " beta " in text and "80.0%" in text and "no action" not in text
    rows = [line.strip("│ ") for line in text.splitlines()]
    bars = {row.split()[0]: row for row in rows if "░" in row}
    assert bars["beta"].count("█") == 24  # 80 % of 30 cells
    assert bars["alpha"].count("█") == 3  # 10 %
    assert "10.0%" in bars["gamma"]


def test_console_below_the_threshold_says_no_action_and_the_top_class():
    text = console_text(FakePipeline(prediction("gamma", 0.41, action=False)))
    assert "no action" in text and "top: gamma 41.0%" in text


def test_console_marks_a_result_from_before_the_source_stalled():
    live = console_text(FakePipeline(prediction(), S.LIVE))
    assert "last result" not in live and "source live" in live
    text = console_text(FakePipeline(prediction(), S.RECONNECTING, "reconnecting 2/5 in 1.0 s"))
    assert "(last result; source reconnecting)" in text
    assert "source reconnecting 2/5 in 1.0 s" in text
    assert "…" not in text  # a long state squeezes no figure (it once cut "window 20/…")


def test_console_figures_are_the_pipelines():
    text = " ".join(console_text(FakePipeline(prediction())).split())
    for shown in ("window 20/20", "fps 24.5", "frame age 12 ms", "backbone 7.2 ms",
                  "GRU 0.3 ms", "read 50", "classified 40", "dropped 3", "skipped 2",
                  "backbone mobilenet on litert", "clip.avi"):  # fmt: skip
        assert shown in text, shown


def test_console_says_when_windows_span_more_time_than_the_model_was_trained_on():
    assert "slow window" not in console_text(FakePipeline(prediction()))
    text = console_text(FakePipeline(prediction(slow=True)))
    assert "slow window: 12.5 fps over 1.52 s (frames dropped or a slow source)" in text


def test_console_before_any_prediction_waits():
    assert "waiting for the first prediction" in console_text(FakePipeline(None))


def test_console_shows_a_row_per_camera_with_its_own_state_and_result():
    cameras = [
        FakeCamera(prediction("beta", 0.8), name="door"),
        FakeCamera(prediction("gamma", 0.41, action=False), name="yard"),
        FakeCamera(prediction("alpha", 0.9), S.RECONNECTING, "reconnecting 2/5 in 1.0 s", "gate"),
        FakeCamera(None, S.CONNECTING, name="roof"),
    ]
    text = console_text(FakePipeline(None, cameras=cameras))
    names = ("door", "yard", "gate", "roof")
    rows = {line.split()[1]: " ".join(line.split()) for line in text.splitlines()
            if len(line.split()) > 1 and line.split()[1] in names}  # fmt: skip
    assert list(rows) == ["door", "yard", "gate", "roof"]  # in the order of the cameras
    assert "door live beta 80.0% 24.5 12 3 (7%)" in rows["door"]  # 3 of 43 sampled dropped
    assert "yard live no action (gamma) 41.0%" in rows["yard"]
    assert "gate reconnecting 2/5" in rows["gate"] and "alpha 90.0%" in rows["gate"]
    assert "roof connecting waiting..." in rows["roof"]
    figures = " ".join(text.split())
    assert "cameras 4 98.0 fps in all" in figures
    assert "backbone 7.2 ms/frame, 1 in flight" in figures
    # one camera whose window is slow is named; the panel stays a table of rows
    cameras[1] = FakeCamera(prediction(slow=True), name="yard")
    text = " ".join(console_text(FakePipeline(None, cameras=cameras)).split())
    assert "yard: slow window: 12.5 fps over 1.52 s" in text
    assert "window 20/20" not in text  # the single-camera panel is not drawn


FRAME = np.full((240, 320, 3), 200, np.uint8)


def coloured(image: np.ndarray, colour) -> np.ndarray:
    return np.all(image == np.array(colour, np.uint8), axis=-1)


def test_overlay_draws_an_action_in_green_and_no_action_in_grey():
    action = draw_overlay(FRAME, prediction(score=0.9), fps=25.0)
    none = draw_overlay(FRAME, prediction(score=0.4, action=False), fps=25.0)
    assert coloured(action, ACTION_COLOUR).sum() > 500
    assert coloured(none, ACTION_COLOUR).sum() == 0
    assert coloured(none, NO_ACTION_COLOUR).sum() > 500


@pytest.mark.parametrize("low,high", [(0.3, 0.6), (0.45, 0.9)])
def test_overlay_bar_length_follows_the_probability(low, high):
    def bar_length(score):
        image = draw_overlay(FRAME, prediction(score=score))
        rows = coloured(image[:78], ACTION_COLOUR)
        return int(rows.sum(axis=1).max())  # the longest green row: the bar

    assert bar_length(high) / bar_length(low) == pytest.approx(high / low, rel=0.02)


def test_overlay_shows_the_source_state_it_is_given():
    pred = prediction(state=S.LIVE)
    assert np.array_equal(draw_overlay(FRAME, pred, 25.0), draw_overlay(FRAME, pred, 25.0, "live"))
    stalled = draw_overlay(FRAME, pred, 25.0, "stalled")
    changed = np.any(stalled != draw_overlay(FRAME, pred, 25.0), axis=-1)
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.size and rows.min() > 50 and rows.max() < 78  # only the status line
    shown_drops = draw_overlay(FRAME, prediction(dropped=7), 25.0)
    assert not np.array_equal(shown_drops, draw_overlay(FRAME, pred, 25.0))
    shown_slow = draw_overlay(FRAME, prediction(slow=True), 25.0)
    changed = np.any(shown_slow != draw_overlay(FRAME, pred, 25.0), axis=-1)
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.size and rows.min() > 50 and rows.max() < 78  # said on the status line


def test_overlay_keeps_the_frame_below_the_band_and_upscales_small_frames():
    image = draw_overlay(FRAME, prediction())
    assert image.shape == (480, 640, 3)  # 320 wide -> 640, same aspect
    assert np.all(image[100:] == 200)  # the frame itself is not drawn on
    assert image[:70].mean() < 200 * 0.6  # the band is darkened
    assert np.all(FRAME == 200)  # the caller's frame is untouched


def test_the_window_panel_shows_the_top_three_and_the_timeline():
    """Under the frame: bars of the newest prediction's top 3 (length in proportion), and
    each class's probability over the last 10 s at its height, in its colour."""
    labels = ["alpha", "beta", "gamma", "delta"]
    probs = {"alpha": 0.6, "beta": 0.3, "gamma": 0.08, "delta": 0.02}
    history = [(t / 10, probs) for t in range(50)]  # 5 s at 10 fps
    panel = draw_history_panel(640, labels, history)
    assert panel.shape == (150, 640, 3)
    bars, timeline = panel[:, :230], panel[:, 230:]
    alpha, beta, gamma, delta = (coloured(bars, PALETTE[k]).sum() for k in range(4))
    assert delta == 0  # only the top 3 have bars
    assert alpha / beta == pytest.approx(2.0, rel=0.05) and alpha / gamma > 5
    # alpha's line at 0.6 of the plot's height from its bottom (rows 10..138); drawn
    # anti-aliased, so its pixels are near its colour rather than equal to it
    near = np.abs(timeline.astype(int) - np.array(PALETTE[0])).max(axis=-1) < 60
    rows = near.sum(axis=1)
    assert abs(int(np.argmax(rows)) - round(138 - 128 * 0.6)) <= 2
    assert rows.max() > 150  # a line over half the span (5 s of 10)
    # nothing yet: an empty panel
    empty = draw_history_panel(640, labels, [])
    assert empty.shape == (150, 640, 3) and len(np.unique(empty)) == 1
