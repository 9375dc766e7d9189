"""Shared fixtures: the ../shared assets (skipped when absent), synthetic videos, model dirs,
and running the CLI as a user would (a subprocess)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MOBILENET_V1_EMBEDDER = "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
MOBILENET_V2_CLASSIFIER = "mobilenet_v2_1.0_224_quant.tflite"


def pytest_addoption(parser):
    parser.addoption(
        "--shared",
        default=os.environ.get("REALTIME_SHARED", str(ROOT.parent / "shared")),
        help="folder with the shared clips/ and models/ (default ../shared or $REALTIME_SHARED)",
    )


#: CI sets this (`.ci/run`): an asset or tool the tests need and do not find is a failure
#: there, not a skip. What a machine's CPU cannot do (bf16, int8) stays a skip everywhere.
REQUIRE_ALL = os.environ.get("REALTIME_TESTS_REQUIRE_ALL") == "1"


def missing(reason: str):
    """Skip a test whose asset or tool is absent; fail it when REALTIME_TESTS_REQUIRE_ALL=1."""
    if REQUIRE_ALL:
        pytest.fail(f"required here (REALTIME_TESTS_REQUIRE_ALL=1): {reason}", pytrace=False)
    pytest.skip(reason)


def need_backend(backend: str) -> None:
    """Skip where this CPU cannot run `backend` (no bf16); a package that is not installed is
    `missing` (a failure in CI, where every dependency is installed)."""
    from realtime.backbones.conversion import availability

    reason = availability(backend)
    if reason and "not installed" in reason:
        missing(reason)
    elif reason:
        pytest.skip(reason)


def need_tools(*tools: str) -> None:
    absent = [t for t in tools if not shutil.which(t)]
    if absent:
        missing(f"needs {', '.join(absent)} on PATH")


def pytest_collection_finish(session):
    """Start the end-to-end trainings (`tests/test_training_end_to_end.py`) as the session
    starts, when any of their tests is to run: each is minutes of CPU, which the rest of the
    suite, waiting on servers, sockets and subprocesses, mostly leaves idle."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__.endswith("test_training_end_to_end"):
            module.start_early(session.config)
            return


