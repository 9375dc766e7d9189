"""Where in the picture a window changes, which way that place moves (`where_trend`), and how
far the picture moved (`where_shift`).

A head on `Pooling.MAP` features (`realtime.backbones.regions`: the whole image's average,
then the feature map with its channels reduced) can read, besides how each frame looks and
how it departs from its window, the **trend of where the picture changes** over the window:

    M_t        the map part of frame t (H x W positions, K numbers each)
    M          the mean of the window's valid frames' maps
    e_t(h, w)  |M_t(h, w) - M(h, w)| ** 4: how much position (h, w) departs, at t, from
               what the window shows there on average (the 4th power keeps the places that
               change most, not the camera's small shake everywhere)
    c_t        the centre of e_t over the positions (x and y from -1 to 1, left to right and
               top to bottom)
    trend      the least-squares slope of c_t against t over the valid frames (t counts the
               valid frames: 0, 1, 2...), x then y

The trend is one pair of numbers per window, given to the GRU at every step: where the change
is moves right or left, up or down. Whatever changes there (a person, a car, a hand), the
change is measured by distances, so videos of one action agree where the features' own
directions do not (docs/training.md: "left or right is not in the features"). A window with
fewer than two valid frames has no trend (zeros).

With `where_shift`, a second pair says **how far the picture itself moved** over the window,
measured on the same maps (the camera panning to follow a hand, a scene sliding past, a
figure large enough to carry the map with it):

    s_t        the displacement (x, y, in map positions) that best carries the valid frame
               before t onto frame t, to first order (Lucas-Kanade on the map: with G the
               mean of both maps' central differences across x and y at the inner positions
               and D their difference, s_t solves (G^T G + ridge) s_t = -G^T D, the ridge
               SHIFT_RIDGE times the mean of G^T G's diagonal), each clipped to
               +-SHIFT_LIMIT (first order holds for small moves only)
    shift      the sum of s_t over the window's valid frames after the first (zeros for
               fewer than two)

A sum of steps is how far the picture went, whichever frames a window lacks: a live window
that dropped frames takes bigger steps, not fewer positions.

Defined once here for NumPy (`window_trend`, `window_shift`: the runtime and the fitting);
the Keras layer (`realtime.head.layers.WindowInput`) computes the same from the same
constants and a test holds them equal.
"""

from __future__ import annotations

import functools

import numpy as np

#: Added to a window's total change before dividing by it (a still window: no centre).
EPSILON = 1e-12
#: The shift's ridge, times the mean of the two squared gradients' sums (a featureless map
#: moves nowhere instead of anywhere).
SHIFT_RIDGE = 0.1
#: The most a step between two frames may move, in map positions, x and y each.
SHIFT_LIMIT = 1.0


@functools.lru_cache(maxsize=8)
def positions(height: int, width: int) -> np.ndarray:
    """(height * width, 2) float32: x and y of each position of a map, row by row, each from
    -1 to 1 (left to right, top to bottom; 0 for a map one position wide or high). Made once
    per map size (the stream uses it on every frame) and read-only."""
    y = np.linspace(-1.0, 1.0, height) if height > 1 else np.zeros(1)
    x = np.linspace(-1.0, 1.0, width) if width > 1 else np.zeros(1)
    grid_x, grid_y = np.meshgrid(x, y)  # (height, width) each
    grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)
    grid.flags.writeable = False
    return grid


def window_trend(maps: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(..., T, H, W, K) maps of windows (+ (..., T) bool mask of valid frames; all valid if
    None) -> (..., 2) float32: the trend of where each window changes, x then y. Computed in
    float32, as the Keras layer does."""
    maps = np.asarray(maps, np.float32)
    *lead, steps, height, width, channels = maps.shape
    flat = maps.reshape(*lead, steps, height * width, channels)
    if mask is None:
        weights = np.ones((*lead, steps), np.float32)
    else:
        weights = np.asarray(mask, np.float32)
    count = weights.sum(axis=-1)  # (...,)
    mean = (flat * weights[..., None, None]).sum(axis=-3) / np.maximum(count, 1.0)[..., None, None]
    departure = flat - mean[..., None, :, :]
    distance = (departure * departure).sum(axis=-1)  # (..., T, H W): squared distances
    change = distance * distance  # |M_t - M| ** 4
    total = change.sum(axis=-1) + np.float32(EPSILON)
    centre = (change @ positions(height, width)) / total[..., None]  # (..., T, 2)
    t = np.cumsum(weights, axis=-1) - 1.0  # each valid frame's place among the valid ones
    t_mean = (t * weights).sum(axis=-1) / np.maximum(count, 1.0)
    lever = (t - t_mean[..., None]) * weights  # (..., T)
    spread = np.maximum((lever * lever).sum(axis=-1), np.float32(EPSILON))
    slope = (lever[..., None] * centre).sum(axis=-2) / spread[..., None]
    return np.where(count[..., None] >= 2, slope, 0.0).astype(np.float32)


def window_shift(maps: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(..., T, H, W, K) maps of windows (+ (..., T) bool mask of valid frames; all valid if
    None) -> (..., 2) float32: how far each window's picture moved, x then y, in map
    positions (the module's docstring). Computed in float32, as the Keras layer does."""
    maps = np.asarray(maps, np.float32)
    previous, moved = previous_valid(maps.shape[:-3], mask)
    before = np.take_along_axis(maps, previous[..., None, None, None], axis=-4)
    return (step_between(before, maps) * moved[..., None]).sum(axis=-2).astype(np.float32)


def previous_valid(
    shape: tuple[int, ...], mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """For windows of `shape` (..., T) and their mask (all valid if None): each frame's
    previous valid frame in its window (its index; the frame itself where there is none), and
    which frames step from one (bool: the valid frames after the first)."""
    mask = np.ones(shape, bool) if mask is None else np.asarray(mask, bool)
    index = np.broadcast_to(np.arange(shape[-1]), shape)
    latest = np.maximum.accumulate(np.where(mask, index, -1), axis=-1)  # the last valid so far
    previous = np.concatenate([np.full((*shape[:-1], 1), -1), latest[..., :-1]], axis=-1)
    first = previous < 0
    return np.where(first, index, previous), mask & ~first


def step_between(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(..., H, W, K) pairs of maps -> (..., 2) float32: s_t, the first-order displacement
    from `before` to `after`, clipped (the module's docstring). The stream computes it once
    per frame, against the frame before."""
    before, after = np.asarray(before, np.float32), np.asarray(after, np.float32)
    middle = (before + after) * np.float32(0.5)
    across = (middle[..., 1:-1, 2:, :] - middle[..., 1:-1, :-2, :]) * np.float32(0.5)
    down = (middle[..., 2:, 1:-1, :] - middle[..., :-2, 1:-1, :]) * np.float32(0.5)
    change = (after - before)[..., 1:-1, 1:-1, :]
    axes = (-3, -2, -1)
    xx, yy = (across * across).sum(axis=axes), (down * down).sum(axis=axes)
    xy = (across * down).sum(axis=axes)
    ridge = np.float32(SHIFT_RIDGE * 0.5) * (xx + yy) + np.float32(EPSILON)
    xx, yy = xx + ridge, yy + ridge
    bx, by = -(across * change).sum(axis=axes), -(down * change).sum(axis=axes)
    determinant = xx * yy - xy * xy
    step = np.stack([(yy * bx - xy * by) / determinant, (xx * by - xy * bx) / determinant], -1)
    return np.clip(step, -SHIFT_LIMIT, SHIFT_LIMIT)
