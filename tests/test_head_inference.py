"""The NumPy head and its per-frame stream equal the Keras model they read their weights from,
for every head input (raw features, and appearance+change folded into the projections)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from realtime.backbones.base import BackboneIdentity
from realtime.core.errors import InputError
from realtime.head.classifier import ActionClassifier, KerasHeadStream
from realtime.head.config import (
    MOTION_SCORES_LAYER,
    SEED_HEAD,
    WINDOW_INPUT_LAYER,
    ChangeBasis,
    ChangeReference,
    HeadConfig,
    HeadInput,
)
from realtime.head.fitting import fit_window_input
from realtime.head.keras import (
    build_head,
    fit_head_input,
    load_keras_head,
    split_features,
    training_twin,
)
from realtime.head.modeldir import KERAS_FILE, ModelInfo, save_model_dir
from realtime.head.numpyhead import HeadStream, NumpyHead, UnsupportedHead
from realtime.head.window import FeatureWindow

FEATURES = 64  # small features keep the test fast; the math is the same for 2048
CHANGE = HeadInput.APPEARANCE_CHANGE
CHANGE_HEAD = HeadConfig(input=CHANGE, appearance_dims=12, change_dims=8, appearance_offset=1.0)
MEAN_HEAD = HeadConfig(
    input=CHANGE, appearance_dims=12, change_dims=8, change_reference=ChangeReference.MEAN
)
CHANGES_HEAD = HeadConfig(
    input=CHANGE,
    appearance_dims=12,
    change_dims=8,
    change_reference=ChangeReference.MEAN,
    change_basis=ChangeBasis.CHANGES,
)

# the last 3 x 3 x 4 = 36 of the 64 features are a map: the head reads where it changes
WHERE_HEAD = dataclasses.replace(MEAN_HEAD, where_trend=True, map_shape=(3, 3, 4))
# and how far the picture moved (the last 4 x 4 x 2 = 32: 2 x 2 inner positions)
SHIFT_HEAD = dataclasses.replace(WHERE_HEAD, where_shift=True, map_shape=(4, 4, 2))
# the last 5 x 5 = 25 are a thumbnail: the head reads how far the picture moved
MOTION_HEAD = dataclasses.replace(MEAN_HEAD, motion=5)
# and both: 32 numbers of map, then the thumbnail's 16 (the transform reads the first 16)
MAP_MOTION_HEAD = dataclasses.replace(SHIFT_HEAD, motion=4)
# the motion's 4 numbers read by the class scores instead of the first GRU
MOTION_SCORES_HEAD = dataclasses.replace(MOTION_HEAD, motion_scores=True)
MAP_MOTION_SCORES_HEAD = dataclasses.replace(MAP_MOTION_HEAD, motion_scores=True)
# and each quadrant's too, 20 numbers to the scores: an 8 x 8 thumbnail (4 x 4 quadrants; a
# 3 x 3 one's Hann window keeps one pixel, no peak), on 96 features (`_size`)
QUADRANTS_HEAD = dataclasses.replace(MOTION_SCORES_HEAD, motion=8, motion_quadrants=True)
# members: stacks side by side, each its own weights, their probabilities averaged
MEMBERS_HEAD = HeadConfig(members=3)
MOTION_SCORES_MEMBERS_HEAD = dataclasses.replace(MOTION_SCORES_HEAD, members=3)
MAP_MOTION_MEMBERS_HEAD = dataclasses.replace(MAP_MOTION_HEAD, gru_units=(6, 5, 4), members=2)


def _size(head: HeadConfig) -> int:
    """The features of the tests' heads: 96 for the quadrants' thumbnail, else FEATURES."""
    return FEATURES + 32 * head.motion_quadrants


def _fit_on_windows(model, head: HeadConfig, window: int, seed: int):
    """Fit what `model` leaves to fitting on 40 drifting windows of 1..window valid frames, as
    training does; a head whose scores read the motion is fitted on labelled videos (one a
    window, 5 classes) and then given scores drawn at random, so that any motion counts.
    (windows (float64), masks, classes, `fit_head_input`'s window numbers)"""
    size = _size(head)
    rng = np.random.default_rng(seed)
    drift = rng.normal(0, 1, (40, 1, size)) * np.linspace(0, 1, window)[None, :, None]
    windows = rng.normal(1.0, 1.0, (40, window, size)) + 3 * drift
    masks = np.arange(window)[None] < rng.integers(1, window + 1, 40)[:, None]
    targets = np.arange(40) % 5
    if not head.motion_scores:
        return windows, masks, targets, fit_head_input(model, head, windows, masks)
    numbers = fit_head_input(model, head, windows, masks, np.arange(40), targets)
    scores = model.get_layer(MOTION_SCORES_LAYER)
    scores.set_weights([rng.normal(0, 1, w.shape) for w in scores.get_weights()])
    return windows, masks, targets, numbers


def _classifier(path, window=20, head=SEED_HEAD, seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    size = _size(head)
    model = build_head(window, size, 5, head)
    if head.input is CHANGE:  # statistics of some windows, as training fits them
        _fit_on_windows(model, head, window, seed)
    info = ModelInfo(
        labels=list("abcde"),
        window=window,
        image_size=224,
        backbone=BackboneIdentity("test", size, 224, motion=head.motion or None),
        head=head,
    )
    save_model_dir(path, model, info)
    return ActionClassifier(path)


def _features(rng, n, scale=1.0, size=FEATURES):
    return (rng.normal(0, scale, (n, size))).astype(np.float32)


@pytest.mark.parametrize(
    "head",
    [
        HeadConfig(),
        HeadConfig(gru_units=(12,), dropout=0.0, dense_units=4),
        HeadConfig(gru_units=(16, 8, 4), dropout=0.2, dense_units=6),
        CHANGE_HEAD,
        MEAN_HEAD,
        CHANGES_HEAD,
        HeadConfig(
            gru_units=(24,), dense_units=4, input=CHANGE, appearance_dims=80, change_dims=4
        ),  # more than D: zero columns
        WHERE_HEAD,
        dataclasses.replace(WHERE_HEAD, gru_units=(12, 8, 6)),
        SHIFT_HEAD,
        MOTION_HEAD,
        MAP_MOTION_HEAD,
        MOTION_SCORES_HEAD,
        MAP_MOTION_SCORES_HEAD,
        QUADRANTS_HEAD,
        MEMBERS_HEAD,
        MOTION_SCORES_MEMBERS_HEAD,
        MAP_MOTION_MEMBERS_HEAD,
    ],
    ids=[
        "seed",
        "one-gru",
        "three-grus",
        "appearance+change",
        "change-from-mean",
        "change-directions-from-changes",
        "appearance+change-wide",
        "where-it-changes",
        "where-it-changes-three-grus",
        "where-it-changes-and-how-far-it-moved",
        "how-far-its-pixels-moved",
        "all-three",
        "how-far-its-pixels-moved-to-the-scores",
        "all-three-motion-to-the-scores",
        "the-motion-of-each-quadrant-to-the-scores",
        "seed-three-members",
        "motion-to-the-scores-three-members",
        "all-three-three-grus-two-members",
    ],
)
def test_numpy_head_equals_keras_for_full_partial_and_holey_masks(tmp_path, head):
    classifier = _classifier(tmp_path / "m", head=head, seed=1)
    assert classifier.numpy_head is not None
    rng = np.random.default_rng(0)
    n, window = 30, classifier.info.window
    features = rng.normal(0, 1.5, (n, window, _size(head))).astype(np.float32)
    mask = np.zeros((n, window), bool)
    for i in range(n - 4):
        mask[i, : 1 + i % window] = True  # partial windows (1..20 frames) and full ones
    mask[n - 4 :] = rng.random((4, window)) > 0.5  # masks with holes (first valid frame > 0)
    mask[n - 4, :3] = False
    mask[n - 1] = False  # nothing at all: the zero state
    expected = classifier.keras_probabilities(features, mask)
    got = classifier.predict_batch(features, mask)
    np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "head",
    [
        HeadConfig(),
        CHANGE_HEAD,
        MEAN_HEAD,
        WHERE_HEAD,
        SHIFT_HEAD,
        MOTION_HEAD,
        MAP_MOTION_HEAD,
        MOTION_SCORES_HEAD,
        QUADRANTS_HEAD,
        MOTION_SCORES_MEMBERS_HEAD,
        MAP_MOTION_MEMBERS_HEAD,
    ],
    ids=[
        "seed",
        "appearance+change",
        "change-from-mean",
        "where-it-changes",
        "how-far-it-moved",
        "how-far-its-pixels-moved",
        "all-three",
        "how-far-its-pixels-moved-to-the-scores",
        "the-motion-of-each-quadrant-to-the-scores",
        "motion-to-the-scores-three-members",
        "all-three-three-grus-two-members",
    ],
)
def test_stream_equals_keras_on_the_sliding_window_across_resets(tmp_path, head):
    """Each frame is projected once; as the window slides, its first frame (and its mean)
    changes, and the stream's steps (relative to that reference) still equal Keras
    recomputing the window."""
    classifier = _classifier(tmp_path / "m", head=head, seed=2)
    stream = classifier.stream()
    assert isinstance(stream, HeadStream)
    window = FeatureWindow(classifier.info.window, _size(head))
    rng = np.random.default_rng(5)
    seen = []
    for i, feature in enumerate(_features(rng, 50, scale=2.0, size=_size(head))):
        if i == 33:  # a gap in the source restarts the window
            stream.reset()
            window.reset()
        got = stream.push(feature)
        window.push(feature)
        features, mask = window.arrays()
        expected = classifier.keras_probabilities(features[None], mask[None])[0]
        np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)
        assert stream.fill == window.fill
        seen.append(stream.fill)
    assert max(seen) == classifier.info.window and 1 in seen[1:]


