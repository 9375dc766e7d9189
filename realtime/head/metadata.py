"""metadata.json is untrusted input: every field the runtime reads is checked here, up front.

`check_metadata(data)` returns nothing or raises `MetadataError` naming the first field that
is wrong (`backbone.feature_size must be a whole number from 1 to 100000, not "x"`). It runs
before TensorFlow is imported, so a broken model directory costs one line and no time.
Fields the runtime does not read (`evaluation`, `training`, extra keys) are only required to
be JSON objects where the format says so.
"""

from __future__ import annotations

import math
import unicodedata

from realtime.backbones.regions import Pooling
from realtime.head.config import SWITCHES

MAX_LABELS = 10_000
MAX_WINDOW = 1_000
MAX_FEATURES = 100_000
MAX_UNITS = 4_096
MAX_THUMBNAIL = 256  # a motion thumbnail's side
MIN_IMAGE, MAX_IMAGE = 16, 4_096
MAX_FPS = 1_000.0


#: Unicode categories never let through into a message: control and format characters
CONTROL_CATEGORIES = ("Cc", "Cf")


class MetadataError(ValueError):
    """One line: which field is wrong and what it must be."""


def _escaped(value: str) -> str:
    """Control and format characters written as escapes: a message stays one inert line."""
    return "".join(
        c.encode("unicode_escape").decode("ascii")
        if unicodedata.category(c) in CONTROL_CATEGORIES
        else c
        for c in value
    )  # fmt: skip


def _show(value) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{_escaped(value)}"'
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def whole(value, name: str, low: int, high: int) -> int:
    if not _is_int(value) or not low <= value <= high:
        raise MetadataError(
            f"{name} must be a whole number from {low} to {high}, not {_show(value)}"
        )
    return value


def number(value, name: str, low: float, high: float, *, above: bool = False) -> float:
    ok = _is_number(value) and (low < value if above else low <= value) and value <= high
    if not ok:
        bound = f"more than {low:g} up" if above else f"from {low:g}"
        raise MetadataError(f"{name} must be a number {bound} to {high:g}, not {_show(value)}")
    return float(value)


def obj(data: dict, key: str, name: str, required: bool = False) -> dict:
    if key not in data:
        if required:
            raise MetadataError(f"{name} is missing")
        return {}
    value = data[key]
    if not isinstance(value, dict):
        raise MetadataError(f"{name} must be a JSON object, not {_show(value)}")
    return value


