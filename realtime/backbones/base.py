"""What every backbone is (`Backbone`), the names of the backends InceptionV3 runs on and
the cache they are converted into.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from realtime.backbones.regions import Pooling
from realtime.core.errors import InputError
from realtime.core.textenum import TextEnum


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BackboneIdentity:
    """Which backbone a head's features come from, as metadata.json records it (`backbone`).
    A head runs only on a backbone of the same identity, whichever backend runs it."""

    name: str  # e.g. "inception_v3/imagenet", "tflite/<digest>"
    feature_size: int
    image_size: int | None = None  # model directories of format 1 may not say
    file: str | None = None  # a .tflite backbone: its file name, beside the model
    sha256: str | None = None  # and that file's digest
    #: How the last feature map is pooled (`realtime.backbones.regions`); written only when
    #: not GLOBAL, so identities (and caches) from before the option read and key as before.
    pooling: Pooling = Pooling.GLOBAL
    #: `Pooling.MAP`: (rows, columns, channels) of the map part that ends each feature vector
    map_shape: tuple[int, int, int] | None = None
    #: the side of the grayscale thumbnail that ends each feature vector (after the map, if
    #: any; `realtime.backbones.motion`); written only when set
    motion: int | None = None

    def as_dict(self) -> dict:
        """For metadata.json and cache keys: the fields that are set, in this order."""
        data = {k: v for k, v in asdict(self).items() if v is not None}
        if self.pooling is Pooling.GLOBAL:
            del data["pooling"]
        else:
            data["pooling"] = self.pooling.value
        if self.map_shape is not None:
            data["map_shape"] = list(self.map_shape)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BackboneIdentity:
        """From metadata.json (checked by `realtime.head.metadata` first)."""
        image_size = data.get("image_size")
        return cls(
            name=str(data["name"]),
            feature_size=int(data["feature_size"]),
            image_size=None if image_size is None else int(image_size),
            file=data.get("file"),
            sha256=data.get("sha256"),
            pooling=Pooling(data.get("pooling", Pooling.GLOBAL.value)),
            map_shape=tuple(int(v) for v in data["map_shape"]) if data.get("map_shape") else None,
            motion=int(data["motion"]) if data.get("motion") else None,
        )


class Backbone(ABC):
    """Turns preprocessed frames into feature vectors."""

    #: Stable identity stored in model metadata, e.g. "inception_v3/imagenet".
    name: str
    #: How it runs (a `Backend`; `realtime.backbones.conversion`): not part of the identity,
    #: backends are interchangeable. "native" for a backbone without backends (test doubles).
    backend: str = "native"
    feature_size: int
    image_size: int
    #: How its feature map becomes the feature vector (part of the identity).
    pooling: Pooling = Pooling.GLOBAL
    #: `Pooling.MAP`: (rows, columns, channels) of the map part, after the whole image's part.
    map_shape: tuple[int, int, int] | None = None
    #: The side of the frame's thumbnail that ends each feature vector (`WithMotion`), or None.
    motion: int | None = None

    @abstractmethod
    def extract(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB frames -> (N, feature_size) float32 features."""

    def parallel_extractors(self) -> list[Callable[[np.ndarray], np.ndarray]]:
        """Ways to run `extract` that may run at the same time, each on its own thread (its own
        interpreter or inference request): frames of several cameras computed at once. [] when
        the backend has none (then one thread calls `extract`)."""
        return []

    def identity(self) -> BackboneIdentity:
        """What a model's metadata records about the backbone it was trained with."""
        return BackboneIdentity(
            self.name,
            int(self.feature_size),
            int(self.image_size),
            pooling=self.pooling,
            map_shape=self.map_shape,
            motion=self.motion,
        )

    def cache_identity(self) -> dict:
        """What cached features depend on: `identity()`, plus anything that changes them more
        than backends may differ (an int8 model's calibration)."""
        return self.identity().as_dict()


class Backend(TextEnum):
    """How InceptionV3 runs (`--backend`; `auto` picks one of these)."""

    KERAS = "keras"
    XLA = "xla"
    LITERT = "litert"
    OPENVINO = "openvino"
    OPENVINO_BF16 = "openvino-bf16"
    OPENVINO_INT8 = "openvino-int8"


BACKENDS = {
    Backend.KERAS: "TensorFlow tf.function (the Keras reference)",
    Backend.XLA: "TensorFlow tf.function compiled with XLA",
    Backend.LITERT: "LiteRT (TFLite) fp32, XNNPACK",
    Backend.OPENVINO: "OpenVINO fp32",
    Backend.OPENVINO_BF16: "OpenVINO bfloat16 (CPUs with native bf16)",
    Backend.OPENVINO_INT8: "OpenVINO int8, quantized by NNCF on --calibration frames (opt-in)",
}
AUTO = "auto"
CHOICES = (AUTO, *(backend.value for backend in Backend))
#: What `auto` tries, fastest first (measured with `python -m bench`, docs/performance.md).
#: int8 is faster still but never automatic: it changes the features by a few percent.
AUTO_PREFERENCE = (
    Backend.OPENVINO_BF16,
    Backend.OPENVINO,
    Backend.LITERT,
    Backend.XLA,
    Backend.KERAS,
)
#: Largest relative error of a feature vector against the Keras reference a backend may have.
TOLERANCE = 0.01
#: Largest relative feature error of an int8 model before a warning (it is always reported).
INT8_TOLERANCE = 0.05
#: Bumped when the exported graphs change, so stale cache entries are not reused.
EXPORT_VERSION = 1
#: Beside an int8 model: fp32 and int8 features of the frames held out from its calibration.
HELD_OUT_FILE = "held-out.npz"
INT8 = Backend.OPENVINO_INT8


def check_backend_name(name: str | None) -> Backend | str:
    """A `Backend`, or `AUTO`; InputError for anything else."""
    name = (name or AUTO).lower()
    if name not in CHOICES:
        raise InputError(f"unknown backend {name!r}: choose one of {', '.join(CHOICES)}")
    return AUTO if name == AUTO else Backend(name)


def default_cache_dir() -> Path:
    if os.environ.get("REALTIME_ACTION_CACHE"):
        return Path(os.environ["REALTIME_ACTION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "realtime-action"
