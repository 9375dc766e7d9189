"""`--pooling map` and the head's trend of where the picture changes: the map pooling
(realtime.backbones.regions), the trend (realtime.head.where) on maps whose answer is known,
how a head records it, and the recipe that turns it on."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest

from realtime.backbones.motion import MOTION_SIZE, WithMotion
from realtime.backbones.regions import (
    MAP_CHANNELS,
    Pooling,
    map_projection,
    pool,
    pool_map,
    pooled_size,
)
from realtime.core.errors import InputError
from realtime.head.config import ChangeReference, HeadConfig, HeadInput
from realtime.head.metadata import MetadataError, check_metadata
from realtime.head.where import SHIFT_LIMIT, window_shift, window_trend
from training.recipes import DEFAULT, SEED, for_backbone

WHERE_HEAD = HeadConfig(
    input=HeadInput.APPEARANCE_CHANGE,
    appearance_dims=16,
    change_dims=16,
    change_reference=ChangeReference.MEAN,
    where_trend=True,
    map_shape=(7, 7, 32),
)


def test_map_pooling_keeps_the_whole_image_then_every_position_reduced():
    rng = np.random.default_rng(0)
    maps = rng.random((2, 3, 4, 40)).astype(np.float32)
    pooled = pool_map(maps)
    assert pooled.shape == (2, 40 + 3 * 4 * MAP_CHANNELS) and pooled.dtype == np.float32
    assert pooled.shape[1] == pooled_size(Pooling.MAP, 3, 4, 40)
    np.testing.assert_allclose(pooled[:, :40], maps.mean(axis=(1, 2)), rtol=1e-6)
    projection = map_projection(40)
    # position (row 1, column 2) of the second map, row by row after the whole image's part
    start = 40 + (1 * 4 + 2) * MAP_CHANNELS
    np.testing.assert_allclose(
        pooled[1, start : start + MAP_CHANNELS], maps[1, 1, 2] @ projection, rtol=1e-5
    )
    np.testing.assert_array_equal(pool(maps, Pooling.MAP), pooled)
    assert pooled_size(Pooling.GLOBAL, 3, 4, 40) == 40
    assert pooled_size(Pooling.REGIONS, 3, 4, 40) == 200


def test_the_map_projection_is_fixed_and_keeps_distances():
    """Every machine must reduce a map the same way: a model trained on `map` features reads
    them with this projection forever (the digest pins the numbers; changing them would
    silently change every such model's input). A random-sign projection keeps the distance
    between two positions' vectors on average, which is what the head's trend measures."""
    projection = map_projection(1024)
    assert projection.shape == (1024, MAP_CHANNELS) and projection.dtype == np.float32
    np.testing.assert_array_equal(np.abs(projection), np.float32(1 / np.sqrt(MAP_CHANNELS)))
    assert 0.45 < (projection > 0).mean() < 0.55
    assert hashlib.sha256(projection.tobytes()).hexdigest().startswith("f3a1d5b624793141")
    np.testing.assert_array_equal(map_projection(1024), projection)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 2000, 1024))
    ratio = np.linalg.norm((a - b) @ projection, axis=1) / np.linalg.norm(a - b, axis=1)
    assert abs(np.mean(ratio**2) - 1) < 0.05


def _moving_spot(steps=20, size=7, channels=6, direction=(1, 0), seed=0):
    """Maps of a noisy, busy scene with a spot crossing it: `direction` (dx, dy) in positions
    per window, starting on the other side."""
    rng = np.random.default_rng(seed)
    scene = rng.normal(0, 1, (size, size, channels))
    maps = np.repeat(scene[None], steps, axis=0) + rng.normal(
        0, 0.05, (steps, size, size, channels)
    )
    spot = rng.normal(0, 3, channels)
    centre = (size - 1) / 2
    for t in range(steps):
        x = centre + direction[0] * (t / (steps - 1) - 0.5) * (size - 2)
        y = centre + direction[1] * (t / (steps - 1) - 0.5) * (size - 2)
        maps[t, int(round(y)), int(round(x))] += spot
    return maps


def test_the_trend_follows_where_a_spot_moves_whatever_it_is():
    right = window_trend(_moving_spot(direction=(1, 0)))
    assert right.shape == (2,) and right.dtype == np.float32
    assert right[0] > 0.05 and abs(right[1]) < right[0] / 5
    left = window_trend(_moving_spot(direction=(-1, 0)))
    assert left[0] < -0.05 and abs(left[1]) < -left[0] / 5
    down = window_trend(_moving_spot(direction=(0, 1)))  # y grows downwards
    assert down[1] > 0.05 and abs(down[0]) < down[1] / 5
    # the same walk seen in a mirror: the same trend, x turned round
    spot = _moving_spot(direction=(1, 0), seed=3)
    np.testing.assert_allclose(
        window_trend(spot[:, :, ::-1]), window_trend(spot) * [-1, 1], atol=1e-6
    )
    # another scene and another spot: the direction is what they share
    assert window_trend(_moving_spot(direction=(1, 0), seed=7))[0] > 0.05


def test_a_change_of_the_whole_picture_has_no_trend():
    """A change everywhere at once (light, exposure, a shake that moves every position alike)
    has its centre in the middle of the picture at every step: no direction."""
    rng = np.random.default_rng(2)
    base = rng.normal(0, 1, (7, 7, 6))
    maps = np.stack([base + 0.3 * t * np.ones(6) for t in range(20)])
    np.testing.assert_allclose(window_trend(maps), 0.0, atol=1e-6)


def test_the_trend_reads_only_valid_frames_and_needs_two():
    maps = _moving_spot(direction=(1, 0))
    mask = np.arange(20) < 12
    padded = maps.copy()
    padded[12:] = 1e3  # what the mask hides must not count
    np.testing.assert_allclose(window_trend(padded, mask), window_trend(maps[:12]), rtol=1e-5)
    holes = np.random.default_rng(4).random(20) > 0.4  # frames missing inside the window
    hidden = np.where(holes[:, None, None, None], maps, 1e3)
    np.testing.assert_allclose(window_trend(hidden, holes), window_trend(maps[holes]), rtol=1e-5)
    one = np.zeros(20, bool)
    one[0] = True
    np.testing.assert_array_equal(window_trend(maps, one), 0.0)
    np.testing.assert_array_equal(window_trend(maps, np.zeros(20, bool)), 0.0)
    # a batch of windows, each its own
    both = window_trend(np.stack([maps, maps[:, :, ::-1]]), np.stack([mask, mask]))
    np.testing.assert_allclose(both[1], both[0] * [-1, 1], atol=1e-6)


def _sliding_scene(steps=20, size=9, channels=5, velocity=(0.3, 0.0), seed=0):
    """Maps of a smooth scene (a sum of slow waves) seen through a window that slides
    `velocity` (dx, dy) positions a frame: what a panning camera shows."""
    rng = np.random.default_rng(seed)
    ways = np.array([[0.5, 0.0], [0.0, 0.5], [0.4, 0.4], [0.4, -0.4]])  # every way
    turns = ways * rng.uniform(0.8, 1.2, (4, 1))
    waves = rng.normal(0, 1, (4, channels)), turns, rng.uniform(0, 6, 4)
    amplitude, frequency, phase = waves
    grid = np.arange(size, dtype=np.float64)
    maps = np.zeros((steps, size, size, channels))
    for t in range(steps):
        x = grid[None, :] + velocity[0] * t  # the scene moves the other way than the window
        y = grid[:, None] + velocity[1] * t
        for a, (fx, fy), p in zip(amplitude, frequency, phase, strict=True):
            maps[t] += np.sin(fx * x + fy * y + p)[..., None] * a
    return maps.astype(np.float32)


def test_the_shift_measures_how_far_the_picture_moved():
    """A window sliding right over a scene shows the scene moving left: the shift is minus
    the distance travelled, in positions (to first order), whatever the scene."""
    for seed in range(3):
        for velocity in ((0.3, 0.0), (0.0, -0.2), (-0.25, 0.15)):
            got = window_shift(_sliding_scene(velocity=velocity, seed=seed))
            assert got.shape == (2,) and got.dtype == np.float32
            travelled = -np.array(velocity) * 19
            np.testing.assert_allclose(got, travelled, atol=0.15 * np.abs(travelled).max())
    scene = _sliding_scene(velocity=(0.3, 0.1), seed=4)
    forward, backward = window_shift(scene), window_shift(scene[::-1])
    np.testing.assert_allclose(backward, -forward, rtol=1e-4)  # the same frames reversed
    np.testing.assert_allclose(window_shift(scene[:, :, ::-1]), forward * [-1, 1], rtol=1e-4)
    still = np.repeat(scene[:1], 20, axis=0)
    np.testing.assert_array_equal(window_shift(still), 0.0)
    # stripes that change across x only: a move along them is not seen, and the little
    # noise there is must not make one up (the ridge)
    rng = np.random.default_rng(8)
    stripes = np.sin(0.6 * (np.arange(9)[None, :, None] + 0.3 * np.arange(20)[:, None, None]))
    stripes = np.repeat(stripes[:, None, :, :] * rng.normal(0, 1, 4), 9, axis=1)
    noisy = (stripes + rng.normal(0, 1e-3, stripes.shape)).astype(np.float32)
    x, y = window_shift(noisy)
    assert x < -4 and abs(y) < 0.1


def test_the_shift_steps_between_valid_frames_and_each_step_is_bounded():
    scene = _sliding_scene(velocity=(0.2, 0.0), seed=5)
    holes = np.random.default_rng(6).random(20) > 0.4  # frames missing inside the window
    hidden = np.where(holes[:, None, None, None], scene, 1e3)  # what the mask hides
    np.testing.assert_allclose(window_shift(hidden, holes), window_shift(scene[holes]), rtol=1e-5)
    # a missing frame makes one bigger step, not a shorter way
    np.testing.assert_allclose(window_shift(scene[holes]), window_shift(scene), rtol=0.2)
    one = np.zeros(20, bool)
    one[7] = True
    np.testing.assert_array_equal(window_shift(scene, one), 0.0)
    np.testing.assert_array_equal(window_shift(scene, np.zeros(20, bool)), 0.0)
    jumps = _sliding_scene(steps=4, velocity=(3.0, 0.0), seed=1)  # far beyond first order
    assert np.all(np.abs(window_shift(jumps)) <= 3 * SHIFT_LIMIT + 1e-6)
    flat = np.zeros((5, 7, 7, 3), np.float32)  # nothing to follow: no move, no NaN
    flat[2:] = 1.0
    np.testing.assert_array_equal(window_shift(flat), 0.0)
    both = window_shift(np.stack([scene, scene[::-1]]), np.stack([holes, holes[::-1]]))
    np.testing.assert_allclose(both[1], -both[0], rtol=1e-4)


def test_a_head_without_the_trend_is_written_as_before():
    plain = DEFAULT.head.as_dict()
    assert "where_trend" not in plain and "map_shape" not in plain
    data = json.loads(json.dumps(WHERE_HEAD.as_dict()))
    assert data["where_trend"] is True and data["map_shape"] == [7, 7, 32]
    assert HeadConfig.from_dict(data) == WHERE_HEAD
    assert HeadConfig.from_dict(plain).where_trend is False
    assert WHERE_HEAD.map_size == 1568 and WHERE_HEAD.where_dims == 2
    assert "16 + 16, change from the mean + 2 for where it changes" in WHERE_HEAD.describe(4)
    with pytest.raises(ValueError, match="where_trend needs the appearance"):
        HeadConfig(where_trend=True, map_shape=(7, 7, 32))
    assert "where_shift" not in data  # heads without the shift are written as before
    shift = dataclasses.replace(WHERE_HEAD, where_shift=True)
    data = json.loads(json.dumps(shift.as_dict()))
    assert data["where_shift"] is True and HeadConfig.from_dict(data) == shift
    assert shift.where_dims == 4 and shift.map_size == 1568
    assert "+ 2 for where it changes + 2 for how far it moved" in shift.describe(4)
    with pytest.raises(ValueError, match="where_shift needs where_trend"):
        dataclasses.replace(WHERE_HEAD, where_trend=False, where_shift=True)


def _metadata(head: dict, feature_size: int = 2592) -> dict:
    return {
        "labels": ["a", "b"],
        "window": 20,
        "image_size": 224,
        "backbone": {"name": "tflite/x", "feature_size": feature_size, "pooling": "map"},
        "head": head,
    }


def test_metadata_checks_the_trend_and_its_map():
    good = WHERE_HEAD.as_dict()
    check_metadata(_metadata(good), 2)
    bad = [
        ({**good, "where_trend": "yes"}, 2592, "head.where_trend must be true or false"),
        ({**good, "where_shift": 1}, 2592, "head.where_shift must be true or false"),
        ({**good, "where_trend": False, "where_shift": True}, 2592, "needs head.where_trend"),
        (
            {**good, "map_shape": [7, 7]},
            2592,
            r"head.map_shape must be \[rows, columns, channels\]",
        ),
        ({**good, "map_shape": [7, 0, 32]}, 2592, r"head.map_shape\[1\] must be"),
        (good, 1568, "holds more numbers than the backbone's 1568 features"),
    ]
    for head, size, message in bad:
        with pytest.raises(MetadataError, match=message):
            check_metadata(_metadata(head, size), 2)


def test_map_features_turn_the_trend_on_and_other_features_refuse_it():
    mapped = SimpleNamespace(map_shape=(7, 7, 32), motion=MOTION_SIZE)  # --pooling map
    recipe = for_backbone(DEFAULT, mapped)
    assert recipe.head.where_trend and recipe.head.map_shape == (7, 7, 32)
    assert recipe.head.where_shift  # --pooling map: where it changes and how far it moved
    trend_only = dataclasses.replace(DEFAULT.head, where_trend=True)  # asked for: kept
    kept = for_backbone(dataclasses.replace(DEFAULT, head=trend_only), mapped).head
    assert kept.where_trend and not kept.where_shift and kept.map_shape == (7, 7, 32)
    assert recipe.head.dims == DEFAULT.head.dims
    assert for_backbone(DEFAULT, SimpleNamespace(map_shape=None, motion=MOTION_SIZE)) is DEFAULT
    assert for_backbone(SEED, mapped) is SEED  # raw features: nothing to read it with
    with pytest.raises(InputError, match="it needs --pooling map"):  # a trend head, global
        for_backbone(recipe, SimpleNamespace(map_shape=None, motion=MOTION_SIZE))


@pytest.mark.shared
def test_litert_map_from_the_feature_map(embedder_path):
    """The shared MobileNet v1 embedder: 1024 + 7 x 7 x 32 features, the first 1024 the
    embedder's own output (to its quantisation step) and the same as `regions`' whole part;
    the map's shape is what a head is told."""
    from realtime.backbones.litert import LiteRTBackbone

    plain = LiteRTBackbone(embedder_path, num_threads=2)
    mapped = LiteRTBackbone(embedder_path, num_threads=2, pooling=Pooling.MAP)
    regions = LiteRTBackbone(embedder_path, num_threads=2, pooling=Pooling.REGIONS)
    assert mapped.map_shape == (7, 7, 32) and mapped.feature_size == 1024 + 7 * 7 * 32
    assert plain.map_shape is None
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    features = mapped.extract(frames)
    assert features.shape == (3, 2592)
    np.testing.assert_array_equal(features[:, :1024], regions.extract(frames)[:, :1024])
    np.testing.assert_allclose(
        features[:, :1024], plain.extract(frames), atol=1.01 * plain._out_scale
    )
    identity = mapped.identity()
    assert identity.pooling is Pooling.MAP and identity.feature_size == 2592
    assert identity.as_dict()["pooling"] == "map" and identity.map_shape == (7, 7, 32)


def test_inception_map_in_the_graph_equals_numpy_pooling():
    """InceptionV3 (random weights) pools its map inside its Keras graph, as every converted
    backend runs it; the result is `pool_map` of its mixed10 map, and the identity says the
    map's shape (which a head is told)."""
    pytest.importorskip("tensorflow")
    import keras

    from realtime.backbones.keras import KerasInceptionV3

    backbone = KerasInceptionV3(None, pooling=Pooling.MAP)
    assert backbone.feature_size == 2048 + 5 * 5 * 32 and backbone.map_shape == (5, 5, 32)
    identity = backbone.identity()
    assert identity.pooling is Pooling.MAP and identity.map_shape == (5, 5, 32)
    assert identity.as_dict()["map_shape"] == [5, 5, 32]
    frames = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    features = backbone.extract(frames)
    model = backbone.keras_model
    inner = keras.Model(model.input, model.get_layer("mixed10").output)
    maps = inner(frames.astype(np.float32) / 127.5 - 1.0).numpy()
    np.testing.assert_allclose(features, pool_map(maps), rtol=1e-4, atol=1e-5)
    assert for_backbone(DEFAULT, WithMotion(backbone, MOTION_SIZE)).head.map_shape == (5, 5, 32)
