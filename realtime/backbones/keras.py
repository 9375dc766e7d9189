"""InceptionV3 in Keras: the example's feature extractor, the reference every other backend
is checked against. TensorFlow is imported only when it is built.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from rich.console import Console

from realtime.backbones.base import Backbone, Backend, file_digest
from realtime.backbones.regions import MAP_CHANNELS, Pooling, keras_pool, pooled_size
from realtime.core.download import fetch
from realtime.core.errors import InputError, first_line
from realtime.core.optional import import_tensorflow

INCEPTION_V3 = "inception_v3"
INCEPTION_FEATURE_SIZE = 2048
INCEPTION_IMAGE_SIZE = 224
#: Rows and columns of InceptionV3's last feature map (mixed10) at INCEPTION_IMAGE_SIZE.
INCEPTION_MAP = (5, 5)
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


def inception_map_shape(pooling: Pooling) -> tuple[int, int, int] | None:
    """The map part of InceptionV3's `Pooling.MAP` features (None for other poolings)."""
    return (*INCEPTION_MAP, MAP_CHANNELS) if Pooling(pooling) is Pooling.MAP else None


def _set_tensorflow_threads(tf, num_threads: int | None) -> None:
    """Limit TensorFlow's intra-op threads (possible only before TensorFlow's first op)."""
    if not num_threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(num_threads))
    except RuntimeError:  # already initialised in this process: keep what it has
        pass


class KerasInceptionV3(Backbone):
    """InceptionV3, include_top=False, average pooled: the example's 2048-d extractor
    (`pooling=Pooling.REGIONS`: its 5 x 5 x 2048 map pooled over regions inside the graph,
    10240-d; `Pooling.MAP`: the average, then the map at 32 numbers a position, 2848-d;
    `realtime.backbones.regions`).

    `weights` is "imagenet" (Keras downloads and caches the file), a path to a Keras weights
    file (the ImageNet notop file, for offline machines), or None (random weights; only for
    tests and benchmarks, and recorded as such in the name).
    """

    feature_size = INCEPTION_FEATURE_SIZE
    image_size = INCEPTION_IMAGE_SIZE

    #: How the graph runs: "keras" (tf.function) or "xla" (tf.function with jit_compile).
    backend = Backend.KERAS

    def __init__(
        self,
        weights: str | os.PathLike | None = "imagenet",
        batch_size: int = 16,
        jit_compile: bool = False,
        num_threads: int | None = None,
        pooling: Pooling = Pooling.GLOBAL,
    ):
        tf = import_tensorflow()
        self.pooling = Pooling(pooling)
        self.feature_size = pooled_size(self.pooling, *INCEPTION_MAP, INCEPTION_FEATURE_SIZE)
        self.map_shape = inception_map_shape(self.pooling)
        _set_tensorflow_threads(tf, num_threads)
        if weights is not None and str(weights) == "imagenet":
            weights = imagenet_weights_file()
        self.batch_size = batch_size
        self.weights_id, self.weights_key = inception_weights_identity(weights)
        self.name = f"{INCEPTION_V3}/{self.weights_id}"
        self.backend = Backend.XLA if jit_compile else Backend.KERAS
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
        pooled_here = self.pooling is not Pooling.GLOBAL
        try:
            model = keras.applications.InceptionV3(
                include_top=False,
                weights=source,
                pooling=None if pooled_here else "avg",
                input_shape=(self.image_size, self.image_size, 3),
            )
        except Exception as exc:  # corrupt or foreign weights files: one clear line
            raise InputError(
                f"cannot load InceptionV3 weights from {source}: {first_line(exc, 200)}"
            ) from None
        if not pooled_here:
            return model
        pooled = keras_pool(model.output, self.pooling)
        return keras.Model(model.input, pooled, name=f"inception_v3_{self.pooling}")

    def extract(self, frames: np.ndarray) -> np.ndarray:
        frames = np.asarray(frames, dtype=np.uint8)
        if len(frames) == 0:
            return np.zeros((0, self.feature_size), np.float32)
        chunks = [
            self._features(frames[i : i + self.batch_size]).numpy()
            for i in range(0, len(frames), self.batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32, copy=False)
