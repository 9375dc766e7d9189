"""`python -m realtime.plot`: a run's timeline drawn from its JSONL, one panel per camera."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from realtime.plot import find_segments, main, read_predictions, read_segments, timelines
from realtime.stream.prediction import Prediction
from realtime.stream.reconnect import SourceState

LABELS = ("walk", "wave")
GREEN = "walk"


def prediction(camera: str, t: float, top: str, frame: int, window: int) -> str:
    """A JSONL line as the run writes it (`Prediction.to_json`)."""
    probs = {label: (0.8 if label == top else 0.2) for label in LABELS}
    return Prediction(
        frame=frame, sample=frame, timestamp=t, wall_time=1.0, label=top, score=0.8,
        probs=probs, window=window, window_length=20, frame_age_ms=10.0, timings_ms={},
        dropped=0, source_state=SourceState.LIVE, top_label=top, camera=camera,
    ).to_json()  # fmt: skip


def write_run(path, lines) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.fixture
def two_cameras(tmp_path):
    """door: walk for 2 s, then wave for 2 s (10 fps); yard: wave for 1 s; a state line."""
    lines = []
    for i in range(40):
        lines.append(prediction("door", i / 10, "walk" if i < 20 else "wave", i, min(i + 1, 20)))
        if i < 10:
            lines.append(prediction("yard", i / 10, "wave", i, i + 1))
    lines.insert(5, json.dumps({"type": "source_state", "source_state": "stalled",
                                "camera": "yard"}))  # fmt: skip
    return write_run(tmp_path / "run.jsonl", lines)


def test_segments_are_found_as_events_finds_them(two_cameras):
    runs = read_predictions(Path(two_cameras))
    assert list(runs) == ["door", "yard"] and len(runs["door"]) == 40 and len(runs["yard"]) == 10
    door = find_segments(runs["door"], hysteresis=3, min_duration=0.5)
    assert [(s.label, round(s.start, 2), round(s.end, 2)) for s in door] == [
        ("walk", 0.0, 1.9),  # closes when 3 waves agree, at 2.2 s
        ("wave", 2.0, 3.9),  # the open one, flushed at the end
    ]
    assert find_segments(runs["yard"], 3, 0.5)[0].label == "wave"
    assert find_segments(runs["yard"], 3, 1.0) == []  # 0.9 s is shorter than 1 s


def test_a_window_that_restarts_ends_the_open_segment(tmp_path):
    """After a gap the window starts again at 1: the run's segment ended there."""
    lines = [prediction("cam1", i / 10, "walk", i, min(i + 1, 20)) for i in range(10)]
    lines += [prediction("cam1", 5 + i / 10, "walk", 50 + i, i + 1) for i in range(10)]
    runs = read_predictions(Path(write_run(tmp_path / "r.jsonl", lines)))
    found = find_segments(runs["cam1"], 3, 0.5)
    assert [(round(s.start, 1), round(s.end, 1)) for s in found] == [(0.0, 0.9), (5.0, 5.9)]


def test_the_plot_draws_a_panel_per_camera_with_bands(two_cameras, tmp_path):
    out = tmp_path / "timeline.png"
    assert main([two_cameras, "-o", str(out)]) == 0
    import matplotlib.pyplot as plt

    # a plain file, as any other output (written under a temporary name first)
    reference = tmp_path / "reference"
    reference.write_bytes(b"")
    assert out.stat().st_mode == reference.stat().st_mode
    image = plt.imread(out)
    assert image.shape[0] > 500 and image.shape[1] > 1000  # two panels, 11 inches wide
    lines = timelines(read_predictions(out.parent / "run.jsonl"), None, None)
    assert [line.camera for line in lines] == ["door", "yard"]
    assert lines[0].probs["walk"][:3] == [0.8, 0.8, 0.8] and lines[0].times[-1] == 3.9
    # the bands are drawn: the figure holds pale (alpha 0.18) blue and orange pixels
    rgb = (image[..., :3] * 255).astype(int)
    blue, orange = np.array([31, 119, 180]), np.array([255, 127, 14])  # tab10's first two

    def pale(colour):
        target = 255 - 0.18 * (255 - colour)
        return (np.abs(rgb - target).max(axis=-1) < 6).sum()

    assert pale(blue) > 2000 and pale(orange) > 2000
    # one camera only
    single = tmp_path / "yard.svg"
    assert main([two_cameras, "-o", str(single), "--camera", "yard"]) == 0
    assert single.read_text().count("<svg") == 1


def test_recorded_events_are_drawn_instead(two_cameras, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"label": "wave", "start": 1.0, "end": 1.5, "camera": "door"}))
    recorded = read_segments(events)
    lines = timelines(read_predictions(tmp_path / "run.jsonl"), ["door"], recorded)
    assert [(s.label, s.start, s.end) for s in lines[0].segments] == [("wave", 1.0, 1.5)]
    assert main([two_cameras, "-o", str(tmp_path / "t.png"), "--events", str(events)]) == 0


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "holds no prediction"),
        ("not json\n", "line 1: not JSON"),
        ('{"label": "walk"}\n', "line 1: not a prediction of realtime --jsonl"),
        (None, "no such run"),
    ],
)
def test_bad_input_is_one_error_line(content, message, tmp_path, capsys):
    run = tmp_path / "run.jsonl"
    if content is not None:
        run.write_text(content)
    out = tmp_path / "t.png"
    assert main([str(run), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_an_unknown_camera_and_an_output_over_the_input_are_refused(two_cameras, capsys):
    assert main([two_cameras, "-o", two_cameras.replace(".jsonl", ".png"), "--camera", "x"]) == 2
    assert "no camera 'x' in the run (it has door, yard)" in capsys.readouterr().err
    assert main([two_cameras, "-o", two_cameras]) == 2  # not a picture's name
    assert "--output must end in .png, .svg, .pdf" in capsys.readouterr().err
    named_like_a_picture = shutil.copy(two_cameras, two_cameras.replace(".jsonl", ".png"))
    before = Path(named_like_a_picture).read_bytes()
    assert main([named_like_a_picture, "-o", named_like_a_picture]) == 2  # the run itself
    assert "the run's JSONL" in capsys.readouterr().err
    assert Path(named_like_a_picture).read_bytes() == before  # untouched


def test_a_failed_plot_keeps_the_image_already_there(two_cameras, tmp_path, monkeypatch):
    out = tmp_path / "timeline.png"
    out.write_bytes(b"an older plot")
    import matplotlib.figure

    def broken(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    assert main([two_cameras, "-o", str(out)]) == 2
    assert out.read_bytes() == b"an older plot"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".timeline")] == []
