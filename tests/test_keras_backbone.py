"""The InceptionV3 path: weights from a local file (offline machines) and a clear error when
the ImageNet download is impossible. Needs no ../shared.

ImageNet weights cannot be downloaded here, so the weights file holds InceptionV3's own random
initialisation: the test proves the loading and plumbing, not accuracy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from loopback.servers import closed_port
from realtime.backbones.base import BackboneIdentity
from realtime.backbones.keras import KerasInceptionV3
from realtime.head.keras import build_head
from realtime.head.modeldir import ModelInfo, save_model_dir
from tests.conftest import HEADLESS_REPLAY, build_model_dir, run_cli


@pytest.fixture(scope="module")
def inception(inception_weights):
    return KerasInceptionV3(weights=inception_weights)


def test_weights_file_is_loaded_and_identified(inception, inception_weights):
    assert inception.feature_size == 2048
    assert inception.name.startswith("inception_v3/file-")  # not claimed to be ImageNet
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    features = inception.extract(frames)
    assert features.shape == (3, 2048) and features.dtype == np.float32
    assert np.isfinite(features).all() and (features >= 0).all()  # ReLU + average pool
    # batching does not change the result
    single = np.concatenate([inception.extract(f[None]) for f in frames])
    np.testing.assert_allclose(single, features, rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # InceptionV3 built, checked and run in a child process: ~12 s
def test_cli_runs_on_inception_with_local_weights(
    inception, inception_weights, make_video, tmp_path
):
    model_dir = build_model_dir(tmp_path / "model", inception, labels=("x", "y"))
    result = run_cli(
        "--source",
        make_video(n=6),
        "--model",
        model_dir,
        "--backbone-weights",
        inception_weights,
        *HEADLESS_REPLAY,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 6 and {r["label"] for r in records} <= {"x", "y"}


def test_seed_head_has_the_published_parameter_count():
    head = build_head(20, 2048, 5)
    assert sum(int(np.prod(w.shape)) for w in head.trainable_weights) == 99_909


def test_imagenet_download_failure_is_one_clear_line(make_video, tmp_path):
    head = build_head(20, 2048, 5)
    info = ModelInfo(
        labels=list("abcde"),
        window=20,
        image_size=224,
        backbone=BackboneIdentity("inception_v3/imagenet", 2048, 224),
    )
    model_dir = save_model_dir(tmp_path / "model", head, info)
    with closed_port() as port:
        unreachable = f"http://127.0.0.1:{port}"  # a proxy that refuses: no download succeeds
        result = run_cli(
            "--source",
            make_video(n=3),
            "--model",
            model_dir,
            "--ui",
            "none",
            env={
                "KERAS_HOME": str(tmp_path / "keras_home"),  # no cached weights
                "HTTPS_PROXY": unreachable,
                "https_proxy": unreachable,
                "HTTP_PROXY": unreachable,
                "http_proxy": unreachable,
            },
            timeout=120,
        )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "--backbone-weights" in lines[0]
