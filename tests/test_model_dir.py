"""`realtime.head` without TensorFlow: the head's configuration as metadata.json carries it,
reading a model directory, the backbone check, the window references, the weights reader
and the streaming head over the committed fixtures (the mutation run uses these tests).

Expected values are written out by hand or come from the fixtures (probabilities computed by
earlier commits); nothing is recomputed with the function under test.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from realtime.backbones.base import BackboneIdentity
from realtime.core.errors import InputError
from realtime.head.classifier import ActionClassifier
from realtime.head.config import SEED_HEAD, ChangeBasis, ChangeReference, HeadConfig, HeadInput
from realtime.head.fitting import (
    class_trend_directions,
    fit_appearance_spread,
    fit_window_input,
    window_references,
    window_trends,
)
from realtime.head.modeldir import ModelInfo, check_compatible, read_model_info
from realtime.head.numpyhead import NumpyHead

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHANGE = HeadInput.APPEARANCE_CHANGE


# -- HeadConfig ----------------------------------------------------------------------------
def test_the_seed_head_is_the_examples():
    assert SEED_HEAD.gru_units == (16, 8) and SEED_HEAD.dropout == 0.4
    assert SEED_HEAD.dense_units == 8 and SEED_HEAD.input is HeadInput.RAW
    assert SEED_HEAD.describe(5) == (
        "raw -> GRU(16) -> GRU(8) -> Dropout(0.4) -> Dense(8, relu) -> Dense(5, softmax)"
    )


def test_a_raw_head_is_written_as_format_1_wrote_it():
    assert SEED_HEAD.as_dict() == {"gru_units": [16, 8], "dropout": 0.4, "dense_units": 8}


def test_an_appearance_change_head_round_trips_through_metadata():
    head = HeadConfig(
        gru_units=(12, 6), dropout=0.25, dense_units=5, input=CHANGE, appearance_dims=16,
        change_dims=8, appearance_offset=2.0, change_reference=ChangeReference.MEAN,
    )  # fmt: skip
    written = json.loads(json.dumps(head.as_dict()))
    assert written["input"] == "appearance+change" and written["change_reference"] == "mean"
    assert written["gru_units"] == [12, 6] and written["appearance_dims"] == 16
    assert HeadConfig.from_dict(written) == head
    assert head.dims == (16, 8)
    assert head.describe(3) == (
        "appearance+change (16 + 8, change from the mean) -> GRU(12) -> GRU(6) -> Dropout(0.25)"
        " -> Dense(5, relu) -> Dense(3, softmax)"
    )
    first = HeadConfig(input=CHANGE, appearance_dims=4, change_dims=2)
    assert first.describe(2).startswith("appearance+change (4 + 2) -> GRU(16)")


def test_metadata_written_before_a_field_reads_as_then():
    assert HeadConfig.from_dict(None) == SEED_HEAD
    assert HeadConfig.from_dict({"gru_units": [16, 8], "dropout": 0.4, "dense_units": 8}) == (
        SEED_HEAD
    )
    old = HeadConfig.from_dict(
        {"input": "appearance+change", "appearance_dims": 8, "change_dims": 8}
    )
    assert old.change_reference is ChangeReference.FIRST  # format 2 before change_reference
    assert old.change_basis is ChangeBasis.FRAMES  # and before change_basis
    assert HeadConfig.from_dict({"future_field": 1, "dropout": 0.5}).dropout == 0.5


def test_numbers_from_metadata_get_their_types():
    head = HeadConfig.from_dict(
        {"gru_units": [16.0, 8.0], "dropout": 0, "dense_units": 8.0, "input": "appearance+change",
         "appearance_dims": 4.0, "change_dims": 2.0, "appearance_offset": 1}
    )  # fmt: skip
    assert head.gru_units == (16, 8) and all(type(u) is int for u in head.gru_units)
    assert type(head.dense_units) is int and type(head.appearance_dims) is int
    assert type(head.change_dims) is int
    assert type(head.dropout) is float and type(head.appearance_offset) is float


@pytest.mark.parametrize(
    "values,error",
    [
        ({"input": "optical-flow"}, ValueError),
        ({"change_reference": "last"}, ValueError),
        ({"change_basis": "motion"}, ValueError),
        ({"gru_units": []}, ValueError),
        ({"gru_units": [16, 0]}, ValueError),
        ({"dense_units": 0}, ValueError),
        ({"input": "appearance+change", "appearance_dims": 0, "change_dims": 4}, ValueError),
        ({"input": "appearance+change", "appearance_dims": 4, "change_dims": 0}, ValueError),
    ],
)
def test_a_head_this_version_cannot_build_is_refused(values, error):
    with pytest.raises(error):
        HeadConfig.from_dict(values)


def test_enums_must_be_enums():
    with pytest.raises(TypeError):
        HeadConfig(input="raw")
    with pytest.raises(TypeError):
        HeadConfig(change_reference="first")
    with pytest.raises(TypeError, match="^HeadConfig.change_basis must be a ChangeBasis$"):
        HeadConfig(change_basis="changes")


def test_change_directions_fitted_on_changes_round_trip_and_say_so():
    head = HeadConfig(
        input=CHANGE, appearance_dims=16, change_dims=64, change_reference=ChangeReference.MEAN,
        change_basis=ChangeBasis.CHANGES,
    )  # fmt: skip
    written = json.loads(json.dumps(head.as_dict()))
    assert written["change_basis"] == "changes"
    assert HeadConfig.from_dict(written) == head
    assert head.describe(4).startswith(
        "appearance+change (16 + 64, change from the mean, change directions fitted on changes)"
        " -> GRU(16)"
    )
    assert "change_basis" not in SEED_HEAD.as_dict()  # a raw head: as format 1 wrote it
    both = dataclasses.replace(head, change_basis=ChangeBasis.BOTH)
    assert json.loads(json.dumps(both.as_dict()))["change_basis"] == "both"
    assert HeadConfig.from_dict(both.as_dict()) == both
    assert "mean, change directions of frames and of changes)" in both.describe(4)
    by_class = dataclasses.replace(head, change_basis=ChangeBasis.DISCRIMINANT)
    assert json.loads(json.dumps(by_class.as_dict()))["change_basis"] == "discriminant"
    assert HeadConfig.from_dict(by_class.as_dict()) == by_class
    assert "mean, change directions of frames and of classes)" in by_class.describe(4)
    where = dataclasses.replace(head, change_basis=ChangeBasis.QUADRANTS)
    assert json.loads(json.dumps(where.as_dict()))["change_basis"] == "quadrants"
    assert HeadConfig.from_dict(where.as_dict()) == where
    assert "mean, whole image's directions, then the quadrants' changes)" in where.describe(4)


# -- ModelInfo and reading a model directory -------------------------------------------------
def test_model_info_round_trips_and_says_what_runs():
    info = read_model_info(FIXTURES / "model_format2_mean")
    assert info.feature_size == 24 and info.sampling_fps == 25.0
    assert info.head.change_reference is ChangeReference.MEAN
    again = ModelInfo.from_dict({**json.loads(info.to_json()), "unknown": 1})
    assert again == info
    assert ModelInfo(["a"], 20, 224, BackboneIdentity("n", 8), sampling={}).sampling_fps is None
    assert (
        ModelInfo(["a"], 20, 224, BackboneIdentity("n", 8), sampling={"fps": 0}).sampling_fps
        is None
    )


@pytest.fixture
def model_copy(tmp_path) -> Path:
    return Path(shutil.copytree(FIXTURES / "model_format2_mean", tmp_path / "model"))


def input_error(path) -> str:
    with pytest.raises(InputError) as caught:
        read_model_info(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_missing_model_directory_says_how_to_make_one(tmp_path):
    message = input_error(tmp_path / "nowhere")
    assert message == (
        f"no trained model in {tmp_path / 'nowhere'}: produce one with `python -m training all` "
        "(downloads UCF101 top-5 and trains it) or pass --model DIR"
    )


def test_a_file_is_not_a_model_directory(model_copy):
    file = model_copy / "metadata.json"
    assert input_error(file) == f"--model must be a model directory, not a file: {file}"


def test_a_directory_without_metadata_or_weights_is_named(model_copy):
    (model_copy / "head.weights.h5").unlink()
    assert input_error(model_copy) == (
        f"{model_copy} has no head.weights.h5: the model directory is incomplete"
    )
    (model_copy / "metadata.json").unlink()
    assert input_error(model_copy) == (
        f"{model_copy} has no metadata.json: no trained model in {model_copy}: produce one with "
        "`python -m training all` (downloads UCF101 top-5 and trains it) or pass --model DIR"
    )


def test_broken_metadata_names_the_file(model_copy):
    path = model_copy / "metadata.json"
    path.write_text("{")
    assert input_error(model_copy).startswith(f"{path} is not valid JSON (")
    path.write_bytes(b"\xff\xfe{}")
    assert input_error(model_copy).startswith(f"{path} is not valid JSON (")
    path.write_text(json.dumps({"labels": []}))
    assert input_error(model_copy).startswith(f"{path}: labels must be a list of 1 to")


def test_a_head_this_version_cannot_build_is_one_line(model_copy):
    path = model_copy / "metadata.json"
    data = json.loads(path.read_text())
    data["head"]["input"] = "optical-flow"
    path.write_text(json.dumps(data))
    assert input_error(model_copy).startswith(f"{path}: this version cannot build its head (")


# -- the backbone check ----------------------------------------------------------------------
INFO = ModelInfo(["a", "b"], 20, 224, BackboneIdentity("mobilenet", 1024))


@pytest.mark.parametrize(
    "backbone,message",
    [
        (
            BackboneIdentity("mobilenet", 2048),
            "model M expects 1024-d features from mobilenet, but the backbone mobilenet gives "
            "2048-d; use the backbone the model was trained with",
        ),
        (
            BackboneIdentity("mobilenet", 1024, 299),
            "model M crops frames to 224x224, but the backbone mobilenet takes 299x299; its "
            "metadata.json is inconsistent",
        ),
        (
            BackboneIdentity("inception_v3", 1024),
            "model M was trained on backbone mobilenet, not inception_v3; pass the matching "
            "--backbone / --backbone-weights",
        ),
    ],
)
def test_a_head_refuses_features_of_another_backbone(backbone, message):
    with pytest.raises(InputError) as caught:
        check_compatible(INFO, backbone, Path("M"))
    assert str(caught.value) == message


@pytest.mark.parametrize("size", [None, 224])
def test_the_backbone_the_head_was_trained_on_passes(size):
    check_compatible(INFO, BackboneIdentity("mobilenet", 1024, size), Path("M"))


def test_a_backbone_identity_reads_and_writes_metadata_json_as_given():
    tflite = {"name": "tflite/0123", "feature_size": 1024, "image_size": 224, "file": "m.tflite",
              "sha256": "0123"}  # fmt: skip
    assert BackboneIdentity.from_dict(tflite).as_dict() == tflite
    assert list(BackboneIdentity.from_dict(tflite).as_dict()) == list(tflite)  # same order
    old = {"name": "inception_v3/imagenet", "feature_size": 2048.0}  # format 1: no image size
    assert BackboneIdentity.from_dict(old) == BackboneIdentity("inception_v3/imagenet", 2048)
    assert BackboneIdentity.from_dict(old).as_dict() == {
        "name": "inception_v3/imagenet",
        "feature_size": 2048,
    }


# -- what a window's change is measured against ----------------------------------------------
def test_window_references_are_the_first_valid_frame_or_the_valid_frames_mean():
    features = np.arange(2 * 4 * 2, dtype=np.float64).reshape(2, 4, 2)  # frame t of n: 8n+2t
    masks = np.array([[True, True, True, False], [False, True, False, True]])
    first = window_references(features, masks, ChangeReference.FIRST)
    np.testing.assert_array_equal(first, [[0, 1], [10, 11]])
    mean = window_references(features, masks, ChangeReference.MEAN)
    np.testing.assert_array_equal(mean, [[2, 3], [12, 13]])  # (0+2+4)/3, (10+14)/2
    empty = window_references(features, np.zeros((2, 4), bool), ChangeReference.MEAN)
    np.testing.assert_array_equal(empty, np.zeros((2, 2)))


# -- the weights reader and the streaming head over the fixtures -------------------------------
@pytest.fixture(params=["model_format1", "model_format2_first", "model_format2_mean"])
def fixture(request):
    with np.load(FIXTURES / f"{request.param}_expected.npz") as data:
        expected = {k: data[k] for k in data.files}
    return ActionClassifier(FIXTURES / request.param), expected


def test_the_fixtures_run_in_numpy_with_the_shapes_their_heads_have(fixture):
    classifier, _ = fixture
    head = classifier.numpy_head
    assert isinstance(head, NumpyHead) and classifier.labels == ["alpha", "beta", "gamma", "delta"]
    assert [g.units for g in head.grus] == [16, 8] and head.step_size == 48
    assert head.projection_size == (48 if classifier.info.head.input is HeadInput.RAW else 96)
    assert head.kernel.shape == (24, head.projection_size) and head.bias.shape == (
        head.projection_size,
    )


def test_windows_without_a_valid_frame_give_the_zero_states_probabilities(fixture):
    classifier, _ = fixture
    empty = classifier.predict(np.ones((20, 24), np.float32), np.zeros(20, bool))
    head = classifier.numpy_head
    x = np.zeros(8, np.float32)
    for kernel, bias, activation in head.dense:
        x = activation(x @ kernel + bias)
    np.testing.assert_allclose(empty, x, atol=1e-7)
    assert abs(float(empty.sum()) - 1) < 1e-6


def test_the_stream_holds_at_most_a_window_and_forgets_on_reset(fixture):
    classifier, expected = fixture
    stream = classifier.stream()
    fills = []
    for feature in expected["stream_features"][:25]:
        stream.push(feature)
        fills.append(stream.fill)
    assert fills == list(range(1, 21)) + [20] * 5
    stream.reset()
    assert stream.fill == 0
    alone = stream.push(expected["stream_features"][24])
    mask = np.zeros(20, bool)
    mask[0] = True
    window = np.zeros((20, 24), np.float32)
    window[0] = expected["stream_features"][24]
    np.testing.assert_allclose(alone, classifier.predict(window, mask), atol=1e-6)


def test_a_corrupt_weights_file_is_one_input_error(model_copy):
    (model_copy / "head.weights.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(InputError) as caught:
        ActionClassifier(model_copy)
    message = str(caught.value)
    assert message.startswith(f"cannot load {model_copy / 'head.weights.h5'} (")
    assert "\n" not in message


def test_a_weights_file_missing_a_layer_names_it(model_copy):
    import h5py

    with h5py.File(model_copy / "head.weights.h5", "a") as weights:
        del weights["layers/dense_1"]  # the softmax layer, `probs`
    with pytest.raises(InputError) as caught:
        ActionClassifier(model_copy)
    assert str(caught.value) == (
        f"cannot load {model_copy / 'head.weights.h5'}: layer probs holds nothing, the head in "
        "metadata.json needs [(8, 4), (4,)]"
    )


def test_softmax_and_sigmoid_stay_finite_on_large_inputs():
    from realtime.head.numpyhead import _relu, _sigmoid, _softmax

    p = _softmax(np.array([1000.0, 0.0, -1000.0], np.float32))
    np.testing.assert_allclose(p, [1, 0, 0], atol=1e-7)
    np.testing.assert_allclose(_softmax(np.zeros(4)), np.full(4, 0.25))
    np.testing.assert_allclose(_softmax(np.log([[1.0, 3.0]])), [[0.25, 0.75]])
    np.testing.assert_allclose(_sigmoid(np.array([0.0, 50.0, -50.0])), [0.5, 1, 0], atol=1e-12)
    np.testing.assert_array_equal(_relu(np.array([-2.0, 0.0, 3.0])), [0, 0, 3])


# -- what training fits (NumPy) ----------------------------------------------------------------
def test_window_input_statistics_are_principal_components_at_unit_scale():
    """fit_window_input: A and C span the top principal directions of the training frames
    (checked against an SVD), the centred looks and the changes since each window's first
    frame come out with unit standard deviation, and padding frames are ignored."""
    rng = np.random.default_rng(3)
    window, dims = 20, 6
    scales = np.linspace(5, 0.1, 64)  # a clear order of principal directions
    windows = rng.normal(0, 1, (60, window, 64)) * scales + 2.0
    masks = np.arange(window)[None] < rng.integers(2, window + 1, 60)[:, None]
    windows[~masks] = 1e6  # padding must not count
    mean, appearance, change = fit_window_input(windows, masks, (dims, dims - 2))
    frames = windows[masks]
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-5)
    _, _, vt = np.linalg.svd(frames - frames.mean(0), full_matrices=False)
    top = vt[:dims].T
    for part in (appearance, change):  # the SVD's top directions, in order
        unit = part / np.linalg.norm(part, axis=0)
        n = unit.shape[1]
        np.testing.assert_allclose(np.abs(unit.T @ top[:, :n]), np.eye(n), atol=1e-3)
    assert np.std((frames - mean) @ appearance) == pytest.approx(1.0, rel=1e-3)
    first = windows[:, :1]
    changes = (windows - first)[masks] @ change
    assert np.std(changes) == pytest.approx(1.0, rel=1e-3)
    # against the window's mean: the mean of its valid frames only, computed here by a loop
    _, _, from_mean = fit_window_input(windows, masks, (dims, dims - 2), ChangeReference.MEAN)
    deviations = np.concatenate(
        [w[m] - w[m].mean(axis=0) for w, m in zip(windows, masks, strict=True)]
    )
    assert np.std(deviations @ from_mean) == pytest.approx(1.0, rel=1e-3)
    np.testing.assert_allclose(
        from_mean / np.linalg.norm(from_mean, axis=0),
        change / np.linalg.norm(change, axis=0),
        atol=1e-6,
    )  # the same directions, another scale


def test_the_offsets_spread_is_how_videos_of_one_class_differ_in_looks():
    """Worked by hand: looks of class 0 videos (1, 0), (3, 0), (2, 0) and of class 1 (0, 1),
    (0, -1), (0, 0) deviate from their class means by unit steps along one axis each: a
    covariance of 2 / (6 videos - 2 classes) = 0.5 per axis, Cholesky factor sqrt(0.5) I.
    A class with one video, and padding frames, count for nothing."""
    looks = [(1, 0), (3, 0), (2, 0), (0, 1), (0, -1), (0, 0), (50, -50)]
    targets = np.array([0, 0, 0, 1, 1, 1, 2])
    features = np.zeros((7, 4, 3))
    features[:, :, :2] = np.array(looks, float)[:, None, :]
    features[:, :, 2] = 7.0  # a third feature the appearance part does not read
    masks = np.array([[True, True, False, False]] * 7)
    features[:, 2:] = 1e3  # padding
    window_input = [np.zeros(3), np.eye(3)[:, :2], np.eye(3)[:, :1]]
    spread = fit_appearance_spread(features, masks, np.arange(7), targets, window_input)
    np.testing.assert_allclose(spread, np.sqrt(0.5) * np.eye(2), rtol=1e-5)
    alone = fit_appearance_spread(features[6:], masks[6:], np.arange(1), targets[6:], window_input)
    np.testing.assert_array_equal(alone, np.zeros((2, 2)))
    assert alone.dtype == spread.dtype == np.float32


def test_change_directions_fitted_on_changes_find_what_moves_within_windows():
    """Videos differ a lot in how they look (3 directions, spread 10) and change a little
    within each window (one direction, spread 1): the frames' leading component is one of
    the looks, so `frames` puts C there; `changes` puts it on what moves, at unit scale."""
    rng = np.random.default_rng(5)
    size, window = 30, 12
    looks = np.linalg.qr(rng.standard_normal((size, 4)))[0]
    looks, moving = looks[:, :3], looks[:, 3]
    offsets = (rng.standard_normal((80, 3)) * 10.0) @ looks.T  # per video
    ramps = rng.uniform(-1, 1, 80)[:, None] * np.linspace(-1, 1, window)[None]  # per frame
    windows = (
        offsets[:, None, :] + ramps[..., None] * moving + rng.normal(0, 0.01, (80, window, size))
    )
    masks = np.arange(window)[None] < rng.integers(4, window + 1, 80)[:, None]
    windows[~masks] = 1e6  # padding must not count

    def cosine(column):
        return abs(float(column @ moving)) / float(np.linalg.norm(column))

    for reference in ChangeReference:
        _, _, on_frames = fit_window_input(windows, masks, (3, 1), reference)
        _, appearance, on_changes = fit_window_input(
            windows, masks, (3, 1), reference, ChangeBasis.CHANGES
        )
        assert cosine(on_frames[:, 0]) < 0.1
        assert cosine(on_changes[:, 0]) > 0.999
        assert max(cosine(column) for column in appearance.T) < 0.1  # looks stay the frames'
        references = window_references(windows, masks, reference)
        changes = (windows - references[:, None, :])[masks] @ on_changes
        assert np.std(changes) == pytest.approx(1.0, rel=1e-3)
        # `both`: the frames' 3 components first (the looks), then the changes' one, each
        # group at unit scale (one scale would leave the looks' columns near zero change)
        _, _, on_both = fit_window_input(windows, masks, (3, 4), reference, ChangeBasis.BOTH)
        assert max(cosine(column) for column in on_both[:, :3].T) < 0.1
        assert cosine(on_both[:, 3]) > 0.999
        projected = (windows - references[:, None, :])[masks] @ on_both
        assert np.std(projected[:, :3]) == pytest.approx(1.0, rel=1e-3)
        assert np.std(projected[:, 3:]) == pytest.approx(1.0, rel=1e-3)
        # with no more change columns than appearance ones, `both` keeps the frames' only
        np.testing.assert_array_equal(
            fit_window_input(windows, masks, (3, 3), reference, ChangeBasis.BOTH)[2],
            fit_window_input(windows, masks, (3, 3), reference)[2],
        )


def _videos_with_a_small_action(rng, size=40, window=12, per_class=12):
    """Four classes of videos: +/- a small ramp along `action` (classes 0, 1), along
    `other` (2, 3); every video also drifts along one of 3 nuisance directions 10 times as
    far (a pan, an exposure drift: a different one per video, either way) and looks
    different (spread 10). Two windows per video, with a few frames of padding."""
    basis = np.linalg.qr(rng.standard_normal((size, 8)))[0].T
    action, other, nuisance, looks = basis[0], basis[1], basis[2:5], basis[5:]
    ramp = np.linspace(-1, 1, window)[None, :, None]
    windows, videos, targets = [], [], []
    for video in range(4 * per_class):
        target = video % 4
        moves = (action, -action, other, -other)[target] * 0.3
        drift = rng.standard_normal(3) @ nuisance * 3.0
        offset = rng.standard_normal(3) @ looks * 10.0
        for _ in range(2):
            windows.append(offset + ramp[0] * (moves + drift) + rng.normal(0, 0.01, (window, size)))
            videos.append(video)
            targets.append(target)
    windows = np.array(windows)
    masks = np.arange(window)[None] < rng.integers(8, window + 1, len(windows))[:, None]
    windows[~masks] = 1e6  # padding must not count
    return windows, masks, np.array(videos), np.array(targets), action, other


def test_discriminant_change_directions_find_the_action_among_bigger_changes():
    """The change that tells the classes apart is 10 times smaller than the drift of each
    video: the frames' and the changes' leading directions are the looks and the drift; the
    discriminants of the videos' trends are the action's two directions (and one more for
    4 classes: classes - 1 columns, the rest of C zero), each group of C at unit scale."""
    windows, masks, videos, targets, action, other = _videos_with_a_small_action(
        np.random.default_rng(3)
    )
    plane = np.stack([action, other], axis=1)

    def in_plane(column):  # |projection on the action's plane| / |column|
        return float(np.linalg.norm(plane.T @ column) / np.linalg.norm(column))

    fitted = fit_window_input(
        windows, masks, (3, 8), ChangeReference.MEAN, ChangeBasis.DISCRIMINANT, videos, targets
    )
    change = fitted[2]
    frames = fit_window_input(windows, masks, (3, 3), ChangeReference.MEAN)[2]
    np.testing.assert_allclose(change[:, :3], frames, rtol=1e-6, atol=1e-9)  # looks first
    assert max(in_plane(c) for c in change[:, :3].T) < 0.2
    on_changes = fit_window_input(windows, masks, (3, 8), ChangeReference.MEAN, ChangeBasis.BOTH)[2]
    assert max(in_plane(c) for c in on_changes[:, 3:6].T) < 0.3  # the drift moves more
    assert sorted(in_plane(c) > 0.95 for c in change[:, 3:6].T) == [False, True, True]
    np.testing.assert_array_equal(change[:, 6:], 0)  # 4 classes: 3 discriminants at most
    references = window_references(windows, masks, ChangeReference.MEAN)
    projected = (windows - references[:, None, :])[masks] @ change
    assert np.std(projected[:, :3]) == pytest.approx(1.0, rel=1e-3)
    assert np.std(projected[:, 3:6]) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="discriminant needs each training window's video"):
        fit_window_input(windows, masks, (3, 8), ChangeReference.MEAN, ChangeBasis.DISCRIMINANT)


def test_quadrants_read_the_whole_image_as_global_features_then_where_things_move():
    """Region-pooled features (5 parts of 6: the whole image, then 4 quadrants). Every part
    carries the whole image's looks and a drift 10 times the action (a pan, the light); the
    action is a small thing crossing from the top-left quadrant to the top-right, which the
    whole image's average does not see. `quadrants`: the looks and the first change columns
    are exactly the frames' transform of the whole image's part; the other columns find the
    crossing, read nothing of a change the whole picture shares, and are at unit scale."""
    rng = np.random.default_rng(7)
    part, window = 6, 10
    basis = np.linalg.qr(rng.standard_normal((part, part)))[0].T
    thing, drift_axis = basis[0], basis[1]
    ramp = np.linspace(0, 1, window)[:, None]
    windows = []
    for video in range(24):
        whole = rng.standard_normal(part) * 5 + ramp * rng.standard_normal() * 3 * drift_axis
        side = ramp if video % 2 else 1 - ramp  # to the right, or to the left
        top_left, top_right = whole + (1 - side) * 0.3 * thing, whole + side * 0.3 * thing
        bottom = whole + rng.normal(0, 0.01, (window, part))
        windows.append(np.hstack([whole, top_left, top_right, bottom, bottom]))
    windows = np.array(windows) + rng.normal(0, 0.01, (24, window, 5 * part))
    masks = np.arange(window)[None] < rng.integers(6, window + 1, 24)[:, None]
    windows[~masks] = 1e6  # padding must not count
    reference = ChangeReference.MEAN
    mean, looks, change = fit_window_input(
        windows, masks, (3, 5), reference, ChangeBasis.QUADRANTS, regions=5
    )
    alone = fit_window_input(windows[..., :part], masks, (3, 3), reference)
    np.testing.assert_array_equal(mean[:part], alone[0])
    np.testing.assert_array_equal(looks[:part], alone[1])
    np.testing.assert_array_equal(change[:part, :3], alone[2])
    np.testing.assert_array_equal(mean[part:], 0)
    np.testing.assert_array_equal(looks[part:], 0)
    np.testing.assert_array_equal(change[part:, :3], 0)
    where = change[:, 3:]
    shared = np.tile(rng.standard_normal(part), 5)  # the whole picture changes alike
    np.testing.assert_allclose(shared @ where, 0, atol=1e-5)  # float32 rounding of C
    crossing = np.concatenate([np.zeros(part), -thing, thing, np.zeros(2 * part)])
    first = where[:, 0] / np.linalg.norm(where[:, 0])
    assert abs(float(first @ crossing)) / np.linalg.norm(crossing) > 0.95
    changes = (windows - window_references(windows, masks, reference)[:, None, :])[masks]
    assert np.std(changes @ where) == pytest.approx(1.0, rel=1e-3)
    for size, regions in ((31, 5), (30, 1)):
        message = f"^change_basis quadrants needs region-pooled features, not {size} in {regions} "
        with pytest.raises(ValueError, match=message + "parts$"):
            features, masks = np.zeros((2, 3, size)), np.ones((2, 3), bool)
            fit_window_input(
                features, masks, (3, 5), reference, ChangeBasis.QUADRANTS, None, None, regions
            )


def test_a_window_played_backwards_has_the_opposite_trend_and_a_still_one_none():
    rng = np.random.default_rng(4)
    windows = rng.standard_normal((3, 10, 6))
    masks = np.ones((3, 10), bool)
    masks[1, 7:] = False  # a short window: its padding is after its frames
    windows[1, 7:] = 1e6
    windows[2] = windows[2, 0]  # still
    backwards = windows.copy()
    backwards[0] = windows[0, ::-1]
    backwards[1, :7] = windows[1, 6::-1]
    trends, reversed_trends = window_trends(windows, masks), window_trends(backwards, masks)
    np.testing.assert_allclose(reversed_trends[:2], -trends[:2], atol=1e-12)
    np.testing.assert_allclose(trends[2], 0, atol=1e-12)
    line = 2.0 + 0.5 * np.arange(10)[:, None] * np.ones(6)  # a straight line: its slope
    np.testing.assert_allclose(window_trends(line[None], masks[:1]), 0.5, atol=1e-12)
    one = np.zeros((1, 10), bool)
    one[0, 0] = True
    np.testing.assert_array_equal(window_trends(line[None], one), 0)


def test_two_classes_give_one_discriminant_and_one_class_none():
    windows, masks, videos, targets, action, _ = _videos_with_a_small_action(
        np.random.default_rng(6)
    )
    pair = targets < 2  # grow along `action` or shrink: one direction tells them apart
    directions = class_trend_directions(windows[pair], masks[pair], videos[pair], targets[pair], 8)
    assert directions.shape == (40, 1)
    assert abs(float(directions[:, 0] @ action)) / np.linalg.norm(directions[:, 0]) > 0.95
    alone = targets == 0
    assert class_trend_directions(
        windows[alone], masks[alone], videos[alone], targets[alone], 8
    ).shape == (40, 0)
    still = np.broadcast_to(windows[:, :1], windows.shape)  # no video changes: no direction
    assert class_trend_directions(still, masks, videos, targets, 8).shape == (40, 0)


# -- what the mutation run found unpinned ------------------------------------------------------
def test_head_config_errors_say_what_is_wrong_and_the_smallest_head_is_allowed():
    with pytest.raises(TypeError, match="^HeadConfig.input must be a HeadInput$"):
        HeadConfig(input="raw")
    with pytest.raises(TypeError, match="^HeadConfig.change_reference must be a ChangeReference$"):
        HeadConfig(change_reference="mean")
    with pytest.raises(ValueError, match="^the head needs at least one GRU and positive widths$"):
        HeadConfig(gru_units=(0,))
    with pytest.raises(ValueError, match="^appearance\\+change needs appearance_dims and change_"):
        HeadConfig(input=CHANGE, appearance_dims=0, change_dims=1)
    smallest = HeadConfig(gru_units=(1,), dense_units=1, input=CHANGE, appearance_dims=1,
                          change_dims=1)  # fmt: skip
    assert smallest.describe(2) == (
        "appearance+change (1 + 1) -> GRU(1) -> Dropout(0.4) -> Dense(1, relu) -> Dense(2, softmax)"
    )


def test_metadata_json_is_indented_in_field_order():
    info = ModelInfo(["b", "a"], 20, 224, BackboneIdentity("n", 8))
    text = info.to_json()
    assert text.startswith('{\n  "labels": [\n    "b",\n    "a"\n  ],\n  "window": 20,\n')
    assert list(json.loads(text)) == [
        "labels", "window", "image_size", "backbone", "sampling", "head", "evaluation",
        "training", "format_version",
    ]  # fmt: skip


def test_metadata_saved_with_a_byte_order_mark_reads(model_copy):
    path = model_copy / "metadata.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_model_info(model_copy).labels == ["alpha", "beta", "gamma", "delta"]


def test_long_parse_errors_are_cut_to_120_characters(model_copy, monkeypatch):
    import realtime.head.modeldir

    def failing(text):
        raise ValueError("x" * 300)

    monkeypatch.setattr(realtime.head.modeldir.json, "loads", failing)
    message = input_error(model_copy)
    assert message == f"{model_copy / 'metadata.json'} is not valid JSON ({'x' * 120})"


def test_long_weights_errors_are_cut_to_140_characters(model_copy, monkeypatch):
    import h5py

    def failing(*args, **kwargs):
        raise OSError("y" * 300 + "\nsecond line")

    monkeypatch.setattr(h5py, "File", failing)
    with pytest.raises(InputError) as caught:
        ActionClassifier(model_copy)
    assert str(caught.value) == f"cannot load {model_copy / 'head.weights.h5'} ({'y' * 140})"


def test_activations_are_known_by_name_or_by_function():
    from realtime.head.numpyhead import UnsupportedHead, _activation_name

    def relu(x):
        return x

    assert _activation_name("tanh") == "tanh" and _activation_name(relu) == "relu"
    assert _activation_name(np.tanh) == "tanh"
    with pytest.raises(UnsupportedHead, match="^activation gelu$"):
        _activation_name("gelu")

    class Named:  # no __name__: its str() is the name
        def __str__(self):
            return "sigmoid"

    assert _activation_name(Named()) == "sigmoid"


def random_head(rng, units=(6, 4, 3), features=5, dense=(4, 3), window_input=None, reference=None):
    from realtime.head.numpyhead import _Gru

    grus, size = [], features
    if window_input is not None:  # the first GRU reads [looks, changes]
        size = window_input[1].shape[1] + window_input[2].shape[1]
    for u in units:
        grus.append(_Gru(rng.normal(0, 0.5, (size, 3 * u)), rng.normal(0, 0.5, (u, 3 * u)),
                         rng.normal(0, 0.5, (2, 3 * u))))  # fmt: skip
        size = u
    layers = []
    for i, width in enumerate(dense):
        layers.append((rng.normal(0, 0.5, (size, width)), rng.normal(0, 0.5, width),
                       "softmax" if i == len(dense) - 1 else "relu"))  # fmt: skip
        size = width
    return NumpyHead(grus, layers, window_input, reference)


def test_a_head_needs_grus_and_dense_layers():
    from realtime.head.numpyhead import UnsupportedHead

    head = random_head(np.random.default_rng(0))
    message = "^expected GRU layers followed by Dense layers$"
    with pytest.raises(UnsupportedHead, match=message):
        NumpyHead([], [(np.eye(2), np.zeros(2), "softmax")])
    with pytest.raises(UnsupportedHead, match=message):
        NumpyHead(head.grus, [])
    raw = NumpyHead(head.grus, [(np.eye(3), np.zeros(3), "softmax")], None, ChangeReference.MEAN)
    assert raw.reference is None  # no window input: raw steps, whatever the reference says


def _gru_layer_by_layer(gru, inputs):
    """Keras' GRU (reset_after=True) written out step by step, float64: all its states."""
    u = gru.units
    kernel, recurrent = gru.kernel.astype(np.float64), gru.recurrent.astype(np.float64)
    h, states = np.zeros(u), []
    for x in inputs:
        projected = x @ kernel + gru.input_bias
        inner = h @ recurrent + gru.recurrent_bias
        z = 1 / (1 + np.exp(-(projected[:u] + inner[:u])))
        r = 1 / (1 + np.exp(-(projected[u : 2 * u] + inner[u : 2 * u])))
        candidate = np.tanh(projected[2 * u :] + r * inner[2 * u :])
        h = z * h + (1 - z) * candidate
        states.append(h)
    return np.array(states).reshape(len(inputs), u)


