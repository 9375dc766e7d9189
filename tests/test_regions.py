"""`--pooling regions`: a backbone's last feature map pooled over the whole image and its four
quadrants (realtime.backbones.regions), in NumPy, in a rewritten .tflite and in InceptionV3's
Keras graph; recorded with the backbone's identity; refused where it does not match."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from realtime.backbones.base import BackboneIdentity
from realtime.backbones.regions import Pooling, pool_regions, region_slices
from realtime.core.errors import InputError


def test_quadrants_are_halves_rounded_up():
    # odd maps: the middle row and column belong to both halves
    assert region_slices(5, 5)[1:] == [
        (slice(0, 3), slice(0, 3)),
        (slice(0, 3), slice(2, 5)),
        (slice(2, 5), slice(0, 3)),
        (slice(2, 5), slice(2, 5)),
    ]
    assert region_slices(7, 7)[4] == (slice(3, 7), slice(3, 7))
    assert region_slices(8, 6)[2] == (slice(0, 4), slice(3, 6))
    assert region_slices(1, 1) == [(slice(0, 1), slice(0, 1))] * 5
    with pytest.raises(ValueError):
        region_slices(0, 3)


def test_pooled_values_by_hand():
    # a 4 x 4 map whose value is 10 x row + column, one channel; and its negative
    grid = np.add.outer(10 * np.arange(4), np.arange(4)).astype(np.float32)
    maps = np.stack([grid, -grid], axis=-1)[None]  # (1, 4, 4, 2)
    pooled = pool_regions(maps)
    assert pooled.shape == (1, 10) and pooled.dtype == np.float32
    # whole 16.5; top-left rows 0-1 cols 0-1: 5.5; top-right 7.5; bottom-left 25.5; 27.5
    np.testing.assert_allclose(
        pooled[0], [16.5, -16.5, 5.5, -5.5, 7.5, -7.5, 25.5, -25.5, 27.5, -27.5]
    )


def test_an_object_moving_across_changes_the_quadrants_not_the_whole():
    """What the pooling is for: a spot on the left or on the right of the map gives the same
    whole-image average (all a globally pooled backbone keeps) and different quadrants."""
    left, right = np.zeros((1, 5, 5, 3), np.float32), np.zeros((1, 5, 5, 3), np.float32)
    left[0, 1, 0] = right[0, 1, 4] = [1.0, 2.0, 3.0]
    a, b = pool_regions(left)[0], pool_regions(right)[0]
    np.testing.assert_array_equal(a[:3], b[:3])
    np.testing.assert_allclose(a[3:6], np.array([1, 2, 3]) / 9)  # top-left sees it
    np.testing.assert_array_equal(a[6:9], 0)  # top-right does not
    np.testing.assert_array_equal(b[3:6], 0)
    np.testing.assert_allclose(b[6:9], np.array([1, 2, 3]) / 9)


def test_identity_writes_pooling_only_when_not_global():
    old = {"name": "tflite/abc", "feature_size": 1024, "image_size": 224}
    identity = BackboneIdentity.from_dict(old)
    assert identity.pooling is Pooling.GLOBAL
    assert identity.as_dict() == old  # cache keys and metadata of global models unchanged
    regions = BackboneIdentity.from_dict({**old, "feature_size": 5120, "pooling": "regions"})
    assert regions.pooling is Pooling.REGIONS
    assert regions.as_dict()["pooling"] == "regions"
    assert regions != BackboneIdentity.from_dict({**old, "feature_size": 5120})


def test_metadata_with_an_unknown_pooling_is_refused():
    from realtime.head.metadata import MetadataError, _backbone

    good = {"backbone": {"name": "x", "feature_size": 8, "pooling": "regions"}}
    _backbone(good)
    with pytest.raises(MetadataError, match="backbone.pooling must be one of global, regions"):
        _backbone({"backbone": {"name": "x", "feature_size": 8, "pooling": "corners"}})


def test_a_head_is_not_run_on_features_pooled_another_way(tmp_path):
    from types import SimpleNamespace

    from realtime.head.modeldir import check_compatible

    trained = BackboneIdentity("tflite/abc", 5120, 224, pooling=Pooling.REGIONS)
    info = SimpleNamespace(backbone=trained, image_size=224)
    check_compatible(info, trained, tmp_path)
    wrong = "pooled as regions, but the backbone pools them as global"
    with pytest.raises(InputError, match=wrong):
        check_compatible(info, BackboneIdentity("tflite/abc", 5120, 224), tmp_path)


@pytest.mark.shared
def test_litert_regions_from_the_feature_map(embedder_path):
    """The shared MobileNet v1 embedder rewritten in memory: its 7 x 7 x 1024 map pooled; the
    whole-image part is the embedder's own output (to its output's quantisation step); the file
    on disk is untouched; parallel extractors give the same features."""
    from realtime.backbones.litert import LiteRTBackbone

    before = hashlib.sha256(embedder_path.read_bytes()).hexdigest()
    plain = LiteRTBackbone(embedder_path, num_threads=2)
    regions = LiteRTBackbone(embedder_path, num_threads=2, pooling=Pooling.REGIONS)
    assert hashlib.sha256(embedder_path.read_bytes()).hexdigest() == before
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    frames[:, :, :112] //= 4  # a dark left half: left and right quadrants differ
    features = regions.extract(frames)
    assert features.shape == (3, 5120) and regions.feature_size == 5120
    step = plain._out_scale
    np.testing.assert_allclose(features[:, :1024], plain.extract(frames), atol=1.01 * step)
    top_left, top_right = features[:, 1024:2048], features[:, 2048:3072]
    assert np.abs(top_left - top_right).mean() > 10 * np.abs(features[:, :1024]).mean() / 100
    identity = regions.identity()
    assert identity.pooling is Pooling.REGIONS and identity.feature_size == 5120
    assert identity.name == plain.identity().name and identity.sha256 == before
    for extract in regions.parallel_extractors():
        np.testing.assert_array_equal(extract(frames), features)


def test_a_tflite_model_without_an_average_pool_is_refused(tmp_path):
    pytest.importorskip("ai_edge_litert")
    from realtime.backbones.litert import LiteRTBackbone

    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(InputError, match="bogus.tflite"):
        LiteRTBackbone(bogus, pooling=Pooling.REGIONS)


@pytest.mark.shared
def test_a_classifier_pools_its_last_map_not_its_logits(shared_dir):
    """MobileNet v2 (a classifier): its last average pool's input (7 x 7 x 1280), not the
    1001 class scores after it."""
    from realtime.backbones.litert import LiteRTBackbone

    backbone = LiteRTBackbone(
        shared_dir / "models" / "mobilenet_v2_1.0_224_quant.tflite", pooling="regions"
    )
    assert backbone.feature_size == 5 * 1280
    frames = np.random.default_rng(2).integers(0, 256, (1, 224, 224, 3), dtype=np.uint8)
    whole = backbone.extract(frames)[0, :1280]
    # a map after ReLU6, averaged: within [0, 6] and far from the class probabilities'
    # sum of 1 that the model's own output has
    assert whole.min() >= 0 and whole.max() <= 6.01
    assert whole.sum() > 50


@pytest.mark.slow
def test_inception_regions_in_the_graph_equal_numpy_pooling():
    """InceptionV3 (random weights) pools over regions inside its Keras graph, as every
    converted backend runs it; the result is `pool_regions` of its mixed10 map."""
    pytest.importorskip("tensorflow")
    import keras

    from realtime.backbones.keras import KerasInceptionV3

    backbone = KerasInceptionV3(None, pooling=Pooling.REGIONS)
    assert backbone.feature_size == 10240
    assert backbone.identity().pooling is Pooling.REGIONS
    frames = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    features = backbone.extract(frames)
    model = backbone.keras_model
    inner = keras.Model(model.input, model.get_layer("mixed10").output)
    maps = inner(frames.astype(np.float32) / 127.5 - 1.0).numpy()
    assert maps.shape == (2, 5, 5, 2048)
    np.testing.assert_allclose(features, pool_regions(maps), rtol=1e-5, atol=1e-6)
