"""`movement_offset`: training only, the window numbers (where and how far the picture moved)
get the protection the looks have (`WindowOffset`): a random offset per window drawn from how
videos of one class differ in them. Its spread worked by hand, the layer's draws, the record
in the head, and that inference does not change."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from realtime.head.config import ChangeReference, HeadConfig, HeadInput
from realtime.head.fitting import fit_movement_spread, unit_scale, window_numbers
from realtime.head.metadata import MetadataError, check_metadata
from realtime.head.motion import window_motion
from training.recipes import DEFAULT, SEED

MOTION_HEAD = HeadConfig(
    input=HeadInput.APPEARANCE_CHANGE,
    appearance_dims=6,
    change_dims=4,
    change_reference=ChangeReference.MEAN,
    appearance_offset=2.0,
    motion=8,
)
OFFSET_HEAD = dataclasses.replace(MOTION_HEAD, movement_offset=2.0)


def test_the_movement_spread_is_how_videos_of_one_class_differ_in_their_numbers():
    """By hand: class 0's videos have numbers (1, 0) and (3, 0) (each the mean of its two
    windows), class 1's (0, 5) twice: deviations +-1 on x only, a covariance of
    2 / (4 videos - 2 classes) = 1 on x and none on y (a ridge of 1e-6 x half the trace).
    A window with fewer than two valid frames (whose numbers are 0 by definition) and a
    class with one video count for nothing."""
    per_window = [(0, 0), (2, 0), (3, 1), (3, -1), (0, 4), (0, 6), (0, 5), (0, 5), (9, 9)]
    videos = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4])
    targets = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    numbers = np.array(per_window, float)
    masks = np.ones((9, 5), bool)
    numbers = np.vstack([numbers, [[500.0, -500.0]]])  # one valid frame: not counted
    masks = np.vstack([masks, [[True, False, False, False, False]]])
    videos, targets = np.append(videos, 0), np.append(targets, 0)
    spread = fit_movement_spread(numbers, masks, videos, targets)
    assert spread.dtype == np.float32 and spread.shape == (2, 2)
    np.testing.assert_allclose(spread, [[1.0, 0.0], [0.0, np.sqrt(0.5e-6)]], rtol=1e-4, atol=0)
    one_video = fit_movement_spread(numbers[8:9], masks[8:9], videos[8:9], targets[8:9])
    np.testing.assert_array_equal(one_video, np.zeros((2, 2)))


def test_window_numbers_are_the_motion_sums_and_their_unit_scale():
    rng = np.random.default_rng(3)
    thumbs = rng.random((6, 5, 8 * 8)).astype(np.float32)
    masks = np.ones((6, 5), bool)
    masks[5, 1:] = False  # one valid frame: no step, left out of the scale
    numbers = window_numbers(None, masks, MOTION_HEAD, thumbs)
    np.testing.assert_allclose(
        numbers, window_motion(thumbs.reshape(6, 5, 8, 8), masks), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(unit_scale(numbers, masks), 1 / numbers[:5].std(axis=0), rtol=1e-5)


def test_the_head_records_the_offset_only_when_it_is_on():
    data = OFFSET_HEAD.as_dict()
    assert data["movement_offset"] == 2.0
    assert HeadConfig.from_dict(json.loads(json.dumps(data))) == OFFSET_HEAD
    for head in (MOTION_HEAD, DEFAULT.head, SEED.head):
        assert "movement_offset" not in head.as_dict()  # every earlier head reads as before
    with pytest.raises(ValueError, match="window numbers"):
        dataclasses.replace(DEFAULT.head, movement_offset=1.0)  # nothing to offset
    with pytest.raises(ValueError, match="0 or more"):
        dataclasses.replace(OFFSET_HEAD, movement_offset=float("nan"))


def test_metadata_checks_the_offset():
    head = OFFSET_HEAD.as_dict()
    backbone = {"name": "b", "feature_size": 80, "image_size": 224, "motion": 8}
    data = {"format_version": 2, "labels": ["a", "b"], "window": 20, "image_size": 224,
            "backbone": backbone, "head": head}  # fmt: skip
    check_metadata(data, 2)
    no_motion = {k: v for k, v in head.items() if k != "motion"}
    for bad, message in [
        ({**head, "movement_offset": -1.0}, "head.movement_offset"),
        ({**head, "movement_offset": "2"}, "head.movement_offset"),
        ({**head, "movement_offset": 101.0}, "head.movement_offset"),
        (no_motion, "needs head.where_trend or head.motion"),
    ]:
        with pytest.raises(MetadataError, match=message):
            check_metadata({**data, "head": bad}, 2)


def _offset_layer(window_stddev, seed=4):
    from realtime.head.layers import WindowOffset

    layer = WindowOffset(3, 0.5, seed=seed, window_dims=2, window_stddev=window_stddev)
    layer.build((None, 4, 9))
    spread = np.diag([1.0, 2.0, 3.0]).astype(np.float32)
    window_spread = np.array([[2.0, 0.0], [1.0, 0.5]], np.float32)
    layer.set_weights([spread, window_spread] if window_stddev else [spread])
    return layer, spread, window_spread


def test_the_offset_layer_moves_the_looks_and_the_window_numbers_per_window_in_training():
    """(4000 windows, 4 steps, 3 looks + 4 change + 2 window numbers): in training each
    window's looks and numbers move by one draw, the same at every step, with covariance
    (stddev x spread)(stddev x spread)^T; the change part never moves; at inference
    nothing does."""
    layer, spread, window_spread = _offset_layer(window_stddev=1.5)
    inputs = np.random.default_rng(0).normal(size=(4000, 4, 9)).astype(np.float32)
    moved = np.asarray(layer(inputs, training=True)) - inputs
    np.testing.assert_allclose(moved, np.repeat(moved[:, :1], 4, axis=1), atol=1e-5)
    np.testing.assert_array_equal(moved[..., 3:7], 0.0)
    looks, numbers = moved[:, 0, :3], moved[:, 0, 7:]
    np.testing.assert_allclose(np.cov(looks.T), 0.25 * spread @ spread.T, atol=0.12)
    expected = 2.25 * window_spread @ window_spread.T  # [[9, 4.5], [4.5, 2.8125]]
    np.testing.assert_allclose(np.cov(numbers.T), expected, rtol=0.08, atol=0.1)
    np.testing.assert_array_equal(np.asarray(layer(inputs, training=False)), inputs)
    assert layer.get_config()["window_stddev"] == 1.5


def test_without_the_movement_offset_the_layer_is_as_it_was():
    layer, _, _ = _offset_layer(window_stddev=0.0)
    assert len(layer.get_weights()) == 1 and "window_dims" not in layer.get_config()
    inputs = np.random.default_rng(1).normal(size=(50, 4, 9)).astype(np.float32)
    moved = np.asarray(layer(inputs, training=True)) - inputs
    np.testing.assert_array_equal(moved[..., 3:], 0.0)


def test_training_fits_the_spread_the_head_asks_for_and_inference_ignores_it():
    """`fit_head_input` on windows whose classes move their own way: the layer's window
    spread is `fit_movement_spread` of the scaled numbers; the probabilities are those of
    the same head with the spread zeroed (the offset only acts in training)."""
    import keras

    from realtime.head.keras import build_head, fit_head_input
    from realtime.head.layers import WindowOffset

    rng = np.random.default_rng(7)
    n, window, looks, side = 24, 6, 10, 8
    base = rng.random((side + 16, side + 16)).astype(np.float32)
    videos, targets = np.repeat(np.arange(12), 2), np.repeat(np.arange(12) % 2, 2)
    thumbs = np.zeros((n, window, side * side), np.float32)
    for i in range(n):
        sign = 1 if targets[i] else -1  # class 1 moves right, class 0 left, at its own pace
        for t in range(window):
            x = 8 + sign * (t * (1 + videos[i] % 3)) // 2
            thumbs[i, t] = base[4 : 4 + side, x : x + side].ravel()
    features = np.concatenate([rng.normal(size=(n, window, looks)), thumbs], axis=-1)
    masks = np.ones((n, window), bool)
    keras.utils.set_random_seed(0)
    head = dataclasses.replace(OFFSET_HEAD, appearance_dims=4, change_dims=2)
    model = build_head(window, looks + side * side, 2, head)
    fit_head_input(model, head, features.astype(np.float32), masks, videos, targets)
    layer = next(x for x in model.layers if isinstance(x, WindowOffset))
    scale = model.get_layer("window_input").get_weights()[-1]
    numbers = window_numbers(None, masks, head, thumbs) * scale
    expected = fit_movement_spread(numbers, masks, videos, targets)
    np.testing.assert_allclose(layer.get_weights()[1], expected, rtol=1e-5, atol=1e-7)
    assert np.diag(expected).max() > 0.05  # the videos of a class move at their own pace
    before = model.predict([features, masks], verbose=0)
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    np.testing.assert_array_equal(model.predict([features, masks], verbose=0), before)