@pytest.mark.parametrize("units", [(5,), (6, 4), (16, 8), (6, 4, 3), (7, 2, 5, 3)])
def test_the_layers_run_as_one_recurrence_give_each_layers_own_states(units):
    """`NumpyHead` runs its GRU layers as one recurrence (layer l at step k - l): the last
    layer's last state is the one of running each layer over the one below's states."""
    rng = np.random.default_rng(len(units))
    head = random_head(rng, units=units)
    for steps in (1, 2, len(units), 20):
        frames = rng.normal(0, 1, (steps, 5))
        x = frames
        for gru in head.grus:
            x = _gru_layer_by_layer(gru, x)
        expected = x[-1]
        for kernel, bias, activation in head.dense:
            expected = activation(expected @ kernel + bias)
        got = head.predict(frames, np.ones(steps, bool))
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("units,members", [((5,), 2), ((6, 4), 3), ((7, 2, 5), 2)])
def test_members_run_side_by_side_give_the_mean_of_each_members_probabilities(units, members):
    """A head's members run in the same recurrence (each layer reading only its own member's
    layer below, `_Layers`) and their probabilities are averaged: the same as running each
    member as a head of its own."""
    rng = np.random.default_rng(len(units) + members)
    mean, looks, changes = rng.normal(0, 1, 5), rng.normal(0, 1, (5, 3)), rng.normal(0, 1, (5, 2))
    window_input = [mean, looks, changes]
    alone = [
        random_head(rng, units=units, window_input=window_input, reference=ChangeReference.MEAN)
        for _ in range(members)
    ]
    from realtime.head.numpyhead import _ACTIVATIONS

    names = {function: name for name, function in _ACTIVATIONS.items()}

    def stack(head):  # its layers as a head is made of them
        return head.grus, [(k, b, names[a]) for k, b, a in head.dense]

    together = NumpyHead(
        *stack(alone[0]),
        window_input,
        ChangeReference.MEAN,
        members=[stack(h) for h in alone[1:]],
    )
    assert together.members == members
    assert together.projection_size == members * alone[0].projection_size
    for steps in (1, len(units), 20):
        frames = rng.normal(0, 1, (steps, 5))
        mask = np.ones(steps, bool)
        each = [h.predict(frames, mask) for h in alone]
        got = together.predict(frames, mask)
        np.testing.assert_allclose(got, np.mean(each, axis=0), rtol=2e-5, atol=1e-6)
        assert np.abs(each[0] - each[1]).max() > 1e-3  # the members differ
    empty = together.predict(np.zeros((3, 5)), np.zeros(3, bool))  # every member's zero state
    np.testing.assert_allclose(empty, np.mean([h.predict(np.zeros((3, 5)), np.zeros(3, bool))
                                              for h in alone], axis=0), atol=1e-6)  # fmt: skip
    two_deep = random_head(rng, units=units + (3,), window_input=window_input)
    with pytest.raises(ValueError, match="members with different numbers of GRU layers"):
        NumpyHead(*stack(alone[0]), window_input, members=[stack(two_deep)])


