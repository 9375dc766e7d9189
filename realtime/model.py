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

Inference: `build_head` is the single definition of the architecture and the weights live in
the Keras model; `NumpyHead` reads them from it and runs the same GRU/Dense math in NumPy
(a Keras call costs milliseconds of framework overhead for ~0.1 MFLOP of work), and
`HeadStream` runs it per frame over a sliding window, projecting each frame's features
through the first GRU's input kernel once, when it arrives.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


_ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": _relu,
    "linear": lambda x: x,
    "softmax": _softmax,
}


class UnsupportedHead(ValueError):
    """The Keras model uses something NumpyHead does not implement (use Keras instead)."""


class _Gru:
    """One Keras GRU layer (reset_after=True, the Keras 3 default) as plain arrays."""

    def __init__(self, layer):
        cell = getattr(layer, "cell", layer)
        config = cell.get_config()
        if not config.get("reset_after", True) or not config.get("use_bias", True):
            raise UnsupportedHead("GRU with reset_after=False or without bias")
        if getattr(layer, "go_backwards", False) or getattr(layer, "stateful", False):
            raise UnsupportedHead("backwards or stateful GRU")
        self.activation = _ACTIVATIONS[_activation_name(config["activation"])]
        self.recurrent_activation = _ACTIVATIONS[_activation_name(config["recurrent_activation"])]
        kernel, recurrent, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
        self.units = recurrent.shape[0]
        self.kernel = np.ascontiguousarray(kernel)  # (D, 3U): z, r, h
        self.recurrent = np.ascontiguousarray(recurrent)  # (U, 3U)
        self.input_bias = bias[0].copy()
        self.recurrent_bias = bias[1].copy()

    def project(self, inputs: np.ndarray) -> np.ndarray:
        """Input projections x W + b_in, (..., D) -> (..., 3U): per frame, independent of state."""
        return inputs @ self.kernel + self.input_bias

    def run(self, projections: np.ndarray) -> np.ndarray:
        """All states over unmasked steps, (T, 3U) -> (T, U), from a zero initial state."""
        units, two = self.units, 2 * self.units
        recurrent, bias = self.recurrent, self.recurrent_bias
        gate, activation = self.recurrent_activation, self.activation
        h = np.zeros(units, np.float32)
        states = np.empty((len(projections), units), np.float32)
        for t, x in enumerate(projections):
            inner = h @ recurrent + bias
            zr = gate(x[:two] + inner[:two])  # update and reset gates together
            candidate = activation(x[two:] + zr[units:] * inner[two:])
            h = candidate + zr[:units] * (h - candidate)  # z * h + (1 - z) * candidate
            states[t] = h
        return states


def _activation_name(value) -> str:
    name = value if isinstance(value, str) else getattr(value, "__name__", str(value))
    if name not in _ACTIVATIONS:
        raise UnsupportedHead(f"activation {name}")
    return name


