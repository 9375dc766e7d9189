"""The GRU head and the model directory that carries it.

The head is the Keras example's sequence model, defined here once for training, offline
evaluation and live use:

    features (window x D) + mask (window) -> [input] -> GRU(16) -> GRU(8) -> Dropout(0.4)
    -> Dense(8, relu) -> Dense(n_classes, softmax)

`HeadConfig.input` says what the first GRU reads at each step of a window:

- `raw` (the example's, `--recipe seed`; every model written before format 2): the frame's
  features x_t. 99,909 trainable parameters for 2048-d features and 5 classes.
- `appearance+change` (the default recipe's): [(x_t - mean) A, (x_t - x_ref) C], how the
  frame looks and how it differs from the window's reference x_ref, projected to
  `appearance_dims` and `change_dims` numbers. `change_reference` says what x_ref is: the
  mean of the window's valid frames (`mean`, the default recipe's) or its first valid frame
  (`first`, the default before; format-2 directories without the field). `mean`, A and C
  are fitted on the training frames (`fit_window_input`: principal components, one scale per
  part) and stored with the weights; they are never trained by gradient descent. A head
  on raw features sees each frame as it looks and must discover the order of change
  itself; with a few dozen training videos it memorises what each video looks like instead
  (docs/training.md).
  While training only, `WindowOffset` moves each window's appearance part by a random
  offset shaped like the differences between videos of one class (`appearance_offset`
  times their spread, `fit_appearance_spread`); at inference it does nothing.

A model directory holds:

- `head.weights.h5`: the head's weights (the input transform's included);
- `metadata.json`: labels, window length, image size, backbone identity and feature size,
  how frames were sampled in training (`sampling.fps`: the frame rate of the frames inside a
  window), the head's architecture (`head`: a `HeadConfig`) and the evaluation figures;
- `backbone.tflite` when the model was trained on a LiteRT backbone (so the directory is
  self-contained).

Inference: `build_head` is the single definition of the architecture; `NumpyHead` runs the
same math in NumPy (a Keras call costs milliseconds of framework overhead for ~0.1 MFLOP of
work), with the weights read from `head.weights.h5` without TensorFlow (as `build_head` lays
them out; or from a built Keras model), and `HeadStream` runs it
per frame over a sliding window. Every step of the first GRU starts with a product
u_t K + b of its input with the GRU's input kernel K; the input transform is linear, so
NumpyHead folds it into that product. For `appearance+change`, with K = [K_a; K_c]:

    u_t K + b = x_t (A K_a + C K_c) + (b - mean A K_a)  -  x_ref (C K_c)
              =            P_t                         -     R_ref

P_t and R_t depend on frame t alone: each frame is projected once, when it arrives, through
one (D x 6U) matrix, and a window's steps are P_t - R_ref, with R_ref the R of the window's
first frame or the mean of its frames' R (the projection is linear: the projection of the
mean is the mean of the projections), whichever frames the window holds as it slides.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from realtime.errors import InputError, first_line
from realtime.metadata import MetadataError, check_metadata
from realtime.quiet import import_tensorflow

METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "head.weights.h5"
#: 2: the head may have an input transform (`head.input`); format 1 heads read raw features.
FORMAT_VERSION = 2

WINDOW_INPUT_LAYER = "window_input"
WINDOW_OFFSET_LAYER = "window_offset"
DENSE_LAYER = "dense"
PROBS_LAYER = "probs"


def gru_layer(index: int) -> str:
    """The name `build_head` gives its `index`-th GRU layer."""
    return f"gru_{index}"


class HeadInput(Enum):
    """What the first GRU reads at each step of a window (see the module's docstring)."""

    RAW = "raw"
    APPEARANCE_CHANGE = "appearance+change"


class ChangeReference(Enum):
    """What an `appearance+change` head measures change against, within each window."""

    FIRST = "first"  # the window's first valid frame
    MEAN = "mean"  # the mean of the window's valid frames


@dataclass(frozen=True)
class HeadConfig:
    """The head's architecture, as recorded in metadata.json (`head`)."""

    gru_units: tuple[int, ...] = (16, 8)
    dropout: float = 0.4
    dense_units: int = 8
    input: HeadInput = HeadInput.RAW
    appearance_dims: int = 0  # APPEARANCE_CHANGE: numbers for how a frame looks
    change_dims: int = 0  # APPEARANCE_CHANGE: numbers for how it changed
    appearance_offset: float = 0.0  # training only: offsets of looks, x the class spread
    change_reference: ChangeReference = ChangeReference.FIRST  # APPEARANCE_CHANGE

    def __post_init__(self):
        if not isinstance(self.input, HeadInput):
            raise TypeError("HeadConfig.input must be a HeadInput")
        if not isinstance(self.change_reference, ChangeReference):
            raise TypeError("HeadConfig.change_reference must be a ChangeReference")
        if not self.gru_units or min(self.gru_units) < 1 or self.dense_units < 1:
            raise ValueError("the head needs at least one GRU and positive widths")
        if self.input is HeadInput.APPEARANCE_CHANGE and min(self.dims) < 1:
            raise ValueError(f"{self.input.value} needs appearance_dims and change_dims >= 1")

    @property
    def dims(self) -> tuple[int, int]:
        """(appearance_dims, change_dims)."""
        return self.appearance_dims, self.change_dims

    def as_dict(self) -> dict:
        """For metadata.json; a `raw` head is written exactly as format 1 wrote it."""
        data = asdict(self)
        data["gru_units"] = list(self.gru_units)
        data["input"] = self.input.value
        data["change_reference"] = self.change_reference.value
        if self.input is HeadInput.RAW:
            for key in (
                "input",
                "appearance_dims",
                "change_dims",
                "appearance_offset",
                "change_reference",
            ):
                data.pop(key)
        return data

    def describe(self, num_classes: int) -> str:
        """One line, e.g. "raw -> GRU(16) -> GRU(8) -> Dropout(0.4) -> Dense(8, relu) -> ..."."""
        parts = [self.input.value]
        if self.input is HeadInput.APPEARANCE_CHANGE:
            parts[0] += f" ({self.appearance_dims} + {self.change_dims}"
            if self.change_reference is ChangeReference.MEAN:
                parts[0] += ", change from the mean"
            parts[0] += ")"
        parts += [f"GRU({u})" for u in self.gru_units]
        parts += [f"Dropout({self.dropout:g})", f"Dense({self.dense_units}, relu)"]
        parts.append(f"Dense({num_classes}, softmax)")
        return " -> ".join(parts)

    @classmethod
    def from_dict(cls, data: dict | None) -> HeadConfig:
        """From metadata.json; ValueError for an input this version does not know."""
        values = {k: v for k, v in dict(data or {}).items() if k in cls.__dataclass_fields__}
        if "gru_units" in values:
            values["gru_units"] = tuple(int(u) for u in values["gru_units"])
        values["input"] = HeadInput(values.get("input", HeadInput.RAW.value))
        # format-2 heads written before the option measured change against the first frame
        values["change_reference"] = ChangeReference(
            values.get("change_reference", ChangeReference.FIRST.value)
        )
        kinds = {"dense_units": int, "appearance_dims": int, "change_dims": int}
        for key in (
            "dropout",
            "dense_units",
            "appearance_dims",
            "change_dims",
            "appearance_offset",
        ):
            if key in values:
                values[key] = kinds.get(key, float)(values[key])
        return cls(**values)


#: The Keras example's head: GRU(16) -> GRU(8) -> Dropout(0.4) -> Dense(8, relu), raw input.
SEED_HEAD = HeadConfig()


def build_head(
    window: int, feature_size: int, num_classes: int, config: HeadConfig = SEED_HEAD
):  # pragma: no mutate block (TensorFlow)
    """The masked GRU sequence model (uncompiled Keras model with inputs [features, mask])."""
    import_tensorflow()
    import keras

    features = keras.Input((window, feature_size), name="features")
    mask = keras.Input((window,), dtype="bool", name="mask")
    x = features
    if config.input is HeadInput.APPEARANCE_CHANGE:
        from realtime.head_layers import WindowInput, WindowOffset

        x = WindowInput(
            feature_size,
            *config.dims,
            reference=config.change_reference.value,
            name=WINDOW_INPUT_LAYER,
        )(x, mask)
        if config.appearance_offset > 0:
            x = WindowOffset(
                config.appearance_dims, config.appearance_offset, name=WINDOW_OFFSET_LAYER
            )(x)
    for i, units in enumerate(config.gru_units):
        last = i == len(config.gru_units) - 1
        gru = keras.layers.GRU(units, return_sequences=not last, name=gru_layer(i))
        x = gru(x, mask=mask) if i == 0 else gru(x)
    x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    x = keras.layers.Dense(config.dense_units, activation="relu", name=DENSE_LAYER)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=PROBS_LAYER)(x)
    return keras.Model([features, mask], outputs, name="gru_head")


