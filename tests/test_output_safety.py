"""No output may destroy an input, nor another output: every spelling of a collision is refused
before anything is opened (exit 2, one `error:` line), and the inputs keep their bytes.

These cases run the command in-process: the refusal happens before any model or source is
opened, so no subprocess is needed (a case that wrongly passed would run for real and fail).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import moving_square_frames, run_inprocess, write_video

pytestmark = pytest.mark.shared

FLAGS = ("--jsonl", "--events", "--output")


def digest(root: Path) -> dict[str, str]:
    """Every file under `root` (symlinks not followed) -> sha256 of its bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture
def world(tmp_path, tflite_model_dir):
    """A user's folder: a model, a clip, links to both, weights, calibration videos, a cache."""
    model = tmp_path / "model"
    shutil.copytree(tflite_model_dir, model)
    clip = write_video(tmp_path / "clip.avi", moving_square_frames(12), 25.0)
    (tmp_path / "sub").mkdir()
    os.symlink(clip, tmp_path / "clip-link.avi")
    os.link(clip, tmp_path / "clip-hard.avi")
    os.symlink(model / "metadata.json", tmp_path / "meta-link.json")
    os.link(model / "head.weights.h5", tmp_path / "weights-hard.h5")
    (tmp_path / "weights.h5").write_bytes(b"not really weights")
    calib = tmp_path / "calib"
    calib.mkdir()
    write_video(calib / "one.avi", moving_square_frames(5), 25.0)
    cache = tmp_path / "cache"
    (cache / "converted").mkdir(parents=True)
    (cache / "converted" / "model.xml").write_text("<xml/>")
    (tmp_path / "a-folder").mkdir()
    return tmp_path


def base_args(w: Path, *extra) -> list:
    return [
        "--model", w / "model", "--source", w / "clip.avi", "--ui", "none",
        "--cache-dir", w / "cache", *extra,
    ]  # fmt: skip


# (case name, output path relative to the world, extra arguments, words the error must contain)
COLLISIONS = [
    ("source", "clip.avi", (), "would overwrite the source video"),
    ("source via ..", "sub/../clip.avi", (), "would overwrite the source video"),
    ("source via symlink", "clip-link.avi", (), "would overwrite the source video"),
    ("source via hard link", "clip-hard.avi", (), "would overwrite the source video"),
    ("model metadata", "model/metadata.json", (), "inside the model directory"),
    ("model weights", "model/head.weights.h5", (), "inside the model directory"),
    ("new file in the model", "model/new.mp4", (), "inside the model directory"),
    ("model via symlink", "meta-link.json", (), "inside the model directory"),
    ("model via hard link", "weights-hard.h5", (), "inside the model directory"),
    ("model folder itself", "model", (), "inside the model directory"),
    ("backbone weights", "weights.h5", ("--backbone-weights", "weights.h5"), "backbone weights"),
    ("calibration video", "calib/one.avi", ("--calibration", "calib"), "calibration input"),
    ("calibration folder", "calib/new.mp4", ("--calibration", "calib"), "calibration input"),
    ("calibration file", "calib/one.avi", ("--calibration", "calib/one.avi"), "calibration"),
    ("backbone cache", "cache/converted/model.xml", (), "inside the backbone cache"),
    ("new file in the cache", "cache/rec.mp4", (), "inside the backbone cache"),
]


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("name,target,extra,words", COLLISIONS, ids=[c[0] for c in COLLISIONS])
def test_an_output_never_overwrites_an_input(world, flag, name, target, extra, words):
    before = digest(world)
    extra = [e if e.startswith("--") else world / e for e in extra]
    code, err = run_inprocess(*base_args(world, *extra), flag, world / target)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    assert flag in lines[0] and words in lines[0], lines[0]
    assert digest(world) == before


BAD_PATHS = [
    ("missing folder", "nowhere/out.{ext}", "does not exist"),
    ("a folder", "a-folder", "is a folder"),
    ("parent is a file", "clip-hard.avi/out.{ext}", "is not a folder"),
]


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("name,target,words", BAD_PATHS, ids=[c[0] for c in BAD_PATHS])
def test_an_output_that_cannot_be_written_is_refused_first(world, flag, name, target, words):
    before = digest(world)
    ext = "mp4" if flag == "--output" else "jsonl"
    code, err = run_inprocess(*base_args(world), flag, world / target.format(ext=ext))
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert digest(world) == before


@pytest.mark.parametrize("name", [".txt", ".gif", "none", ".MP4x"])
def test_a_recording_needs_a_container_we_write(world, name):
    target = world / ("rec" if name == "none" else f"rec{name}")
    code, err = run_inprocess(*base_args(world), "--output", target)
    assert code == 2 and "cannot record to" in err and ".mp4" in err, err
    assert not target.exists()


@pytest.mark.parametrize(
    "first,second",
    [
        (("--jsonl", "out.jsonl"), ("--events", "out.jsonl")),
        (("--jsonl", "out.jsonl"), ("--events", "sub/../out.jsonl")),
        (("--jsonl", "./out.jsonl"), ("--events", "out.jsonl")),
        (("--jsonl", "-"), ("--events", "-")),
        (("--jsonl", "rec.mp4"), ("--output", "rec.mp4")),
        (("--events", "sub/../rec.avi"), ("--output", "rec.avi")),
    ],
)
def test_two_outputs_never_share_a_file(world, first, second):
    def arg(value):
        return value if value == "-" else world / value

    before = digest(world)
    code, err = run_inprocess(*base_args(world), first[0], arg(first[1]), second[0], arg(second[1]))
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "same file" in err or "both write to stdout" in err, err
    assert digest(world) == before


def test_two_outputs_through_a_symlink_are_the_same_file(world):
    (world / "out.jsonl").write_text("")
    os.symlink(world / "out.jsonl", world / "out-link.jsonl")
    code, err = run_inprocess(
        *base_args(world), "--jsonl", world / "out.jsonl", "--events", world / "out-link.jsonl"
    )
    assert code == 2 and "same file" in err, err


def test_an_explicit_tflite_backbone_is_protected(world):
    backbone = next((world / "model").glob("*.tflite"))
    outside = world / "backbone.tflite"
    shutil.copy(backbone, outside)
    before = digest(world)
    code, err = run_inprocess(*base_args(world, "--backbone", outside), "--jsonl", outside)
    assert code == 2 and "would overwrite the backbone" in err, err
    assert digest(world) == before
