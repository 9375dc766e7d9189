"""The benchmark's bookkeeping: medians over repeats, the table's rows and Markdown."""

from __future__ import annotations

import numpy as np
import pytest

from bench.__main__ import aggregate, markdown, rows_for
from bench.mirror_probe import video_changes, window_change
from bench.motion_summary_probe import describe
from bench.window_motion import travels
from training.synthetic import SyntheticSpec, draw_video, write_video


def _run(ms, bare, age=None):
    result = {
        "ms_per_frame": ms,
        "bare_backbone_ms": bare,
        "ratio_to_bare": ms / bare,
        "fps": 1000 / ms,
        "frames": 10,
        "cpu_cores": 1.0,
        "peak_rss_mb": 800,
        "backend": "litert",
    }
    if age is not None:
        result["paced"] = {"age_p50_ms": age, "age_p95_ms": 2 * age, "dropped": 1, "sampled": 9}
    return result


def test_medians_over_repeats_including_nested_figures():
    merged = aggregate([_run(30, 20, 40), _run(10, 10, 20), _run(20, 10, 100)])
    assert merged["ms_per_frame"] == 20 and merged["bare_backbone_ms"] == 10
    assert merged["paced"]["age_p50_ms"] == 40 and merged["paced"]["age_p95_ms"] == 80
    assert merged["backend"] == "litert"


def test_rows_compare_with_the_example_and_show_missing_ages():
    results = {"example": {"a.avi": _run(200, 50)}, "pipeline/litert": {"a.avi": _run(25, 24, 30)}}
    rows = rows_for(results, {"clip a": "a.avi"})
    example, ours = rows
    assert example["speedup_vs_example"] == 1.0 and example["age_p95_ms"] is None
    assert ours["variant"] == "ours, litert" and ours["speedup_vs_example"] == 8.0
    meta = {"machine": {"cpu": "Test CPU", "cores": 2}, "backbone": "b", "repeats": 1,
            "command": "python -m bench", "checks": {}}  # fmt: skip
    text = markdown(rows, meta)
    table = [line for line in text.splitlines() if line.startswith("| clip a")]
    assert len(table) == 2 and "| — |" in table[0] and "| 8.0 |" in table[1]
    assert "Test CPU" in text


class _Centroid:
    """A stand-in backbone that keeps where things are, as the shared ImageNet features do
    not: the brightness-weighted (column, row) of the frame, from its centre."""

    image_size = 64

    def extract(self, frames):
        grey = frames.astype(np.float64).mean(axis=3)
        total = grey.sum(axis=(1, 2))
        cols = (grey.sum(axis=1) * np.arange(64)).sum(axis=1) / total
        rows = (grey.sum(axis=2) * np.arange(64)).sum(axis=1) / total
        return np.stack([cols - 31.5, rows - 31.5], axis=1).astype(np.float32)


def _moving_square(path, dx, dy):
    frames = []
    for i in range(30):
        frame = np.zeros((64, 64, 3), np.uint8)
        x, y = 10 + dx * i, 10 + dy * i
        frame[y : y + 8, x : x + 8] = 255
        frames.append(frame)
    return write_video(path, frames, fps=25.0)


def test_window_change_spans_a_window_or_the_whole_short_video():
    assert np.allclose(window_change(np.arange(25.0)[:, None]), [19.0])
    assert np.allclose(window_change(np.array([[0.0], [1.0], [3.0]])), [3.0])


def test_mirror_probe_mirrors_left_and_right_only(tmp_path):
    right, mirrored = video_changes(_Centroid(), _moving_square(tmp_path / "r.avi", 1, 0))
    assert right[0] > 10 and abs(right[1]) < 1  # 19 columns to the right
    assert np.allclose(mirrored, [-right[0], right[1]], atol=1)  # the mirror goes left
    down, mirrored = video_changes(_Centroid(), _moving_square(tmp_path / "d.avi", 0, 1))
    assert down[1] > 10 and np.allclose(mirrored, down, atol=1)  # up and down stay


def test_the_motion_probe_summarises_how_the_parts_move_not_which_part():
    """`bench/motion_summary_probe.py`'s summaries of a window's 20 motion numbers (the whole
    thumbnail's step, then each quadrant's: x and y at the peak, then around it): one part
    moving up reads the same wherever it is; parts moving apart (a zoom in) or turning read
    as the divergence or the curl, the other at 0."""
    up = []
    for quadrant in range(4):
        numbers = np.zeros((1, 20))
        numbers[0, 4 + 4 * quadrant : 8 + 4 * quadrant] = [0, -1, 0, -1]
        up.append(describe(numbers, "sum8")[0])
    for summary in up:
        np.testing.assert_array_equal(summary, [0, 0, 0, 0, 0, -1, 0, -1])
    centres = [(-1, -1), (1, -1), (-1, 1), (1, 1)]  # the quadrants row by row, x right, y down
    apart = np.zeros((1, 20))
    turning = np.zeros((1, 20))
    for q, (x, y) in enumerate(centres):
        apart[0, 4 + 4 * q : 8 + 4 * q] = [x, y, x, y]  # away from the middle
        turning[0, 4 + 4 * q : 8 + 4 * q] = [-y, x, -y, x]  # clockwise on the screen
    np.testing.assert_array_equal(describe(apart, "sumdiv12")[0, 8:], [8, 8, 0, 0])
    np.testing.assert_array_equal(describe(turning, "sumdiv12")[0, 8:], [0, 0, 8, 8])
    np.testing.assert_array_equal(describe(apart, "sumdiv12")[0, 4:8], 0)  # they cancel
    assert describe(apart, "quad20").shape == (1, 20) and describe(apart, "whole4").shape == (1, 4)


