"""A model directory is untrusted input: generated malformed metadata.json files.

Every field of a real model's metadata.json is replaced by values of every wrong type and
range (and deleted; and the whole file replaced), then read the way `python -m realtime`
reads it. Each case either loads or fails with one `InputError` line that names the file;
every case that loads is then run through the whole command in-process (5 frames) and must
end with exit 0 or one `error:` line, never a traceback.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest

from realtime.core.errors import InputError
from realtime.head.modeldir import read_model_info
from tests.conftest import moving_square_frames, run_inprocess, write_video

pytestmark = pytest.mark.shared

DELETE = object()
FIELDS = [
    ("labels",),
    ("labels", 0),
    ("window",),
    ("image_size",),
    ("backbone",),
    ("backbone", "name"),
    ("backbone", "feature_size"),
    ("backbone", "image_size"),
    ("backbone", "file"),
    ("sampling",),
    ("sampling", "fps"),
    ("head",),
    ("head", "gru_units"),
    ("head", "gru_units", 0),
    ("head", "dropout"),
    ("head", "dense_units"),
    ("head", "input"),
    ("evaluation",),
    ("training",),
    ("format_version",),
]
VALUES = [
    DELETE, None, "x", "", -1, 0, 1.5, True, [], {}, 10**9, math.nan, math.inf, "\x1b[31mred",
]  # fmt: skip
WHOLE_FILES = ["[]", '"model"', "1", "null", "{", "", '{"labels": }', "\ufeff{}", "NaN"]


def mutated(base: dict, path: tuple, value) -> dict:
    data = copy.deepcopy(base)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def case_id(path, value) -> str:
    shown = "delete" if value is DELETE else repr(value)[:12]
    return ".".join(map(str, path)) + "=" + shown


CASES = [(path, value) for path in FIELDS for value in VALUES]


@pytest.fixture(scope="module")
def base_dir(tflite_model_dir) -> Path:
    return tflite_model_dir


def load(model_dir: Path, data, raw: str | None = None):
    (model_dir / "metadata.json").write_text(raw if raw is not None else json.dumps(data))
    return read_model_info(model_dir)


@pytest.fixture
def model_copy(tmp_path, base_dir) -> Path:
    target = tmp_path / "model"
    shutil.copytree(base_dir, target)
    return target


@pytest.mark.parametrize("path,value", CASES, ids=[case_id(*c) for c in CASES])
def test_every_field_of_metadata_is_checked(model_copy, path, value):
    base = json.loads((model_copy / "metadata.json").read_text())
    try:
        data = mutated(base, path, value)  # an absent key is added
    except (KeyError, IndexError):
        assert value is DELETE  # nothing to delete: this model has no such field
        return
    try:
        load(model_copy, data)
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message and "metadata.json" in message, message


@pytest.mark.parametrize("raw", WHOLE_FILES)
def test_a_metadata_file_that_is_not_an_object_is_one_line(model_copy, raw):
    with pytest.raises(InputError) as caught:
        load(model_copy, None, raw=raw)
    assert "\n" not in str(caught.value) and "metadata.json" in str(caught.value)


def test_a_metadata_file_saved_with_a_bom_loads(model_copy):
    text = (model_copy / "metadata.json").read_text()
    (model_copy / "metadata.json").write_text("\ufeff" + text, encoding="utf-8")
    assert read_model_info(model_copy).labels


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # a head of another shape
def test_what_metadata_accepts_runs_or_fails_in_one_line(tmp_path, base_dir):
    """Every mutation that loads, through the whole command (5 frames, in-process)."""
    base = json.loads((base_dir / "metadata.json").read_text())
    clip = write_video(tmp_path / "clip.avi", moving_square_frames(8), 25.0)
    outcomes = {}
    for path, value in CASES:
        try:
            data = mutated(base, path, value)
        except (KeyError, IndexError):
            continue
        name = case_id(path, value)
        model = tmp_path / f"model{len(outcomes)}"
        shutil.copytree(base_dir, model)
        try:
            load(model, data)
        except InputError:
            shutil.rmtree(model)
            continue
        code, err = run_inprocess(
            "--model", model, "--source", clip, "--ui", "none", "-q", "--max-frames", 5,
            "--every-frame", "--jsonl", tmp_path / f"p{len(outcomes)}.jsonl",
        )  # fmt: skip
        assert "Traceback" not in err, (name, err)
        if code != 0:
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (name, err)
        outcomes[name] = code
    assert len(outcomes) >= 5, outcomes
    # what a user relies on: optional parts may go; no frame rate means every frame
    for name in ("evaluation=delete", "training=delete", "sampling.fps=None"):
        assert outcomes[name] == 0, (name, outcomes)


@pytest.mark.parametrize(
    "change,words",
    [
        ({"image_size": 299}, "crops frames to 299x299"),
        ({"labels": ["a", "b", "c", "d"]}, "cannot load"),
        ({"window": 30}, None),  # a longer window: the same weights serve it
    ],
    ids=["image size", "labels vs weights", "window"],
)
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_a_model_that_does_not_fit_its_backbone_or_weights_is_one_line(
    tmp_path, base_dir, change, words
):
    model = tmp_path / "model"
    shutil.copytree(base_dir, model)
    data = {**json.loads((model / "metadata.json").read_text()), **change}
    (model / "metadata.json").write_text(json.dumps(data))
    clip = write_video(tmp_path / "clip.avi", moving_square_frames(8), 25.0)
    code, err = run_inprocess("--model", model, "--source", clip, "--ui", "none", "-q",
                              "--every-frame", "--jsonl", tmp_path / "p.jsonl")  # fmt: skip
    assert "Traceback" not in err and "cannot join thread" not in err, err
    if words is None:
        assert code == 0, err
    else:
        assert code == 2 and err.count("\n") == 1 and words in err, err
