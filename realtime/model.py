"""The GRU head and the model directory that carries it.

The head is the Keras example's sequence model, defined here once for training and live use:

    features (window x feature_size) + mask (window) -> GRU(16) -> GRU(8) -> Dropout(0.4)
    -> Dense(8, relu) -> Dense(n_classes, softmax)

99,909 trainable parameters for 2048-d features and 5 classes.

A model directory holds:

- `head.weights.h5`: the head's weights;
- `metadata.json`: labels, window length, image size, backbone identity and feature size,
  how frames were sampled in training (`sampling.fps`: the frame rate of the frames inside a
  window), the head's architecture and the evaluation figures.
- `backbone.tflite` when the model was trained on a LiteRT backbone (so the directory is
  self-contained).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from realtime.errors import InputError
from realtime.quiet import import_tensorflow

METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "head.weights.h5"
FORMAT_VERSION = 1

#: The Keras example's head: GRU(16) -> GRU(8) -> Dropout(0.4) -> Dense(8, relu).
SEED_HEAD = {"gru_units": [16, 8], "dropout": 0.4, "dense_units": 8}


def build_head(
    window: int,
    feature_size: int,
    num_classes: int,
    gru_units=(16, 8),
    dropout: float = 0.4,
    dense_units: int = 8,
):
    """The masked GRU sequence model (uncompiled Keras model with inputs [features, mask])."""
    import_tensorflow()
    import keras

    features = keras.Input((window, feature_size), name="features")
    mask = keras.Input((window,), dtype="bool", name="mask")
    x = features
    for i, units in enumerate(gru_units):
        last = i == len(gru_units) - 1
        if i == 0:
            x = keras.layers.GRU(units, return_sequences=not last, name=f"gru_{i}")(x, mask=mask)
        else:
            x = keras.layers.GRU(units, return_sequences=not last, name=f"gru_{i}")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model([features, mask], outputs, name="gru_head")


@dataclass
class ModelInfo:
    """Everything `realtime` needs to know about a trained head (metadata.json)."""

    labels: list[str]
    window: int
    image_size: int
    backbone: dict  # {"name", "feature_size", "image_size", ...} from Backbone.describe()
    sampling: dict = field(default_factory=lambda: {"fps": 25.0})
    head: dict = field(default_factory=lambda: dict(SEED_HEAD))
    evaluation: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def feature_size(self) -> int:
        return int(self.backbone["feature_size"])

    @property
    def sampling_fps(self) -> float | None:
        fps = self.sampling.get("fps")
        return float(fps) if fps else None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict) -> ModelInfo:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


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
        data = json.loads(meta_path.read_text())
        info = ModelInfo.from_dict(data)
        labels = [str(label) for label in info.labels]
        if not labels or int(info.window) < 1 or info.feature_size < 1:
            raise ValueError("labels, window and backbone.feature_size are required")
        info.labels = labels
        info.window = int(info.window)
        info.image_size = int(info.image_size)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{meta_path} is corrupt or incomplete ({str(exc)[:120]})") from None
    if info.format_version > FORMAT_VERSION:
        raise InputError(f"{meta_path} is format {info.format_version}; upgrade realtime-action")
    return info


def save_model_dir(model_dir: str | os.PathLike, head, info: ModelInfo) -> Path:
    """Write head weights + metadata.json (the directory `realtime --model` reads)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    head.save_weights(str(model_dir / WEIGHTS_FILE))
    tmp = model_dir / (METADATA_FILE + ".tmp")
    tmp.write_text(info.to_json() + "\n")
    tmp.replace(model_dir / METADATA_FILE)
    return model_dir


def check_compatible(info: ModelInfo, backbone_info: dict, model_dir: Path) -> None:
    """Refuse to run a head on features from a backbone it was not trained with."""
    expected = info.backbone
    if int(expected["feature_size"]) != int(backbone_info["feature_size"]):
        raise InputError(
            f"model {model_dir} expects {expected['feature_size']}-d features from "
            f"{expected.get('name')}, but the backbone {backbone_info['name']} gives "
            f"{backbone_info['feature_size']}-d; use the backbone the model was trained with"
        )
    if expected.get("name") != backbone_info["name"]:
        raise InputError(
            f"model {model_dir} was trained on backbone {expected.get('name')}, not "
            f"{backbone_info['name']}; pass the matching --backbone / --backbone-weights"
        )


class ActionClassifier:
    """The trained head, ready to classify one window at a time."""

    def __init__(self, model_dir: str | os.PathLike, info: ModelInfo | None = None):
        self.model_dir = Path(model_dir)
        self.info = info or read_model_info(self.model_dir)
        head = self.info.head or SEED_HEAD
        self.model = build_head(
            self.info.window,
            self.info.feature_size,
            len(self.info.labels),
            gru_units=tuple(head.get("gru_units", SEED_HEAD["gru_units"])),
            dropout=float(head.get("dropout", SEED_HEAD["dropout"])),
            dense_units=int(head.get("dense_units", SEED_HEAD["dense_units"])),
        )
        try:
            self.model.load_weights(str(self.model_dir / WEIGHTS_FILE))
        except Exception as exc:
            raise InputError(
                f"cannot load {self.model_dir / WEIGHTS_FILE} ({str(exc).splitlines()[0][:140]})"
            ) from None
        tf = import_tensorflow()
        model = self.model
        window, size = self.info.window, self.info.feature_size

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, window, size], tf.float32),
                tf.TensorSpec([None, window], tf.bool),
            ]
        )
        def probabilities(features, mask):
            return model([features, mask], training=False)

        self._probabilities = probabilities

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    def predict(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(window, D) features + (window,) mask -> (n_classes,) probabilities."""
        return self.predict_batch(features[None], mask[None])[0]

    def predict_batch(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, window, D) + (N, window) -> (N, n_classes)."""
        probs = self._probabilities(
            np.asarray(features, np.float32), np.asarray(mask, bool)
        ).numpy()
        return probs.astype(np.float32, copy=False)
