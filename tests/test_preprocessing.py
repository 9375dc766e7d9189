import cv2
import numpy as np
import pytest

from realtime.frames.preprocessing import crop_center_square, preprocess_frame
from tests.conftest import missing


def test_centre_crop_matches_the_examples_crop():
    frame = np.arange(6 * 10, dtype=np.uint8).reshape(6, 10)
    square = crop_center_square(frame)
    assert square.shape == (6, 6)
    assert (square == frame[:, 2:8]).all()
    tall = np.zeros((9, 4))
    assert crop_center_square(tall).shape == (4, 4)


def test_preprocess_converts_bgr_to_rgb_and_resizes():
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, :, 0] = 200  # blue in OpenCV's BGR order
    out = preprocess_frame(frame, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert out[..., 2].min() == 200 and out[..., 0].max() == 0  # blue is now last (RGB)
    assert out.flags["C_CONTIGUOUS"]


def test_grey_and_bgra_frames_are_accepted():
    assert preprocess_frame(np.full((50, 70), 9, np.uint8), 32).shape == (32, 32, 3)
    assert preprocess_frame(np.zeros((50, 70, 4), np.uint8), 32).shape == (32, 32, 3)


@pytest.fixture(scope="module")
def mobilenet_v2(shared_dir):
    from realtime.backbones.litert import LiteRTBackbone

    path = shared_dir / "models" / "mobilenet_v2_1.0_224_quant.tflite"
    if not path.is_file():
        missing(f"{path} missing")
    labels = (shared_dir / "models" / "imagenet_labels.txt").read_text().splitlines()
    return LiteRTBackbone(path), labels


def test_imagenet_classifier_sees_a_tandem_bicycle_through_our_preprocessing(
    shared_dir, mobilenet_v2
):
    """Crop, resize and channel order are right: the real ImageNet model agrees."""
    model, labels = mobilenet_v2
    capture = cv2.VideoCapture(str(shared_dir / "clips" / "v_Biking_g05_c02.avi"))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.set(cv2.CAP_PROP_POS_FRAMES, count // 2)
    ok, frame = capture.read()
    capture.release()
    assert ok
    image = preprocess_frame(frame, model.image_size)
    scores = model.extract(image[None])[0]
    assert "tandem bicycle" in labels[int(np.argmax(scores))]
    tandem = int(np.argmax(scores))
    # the mistakes this pipeline guards against score the right class lower
    swapped = model.extract(image[None, :, :, ::-1].copy())[0]
    squashed = cv2.cvtColor(cv2.resize(frame, (224, 224)), cv2.COLOR_BGR2RGB)
    no_crop = model.extract(squashed[None])[0]
    assert scores[tandem] > swapped[tandem]
    assert scores[tandem] > no_crop[tandem]


def test_colour_conversions_keep_the_picture():
    """Grey frames become equal B, G, R; BGRA loses only alpha; the resize is bilinear."""
    from realtime.frames.preprocessing import to_bgr

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert (to_bgr(grey) == grey[..., None]).all() and to_bgr(grey).shape == (3, 4, 3)
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 10, 255
    assert to_bgr(bgra).shape == (2, 2, 3) and (to_bgr(bgra)[..., 0] == 10).all()
    bgr = np.zeros((2, 2, 3), np.uint8)
    assert to_bgr(bgr) is bgr
    # a 1-pixel-wide stripe pattern, 4x down: bilinear averages, nearest would pick one
    stripes = np.zeros((8, 8, 3), np.uint8)
    stripes[:, ::2] = 200
    out = preprocess_frame(stripes, 2)
    assert out.shape == (2, 2, 3) and 80 <= out.min() and out.max() <= 120
    wide = np.zeros((4, 8, 3), np.uint8)
    assert preprocess_frame(wide, 4).shape == (4, 4, 3)  # already the size: no resize needed


def test_preprocess_frames_stacks_and_handles_no_frames():
    from realtime.frames.preprocessing import preprocess_frames

    frames = [np.full((6, 8, 3), v, np.uint8) for v in (10, 20)]
    batch = preprocess_frames(frames, 4)
    assert batch.shape == (2, 4, 4, 3) and batch.dtype == np.uint8
    assert (batch[0] == 10).all() and (batch[1] == 20).all()
    empty = preprocess_frames([], 5)
    assert empty.shape == (0, 5, 5, 3) and empty.dtype == np.uint8