def test_members_round_trip_through_metadata_and_one_is_written_as_before():
    head = HeadConfig(input=CHANGE, appearance_dims=4, change_dims=2, members=3)
    written = json.loads(json.dumps(head.as_dict()))
    assert written["members"] == 3 and HeadConfig.from_dict(written) == head
    assert "members" not in HeadConfig(input=CHANGE, appearance_dims=4, change_dims=2).as_dict()
    assert "members" not in SEED_HEAD.as_dict()
    assert head.describe(2) == (
        "appearance+change (4 + 2) -> 3 x [GRU(16) -> GRU(8) -> Dropout(0.4) -> Dense(8, relu)"
        " -> Dense(2, softmax)] -> mean"
    )
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"^members must be 1 or more, not {bad}$"):
            HeadConfig(members=bad)
    for bad in ("3", 2.0, True):
        with pytest.raises(ValueError, match="^members must be a whole number$"):
            HeadConfig.from_dict({"members": bad})
    with pytest.raises(TypeError, match="^HeadConfig.members must be a whole number$"):
        HeadConfig(members=2.0)


def test_member_layers_are_named_apart_and_read_back():
    from realtime.head.config import member_layer, member_of

    assert member_layer("gru_0", 0) == "gru_0" and member_layer("probs", 2) == "m2_probs"
    assert [member_of(member_layer("dense", m)) for m in range(12)] == list(range(12))
    for name in ("gru_0", "motion_scores", "members", "mx_dense", "m_probs", "m2", "window_input"):
        assert member_of(name) == 0