def window_references(
    features: np.ndarray, masks: np.ndarray, reference: ChangeReference
) -> np.ndarray:
    """(N, window, D) windows + (N, window) masks -> (N, D): what each window's change is
    measured against (its first valid frame, or the mean of its valid frames)."""
    if reference is ChangeReference.FIRST:
        return features[np.arange(len(features)), np.argmax(masks, axis=1)]
    weights = masks / np.maximum(masks.sum(axis=1, keepdims=True), 1)
    return np.einsum("nt,ntd->nd", weights, features)


def fit_window_input(
    features: np.ndarray,
    masks: np.ndarray,
    dims: tuple[int, int],
    reference: ChangeReference = ChangeReference.FIRST,
) -> list[np.ndarray]:
    """The `appearance+change` transform's weights [mean, A, C] from training windows.

    A and C project onto the leading principal components of the training frames (the
    directions in which frames differ most), `dims` = (columns of A, columns of C). A scales
    the centred projections to unit standard deviation; C scales the projected changes (against
    each window's `reference`, over the training windows) to unit standard deviation.
    `features` (N, window, D) and `masks` (N, window) are the training windows; masks start
    with their valid frames. Columns beyond the number of features or frames are zero.
    """
    features = np.asarray(features, np.float64)
    masks = np.asarray(masks, bool)
    frames = features[masks]
    wanted = max(dims)
    kept = min(wanted, features.shape[2], len(frames))
    mean = frames.mean(axis=0)
    centred = frames - mean
    covariance = centred.T @ centred / max(len(frames) - 1, 1)
    values, vectors = np.linalg.eigh(covariance)
    basis = np.zeros((features.shape[2], wanted))
    basis[:, :kept] = vectors[:, np.argsort(values)[::-1][:kept]]
    references = window_references(features, masks, reference)  # (N, D)
    changes = (features - references[:, None, :])[masks]
    appearance, change = basis[:, : dims[0]], basis[:, : dims[1]]
    appearance = appearance / max(float((centred @ appearance).std()), 1e-12)
    change = change / max(float((changes @ change).std()), 1e-12)
    return [mean.astype(np.float32), appearance.astype(np.float32), change.astype(np.float32)]


