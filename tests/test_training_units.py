"""training/: data layouts, frame sampling, windows, metrics, the CLI's input errors."""

from __future__ import annotations

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest

from realtime.core.errors import InputError
from realtime.frames.video import UnreadableVideo, VideoFacts, sampled_batches, sampled_frames
from tests.conftest import moving_square_frames, run_cli, write_video
from training.dataset import load_dataset
from training.evaluate import confusion_png, metrics_report
from training.recipes import DEFAULT, SEED
from training.synthetic import GENERATORS
from training.train import make_windows, validation_groups, window_starts


def _videos(folder, names, frames=6):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_video(folder / name, moving_square_frames(frames))


def test_csv_layout(tmp_path):
    _videos(tmp_path / "train", ["a1.avi", "b1.avi"])
    _videos(tmp_path / "test", ["a2.avi"])
    (tmp_path / "train.csv").write_text("video_name,tag\na1.avi,Alpha\nb1.avi,Beta\n")
    (tmp_path / "test.csv").write_text("video_name,tag\na2.avi,Alpha\n")
    data = load_dataset(tmp_path)
    assert data.layout == "csv" and data.labels == ["Alpha", "Beta"]
    assert [v.path for v in data.split("test")] == [tmp_path / "test" / "a2.avi"]


def test_folder_per_class_hash_split_is_deterministic(tmp_path):
    for label in ("jump", "run"):
        _videos(tmp_path / label, [f"{label}{i}.avi" for i in range(8)], frames=2)
    first = load_dataset(tmp_path)
    assert first.layout == "folders (hash split)" and first.labels == ["jump", "run"]
    test = {v.path for v in first.split("test")}
    assert len(test) == 4  # a quarter of each class
    assert {v.label for v in first.split("test")} == {"jump", "run"}
    assert {v.path for v in load_dataset(tmp_path).split("test")} == test
    _videos(tmp_path / "jump", ["jump_new.avi"], frames=2)  # adding a video moves at most one
    again = {v.path for v in load_dataset(tmp_path).split("test")}
    assert len(test - again) <= 1


def test_the_hash_split_keeps_ucf101_recordings_whole(tmp_path):
    """UCF101 as distributed is one folder per class; the clips of one recording (`_gNN_`)
    look alike and must not be on both sides of the split. Other names split as before: a
    quarter of the files whose names' sha1 rank first."""
    import hashlib

    from training.dataset import _hash_split

    clips = {g: 2 + g % 3 for g in range(1, 9)}  # 8 recordings of 2-4 clips: 24 clips
    folder = tmp_path / "Jump"
    files = [folder / f"v_Jump_g{g:02d}_c{c:02d}.avi" for g, n in clips.items() for c in range(n)]
    train, test = _hash_split(files, 0.25)
    assert sorted(train + test) == sorted(files)
    recordings = {p.name[:11] for p in test}
    assert not recordings & {p.name[:11] for p in train}
    assert 6 <= len(test) < 6 + 4  # a quarter, plus what the last recording taken brings
    assert _hash_split(list(reversed(files)), 0.25)[1] == sorted(test, key=files.index)[::-1]
    # one recording: none can be held out; two: one at most
    assert _hash_split(files[:2], 0.25) == (files[:2], [])
    assert len({p.name[:11] for p in _hash_split(files[:7], 0.9)[0]}) == 1
    # any other names: each file alone, the quarter whose names' hashes rank first
    names = [folder / f"jump{i}.avi" for i in range(10)] + [folder / "v_Jump_g01_x.avi"]
    expected = sorted(names, key=lambda p: hashlib.sha1(p.name.encode()).hexdigest())[:3]
    assert set(_hash_split(names, 0.25)[1]) == set(expected)
    # mixed: recordings move whole, other files alone
    train, test = _hash_split(files + names, 0.5)
    assert not {p.name[:11] for p in test if p in files} & {p.name[:11] for p in train}
    assert len(test) >= len(files + names) // 2


