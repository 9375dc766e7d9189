"""End to end on a synthetic action data set with the shared LiteRT backbone.

The classes (grow / shrink / warm / cool) differ only in the order of change over time, so
held-out accuracy well above chance shows the GRU head learns temporal order. The trained
model is then run through `python -m realtime --every-frame` to show train/serve parity.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, run_cli

pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory) -> Path:
    from training.synthetic import SyntheticSpec, generate

    root = tmp_path_factory.mktemp("synthetic") / "data"
    generate(
        root,
        SyntheticSpec(train_per_class=12, test_per_class=4, min_frames=30, max_frames=40, seed=1),
    )
    # a corrupt video and a missing one, listed in train.csv: reported and skipped
    (root / "train" / "v_broken.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 10)
    with open(root / "train.csv", "a", newline="") as handle:
        csv.writer(handle).writerows([["v_broken.avi", "grow"], ["v_missing.avi", "shrink"]])
    return root


@pytest.fixture(scope="module")
def trained(synthetic_data, embedder_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "synthetic_model"
    result = run_cli(
        "all",
        "--data",
        synthetic_data,
        "--out",
        out,
        "--backbone",
        embedder_path,
        module="training",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return out, result


def test_default_recipe_learns_temporal_order(trained, synthetic_data, embedder_path):
    from realtime.backbones import LiteRTBackbone
    from realtime.model import ActionClassifier
    from training.dataset import load_dataset
    from training.video import sampled_frames

    model_dir, _ = trained
    classifier = ActionClassifier(model_dir)
    backbone = LiteRTBackbone(embedder_path)
    dataset = load_dataset(synthetic_data)
    correct = 0
    tests = dataset.split("test")
    for video in tests:  # classified here independently of `training evaluate`
        frames = sampled_frames(video.path, backbone.image_size, classifier.info.sampling_fps, 20)
        features = np.zeros((20, backbone.feature_size), np.float32)
        features[: len(frames)] = backbone.extract(frames)
        mask = np.arange(20) < len(frames)
        probs = classifier.predict(features, mask)
        correct += classifier.labels[int(probs.argmax())] == video.label
    accuracy = correct / len(tests)
    assert accuracy >= 0.8, f"held-out accuracy {accuracy:.2f}"
    report = json.loads((model_dir / "evaluation.json").read_text())
    assert report["accuracy"] == pytest.approx(accuracy, abs=1e-3)
    assert report["test_videos"] == len(tests)


def test_model_dir_metadata(trained, embedder_path):
    from realtime.model import read_model_info

    model_dir, result = trained
    info = read_model_info(model_dir)
    assert info.labels == ["cool", "grow", "shrink", "warm"]
    assert info.window == 20 and info.sampling["fps"] == 25.0
    assert info.backbone["feature_size"] == 1024 and info.backbone["file"] == embedder_path.name
    assert (model_dir / embedder_path.name).read_bytes() == embedder_path.read_bytes()
    assert info.training["recipe"]["name"] == "default"
    assert info.training["features"] == {"backend": "litert"}
    assert info.evaluation["accuracy"] >= 0.8
    assert sorted(info.evaluation["per_class"]) == info.labels
    assert (model_dir / "confusion_matrix.png").stat().st_size > 1000
    # the corrupt and the missing video were skipped, reported at the end, recorded
    skipped = {Path(p).name for p in info.training["skipped_videos"]}
    assert skipped == {"v_broken.avi", "v_missing.avi"}
    assert "v_broken.avi" in result.stdout and "v_missing.avi" in result.stdout
    assert "skipped 2 unreadable video(s)" in result.stdout


def test_feature_cache_hit_and_miss(trained, synthetic_data, embedder_path):
    first = run_cli(
        "features", "--data", synthetic_data, "--backbone", embedder_path, module="training"
    )
    assert first.returncode == 0, first.stderr
    # `all` already extracted everything: every readable video comes from the cache
    assert "48 video(s): 48 from the cache" in first.stdout.replace("\n", " ")
    assert "16 video(s): 16 from the cache" in first.stdout.replace("\n", " ")
    # touching a video invalidates its entry only
    video = synthetic_data / "test" / "v_grow_test_000.avi"
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    second = run_cli(
        "features", "--data", synthetic_data, "--backbone", embedder_path, module="training"
    )
    assert second.returncode == 0, second.stderr
    assert "16 video(s): 15 from the cache" in second.stdout.replace("\n", " ")
    assert "1 extracted" in second.stdout.replace("\n", " ")


def _runtime_predictions(model_dir: Path, videos: list[Path]) -> dict[Path, tuple[str, dict]]:
    """The runtime's prediction at the frame where its window first fills."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DISPLAY", None)
    procs = {}
    for video in videos:
        args = [
            sys.executable,
            "-m",
            "realtime",
            "--every-frame",
            "--ui",
            "none",
            "--jsonl",
            "-",
            "--quiet",
            "--model",
            str(model_dir),
            "--source",
            str(video),
        ]
        procs[video] = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
    results = {}
    for video, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        full = next(line for line in lines if line["window"] == 20)
        assert full["sample"] == 19  # the first 20 sampled frames
        results[video] = (full["label"], full["probs"])
    return results