class NumpyHead:
    """The Keras head's inference math in NumPy, with the weights read from the Keras model.

    Masked time steps leave a GRU's state unchanged and the mask reaches every GRU layer
    (Keras propagates it), so the result equals running the GRUs over the unmasked steps
    only, which is what this does. Dropout is inactive at inference.
    """

    def __init__(self, model):
        import keras

        self.grus: list[_Gru] = []
        self.dense: list[tuple[np.ndarray, np.ndarray, Callable]] = []
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if isinstance(layer, keras.layers.GRU):
                if self.dense:
                    raise UnsupportedHead("a GRU after a Dense layer")
                self.grus.append(_Gru(layer))
            elif isinstance(layer, keras.layers.Dense):
                config = layer.get_config()
                if not config.get("use_bias", True):
                    raise UnsupportedHead("Dense without bias")
                name = _activation_name(config["activation"])
                kernel, bias = (np.asarray(w, np.float32) for w in layer.get_weights())
                self.dense.append((kernel, bias, _ACTIVATIONS[name]))
            elif isinstance(layer, keras.layers.Dropout):
                continue
            else:
                raise UnsupportedHead(f"layer {type(layer).__name__}")
        if not self.grus or not self.dense:
            raise UnsupportedHead("expected GRU layers followed by Dense layers")

    def project(self, features: np.ndarray) -> np.ndarray:
        """(..., D) features -> (..., 3U) input projections of the first GRU."""
        return self.grus[0].project(np.asarray(features, np.float32))

    def from_projections(self, projections: np.ndarray) -> np.ndarray:
        """Class probabilities from the first GRU's projections of the unmasked steps, in order."""
        x = self.grus[0].run(projections)
        for gru in self.grus[1:]:
            x = gru.run(gru.project(x))
        x = x[-1] if len(x) else np.zeros(self.grus[-1].units, np.float32)
        for kernel, bias, activation in self.dense:
            x = activation(x @ kernel + bias)
        return x.astype(np.float32, copy=False)

    def predict(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(T, D) features + (T,) bool mask -> (n_classes,) probabilities."""
        valid = np.flatnonzero(np.asarray(mask, bool))
        return self.from_projections(self.project(np.asarray(features)[valid]))


class HeadStream:
    """Per-frame head inference over a sliding window of `length` frames.

    `push(feature)` adds the newest frame and returns the probabilities for the window of
    the last `length` frames (fewer at the start: a partial window, as the masked head was
    trained to read). Each frame's input projection is computed once and kept in a ring, so a
    new frame costs one (D x 3U) product plus the small recurrences.
    """

    def __init__(self, head: NumpyHead, length: int):
        from realtime.window import FeatureWindow

        self.head = head
        self.length = length
        # the window holds each frame's projection instead of its raw feature vector
        self._window = FeatureWindow(length, head.grus[0].kernel.shape[1])

    @property
    def fill(self) -> int:
        """How many frames the window holds (0..length)."""
        return self._window.fill

    def reset(self) -> None:
        """Forget every frame (after a gap in the source, say)."""
        self._window.reset()

    def push(self, feature: np.ndarray) -> np.ndarray:
        self._window.push(self.head.project(feature))
        projections, _ = self._window.arrays()
        return self.head.from_projections(projections[: self._window.fill])


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
        try:
            self.numpy_head: NumpyHead | None = NumpyHead(self.model)
        except UnsupportedHead:
            self.numpy_head = None
        self._probabilities = None

    def keras_probabilities(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, window, D) + (N, window) -> (N, n_classes) through the Keras model itself."""
        if self._probabilities is None:
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
        probs = self._probabilities(np.asarray(features, np.float32), np.asarray(mask, bool))
        return probs.numpy().astype(np.float32, copy=False)

    def stream(self) -> HeadStream | KerasHeadStream:
        """Per-frame inference over the model's sliding window (see `HeadStream`)."""
        if self.numpy_head is not None:
            return HeadStream(self.numpy_head, self.info.window)
        return KerasHeadStream(self)

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    def predict(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(window, D) features + (window,) mask -> (n_classes,) probabilities."""
        return self.predict_batch(features[None], mask[None])[0]

    def predict_batch(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, window, D) + (N, window) -> (N, n_classes)."""
        if self.numpy_head is None:
            return self.keras_probabilities(features, mask)
        return np.stack(
            [self.numpy_head.predict(f, m) for f, m in zip(features, mask, strict=True)]
        )


class KerasHeadStream:
    """`HeadStream`'s interface through the Keras model (heads NumpyHead cannot run)."""

    def __init__(self, classifier: ActionClassifier):
        from realtime.window import FeatureWindow

        self.classifier = classifier
        self.window = FeatureWindow(classifier.info.window, classifier.info.feature_size)
        self.length = self.window.length

    @property
    def fill(self) -> int:
        return self.window.fill

    def reset(self) -> None:
        self.window.reset()

    def push(self, feature: np.ndarray) -> np.ndarray:
        self.window.push(feature)
        features, mask = self.window.arrays()
        return self.classifier.keras_probabilities(features[None], mask[None])[0]
