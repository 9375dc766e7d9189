"""Any `.tflite` image model as a backbone, run by LiteRT."""

from __future__ import annotations

import os
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from realtime.backbones.base import Backbone, BackboneIdentity, Backend, file_digest
from realtime.backbones.regions import MAP_CHANNELS, Pooling, expose_feature_map, pool, pooled_size
from realtime.core.errors import InputError
from realtime.core.optional import native_stderr_silenced


class LiteRTBackbone(Backbone):
    """A `.tflite` model used as the feature extractor.

    Input scaling follows the TFLite conventions for image models: a uint8 input takes the raw
    RGB pixels, an int8 input takes pixels - 128, a float input takes pixels / 127.5 - 1. The
    output (any shape) is dequantised with its scale and zero point and flattened.

    `pooling=Pooling.REGIONS` or `Pooling.MAP`: the model is rewritten in memory so that its
    output is its last feature map, pooled here over the whole image and its quadrants, or
    kept with its channels reduced (`realtime.backbones.regions`); the file on disk is never
    changed.
    """

    backend = Backend.LITERT

    def __init__(
        self,
        path: str | os.PathLike,
        num_threads: int | None = None,
        identity: BackboneIdentity | None = None,
        pooling: Pooling = Pooling.GLOBAL,
    ):
        """`identity`: the identity of the model this file was exported from, if any (a
        converted InceptionV3 keeps the Keras model's name so heads run on either)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"backbone file not found: {path}")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError:  # pragma: no cover - depends on the install
            raise InputError("LiteRT is not installed: pip install ai-edge-litert") from None
        threads = num_threads or os.cpu_count() or 1
        self._threads = threads
        self._pool_as = Pooling(pooling)
        self._pools_here = self._pool_as is not Pooling.GLOBAL  # output: the feature map
        if self._pools_here:
            content = expose_feature_map(content, str(path))
        # a converted InceptionV3 pools in its own graph: its identity says how
        self.pooling = identity.pooling if identity else Pooling(pooling)
        self._content = content
        try:
            self._interpreter = self._new_interpreter(content, threads)
        except Exception as exc:
            raise InputError(f"{path} is not a usable .tflite model: {str(exc)[:160]}") from None
        self._workers: list = []  # `parallel_extractors`' one-thread interpreters, made on use
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
        out_shape = [int(v) for v in self._output["shape"]]
        self.feature_size = (
            pooled_size(pooling, *out_shape[1:])
            if self._pools_here
            else int(np.prod(out_shape[1:]))
        )
        if self._pool_as is Pooling.MAP:
            self.map_shape = (out_shape[1], out_shape[2], MAP_CHANNELS)
        elif identity:  # a converted InceptionV3 that pools in its own graph
            self.map_shape = identity.map_shape
        self._identity = identity
        if identity:
            self.sha256 = None
            self.name = identity.name
        else:
            self.sha256 = file_digest(path)
            self.name = f"tflite/{self.sha256[:12]}"
        self._in_dtype = np.dtype(self._input["dtype"])
        scale, zero = self._output["quantization"]
        self._out_scale = float(scale) if scale else None
        self._out_zero = float(zero)

    @staticmethod
    def _new_interpreter(content: bytes, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        with native_stderr_silenced():
            interpreter = Interpreter(model_content=content, num_threads=threads)
            interpreter.allocate_tensors()
        return interpreter

    def identity(self) -> BackboneIdentity:
        if self._identity:
            return self._identity
        own = super().identity()
        return replace(own, file=self.path.name, sha256=self.sha256)

    def _scaled(self, frame: np.ndarray) -> np.ndarray:
        if self._in_dtype == np.uint8:
            return frame
        if self._in_dtype == np.int8:
            return (frame.astype(np.int16) - 128).astype(np.int8)
        return frame.astype(np.float32) / 127.5 - 1.0

    def extract(self, frames: np.ndarray) -> np.ndarray:
        return self._extract_with(self._interpreter, frames)

    def _extract_with(self, interpreter, frames: np.ndarray) -> np.ndarray:
        """`extract` on `interpreter` (this backbone's own, or one of `parallel_extractors`')."""
        frames = np.asarray(frames, dtype=np.uint8)
        out = np.empty((len(frames), self.feature_size), np.float32)
        in_index, out_index = self._input["index"], self._output["index"]
        for i, frame in enumerate(frames):
            interpreter.set_tensor(in_index, self._scaled(frame)[None])
            interpreter.invoke()  # LiteRT lets go of the GIL while it computes
            raw = interpreter.get_tensor(out_index)
            if self._out_scale is not None:
                raw = (raw.astype(np.float32) - self._out_zero) * self._out_scale
            out[i] = pool(raw, self._pool_as)[0] if self._pools_here else raw.reshape(-1)
        return out

    def parallel_extractors(self) -> list:
        """One interpreter of one thread per CPU thread (at most 4), each for its own worker:
        frames of several cameras run side by side instead of each frame being split over the
        threads, which leaves a thread waiting for a core whenever decoding holds one."""
        count = min(self._threads, 4)
        if count < 2:
            return []
        if not self._workers:
            self._workers = [self._new_interpreter(self._content, 1) for _ in range(count)]
        return [partial(self._extract_with, worker) for worker in self._workers]
