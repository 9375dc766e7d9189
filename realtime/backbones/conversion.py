"""How InceptionV3 runs: backends converted from the Keras model, cached, checked, interchangeable.

The Keras model (`realtime.backbones.keras.KerasInceptionV3`) is the source of truth. Other
backends are produced from it on first use and cached on disk, keyed by the exact weights:

| backend         | what runs                                                    |
|-----------------|--------------------------------------------------------------|
| `keras`         | the Keras model in a `tf.function` (the reference)           |
| `xla`           | the same `tf.function`, compiled with XLA (`jit_compile`)     |
| `litert`        | LiteRT (TFLite) fp32 with XNNPACK, converted by TFLiteConverter |
| `openvino`      | OpenVINO fp32, converted by `openvino.convert_model`          |
| `openvino-bf16` | the same OpenVINO model run in bfloat16 (CPUs with native bf16) |
| `openvino-int8` | that model quantized to int8 by NNCF on your `--calibration` frames |
| `auto`          | the fastest of these that is available here and passes the check |

Every converted backend is checked once against the Keras reference on a fixed set of probe
images (relative error ||a - b|| / ||b|| of each feature vector at most `TOLERANCE`); the
result is cached beside the converted model. `auto` skips a backend that fails; asking for it
explicitly still runs it, with a warning. `auto` never picks `openvino-int8`: it is made only
on request, from calibration frames, and reports its agreement with fp32 whenever it is loaded
(`realtime.backbones.int8`). The input scaling (x / 127.5 - 1) is part of every
exported graph, so every backend takes the same uint8 frames.

Cache layout: `<cache>/backbones/<weights key>/<format>/` (int8: one folder per calibration
set) holding the converted model,
`export.json` (how and when it was made) and `check-<backend>.json`. The cache defaults to
`$REALTIME_ACTION_CACHE`, else `$XDG_CACHE_HOME/realtime-action`, else
`~/.cache/realtime-action`. Random weights (tests) are converted into a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from realtime.backbones.base import (
    AUTO,
    AUTO_PREFERENCE,
    EXPORT_VERSION,
    HELD_OUT_FILE,
    INT8,
    INT8_TOLERANCE,
    TOLERANCE,
    Backbone,
    BackboneIdentity,
    Backend,
    check_backend_name,
    default_cache_dir,
)
from realtime.backbones.int8 import (
    CalibrationSet,
    held_out_thumbnails,
    nncf_availability,
    quantize_openvino,
)
from realtime.backbones.keras import (
    INCEPTION_FEATURE_SIZE,
    INCEPTION_IMAGE_SIZE,
    INCEPTION_MAP,
    INCEPTION_V3,
    KerasInceptionV3,
    inception_map_shape,
    inception_weights_identity,
)
from realtime.backbones.litert import LiteRTBackbone
from realtime.backbones.motion import MOTION_SIZE, thumbnails
from realtime.backbones.openvino import (
    OpenVINOBackbone,
    _openvino_telemetry_off,
    cpu_capabilities,
    import_openvino,
)
from realtime.backbones.regions import Pooling, pooled_size
from realtime.core.errors import InputError, first_line
from realtime.core.optional import import_tensorflow, native_stderr_silenced

_FORMAT = {
    Backend.LITERT: "litert",
    Backend.OPENVINO: "openvino",
    Backend.OPENVINO_BF16: "openvino",
    Backend.OPENVINO_INT8: "openvino-int8",
}


def availability(backend: Backend) -> str | None:
    """None if `backend` can run here, else the reason it cannot."""
    if backend in (Backend.KERAS, Backend.XLA):
        return None
    if backend == Backend.LITERT:
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError:
            return "LiteRT is not installed (pip install ai-edge-litert)"
        return None
    try:
        ov = import_openvino()
    except ImportError:
        return "OpenVINO is not installed (pip install openvino)"
    if backend == INT8:
        return nncf_availability()
    if backend == Backend.OPENVINO_BF16 and "BF16" not in cpu_capabilities(ov):
        return "this CPU has no native bfloat16 (AVX512_BF16 or AMX)"
    return None


@dataclass(frozen=True)
class CheckResult:
    """A converted backend against the Keras reference (cached as `check-<backend>.json`)."""

    backend: Backend
    max_rel_error: float  # largest ||a - b|| / ||b|| over the probe frames
    mean_rel_error: float
    tolerance: float
    passed: bool  # max_rel_error <= tolerance
    probes: int  # how many frames were compared
    probes_are: str | None = None  # int8: "frames held out from calibration"

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> CheckResult:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "backend": Backend(known["backend"])})


def probe_frames(n: int = 6, size: int = INCEPTION_IMAGE_SIZE, seed: int = 0) -> np.ndarray:
    """Deterministic test images for the conversion check: smooth colour fields, edges, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    frames = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        fx, fy, phase = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 6.3, 3)
        image = (
            np.stack([np.sin(2 * np.pi * (fx * xx + fy * yy) + p) for p in phase], axis=-1) * 90
            + 128
        )
        x0, y0 = rng.integers(0, size // 2, 2)
        image[y0 : y0 + size // 3, x0 : x0 + size // 3] = rng.uniform(0, 255, 3)
        image += rng.normal(0, 12, image.shape)
        frames[i] = np.clip(image, 0, 255).astype(np.uint8)
    return frames


def relative_errors(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """||a - b|| / ||b|| per feature vector (row)."""
    diff = np.linalg.norm(features - reference, axis=1)
    return diff / np.maximum(np.linalg.norm(reference, axis=1), 1e-12)


class ConversionProgress:
    """One-off conversion steps shown as a rich progress display on the user's stderr.

    Native converters write noise to fd 2, which is silenced while they run; the display
    writes to its own duplicate of the original stderr so it stays visible.
    """

    def __init__(self, title: str, steps: int, enabled: bool = True):
        self.title = title
        self.steps = steps
        self.enabled = enabled
        self._progress = None
        self._task = None
        self._stream = None

    def __enter__(self):
        if not self.enabled:
            return self

        sys.stderr.flush()
        try:
            self._stream = open(os.dup(2), "w", buffering=1)  # noqa: SIM115 - closed in __exit__
        except OSError:
            self._stream = sys.stderr
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self._stream),
        )
        self._progress.start()
        self._task = self._progress.add_task(self.title, total=self.steps)
        return self

    def step(self, description: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"{self.title}: {description}")

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def done(self, message: str) -> None:
        """A closing line under the display (what was made, where it is kept)."""
        self._closing = message

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=self.title)
            self._progress.stop()
            if getattr(self, "_closing", None):
                self._progress.console.print(self._closing, soft_wrap=True, highlight=False)
        if self._stream is not None and self._stream is not sys.stderr:
            self._stream.close()