@pytest.mark.parametrize(
    "head",
    [
        HeadConfig(),
        MEAN_HEAD,
        SHIFT_HEAD,
        MOTION_HEAD,
        MOTION_SCORES_HEAD,
        MAP_MOTION_SCORES_HEAD,
        QUADRANTS_HEAD,
        MOTION_SCORES_MEMBERS_HEAD,
    ],
    ids=[
        "seed",
        "change-from-mean",
        "how-far-it-moved",
        "motion",
        "motion-scores",
        "all-three",
        "quadrants",
        "motion-scores-three-members",
    ],
)
def test_a_video_s_windows_are_the_streams_probabilities(tmp_path, head):
    """`predict_windows` (what evaluation classifies every window of a test video with)
    projects and links each frame once and slices the windows out: the probabilities the
    stream gives where each window is full (or at a short video's last frame), and those of
    the window classified on its own."""
    classifier = _classifier(tmp_path / "m", head=head, seed=3)
    window = classifier.info.window
    rng = np.random.default_rng(7)
    frames = _features(rng, 31, scale=2.0, size=_size(head))
    stream = classifier.stream()
    pushed = np.stack([stream.push(feature) for feature in frames])
    starts = [0, 3, 4, 11]
    got = classifier.predict_windows(frames, starts)
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got, pushed[[s + window - 1 for s in starts]], atol=1e-6, rtol=0)
    mask = np.ones((4, window), bool)
    alone = classifier.predict_batch(np.stack([frames[s : s + window] for s in starts]), mask)
    np.testing.assert_allclose(got, alone, atol=1e-5, rtol=0)
    short = classifier.predict_windows(frames[:7], [0])  # a video shorter than a window
    np.testing.assert_allclose(short[0], pushed[6], atol=1e-6, rtol=0)
    ends = classifier.predict_windows(frames, [25])  # a window running off the end
    np.testing.assert_allclose(ends[0], classifier.predict(frames[25:], np.ones(6, bool)), 1e-5)


