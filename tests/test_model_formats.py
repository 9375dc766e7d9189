"""Model directories written by earlier versions keep loading and classifying as they did.

`tests/fixtures/model_format1/` was written by the code of commit abafa53 (metadata format 1:
the Keras example's head on raw features, no input transform): a small head (24-d features,
4 classes) trained briefly so that its probabilities are far from uniform.
`model_format1_expected.npz` holds inputs and the probabilities that code gave for them
(windows with full and partial masks through the Keras model and the NumPy head, and a
per-frame stream with a reset). Nothing here is recomputed with the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def expected():
    with np.load(FIXTURES / "model_format1_expected.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def classifier():
    from realtime.model import ActionClassifier

    return ActionClassifier(FIXTURES / "model_format1")


def test_format1_metadata_still_reads(classifier):
    info = classifier.info
    assert info.format_version == 1
    assert info.labels == ["alpha", "beta", "gamma", "delta"]
    assert info.window == 20 and info.feature_size == 24


def test_format1_windows_give_the_same_probabilities(classifier, expected):
    got = classifier.predict_batch(expected["features"], expected["masks"])
    np.testing.assert_allclose(got, expected["probs"], atol=1e-6, rtol=0)
    keras = classifier.keras_probabilities(expected["features"], expected["masks"])
    np.testing.assert_allclose(keras, expected["keras_probs"], atol=1e-6, rtol=0)
    assert len(set(got.argmax(1))) == 4  # the fixture exercises every class


def test_format1_stream_gives_the_same_probabilities(classifier, expected):
    stream = classifier.stream()
    reset_at = int(expected["stream_reset_at"])
    got = []
    for i, feature in enumerate(expected["stream_features"]):
        if i == reset_at:
            stream.reset()
        got.append(stream.push(feature))
    np.testing.assert_allclose(np.stack(got), expected["stream_probs"], atol=1e-6, rtol=0)
