"""Backbones: one image in, one feature vector out.

Every backbone takes what `realtime.preprocessing` produces (RGB uint8, N x S x S x 3) and
applies its own input scaling, so that preprocessing exists once for training and live use.

- `KerasInceptionV3`: the Keras example's feature extractor (InceptionV3, ImageNet weights,
  include_top=False, global average pooling, 2048-d). Weights come through Keras's normal
  download and cache, or from a local file (`--backbone-weights`) on offline machines.
- `LiteRTBackbone`: any `.tflite` image model; its output is dequantised and flattened into
  the feature vector, its input size and type are read from the model.

How InceptionV3 is *executed* (TensorFlow, XLA, LiteRT, OpenVINO fp32/bf16) is a backend, chosen
with `load_backbone(..., backend=...)`; see `realtime.backends`. Every backend of one set of
weights has the same `name` and `describe()`, so a head trained on one runs on any other.

`describe()` returns the identity recorded in a model's metadata, so that a head is never run
on features from a backbone it was not trained with.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from realtime.errors import InputError, first_line
from realtime.quiet import import_tensorflow, native_stderr_silenced

INCEPTION_V3 = "inception_v3"
INCEPTION_FEATURE_SIZE = 2048
INCEPTION_IMAGE_SIZE = 224
#: MD5 that Keras itself checks for `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`.
INCEPTION_IMAGENET_NOTOP_MD5 = "bcbd6486424b2319ff4ef7d526e38f63"
INCEPTION_IMAGENET_NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_IMAGENET_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    + INCEPTION_IMAGENET_NOTOP_FILE
)


def imagenet_weights_file() -> Path:
    """The InceptionV3 ImageNet (notop) weights, from Keras's cache or downloaded into it.

    The file is fetched with a progress bar and resume, then checked against the MD5 Keras
    itself uses; it lands where Keras caches it ($KERAS_HOME/models, default ~/.keras/models).
    """
    from rich.console import Console

    from realtime.download import fetch

    import_tensorflow()
    import keras

    home = Path(keras.config.keras_home()) if hasattr(keras.config, "keras_home") else None
    home = home or Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    target = home / "models" / INCEPTION_IMAGENET_NOTOP_FILE
    if target.is_file() and file_digest(target, "md5") == INCEPTION_IMAGENET_NOTOP_MD5:
        return target
    fetch(
        INCEPTION_IMAGENET_NOTOP_URL,
        target,
        Console(stderr=True),
        offline_hint=(
            f"pass --backbone-weights {INCEPTION_IMAGENET_NOTOP_FILE} "
            "(or use --backbone FILE.tflite)"
        ),
    )
    if file_digest(target, "md5") != INCEPTION_IMAGENET_NOTOP_MD5:
        target.unlink()
        raise InputError(
            f"the downloaded {INCEPTION_IMAGENET_NOTOP_FILE} failed its checksum; run again"
        )
    return target


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Backbone(ABC):
    """Turns preprocessed frames into feature vectors."""

    #: Stable identity stored in model metadata, e.g. "inception_v3/imagenet".
    name: str
    #: How it runs (`realtime.backends`): not part of the identity, backends are interchangeable.
    backend: str = "native"
    feature_size: int
    image_size: int

    @abstractmethod
    def extract(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB frames -> (N, feature_size) float32 features."""

    def describe(self) -> dict:
        """What a model's metadata records about the backbone it was trained with."""
        return {
            "name": self.name,
            "feature_size": int(self.feature_size),
            "image_size": int(self.image_size),
        }

    def cache_identity(self) -> dict:
        """What cached features depend on: `describe()`, plus anything that changes them more
        than backends may differ (an int8 model's calibration)."""
        return self.describe()


def inception_weights_identity(weights) -> tuple[str, str | None]:
    """(id for the backbone name, cache key) of InceptionV3 weights, without building the model.

    The id is "imagenet", "random" or "file-<sha256[:12]>"; the cache key identifies the exact
    weights (None for random weights, which are never cached).
    """
    if weights is None:
        return "random", None
    if str(weights) == "imagenet":
        return "imagenet", "imagenet"
    path = Path(weights)
    if not path.is_file():
        raise InputError(f"backbone weights file not found: {path}")
    if file_digest(path, "md5") == INCEPTION_IMAGENET_NOTOP_MD5:
        return "imagenet", "imagenet"
    sha = file_digest(path)
    return f"file-{sha[:12]}", f"file-{sha}"


