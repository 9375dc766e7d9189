"""How far the picture moved (`--motion`): the thumbnails the backbone appends
(realtime.backbones.motion), the phase correlation and its sum over a window
(realtime.head.motion) on pictures whose move is known, how a model records it, and the
recipe and command line that turn it on."""

from __future__ import annotations

import dataclasses
import json
from unittest import mock

import cv2
import numpy as np
import pytest

from realtime.backbones.base import Backbone, BackboneIdentity
from realtime.backbones.motion import MOTION_SIZE, WithMotion, thumbnails, unwrapped
from realtime.core.errors import InputError
from realtime.head.config import WINDOW_INPUT_LAYER, ChangeReference, HeadConfig, HeadInput
from realtime.head.fitting import calibrate_motion_scores, fit_motion_scores, window_numbers
from realtime.head.metadata import MetadataError, check_metadata
from realtime.head.modeldir import ModelInfo, check_compatible
from realtime.head.motion import hann, phase_step, window_motion
from training.recipes import DEFAULT, SEED, for_backbone

MOTION_HEAD = HeadConfig(
    input=HeadInput.APPEARANCE_CHANGE,
    appearance_dims=16,
    change_dims=16,
    change_reference=ChangeReference.MEAN,
    motion=MOTION_SIZE,
)


def _scene(seed=0, size=400, blur=2.0) -> np.ndarray:
    """A smooth random texture, 0..1: every window of it has something to lock on to."""
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), blur)
    return (scene - scene.min()) / (scene.max() - scene.min())


def _views(scene, path, side=MOTION_SIZE) -> np.ndarray:
    """(len(path), side, side): the scene seen through a window whose top-left corner follows
    `path` ((x, y) pairs, whole pixels): the picture moves the other way."""
    return np.stack([scene[y : y + side, x : x + side] for x, y in path]).astype(np.float32)


