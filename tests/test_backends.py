"""Backbone backends against the Keras reference, on real frames from ../shared/clips.

InceptionV3 ImageNet weights cannot be downloaded here, so the weights are random but saved to
a file and loaded through `--backbone-weights`: the exact path a user's weights take
(conversion, caching keyed by the file, checking). Conversions are cached for the session.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from realtime.backbones import load_backbone
from realtime.backbones.base import AUTO_PREFERENCE, HELD_OUT_FILE, INT8, INT8_TOLERANCE, TOLERANCE
from realtime.backbones.conversion import InceptionBackends, availability, relative_errors
from realtime.backbones.keras import KerasInceptionV3
from realtime.backbones.litert import LiteRTBackbone
from realtime.core.errors import InputError
from realtime.frames.preprocessing import preprocess_frame
from realtime.frames.sources import open_source
from tests.conftest import (
    build_model_dir,
    missing,
    need_backend,
    run_cli,
    run_cli_modules,
)

FRAMES_PER_CLIP = 10
EXPORTED = ("xla", "litert", "openvino", "openvino-bf16")

pytestmark = [pytest.mark.shared, pytest.mark.slow]


@pytest.fixture(scope="session")
def clip_sequences(shared_clips):
    """Per clip, FRAMES_PER_CLIP consecutive frames (every 3rd), preprocessed for InceptionV3."""
    sequences = []
    for clip in shared_clips:
        source = open_source(str(clip))
        frames, index = [], 0
        try:
            while len(frames) < FRAMES_PER_CLIP:
                frame = source.read()
                if frame is None:
                    break
                if index % 3 == 0:
                    frames.append(preprocess_frame(frame, 224))
                index += 1
        finally:
            source.release()
        assert frames, f"no frames from {clip}"
        sequences.append(np.stack(frames))
    return sequences


@pytest.fixture(scope="session")
def backends(inception_weights, private_backbone_cache):
    """Converted once into the session's backbone cache, where the CLI runs of later tests
    find them (only the tests about converting start from an empty cache)."""
    return InceptionBackends(
        inception_weights, cache_dir=private_backbone_cache, show_progress=False
    )


@pytest.fixture(scope="session")
def reference(backends, clip_sequences):
    """Keras features of every clip frame (the source of truth)."""
    keras_backbone = backends.open("keras")
    assert isinstance(keras_backbone, KerasInceptionV3)
    return [keras_backbone.extract(seq) for seq in clip_sequences]


@pytest.fixture(scope="session")
def head(tmp_path_factory, backends):
    from realtime.head.classifier import ActionClassifier

    class Identity:  # what build_model_dir needs from a backbone
        feature_size, image_size = 2048, 224

        def identity(self):
            return backends.identity

    path = build_model_dir(
        tmp_path_factory.mktemp("model") / "head", Identity(), labels="abcde", seed=3
    )
    return ActionClassifier(path)


def _window_predictions(classifier, sequences):
    """Top-1 of the head over every sliding (partial, then full) window of every clip."""
    tops = []
    for features in sequences:
        stream = classifier.stream()
        tops.extend(int(np.argmax(stream.push(f))) for f in features)
    return np.array(tops)


@pytest.mark.parametrize("backend", EXPORTED)
def test_backend_matches_keras_on_real_frames(backend, backends, clip_sequences, reference, head):
    need_backend(backend)
    if backend != "xla":
        result = backends.prepare(backend)
        assert result.passed, result
        assert result.max_rel_error <= TOLERANCE
    backbone = backends.open(backend)
    assert backbone.backend == backend
    # interchangeable: a head trained on one backend is accepted on any other
    assert backbone.name == backends.identity.name
    assert backbone.identity() == backends.identity
    features = [backbone.extract(seq) for seq in clip_sequences]
    errors = np.concatenate(
        [relative_errors(f, r) for f, r in zip(features, reference, strict=True)]
    )
    assert errors.max() <= TOLERANCE, f"{backend}: max relative error {errors.max():.4%}"
    if backend != "openvino-bf16":  # fp32 runtimes agree far more closely than the tolerance
        assert errors.max() < 1e-4
    agreement = np.mean(_window_predictions(head, features) == _window_predictions(head, reference))
    assert agreement >= 0.99, f"{backend}: top-1 agreement {agreement:.1%}"


@pytest.mark.parametrize("backend", ["litert", "openvino", "openvino-bf16"])
def test_frames_of_several_cameras_in_flight_match_one_at_a_time(backend, backends, clip_sequences):
    """`parallel_extractors` (OpenVINO: requests of a THROUGHPUT compilation; LiteRT:
    one-thread interpreters), run at the same time on threads as the inference workers run
    them, give each frame its own features, as `extract` does."""
    from concurrent.futures import ThreadPoolExecutor

    need_backend(backend)
    assert backends.prepare(backend).passed
    backbone = backends.open(backend)
    extractors = backbone.parallel_extractors()
    assert len(extractors) >= 2  # 2 cores or more
    frames = [seq[k] for k in (0, 1) for seq in clip_sequences]  # 2 per clip
    one_by_one = np.concatenate([backbone.extract(frame[None]) for frame in frames])
    count = len(extractors)
    with ThreadPoolExecutor(count) as pool:  # each extractor on its own thread, all at once
        jobs = [pool.submit(extract, np.stack(frames[k::count]))
                for k, extract in enumerate(extractors)]  # fmt: skip
        results = [job.result() for job in jobs]
    in_flight = np.empty_like(one_by_one)
    for k, result in enumerate(results):
        in_flight[k::count] = result
    errors = relative_errors(in_flight, one_by_one)
    assert errors.max() <= (TOLERANCE if backend == "openvino-bf16" else 1e-4), errors.max()
    assert len(np.unique(in_flight.round(4), axis=0)) == len(frames)  # every frame its own row


def test_conversion_is_cached_and_reused_without_keras(backends, inception_weights):
    available = [b for b in ("openvino", "litert") if availability(b) is None]
    if not available:
        missing("no exported runtime installed")
    backend = available[0]
    backends.prepare(backend)
    folder = backends.folder(backend)
    record = json.loads((folder / "export.json").read_text())
    assert record["backbone"] == backends.identity.as_dict()
    # a second process-like loader on the same cache: nothing is converted, Keras not built
    again = InceptionBackends(
        inception_weights, cache_dir=backends.root.parent.parent, show_progress=False
    )
    assert again.folder(backend) == folder
    backbone = again.load(backend)
    assert again._reference is None
    assert backbone.name == backends.identity.name


def test_auto_picks_the_first_available_backend_that_passes(backends, inception_weights):
    expected = next(b for b in AUTO_PREFERENCE if availability(b) is None)
    backbone = InceptionBackends(
        inception_weights, cache_dir=backends.root.parent.parent, show_progress=False
    ).load("auto")
    assert backbone.backend == expected
    assert backbone.name == backends.identity.name


@pytest.mark.parametrize(
    "capabilities,expected",
    [(("FP32", "INT8", "BIN"), "openvino"), (("FP32", "BF16", "INT8"), "openvino-bf16")],
    ids=["cpu-without-bf16", "cpu-with-bf16"],
)
def test_auto_follows_the_cpus_capabilities(
    backends, inception_weights, monkeypatch, capabilities, expected
):
    """The CPU's capabilities are injected, so both of auto's paths run on every machine."""
    import realtime.backbones.conversion

    need_backend("openvino")
    monkeypatch.setattr(
        realtime.backbones.conversion, "cpu_capabilities", lambda ov=None: capabilities
    )
    backbone = InceptionBackends(
        inception_weights, cache_dir=backends.root.parent.parent, show_progress=False
    ).load("auto")
    assert backbone.backend == expected


def test_a_failed_check_makes_auto_fall_back(backends, inception_weights, tmp_path):
    first = next(b for b in AUTO_PREFERENCE if availability(b) is None)
    if first in ("keras", "xla"):
        missing("no exported runtime installed")
    loader = InceptionBackends(
        inception_weights, cache_dir=backends.root.parent.parent, show_progress=False
    )
    loader.prepare(first)
    check = loader.folder(first) / f"check-{first}.json"
    saved = check.read_text()
    try:
        failed = dict(json.loads(saved), passed=False, max_rel_error=0.5)
        check.write_text(json.dumps(failed))
        chosen = loader.load("auto")
        assert chosen.backend != first
        warnings = []
        loader.warn = warnings.append
        assert loader.load(first).backend == first  # asked for explicitly: runs, with a warning
        assert warnings and "50.00%" in warnings[0]
    finally:
        check.write_text(saved)


def test_tflite_backbone_rejects_other_backends(embedder_path):
    assert isinstance(load_backbone(str(embedder_path), backend="litert"), LiteRTBackbone)
    with pytest.raises(InputError, match="runs on LiteRT"):
        load_backbone(str(embedder_path), backend="openvino")
    with pytest.raises(InputError, match="unknown backend"):
        load_backbone("inception_v3", backend="tensorrt")


def test_cli_converts_once_with_a_message_then_reuses_the_cache(
    inception_weights, head, shared_clips, tmp_path
):
    need_backend("openvino")
    clip = next(c for c in shared_clips if c.name.startswith("v_Punch"))
    cache = tmp_path / "cache"
    args = [
        "--source",
        clip,
        "--model",
        head.model_dir,
        "--backbone-weights",
        inception_weights,
        "--backend",
        "openvino",
        "--cache-dir",
        cache,
        "--every-frame",
        "--max-frames",
        "12",
        "--ui",
        "none",
        "--quiet",
        "--jsonl",
        "-",
    ]
    first, imported = run_cli_modules(*args, tmp_path=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "one-off" in first.stderr and "openvino" in first.stderr
    assert "tensorflow" in imported  # the conversion needs it
    assert len(first.stdout.splitlines()) == 12
    second, imported = run_cli_modules(*args, tmp_path=tmp_path, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "one-off" not in second.stderr
    assert "openvino" in imported and not {"tensorflow", "keras"} & imported  # warm: no TF
    firsts = [json.loads(line)["probs"] for line in first.stdout.splitlines()]
    seconds = [json.loads(line)["probs"] for line in second.stdout.splitlines()]
    assert firsts == seconds


# -- openvino-int8: opt-in, calibrated on real frames, always reports its agreement with fp32


@pytest.fixture(scope="session")
def int8_calibration(shared_clips):
    """Calibration on every shared clip except Punch (kept unseen for the checks below)."""
    from realtime.backbones.int8 import CalibrationSet

    videos = [str(c) for c in shared_clips if not c.name.startswith("v_Punch")]
    return CalibrationSet.from_videos(videos, 224, max_frames=120)


@pytest.fixture(scope="session")
def int8_backends(backends, inception_weights, int8_calibration):
    need_backend(INT8)
    return InceptionBackends(
        inception_weights,
        cache_dir=backends.root.parent.parent,
        show_progress=False,
        calibration=int8_calibration,
    )


def test_int8_reports_its_agreement_with_fp32_on_held_out_frames(
    int8_backends, int8_calibration, reference, clip_sequences, shared_clips, head
):
    notes = []
    int8_backends.note = notes.append
    backbone = int8_backends.load(INT8)
    assert backbone.backend == INT8
    # interchangeable with the fp32 head, but its features are cached apart
    assert backbone.identity() == int8_backends.identity
    assert backbone.cache_identity()["int8_calibration"] == int8_calibration.digest
    # the report is a real measurement: recompute it on the held-out frames
    check = int8_backends.check_result(INT8)
    expected = int8_backends.reference().extract(int8_calibration.held_out)
    errors = relative_errors(backbone.extract(int8_calibration.held_out), expected)
    assert check.probes == len(int8_calibration.held_out) > 0
    assert check.max_rel_error == pytest.approx(errors.max(), rel=1e-3)
    assert check.mean_rel_error == pytest.approx(errors.mean(), rel=1e-3)
    assert len(notes) == 1 and f"{errors.mean():.1%}" in notes[0] and "held-out" in notes[0]
    # int8 is not fp32: it differs measurably, yet it is close on a clip it never saw
    punch = next(i for i, c in enumerate(shared_clips) if c.name.startswith("v_Punch"))
    unseen = relative_errors(backbone.extract(clip_sequences[punch]), reference[punch])
    assert 1e-3 < unseen.max() < INT8_TOLERANCE
    # and the head agreement the CLI prints is computed from the stored held-out features
    from realtime.backbones.int8 import head_agreement, int8_head_report

    with np.load(int8_backends.folder(INT8) / HELD_OUT_FILE) as held:
        np.testing.assert_allclose(held["fp32"], expected, rtol=1e-4, atol=1e-5)
        # and the frames' thumbnails, for a head that reads them (the default's)
        from realtime.backbones.motion import MOTION_SIZE, thumbnails

        stored = held[f"thumbnails_{MOTION_SIZE}"]
        np.testing.assert_array_equal(stored, thumbnails(int8_calibration.held_out, MOTION_SIZE))
        share = head_agreement(head, held["int8"], held["fp32"], held["video"])
    assert f"{share:.1%}" in int8_head_report(backbone, head)


def test_auto_never_picks_int8_even_when_it_is_made(int8_backends, inception_weights):
    int8_backends.prepare(INT8)
    loader = InceptionBackends(
        inception_weights, cache_dir=int8_backends.root.parent.parent, show_progress=False
    )
    assert loader.load("auto").backend != INT8
    # without --calibration, the int8 model made before is reused
    assert loader.load(INT8).quantized["digest"] == int8_backends.calibration.digest


def test_int8_without_calibration_or_cache_is_one_clear_error(inception_weights, tmp_path):
    need_backend(INT8)
    loader = InceptionBackends(inception_weights, cache_dir=tmp_path, show_progress=False)
    with pytest.raises(InputError, match="needs --calibration"):
        loader.load(INT8)
    assert loader._reference is None  # refused before building anything
    with pytest.raises(InputError, match="applies to --backend openvino-int8 only"):
        load_backbone("inception_v3", str(inception_weights), backend="openvino", calibration=["x"])
    with pytest.raises(InputError, match="no such file or folder"):
        load_backbone(
            "inception_v3", str(inception_weights), backend=INT8, calibration=[tmp_path / "none"]
        )
    with pytest.raises(InputError, match="no video files"):
        load_backbone("inception_v3", str(inception_weights), backend=INT8, calibration=[tmp_path])


def test_cli_int8_without_calibration_is_one_error_line(
    inception_weights, head, shared_clips, tmp_path
):
    from tests.test_bad_input import assert_clean_error

    need_backend(INT8)
    result = run_cli(
        "--source", shared_clips[0], "--model", head.model_dir,
        "--backbone-weights", inception_weights, "--backend", INT8,
        "--cache-dir", tmp_path / "cache", "--ui", "none", "--jsonl", "-",
    )  # fmt: skip
    assert_clean_error(result, "needs --calibration")


def test_cli_int8_keeps_stdout_clean_and_reports_agreement(
    inception_weights,
    head,
    shared_clips,
    int8_backends,
    private_backbone_cache,
    make_video,
    tmp_path,
):
    clip = next(c for c in shared_clips if c.name.startswith("v_Punch"))
    # two short videos of their own (48 frames; NNCF's statistics over a few hundred frames
    # of the shared clips were most of this test's time): quantized afresh, not from a cache
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    make_video(n=24, name="calibration/a.avi")
    make_video(n=24, name="calibration/b.avi", seed=1)
    result = run_cli(
        "--source", clip, "--model", head.model_dir, "--backbone-weights", inception_weights,
        "--backend", INT8, "--calibration", calibration, "--cache-dir", private_backbone_cache,
        "--every-frame", "--max-frames", "8", "--ui", "none", "--quiet", "--jsonl", "-",
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 8  # NNCF's own progress bars must not reach stdout
    assert all(json.loads(line)["frame"] == i for i, line in enumerate(lines))
    # the fp32 model is the session's; int8 calibrated on these two clips is made here
    assert "one-off: InceptionV3 -> openvino-int8" in result.stderr
    assert "features differ from fp32 Keras by" in result.stderr
    assert "top-1 is the same as on fp32 features for" in result.stderr


@pytest.fixture(scope="session", params=["regions", "map"])
def pooled_backends(request, inception_weights, private_backbone_cache):
    """The same weights converted with `--pooling regions` or `map` (the pooling inside the
    graph)."""
    from realtime.backbones.regions import Pooling

    return InceptionBackends(
        inception_weights,
        cache_dir=private_backbone_cache,
        show_progress=False,
        pooling=Pooling(request.param),
    )


@pytest.mark.parametrize("backend", ["litert", "openvino"])
def test_pooling_converts_with_the_graph(
    backend, pooled_backends, backends, clip_sequences, reference
):
    """A converted backend pools over regions (or keeps the map) as the Keras graph does
    (within the backends' tolerance), in its own cache folder, with an identity saying so
    (`map`: and the map's shape, which a head is told); its whole-image part is the globally
    pooled backbone's feature."""
    from realtime.backbones.regions import Pooling

    need_backend(backend)
    pooling = pooled_backends.pooling
    result = pooled_backends.prepare(backend)
    assert result.passed and result.max_rel_error <= TOLERANCE, result
    assert pooled_backends.folder(backend) != backends.folder(backend)
    backbone = pooled_backends.open(backend)
    identity = backbone.identity()
    size = 5 * 2048 if pooling is Pooling.REGIONS else 2048 + 5 * 5 * 32
    assert identity.pooling is pooling and identity.feature_size == size
    assert identity.name == backends.identity.name
    shape = (5, 5, 32) if pooling is Pooling.MAP else None
    assert identity.map_shape == shape and backbone.map_shape == shape
    keras_pooled = pooled_backends.open("keras")
    for sequence, whole in zip(clip_sequences[:2], reference[:2], strict=False):
        expected = keras_pooled.extract(sequence)
        got = backbone.extract(sequence)
        assert relative_errors(got, expected).max() < 1e-4
        np.testing.assert_allclose(expected[:, :2048], whole, rtol=1e-4, atol=1e-5)
