"""Backbones: one image in, one feature vector out.

Every backbone takes what `realtime.frames.preprocessing` produces (RGB uint8, N x S x S x 3) and
applies its own input scaling, so that preprocessing exists once for training and live use.

- `KerasInceptionV3`: the Keras example's feature extractor (InceptionV3, ImageNet weights,
  include_top=False, global average pooling, 2048-d). Weights come through Keras's normal
  download and cache, or from a local file (`--backbone-weights`) on offline machines.
- `LiteRTBackbone`: any `.tflite` image model; its output is dequantised and flattened into
  the feature vector, its input size and type are read from the model.
- `Pooling` (`realtime.backbones.regions`): either backbone's last feature map averaged over
  the whole image (the usual output), over the whole image and its four quadrants, or the
  whole image's average then the map itself at 32 numbers a position.
- `WithMotion` (`realtime.backbones.motion`): any of them with a small grayscale thumbnail of
  each frame after its features, for a head that reads how far the picture moved.

How InceptionV3 is *executed* (TensorFlow, XLA, LiteRT, OpenVINO fp32/bf16) is a backend, chosen
with `load_backbone(..., backend=...)`; see `realtime.backbones.conversion`. Every backend of
one set of weights has the same `name` and `describe()`, so a head trained on one runs on any other.

`describe()` returns the identity recorded in a model's metadata, so that a head is never run
on features from a backbone it was not trained with.
"""

from __future__ import annotations

import os
from pathlib import Path

from realtime.backbones.base import AUTO, Backbone, BackboneIdentity, Backend, check_backend_name
from realtime.backbones.conversion import load_inception
from realtime.backbones.keras import INCEPTION_V3
from realtime.backbones.litert import LiteRTBackbone
from realtime.backbones.motion import WithMotion
from realtime.backbones.regions import Pooling
from realtime.core.errors import InputError


def backbone_spec_from_metadata(identity: BackboneIdentity, model_dir: Path) -> str:
    """The --backbone value a model directory implies when the user gives none."""
    if identity.name.startswith("tflite/"):
        return str(model_dir / (identity.file or "backbone.tflite"))
    return INCEPTION_V3


def load_backbone(
    spec: str | None,
    weights: str | None = None,
    num_threads: int | None = None,
    backend: Backend | str = AUTO,
    cache_dir: str | os.PathLike | None = None,
    calibration=None,
    pooling: Pooling | str = Pooling.GLOBAL,
    motion: int | None = None,
) -> Backbone:
    """Build the backbone that `--backbone SPEC [--backbone-weights FILE] [--backend B]` names.

    `calibration` (`--calibration`): videos or folders that an `openvino-int8` backbone is
    quantized on (`realtime.backbones.int8`).

    `pooling` (`--pooling`, `realtime.backbones.regions`): how the backbone's last feature map
    becomes the feature vector; a model directory records it with its backbone.

    `motion`: the side of a grayscale thumbnail of each frame appended to its features
    (`WithMotion`, for a head that reads how far the picture moved); None for none.

    `backend` (see `realtime.backbones.base.BACKENDS`) chooses how InceptionV3 runs; exported
    runtimes are converted from the Keras model once and cached in `cache_dir` (default
    `~/.cache/realtime-action`). A `.tflite` backbone always runs on LiteRT.
    """
    backbone = _load(spec, weights, num_threads, backend, cache_dir, calibration, pooling)
    return WithMotion(backbone, motion) if motion else backbone


def _load(spec, weights, num_threads, backend, cache_dir, calibration, pooling) -> Backbone:
    spec = spec or INCEPTION_V3
    backend = check_backend_name(backend)
    if spec.lower().endswith(".tflite"):
        if weights:
            raise InputError("--backbone-weights applies to InceptionV3, not to a .tflite backbone")
        if calibration:
            raise InputError("--calibration applies to InceptionV3, not to a .tflite backbone")
        if backend not in (AUTO, Backend.LITERT):
            raise InputError(
                f"--backend {backend} applies to InceptionV3; a .tflite backbone runs on LiteRT"
            )
        return LiteRTBackbone(spec, num_threads=num_threads, pooling=pooling)
    if spec.lower() in (INCEPTION_V3, "inceptionv3"):
        return load_inception(
            weights if weights else "imagenet",
            backend=backend,
            num_threads=num_threads,
            cache_dir=cache_dir,
            calibration=calibration,
            pooling=pooling,
        )
    raise InputError(f"unknown backbone {spec!r}: use 'inception_v3' or a path to a .tflite file")
