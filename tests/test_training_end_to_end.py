"""End to end on synthetic action data sets with the shared LiteRT backbone.

Two held-out sets, made with data seeds the default recipe was never tuned on (it was tuned
on `textures` sets, data seed 1000), 48 test videos each so that one video is not the margin:

- `order`: shapes that grow or shrink, colours that warm or cool; each class shows the same
  frames as its mirror, reversed, so only the order of the frames tells them apart;
- `mixed`: circle or square x growing, shrinking or still: appearance and order both needed.

`python -m training all` trains and evaluates the default recipe on each (its features end
with each frame's 56 x 56 thumbnail, whose motion goes to the class scores); the tests
recompute the figures independently from the saved model (their own windows, through the
Keras model, not the NumPy head `training evaluate` uses; on the features training cached,
checked against an independent extraction of one test video per class), then run the
trained model through `python -m realtime --every-frame` to show the streaming head gives
the offline probabilities at every phase of a video.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MOBILENET_V1_EMBEDDER, ROOT, cli_env, need_backend, run_cli

pytestmark = [pytest.mark.shared, pytest.mark.slow]

WINDOW = 20
WINDOW = 20
ORDER_SET = {"generator": "shapes", "kind": "order", "seed": 11, "train": 12, "test": 12}
MIXED_SET = {"generator": "shapes", "kind": "mixed", "seed": 12, "train": 12, "test": 8}
HELD_OUT_SETS = {"order": ORDER_SET, "mixed": MIXED_SET}
EARLY = pytest.StashKey["HeldOutTrainings"]()


def _generate(root: Path, spec: dict) -> Path:
    from training.synthetic import SyntheticSpec, generate

    return generate(
        root,
        SyntheticSpec(spec["train"], spec["test"], spec["generator"], spec["kind"], spec["seed"]),
    )


def _add_broken_videos(root: Path) -> None:
    """A corrupt video and a missing one, listed in train.csv: reported and skipped."""
    (root / "train" / "v_broken.avi").write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 10)
    with open(root / "train.csv", "a", newline="") as handle:
        csv.writer(handle).writerows([["v_broken.avi", "grow"], ["v_missing.avi", "shrink"]])


class HeldOutTrainings:
    """The held-out sets (`HELD_OUT_SETS`) generated and trained by `python -m training all`,
    one after the other, in a thread of its own: `start_early` (conftest, as the session
    starts) lets them use the CPU the rest of the suite leaves idle; 3.5 minutes of CI when
    they ran as this module's fixtures. `get` waits for a set; a failure is re-raised there.
    `stop` kills a training under way (Ctrl-C, the session's end)."""

    def __init__(self, root: Path, embedder: Path):
        self.root, self.embedder = root, embedder
        self._done = {name: threading.Event() for name in HELD_OUT_SETS}
        self._results: dict = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, name="held-out-trainings", daemon=True)

    def start(self) -> HeldOutTrainings:
        self._thread.start()
        return self

    def get(self, name: str) -> tuple[Path, Path, subprocess.CompletedProcess]:
        """(data root, model dir, the `training all` run) of set `name`, once trained."""
        assert self._done[name].wait(timeout=1800), f"{name}: still training after 30 minutes"
        result = self._results[name]
        if isinstance(result, BaseException):
            raise result
        return result

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        for name, spec in HELD_OUT_SETS.items():
            try:
                if self._stop.is_set():
                    raise RuntimeError(f"{name}: stopped before training")
                self._results[name] = self._train(name, spec)
            except BaseException as exc:  # kept for `get`, in the test that needs the set
                self._results[name] = exc
            finally:
                self._done[name].set()

    def _train(self, name: str, spec: dict):
        data = _generate(self.root / name / "data", spec)
        if name == "order":
            _add_broken_videos(data)
        out = self.root / name / "model"
        argv = ["all", "--data", data, "--out", out, "--backbone", self.embedder]
        # converted backbones (none for a .tflite) go to this run's folder, never the user's
        env = cli_env({"REALTIME_ACTION_CACHE": str(self.root / "backbone-cache")})
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError(f"{name}: stopped before training")
            self._process = subprocess.Popen(
                [sys.executable, "-m", "training", *map(str, argv)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                text=True, env=env, cwd=ROOT,
            )  # fmt: skip
        try:
            stdout, stderr = self._process.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            raise
        done = subprocess.CompletedProcess(self._process.args, self._process.returncode)
        done.stdout, done.stderr = stdout, stderr
        return data, out, done


def start_early(config) -> None:
    """Called by conftest as the session starts: the trainings begin now, in a folder of
    their own that goes when the session ends. Without the embedder, nothing starts (the
    fixtures skip, or fail in CI, as they say)."""
    embedder = Path(config.getoption("--shared")) / "models" / MOBILENET_V1_EMBEDDER
    if not embedder.is_file():
        return
    root = Path(tempfile.mkdtemp(prefix="realtime-held-out-"))
    trainings = HeldOutTrainings(root, embedder).start()
    config.stash[EARLY] = trainings
    config.add_cleanup(lambda: (trainings.stop(), shutil.rmtree(root, ignore_errors=True)))


@pytest.fixture(scope="module")
def held_out(request, embedder_path, tmp_path_factory) -> HeldOutTrainings:
    """The trainings started with the session, or, when none were, started now."""
    early = request.config.stash.get(EARLY, None)
    if early is not None:  # the same embedder: both read --shared
        return early
    trainings = HeldOutTrainings(tmp_path_factory.mktemp("held-out"), embedder_path).start()
    request.addfinalizer(trainings.stop)
    return trainings


def _trained(held_out: HeldOutTrainings, name: str):
    _, out, result = held_out.get(name)
    assert result.returncode == 0, result.stderr + result.stdout
    return out, result


@pytest.fixture(scope="module")
def synthetic_data(held_out) -> Path:
    return held_out.get("order")[0]


@pytest.fixture(scope="module")
def trained(held_out):
    return _trained(held_out, "order")


@pytest.fixture(scope="module")
def mixed_data(held_out) -> Path:
    return held_out.get("mixed")[0]


@pytest.fixture(scope="module")
def trained_mixed(held_out):
    return _trained(held_out, "mixed")


def _with_thumbnails(backbone, model_dir: Path):
    """`backbone` with the thumbnails the model's head reads appended (`WithMotion`), if any."""
    from realtime.backbones.motion import WithMotion
    from realtime.head.modeldir import read_model_info

    motion = read_model_info(model_dir).head.motion
    return WithMotion(backbone, motion) if motion else backbone


def _test_features(data: Path, model_dir: Path, backbone):
    """(name, label, every sampled frame's features) per test video, sampled at the model's
    rate: the features `training all` cached for it (a miss fails), after checking those of
    the first test video of each class against an independent decode and extraction by
    `backbone` (the runtime's video reader, every sampled frame at once; with the thumbnails
    the model reads); re-extracting all 48 videos was a minute per set on a slow CPU."""
    from realtime.frames.video import sampled_frames
    from realtime.head.classifier import ActionClassifier
    from training.dataset import load_dataset
    from training.features import FeatureCache

    fps = ActionClassifier(model_dir).info.sampling_fps
    backbone = _with_thumbnails(backbone, model_dir)
    cache = FeatureCache(data / ".features", backbone.cache_identity(), backbone.image_size, fps)
    videos, checked = [], set()
    for video in load_dataset(data).split("test"):
        features = cache.get(video.path, None)
        assert features is not None, f"{video.name}: not in the feature cache"
        if video.label not in checked:
            checked.add(video.label)
            independent = backbone.extract(sampled_frames(video.path, backbone.image_size, fps))
            np.testing.assert_allclose(features, independent, rtol=0, atol=1e-5)
        videos.append((video.name, video.label, features))
    return videos


@pytest.fixture(scope="module")
def order_test_features(trained, synthetic_data, litert_backbone):
    """The order set's test videos' features (`_test_features`), for the accuracy and the
    missing-frames checks."""
    return _test_features(synthetic_data, trained[0], litert_backbone)


def _keras_windows(classifier, frames: np.ndarray, starts) -> np.ndarray:
    """Class probabilities of the windows starting at `starts`, through the Keras model."""
    features = np.zeros((len(starts), WINDOW, frames.shape[1]), np.float32)
    masks = np.zeros((len(starts), WINDOW), bool)
    for i, start in enumerate(starts):
        chunk = frames[start : start + WINDOW]
        features[i, : len(chunk)] = chunk
        masks[i, : len(chunk)] = True
    return classifier.keras_probabilities(features, masks)


def _check_accuracy(model_dir: Path, videos, expected_videos: int):
    """First-window and any-phase accuracy recomputed from the saved model on `videos`
    (`_test_features`): >= 85 %, and what `training evaluate` wrote."""
    from realtime.head.classifier import ActionClassifier

    classifier = ActionClassifier(model_dir)
    assert len(videos) == expected_videos >= 48
    first_right, phase_shares, windows = 0, [], 0
    for _, label, frames in videos:
        target = classifier.labels.index(label)
        starts = list(range(max(len(frames) - WINDOW, 0) + 1))
        probs = _keras_windows(classifier, frames, starts)
        first_right += int(probs[0].argmax() == target)
        phase_shares.append(float((probs.argmax(1) == target).mean()))
        windows += len(starts)
    first, any_phase = first_right / len(videos), float(np.mean(phase_shares))
    assert first >= 0.85, f"held-out first-window accuracy {first:.3f}"
    assert any_phase >= 0.85, f"held-out any-phase accuracy {any_phase:.3f}"
    report = json.loads((model_dir / "evaluation.json").read_text())
    assert report["accuracy"] == pytest.approx(first, abs=1e-3)
    assert report["test_videos"] == len(videos)
    assert report["any_phase"]["accuracy"] == pytest.approx(any_phase, abs=1e-3)
    assert report["any_phase"]["windows"] == windows
    return report


def test_default_recipe_learns_temporal_order(trained, order_test_features):
    model_dir, _ = trained
    _check_accuracy(model_dir, order_test_features, expected_videos=48)


def test_default_recipe_learns_order_and_appearance(trained_mixed, mixed_data, litert_backbone):
    model_dir, result = trained_mixed
    videos = _test_features(mixed_data, model_dir, litert_backbone)
    report = _check_accuracy(model_dir, videos, expected_videos=48)
    assert report["labels"] == sorted(
        f"{a}_{d}" for a in ("circle", "square") for d in ("grow", "shrink", "still")
    )
    assert "any phase" in result.stdout and "30% missing" in result.stdout


def test_missing_frames_figures_follow_the_documented_rule(trained, order_test_features):
    """10 % and 30 % of each test video's sampled frames removed at random (seeded by the
    video's place in the test list), then every window classified: recomputed here."""
    from realtime.head.classifier import ActionClassifier

    model_dir, _ = trained
    classifier = ActionClassifier(model_dir)
    videos = order_test_features
    report = json.loads((model_dir / "evaluation.json").read_text())
    for rate, name in ((0.1, "10%"), (0.3, "30%")):
        shares, windows = [], 0
        for v, (_, label, frames) in enumerate(videos):
            keep = np.random.default_rng([0, v]).random(len(frames)) >= rate
            thinned = frames[keep]
            starts = list(range(max(len(thinned) - WINDOW, 0) + 1))
            probs = _keras_windows(classifier, thinned, starts)
            shares.append(float((probs.argmax(1) == classifier.labels.index(label)).mean()))
            windows += len(starts)
        figure = report["missing_frames"][name]
        assert figure["accuracy"] == pytest.approx(np.mean(shares), abs=1e-3)
        assert figure["windows"] == windows
        assert windows < report["any_phase"]["windows"]


def test_model_dir_metadata(trained, embedder_path):
    from realtime.head.config import HeadInput
    from realtime.head.modeldir import read_model_info
    from training.recipes import DEFAULT

    model_dir, result = trained
    info = read_model_info(model_dir)
    assert info.labels == ["cool", "grow", "shrink", "warm"]
    assert info.window == 20 and info.sampling["fps"] == 25.0
    assert info.format_version == 2
    assert info.head == DEFAULT.head
    assert info.head.input is HeadInput.APPEARANCE_CHANGE
    assert info.backbone.feature_size == 1024 + 56 * 56  # the features, then the thumbnail
    assert info.backbone.motion == 56 and info.backbone.file == embedder_path.name
    assert (model_dir / embedder_path.name).read_bytes() == embedder_path.read_bytes()
    assert info.training["recipe"]["name"] == "default"
    assert info.training["features"] == {"backend": "litert"}
    # GRU(16) on 16 + 16 inputs, GRU(8), Dense(8), Dense(4): weights and both GRU biases
    trainable = (3 * 16 * 32 + 3 * 16 * 16 + 2 * 3 * 16) + (3 * 8 * 16 + 3 * 8 * 8 + 2 * 3 * 8)
    trainable += 8 * 8 + 8 + 8 * 4 + 4
    assert info.training["parameters"]["trainable"] == trainable
    assert f"{trainable:,} trainable parameters" in " ".join(result.stdout.split())
    assert info.evaluation["accuracy"] >= 0.85
    assert set(info.evaluation["missing_frames"]) == {"10%", "30%"}
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
    assert "48 video(s): 48 from the cache" in first.stdout.replace("\n", " ")
    # touching a video invalidates its entry only
    video = synthetic_data / "test" / "v_grow_test_000.avi"
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    second = run_cli(
        "features", "--data", synthetic_data, "--backbone", embedder_path, module="training"
    )
    assert second.returncode == 0, second.stderr
    assert "48 video(s): 47 from the cache" in second.stdout.replace("\n", " ")
    assert "1 extracted" in second.stdout.replace("\n", " ")


def _runtime_lines(model_dir: Path, videos: list[Path]) -> dict[Path, list[dict]]:
    """Every JSONL line of `python -m realtime --every-frame` on each video (in parallel)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("DISPLAY", None)
    procs = {}
    for video in videos:
        args = [
            sys.executable, "-m", "realtime", "--every-frame", "--ui", "none", "--jsonl", "-",
            "--quiet", "--model", str(model_dir), "--source", str(video),
        ]  # fmt: skip
        procs[video] = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
    results = {}
    for video, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results[video] = [json.loads(line) for line in out.splitlines() if line.strip()]
    return results


def test_train_serve_parity(trained, synthetic_data, tmp_path, embedder_path):
    """Offline evaluation and `python -m realtime --every-frame` (run on the exported model
    directory, a round trip through `training export`) give the same probabilities for every
    window of held-out videos: partial windows at the start, then every full window as it
    slides (each step relative to a new first frame), to 1e-4."""
    from realtime.backbones.litert import LiteRTBackbone
    from realtime.head.classifier import ActionClassifier
    from training.features import extract_features

    trained_dir, _ = trained
    model_dir = tmp_path / "exported"
    exported = run_cli("export", "--model", trained_dir, "--out", model_dir, module="training")
    assert exported.returncode == 0, exported.stderr
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        [
            "head.weights.h5",
            "head.keras",  # the head for use in Keras (never read by the runtime)
            "metadata.json",
            "evaluation.json",
            "confusion_matrix.png",
            embedder_path.name,
        ]
    )
    report = json.loads((model_dir / "evaluation.json").read_text())
    first_window = {p["video"]: p for p in report["predictions"]}
    # one held-out video per class, including 30 fps videos sampled at 25 fps
    by_class = {}
    for name in sorted(first_window):
        by_class.setdefault(name.split("_")[1], name)
    videos = [synthetic_data / "test" / name for name in by_class.values()]
    classifier = ActionClassifier(model_dir)
    backbone = _with_thumbnails(LiteRTBackbone(embedder_path), model_dir)
    offline = extract_features(videos, backbone, 25.0, None, None)
    live = _runtime_lines(model_dir, videos)
    for video, lines in live.items():
        frames = offline.features[video]
        assert [line["sample"] for line in lines] == list(range(len(frames)))
        features = np.zeros((len(lines), WINDOW, frames.shape[1]), np.float32)
        masks = np.zeros((len(lines), WINDOW), bool)
        for i, line in enumerate(lines):
            fill, end = line["window"], line["sample"] + 1
            assert fill == min(end, WINDOW)
            features[i, :fill] = frames[end - fill : end]
            masks[i, :fill] = True
        expected = classifier.predict_batch(features, masks)  # evaluate's batch path
        got = np.array([[line["probs"][label] for label in classifier.labels] for line in lines])
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        full = lines[WINDOW - 1]  # where the window first fills: evaluate's first window
        assert full["label"] == first_window[video.name]["predicted"]
        for label, p in full["probs"].items():
            assert p == pytest.approx(first_window[video.name]["probs"][label], abs=1e-4)


def test_seed_recipe_trains_from_the_cache(trained, synthetic_data, embedder_path, tmp_path):
    """`train --recipe seed` (the example's recipe) reuses the cached features."""
    from realtime.head.modeldir import read_model_info

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
    assert json.loads((out / "metadata.json").read_text())["head"] == {
        "gru_units": [16, 8],
        "dropout": 0.4,
        "dense_units": 8,
    }


def test_real_clips_decode_and_sample_like_the_runtime(shared_clips, litert_backbone):
    """Real codecs and frame rates (XviD 25 fps, 29.97 fps, H.264 28 fps, GIF) go through
    `training.features` and are sampled at 25 fps on their own clock."""
    from training.features import extract_features, video_features

    result = extract_features(shared_clips, litert_backbone, 25.0, 30, None)
    assert not result.skipped
    for clip in shared_clips:
        features = result.features[clip]
        assert features.shape == (30, 1024) and np.isfinite(features).all()
    by_name = {c.name: c for c in shared_clips}
    biking, facts = video_features(litert_backbone, by_name["v_Biking_g05_c02.avi"], 25.0, None)
    # 201 frames at 29.97 fps, one in six skipped (the pattern slips once, at frame 165, as
    # 29.97 is not quite 30): 168 sampled
    assert facts.frames_read == 201 and len(biking) == facts.frames_sampled == 168
    punch, facts = video_features(litert_backbone, by_name["v_Punch_g03_c01.avi"], 25.0, None)
    assert len(punch) == facts.frames_read == 108  # 25 fps: every frame


def test_int8_training_calibrates_on_training_videos_and_caches_apart(
    inception_weights, tmp_path, private_backbone_cache
):
    """`train --backend openvino-int8`: calibrated on the train split by default, reported,
    recorded in the metadata, its features cached apart from fp32 ones."""
    from realtime.head.modeldir import read_model_info
    from training.synthetic import SyntheticSpec, generate

    need_backend("openvino-int8")
    # short videos: InceptionV3 runs on each frame three times (calibration, int8, fp32)
    data = generate(tmp_path / "data", SyntheticSpec(2, 1, min_frames=12, max_frames=14))
    base = ["--data", data, "--backbone-weights", inception_weights, "--epochs", "1"]
    # the session's backbone cache: fp32 conversions other tests made are reused; the int8
    # model, calibrated on this data set's videos, is made here
    env = {"REALTIME_ACTION_CACHE": str(private_backbone_cache)}
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


def test_ucf101_clips_of_one_recording_are_held_out_together(embedder_path, tmp_path, capsys):
    """UCF101's file names (`v_<Class>_gNN_cNN`) put the clips of one recording in one group:
    `train` says so, validation holds out whole recordings, and the model records it."""
    from realtime.head.modeldir import read_model_info
    from tests.conftest import moving_square_frames, write_video
    from training.cli import main

    data = tmp_path / "ucf"
    for split, groups in (("train", (1, 2, 3, 4)), ("test", (5,))):
        for action in ("Jump", "Walk"):
            folder = data / split / action
            folder.mkdir(parents=True)
            for g in groups:
                for c in (1, 2):
                    seed = 10 * g + c + (100 if action == "Walk" else 0)
                    frames = moving_square_frames(8, 64, 48, seed=seed)
                    write_video(folder / f"v_{action}_g{g:02d}_c{c:02d}.avi", frames)
    out = tmp_path / "model"
    args = ["train", "--data", data, "--out", out, "--epochs", "1", "--backbone", embedder_path]
    assert main([str(a) for a in args]) == 0  # in this process: TensorFlow is loaded once
    assert "from 16 training video(s) in 8 groups" in " ".join(capsys.readouterr().out.split())
    history = read_model_info(out).training["history"]
    assert history["groups"] == 8 and history["validation_groups"] == 2
    assert history["validation_windows"] == 4  # 2 recordings x 2 clips x 1 window


REGIONS_SET = {"generator": "shapes", "kind": "order", "seed": 13, "train": 2, "test": 1}


@pytest.mark.parametrize(
    "pooling, flags, size",
    [
        ("regions", (), 5120 + 56 * 56),
        ("map", ("--no-motion-scores",), 1024 + 7 * 7 * 32 + 56 * 56),
        ("global", ("--no-motion",), 1024),
        ("global", ("--motion-parts",), 1024 + 56 * 56),
    ],
)
def test_pooling_trains_records_and_streams_as_offline(
    embedder_path, tmp_path_factory, pooling, flags, size
):
    """`training all --pooling regions` (or `map --no-motion-scores`, or `--no-motion`): the
    model records the pooling and the thumbnails (or that there are none) with its backbone
    (5 x 1024 features + a 56 x 56 thumbnail; 1024 + the 7 x 7 map reduced to 32 numbers a
    position + the thumbnail; 1024), the .tflite beside it is the original file, and
    `python -m realtime --every-frame` (which reads the pooling and the thumbnails from the
    model) gives the offline probabilities at every step, to 1e-4 (`map`: the head reads
    where the picture changes and how far it moved; `--no-motion-scores`: how far its pixels
    moved, into the GRU instead of the class scores (the default); `--no-motion`: the default
    head before it read the motion, written as such heads were; `--motion-parts`: the
    scores read each quadrant's motion too, summarised, added after training; Keras gives
    the same)."""
    from realtime.backbones.litert import LiteRTBackbone
    from realtime.backbones.motion import WithMotion
    from realtime.backbones.regions import Pooling
    from realtime.head.classifier import ActionClassifier
    from realtime.head.modeldir import read_model_info
    from training.features import extract_features

    data = _generate(tmp_path_factory.mktemp(pooling) / "data", REGIONS_SET)
    out = tmp_path_factory.mktemp("model") / f"{pooling}_model"
    result = run_cli(
        "all", "--data", data, "--out", out, "--backbone", embedder_path,
        "--pooling", pooling, "--epochs", "3", *flags,
        module="training", timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    motion = "--no-motion" not in flags
    scores = motion and "--no-motion-scores" not in flags
    quadrants = parts = "--motion-parts" in flags  # the parts are the quadrants summarised
    info = read_model_info(out)
    assert info.backbone.pooling is Pooling(pooling) and info.backbone.feature_size == size
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["backbone"].get("pooling", "global") == pooling  # global: as before
    assert metadata["training"]["recipe"]["pooling"] == pooling  # --pooling is the recipe's
    if motion:
        assert info.backbone.motion == 56 and info.head.motion == 56
    else:  # written as before
        assert "motion" not in metadata["backbone"] and "motion" not in metadata["head"]
    assert metadata["training"]["recipe"]["head"].get("motion", 0) == (56 if motion else 0)
    assert info.head.motion_scores is scores  # written only when on
    assert metadata["head"].get("motion_scores", False) is scores
    assert metadata["head"].get("motion_quadrants", False) is quadrants  # written only when on
    assert info.head.motion_quadrants is quadrants
    assert metadata["head"].get("motion_summary", False) is parts  # written only when on
    assert metadata["training"]["recipe"]["motion_scores_after"] is parts
    printed = " ".join((result.stderr + result.stdout).split())  # lines wrap at 80
    if motion and not scores:
        assert "+ 4 for how far its 56x56 pixels moved" in printed
    if scores:  # not into the GRU
        numbers = "20: the whole and each quadrant, summarised" if parts else "4"
        assert f"+ the fitted scores of how far its 56x56 pixels moved ({numbers}) -> " in printed
        assert "+ 4 for how far" not in printed
    where = pooling == "map"
    assert info.head.where_trend is where and info.head.where_shift is where
    assert metadata["training"]["recipe"]["head"].get("where_trend", False) is where
    if where:
        assert metadata["head"]["map_shape"] == [7, 7, 32]
        assert "+ 2 for where it changes + 2 for how far it moved" in printed
    assert (out / embedder_path.name).read_bytes() == embedder_path.read_bytes()
    videos = sorted((data / "test").iterdir())[:2]
    backbone = LiteRTBackbone(embedder_path, pooling=Pooling(pooling))
    if motion:
        backbone = WithMotion(backbone, 56)
    offline = extract_features(videos, backbone, 25.0, None, None)
    classifier = ActionClassifier(out)
    for video, lines in _runtime_lines(out, videos).items():
        frames = offline.features[video]
        assert frames.shape[1] == size
        assert [line["sample"] for line in lines] == list(range(len(frames)))
        features = np.zeros((len(lines), WINDOW, frames.shape[1]), np.float32)
        masks = np.zeros((len(lines), WINDOW), bool)
        for i, line in enumerate(lines):
            fill, end = line["window"], line["sample"] + 1
            features[i, :fill] = frames[end - fill : end]
            masks[i, :fill] = True
        expected = classifier.predict_batch(features, masks)
        got = np.array([[line["probs"][label] for label in classifier.labels] for line in lines])
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
        if where or motion:  # the offline figures through Keras' own layers too
            keras_probs = classifier.keras_probabilities(features, masks)
            np.testing.assert_allclose(got, keras_probs, atol=1e-4, rtol=0)