def fit_appearance_spread(
    features: np.ndarray,
    masks: np.ndarray,
    videos: np.ndarray,
    targets: np.ndarray,
    window_input: list[np.ndarray],
) -> np.ndarray:
    """The training-only `WindowOffset`'s spread: how videos of one class differ in looks.

    Each training video's mean appearance part ((x - mean) A over its windows' valid frames)
    minus its class's mean of those; the Cholesky factor of their covariance (dims, dims),
    with a small ridge. Where a class has a single video, it contributes nothing.
    """
    mean, appearance, _ = (np.asarray(w, np.float64) for w in window_input)
    looks = (np.asarray(features, np.float64) - mean) @ appearance  # (N, window, dims)
    masks = np.asarray(masks, bool)
    videos, targets = np.asarray(videos), np.asarray(targets)
    per_video, classes = [], []
    for v in np.unique(videos):
        rows = videos == v
        per_video.append(looks[rows][masks[rows]].mean(axis=0))
        classes.append(int(targets[rows][0]))
    per_video, classes = np.array(per_video), np.array(classes)
    deviations = [
        per_video[classes == c] - per_video[classes == c].mean(axis=0)
        for c in np.unique(classes)
        if (classes == c).sum() > 1
    ]
    dims = appearance.shape[1]
    if not deviations:
        return np.zeros((dims, dims), np.float32)
    stacked = np.concatenate(deviations)
    covariance = stacked.T @ stacked / max(len(stacked) - len(deviations), 1)
    ridge = 1e-6 * max(float(np.trace(covariance)) / dims, 1e-12)
    return np.linalg.cholesky(covariance + ridge * np.eye(dims)).astype(np.float32)