def test_train_serve_parity(trained, synthetic_data, tmp_path, embedder_path):
    """Offline predictions on held-out videos equal `python -m realtime --every-frame`'s,
    run on the exported model directory (a round trip through `training export`)."""
    trained_dir, _ = trained
    model_dir = tmp_path / "exported"
    exported = run_cli("export", "--model", trained_dir, "--out", model_dir, module="training")
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        [
            "head.weights.h5",
            "metadata.json",
            "evaluation.json",
            "confusion_matrix.png",
            embedder_path.name,
        ]
    )
    report = json.loads((model_dir / "evaluation.json").read_text())
    offline = {p["video"]: p["predicted"] for p in report["predictions"]}
    offline_probs = {p["video"]: p["probs"] for p in report["predictions"]}
    # one held-out video per class, including 30 fps videos sampled at 25 fps
    by_class = {}
    for name in sorted(offline):
        by_class.setdefault(name.split("_")[1], name)
    videos = [synthetic_data / "test" / name for name in by_class.values()]
    live = _runtime_predictions(model_dir, videos)
    for video, (label, probs) in live.items():
        assert label == offline[video.name], video.name
        for name, p in probs.items():  # same frames, same features: same numbers
            assert p == pytest.approx(offline_probs[video.name][name], abs=1e-4)


def test_seed_recipe_trains_from_the_cache(trained, synthetic_data, embedder_path, tmp_path):
    """`train --recipe seed` (the example's recipe) reuses the cached features."""
    from realtime.model import read_model_info

    out = tmp_path / "seed_model"
    result = run_cli(
        "train",
        "--data",
        synthetic_data,
        "--out",
        out,
        "--recipe",
        "seed",
        "--epochs",
        "2",
        "--backbone",
        embedder_path,
        module="training",
    )
    assert result.returncode == 0, result.stderr
    assert "48 video(s): 48 from the cache" in result.stdout.replace("\n", " ")
    info = read_model_info(out)
    recipe = info.training["recipe"]
    assert recipe["name"] == "seed" and recipe["epochs"] == 2
    assert recipe["windows_per_video"] == 1 and not recipe["stratified_validation"]
    assert info.training["history"]["windows"] == 48  # one window per readable video
    assert info.head == {"gru_units": [16, 8], "dropout": 0.4, "dense_units": 8}


def test_real_clips_decode_and_sample_like_the_runtime(shared_clips, litert_backbone):
    """Real codecs and frame rates (XviD 25 fps, 29.97 fps, H.264 28 fps, GIF) go through
    `training.features` and are sampled at 25 fps on their own clock."""
    from realtime.capture import SamplingClock
    from training.features import extract_features, video_features

    result = extract_features(shared_clips, litert_backbone, 25.0, 30, None)
    assert not result.skipped
    for clip in shared_clips:
        features = result.features[clip]
        assert features.shape == (30, 1024) and np.isfinite(features).all()
    by_name = {c.name: c for c in shared_clips}
    biking, facts = video_features(litert_backbone, by_name["v_Biking_g05_c02.avi"], 25.0, None)
    clock = SamplingClock(25.0)
    expected = sum(clock.admit(i / 29.97) for i in range(201))
    assert facts.frames_read == 201 and len(biking) == facts.frames_sampled == expected
    assert 160 <= expected <= 175  # about 25/29.97 of the 201 frames
    punch, facts = video_features(litert_backbone, by_name["v_Punch_g03_c01.avi"], 25.0, None)
    assert len(punch) == facts.frames_read == 108  # 25 fps: every frame


def test_int8_training_calibrates_on_training_videos_and_caches_apart(inception_weights, tmp_path):
    """`train --backend openvino-int8`: calibrated on the train split by default, reported,
    recorded in the metadata, its features cached apart from fp32 ones."""
    from realtime.backends import availability
    from realtime.model import read_model_info
    from training.synthetic import SyntheticSpec, generate

    if availability("openvino-int8"):
        pytest.skip(availability("openvino-int8"))
    data = generate(tmp_path / "data", SyntheticSpec(2, 1, min_frames=25, max_frames=30))
    cache = tmp_path / "backbones"
    base = ["--data", data, "--backbone-weights", inception_weights, "--epochs", "1"]
    env = {"REALTIME_ACTION_CACHE": str(cache)}
    int8 = run_cli(
        "train", *base, "--out", tmp_path / "m8", "--backend", "openvino-int8",
        module="training", timeout=600, env=env,
    )  # fmt: skip
    assert int8.returncode == 0, int8.stderr + int8.stdout
    assert "features differ from fp32 Keras by" in int8.stderr + int8.stdout
    calibration = read_model_info(tmp_path / "m8").training["features"]["int8_calibration"]
    train_names = {p.name for p in (data / "train").iterdir()}
    assert set(calibration["videos"]) == train_names  # the whole train split, no test video
    fp32 = run_cli(
        "train", *base, "--out", tmp_path / "m32", "--backend", "openvino",
        module="training", timeout=600, env=env,
    )  # fmt: skip
    assert fp32.returncode == 0, fp32.stderr + fp32.stdout
    assert read_model_info(tmp_path / "m32").training["features"] == {"backend": "openvino"}
    folders = sorted(p.name for p in (data / ".features").iterdir())
    assert len(folders) == 2, folders  # int8 features never served as fp32 ones