def _set_tensorflow_threads(tf, num_threads: int | None) -> None:
    """Limit TensorFlow's intra-op threads (possible only before TensorFlow's first op)."""
    if not num_threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(num_threads))
    except RuntimeError:  # already initialised in this process: keep what it has
        pass


class KerasInceptionV3(Backbone):
    """InceptionV3, include_top=False, average pooled: the example's 2048-d extractor.

    `weights` is "imagenet" (Keras downloads and caches the file), a path to a Keras weights
    file (the ImageNet notop file, for offline machines), or None (random weights; only for
    tests and benchmarks, and recorded as such in the name).
    """

    feature_size = INCEPTION_FEATURE_SIZE
    image_size = INCEPTION_IMAGE_SIZE

    #: How the graph runs: "keras" (tf.function) or "xla" (tf.function with jit_compile).
    backend = "keras"

    def __init__(
        self,
        weights: str | os.PathLike | None = "imagenet",
        batch_size: int = 16,
        jit_compile: bool = False,
        num_threads: int | None = None,
    ):
        tf = import_tensorflow()
        _set_tensorflow_threads(tf, num_threads)
        if weights is not None and str(weights) == "imagenet":
            weights = imagenet_weights_file()
        self.batch_size = batch_size
        self.weights_id, self.weights_key = inception_weights_identity(weights)
        self.name = f"{INCEPTION_V3}/{self.weights_id}"
        self.backend = "xla" if jit_compile else "keras"
        self._model = self._build(weights)

        model = self._model

        def features(frames):
            # keras.applications.inception_v3.preprocess_input: x / 127.5 - 1
            x = tf.cast(frames, tf.float32) / 127.5 - 1.0
            return model(x, training=False)

        self.graph_function = features  # the exact computation, for exporters
        self._features = tf.function(
            features,
            input_signature=[tf.TensorSpec([None, self.image_size, self.image_size, 3], tf.uint8)],
            reduce_retracing=True,
            jit_compile=jit_compile,
        )

    @property
    def keras_model(self):
        """The Keras model itself (the source of truth every exported backend comes from)."""
        return self._model

    def _build(self, weights):
        import keras

        source = None if weights is None else str(weights)
        try:
            return keras.applications.InceptionV3(
                include_top=False,
                weights=source,
                pooling="avg",
                input_shape=(self.image_size, self.image_size, 3),
            )
        except Exception as exc:  # corrupt or foreign weights files: one clear line
            raise InputError(
                f"cannot load InceptionV3 weights from {source}: {first_line(exc, 200)}"
            ) from None

    def extract(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.uint8)
        if len(frames) == 0:
            return np.zeros((0, self.feature_size), np.float32)
        chunks = [
            self._features(frames[i : i + self.batch_size]).numpy()
            for i in range(0, len(frames), self.batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32, copy=False)


class LiteRTBackbone(Backbone):
    """A `.tflite` model used as the feature extractor.

    Input scaling follows the TFLite conventions for image models: a uint8 input takes the raw
    RGB pixels, an int8 input takes pixels - 128, a float input takes pixels / 127.5 - 1. The
    output (any shape) is dequantised with its scale and zero point and flattened.
    """

    backend = "litert"

    def __init__(
        self,
        path: str | os.PathLike,
        num_threads: int | None = None,
        identity: dict | None = None,
    ):
        """`identity`: the describe() of the model this file was exported from, if any (a
        converted InceptionV3 keeps the Keras model's name so heads run on either)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"backbone file not found: {path}")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - depends on the install
            raise InputError("LiteRT is not installed: pip install ai-edge-litert") from None
        threads = num_threads or os.cpu_count() or 1
        try:
            with native_stderr_silenced():
                self._interpreter = Interpreter(model_path=str(path), num_threads=threads)
                self._interpreter.allocate_tensors()
        except Exception as exc:
            raise InputError(f"{path} is not a usable .tflite model: {str(exc)[:160]}") from None
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        if len(inputs) != 1:
            raise InputError(f"{path}: a backbone must have exactly one input, not {len(inputs)}")
        shape = [int(v) for v in inputs[0]["shape"]]
        if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
            raise InputError(f"{path}: expected a square RGB image input, got shape {shape}")
        self._input = inputs[0]
        self._output = outputs[0]
        self.path = path
        self.image_size = shape[1]
        self.feature_size = int(np.prod(self._output["shape"][1:]))
        self._identity = dict(identity) if identity else None
        if self._identity:
            self.sha256 = None
            self.name = self._identity["name"]
        else:
            self.sha256 = file_digest(path)
            self.name = f"tflite/{self.sha256[:12]}"
        self._in_dtype = np.dtype(self._input["dtype"])
        scale, zero = self._output["quantization"]
        self._out_scale = float(scale) if scale else None
        self._out_zero = float(zero)

    def describe(self) -> dict:
        if self._identity:
            return dict(self._identity)
        info = super().describe()
        info["file"] = self.path.name
        info["sha256"] = self.sha256
        return info

    def _scaled(self, frame: np.ndarray) -> np.ndarray:
        if self._in_dtype == np.uint8:
            return frame
        if self._in_dtype == np.int8:
            return (frame.astype(np.int16) - 128).astype(np.int8)
        return frame.astype(np.float32) / 127.5 - 1.0

    def extract(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.uint8)
        out = np.empty((len(frames), self.feature_size), np.float32)
        interpreter = self._interpreter
        in_index, out_index = self._input["index"], self._output["index"]
        for i, frame in enumerate(frames):
            interpreter.set_tensor(in_index, self._scaled(frame)[None])
            interpreter.invoke()
            raw = interpreter.get_tensor(out_index).reshape(-1)
            if self._out_scale is not None:
                out[i] = (raw.astype(np.float32) - self._out_zero) * self._out_scale
            else:
                out[i] = raw
        return out


def backbone_spec_from_metadata(info: dict, model_dir: Path) -> str:
    """The --backbone value a model directory implies when the user gives none."""
    name = info.get("name", "")
    if name.startswith("tflite/"):
        candidate = model_dir / info.get("file", "backbone.tflite")
        return str(candidate)
    return INCEPTION_V3


def load_backbone(
    spec: str | None,
    weights: str | None = None,
    num_threads: int | None = None,
    backend: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    calibration=None,
) -> Backbone:
    """Build the backbone that `--backbone SPEC [--backbone-weights FILE] [--backend B]` names.

    `calibration` (`--calibration`): videos or folders that an `openvino-int8` backbone is
    quantized on (`realtime.quantize`).

    `backend` (see `realtime.backends.BACKENDS`) chooses how InceptionV3 runs; exported
    runtimes are converted from the Keras model once and cached in `cache_dir` (default
    `~/.cache/realtime-action`). A `.tflite` backbone always runs on LiteRT.
    """
    from realtime import backends

    spec = spec or INCEPTION_V3
    backend = backends.check_backend_name(backend)
    if spec.lower().endswith(".tflite"):
        if weights:
            raise InputError("--backbone-weights applies to InceptionV3, not to a .tflite backbone")
        if calibration:
            raise InputError("--calibration applies to InceptionV3, not to a .tflite backbone")
        if backend not in ("auto", "litert"):
            raise InputError(
                f"--backend {backend} applies to InceptionV3; a .tflite backbone runs on LiteRT"
            )
        return LiteRTBackbone(spec, num_threads=num_threads)
    if spec.lower() in (INCEPTION_V3, "inceptionv3"):
        return backends.load_inception(
            weights if weights else "imagenet",
            backend=backend,
            num_threads=num_threads,
            cache_dir=cache_dir,
            calibration=calibration,
        )
    raise InputError(f"unknown backbone {spec!r}: use 'inception_v3' or a path to a .tflite file")
