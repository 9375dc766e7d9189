"""The model directory: metadata.json (`ModelInfo`), read and checked without TensorFlow, and
the head's weights beside it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from realtime.backbones.base import BackboneIdentity
from realtime.core.errors import InputError
from realtime.head.config import SEED_HEAD, HeadConfig
from realtime.head.metadata import MetadataError, check_metadata

#: Where `python -m training all` writes its model and `python -m realtime` looks by default.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent.parent / "weights" / "ucf101_top5"
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "head.weights.h5"
#: The whole head as a Keras model, for users who want it in Keras (`load_keras_head`); the
#: runtime never reads it.
KERAS_FILE = "head.keras"
#: 2: the head may have an input transform (`head.input`); format 1 heads read raw features.
FORMAT_VERSION = 2


@dataclass
class ModelInfo:
    """Everything `realtime` needs to know about a trained head (metadata.json)."""

    labels: list[str]
    window: int
    image_size: int
    backbone: BackboneIdentity
    sampling: dict = field(default_factory=lambda: {"fps": 25.0})
    head: HeadConfig = SEED_HEAD
    evaluation: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def feature_size(self) -> int:
        return self.backbone.feature_size

    @property
    def sampling_fps(self) -> float | None:
        fps = self.sampling.get("fps")
        return float(fps) if fps else None

    def to_json(self) -> str:
        data = asdict(self)
        data["backbone"] = self.backbone.as_dict()
        data["head"] = self.head.as_dict()
        return json.dumps(data, indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict) -> ModelInfo:
        """From metadata.json; ValueError or TypeError for a head this version cannot build."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["backbone"] = BackboneIdentity.from_dict(values["backbone"])
        values["head"] = HeadConfig.from_dict(values.get("head"))
        return cls(**values)


def model_help(model_dir: Path) -> str:
    return (
        f"no trained model in {model_dir}: produce one with `python -m training all` "
        "(downloads UCF101 top-5 and trains it) or pass --model DIR"
    )


def read_model_info(model_dir: str | os.PathLike) -> ModelInfo:
    """Read and validate metadata.json without touching TensorFlow (fast input checks)."""
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise InputError(model_help(model_dir))
    if not model_dir.is_dir():
        raise InputError(f"--model must be a model directory, not a file: {model_dir}")
    meta_path = model_dir / METADATA_FILE
    if not meta_path.is_file():
        raise InputError(f"{model_dir} has no {METADATA_FILE}: " + model_help(model_dir))
    if not (model_dir / WEIGHTS_FILE).is_file():
        raise InputError(f"{model_dir} has no {WEIGHTS_FILE}: the model directory is incomplete")
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{meta_path} is not valid JSON ({str(exc)[:120]})") from None
    try:
        check_metadata(data, FORMAT_VERSION)
    except MetadataError as exc:
        raise InputError(f"{meta_path}: {exc}") from None
    try:
        return ModelInfo.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{meta_path}: this version cannot build its head ({exc})") from None


def save_model_dir(
    model_dir: str | os.PathLike, head, info: ModelInfo
) -> Path:  # pragma: no mutate block (TensorFlow)
    """Write head weights + metadata.json (the directory `realtime --model` reads) and the
    head as a `.keras` model."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    head.save_weights(str(model_dir / WEIGHTS_FILE))
    head.save(str(model_dir / KERAS_FILE))
    tmp = model_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(info.to_json() + "\n")
    tmp.replace(model_dir / METADATA_FILE)
    return model_dir


def check_compatible(info: ModelInfo, given: BackboneIdentity, model_dir: Path) -> None:
    """Refuse to run a head on features from a backbone it was not trained with."""
    expected = info.backbone
    if expected.feature_size != given.feature_size:
        raise InputError(
            f"model {model_dir} expects {expected.feature_size}-d features from "
            f"{expected.name}, but the backbone {given.name} gives "
            f"{given.feature_size}-d; use the backbone the model was trained with"
        )
    wanted = info.image_size
    if given.image_size is not None and given.image_size != int(wanted):
        raise InputError(
            f"model {model_dir} crops frames to {wanted}x{wanted}, but the backbone "
            f"{given.name} takes {given.image_size}x{given.image_size}; its metadata.json is "
            "inconsistent"
        )
    if expected.name != given.name:
        raise InputError(
            f"model {model_dir} was trained on backbone {expected.name}, not "
            f"{given.name}; pass the matching --backbone / --backbone-weights"
        )
    if expected.pooling is not given.pooling:
        raise InputError(
            f"model {model_dir} was trained on features pooled as {expected.pooling}, but the "
            f"backbone pools them as {given.pooling}"
        )
    if expected.motion != given.motion:

        def thumbnails(side):
            return f"{side}x{side} thumbnails" if side else "no thumbnails"

        raise InputError(
            f"model {model_dir} was trained on features ending with "
            f"{thumbnails(expected.motion)}, but the backbone's end with {thumbnails(given.motion)}"
        )