@pytest.mark.parametrize("move", [(3, 0), (0, -4), (-5, 2), (7, 7), (0, 0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_step_is_the_translation_between_two_pictures(move, seed):
    """The camera moves by `move`: the picture moves by minus that, to a quarter of a pixel at
    the peak; around it (the signed 5 x 5 centroid) to 0.65, pulled towards no move by the
    window, which stays where the frame is."""
    scene = _scene(seed)
    dx, dy = move
    before, after = _views(scene, [(150, 150), (150 + dx, 150 + dy)])
    step = phase_step(before, after)
    assert step.shape == (4,) and step.dtype == np.float32
    np.testing.assert_allclose(step[:2], [-dx, -dy], atol=0.25)
    np.testing.assert_allclose(step[2:], [-dx, -dy], atol=0.65)
    # the same pair the other way round moves back; the mirrored pair moves the mirrored way
    np.testing.assert_allclose(phase_step(after, before), -step, atol=1e-4)
    mirrored = phase_step(before[:, ::-1], after[:, ::-1])
    np.testing.assert_allclose(mirrored, step * [-1, 1, -1, 1], atol=1e-4)


def test_a_step_is_the_translation_through_noise_and_light_changes():
    """A picture growing brighter moves as it did (each thumbnail less its mean: phase
    correlation reads where things are, not how bright they are); a noisy camera still moves
    by about its step. Noise of 0.02 on a thumbnail is 0.08 (20 levels of 255) on each pixel
    of the model's input, which the 4 x 4 area average divides by 4."""
    rng = np.random.default_rng(3)
    before, after = _views(_scene(3), [(100, 100), (104, 98)])
    clean = phase_step(before, after)
    np.testing.assert_allclose(clean[:2], [-4, 2], atol=0.25)
    np.testing.assert_allclose(phase_step(before, 0.6 * after + 0.3), clean, atol=0.05)
    np.testing.assert_allclose(phase_step(0.5 * before, after - 0.2), clean, atol=0.05)
    before = before + rng.normal(0, 0.02, before.shape).astype(np.float32)
    after = after + rng.normal(0, 0.02, after.shape).astype(np.float32)
    np.testing.assert_allclose(phase_step(before, after), [-4, 2, -4, 2], atol=0.6)


def test_a_featureless_picture_moves_nowhere_and_gives_no_nan():
    flat = np.full((2, 16, 16), 0.5, np.float32)
    black = np.zeros((2, 16, 16), np.float32)
    for before, after in (flat, black, (flat[0], black[0])):
        step = phase_step(before, after)
        assert np.all(np.isfinite(step))
        np.testing.assert_allclose(step, 0.0, atol=1e-6)


def test_steps_stay_bounded_between_pictures_that_do_not_match():
    """Two unrelated noisy pictures (a cut, a covered lens) correlate nowhere in particular:
    the step lands anywhere, but each estimate stays a refinement of the peak's place (the
    3 x 3 centroid of positive values moves it by less than a pixel, the 5 x 5 one by at
    most 2), never a number blown up by a small or signed sum."""
    rng = np.random.default_rng(7)
    noise = rng.random((400, 2, 16, 16)).astype(np.float32)
    steps = phase_step(noise[:, 0], noise[:, 1])
    assert np.all(np.isfinite(steps))
    assert np.all(np.abs(steps) <= 8 + 2)
    assert np.all(np.abs(steps[:, :2] - steps[:, 2:]) <= 1 + 2)


def test_steps_are_computed_pair_by_pair_in_batches():
    scene = _scene(4)
    views = _views(scene, [(100 + 2 * t, 120 - t) for t in range(6)])
    batched = phase_step(views[:-1], views[1:])
    assert batched.shape == (5, 4)
    for t in range(5):
        np.testing.assert_allclose(batched[t], phase_step(views[t], views[t + 1]), atol=1e-6)


def test_the_hann_window_is_zero_at_the_borders_and_one_in_the_middle():
    window = hann(9)
    assert window.shape == (9, 9) and not window.flags.writeable
    np.testing.assert_allclose(window[0], 0.0)
    np.testing.assert_allclose(window[:, -1], 0.0)
    assert window[4, 4] == pytest.approx(1.0)
    np.testing.assert_allclose(window, window.T)


@pytest.mark.parametrize("velocity", [(2, 0), (0, 3), (-1, -2)])
def test_a_window_sums_its_steps_into_how_far_the_picture_went(velocity):
    vx, vy = velocity
    path = [(150 + vx * t, 150 + vy * t) for t in range(20)]
    views = _views(_scene(5), path)
    motion = window_motion(views)
    assert motion.shape == (4,)
    np.testing.assert_allclose(motion[:2], [-vx * 19, -vy * 19], atol=0.2 * 19)
    np.testing.assert_allclose(motion[2:], [-vx * 19, -vy * 19], atol=0.4 * 19)
    np.testing.assert_allclose(window_motion(views[::-1]), -motion, atol=1e-3)
    still = np.repeat(views[:1], 20, axis=0)
    np.testing.assert_allclose(window_motion(still), 0.0, atol=1e-4)


def test_a_window_with_holes_steps_between_its_valid_frames():
    """A window that lacks frames (dropped, or padding) steps from each valid frame to the
    next valid one: the distance is the same, the steps bigger; the frames it lacks are never
    read."""
    path = [(120 + 2 * t, 130 + t) for t in range(12)]
    views = _views(_scene(6), path)
    mask = np.ones(12, bool)
    mask[[0, 3, 4, 8, 11]] = False  # valid: 1 2 5 6 7 9 10
    garbage = views.copy()
    garbage[~mask] = np.random.default_rng(0).random((5, MOTION_SIZE, MOTION_SIZE))
    holey = window_motion(garbage, mask)
    np.testing.assert_allclose(holey, window_motion(views[mask]), atol=1e-5)
    np.testing.assert_allclose(holey[:2], [-2 * 9, -9], atol=1.0)  # frame 1 to frame 10
    # one valid frame or none: no motion
    one = np.zeros(12, bool)
    one[4] = True
    np.testing.assert_array_equal(window_motion(garbage, one), 0.0)
    np.testing.assert_array_equal(window_motion(garbage, np.zeros(12, bool)), 0.0)
    # batches of windows
    both = window_motion(np.stack([garbage, views]), np.stack([mask, np.ones(12, bool)]))
    np.testing.assert_allclose(both[0], holey, atol=1e-6)
    np.testing.assert_allclose(both[1], window_motion(views), atol=1e-6)


def test_thumbnails_are_the_grey_area_average_of_the_model_input():
    frame = np.zeros((224, 224, 3), np.uint8)
    frame[:112, :, 0] = 255  # the top half red
    frame[:, 112:, 1] = 120  # the right half some green
    thumb = thumbnails(frame[None], 56)
    assert thumb.shape == (1, 56 * 56) and thumb.dtype == np.float32
    grey = thumb.reshape(56, 56)
    np.testing.assert_allclose(grey[0, 0], 255 / 3 / 255, atol=1e-6)
    np.testing.assert_allclose(grey[0, -1], (255 + 120) / 3 / 255, atol=1e-6)
    np.testing.assert_allclose(grey[-1, -1], 120 / 3 / 255, atol=1e-6)
    np.testing.assert_allclose(grey[-1, 0], 0.0)
    np.testing.assert_allclose(grey[27, 10], 255 / 3 / 255, atol=1e-6)  # no blur across
    np.testing.assert_allclose(grey[28, 10], 0.0)
    # an area average: thin stripes, one pixel in four, are an even grey, not an alias of it
    stripes = np.zeros((224, 224, 3), np.uint8)
    stripes[:, ::4] = 200
    np.testing.assert_allclose(thumbnails(stripes[None], 56), 50 / 255, atol=1e-6)


class _Twice(Backbone):
    """A backbone double: two numbers per frame (its mean and its first pixel)."""

    name = "twice"
    feature_size = 2
    image_size = 224

    def extract(self, frames):
        frames = np.asarray(frames, np.float32)
        return np.stack([frames.mean(axis=(1, 2, 3)), frames[:, 0, 0, 0]], axis=1)

    def parallel_extractors(self):
        return [self.extract, self.extract]


def test_features_without_thumbnails_come_from_the_cache_of_those_with_them(tmp_path):
    """The default recipe caches features with thumbnails; `--recipe seed` (or `--no-motion`)
    on the same data then reads them from that cache, cut to the backbone's own features,
    which are the same numbers. Never the other way round, and never for a changed video."""
    import os
    import shutil

    from rich.console import Console

    from training.dataset import load_dataset
    from training.features import FeatureCache
    from training.synthetic import SyntheticSpec, generate
    from training.workflow import features_step

    data = load_dataset(generate(tmp_path / "d", SyntheticSpec(1, 1, min_frames=8, max_frames=9)))
    videos = data.videos
    quiet = Console(quiet=True)
    wide = features_step(data, WithMotion(_Twice(), MOTION_SIZE), 25.0, None, videos, None, quiet)
    assert wide.extracted_videos == len(videos) and wide.cache_hits == 0
    plain = features_step(data, _Twice(), 25.0, None, videos, None, quiet)
    assert plain.cache_hits == len(videos) and plain.extracted_videos == 0
    fresh = features_step(data, _Twice(), 25.0, None, videos, None, quiet, use_cache=False)
    for video in videos:
        assert plain.features[video.path].shape[1] == 2
        np.testing.assert_array_equal(plain.features[video.path], fresh.features[video.path])
        np.testing.assert_array_equal(plain.features[video.path], wide.features[video.path][:, :2])
    other = features_step(data, WithMotion(_Twice(), 8), 25.0, None, videos, None, quiet)
    assert other.cache_hits == 0  # another thumbnail size: its own cache
    changed = videos[0].path
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    again = features_step(data, _Twice(), 25.0, None, videos, None, quiet)
    assert again.extracted_videos == 1 and again.cache_hits == len(videos) - 1
    identity = WithMotion(_Twice(), MOTION_SIZE).cache_identity()
    shutil.rmtree(FeatureCache(data.root / ".features", identity, 224, 25.0).folder)
    wide = features_step(data, WithMotion(_Twice(), MOTION_SIZE), 25.0, None, videos, None, quiet)
    assert wide.cache_hits == 0  # the plain cache holds video 0 now, but no thumbnail


def test_the_int8_agreement_gives_a_head_the_thumbnails_it_reads(tmp_path):
    """`int8_head_report` on an int8 backbone with thumbnails appended: the held-out frames'
    int8 and fp32 features, each followed by the frame's stored thumbnail (the same on both
    sides), go through the head; without stored thumbnails of its size, no report."""
    from realtime.backbones.base import HELD_OUT_FILE
    from realtime.backbones.int8 import int8_head_report

    rng = np.random.default_rng(0)
    fp32 = rng.normal(0, 1, (6, 2)).astype(np.float32)
    int8 = fp32.copy()
    int8[4, 0] = -fp32[4, 0]  # one frame's top-1 flips
    thumbs = rng.random((6, 4 * 4)).astype(np.float32)
    np.savez(
        tmp_path / HELD_OUT_FILE,
        int8=int8,
        fp32=fp32,
        video=[0, 0, 0, 1, 1, 1],
        thumbnails_4=thumbs,
    )
    pushed = []

    class Stream:
        def push(self, feature):
            pushed.append(feature)
            return np.eye(2)[int(feature[0] > 0)]

    classifier = mock.Mock(stream=Stream)
    quantized = _Twice()
    quantized.quantized, quantized.folder = {"digest": "x"}, tmp_path
    report = int8_head_report(WithMotion(quantized, 4), classifier)
    assert report == (
        "int8: this model's top-1 is the same as on fp32 features for 83.3% of 6 held-out frames"
    )
    assert len(pushed) == 12 and all(len(f) == 2 + 16 for f in pushed)
    np.testing.assert_array_equal(pushed[0], np.concatenate([int8[0], thumbs[0]]))
    np.testing.assert_array_equal(pushed[1], np.concatenate([fp32[0], thumbs[0]]))
    pushed.clear()
    assert "of 6 held-out frames" in int8_head_report(quantized, classifier)  # no thumbnails
    assert all(len(f) == 2 for f in pushed)
    assert int8_head_report(WithMotion(quantized, 8), classifier) is None  # none stored at 8
    assert int8_head_report(WithMotion(_Twice(), 4), classifier) is None  # not int8


def test_a_backbone_with_motion_appends_each_frame_thumbnail():
    inner = _Twice()
    backbone = WithMotion(inner, 8)
    frames = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    features = backbone.extract(frames)
    assert features.shape == (3, 2 + 64) and backbone.feature_size == 66
    np.testing.assert_allclose(features[:, :2], inner.extract(frames))
    np.testing.assert_array_equal(features[:, 2:], thumbnails(frames, 8))
    extractors = backbone.parallel_extractors()
    assert len(extractors) == 2
    for extract in extractors:
        np.testing.assert_array_equal(extract(frames), features)
    identity = backbone.identity()
    assert identity == BackboneIdentity("twice", 66, 224, motion=8)
    assert identity.as_dict() == {
        "name": "twice",
        "feature_size": 66,
        "image_size": 224,
        "motion": 8,
    }
    assert BackboneIdentity.from_dict(identity.as_dict()) == identity
    assert "motion" not in inner.identity().as_dict()  # identities from before read as before
    assert backbone.cache_identity() != inner.cache_identity()
    assert unwrapped(backbone) is inner and unwrapped(inner) is inner
    with pytest.raises(ValueError):
        WithMotion(inner, 1)


def _info(head: HeadConfig, motion: int | None) -> ModelInfo:
    return ModelInfo(
        labels=["a", "b"],
        window=20,
        image_size=224,
        backbone=BackboneIdentity("twice", 66, 224, motion=motion),
        head=head,
    )


def test_a_model_runs_only_on_features_with_its_thumbnails(tmp_path):
    head = dataclasses.replace(MOTION_HEAD, motion=8)
    info = _info(head, 8)
    check_compatible(info, WithMotion(_Twice(), 8).identity(), tmp_path)
    with pytest.raises(InputError, match="8x8 thumbnails, but the backbone's end with 4x4"):
        check_compatible(info, BackboneIdentity("twice", 66, 224, motion=4), tmp_path)
    plain = _info(dataclasses.replace(head, motion=0), None)
    with pytest.raises(InputError, match="no thumbnails, but the backbone's end with 8x8"):
        check_compatible(plain, WithMotion(_Twice(), 8).identity(), tmp_path)


def test_the_head_records_its_motion_and_heads_without_it_read_as_before():
    data = MOTION_HEAD.as_dict()
    assert data["motion"] == MOTION_SIZE
    assert HeadConfig.from_dict(json.loads(json.dumps(data))) == MOTION_HEAD
    still = dataclasses.replace(DEFAULT.head, motion=0, motion_scores=False)
    assert "motion" not in still.as_dict() and "motion" not in SEED.head.as_dict()
    assert "motion_scores" not in MOTION_HEAD.as_dict()
    assert DEFAULT.head.as_dict()["motion"] == MOTION_SIZE
    assert DEFAULT.head.as_dict()["motion_scores"] is True
    assert MOTION_HEAD.window_dims == 4 and MOTION_HEAD.thumbnail_size == MOTION_SIZE**2
    both = dataclasses.replace(
        MOTION_HEAD, where_trend=True, where_shift=True, map_shape=(7, 7, 32)
    )
    assert both.window_dims == 8
    assert "+ 4 for how far its 56x56 pixels moved" in MOTION_HEAD.describe(5)
    with pytest.raises(ValueError, match="motion"):
        HeadConfig(motion=MOTION_SIZE)  # the raw input reads no motion
    with pytest.raises(ValueError, match="motion"):
        dataclasses.replace(MOTION_HEAD, motion=1)
    with pytest.raises(ValueError, match="whole number"):
        HeadConfig.from_dict({**data, "motion": True})


def test_a_head_whose_scores_read_the_motion_records_it_and_others_read_as_before():
    scores = dataclasses.replace(MOTION_HEAD, motion_scores=True)
    data = scores.as_dict()
    assert data["motion_scores"] is True
    assert HeadConfig.from_dict(json.loads(json.dumps(data))) == scores
    assert "motion_scores" not in MOTION_HEAD.as_dict()  # written only when on
    assert HeadConfig.from_dict(MOTION_HEAD.as_dict()) == MOTION_HEAD
    # the GRU reads none of the motion's numbers, the scores read all 4
    assert (scores.window_dims, scores.gru_window_dims, MOTION_HEAD.gru_window_dims) == (4, 0, 4)
    mapped = dataclasses.replace(scores, where_trend=True, where_shift=True, map_shape=(7, 7, 32))
    assert mapped.gru_window_dims == 4
    text = scores.describe(5)
    assert "for how far" not in text.split("GRU")[0]
    assert text.endswith(
        "Dense(5) + the fitted scores of how far its 56x56 pixels moved (4) -> softmax"
    )
    with pytest.raises(ValueError, match="motion_scores needs motion"):
        dataclasses.replace(MOTION_HEAD, motion=0, motion_scores=True)
    with pytest.raises(ValueError, match="true or false"):
        HeadConfig.from_dict({**data, "motion_scores": 1})


def test_the_motion_scores_are_the_linear_discriminant_of_the_training_windows():
    """Worked by hand: two classes whose windows sit at +-1 around their means in each of the
    4 directions (so the class means are exact and the shared covariance is the scatter
    about them, diag(1, 4, 1, 1) x 2 x 2, over the 16 windows); a third class has no
    training windows."""
    spread = np.diag([1.0, 2.0, 1.0, 1.0])
    around = np.concatenate([spread, -spread])  # 8 windows about 0, each direction twice
    means = np.array([[3.0, 0.0, 1.0, 0.0], [-3.0, 2.0, 1.0, 0.0]])
    moved = np.concatenate([means[0] + around, means[1] + around])
    targets = np.repeat([0, 1], 8)
    kernel, bias = fit_motion_scores(moved, targets, 3)
    assert kernel.shape == (4, 3) and bias.shape == (3,)
    covariance = np.diag([1.0, 4.0, 1.0, 1.0]) * 4 / 16  # each direction: 2 x 2 windows at +-s
    precision = np.linalg.inv(covariance)
    for c in (0, 1):
        np.testing.assert_allclose(kernel[:, c], precision @ means[c], rtol=1e-5)
        expected = -0.5 * means[c] @ precision @ means[c] + np.log(0.5)
        np.testing.assert_allclose(bias[c], expected, rtol=1e-5)
    # the class never seen: no weight, the others' mean bias
    np.testing.assert_array_equal(kernel[:, 2], 0.0)
    np.testing.assert_allclose(bias[2], bias[:2].mean(), rtol=1e-6)
    # what it says: a window moving like class 1's mean is class 1's, and the reverse
    scores = means @ kernel + bias
    assert list(scores[:, :2].argmax(axis=1)) == [0, 1]
    # a number that never varies (no motion that way) does not make it fail
    still = moved.copy()
    still[:, 3] = 0.0
    kernel, bias = fit_motion_scores(still, targets, 2)
    assert np.isfinite(kernel).all() and np.isfinite(bias).all()
    np.testing.assert_array_equal(kernel[3], 0.0)


def test_the_head_records_its_quadrants_and_heads_without_them_read_as_before():
    scores = dataclasses.replace(MOTION_HEAD, motion_scores=True)
    quadrants = dataclasses.replace(scores, motion_quadrants=True)
    assert "motion_quadrants" not in scores.as_dict()  # written only when on
    data = json.loads(json.dumps(quadrants.as_dict()))
    assert data["motion_quadrants"] is True and HeadConfig.from_dict(data) == quadrants
    assert (scores.motion_dims, quadrants.motion_dims) == (4, 20)
    assert quadrants.window_dims == 20 and quadrants.gru_window_dims == 0
    assert "moved (20: the whole and each quadrant) -> softmax" in quadrants.describe(3)
    assert "moved (4) -> softmax" in scores.describe(3)
    with pytest.raises(ValueError, match="motion_quadrants needs motion_scores"):
        dataclasses.replace(MOTION_HEAD, motion_quadrants=True)
    with pytest.raises(ValueError, match="even thumbnail side of 4 or more"):
        dataclasses.replace(quadrants, motion=7)
    with pytest.raises(ValueError, match="motion_quadrants must be true or false"):
        HeadConfig.from_dict({**data, "motion_quadrants": "yes"})
    summarised = dataclasses.replace(quadrants, motion_summary=True)
    assert "motion_summary" not in data  # written only when on
    written = json.loads(json.dumps(summarised.as_dict()))
    assert written["motion_summary"] is True and HeadConfig.from_dict(written) == summarised
    assert summarised.motion_dims == 20  # the head computes the same 20 numbers
    assert "(20: the whole and each quadrant, summarised) -> softmax" in summarised.describe(3)
    with pytest.raises(ValueError, match="motion_summary needs motion_quadrants"):
        dataclasses.replace(scores, motion_summary=True)
    with pytest.raises(ValueError, match="motion_summary must be true or false"):
        HeadConfig.from_dict({**written, "motion_summary": 1})


def _texture(size: int, seed: int) -> np.ndarray:
    """A smooth random grayscale picture, 0..1."""
    noise = np.random.default_rng(seed).random((size, size)).astype(np.float32)
    return cv2.GaussianBlur(noise, (0, 0), 2.0)


def test_each_quadrant_of_the_thumbnail_says_how_far_it_moved():
    """`motion_quadrants`: after the whole thumbnail's 4 numbers, each quadrant's (row by
    row), from its own phase correlations. Only the top-right quadrant's picture moves, 2
    pixels to the right a frame: its numbers say about 2 x 4 = 8 to the right, the other
    quadrants' say it stayed, and the whole thumbnail's are what they are without the
    quadrants."""
    from realtime.head.motion import QUADRANTS, motion_step

    assert QUADRANTS == ((0, 0), (0, 1), (1, 0), (1, 1))
    still = _texture(56, 0)
    moving = _texture(80, 1)
    frames = []
    for t in range(5):
        frame = still.copy()
        frame[:28, 28:] = moving[20:48, 20 - 2 * t : 48 - 2 * t]  # content moves right
        frames.append(frame)
    thumbs = np.stack(frames)
    numbers = window_motion(thumbs, quadrants=True)
    assert numbers.shape == (20,)
    np.testing.assert_array_equal(numbers[:4], window_motion(thumbs))
    # top right: to the right (under 8: the picture entering at its edge is new to it)
    assert 6.0 < numbers[8] <= 8.5 and 6.0 < numbers[10] <= 8.5
    np.testing.assert_allclose(numbers[[9, 11]], 0.0, atol=0.5)
    for quadrant in (4, 12, 16):
        np.testing.assert_allclose(numbers[quadrant : quadrant + 4], 0.0, atol=0.5)
    step = motion_step(thumbs[0], thumbs[1], quadrants=True)
    assert step.shape == (20,)
    alone = phase_step(thumbs[0, :28, 28:], thumbs[1, :28, 28:])  # the four are one batch
    np.testing.assert_allclose(step[8:12], alone, rtol=0, atol=1e-5)


def test_the_quadrants_discriminant_shrinks_its_covariance():
    """`fit_motion_scores(..., shrunk=True)` (`motion_quadrants`: 20 numbers, a few dozen
    videos): each class's covariance shrunk by the Ledoit-Wolf estimate. With fewer windows
    than numbers, the plain covariance is singular and the shrunk one is not; with many, the
    shrinkage goes to 0 and the discriminant to the plain one; and it is scikit-learn's
    `LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")` where that is installed."""
    from realtime.head.fitting import ledoit_wolf

    rng = np.random.default_rng(0)
    few = rng.normal(0, 1, (6, 20)) * np.linspace(0.5, 3, 20)
    assert np.linalg.matrix_rank(np.cov(few.T, bias=True)) < 20
    shrunk = ledoit_wolf(few)
    assert np.linalg.eigvalsh(shrunk).min() > 0
    np.testing.assert_allclose(np.diag(shrunk), few.var(axis=0), rtol=1e-9)  # spreads kept
    many = rng.normal(0, 1, (20000, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0, 0, 2]])
    np.testing.assert_allclose(ledoit_wolf(many), np.cov(many.T, bias=True), atol=0.02)
    moved, targets, _ = _videos_moving(6, 3, 2.0, seed=1)
    moved = np.concatenate([moved, rng.normal(0, 1, (len(moved), 16))], axis=1)  # 20 numbers
    kernel, bias = fit_motion_scores(moved, targets, 3, shrunk=True)
    plain, _ = fit_motion_scores(moved, targets, 3)
    assert kernel.shape == (20, 3) and np.abs(kernel - plain).max() > 1e-3
    # 16 numbers of noise beside the 4 that tell, 5 videos a class: the plain discriminant
    # fits the noise, and videos it never saw trust it less than the shrunk one
    for seed in range(3):
        few_moved, few_targets, few_videos = _videos_moving(5, 3, 2.0, seed)
        noise = np.random.default_rng(seed).normal(0, 1, (len(few_moved), 16))
        few_moved = np.concatenate([few_moved, noise], axis=1)
        plain_t = calibrate_motion_scores(few_moved, few_targets, few_videos, 3)
        shrunk_t = calibrate_motion_scores(few_moved, few_targets, few_videos, 3, shrunk=True)
        assert shrunk_t > plain_t
    lda = pytest.importorskip("sklearn.discriminant_analysis")
    reference = lda.LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(moved, targets)
    np.testing.assert_allclose(kernel, reference.coef_.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bias, reference.intercept_, rtol=1e-4, atol=1e-5)


def _videos_moving(per_class: int, classes: int, apart: float, seed: int):
    """8 windows' motion numbers for each of per_class x classes videos: each video moves its
    own way (unit spread between videos), plus `apart` x its class's own direction; each
    window of a video a little differently. (moved, targets, videos)"""
    rng = np.random.default_rng(seed)
    directions = rng.normal(0, 1, (classes, 4))
    moved, targets, videos = [], [], []
    for v in range(per_class * classes):
        c = v % classes
        own = rng.normal(0, 1, 4) + apart * directions[c]
        moved.append(own + rng.normal(0, 0.2, (8, 4)))
        targets += [c] * 8
        videos += [v] * 8
    return np.concatenate(moved), np.array(targets), np.array(videos)


def test_the_motion_scores_are_trusted_as_far_as_videos_they_never_saw_bear_them_out():
    for seed in range(3):
        # the class moves its own way: held-out videos confirm it
        assert calibrate_motion_scores(*_videos_moving(9, 4, 2.0, seed), 4) >= 0.3
        # every video moves its own way whatever its class: the discriminant fitted on the
        # training videos finds chance differences (trusted ~1 if judged on those videos),
        # which held-out videos do not bear out
        assert calibrate_motion_scores(*_videos_moving(9, 4, 0.0, seed), 4) <= 0.15
    # one video per class: none can be held out
    assert calibrate_motion_scores(*_videos_moving(1, 4, 2.0, 0), 4) == 0.0


def test_the_motion_scores_are_calibrated_on_groups_held_out_whole():
    """Windows of one recording move alike. Held out one by one, each has siblings the
    discriminant was fitted on, which vouch for motion that only tells recordings apart;
    held out by recording (group), they do not."""
    for seed in range(3):
        moved, targets, recordings = _videos_moving(9, 4, 0.0, seed)
        each_window = np.arange(len(moved))
        assert calibrate_motion_scores(moved, targets, each_window, 4) >= 0.5
        assert calibrate_motion_scores(moved, targets, recordings, 4) <= 0.15
        # groups may be named (in the same order: the folds are dealt in the groups' order)
        named = np.array([f"rec{r:02d}" for r in recordings])
        assert calibrate_motion_scores(moved, targets, named, 4) == calibrate_motion_scores(
            moved, targets, recordings, 4
        )
    # motion that tells the classes apart survives holding out whole groups
    assert calibrate_motion_scores(*_videos_moving(9, 4, 2.0, 0), 4) >= 0.3


def test_a_head_whose_scores_read_the_motion_is_fitted_to_which_way_it_moved():
    """Training windows that move right are class 1, left class 0, their features noise: the
    fitted head (untrained GRU) says which way new windows move."""
    import keras

    from realtime.head.config import MOTION_SCORES_LAYER
    from realtime.head.keras import build_head, fit_head_input
    from realtime.head.numpyhead import NumpyHead

    side, size, window = 16, 32, 12
    head = dataclasses.replace(MOTION_HEAD, appearance_dims=4, change_dims=4, motion=side)
    head = dataclasses.replace(head, motion_scores=True)
    rng = np.random.default_rng(0)

    def windows(n, seed):
        features, targets = [], []
        for i in range(n):
            scene = _scene(seed + i, size=120)
            sign = 1 if i % 2 else -1
            x, y = (int(v) for v in rng.integers(30, 60, 2))
            path = [(x - sign * 2 * t, y + int(rng.integers(-1, 2))) for t in range(window)]
            thumbs = _views(scene, path, side).reshape(window, side * side)
            noise = rng.normal(0, 1, (window, size)).astype(np.float32)
            features.append(np.concatenate([noise, thumbs], axis=1))
            targets.append(int(sign > 0))
        return np.stack(features), np.ones((n, window), bool), np.array(targets)

    keras.utils.set_random_seed(0)
    model = build_head(window, size + side * side, 2, head)
    features, masks, targets = windows(24, 0)
    with pytest.raises(ValueError, match="known videos and classes"):
        fit_head_input(model, head, features, masks)
    fit_head_input(model, head, features, masks, np.arange(24), targets)
    kernel, _ = model.get_layer(MOTION_SCORES_LAYER).get_weights()
    assert kernel[0, 1] > kernel[0, 0]  # the picture moves right: class 1 ("x" rises)
    held_out, held_masks, truth = windows(10, 100)
    numpy_head = NumpyHead.from_keras(model)
    got = [numpy_head.predict(f, m).argmax() for f, m in zip(held_out, held_masks, strict=True)]
    assert got == list(truth)
    # the same windows with classes that have nothing to do with the way they move: the
    # discriminant still finds differences among the training videos, the scores trust
    # them little (calibrate_motion_scores)
    thumbs = features[..., size:]
    scale = model.get_layer(WINDOW_INPUT_LAYER).get_weights()[-1]
    moved = window_numbers(None, masks, head, thumbs) * scale
    unrelated = np.random.default_rng(3).permutation(targets)
    for labels, trusted in ((targets, True), (unrelated, False)):
        fit_head_input(model, head, features, masks, np.arange(24), labels)
        kernel, bias = model.get_layer(MOTION_SCORES_LAYER).get_weights()
        full_kernel, full_bias = fit_motion_scores(moved, labels, 2)
        trust = np.linalg.norm(kernel) / np.linalg.norm(full_kernel)
        np.testing.assert_allclose(kernel, trust * full_kernel, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(bias, trust * full_bias, rtol=1e-4, atol=1e-6)
        assert trust > 0.0 if trusted else trust <= 0.15
    # with each quadrant's numbers too: 20, the discriminant shrunk, calibrated alike
    quadrants = dataclasses.replace(head, motion_quadrants=True)
    model = build_head(window, size + side * side, 2, quadrants)
    fit_head_input(model, quadrants, features, masks, np.arange(24), targets)
    kernel, bias = model.get_layer(MOTION_SCORES_LAYER).get_weights()
    scale = model.get_layer(WINDOW_INPUT_LAYER).get_weights()[-1]
    moved = window_numbers(None, masks, quadrants, thumbs) * scale
    assert kernel.shape == (20, 2) and moved.shape == (24, 20)
    trust = calibrate_motion_scores(moved, targets, np.arange(24), 2, shrunk=True)
    full_kernel, full_bias = fit_motion_scores(moved, targets, 2, shrunk=True)
    assert trust > 0.0 and not np.allclose(full_kernel, fit_motion_scores(moved, targets, 2)[0])
    np.testing.assert_allclose(kernel, trust * full_kernel, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bias, trust * full_bias, rtol=1e-4, atol=1e-6)


def _metadata(head: dict, backbone_motion) -> dict:
    backbone = {"name": "twice", "feature_size": 66, "image_size": 224}
    if backbone_motion is not None:
        backbone["motion"] = backbone_motion
    return {
        "format_version": 2,
        "labels": ["a", "b"],
        "window": 20,
        "image_size": 224,
        "backbone": backbone,
        "head": head,
    }


def test_metadata_with_motion_is_checked_against_its_backbone():
    head = dataclasses.replace(MOTION_HEAD, motion=8).as_dict()
    plain = dataclasses.replace(MOTION_HEAD, motion=0).as_dict()
    check_metadata(_metadata(head, 8), 2)
    scores = {**head, "motion_scores": True}
    check_metadata(_metadata(scores, 8), 2)
    for bad, backbone, message in [
        ({**head, "motion": 4}, 8, "backbone's thumbnail side"),
        (head, None, "backbone's thumbnail side"),
        ({**head, "motion": "8"}, 8, "head.motion"),
        ({**head, "motion": 1}, 8, "head.motion"),
        (head, 9, "more numbers than"),  # 81 of 66 features
        (head, 0, "backbone.motion"),
        ({**head, "motion_scores": "yes"}, 8, "head.motion_scores must be true or false"),
        ({**plain, "motion_scores": True}, None, "head.motion_scores needs head.motion"),
        ({**head, "motion_quadrants": True}, 8, "head.motion_quadrants needs head.motion_sc"),
        ({**scores, "motion_quadrants": 1}, 8, "head.motion_quadrants must be true or false"),
        ({**scores, "motion_summary": True}, 8, "head.motion_summary needs head.motion_quad"),
        (
            {**scores, "motion_quadrants": True, "motion_summary": "no"},
            8,
            "head.motion_summary must be true or false",
        ),
    ]:
        with pytest.raises(MetadataError, match=message):
            check_metadata(_metadata(bad, backbone), 2)
    check_metadata(_metadata({**scores, "motion_quadrants": True}, 8), 2)
    check_metadata(_metadata({**scores, "motion_quadrants": True, "motion_summary": True}, 8), 2)
    for side in (5, 2):
        odd = {**scores, "motion": side, "motion_quadrants": True}
        with pytest.raises(MetadataError, match="even head.motion of 4 or more"):
            check_metadata(_metadata(odd, side), 2)


def test_the_recipe_needs_features_with_the_thumbnails_it_reads():
    recipe = dataclasses.replace(DEFAULT, head=dataclasses.replace(DEFAULT.head, motion=8))
    assert for_backbone(recipe, WithMotion(_Twice(), 8)) == recipe
    for backbone in (_Twice(), WithMotion(_Twice(), 16)):
        with pytest.raises(InputError, match="8x8 thumbnails"):
            for_backbone(recipe, backbone)


def test_the_command_line_turns_motion_on_and_off():
    from training.cli import _choice, _recipe, build_parser

    parser = build_parser()
    args = parser.parse_args(["train", "--data", "d", "--out", "m", "--motion"])
    recipe = _recipe(args)
    assert recipe.head.motion == MOTION_SIZE
    assert _choice(args, None, recipe).motion == MOTION_SIZE
    args = parser.parse_args(["features", "--data", "d", "--motion"])  # the same features
    assert _choice(args, None, _recipe(args)).motion == MOTION_SIZE
    args = parser.parse_args(["train", "--data", "d", "--out", "m", "--no-motion"])
    assert _recipe(args).head.motion == 0 and _choice(args, None, _recipe(args)).motion is None
    args = parser.parse_args(["train", "--data", "d", "--out", "m"])
    assert _recipe(args).head == DEFAULT.head
    args = parser.parse_args(["train", "--data", "d", "--out", "m", "--recipe", "seed", "--motion"])
    with pytest.raises(InputError, match="--motion needs"):
        _recipe(args)


def test_the_command_line_sends_the_motion_to_the_scores():
    """The default recipe sends the motion to the class scores; `--no-motion` ends both (the
    scores cannot stand without the motion); `--no-motion-scores` keeps the motion, in the
    GRU; `--motion-scores` turns both on for a recipe without them."""
    from training.cli import _choice, _recipe, build_parser

    parser = build_parser()

    def head(*flags):
        return _recipe(parser.parse_args(["train", "--data", "d", "--out", "m", *flags])).head

    args = parser.parse_args(["all", "--data", "d", "--out", "m"])
    recipe = _recipe(args)
    assert recipe.head.motion == MOTION_SIZE and recipe.head.motion_scores
    assert _choice(args, None, recipe).motion == MOTION_SIZE
    for flags in ((), ("--motion",), ("--motion-scores",), ("--motion", "--motion-scores")):
        assert head(*flags) == DEFAULT.head  # the recipe's own choice stays
    for flags in (("--no-motion-scores",), ("--motion", "--no-motion-scores")):
        assert head(*flags) == dataclasses.replace(DEFAULT.head, motion_scores=False)
    assert head("--no-motion") == dataclasses.replace(DEFAULT.head, motion=0, motion_scores=False)
    still = dataclasses.replace(DEFAULT.head, motion=0, motion_scores=False)
    with mock.patch(
        "training.cli.get_recipe", return_value=dataclasses.replace(DEFAULT, head=still)
    ):
        assert head() == still and head("--no-motion-scores") == still
        assert head("--motion-scores") == DEFAULT.head
        assert head("--motion") == dataclasses.replace(DEFAULT.head, motion_scores=False)
    with pytest.raises(InputError, match="--motion-scores needs the motion"):
        head("--no-motion", "--motion-scores")
    with pytest.raises(InputError, match="--motion-scores needs a recipe"):
        head("--recipe", "seed", "--motion-scores")


def test_the_command_line_sends_each_quadrant_to_the_scores():
    """`--motion-quadrants` turns the quadrants' numbers on with the scores they go to;
    `--no-motion-scores` or `--no-motion` ends them; asking for both is one error."""
    from training.cli import _recipe, build_parser

    parser = build_parser()

    def head(*flags):
        return _recipe(parser.parse_args(["train", "--data", "d", "--out", "m", *flags])).head

    quadrants = dataclasses.replace(DEFAULT.head, motion_quadrants=True)
    assert not DEFAULT.head.motion_quadrants and head() == DEFAULT.head
    assert head("--motion-quadrants") == quadrants
    assert head("--motion-quadrants", "--no-motion-quadrants") == DEFAULT.head
    still = dataclasses.replace(DEFAULT.head, motion=0, motion_scores=False)
    with mock.patch(
        "training.cli.get_recipe", return_value=dataclasses.replace(DEFAULT, head=quadrants)
    ):
        assert head() == quadrants
        assert head("--no-motion-scores") == dataclasses.replace(DEFAULT.head, motion_scores=False)
        assert head("--no-motion") == still
    with mock.patch(
        "training.cli.get_recipe", return_value=dataclasses.replace(DEFAULT, head=still)
    ):
        assert head("--motion-quadrants") == quadrants
    for flags, message in [
        (("--motion-quadrants", "--no-motion"), "--motion-quadrants needs the motion"),
        (("--motion-quadrants", "--no-motion-scores"), "needs the motion's scores"),
        (("--recipe", "seed", "--motion-quadrants"), "--motion-quadrants needs a recipe"),
    ]:
        with pytest.raises(InputError, match=message):
            head(*flags)


def test_the_command_line_sends_how_the_parts_move_to_the_scores_after_training():
    """`--motion-parts`: the quadrants' numbers, summarised, to the scores added after the
    GRU is trained; `--no-motion-quadrants`, `--no-motion-scores` or `--no-motion` end it;
    asking for both is one error naming the flag."""
    from training.cli import _recipe, build_parser

    parser = build_parser()

    def recipe(*flags):
        return _recipe(parser.parse_args(["train", "--data", "d", "--out", "m", *flags]))

    parts = dataclasses.replace(DEFAULT.head, motion_quadrants=True, motion_summary=True)
    assert recipe("--motion-parts").head == parts and recipe("--motion-parts").motion_scores_after
    assert not DEFAULT.motion_scores_after and recipe() == DEFAULT
    assert recipe("--motion-parts", "--no-motion-parts") == DEFAULT
    quadrants = recipe("--motion-quadrants")
    assert not quadrants.head.motion_summary and not quadrants.motion_scores_after
    given = dataclasses.replace(DEFAULT, head=parts, motion_scores_after=True)
    with mock.patch("training.cli.get_recipe", return_value=given):
        assert recipe() == given
        assert recipe("--no-motion-parts").head == dataclasses.replace(parts, motion_summary=False)
        assert recipe("--no-motion-quadrants") == DEFAULT
        ended = recipe("--no-motion")
        assert not ended.head.motion and not ended.motion_scores_after
    for flags, message in [
        (("--motion-parts", "--no-motion-quadrants"), "--motion-parts needs the quadrants"),
        (("--motion-parts", "--no-motion-scores"), "--motion-parts needs the motion's scores"),
        (("--motion-parts", "--no-motion"), "--motion-parts needs the motion"),
        (("--recipe", "seed", "--motion-parts"), "--motion-parts needs a recipe"),
    ]:
        with pytest.raises(InputError, match=message):
            recipe(*flags)


def test_load_backbone_appends_thumbnails_on_any_backbone(embedder_path):
    """`load_backbone(..., motion=G)` (what training and `realtime` call with the model's
    `backbone.motion`) wraps whichever backbone the spec names; the model directory gets the
    original .tflite, not a wrapper."""
    from realtime.backbones import load_backbone
    from realtime.backbones.litert import LiteRTBackbone

    plain = load_backbone(str(embedder_path))
    backbone = load_backbone(str(embedder_path), motion=8)
    assert isinstance(backbone, WithMotion) and isinstance(unwrapped(backbone), LiteRTBackbone)
    assert backbone.feature_size == plain.feature_size + 64
    identity = backbone.identity()
    assert identity.motion == 8 and identity.sha256 == plain.identity().sha256
    assert identity.file == plain.identity().file
    frames = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    features = backbone.extract(frames)
    np.testing.assert_allclose(features[:, : plain.feature_size], plain.extract(frames), atol=1e-6)
    np.testing.assert_array_equal(features[:, plain.feature_size :], thumbnails(frames, 8))
    assert not isinstance(load_backbone(str(embedder_path), motion=None), WithMotion)


def test_the_quadrant_summary_says_how_the_parts_moved_not_which():
    """`quadrant_summary` (`motion_summary`): the whole thumbnail's 4 numbers as they are; one
    quadrant moving up sums the same wherever it is; quadrants moving apart or turning read
    as the divergence or the curl (each estimate's), the other 0; the probe that chose it
    (`bench/motion_summary_probe.py`) computes the same 12."""
    from bench.motion_summary_probe import describe
    from realtime.head.motion import quadrant_summary

    summary = quadrant_summary()
    assert summary.shape == (20, 12)
    whole = np.zeros(20)
    whole[:4] = [1, 2, 3, 4]
    np.testing.assert_array_equal((whole @ summary)[:4], [1, 2, 3, 4])
    np.testing.assert_array_equal((whole @ summary)[4:], 0)
    for quadrant in range(4):
        up = np.zeros(20)
        up[4 + 4 * quadrant : 8 + 4 * quadrant] = [0, -1, 0, -1]
        np.testing.assert_array_equal((up @ summary)[:8], [0] * 4 + [0, -1, 0, -1])
    apart, turning = np.zeros(20), np.zeros(20)
    for q, (row, column) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        x, y = 2 * column - 1, 2 * row - 1  # the quadrant's centre, x right, y down
        apart[4 + 4 * q : 8 + 4 * q] = [x, y, 2 * x, 2 * y]
        turning[4 + 4 * q : 8 + 4 * q] = [-y, x, -y, x]  # clockwise on the screen
    np.testing.assert_array_equal((apart @ summary)[8:], [8, 16, 0, 0])
    np.testing.assert_array_equal((turning @ summary)[8:], [0, 0, 8, 8])
    numbers = np.random.default_rng(0).normal(size=(5, 20))
    np.testing.assert_allclose(numbers @ summary, describe(numbers, "sumdiv12"), atol=1e-12)


def test_summarised_motion_scores_are_the_summary_s_discriminant_folded_back():
    """`fit_summarised_scores`: the calibrated, shrunk discriminant of the 12-number summary
    of the unscaled numbers (each scaled to unit spread), as a kernel over the 20 numbers the
    head computes and scales: the same scores to 1e-5, and not the 20's own discriminant."""
    from realtime.head.fitting import fit_summarised_scores, fit_where_scale
    from realtime.head.motion import quadrant_summary

    rng = np.random.default_rng(0)
    raw = rng.normal(size=(200, 20)) * rng.uniform(0.5, 3, 20)
    targets = rng.integers(0, 4, 200)
    raw[:, 4:8] += targets[:, None] * 0.3  # the quadrants' steps say the class
    groups, masks = np.arange(200) // 5, np.ones((200, 20), bool)
    scale = fit_where_scale(raw, masks)
    kernel, bias = fit_summarised_scores(raw * scale, scale, masks, targets, groups, 4)
    assert kernel.shape == (20, 4) and bias.shape == (4,)
    summary = raw @ quadrant_summary()
    summary = summary * fit_where_scale(summary, masks)
    trust = calibrate_motion_scores(summary, targets, groups, 4, shrunk=True)
    own, own_bias = fit_motion_scores(summary, targets, 4, shrunk=True)
    assert trust > 0
    np.testing.assert_allclose(
        raw * scale @ kernel + bias, trust * (summary @ own + own_bias), rtol=1e-5, atol=1e-5
    )
    twenty, _ = fit_motion_scores(raw * scale, targets, 4, shrunk=True)
    assert not np.allclose(kernel, trust * twenty, atol=1e-3)