@pytest.fixture(scope="session", autouse=True)
def private_backbone_cache(tmp_path_factory):
    """Converted backbones go to a folder of this test session, never the user's cache."""
    previous = os.environ.get("REALTIME_ACTION_CACHE")
    cache = tmp_path_factory.mktemp("backbone-cache")
    os.environ["REALTIME_ACTION_CACHE"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("REALTIME_ACTION_CACHE", None)
    else:
        os.environ["REALTIME_ACTION_CACHE"] = previous


@pytest.fixture(scope="session")
def shared_dir(request) -> Path:
    path = Path(request.config.getoption("--shared"))
    if not (path / "models").is_dir() or not (path / "clips").is_dir():
        missing(f"shared assets not found at {path} (pass --shared DIR)")
    return path


@pytest.fixture(scope="session")
def embedder_path(shared_dir) -> Path:
    path = shared_dir / "models" / MOBILENET_V1_EMBEDDER
    if not path.is_file():
        missing(f"{path} missing")
    return path


@pytest.fixture(scope="session")
def shared_clips(shared_dir) -> list[Path]:
    clips = sorted(p for p in (shared_dir / "clips").iterdir() if p.is_file())
    if not clips:
        missing("no clips in shared/clips")
    return clips


def write_video(path: Path, frames, fps: float = 25.0, fourcc: str = "MJPG") -> Path:
    """Write BGR uint8 frames with OpenCV (what every test video is made with)."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def decode_all(path) -> list[np.ndarray]:
    """Every frame of a video file, as OpenCV decodes it (BGR uint8)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def moving_square_frames(n: int, width: int = 160, height: int = 120, seed: int = 0):
    """A bright square moving over a noisy background: real, varied content."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        frame = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        x = (i * 5) % (width - 30)
        cv2.rectangle(frame, (x, 40), (x + 30, 70), (40, 200, 240), -1)
        yield frame


@pytest.fixture
def make_video(tmp_path):
    def make(n: int = 30, fps: float = 25.0, name: str = "clip.avi", **kw) -> Path:
        return write_video(tmp_path / name, moving_square_frames(n, **kw), fps=fps)

    return make


def build_model_dir(path: Path, backbone, labels=("alpha", "beta", "gamma"), fps=25.0, seed=0):
    """A model directory with an untrained head (random weights) for `backbone`.

    For plumbing tests only: the predictions are real computations of an untrained head.
    """
    import shutil

    import keras

    from realtime.head.keras import build_head
    from realtime.head.modeldir import ModelInfo, save_model_dir

    keras.utils.set_random_seed(seed)
    head = build_head(20, backbone.feature_size, len(labels))
    info = ModelInfo(
        labels=list(labels),
        window=20,
        image_size=backbone.image_size,
        backbone=backbone.identity(),
        sampling={"fps": fps},
    )
    save_model_dir(path, head, info)
    if getattr(backbone, "path", None) is not None:
        shutil.copy(backbone.path, path / backbone.path.name)
    return path


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """A weights file for InceptionV3, loaded like the ImageNet file (--backbone-weights).

    Its values are InceptionV3's own seeded random initialisation: the ImageNet weights
    cannot be downloaded on machines without internet. Proves loading and plumbing, not
    accuracy.
    """
    import keras

    from realtime.core.optional import import_tensorflow

    import_tensorflow()
    keras.utils.set_random_seed(7)
    model = keras.applications.InceptionV3(
        include_top=False, weights=None, pooling="avg", input_shape=(224, 224, 3)
    )
    path = tmp_path_factory.mktemp("weights") / "inception_random.weights.h5"
    model.save_weights(str(path))
    return path


@pytest.fixture(scope="session")
def litert_backbone(embedder_path):
    from realtime.backbones.litert import LiteRTBackbone

    return LiteRTBackbone(embedder_path)


@pytest.fixture(scope="session")
def tflite_model_dir(tmp_path_factory, litert_backbone) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("model") / "tiny", litert_backbone)


#: deterministic replay, no UI, predictions as JSON lines on stdout
HEADLESS_REPLAY = ("--ui", "none", "--jsonl", "-", "--every-frame")


def cli_env(env=None) -> dict:
    """The environment of a `python -m ...` run from the checkout, as a user's shell would
    give it (no display), with `env` on top."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("DISPLAY", None)
    full_env.update(env or {})
    return full_env


def _run_python(argv: list[str], timeout: float, env=None, stdin=None):
    """`python ARGV` from the checkout, as a user's shell would run it (no display)."""
    return subprocess.run(
        [sys.executable, *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
        cwd=ROOT,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
    )


def run_cli(*args, module: str = "realtime", timeout: float = 120, env=None, stdin=None):
    """Run `python -m <module> args...` as a user would; returns the CompletedProcess."""
    return _run_python(["-m", module, *args], timeout, env, stdin)


#: `python -m realtime ARGS` that writes, as it exits, every module it imported to the file
#: named by $REALTIME_TEST_MODULES (-X importtime cannot see imports made while native stderr
#: is silenced, which is how TensorFlow is imported).
_REPORTING_RUN = """
import os, sys, runpy
exit_now = os._exit
def exit_reporting(code):
    with open(os.environ["REALTIME_TEST_MODULES"], "w") as report:
        report.write("\\n".join(sorted(sys.modules)))
    exit_now(code)
os._exit = exit_reporting
sys.argv = ["realtime", *sys.argv[1:]]
runpy.run_module("realtime", run_name="__main__", alter_sys=True)
"""


def run_cli_modules(*args, tmp_path: Path, timeout: float = 120):
    """`run_cli` of `python -m realtime`, and the set of modules the run imported."""
    report = tmp_path / f"modules-{time.monotonic_ns()}.txt"
    done = _run_python(
        ["-c", _REPORTING_RUN, *args], timeout, env={"REALTIME_TEST_MODULES": str(report)}
    )
    modules = set(report.read_text().split()) if report.is_file() else set()
    return done, modules


def run_inprocess(*argv) -> tuple[int, str]:
    """`python -m realtime ARGV` without its signal handlers: (exit code, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from rich.console import Console

    from realtime.cli import build_parser, run
    from realtime.core.cliargs import run_reporting_errors

    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            args = build_parser().parse_args([str(a) for a in argv])
        except SystemExit as exc:
            return int(exc.code), err.getvalue()
        code = run_reporting_errors(lambda: run(args, Console(file=io.StringIO())))
    return code, err.getvalue()


class FakeClock:
    """A clock the test moves by hand (`clock.t = ...` or `clock.advance(dt)`)."""

    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> float:
        self.t += dt
        return self.t