@pytest.mark.parametrize(
    "head",
    [SHIFT_HEAD, MOTION_HEAD, MOTION_SCORES_HEAD, MAP_MOTION_SCORES_HEAD, QUADRANTS_HEAD],
    ids=["how-far-it-moved", "motion", "motion-scores", "all-three", "quadrants"],
)
def test_training_the_twin_trains_the_head_on_numbers_computed_once(head):
    """Training reads each window's numbers (computed once, `fit_head_input`) through a twin of
    the head sharing its layers: the twin classifies as the head does from the whole features,
    and a training step on the twin moves the head with it."""
    import keras

    keras.utils.set_random_seed(0)
    model = build_head(20, _size(head), 5, head)
    windows, masks, targets, numbers = _fit_on_windows(model, head, 20, seed=0)
    windows = windows.astype(np.float32)
    twin = training_twin(model, head)
    plain = split_features(windows, head)[0]
    given = [plain, masks, numbers]
    before = model.predict([windows, masks], verbose=0)
    np.testing.assert_allclose(twin.predict(given, verbose=0), before, atol=1e-5, rtol=0)
    twin.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    twin.fit(given, targets, epochs=2, batch_size=8, verbose=0)
    after = model.predict([windows, masks], verbose=0)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(twin.predict(given, verbose=0), after, atol=1e-5, rtol=0)