def test_gru_layers_with_different_activations_are_left_to_keras():
    from realtime.head.numpyhead import UnsupportedHead, _Gru

    rng = np.random.default_rng(3)
    first = _Gru(rng.normal(size=(5, 6)), rng.normal(size=(2, 6)), rng.normal(size=(2, 6)))
    second = _Gru(rng.normal(size=(2, 6)), rng.normal(size=(2, 6)), rng.normal(size=(2, 6)), "relu")
    with pytest.raises(UnsupportedHead, match="^GRU layers with different activations$"):
        NumpyHead([first, second], [(np.eye(2), np.zeros(2), "softmax")])


def test_an_empty_window_runs_the_dense_layers_on_the_last_grus_zero_state():
    head = random_head(np.random.default_rng(1), units=(6, 4, 3))  # three GRUs: the last is 3
    got = head.predict(np.ones((7, 5)), np.zeros(7, bool))
    x = np.zeros(3)
    for kernel, bias, activation in head.dense:
        x = activation(x @ kernel + bias)
    np.testing.assert_allclose(got, x, rtol=1e-6)
    assert got.dtype == np.float32


def test_inputs_of_any_dtype_give_float32_and_int_masks_work_as_bool():
    rng = np.random.default_rng(2)
    head = random_head(rng)
    features = rng.normal(0, 1, (7, 5))  # float64
    mask = np.array([1, 1, 0, 1, 1, 0, 0])
    got = head.predict(features, mask)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, head.predict(features.astype(np.float32), mask.astype(bool)))
    assert head.project(features).dtype == np.float32
    assert head.project(features.tolist()).shape == (7, head.projection_size)


