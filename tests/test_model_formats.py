"""Model directories written by earlier versions keep loading and classifying as they did.

- `tests/fixtures/model_format1/` was written by the code of commit abafa53 (metadata format 1:
  the Keras example's head on raw features, no input transform): a small head (24-d features,
  4 classes) trained briefly so that its probabilities are far from uniform.
- `tests/fixtures/model_format2_first/` was written by the code of commit 17d9944 with
  `tests/fixtures/make_model_fixture.py` (format 2, `appearance+change` with the change
  measured against the window's first frame, before `change_reference` existed): 24-d
  features, 4 classes.
- `tests/fixtures/model_format2_mean/`: the same script at commit 0287fde with the change
  measured against the window's mean (the default recipe's head).

`*_expected.npz` holds inputs and the probabilities that code gave for them (windows with
full, partial and holey masks through the Keras model and the NumPy head, and a per-frame
stream with a reset). Nothing here is recomputed with the code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FORMATS = {"model_format1": 1, "model_format2_first": 2, "model_format2_mean": 2}


@pytest.fixture(scope="module", params=sorted(FORMATS))
def fixture_name(request):
    return request.param


@pytest.fixture(scope="module")
def expected(fixture_name):
    with np.load(FIXTURES / f"{fixture_name}_expected.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture  # per test: loading is cheap, and mutmut sees which tests reach the loader
def classifier(fixture_name):
    from realtime.head.classifier import ActionClassifier

    return ActionClassifier(FIXTURES / fixture_name)


def test_old_metadata_still_reads(classifier, fixture_name):
    from realtime.head.config import ChangeReference, HeadInput

    info = classifier.info
    assert info.format_version == FORMATS[fixture_name]
    assert info.labels == ["alpha", "beta", "gamma", "delta"]
    assert info.window == 20 and info.feature_size == 24
    head = info.head
    if fixture_name == "model_format1":
        assert head.input is HeadInput.RAW
    elif fixture_name == "model_format2_first":  # before the field: against the first frame
        assert head.input is HeadInput.APPEARANCE_CHANGE
        assert head.change_reference is ChangeReference.FIRST
        assert "change_reference" not in (FIXTURES / fixture_name / "metadata.json").read_text()
    else:
        assert head.input is HeadInput.APPEARANCE_CHANGE
        assert head.change_reference is ChangeReference.MEAN
    assert head.dims == ((0, 0) if head.input is HeadInput.RAW else (8, 8))


def test_old_windows_give_the_same_probabilities(classifier, expected):
    got = classifier.predict_batch(expected["features"], expected["masks"])
    np.testing.assert_allclose(got, expected["probs"], atol=1e-6, rtol=0)
    assert len(set(got.argmax(1))) == 4  # the fixture exercises every class
    one = classifier.predict(expected["features"][0], expected["masks"][0])
    np.testing.assert_allclose(one, expected["probs"][0], atol=1e-6, rtol=0)


def test_old_windows_through_keras_give_the_same_probabilities(classifier, expected):
    keras = classifier.keras_probabilities(expected["features"], expected["masks"])
    np.testing.assert_allclose(keras, expected["keras_probs"], atol=1e-6, rtol=0)


def test_old_stream_gives_the_same_probabilities(classifier, expected):
    stream = classifier.stream()
    reset_at = int(expected["stream_reset_at"])
    got = []
    for i, feature in enumerate(expected["stream_features"]):
        if i == reset_at:
            stream.reset()
        got.append(stream.push(feature))
    np.testing.assert_allclose(np.stack(got), expected["stream_probs"], atol=1e-6, rtol=0)