@pytest.mark.parametrize("head", [SEED_HEAD, MEAN_HEAD], ids=["raw", "appearance+change"])
def test_a_head_without_numbers_about_the_whole_window_trains_as_it_is(head):
    assert training_twin(build_head(20, FEATURES, 5, head), head) is None


@pytest.mark.parametrize(
    "head",
    [MEMBERS_HEAD, MOTION_SCORES_MEMBERS_HEAD],
    ids=["raw-three-members", "motion-scores-three-members"],
)
def test_members_train_each_on_its_own_loss_and_the_head_is_their_mean(head):
    """A head of members trains through a twin giving each member's probabilities (each is
    fitted on its own loss), whose mean is the head's; the members start from different
    weights, and a step on the twin moves the head with it."""
    import keras

    keras.utils.set_random_seed(0)
    model = build_head(20, _size(head), 5, head)
    windows, masks, targets, numbers = _fit_on_windows(model, head, 20, seed=0)
    windows = windows.astype(np.float32)
    twin = training_twin(model, head)
    given = (
        [windows, masks] if numbers is None else [split_features(windows, head)[0], masks, numbers]
    )
    before = model.predict([windows, masks], verbose=0)
    each = twin.predict(given, verbose=0)
    assert len(each) == 3
    np.testing.assert_allclose(np.mean(each, axis=0), before, atol=1e-5, rtol=0)
    assert min(np.abs(each[i] - each[j]).max() for i, j in ((0, 1), (0, 2), (1, 2))) > 1e-3
    twin.compile(optimizer=keras.optimizers.SGD(0.5), loss=["sparse_categorical_crossentropy"] * 3)
    twin.fit(given, [targets] * 3, epochs=2, batch_size=8, verbose=0)
    after = model.predict([windows, masks], verbose=0)
    assert np.abs(after - before).max() > 1e-3
    np.testing.assert_allclose(np.mean(twin.predict(given, verbose=0), axis=0), after, atol=1e-5)


def test_every_member_trains_on_offset_looks():
    """The training-only offset of a window's looks (`WindowOffset`) reaches every member
    while training (dropout off here: the offset is all that differs from inference)."""
    import keras

    head = dataclasses.replace(CHANGE_HEAD, appearance_offset=3.0, dropout=0.0, members=3)
    keras.utils.set_random_seed(0)
    model = build_head(20, FEATURES, 5, head)
    windows, masks, targets, _ = _fit_on_windows(model, head, 20, seed=0)
    twin = training_twin(model, head)
    given = [windows.astype(np.float32), masks]
    trained = [np.asarray(x) for x in twin(given, training=True)]
    served = [np.asarray(x) for x in twin(given, training=False)]
    for member, (a, b) in enumerate(zip(trained, served, strict=True)):
        assert np.abs(a - b).max() > 1e-3, member


