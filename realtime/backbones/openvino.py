"""InceptionV3 converted to OpenVINO (fp32, bf16 or int8), run on the CPU."""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np

from realtime.backbones.base import INT8, Backbone, BackboneIdentity, Backend


def cpu_capabilities(ov=None) -> tuple[str, ...]:
    """What OpenVINO says this CPU can do natively ("FP32", "BF16", "INT8", ...)."""
    ov = ov or import_openvino()
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


class OpenVINOBackbone(Backbone):
    """An OpenVINO model (converted from the Keras InceptionV3) on the CPU, one frame per call.

    `precision` is OpenVINO's inference precision hint: "f32" or "bf16" (for an int8 model:
    the precision of the layers left unquantized). `quantized` describes an int8 model's
    calibration; its features are cached apart from fp32 ones (`cache_identity`).

    The model is compiled for batch 1 (the live path); batches of `BATCH` frames or more
    (training's feature extraction) go through a second compilation for that batch size,
    compiled on first use: measured 1.2x the frames per second of frame-by-frame calls.
    Frames of several cameras (`parallel_extractors`) go through a third, compiled on first use
    with OpenVINO's THROUGHPUT hint, one request per worker thread, running at once: on a
    2-core machine 1.1x (fp32) to 1.3x (bf16) the frames per second of one request after the
    other (docs/performance.md).
    """

    BATCH = 8

    def __init__(
        self,
        xml_path: str | os.PathLike,
        identity: BackboneIdentity,
        precision: str = "f32",
        num_threads: int | None = None,
        quantized: dict | None = None,
    ):
        ov = import_openvino()

        self.name = identity.name
        self.feature_size = identity.feature_size
        self.image_size = identity.image_size
        self.pooling = identity.pooling  # pooled inside the converted graph
        self.map_shape = identity.map_shape
        self._identity = identity
        if quantized:
            self.backend = INT8
        else:
            self.backend = Backend.OPENVINO_BF16 if precision == "bf16" else Backend.OPENVINO
        self.quantized = quantized
        self._core = ov.Core()
        self._xml_path = str(xml_path)
        self.folder = Path(xml_path).parent
        self._config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        if num_threads:
            self._config["INFERENCE_NUM_THREADS"] = int(num_threads)
        self._request = self._compile(1).create_infer_request()
        self._batch_request = None
        self._requests: list = []  # `parallel_extractors`' requests, made on first use

    def _compile(self, batch: int, hint: str = "LATENCY"):
        model = self._core.read_model(self._xml_path)
        model.reshape([batch, self.image_size, self.image_size, 3])
        config = {**self._config, "PERFORMANCE_HINT": hint}
        return self._core.compile_model(model, "CPU", config)

    def parallel_extractors(self) -> list:
        """One inference request each of a compilation with OpenVINO's THROUGHPUT hint (as
        many as it finds best on this CPU: its streams), made on first use."""
        if not self._requests:
            compiled = self._compile(1, "THROUGHPUT")
            count = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
            self._requests = [compiled.create_infer_request() for _ in range(count)]
        return [partial(self._extract_with, request) for request in self._requests]

    def _extract_with(self, request, frames: np.ndarray) -> np.ndarray:
        """Frame by frame on `request` (the batch-1 one, or one of `parallel_extractors`')."""
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        out = np.empty((len(frames), self.feature_size), np.float32)
        for i in range(len(frames)):
            request.infer({0: frames[i : i + 1]}, share_inputs=True)  # lets go of the GIL
            out[i] = request.get_output_tensor(0).data[0]
        return out

    def identity(self) -> BackboneIdentity:
        return self._identity

    def cache_identity(self) -> dict:
        if not self.quantized:
            return self._identity.as_dict()
        return {**self._identity.as_dict(), "int8_calibration": self.quantized["digest"]}

    def extract(self, frames: np.ndarray) -> np.ndarray:
        frames = np.ascontiguousarray(frames, dtype=np.uint8)
        out = np.empty((len(frames), self.feature_size), np.float32)
        start = 0
        if len(frames) >= self.BATCH:
            if self._batch_request is None:
                self._batch_request = self._compile(self.BATCH).create_infer_request()
            request = self._batch_request
            for start in range(0, len(frames) - self.BATCH + 1, self.BATCH):
                request.infer({0: frames[start : start + self.BATCH]}, share_inputs=True)
                out[start : start + self.BATCH] = request.get_output_tensor(0).data
            start += self.BATCH
        if start < len(frames):  # what is left, one frame at a time
            out[start:] = self._extract_with(self._request, frames[start:])
        return out


def import_openvino():
    """`import openvino` without its usage report (sent on import and on every conversion)."""
    with _openvino_telemetry_off():
        import openvino

    return openvino


@contextmanager
def _openvino_telemetry_off():
    """No usage report from OpenVINO's converter (it would try to reach the internet).

    The converter declines telemetry when it sees `CI=true`, its documented switch; it is set
    only while OpenVINO is imported and while a conversion runs.
    """
    saved = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = saved