def test_window_motion_finds_the_still_ends_of_a_rooms_video():
    """`rooms` holds the action still for a quarter of the video at each end: a 10 fps video
    (every frame sampled at 25 fps) of 84 frames or more has a first window inside that hold
    and a middle window in which the variable travels most of its (smootherstep) range;
    `shapes` moves at a constant pace from the first frame."""
    spec = SyntheticSpec(generator="rooms", seed=2000)
    number = next(
        i
        for i in range(200)
        if (d := draw_video(spec, "stand_up", "test", i)[0]).fps == 10 and d.frames >= 84
    )
    moved = travels("rooms", "stand_up", 2000, number)
    assert moved[0] == 0 and moved[-1] == 0 and max(moved) > 0.5
    assert len(moved) == draw_video(spec, "stand_up", "test", number)[0].frames - 19
    assert min(travels("shapes", "grow", 2000, 0)) > 0.3


def test_viewer_rows_are_means_over_repeats_with_the_p95_against_no_serve():
    from bench.viewers import VARIANTS, summary

    def row(variant, p95, dropped=0.0):
        return {"backbone": "b", "variant": variant, "fps_total": 50.0, "dropped_pct": dropped,
                "age_p50_ms": 10.0, "age_p95_ms": p95, "cores": 0.5, "answers_per_s": 0.0,
                "viewer_failures": 0}  # fmt: skip

    rows = [row(VARIANTS[0], 18.0), row(VARIANTS[2], 21.0, 0.5), row(VARIANTS[2], 23.0, 1.5),
            row(VARIANTS[0], 22.0), row(VARIANTS[1], 20.0)]  # fmt: skip
    out = {r["variant"]: r for r in summary({"rows": rows})}
    assert [r["variant"] for r in summary({"rows": rows})] == list(VARIANTS)
    assert out[VARIANTS[0]]["age_p95_ms"] == 20.0 and out[VARIANTS[0]]["p95_ratio"] == 1.0
    assert out[VARIANTS[1]]["p95_ratio"] == 1.0
    assert out[VARIANTS[2]]["runs"] == 2 and out[VARIANTS[2]]["dropped_pct"] == 1.0
    assert out[VARIANTS[2]]["p95_ratio"] == 1.1  # (21 + 23) / 2 against (18 + 22) / 2


def test_recipe_tables_end_with_each_recipes_parameters_and_keep_the_raw_runs(tmp_path, capsys):
    """After the runs (`finish`, as `main` ends) and when merging parts: OUT.json holds every
    run, OUT.md a row per recipe and set and a note naming each recipe's trainable
    parameters on the first set that has it (a part need not run every recipe)."""
    import argparse
    import json

    from bench.recipes_synthetic import finish, merge

    def runs(first, trainable):
        keys = ("first", "any", "missing10", "missing30")
        return [{**dict.fromkeys(keys, first + i / 100), "epochs": 30, "trainable": trainable}
                for i in range(3)]  # fmt: skip

    args = argparse.Namespace(seeds=3, train_per_class=12, test_per_class=12, data_seed=2000,
                              sets="shapes-order,clips", out=str(tmp_path / "a"))  # fmt: skip
    raw = {"default/shapes-order": runs(0.9, 3132), "default/clips": runs(1.0, 3141)}
    assert finish(args, raw) == 0
    note = capsys.readouterr().out
    assert "trainable parameters: default 3,132 (shapes-order)" in note
    assert finish(argparse.Namespace(**{**vars(args), "out": None}), raw) == 0  # no files
    assert capsys.readouterr().out == note
    assert json.loads((tmp_path / "a.json").read_text())["runs"] == raw
    table = (tmp_path / "a.md").read_text()
    assert "| default | shapes-order | 91.0 ± 1.0 |" in table and "| default | clips |" in table
    part = {"args": vars(args), "runs": {"seed/shapes-order": runs(0.25, 99_909)}}
    (tmp_path / "b.json").write_text(json.dumps(part))
    assert merge(tmp_path / "m", [tmp_path / "a.json", tmp_path / "b.json"]) == 0
    merged = (tmp_path / "m.md").read_text()
    assert "default 3,132 (shapes-order), seed 99,909 (shapes-order)" in merged
    assert merged.index("| seed | shapes-order") < merged.index("| default | clips")