def test_unsupported_heads_fall_back_to_keras(tmp_path):
    import keras

    features = keras.Input((20, FEATURES))
    x = keras.layers.GRU(6, reset_after=False)(features)
    model = keras.Model(features, keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(UnsupportedHead):
        NumpyHead.from_keras(model)
    classifier = _classifier(tmp_path / "m")
    classifier.numpy_head = None  # as for a head NumpyHead cannot read
    stream = classifier.stream()
    assert isinstance(stream, KerasHeadStream)
    rng = np.random.default_rng(1)
    feature = _features(rng, 1)[0]
    probs = stream.push(feature)
    mask = np.zeros(20, bool)
    mask[0] = True
    padded = np.zeros((20, FEATURES), np.float32)
    padded[0] = feature
    numpy_path = ActionClassifier(tmp_path / "m")  # the same weights through NumpyHead
    assert numpy_path.numpy_head is not None
    np.testing.assert_allclose(probs, numpy_path.predict(padded, mask), atol=2e-6)
    frames = _features(rng, 24)  # evaluation's windows of a video through Keras
    np.testing.assert_allclose(
        classifier.predict_windows(frames, [0, 4, 10]),
        numpy_path.predict_windows(frames, [0, 4, 10]),
        atol=2e-6,
    )


def test_weights_that_do_not_fit_the_metadata_are_one_input_error(tmp_path):
    import json

    from realtime.core.errors import InputError

    _classifier(tmp_path / "m")
    meta_path = tmp_path / "m" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["head"]["gru_units"] = [12, 8]  # the weights are GRU(16) -> GRU(8)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InputError) as caught:
        ActionClassifier(tmp_path / "m")
    message = str(caught.value)
    assert "\n" not in message and "head.weights.h5" in message
    assert "layer gru_0 holds [(64, 48), (16, 48), (2, 48)]" in message
    assert "needs [(64, 36), (12, 36), (2, 36)]" in message


def test_a_classifier_runs_without_tensorflow(tmp_path):
    """The runtime reads head.weights.h5 itself: TensorFlow is imported only to train or for
    a head NumPy cannot run (checked in a fresh interpreter)."""
    import subprocess
    import sys

    _classifier(tmp_path / "m", head=MEAN_HEAD)
    code = f"""
import sys, numpy as np
from realtime.head.classifier import ActionClassifier
c = ActionClassifier({str(tmp_path / "m")!r})
p = c.stream().push(np.ones({FEATURES}, np.float32))
print(round(float(p.sum()), 4), "tensorflow" in sys.modules, "keras" in sys.modules)
"""
    from tests.conftest import ROOT

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.stdout.split() == ["1.0", "False", "False"], done.stderr


@pytest.mark.parametrize("head", [SEED_HEAD, CHANGE_HEAD], ids=["raw", "appearance+change"])
def test_the_keras_file_beside_the_weights_loads_in_keras_and_classifies_alike(tmp_path, head):
    classifier = _classifier(tmp_path / "m", head=head, seed=4)
    keras_head = load_keras_head(tmp_path / "m")  # the head's own layers come back too
    rng = np.random.default_rng(5)
    features = rng.normal(0, 1, (3, 20, FEATURES)).astype(np.float32)
    masks = np.arange(20)[None] < np.array([[20], [7], [1]])
    expected = classifier.predict_batch(features, masks)
    got = keras_head([features, masks], training=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_keras_file_that_would_run_code_is_refused(tmp_path):
    import keras

    (tmp_path / "m").mkdir()
    inputs = keras.Input((4,))
    trap = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    trap.save(str(tmp_path / "m" / KERAS_FILE))
    with pytest.raises(InputError) as caught:
        load_keras_head(tmp_path / "m")
    assert str(caught.value).startswith(f"cannot load {tmp_path / 'm' / KERAS_FILE} safely (")
    assert "Lambda" in str(caught.value) and "\n" not in str(caught.value)


def test_training_fits_the_change_directions_the_head_asks_for():
    rng = np.random.default_rng(4)
    windows = rng.normal(0, 1, (30, 20, FEATURES)) * np.linspace(3, 0.1, FEATURES)
    windows += (
        rng.normal(0, 0.3, (30, 20, 1))
        * np.linspace(0, 1, 20)[None, :, None]
        * rng.normal(0, 1, FEATURES)
    )  # a change within windows, along one direction
    masks = np.ones((30, 20), bool)
    videos, targets = np.arange(30) // 2, np.arange(30) // 2 % 5  # 15 videos, 5 classes
    # more change columns than appearance ones, so that `both` and `discriminant` differ from
    # the other two
    heads = [dataclasses.replace(MEAN_HEAD, change_dims=16, change_basis=b) for b in ChangeBasis]
    for head in heads:
        model = build_head(20, FEATURES, 5, head)
        fit_head_input(model, head, windows, masks, videos, targets, regions=4)
        got = model.get_layer(WINDOW_INPUT_LAYER).get_weights()
        for basis in ChangeBasis:  # `quadrants` reads the features as 4 parts of 16
            expected = fit_window_input(
                windows, masks, head.dims, ChangeReference.MEAN, basis, videos, targets, 4
            )
            same = np.allclose(got[2], expected[2], atol=1e-6)
            assert same is (basis is head.change_basis), (head, basis)
