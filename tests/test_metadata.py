"""`realtime.head.metadata.check_metadata` field by field: what it accepts, what it rejects, and the
one line it says. TensorFlow-free (the mutation run uses these tests); the fuzzing of a real
model directory through the whole command is in test_model_metadata.py.

Every expected message and boundary below is written out from the documented format, not
taken from the module's constants.
"""

from __future__ import annotations

import copy
import math

import pytest

from realtime.head.metadata import MetadataError, check_metadata

NEWEST = 2
VALID = {
    "labels": ["alpha", "beta"],
    "window": 20,
    "image_size": 224,
    "backbone": {"name": "mobilenet", "feature_size": 1024, "image_size": 224, "file": "b.tflite"},
    "sampling": {"fps": 25.0},
    "head": {
        "gru_units": [16, 8],
        "dropout": 0.4,
        "dense_units": 8,
        "input": "appearance+change",
        "appearance_dims": 16,
        "change_dims": 16,
        "appearance_offset": 2.0,
        "change_reference": "mean",
    },
    "evaluation": {},
    "training": {},
    "format_version": 2,
}


def changed(path: str, value) -> dict:
    """VALID with `a.b` set to `value` (`...` deletes it)."""
    data = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


def rejection(data) -> str:
    with pytest.raises(MetadataError) as caught:
        check_metadata(data, NEWEST)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_complete_metadata_passes_and_is_not_changed():
    data = copy.deepcopy(VALID)
    check_metadata(data, NEWEST)
    assert data == VALID


def test_the_smallest_metadata_passes():
    """Only labels, window, image_size and backbone's name and feature size are required."""
    check_metadata(
        {
            "labels": ["a"],
            "window": 1,
            "image_size": 16,
            "backbone": {"name": "b", "feature_size": 1},
        },
        NEWEST,
    )


@pytest.mark.parametrize(
    "path,value",
    [
        ("window", 1),
        ("window", 1000),
        ("image_size", 16),
        ("image_size", 4096),
        ("backbone.feature_size", 1),
        ("backbone.feature_size", 100_000),
        ("backbone.image_size", 16),
        ("backbone.image_size", 4096),
        ("backbone.image_size", ...),
        ("backbone.file", ...),
        ("backbone.file", "model.v2.tflite"),
        ("sampling", ...),
        ("sampling.fps", None),  # written by models that sample every frame
        ("sampling.fps", 1e-3),
        ("sampling.fps", 1000),
        ("sampling.fps", 1000.0),
        ("head", ...),
        ("head", {}),
        ("head.gru_units", [1]),
        ("head.gru_units", [4096] * 8),
        ("head.dropout", 0),
        ("head.dropout", 0.99),
        ("head.dense_units", 1),
        ("head.dense_units", 4096),
        ("head.appearance_dims", 1),
        ("head.change_dims", 4096),
        ("head.appearance_offset", 0),
        ("head.appearance_offset", 100.0),
        ("evaluation", ...),
        ("training", ...),
        ("format_version", ...),  # format 1 wrote none
        ("format_version", 1),
        ("labels", [f"l{i}" for i in range(10_000)]),
        ("labels", [" spaced name "]),
        ("labels", ["überraschung", "中文"]),
    ],
)
def test_values_on_the_edges_of_the_format_pass(path, value):
    check_metadata(changed(path, value), NEWEST)