def fit_head_input(
    model,
    config: HeadConfig,
    features: np.ndarray,
    masks: np.ndarray,
    videos: np.ndarray | None = None,
    targets: np.ndarray | None = None,
) -> None:  # pragma: no mutate block (TensorFlow)
    """Set what `build_head` leaves to fitting, from training windows (N, window, D) + masks:
    the `appearance+change` transform (`fit_window_input`) and, given each window's video
    and class, the training-only offset's spread (`fit_appearance_spread`). A `raw` head has
    nothing to fit."""
    if config.input is not HeadInput.APPEARANCE_CHANGE:
        return
    statistics = fit_window_input(features, masks, config.dims, config.change_reference)
    model.get_layer(WINDOW_INPUT_LAYER).set_weights(statistics)
    if config.appearance_offset > 0 and videos is not None and targets is not None:
        spread = fit_appearance_spread(features, masks, videos, targets, statistics)
        model.get_layer(WINDOW_OFFSET_LAYER).set_weights([spread])


def count_parameters(model) -> dict:  # pragma: no mutate block (TensorFlow)
    """{"trainable": n, "fitted": n}: weights trained by gradient descent, and the rest
    (the input transform's fitted statistics)."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fixed = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return {"trainable": trainable, "fitted": fixed}


@dataclass
class ModelInfo:
    """Everything `realtime` needs to know about a trained head (metadata.json)."""

    labels: list[str]
    window: int
    image_size: int
    backbone: dict  # {"name", "feature_size", "image_size", ...} from Backbone.describe()
    sampling: dict = field(default_factory=lambda: {"fps": 25.0})
    head: dict = field(default_factory=SEED_HEAD.as_dict)  # a HeadConfig, as JSON
    evaluation: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def feature_size(self) -> int:
        return int(self.backbone["feature_size"])

    @property
    def head_config(self) -> HeadConfig:
        return HeadConfig.from_dict(self.head)

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
        data = json.loads(meta_path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{meta_path} is not valid JSON ({str(exc)[:120]})") from None
    try:
        check_metadata(data, FORMAT_VERSION)
    except MetadataError as exc:
        raise InputError(f"{meta_path}: {exc}") from None
    info = ModelInfo.from_dict(data)
    try:
        HeadConfig.from_dict(info.head)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{meta_path}: this version cannot build its head ({exc})") from None
    return info


def save_model_dir(
    model_dir: str | os.PathLike, head, info: ModelInfo
) -> Path:  # pragma: no mutate block (TensorFlow)
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
    wanted, given = info.image_size, backbone_info.get("image_size")
    if given is not None and int(given) != int(wanted):
        raise InputError(
            f"model {model_dir} crops frames to {wanted}x{wanted}, but the backbone "
            f"{backbone_info['name']} takes {given}x{given}; its metadata.json is inconsistent"
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

    def __init__(
        self,
        kernel: np.ndarray,
        recurrent: np.ndarray,
        bias: np.ndarray,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
    ):
        kernel, recurrent, bias = (np.asarray(w, np.float32) for w in (kernel, recurrent, bias))
        self.activation = _ACTIVATIONS[_activation_name(activation)]
        self.recurrent_activation = _ACTIVATIONS[_activation_name(recurrent_activation)]
        self.units = recurrent.shape[0]
        self.kernel = np.ascontiguousarray(kernel)  # (D, 3U): z, r, h
        self.recurrent = np.ascontiguousarray(recurrent)  # (U, 3U)
        self.input_bias = bias[0].copy()
        self.recurrent_bias = bias[1].copy()

    @classmethod
    def from_layer(cls, layer) -> _Gru:  # pragma: no mutate block (TensorFlow)
        cell = getattr(layer, "cell", layer)
        config = cell.get_config()
        if not config.get("reset_after", True) or not config.get("use_bias", True):
            raise UnsupportedHead("GRU with reset_after=False or without bias")
        if getattr(layer, "go_backwards", False) or getattr(layer, "stateful", False):
            raise UnsupportedHead("backwards or stateful GRU")
        return cls(*layer.get_weights(), config["activation"], config["recurrent_activation"])

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
    only, which is what this does. Dropout and the training-only noise are inactive at
    inference. An input transform is folded into the first GRU's input projection (see the
    module's docstring): `project` gives each frame's projection once, `steps` turns the
    projections of a window's valid frames into the first GRU's step inputs.
    """

    def __init__(
        self,
        grus: list[_Gru],
        dense: list[tuple[np.ndarray, np.ndarray, str]],
        window_input: list[np.ndarray] | None = None,
        reference: ChangeReference | None = None,
    ):
        """GRU layers, then (kernel, bias, activation) Dense layers; with `window_input`
        ([mean, A, C]), the `appearance+change` transform relative to `reference`."""
        if not grus or not dense:
            raise UnsupportedHead("expected GRU layers followed by Dense layers")
        self.grus = grus
        self.dense: list[tuple[np.ndarray, np.ndarray, Callable]] = [
            (
                np.asarray(k, np.float32),
                np.asarray(b, np.float32),
                _ACTIVATIONS[_activation_name(a)],
            )
            for k, b, a in dense
        ]
        first = self.grus[0]
        self.step_size = first.kernel.shape[1]  # 3U
        # steps relative to a reference within the window (None: raw steps)
        self.reference = None if window_input is None else reference
        if window_input is None:
            self.kernel, self.bias = first.kernel, first.input_bias
        else:
            window_input = [np.asarray(w, np.float64) for w in window_input]
            self.kernel, self.bias = _fold_window_input(window_input, first)

    @classmethod
    def from_keras(cls, model) -> NumpyHead:  # pragma: no mutate block (TensorFlow)
        """From a built Keras head (any stack of GRU, Dropout and Dense layers)."""
        import keras

        grus: list[_Gru] = []
        dense: list[tuple[np.ndarray, np.ndarray, str]] = []
        window_input, reference = None, None
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            if layer.name == WINDOW_INPUT_LAYER:
                window_input = layer.get_weights()
                reference = ChangeReference(layer.reference)
            elif isinstance(layer, keras.layers.GRU):
                if dense:
                    raise UnsupportedHead("a GRU after a Dense layer")
                grus.append(_Gru.from_layer(layer))
            elif isinstance(layer, keras.layers.Dense):
                config = layer.get_config()
                if not config.get("use_bias", True):
                    raise UnsupportedHead("Dense without bias")
                dense.append((*layer.get_weights(), _activation_name(config["activation"])))
            elif isinstance(layer, keras.layers.Dropout) or _inactive_at_inference(layer):
                continue
            else:
                raise UnsupportedHead(f"layer {type(layer).__name__}")
        return cls(grus, dense, window_input, reference)

    @classmethod
    def from_weights_file(cls, path: Path, info: ModelInfo) -> NumpyHead:
        """From `head.weights.h5` as `build_head` lays it out, without TensorFlow or Keras.

        Keras stores each layer's variables under `layers/<key>/vars` (a GRU's under
        `layers/<key>/cell/vars`), with the layer's own name as the `name` attribute; the
        names and shapes are the ones `build_head(info...)` gives. A file that does not match
        is an `InputError`; a head this reader does not know (`UnsupportedHead`) is left to
        Keras.
        """
        import h5py

        config = info.head_config
        try:
            with h5py.File(path, "r") as weights:
                found = {}
                for group in weights["layers"].values():
                    holder = group["cell"]["vars"] if "cell" in group else group["vars"]
                    name = str(group["vars"].attrs.get("name", ""))
                    found[name] = [np.asarray(holder[k]) for k in sorted(holder, key=int)]
        except Exception as exc:  # h5py raises OSError, KeyError, ValueError...
            raise InputError(f"cannot load {path} ({first_line(exc, 140)})") from None
        expected = _expected_weight_shapes(info)
        for name, shapes in expected.items():
            got = [w.shape for w in found.get(name, [])]
            if got != shapes:
                raise InputError(
                    f"cannot load {path}: layer {name} holds {got or 'nothing'}, "
                    f"the head in metadata.json needs {shapes}"
                )
        grus = [_Gru(*found[gru_layer(i)]) for i in range(len(config.gru_units))]
        dense = [(*found[DENSE_LAYER], "relu"), (*found[PROBS_LAYER], "softmax")]
        if config.input is HeadInput.APPEARANCE_CHANGE:
            return cls(grus, dense, found[WINDOW_INPUT_LAYER], config.change_reference)
        return cls(grus, dense)

    @property
    def projection_size(self) -> int:
        """Numbers kept per frame: 3U, or 6U when steps are relative to a reference."""
        return self.kernel.shape[1]

    def project(self, features: np.ndarray) -> np.ndarray:
        """(..., D) features -> (..., projection_size): per frame, independent of the window."""
        return np.asarray(features, np.float32) @ self.kernel + self.bias

    def steps(self, projections: np.ndarray) -> np.ndarray:
        """The first GRU's step inputs, (T, 3U), from the valid frames' projections in order."""
        if self.reference is None or not len(projections):
            return projections
        size = self.step_size
        if self.reference is ChangeReference.FIRST:
            return projections[:, :size] - projections[0, size:]
        reference = projections[:, size:].mean(axis=0, dtype=np.float64).astype(np.float32)
        return projections[:, :size] - reference

    def from_projections(self, projections: np.ndarray) -> np.ndarray:
        """Class probabilities from the projections of a window's valid frames, in order."""
        x = self.grus[0].run(self.steps(projections))
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


