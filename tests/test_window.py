import numpy as np

from realtime.head.window import FeatureWindow


def feature(value, size=4):
    return np.full(size, value, np.float32)


def test_partial_window_is_front_filled_and_masked():
    window = FeatureWindow(5, 4)
    for v in (1, 2, 3):
        window.push(feature(v))
    features, mask = window.arrays()
    assert window.fill == 3
    assert mask.tolist() == [True, True, True, False, False]
    assert features[:, 0].tolist() == [1, 2, 3, 0, 0]


def test_full_window_slides_oldest_first():
    window = FeatureWindow(5, 4)
    for v in range(1, 9):  # 8 pushes into 5 slots
        window.push(feature(v))
    features, mask = window.arrays()
    assert window.fill == 5
    assert mask.all()
    assert features[:, 0].tolist() == [4, 5, 6, 7, 8]


def test_reset_starts_a_new_sequence():
    window = FeatureWindow(3, 2)
    for v in range(1, 6):
        window.push(feature(v, 2))
    window.reset()
    window.push(feature(9, 2))
    features, mask = window.arrays()
    assert mask.tolist() == [True, False, False]
    assert features[:, 0].tolist() == [9, 0, 0]


def test_arrays_are_float32_features_and_a_bool_mask():
    window = FeatureWindow(3, 2)
    window.push(np.array([1.5, -2.0], np.float64))
    features, mask = window.arrays()
    assert features.dtype == np.float32 and mask.dtype == bool
    assert features.shape == (3, 2) and mask.tolist() == [True, False, False]