@pytest.mark.parametrize(
    "path,value,message",
    [
        ("window", 0, "window must be a whole number from 1 to 1000, not 0"),
        ("window", 1001, "window must be a whole number from 1 to 1000, not 1001"),
        ("window", 20.0, "window must be a whole number from 1 to 1000, not 20.0"),
        ("window", True, "window must be a whole number from 1 to 1000, not True"),
        ("window", "20", 'window must be a whole number from 1 to 1000, not "20"'),
        ("window", ..., "window must be a whole number from 1 to 1000, not None"),
        ("image_size", 15, "image_size must be a whole number from 16 to 4096, not 15"),
        ("image_size", 4097, "image_size must be a whole number from 16 to 4096, not 4097"),
        ("backbone", ..., "backbone is missing"),
        ("backbone", [], "backbone must be a JSON object, not []"),
        ("backbone.name", "", 'backbone.name must be a non-empty string, not ""'),
        ("backbone.name", "  ", 'backbone.name must be a non-empty string, not "  "'),
        ("backbone.name", ..., "backbone.name must be a non-empty string, not None"),
        ("backbone.name", "a\x1b[31m", 'backbone.name contains control characters ("a\\x1b[31m")'),
        ("backbone.name", "a\u200bb", 'backbone.name contains control characters ("a\\u200bb")'),
        (
            "backbone.feature_size",
            0,
            "backbone.feature_size must be a whole number from 1 to 100000, not 0",
        ),
        (
            "backbone.feature_size",
            100_001,
            "backbone.feature_size must be a whole number from 1 to 100000, not 100001",
        ),
        (
            "backbone.image_size",
            15,
            "backbone.image_size must be a whole number from 16 to 4096, not 15",
        ),
        (
            "backbone.file",
            "../b.tflite",
            'backbone.file must name a file inside the model directory, not "../b.tflite"',
        ),
        (
            "backbone.file",
            "..",
            'backbone.file must name a file inside the model directory, not ".."',
        ),
        (
            "backbone.file",
            ".",
            'backbone.file must name a file inside the model directory, not "."',
        ),
        (
            "backbone.file",
            "a\\b",
            'backbone.file must name a file inside the model directory, not "a\\b"',
        ),
        ("backbone.file", "", 'backbone.file must be a non-empty string, not ""'),
        ("sampling", 25, "sampling must be a JSON object, not 25"),
        ("sampling.fps", 0, "sampling.fps must be a number more than 0 up to 1000, not 0"),
        ("sampling.fps", -1.0, "sampling.fps must be a number more than 0 up to 1000, not -1.0"),
        (
            "sampling.fps",
            1000.5,
            "sampling.fps must be a number more than 0 up to 1000, not 1000.5",
        ),
        ("sampling.fps", math.inf, "sampling.fps must be a number more than 0 up to 1000, not inf"),
        ("sampling.fps", math.nan, "sampling.fps must be a number more than 0 up to 1000, not nan"),
        ("sampling.fps", "25", 'sampling.fps must be a number more than 0 up to 1000, not "25"'),
        ("sampling.fps", True, "sampling.fps must be a number more than 0 up to 1000, not True"),
        ("head", "gru", 'head must be a JSON object, not "gru"'),
        ("head.gru_units", [], "head.gru_units must be a list of 1 to 8 sizes, not []"),
        ("head.gru_units", 16, "head.gru_units must be a list of 1 to 8 sizes, not 16"),
        (
            "head.gru_units",
            [1] * 9,
            "head.gru_units must be a list of 1 to 8 sizes, not [1, 1, 1, 1, 1, 1, 1, 1, 1]",
        ),
        (
            "head.gru_units",
            [16, 0],
            "head.gru_units[1] must be a whole number from 1 to 4096, not 0",
        ),
        (
            "head.gru_units",
            [4097],
            "head.gru_units[0] must be a whole number from 1 to 4096, not 4097",
        ),
        ("head.dropout", -0.1, "head.dropout must be a number from 0 to 0.99, not -0.1"),
        ("head.dropout", 1, "head.dropout must be a number from 0 to 0.99, not 1"),
        ("head.dense_units", 0, "head.dense_units must be a whole number from 1 to 4096, not 0"),
        (
            "head.dense_units",
            4097,
            "head.dense_units must be a whole number from 1 to 4096, not 4097",
        ),
        ("head.input", "", 'head.input must be a non-empty string, not ""'),
        ("head.input", 2, "head.input must be a non-empty string, not 2"),
        (
            "head.change_reference",
            "mean\x1b[0m",
            'head.change_reference contains control characters ("mean\\x1b[0m")',
        ),
        ("head.change_reference", 1, "head.change_reference must be a non-empty string, not 1"),
        ("head.change_basis", "", 'head.change_basis must be a non-empty string, not ""'),
        (
            "head.appearance_dims",
            0,
            "head.appearance_dims must be a whole number from 1 to 4096, not 0",
        ),
        (
            "head.change_dims",
            4097,
            "head.change_dims must be a whole number from 1 to 4096, not 4097",
        ),
        (
            "head.change_dims",
            16.0,
            "head.change_dims must be a whole number from 1 to 4096, not 16.0",
        ),
        (
            "head.appearance_offset",
            -0.5,
            "head.appearance_offset must be a number from 0 to 100, not -0.5",
        ),
        (
            "head.appearance_offset",
            100.5,
            "head.appearance_offset must be a number from 0 to 100, not 100.5",
        ),
        ("evaluation", [], "evaluation must be a JSON object, not []"),
        ("training", "x", 'training must be a JSON object, not "x"'),
        ("format_version", 0, "format_version must be a whole number from 1, not 0"),
        ("format_version", 1.0, "format_version must be a whole number from 1, not 1.0"),
        ("format_version", "2", 'format_version must be a whole number from 1, not "2"'),
        (
            "format_version",
            3,
            "it is format 3; this version reads formats up to 2: upgrade realtime-action",
        ),
        ("labels", [], "labels must be a list of 1 to 10000 names, not []"),
        ("labels", "ab", 'labels must be a list of 1 to 10000 names, not "ab"'),
        ("labels", ..., "labels must be a list of 1 to 10000 names, not None"),
        ("labels", ["a", "b", "a"], "labels must not repeat a name"),
        ("labels", ["a", ""], 'labels[1] must be a non-empty string, not ""'),
        ("labels", ["a", 3], "labels[1] must be a non-empty string, not 3"),
        ("labels", ["a\nb"], 'labels[0] contains control characters ("a\\nb")'),
    ],
)
def test_a_wrong_field_is_named_in_one_line(path, value, message):
    assert rejection(changed(path, value)) == message


