"""The NumPy head and its per-frame stream equal the Keras model they read their weights from."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.model import (
    ActionClassifier,
    HeadStream,
    KerasHeadStream,
    ModelInfo,
    NumpyHead,
    UnsupportedHead,
    build_head,
    save_model_dir,
)
from realtime.window import FeatureWindow

FEATURES = 64  # small features keep the test fast; the math is the same for 2048


def _classifier(path, window=20, head=None, seed=0):
    import keras

    head = head or {"gru_units": [16, 8], "dropout": 0.4, "dense_units": 8}
    keras.utils.set_random_seed(seed)
    model = build_head(window, FEATURES, 5, **head)
    info = ModelInfo(
        labels=list("abcde"),
        window=window,
        image_size=224,
        backbone={"name": "test", "feature_size": FEATURES, "image_size": 224},
        head=head,
    )
    save_model_dir(path, model, info)
    return ActionClassifier(path)


def _features(rng, n, scale=1.0):
    return (rng.normal(0, scale, (n, FEATURES))).astype(np.float32)


@pytest.mark.parametrize(
    "head",
    [
        {"gru_units": [16, 8], "dropout": 0.4, "dense_units": 8},
        {"gru_units": [12], "dropout": 0.0, "dense_units": 4},
        {"gru_units": [16, 8, 4], "dropout": 0.2, "dense_units": 6},
    ],
)
def test_numpy_head_equals_keras_for_full_partial_and_holey_masks(tmp_path, head):
    classifier = _classifier(tmp_path / "m", head=head, seed=1)
    assert classifier.numpy_head is not None
    rng = np.random.default_rng(0)
    n, window = 30, classifier.info.window
    features = rng.normal(0, 1.5, (n, window, FEATURES)).astype(np.float32)
    mask = np.zeros((n, window), bool)
    for i in range(n - 4):
        mask[i, : 1 + i % window] = True  # partial windows (1..20 frames) and full ones
    mask[n - 4 :] = rng.random((4, window)) > 0.5  # masks with holes
    mask[n - 1] = False  # nothing at all: the zero state
    expected = classifier.keras_probabilities(features, mask)
    got = classifier.predict_batch(features, mask)
    np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def test_stream_equals_keras_on_the_sliding_window_across_resets(tmp_path):
    classifier = _classifier(tmp_path / "m", seed=2)
    stream = classifier.stream()
    assert isinstance(stream, HeadStream)
    window = FeatureWindow(classifier.info.window, FEATURES)
    rng = np.random.default_rng(5)
    seen = []
    for i, feature in enumerate(_features(rng, 50, scale=2.0)):
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


def test_unsupported_heads_fall_back_to_keras(tmp_path):
    import keras

    features = keras.Input((20, FEATURES))
    x = keras.layers.GRU(6, reset_after=False)(features)
    model = keras.Model(features, keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(UnsupportedHead):
        NumpyHead(model)
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