def test_the_streams_length_is_the_models_window(fixture):
    classifier, _ = fixture
    assert classifier.stream().length == 20 and classifier._model is None  # no Keras built


def test_window_references_of_a_single_valid_frame_are_that_frame():
    features = np.arange(12, dtype=np.float64).reshape(1, 4, 3)
    masks = np.array([[False, False, True, False]])
    for reference in ChangeReference:
        np.testing.assert_array_equal(window_references(features, masks, reference), [[6, 7, 8]])


def test_window_input_of_small_features_still_comes_out_at_unit_scale():
    rng = np.random.default_rng(4)
    windows = (rng.normal(0, 1e-3, (30, 10, 8)) * np.linspace(3, 1, 8)).astype(np.float32)
    masks = np.ones((30, 10), int)  # 0/1 masks read as bool
    mean, appearance, change = fit_window_input(windows, masks, (3, 2))
    assert [w.dtype for w in (mean, appearance, change)] == [np.float32] * 3
    assert appearance.shape == (8, 3) and change.shape == (8, 2)
    frames = windows.reshape(-1, 8).astype(np.float64)
    assert np.std((frames - mean) @ appearance) == pytest.approx(1.0, rel=1e-3)
    changes = (windows - windows[:, :1]).reshape(-1, 8) @ change
    assert np.std(changes) == pytest.approx(1.0, rel=1e-3)