def test_recipe_tables_compare_each_recipe_with_the_first_paired_by_seed(tmp_path):
    """Same seed, same split: the table's second part gives each recipe's per-seed
    difference from the first recipe, mean ± standard error, where both ran the same seeds."""
    import argparse

    from bench.recipes_synthetic import write_results

    def runs(first, any_phase):
        keys = ("any", "missing10", "missing30")
        return [{"first": f, **dict.fromkeys(keys, a), "epochs": 30, "trainable": 3132}
                for f, a in zip(first, any_phase, strict=True)]  # fmt: skip

    raw = {
        "default/blinds-appearance": runs([0.75, 0.77, 0.62], [0.70, 0.70, 0.70]),
        "motion/blinds-appearance": runs([0.73, 0.77, 0.59], [0.71, 0.72, 0.73]),
        "default/clips": runs([1.0, 1.0, 1.0], [0.9, 0.9, 0.9]),
        "motion/clips": runs([1.0, 1.0], [0.9, 0.9]),  # not the same seeds: no paired row
    }
    args = argparse.Namespace(seeds=3, train_per_class=12, test_per_class=12, data_seed=2000)
    write_results(tmp_path / "t", args, raw)
    table = (tmp_path / "t.md").read_text()
    assert "Against default, paired by training seed" in table
    # first window: -2, 0, -3 points: mean -1.67, sd 1.53, error 0.88; any phase: +1, +2, +3
    assert "| motion | blinds-appearance | -1.7 ± 0.9 | +2.0 ± 0.6 | 3 |" in table
    assert "| motion | clips | " in table and "| motion | clips | +" not in table
    assert table.count("| default | blinds-appearance") == 1  # the first recipe: no Δ row


@pytest.mark.parametrize("how", ["ctrl-c", "SIGTERM", "SIGHUP"])
def test_an_interrupted_recipe_table_keeps_its_finished_cells(tmp_path, monkeypatch, capsys, how):
    """Ctrl-C, a kill or a closed terminal after hours of training: the cells that finished
    are written (JSON and table), the one that was running is not, and the exit status says
    it was interrupted."""
    import json
    import os
    import signal
    import sys
    from types import SimpleNamespace

    import bench.recipes_synthetic as table

    def ignored(*_):  # were the bench not to handle a signal, the test fails, pytest lives
        pass

    stops = (signal.SIGTERM, signal.SIGHUP)
    pytests = {s: signal.signal(s, ignored) for s in stops}

    embedder = tmp_path / "embedder.tflite"
    embedder.write_bytes(b"")
    calls = []

    def run_one(data, recipe, quiet):
        calls.append(recipe.seed)
        if len(calls) == 4:  # the second cell's first seed
            if how == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), getattr(signal, how))  # its handler runs at once
        keys = ("first", "any", "missing10", "missing30")
        return {**dict.fromkeys(keys, 0.5), "epochs": 9, "trainable": 100}

    monkeypatch.setattr(table, "EMBEDDER", embedder)
    monkeypatch.setattr(table, "LiteRTBackbone", lambda *a, **k: SimpleNamespace(map_shape=None))
    thumbs = lambda inner, size: SimpleNamespace(map_shape=None, motion=size)  # noqa: E731
    monkeypatch.setattr(table, "WithMotion", thumbs)
    monkeypatch.setattr(table, "synthetic_set", lambda *a: {})
    monkeypatch.setattr(table, "run_one", run_one)
    out = tmp_path / "t"
    argv = ["x", "--sets", "shapes-order,sprites-order", "--recipes", "default",
            "--work", str(tmp_path / "w"), "--out", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    try:
        assert table.main() == 130
        assert all(signal.getsignal(s) is ignored for s in stops)  # put back as they were
    finally:
        for s, handler in pytests.items():
            signal.signal(s, handler)
    runs = json.loads(out.with_suffix(".json").read_text())["runs"]
    assert list(runs) == ["default/shapes-order"] and len(runs["default/shapes-order"]) == 3
    written = out.with_suffix(".md").read_text()
    assert "| default | shapes-order | 50.0 ± 0.0 |" in written and "sprites" not in written
    assert "interrupted: 1 finished cells written" in capsys.readouterr().err


def test_training_size_keeps_the_first_videos_of_each_class_with_their_groups():
    from bench.training_size import first_per_class

    x = [np.full((3, 2), i, np.float32) for i in range(9)]
    y = [0, 1, 2, 0, 1, 2, 0, 1, 2]
    data = {"train": (x, y), "train_groups": [f"g{i}" for i in range(9)], "test": ([], [])}
    smaller = first_per_class(data, 2)
    kept_x, kept_y = smaller["train"]
    assert [int(f[0, 0]) for f in kept_x] == [0, 1, 2, 3, 4, 5]
    assert kept_y == [0, 1, 2, 0, 1, 2]
    assert smaller["train_groups"] == ["g0", "g1", "g2", "g3", "g4", "g5"]
    assert smaller["test"] is data["test"] and data["train"][0] is x  # the input unchanged