def _inactive_at_inference(layer) -> bool:  # pragma: no mutate block (TensorFlow)
    """Layers that only act while training (noise) and pass inputs through at inference."""
    import keras

    return layer.name == WINDOW_OFFSET_LAYER or isinstance(layer, keras.layers.GaussianNoise)


def _fold_window_input(weights: list[np.ndarray], gru: _Gru) -> tuple[np.ndarray, np.ndarray]:
    """The `appearance+change` transform folded into `gru`'s input projection.

    Returns the (D, 6U) kernel [A K_a + C K_c | C K_c] and the bias [b - mean A K_a | 0]:
    a frame's projection is [P_t | R_t] and a step's input is P_t - R_ref. Computed in
    float64, stored in float32.
    """
    mean, appearance, change = weights
    kernel = gru.kernel.astype(np.float64)
    looks, changes = kernel[: appearance.shape[1]], kernel[appearance.shape[1] :]
    reference = change @ changes  # C K_c
    current = appearance @ looks + reference  # A K_a + C K_c
    bias = gru.input_bias.astype(np.float64) - mean @ appearance @ looks
    folded = np.concatenate([current, reference], axis=1).astype(np.float32)
    return folded, np.concatenate([bias, np.zeros_like(bias)]).astype(np.float32)


def _expected_weight_shapes(info: ModelInfo) -> dict[str, list[tuple[int, ...]]]:
    """Layer name -> its variables' shapes in the head `build_head` makes for `info`."""
    config = info.head_config
    size = info.feature_size
    shapes: dict[str, list[tuple[int, ...]]] = {}
    if config.input is HeadInput.APPEARANCE_CHANGE:
        a, c = config.dims
        shapes[WINDOW_INPUT_LAYER] = [(size,), (size, a), (size, c)]
        size = a + c
    for i, units in enumerate(config.gru_units):
        shapes[gru_layer(i)] = [(size, 3 * units), (units, 3 * units), (2, 3 * units)]
        size = units
    shapes[DENSE_LAYER] = [(size, config.dense_units), (config.dense_units,)]
    shapes[PROBS_LAYER] = [(config.dense_units, len(info.labels)), (len(info.labels),)]
    return shapes