def test_window_input_keeps_no_more_directions_than_features_or_frames():
    rng = np.random.default_rng(5)
    windows = rng.normal(0, 1, (1, 3, 4))  # 3 frames of 4 features: at most 3 directions
    _, appearance, _ = fit_window_input(windows, np.ones((1, 3), bool), (6, 2))
    assert appearance.shape == (4, 6)
    assert np.count_nonzero(np.linalg.norm(appearance, axis=0) > 1e-9) == 3
    wide = rng.normal(0, 1, (5, 10, 4))  # 50 frames of 4 features: 4 directions
    _, appearance, _ = fit_window_input(wide, np.ones((5, 10), bool), (6, 2))
    assert np.count_nonzero(np.linalg.norm(appearance, axis=0) > 1e-9) == 4


def test_the_offsets_spread_of_two_videos_and_the_ridge_on_a_still_axis():
    """One class, two videos with looks (0, 0) and (1, 0): deviations -+0.5 along x, none
    along y; covariance 0.5 / (2 - 1) in x, 0 in y; the ridge is 1e-6 of the mean variance
    (0.25): sqrt(2.5e-7) = 5e-4 on the still axis."""
    features = np.zeros((2, 3, 2))
    features[1, :, 0] = 1.0
    masks = np.ones((2, 3), int)
    window_input = [np.zeros(2), np.eye(2), np.eye(2)[:, :1]]
    spread = fit_appearance_spread(features, masks, np.arange(2), np.zeros(2), window_input)
    assert spread.dtype == np.float32
    np.testing.assert_allclose(spread, [[np.sqrt(0.5 + 2.5e-7), 0], [0, 5e-4]], rtol=1e-4)