def test_too_many_labels_are_refused():
    many = [f"l{i}" for i in range(10_001)]
    assert rejection(changed("labels", many)).startswith(
        "labels must be a list of 1 to 10000 names, not ['l0', "
    )


def test_long_values_are_shortened_in_the_message():
    message = rejection(changed("backbone.name", "\x07" + "x" * 100))
    shown = '"\\x07' + "x" * 32 + "..."  # 40 characters at most, quotes included
    assert message == f"backbone.name contains control characters ({shown})"


@pytest.mark.parametrize("data", [[], "model", 1, None])
def test_a_file_that_is_not_an_object_is_refused(data):
    shown = '"model"' if data == "model" else repr(data)
    assert rejection(data) == f"the file must hold a JSON object, not {shown}"


def test_the_first_wrong_field_in_file_order_is_named():
    data = changed("window", 0)
    data["labels"] = []
    assert rejection(data).startswith("labels ")
    data = changed("window", 0)
    data["backbone"] = []
    assert rejection(data).startswith("window ")


def test_the_newest_format_a_version_reads_is_its_own():
    check_metadata(changed("format_version", 3), 3)
    with pytest.raises(MetadataError):
        check_metadata(changed("format_version", 2), 1)


def test_a_metadata_without_format_version_is_format_1():
    check_metadata(changed("format_version", ...), 1)  # a reader of format 1 takes it


@pytest.mark.parametrize("length", [38, 39])
def test_values_are_cut_only_past_40_characters(length):
    """`"` + 38 characters + `"` is 40 and shown whole; one more is cut to 37 + `...`."""
    value = "n" * (length - 1) + "/"  # a path: refused, and shown
    message = rejection(changed("backbone.file", value))
    quoted = f'"{value}"'
    assert message.endswith("not " + (quoted if len(quoted) <= 40 else quoted[:37] + "..."))
    assert message.endswith("...") == (length == 39)