class HeadStream:
    """Per-frame head inference over a sliding window of `length` frames.

    `push(feature)` adds the newest frame and returns the probabilities for the window of
    the last `length` frames (fewer at the start: a partial window, as the masked head was
    trained to read). Each frame's projection (`NumpyHead.project`) is computed once and kept
    in a ring, so a new frame costs one (D x 3U) product (D x 6U with the `appearance+change`
    input) plus the small recurrences.
    """

    def __init__(self, head: NumpyHead, length: int):
        from realtime.window import FeatureWindow

        self.head = head
        self.length = length
        # the window holds each frame's projection instead of its raw feature vector
        self._window = FeatureWindow(length, head.projection_size)

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
        """Reads the weights without TensorFlow (`NumpyHead.from_weights_file`); the Keras
        model is built only when asked for (`model`), or for a head NumPy cannot run."""
        self.model_dir = Path(model_dir)
        self.info = info or read_model_info(self.model_dir)
        self._model = None
        try:
            self.numpy_head: NumpyHead | None = NumpyHead.from_weights_file(
                self.model_dir / WEIGHTS_FILE, self.info
            )
        except UnsupportedHead:
            self.numpy_head = None  # pragma: no mutate (TensorFlow path)
            self.model  # noqa: B018 - load it now: a broken file fails here, not mid-run
        self._probabilities = None  # pragma: no mutate (Keras only)

    @property
    def model(self):  # pragma: no mutate block (TensorFlow)
        """The Keras head with the directory's weights (built on first use: TensorFlow)."""
        if self._model is None:
            model = build_head(
                self.info.window,
                self.info.feature_size,
                len(self.info.labels),
                self.info.head_config,
            )
            try:
                model.load_weights(str(self.model_dir / WEIGHTS_FILE))
            except Exception as exc:
                raise InputError(
                    f"cannot load {self.model_dir / WEIGHTS_FILE} ({first_line(exc, 140)})"
                ) from None
            self._model = model
        return self._model

    def keras_probabilities(
        self, features: np.ndarray, mask: np.ndarray
    ) -> np.ndarray:  # pragma: no mutate block (TensorFlow)
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
        return KerasHeadStream(self)  # pragma: no mutate (TensorFlow path)

    @property
    def labels(self) -> list[str]:
        return self.info.labels

    def predict(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(window, D) features + (window,) mask -> (n_classes,) probabilities."""
        return self.predict_batch(features[None], mask[None])[0]

    def predict_batch(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(N, window, D) + (N, window) -> (N, n_classes)."""
        if self.numpy_head is None:
            return self.keras_probabilities(features, mask)  # pragma: no mutate (TensorFlow path)
        return np.stack(
            [self.numpy_head.predict(f, m) for f, m in zip(features, mask, strict=True)]
        )


class KerasHeadStream:  # pragma: no mutate block (TensorFlow)
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