def test_projections_are_float32_with_the_input_transform_folded_in():
    rng = np.random.default_rng(6)
    window_input = [rng.normal(0, 1, 5), rng.normal(0, 1, (5, 3)), rng.normal(0, 1, (5, 2))]
    head = random_head(rng, units=(4,), dense=(3,), window_input=window_input,
                       reference=ChangeReference.MEAN)  # fmt: skip
    assert head.projection_size == 24 and head.reference is ChangeReference.MEAN
    projections = head.project(rng.normal(0, 1, (6, 5)))  # float64 in
    assert projections.dtype == np.float32 and head.kernel.dtype == head.bias.dtype == np.float32


def test_a_batch_with_more_windows_than_masks_is_refused(fixture):
    classifier, expected = fixture
    with pytest.raises(ValueError):
        classifier.predict_batch(expected["features"], expected["masks"][:-1])


def test_many_features_fit_the_same_transform_without_the_covariance(monkeypatch):
    """Above EXACT_PCA_MAX_FEATURES (InceptionV3 with --pooling regions: 10240) the principal
    components come from subspace iteration over the frames in chunks: the same mean, the
    same directions (up to sign) and scales as the exact eigendecomposition, and the same
    training-only spread."""
    from realtime.head import fitting

    rng = np.random.default_rng(8)
    latent = rng.standard_normal((40, 10, 12)) * np.linspace(6, 1, 12)  # distinct variances
    features = latent @ rng.standard_normal((12, 60)) + rng.normal(3, 0.05, (40, 10, 60))
    masks = np.ones((40, 10), bool)
    masks[::3, 7:] = False
    videos, targets = np.arange(40) // 4, (np.arange(40) // 4) % 2
    for reference, basis in itertools.product(ChangeReference, ChangeBasis):
        # `both`, `discriminant` and `quadrants` = `frames` at (5, 4)
        dims = (5, 4) if basis in (ChangeBasis.FRAMES, ChangeBasis.CHANGES) else (2, 8)
        # `quadrants`: 5 parts of 12 features (its whole-image part stays on the exact path)
        exact = fit_window_input(features, masks, dims, reference, basis, videos, targets, 5)
        monkeypatch.setattr(fitting, "EXACT_PCA_MAX_FEATURES", 50)
        monkeypatch.setattr(fitting, "CHUNK", 64)  # several chunks
        large = fit_window_input(features, masks, dims, reference, basis, videos, targets, 5)
        spread = fit_appearance_spread(features, masks, videos, targets, large)
        monkeypatch.undo()
        np.testing.assert_allclose(large[0], exact[0], rtol=1e-5, atol=1e-6)
        for got, expected in zip(large[1:], exact[1:], strict=True):
            signs = np.sign((got * expected).sum(axis=0))
            np.testing.assert_allclose(got * signs, expected, rtol=1e-3, atol=1e-5)
        expected_spread = fit_appearance_spread(features, masks, videos, targets, exact)
        np.testing.assert_allclose(np.abs(spread), np.abs(expected_spread), rtol=1e-3, atol=1e-5)