def text(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MetadataError(f"{name} must be a non-empty string, not {_show(value)}")
    if any(unicodedata.category(c) in CONTROL_CATEGORIES for c in value):
        raise MetadataError(f"{name} contains control characters ({_show(value)})")
    return value


def _labels(data: dict) -> None:
    labels = data.get("labels")
    if not isinstance(labels, list) or not 1 <= len(labels) <= MAX_LABELS:
        raise MetadataError(
            f"labels must be a list of 1 to {MAX_LABELS} names, not {_show(labels)}"
        )
    for i, label in enumerate(labels):
        text(label, f"labels[{i}]")
    if len(set(labels)) != len(labels):
        raise MetadataError("labels must not repeat a name")


def _backbone(data: dict) -> None:
    backbone = obj(data, "backbone", "backbone", required=True)
    text(backbone.get("name"), "backbone.name")
    whole(backbone.get("feature_size"), "backbone.feature_size", 1, MAX_FEATURES)
    if "image_size" in backbone:
        whole(backbone["image_size"], "backbone.image_size", MIN_IMAGE, MAX_IMAGE)
    if "file" in backbone:
        file = text(backbone["file"], "backbone.file")
        if file in (".", "..") or "/" in file or "\\" in file:
            raise MetadataError(
                f"backbone.file must name a file inside the model directory, not {_show(file)}"
            )
    if "map_shape" in backbone:
        _map_shape(backbone["map_shape"], "backbone.map_shape")
    if "motion" in backbone:
        whole(backbone["motion"], "backbone.motion", 2, MAX_THUMBNAIL)
        if backbone["motion"] ** 2 >= backbone["feature_size"]:
            raise MetadataError(
                f"backbone.motion {_show(backbone['motion'])}: its thumbnail holds more numbers "
                f"than the backbone's {backbone['feature_size']} features"
            )
    if "pooling" in backbone and backbone["pooling"] not in [p.value for p in Pooling]:
        choices = ", ".join(p.value for p in Pooling)
        raise MetadataError(
            f"backbone.pooling must be one of {choices}, not {_show(backbone['pooling'])}"
        )


def _map_shape(shape, name: str) -> None:
    """A feature map's [rows, columns, channels] (`Pooling.MAP`), each a whole number."""
    if not isinstance(shape, list) or len(shape) != 3:
        raise MetadataError(f"{name} must be [rows, columns, channels], not {_show(shape)}")
    for i, size in enumerate(shape):
        whole(size, f"{name}[{i}]", 1, MAX_FEATURES)


def _sampling(data: dict) -> None:
    sampling = obj(data, "sampling", "sampling")
    if sampling.get("fps") is not None:
        number(sampling["fps"], "sampling.fps", 0.0, MAX_FPS, above=True)


def _head(data: dict) -> None:
    head = obj(data, "head", "head")
    if "gru_units" in head:
        units = head["gru_units"]
        if not isinstance(units, list) or not 1 <= len(units) <= 8:
            raise MetadataError(
                f"head.gru_units must be a list of 1 to 8 sizes, not {_show(units)}"
            )
        for i, size in enumerate(units):
            whole(size, f"head.gru_units[{i}]", 1, MAX_UNITS)
    if "dropout" in head:
        number(head["dropout"], "head.dropout", 0.0, 0.99)
    if "dense_units" in head:
        whole(head["dense_units"], "head.dense_units", 1, MAX_UNITS)
    for key in ("input", "change_reference", "change_basis"):  # names of enums the model checks
        if key in head:
            text(head[key], f"head.{key}")
    for key in ("appearance_dims", "change_dims"):
        if key in head:
            whole(head[key], f"head.{key}", 1, MAX_UNITS)
    if "appearance_offset" in head:
        number(head["appearance_offset"], "head.appearance_offset", 0.0, 100.0)
    for key in SWITCHES:
        if key in head and not isinstance(head[key], bool):
            raise MetadataError(f"head.{key} must be true or false, not {_show(head[key])}")
    if head.get("where_shift") and not head.get("where_trend"):
        raise MetadataError("head.where_shift needs head.where_trend")
    thumbnail = 0
    if "motion" in head:
        whole(head["motion"], "head.motion", 2, MAX_THUMBNAIL)
        if head["motion"] != data["backbone"].get("motion"):
            raise MetadataError(
                f"head.motion {_show(head['motion'])} must be the backbone's thumbnail side "
                f"(backbone.motion: {_show(data['backbone'].get('motion'))})"
            )
        thumbnail = head["motion"] ** 2
    if head.get("motion_scores") and not thumbnail:
        raise MetadataError("head.motion_scores needs head.motion")
    if head.get("motion_quadrants") and not head.get("motion_scores"):
        raise MetadataError("head.motion_quadrants needs head.motion_scores")
    if head.get("motion_summary") and not head.get("motion_quadrants"):
        raise MetadataError("head.motion_summary needs head.motion_quadrants")
    if head.get("motion_quadrants") and (head["motion"] < 4 or head["motion"] % 2):
        raise MetadataError(
            f"head.motion_quadrants needs an even head.motion of 4 or more, not {head['motion']}"
        )
    if head.get("where_trend"):
        shape = head.get("map_shape")
        _map_shape(shape, "head.map_shape")
        rows, columns, channels = shape
        if rows * columns * channels + thumbnail >= data["backbone"]["feature_size"]:
            raise MetadataError(
                f"head.map_shape {_show(shape)} holds more numbers than the backbone's "
                f"{data['backbone']['feature_size']} features"
            )


def check_metadata(data, newest_format: int) -> None:
    """Raise MetadataError unless `data` (parsed metadata.json) is a model this version runs."""
    if not isinstance(data, dict):
        raise MetadataError(f"the file must hold a JSON object, not {_show(data)}")
    version = data.get("format_version", 1)
    if not _is_int(version) or version < 1:
        raise MetadataError(f"format_version must be a whole number from 1, not {_show(version)}")
    if version > newest_format:
        raise MetadataError(
            f"it is format {version}; this version reads formats up to {newest_format}: "
            "upgrade realtime-action"
        )
    _labels(data)
    whole(data.get("window"), "window", 1, MAX_WINDOW)
    whole(data.get("image_size"), "image_size", MIN_IMAGE, MAX_IMAGE)
    _backbone(data)
    _sampling(data)
    _head(data)
    obj(data, "evaluation", "evaluation")
    obj(data, "training", "training")