def test_folder_given_split(tmp_path):
    _videos(tmp_path / "train" / "a", ["x.avi"], 2)
    _videos(tmp_path / "train" / "b", ["y.avi"], 2)
    _videos(tmp_path / "test" / "a", ["z.avi"], 2)
    data = load_dataset(tmp_path)
    assert data.layout == "folders (given split)"
    assert [(v.name, v.label, v.split) for v in data.split("test")] == [("z.avi", "a", "test")]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "no training videos"),
        (lambda p: (p / "train.csv").write_text("name,label\n"), "train.csv but no test.csv"),
        (
            lambda p: [
                (p / "train.csv").write_text("name,label\nx,y\n"),
                (p / "test.csv").write_text("video_name,tag\n"),
            ],
            "columns video_name,tag",
        ),
        (
            lambda p: [
                (p / "train.csv").write_text("video_name,tag\n../x.avi,a\n"),
                (p / "test.csv").write_text("video_name,tag\n"),
            ],
            "outside",
        ),
        (lambda p: _videos(p / "only", ["a.avi", "b.avi"], 2), "only one class"),
    ],
)
def test_bad_data_folders(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(InputError, match=message):
        load_dataset(tmp_path)


def test_sampling_matches_the_runtime_clock(tmp_path):
    """A 30 fps video sampled at 25 fps: the frames SamplingClock admits, nothing else."""
    path = write_video(tmp_path / "v30.avi", moving_square_frames(60), fps=30.0)
    facts = VideoFacts()
    frames = np.concatenate(list(sampled_batches(path, 64, 25.0, None, 7, facts)))
    # 30 fps at 25 fps: ticks every 40 ms, frames every 33.3 ms; the frame at 66.7 ms comes
    # before the 80 ms tick (less its 20 % tolerance) and every sixth one after it likewise
    expected = [i for i in range(60) if i % 6 != 2]
    assert facts.source_fps == 30.0 and facts.frames_read == 60 and facts.ended
    assert len(frames) == len(expected) == facts.frames_sampled == 50
    from realtime.frames.preprocessing import preprocess_frame

    originals = list(moving_square_frames(60))
    # frame k of the output is the preprocessed source frame expected[k] (decoded, so lossy)
    for k in (0, 10, len(expected) - 1):
        want = preprocess_frame(originals[expected[k]], 64).astype(int)
        assert np.abs(frames[k].astype(int) - want).mean() < 12
    # a limit stops decoding early
    limited = VideoFacts()
    assert len(sampled_frames(path, 64, 25.0, limit=20)) == 20
    list(sampled_batches(path, 64, 25.0, 20, 32, limited))
    assert limited.frames_read < 60 and not limited.ended


def test_unreadable_video(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video at all" * 20)
    with pytest.raises(UnreadableVideo):
        list(sampled_batches(bad, 64, 25.0))
    with pytest.raises(UnreadableVideo, match="not found"):
        list(sampled_batches(tmp_path / "missing.avi", 64, 25.0))


def test_windows_and_masks():
    assert window_starts(10, 20, 5, 8) == [0]
    assert window_starts(20, 20, 5, 8) == [0]
    assert window_starts(47, 20, 5, 8) == [0, 5, 10, 15, 20, 25]
    assert window_starts(200, 20, 5, 8) == [0, 5, 10, 15, 20, 25, 30, 35]
    short = np.ones((7, 3), np.float32)
    long = np.arange(30 * 3, dtype=np.float32).reshape(30, 3)
    w = make_windows([short, long], [0, 1], DEFAULT)
    assert w.features.shape == (1 + 3, 20, 3)
    assert w.masks[0].sum() == 7 and not w.features[0, 7:].any()
    assert list(w.videos) == [0, 1, 1, 1] and list(w.targets) == [0, 1, 1, 1]
    np.testing.assert_array_equal(w.features[2], long[5:25])
    seed = make_windows([short, long], [0, 1], SEED)
    assert len(seed) == 2 and SEED.frames_needed == 20


def test_a_video_s_group_is_ucf101_s_recording_or_the_video_alone(tmp_path):
    from training.dataset import Video

    def group(name: str) -> str:
        return Video(tmp_path / name, "x", "train").group

    assert group("v_ApplyEyeMakeup_g08_c01.avi") == "ApplyEyeMakeup_g08"
    assert group("v_ApplyEyeMakeup_g08_c04.avi") == group("v_ApplyEyeMakeup_g08_c01.avi")
    assert group("v_ApplyEyeMakeup_g8_c02.avi") == "ApplyEyeMakeup_g08"
    assert group("v_ApplyEyeMakeup_g09_c01.avi") != group("v_ApplyEyeMakeup_g08_c01.avi")
    assert group("v_Apply_Eye_g10_c01.mp4") == "Apply_Eye_g10"
    # anything else: each video alone (two files, two groups)
    assert group("v_cool_train_000.avi") == str(tmp_path / "v_cool_train_000.avi")
    assert group("walk_g08.avi") != group("walk_g08.mp4")
    assert group("v_Biking_g05_c02_copy.avi") == str(tmp_path / "v_Biking_g05_c02_copy.avi")


def test_windows_carry_their_group_and_a_group_stays_on_one_side():
    from training.train import _split

    per_video = [np.full((30, 2), v, np.float32) for v in range(24)]
    targets = [v % 2 for v in range(24)]
    recipe = replace(DEFAULT, windows_per_video=2, validation_split=0.25)
    alone = make_windows(per_video, targets, recipe)
    np.testing.assert_array_equal(alone.groups, alone.videos)
    # 6 recordings per class, 2 videos each; "r0" names a recording in each class
    names = [f"r{v // 4}" for v in range(24)]
    grouped = make_windows(per_video, targets, recipe, names)
    assert len(np.unique(grouped.groups)) == 12
    for g in np.unique(grouped.groups):
        assert len(set(grouped.targets[grouped.groups == g])) == 1
        assert len(set(grouped.videos[grouped.groups == g])) == 2
    for windows, held in ((alone, 3), (grouped, 2)):  # a quarter of each class's units
        train, val = _split(windows, recipe)
        assert not set(train.groups) & set(val.groups)
        assert not set(train.videos) & set(val.videos)
        for c in (0, 1):
            assert len(np.unique(val.groups[val.targets == c])) == held
    # no group split the videos of a recording: both or neither held out
    _, val = _split(grouped, recipe)
    held_names = [names[v] for v in np.unique(val.videos)]
    assert all(held_names.count(n) == 2 for n in held_names)
    with pytest.raises(ValueError, match="groups"):
        make_windows(per_video, targets, recipe, names[:-1])


def test_validation_split_is_per_class_and_per_video():
    targets = [0] * 8 + [1] * 8 + [2] * 2
    chosen = validation_groups(targets, 0.25, seed=0)
    assert sum(targets[i] == 0 for i in chosen) == 2
    assert sum(targets[i] == 1 for i in chosen) == 2
    assert sum(targets[i] == 2 for i in chosen) == 1
    assert chosen == validation_groups(targets, 0.25, seed=0)


def test_metrics_report_and_png(tmp_path):
    report = metrics_report([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert report["accuracy"] == 0.6
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert report["per_class"]["b"] == {"precision": 0.6667, "recall": 1.0, "support": 2}
    assert report["per_class"]["c"]["precision"] is None
    path = confusion_png(report["confusion_matrix"], ["a", "b", "c"], tmp_path / "cm.png")
    import cv2

    assert cv2.imread(str(path)).shape[0] > 100


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_synthetic_mirror_classes_show_the_same_frames_reversed(name):
    """In every generator, a dynamic and its mirror (grow/shrink, zoom_in/zoom_out, ...) drawn
    with the same seed show the same frames in reverse order, up to per-frame sensor noise:
    no single frame and no order-blind summary tells an order-only pair apart."""
    import cv2

    generator = GENERATORS[name]

    def smooth(frames):  # blur away the per-frame sensor noise
        return [cv2.GaussianBlur(f.astype(np.float32), (0, 0), 4) for f in frames]

    for up, down in generator.variables.values():
        rising = generator.render(
            generator.plan("order", up, np.random.default_rng(1)), 30, np.random.default_rng(5)
        )
        falling = generator.render(
            generator.plan("order", down, np.random.default_rng(1)), 30, np.random.default_rng(5)
        )
        a, b = smooth(rising), smooth(falling)
        mirror = max(np.abs(x - y).mean() for x, y in zip(a, b[::-1], strict=True))
        change = np.abs(a[0] - a[-1]).mean()
        assert mirror < 1.0 and change > 4 * mirror, (up, down, mirror, change)


def test_synthetic_kinds_put_the_cue_where_they_say():
    """order: the class is the dynamic, appearance random; appearance: the class is the
    appearance, dynamic random (still included); mixed: both fixed by the class."""
    for generator in GENERATORS.values():
        rng = np.random.default_rng(0)
        order = [generator.plan("order", c, rng) for c in generator.classes("order") * 20]
        assert {p.dynamic.name for p in order} == set(generator.classes("order"))
        assert len({p.appearance for p in order}) == len(generator.appearances)
        looks = [generator.plan("appearance", c, rng) for c in generator.classes("appearance")]
        assert {p.appearance for p in looks} == set(generator.appearances)
        drawn = [generator.plan("appearance", looks[0].appearance, rng) for _ in range(60)]
        names = {p.dynamic.name if p.dynamic else "still" for p in drawn}
        assert names == set(generator.dynamics) | {"still"}
        for label in generator.classes("mixed"):
            plan = generator.plan("mixed", label, rng)
            dynamic = plan.dynamic.name if plan.dynamic else "still"
            assert label == f"{plan.appearance}_{dynamic}"
        assert len(generator.classes("mixed")) >= 4


def test_synthetic_set_is_reproducible_and_written_as_described(tmp_path):
    from training.synthetic import INFO_FILE, SyntheticSpec, draw_video, generate

    spec = SyntheticSpec(1, 1, "textures", "mixed", seed=3, min_frames=6, max_frames=8)
    first = load_dataset(generate(tmp_path / "a", spec))
    again = load_dataset(generate(tmp_path / "b", spec))
    assert first.labels == sorted(GENERATORS["textures"].classes("mixed"))
    for x, y in zip(first.videos, again.videos, strict=True):
        assert x.path.suffix == ".mp4" and x.path.read_bytes() == y.path.read_bytes()
    info = json.loads((tmp_path / "a" / INFO_FILE).read_text())
    assert info["generator"] == "textures" and info["kind"] == "mixed" and info["seed"] == 3
    for video in first.videos:  # each file has the frame count and rate its draw says
        split, number = video.path.parent.name, int(video.path.stem[-3:])
        draw, _ = draw_video(spec, video.label, split, number)
        capture = cv2.VideoCapture(str(video.path))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == draw.frames
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(draw.fps)
        capture.release()


def test_help_for_every_command():
    for command in ("download", "features", "train", "evaluate", "export", "all", "synth"):
        result = run_cli(command, "--help", module="training")
        assert result.returncode == 0 and "usage: python -m training " + command in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "required"),
        (["train", "--data", "nowhere", "--out", "m"], "data folder not found: nowhere"),
        (["train", "--data", ".", "--out", "m", "--epochs", "0"], "must be at least 1"),
        (["train", "--data", ".", "--out", "m", "--fps", "-3"], "positive number"),
        (["evaluate", "--data", ".", "--model", "no_such_model"], "no trained model"),
        (["export", "--model", "no_such_model", "--out", "x"], "no trained model"),
        (["all", "--data", "x", "--from", "y"], "alternatives"),
        (["features", "--data", "pyproject.toml"], "must be a folder"),
        (["download", "--dest", "pyproject.toml"], "--dest must be a folder"),
        (["synth", "--out", "pyproject.toml"], "--out must be a folder"),
        (["synth", "--out", "/proc/no_such_place/x"], "error: "),
    ],
)
def test_bad_input_is_one_error_line(args, message, tmp_path):
    result = run_cli(*args, module="training")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_bad_backbone_is_one_error_line(tmp_path):
    for label in ("a", "b"):
        _videos(tmp_path / label, ["v1.avi", "v2.avi"], 2)
    result = run_cli(
        "features", "--data", tmp_path, "--backbone", tmp_path / "x.tflite", module="training"
    )
    assert result.returncode == 2 and "backbone file not found" in result.stderr
    result = run_cli("features", "--data", tmp_path, "--backbone", "vgg", module="training")
    assert result.returncode == 2 and "unknown backbone" in result.stderr


def test_downloaded_archive_identity_reaches_the_dataset(tmp_path):
    """`dataset.json` (written by `download`) is what training records in the metadata."""
    import json

    _videos(tmp_path / "train", ["a1.avi", "b1.avi"], 2)
    (tmp_path / "test").mkdir()
    (tmp_path / "train.csv").write_text("video_name,tag\na1.avi,A\nb1.avi,B\n")
    (tmp_path / "test.csv").write_text("video_name,tag\n")
    archive = {"file": "ucf101_top5.tar.gz", "size": 123, "sha256": "ab" * 32, "url": None}
    (tmp_path / "dataset.json").write_text(json.dumps(archive))
    described = load_dataset(tmp_path).describe()
    assert described["archive"] == archive
    assert described["train_videos"] == 2 and described["test_videos"] == 0


def test_int8_calibrates_on_the_training_videos_unless_told_otherwise(tmp_path):
    from training.cli import _choice, build_parser
    from training.synthetic import SyntheticSpec, generate

    dataset = load_dataset(generate(tmp_path / "data", SyntheticSpec(2, 1)))
    train = sorted(str(v.path) for v in dataset.split("train"))
    test = {str(v.path) for v in dataset.split("test")}

    def choice(*flags):
        return _choice(build_parser().parse_args(["features", "--data", "x", *flags]), dataset)

    assert sorted(choice("--backend", "openvino-int8").calibration) == train
    assert not test & set(choice("--backend", "openvino-int8").calibration)
    given = choice("--backend", "openvino-int8", "--calibration", "mine.avi")
    assert given.calibration == ["mine.avi"]
    assert choice("--backend", "openvino-bf16").calibration is None


def test_any_phase_accuracy_takes_every_window_and_counts_each_video_once():
    from training.evaluate import phase_accuracy, without_frames

    long = np.arange(25, dtype=np.float32)[:, None]  # 6 full windows: starts 0..5
    short = 100 + np.arange(10, dtype=np.float32)[:, None]  # one partial window
    asked = []

    def windows(frames, starts):  # class 0 for windows starting below 3, else class 1
        asked.append((frames[0, 0], list(starts)))
        return np.eye(2)[(np.asarray(starts) >= 3).astype(int)]

    # video 0 (class 0): 3 of 6 windows right; video 1 (class 1): its one window wrong
    assert phase_accuracy(windows, [long, short], [0, 1], 20) == {"accuracy": 0.25, "windows": 7}
    assert asked == [(0, [0, 1, 2, 3, 4, 5]), (100, [0])]
    assert phase_accuracy(windows, [long, short], [1, 0], 20)["accuracy"] == 0.75
    rng = np.random.default_rng(0)
    kept = without_frames(np.arange(1000)[:, None], 0.3, rng)
    assert 650 < len(kept) < 750 and np.all(np.diff(kept[:, 0]) > 0)  # order kept
    assert len(without_frames(np.arange(5)[:, None], 1.0, rng)) == 1


def test_early_stopping_stops_patience_epochs_after_the_best_and_keeps_its_weights():
    """On labels that are pure noise the validation loss stops improving at once: training
    ends `patience` epochs after the best epoch, long before `epochs`, and the head returned
    scores the validation windows exactly as well as the best epoch did."""

    from rich.console import Console

    from training.train import _split, train_head

    rng = np.random.default_rng(0)
    per_video = [rng.normal(0, 1, (24, 6)).astype(np.float32) for _ in range(32)]
    labels = [i % 4 for i in range(32)]
    recipe = replace(  # 6 numbers a frame: no thumbnails to read the motion from
        DEFAULT,
        epochs=80,
        early_stopping_patience=4,
        early_stopping_start=0,
        windows_per_video=2,
        head=replace(DEFAULT.head, motion=0, motion_scores=False),
    )
    windows = make_windows(per_video, labels, recipe)
    result = train_head(windows, 4, recipe, Console(quiet=True))
    summary = result.history
    assert summary["epochs_run"] < recipe.epochs
    assert summary["epochs_run"] == summary["best_epoch"] + recipe.early_stopping_patience
    # the weights kept are the best epoch's: its validation loss, recomputed here
    _, val = _split(windows, recipe)
    probs = np.asarray(result.head.predict([val.features, val.masks], verbose=0))
    loss = -np.log(probs[np.arange(len(val)), val.targets]).mean()
    assert loss == pytest.approx(summary["best"]["val_loss"], abs=1e-3)


def _thumbnail_recipe(epochs: int):
    """The default recipe on 10-frame windows of 6 numbers and an 8 x 8 thumbnail a frame,
    2 windows a video, no early stopping."""
    head = replace(DEFAULT.head, motion=8)
    return replace(
        DEFAULT,
        window=10,
        epochs=epochs,
        early_stopping_patience=None,
        windows_per_video=2,
        stride=2,
        head=head,
    )


def _moving_thumbnail_videos() -> tuple[list[np.ndarray], list[int]]:
    """32 videos of 12 frames: 6 numbers, then an 8 x 8 thumbnail moving left or right; 4
    classes: which way it moves, and whether the numbers are raised."""
    rng = np.random.default_rng(1)
    texture = rng.normal(0, 1, (32, 40, 40)).astype(np.float32)
    per_video, labels = [], []
    for video in range(32):
        way = 1 if video % 2 else -1
        thumbs = [texture[video, 8:16, 16 + way * t : 24 + way * t].ravel() for t in range(12)]
        looks = rng.normal(0, 1, (12, 6)) + (video % 4 >= 2)
        per_video.append(np.concatenate([looks, np.stack(thumbs)], 1).astype(np.float32))
        labels.append(video % 4)
    return per_video, labels


def test_training_reads_the_motion_computed_once_and_learns_what_it_learnt_in_graph(
    monkeypatch,
):
    """The default head trains through its twin (`training_twin`: the motion's numbers
    computed once per window, not at every step): the same epochs, losses and weights as
    training the head that computes them in its graph, and the head kept scores the
    validation windows as the best epoch did."""

    from rich.console import Console

    import training.train
    from training.train import _split, train_head

    per_video, labels = _moving_thumbnail_videos()
    recipe = _thumbnail_recipe(epochs=6)
    windows = make_windows(per_video, labels, recipe)

    def trained():
        result = train_head(windows, 4, recipe, Console(quiet=True))
        return result.history, result.head.get_weights(), result.head

    summary, weights, head = trained()
    monkeypatch.setattr(training.train, "training_twin", lambda model, config: None)
    in_graph, in_graph_weights, _ = trained()
    assert summary["best_epoch"] == in_graph["best_epoch"]
    for key, value in in_graph["best"].items():
        assert summary["best"][key] == pytest.approx(value, abs=2e-3), key
    for got, expected in zip(weights, in_graph_weights, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
    _, val = _split(windows, recipe)
    probs = np.asarray(head.predict([val.features, val.masks], verbose=0))
    loss = -np.log(probs[np.arange(len(val)), val.targets]).mean()
    assert loss == pytest.approx(summary["best"]["val_loss"], abs=1e-3)


def test_the_motion_scores_can_be_added_after_the_gru_is_trained(monkeypatch):
    """`Recipe.motion_scores_after` (`--motion-parts`): the GRU trains as beside scores of 0
    (the same epochs, losses and weights as a head whose fitted scores were set to 0), and
    the head it gives carries the scores as they were fitted; trained beside them, the GRU
    learns otherwise."""
    from rich.console import Console

    import training.train
    from realtime.head.config import MOTION_SCORES_LAYER
    from training.train import train_head

    per_video, labels = _moving_thumbnail_videos()
    beside = _thumbnail_recipe(epochs=2)
    after = replace(beside, motion_scores_after=True)
    windows = make_windows(per_video, labels, beside)

    def scores(head):
        return head.get_layer(MOTION_SCORES_LAYER).get_weights()

    def others(head):
        return [
            w
            for layer in head.layers
            if layer.name != MOTION_SCORES_LAYER
            for w in layer.get_weights()
        ]

    quiet = Console(quiet=True)
    kept = train_head(windows, 4, after, quiet)
    trained_beside = train_head(windows, 4, beside, quiet)
    fitted = []
    real = training.train.fit_head_input

    def at_zero(model, *args, **kwargs):  # fitted as always, then set to 0 for good
        numbers = real(model, *args, **kwargs)
        layer = model.get_layer(MOTION_SCORES_LAYER)
        fitted.append(layer.get_weights())
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
        return numbers

    monkeypatch.setattr(training.train, "fit_head_input", at_zero)
    zero = train_head(windows, 4, beside, quiet)
    assert kept.history["best_epoch"] == zero.history["best_epoch"]
    for key, value in zero.history["best"].items():
        assert kept.history["best"][key] == pytest.approx(value, abs=1e-6), key
    for got, expected in zip(others(kept.head), others(zero.head), strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert all(not w.any() for w in scores(zero.head))
    assert np.abs(fitted[0][0]).sum() > 0
    for got, expected in zip(scores(kept.head), fitted[0], strict=True):
        np.testing.assert_array_equal(got, expected)
    for got, expected in zip(scores(trained_beside.head), fitted[0], strict=True):
        np.testing.assert_array_equal(got, expected)  # the same fit either way
    assert not all(
        np.allclose(a, b, atol=1e-4)
        for a, b in zip(others(kept.head), others(trained_beside.head), strict=True)
    )


def test_each_member_trains_on_its_own_videos_and_is_validated_on_the_rest(monkeypatch):
    """A head of members (`HeadConfig.members`) trains them side by side, each holding out its
    own groups (`held_out`: seed + member; the first member the single head's split): every
    window weighs 0 in the training loss of the members that hold it out and 1 in their
    validation loss, so the best epoch's validation loss is each member's mean loss on its
    own held-out windows, averaged over the members."""
    import keras
    from rich.console import Console

    from realtime.head.fitting import window_numbers
    from realtime.head.keras import split_features, training_twin
    from training.train import _split, held_out, train_head

    rng = np.random.default_rng(4)
    per_video, labels = [], []
    for video in range(32):  # 6 numbers, then an 8 x 8 thumbnail, 4 classes by their looks
        looks = rng.normal(0, 1, (12, 6)) + (video % 4)
        thumbs = rng.random((12, 64))
        per_video.append(np.concatenate([looks, thumbs], 1).astype(np.float32))
        labels.append(video % 4)
    recipe = _thumbnail_recipe(epochs=3)
    recipe = replace(recipe, head=replace(recipe.head, members=3))
    windows = make_windows(per_video, labels, recipe, [f"g{v // 2}" for v in range(32)])
    held = np.stack([held_out(windows, recipe, m) for m in range(3)])
    _, first = _split(windows, recipe)
    assert held[0].sum() == len(first) and set(windows.videos[held[0]]) == set(first.videos)
    assert all((held[i] != held[j]).any() for i, j in ((0, 1), (0, 2), (1, 2)))
    for member in held:  # whole groups, a quarter of each class's
        assert not set(windows.groups[member]) & set(windows.groups[~member])
        for c in range(4):
            assert member[windows.targets == c].mean() == pytest.approx(0.25)
    seen = {}
    fit = keras.Model.fit

    def spy(model, *args, **kwargs):
        seen.update(kwargs)
        return fit(model, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    result = train_head(windows, 4, recipe, Console(quiet=True))
    for weights, member in zip(seen["sample_weight"], held, strict=True):
        np.testing.assert_array_equal(weights, ~member)
    for weights, member in zip(seen["validation_data"][2], held, strict=True):
        np.testing.assert_array_equal(weights, member)
    summary = result.history
    assert summary["member_validation_windows"] == [int(m.sum()) for m in held]
    plain, maps, thumbs = split_features(windows.features, recipe.head)
    numbers = window_numbers(maps, windows.masks, recipe.head, thumbs)
    each = training_twin(result.head, recipe.head).predict(
        [plain, windows.masks, numbers], verbose=0
    )
    right = np.arange(len(windows)), windows.targets
    losses = [-np.log(p[right])[m].sum() / len(windows) for p, m in zip(each, held, strict=True)]
    assert np.mean(losses) == pytest.approx(summary["best"]["val_loss"], abs=2e-3)
    head = np.asarray(result.head.predict([windows.features, windows.masks], verbose=0))
    np.testing.assert_allclose(head, np.mean(each, axis=0), atol=1e-5)


def test_training_holds_out_recordings_not_their_clips():
    """The groups `make_windows` is given reach the validation split and the motion scores'
    calibration. Each class's clips all cut from one recording that pans the class's way
    (held out clip by clip, a clip's siblings would vouch for the motion: trusted at 0.8-1
    by `calibrate_motion_scores`, as its own test shows): as one group per class, nothing can
    be held out, so no validation and no trust in the motion (its scores exactly 0)."""
    from rich.console import Console

    from realtime.head.config import MOTION_SCORES_LAYER
    from training.train import train_head

    rng = np.random.default_rng(3)
    texture = rng.normal(0, 1, (32, 48, 48)).astype(np.float32)
    ways = [(1, 0), (-1, 0), (0, 1), (0, -1)]
    per_video, labels = [], []
    for clip in range(32):  # 6 numbers, then an 8 x 8 thumbnail panning its class's way
        c = clip % 4
        dx, dy = ways[c]
        thumbs = [
            texture[clip, 16 + dy * t : 24 + dy * t, 16 + dx * t : 24 + dx * t].ravel()
            for t in range(12)
        ]
        looks = rng.normal(0, 1, (12, 6))
        per_video.append(np.concatenate([looks, np.stack(thumbs)], 1).astype(np.float32))
        labels.append(c)
    recipe = _thumbnail_recipe(epochs=1)
    assert recipe.head.motion_scores and recipe.stratified_validation
    windows = make_windows(per_video, labels, recipe, ["one recording"] * 32)
    result = train_head(windows, 4, recipe, Console(quiet=True))
    kernel, bias = result.head.get_layer(MOTION_SCORES_LAYER).get_weights()
    assert not kernel.any() and not bias.any()
    summary = result.history
    assert summary["groups"] == 4 and summary["validation_windows"] == 0


def test_the_command_line_sets_the_members(capsys):
    """`--members N` gives any recipe's head N members, with whatever else its flags set;
    without it the recipe's head is unchanged; 0 is refused as a bad input (exit 2)."""
    from training.cli import _recipe, build_parser

    parser = build_parser()

    def head(*flags):
        return _recipe(parser.parse_args(["train", "--data", "d", "--out", "m", *flags])).head

    assert head() == DEFAULT.head and DEFAULT.head.members == 1
    assert head("--members", "3") == replace(DEFAULT.head, members=3)
    assert head("--recipe", "seed", "--members", "2") == replace(SEED.head, members=2)
    assert head("--members", "3", "--no-motion") == replace(
        DEFAULT.head, motion=0, motion_scores=False, members=3
    )
    with pytest.raises(SystemExit) as stop:
        head("--members", "0")
    assert stop.value.code == 2 and "--members" in capsys.readouterr().err