class InceptionBackends:
    """Makes, caches, checks and opens the backends of one set of InceptionV3 weights."""

    def __init__(
        self,
        weights,
        cache_dir: str | os.PathLike | None = None,
        num_threads: int | None = None,
        show_progress: bool = True,
        warn: Callable[[str], None] | None = None,
        calibration=None,
        note: Callable[[str], None] | None = None,
        pooling: Pooling = Pooling.GLOBAL,
    ):
        """`calibration`: a `realtime.backbones.int8.CalibrationSet` (needed to make an int8 model).
        `warn` / `note`: where warnings and int8's agreement report go (default: stderr).
        `pooling`: `Pooling.REGIONS` or `Pooling.MAP` converts the graph that pools so (its
        own cache folder)."""
        self.weights = weights
        self.pooling = Pooling(pooling)
        self.calibration = calibration
        self.num_threads = num_threads
        self.show_progress = show_progress
        self.warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
        self.note = note or (lambda message: print(message, file=sys.stderr))
        weights_id, key = inception_weights_identity(weights)
        self.identity = BackboneIdentity(
            f"{INCEPTION_V3}/{weights_id}",
            pooled_size(self.pooling, *INCEPTION_MAP, INCEPTION_FEATURE_SIZE),
            INCEPTION_IMAGE_SIZE,
            pooling=self.pooling,
            map_shape=inception_map_shape(self.pooling),
        )
        self._temporary = None
        if key is None:  # random weights: nothing to key a cache on
            self._temporary = tempfile.TemporaryDirectory(prefix="realtime-backbone-")
            self.root = Path(self._temporary.name)
        else:
            base = Path(cache_dir) if cache_dir else default_cache_dir()
            pooled_here = self.pooling is not Pooling.GLOBAL
            self.root = base / "backbones" / (f"{key}-{self.pooling}" if pooled_here else key)
        self._reference: KerasInceptionV3 | None = None

    # -- the Keras reference, built only when something must be converted or checked
    def reference(self) -> KerasInceptionV3:
        if self._reference is None:
            self._reference = KerasInceptionV3(
                self.weights, num_threads=self.num_threads, pooling=self.pooling
            )
        return self._reference

    def folder(self, backend: Backend) -> Path:
        if backend == INT8:
            return self.int8_folder()
        return self.root / f"{_FORMAT[backend]}-v{EXPORT_VERSION}"

    def int8_folder(self) -> Path:
        """The int8 model of `self.calibration`; without one, the newest int8 model made."""
        if self.calibration is not None:
            return self.root / f"{INT8}-{self.calibration.digest}-v{EXPORT_VERSION}"
        made = sorted(
            self.root.glob(f"{INT8}-*-v{EXPORT_VERSION}/export.json"),
            key=lambda p: p.stat().st_mtime,
        )
        if not made:
            raise InputError(
                f"--backend {INT8} needs --calibration VIDEO|DIR the first time: int8 is "
                "calibrated on frames like the ones it will see (a few videos are enough)"
            )
        return made[-1].parent

    def is_exported(self, backend: Backend) -> bool:
        return (self.folder(backend) / "export.json").is_file()

    def check_result(self, backend: Backend) -> CheckResult | None:
        """The cached check of `backend`; None if there is none (or it cannot be read)."""
        path = self.folder(backend) / f"check-{backend}.json"
        try:
            return CheckResult.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- conversion
    def export(self, backend: Backend, progress: ConversionProgress) -> None:
        """Convert the Keras model into `backend`'s format, atomically, into the cache."""
        if backend == INT8:
            self.export_int8(progress)
            return
        fmt = _FORMAT[backend]
        dest = self.folder(backend)
        progress.step("building the Keras model")
        reference = self.reference()
        progress.advance()
        tf = import_tensorflow()
        size = reference.image_size
        graph = tf.function(
            reference.graph_function,
            input_signature=[tf.TensorSpec([1, size, size, 3], tf.uint8)],
        )
        progress.step(f"converting to {fmt}")

        def convert(tmp: Path) -> None:
            if fmt == "openvino":
                ov = import_openvino()
                with _openvino_telemetry_off():
                    model = ov.convert_model(graph)
                ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
            else:
                converter = tf.lite.TFLiteConverter.from_concrete_functions(
                    [graph.get_concrete_function()], graph
                )
                (tmp / "model.tflite").write_bytes(converter.convert())

        self._write_atomically(dest, fmt, convert)
        progress.advance()

    def export_int8(self, progress: ConversionProgress) -> None:
        """Quantize the fp32 OpenVINO model on the calibration frames (made first if needed)."""
        if self.calibration is None:  # pragma: no cover - int8_folder() has refused already
            raise InputError(f"--backend {INT8} needs --calibration")
        if not self.is_exported(Backend.OPENVINO):
            self.export(Backend.OPENVINO, progress)
        progress.step(f"quantizing on {len(self.calibration.frames)} calibration frames")
        source = self.folder(Backend.OPENVINO) / "model.xml"

        def quantize(tmp: Path) -> None:
            ov = import_openvino()
            model = ov.Core().read_model(str(source))
            ov.save_model(
                quantize_openvino(model, self.calibration.frames),
                str(tmp / "model.xml"),
                compress_to_fp16=False,
            )

        self._write_atomically(
            self.folder(INT8), INT8, quantize, calibration=self.calibration.describe()
        )
        progress.advance()

    def _write_atomically(self, dest: Path, fmt: str, make: Callable[[Path], None], **extra):
        """Run `make(tmp)` in a temporary folder, record export.json, rename it to `dest`."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
        started = time.perf_counter()
        try:
            with native_stderr_silenced():
                make(tmp)
            record = {
                "format": fmt,
                "export_version": EXPORT_VERSION,
                "backbone": self.identity.as_dict(),
                **extra,
                "seconds": round(time.perf_counter() - started, 1),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "versions": _versions(),
            }
            (tmp / "export.json").write_text(json.dumps(record, indent=2) + "\n")
            try:
                tmp.rename(dest)
            except OSError:  # another process made it meanwhile: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except Exception as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, InputError):
                raise
            raise InputError(
                f"converting InceptionV3 to {fmt} failed: {first_line(exc, 200)}"
            ) from None

    def check(self, backend: Backend, progress: ConversionProgress) -> CheckResult:
        """Compare `backend` with the Keras reference on the probe images; cache the result.

        int8 is compared on the frames held out from its calibration instead (real frames);
        both feature sets are kept in `held-out.npz` so a head's agreement can be measured.
        """
        progress.step("checking against Keras")
        if backend == INT8:
            frames, tolerance = self.calibration.held_out, INT8_TOLERANCE
        else:
            frames, tolerance = probe_frames(), TOLERANCE
        expected = self.reference().extract(frames)
        features = self.open(backend).extract(frames)
        errors = relative_errors(features, expected)
        result = CheckResult(
            backend=backend,
            max_rel_error=float(errors.max()),
            mean_rel_error=float(errors.mean()),
            tolerance=tolerance,
            passed=bool(errors.max() <= tolerance),
            probes=len(frames),
            probes_are="frames held out from calibration" if backend == INT8 else None,
        )
        if backend == INT8:
            np.savez(
                self.folder(backend) / HELD_OUT_FILE,
                int8=features,
                fp32=expected,
                video=self.calibration.held_out_video,
                # for a head that also reads each frame's thumbnail (int8_head_report)
                **{held_out_thumbnails(MOTION_SIZE): thumbnails(frames, MOTION_SIZE)},
            )
        path = self.folder(backend) / f"check-{backend}.json"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        tmp.replace(path)
        progress.advance()
        return result

    def prepare(self, backend: Backend) -> CheckResult:
        """Make sure `backend` is converted and checked; return its check result."""
        result = self.check_result(backend)
        if self.is_exported(backend) and result is not None:
            return result
        self.reference()  # first, so that a weights problem is one clear error, not a display
        steps = 1
        if not self.is_exported(backend):
            steps += 2 if backend != INT8 else 1 + (0 if self.is_exported(Backend.OPENVINO) else 2)
        title = f"one-off: InceptionV3 -> {backend}"
        started = time.perf_counter()
        with ConversionProgress(title, steps, enabled=self.show_progress) as progress:
            if not self.is_exported(backend):
                self.export(backend, progress)
            result = self.check(backend, progress)
            progress.done(
                f"{self.identity.name} -> {backend} in {time.perf_counter() - started:.0f} s, "
                f"max error vs Keras {result.max_rel_error:.2%}"
                + (" on held-out calibration frames" if backend == INT8 else "")
                + ("" if self._temporary else f"; cached in {self.folder(backend)}")
            )
        return result

    def open(self, backend: Backend) -> Backbone:
        """The backbone for `backend` (converted already, for exported runtimes)."""
        if backend == Backend.KERAS:
            return self.reference()
        if backend == Backend.XLA:
            return KerasInceptionV3(
                self.weights, jit_compile=True, num_threads=self.num_threads, pooling=self.pooling
            )
        folder = self.folder(backend)
        with native_stderr_silenced():
            if backend == Backend.LITERT:
                return LiteRTBackbone(
                    folder / "model.tflite", num_threads=self.num_threads, identity=self.identity
                )
            precision = "bf16" if backend == Backend.OPENVINO_BF16 else "f32"
            quantized = None
            if backend == INT8:
                quantized = json.loads((folder / "export.json").read_text())["calibration"]
            return OpenVINOBackbone(
                folder / "model.xml",
                self.identity,
                precision,
                num_threads=self.num_threads,
                quantized=quantized,
            )

    def load(self, backend: Backend | str = AUTO) -> Backbone:
        """The backbone `--backend` asks for (`auto`: fastest available that passes)."""
        backend = check_backend_name(backend)
        if backend != AUTO:
            reason = availability(backend)
            if reason:
                raise InputError(f"--backend {backend} cannot run here: {reason}")
            if backend in _FORMAT:
                result = self.prepare(backend)
                if not result.passed:
                    self.warn(
                        f"backend {backend} differs from Keras by up to "
                        f"{result.max_rel_error:.2%} (tolerance {result.tolerance:.0%})"
                    )
            backbone = self.open(backend)
            if backend == INT8:
                self.note(int8_report(backbone, result))
            return backbone
        for candidate in AUTO_PREFERENCE:
            if availability(candidate):
                continue
            if candidate in _FORMAT and not self.prepare(candidate).passed:
                continue
            return self.open(candidate)
        return self.open(Backend.KERAS)  # pragma: no cover - keras is always available


def int8_report(backbone: OpenVINOBackbone, check: CheckResult) -> str:
    """One line: what an int8 backbone was calibrated on and how closely it follows fp32."""
    calibration = backbone.quantized
    return (
        f"{INT8} (calibration {calibration['digest']}: {calibration['frames']} frames of "
        f"{len(calibration['videos'])} video(s)): features differ from fp32 Keras by "
        f"{check.mean_rel_error:.1%} on average, {check.max_rel_error:.1%} at most, "
        f"on {check.probes} held-out frames"
    )


def _versions() -> dict:
    versions = {}
    for module in ("tensorflow", "keras", "openvino", "ai_edge_litert"):
        mod = sys.modules.get(module)
        if mod is not None:
            versions[module] = getattr(mod, "__version__", "?")
    return versions


def load_inception(
    weights,
    backend: Backend | str = AUTO,
    num_threads: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    calibration=None,
    pooling: Pooling = Pooling.GLOBAL,
) -> Backbone:
    """InceptionV3 with `weights` ("imagenet", a weights file, None) on `backend`, its feature
    map pooled as `pooling`.

    `calibration`: videos or folders to calibrate `openvino-int8` on (only that backend).
    """
    calibration_set = None
    if calibration:
        if backend != INT8:
            raise InputError(f"--calibration applies to --backend {INT8} only")

        calibration_set = CalibrationSet.from_videos(calibration, INCEPTION_IMAGE_SIZE)
    return InceptionBackends(
        weights,
        cache_dir=cache_dir,
        num_threads=num_threads,
        calibration=calibration_set,
        pooling=pooling,
    ).load(backend)
