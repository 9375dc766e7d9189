"""How far the picture moved over a window (`motion`), measured on the frames' pixels.

A head with `HeadConfig.motion` reads, besides what its features say, the **translation of
the picture over the window**, from a small grayscale thumbnail of each frame's model input
that the backbone appends to its feature vector (`realtime.backbones.motion`):

    g_t        the G x G thumbnail of frame t (`realtime.backbones.motion.thumbnails`: an
               area resize of the model's input image, the mean of its channels, 0..1)
    r_t        the phase correlation of the valid frame before t and frame t: the inverse
               Fourier transform of their cross-power spectrum brought to unit magnitude,
               each thumbnail less its mean and times a Hann window first; it peaks at the
               translation that carries one onto the other (modulo G)
    step_t     two estimates of that translation, x to the right and y down, in thumbnail
               pixels: at the peak (its place, from -G/2 to G/2, refined by the centroid of
               the 3 x 3 positive values around it: the dominant motion), then around it (the
               centroid of the 5 x 5 values, signed, as OpenCV's phaseCorrelate refines it,
               each coordinate kept within the box: where a camera's shake and a figure's
               walk make two peaks side by side, this one moves with both)
    motion     the sum of step_t over the window's valid frames after the first, 4 numbers
               (zeros for fewer than two frames); with `quadrants`, then the same 4 for each
               G/2 x G/2 quadrant of the thumbnails (`QUADRANTS`, row by row), 20 in all

The backbone's features say how a frame looks and, pooled over the image, little of where
things are: a figure walking left and one walking right look alike frame by frame (every frame
of one is a frame of the other, mirrored or not), so a window's features can tell them apart
only through slow changes of appearance. The phase correlation sees the displacement itself,
whatever moves (a panning camera, a figure crossing the view, a hand pushing a thing), for
three small Fourier transforms per frame. A sum of steps is how far the picture went
whichever frames a window lacks: a live window that dropped frames takes bigger steps, not
fewer. The two estimates were chosen on the tuning sets (docs/training.md: the peak alone
tells `tabletop` apart, the 5 x 5 centroid `crossing`, both together both).

Defined once here for NumPy (`phase_step`, `window_motion`: the runtime and the fitting);
the Keras layer (`realtime.head.layers.WindowInput`) computes the same from the same
constants and a test holds them equal.
"""

from __future__ import annotations

import functools

import numpy as np

from realtime.head.config import MOTION_DIMS
from realtime.head.where import previous_valid

#: Added to the cross-power spectrum's magnitude before dividing by it (flat thumbnails: no
#: spectrum, no peak, no step).
EPSILON = 1e-6


@functools.lru_cache(maxsize=8)
def hann(size: int) -> np.ndarray:
    """(size, size) float32: the 2-D Hann window the thumbnails are weighted by (0 at the
    borders: the picture's edges do not read as a move to the origin). Read-only."""
    line = np.hanning(size).astype(np.float32) if size > 1 else np.ones(1, np.float32)
    window = np.outer(line, line).astype(np.float32)
    window.flags.writeable = False
    return window


def correlation(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(..., G, G) pairs of thumbnails -> (..., G, G) float32: their phase correlation (peak
    at the displacement from `before` to `after`, modulo G)."""
    window = hann(before.shape[-1])
    before, after = np.asarray(before, np.float32), np.asarray(after, np.float32)
    first = np.fft.rfft2((before - before.mean(axis=(-2, -1), keepdims=True)) * window)
    second = np.fft.rfft2((after - after.mean(axis=(-2, -1), keepdims=True)) * window)
    cross = np.conj(first) * second  # real pictures: half the spectrum says it all
    cross /= np.abs(cross) + EPSILON
    return np.fft.irfft2(cross, s=before.shape[-2:]).astype(np.float32)


def phase_step(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(..., G, G) pairs of thumbnails -> (..., STEP_SIZE) float32: step_t from `before` to
    `after`, at the peak (x, y) then around it (x, y) (the module's docstring). The stream
    computes it once per frame, against the frame before."""
    surface = correlation(before, after)
    *lead, size, _ = surface.shape
    flat = surface.reshape(*lead, size * size)
    peak = np.argmax(flat, axis=-1)[..., None]  # (..., 1)
    row, column = peak // size, peak % size
    half = size // 2
    # the peak's place, from -G/2 to G/2 (the correlation wraps around)
    place = np.concatenate([(column + half) % size - half, (row + half) % size - half], axis=-1)
    place = place.astype(np.float32)
    # the 5 x 5 values around the peak, row by row (the 3 x 3 in the middle: NEAR)
    index = ((row + ROWS) % size) * size + (column + COLUMNS) % size  # (..., 25)
    values = np.take_along_axis(flat, index, axis=-1)
    near = np.maximum(values[..., NEAR], 0.0)
    at_peak = near @ OFFSETS[NEAR] / np.maximum(near.sum(axis=-1), np.float32(EPSILON))[..., None]
    # signed: never divided by less than the peak itself (the box's sum is above it in
    # practice), and kept within the box
    wide = values.sum(axis=-1, keepdims=True)
    around = values @ OFFSETS / np.maximum(wide, values[..., CENTRE : CENTRE + 1] + EPSILON)
    around = np.clip(around, -WIDE, WIDE)
    return np.concatenate([place + at_peak, place + around], axis=-1).astype(np.float32)


#: Numbers a step has: the translation at the peak (x, y), then around it (x, y).
STEP_SIZE = MOTION_DIMS
#: Half the side of the box the second estimate reads (5 x 5).
WIDE = 2
#: Row and column offsets of the 5 x 5 values around a peak, row by row; (25, 2) x then y.
ROWS = np.repeat(np.arange(-WIDE, WIDE + 1), 2 * WIDE + 1)
COLUMNS = np.tile(np.arange(-WIDE, WIDE + 1), 2 * WIDE + 1)
OFFSETS = np.stack([COLUMNS, ROWS], axis=1).astype(np.float32)
#: The 3 x 3 in the middle of them, and the peak itself.
NEAR = np.flatnonzero((np.abs(ROWS) <= 1) & (np.abs(COLUMNS) <= 1))
CENTRE = len(ROWS) // 2


#: The quadrants of a G x G thumbnail, row by row: (first row, first column) in halves of G.
QUADRANTS = ((0, 0), (0, 1), (1, 0), (1, 1))


def motion_step(before: np.ndarray, after: np.ndarray, quadrants: bool = False) -> np.ndarray:
    """(..., G, G) pairs of thumbnails -> (..., STEP_SIZE) float32 `phase_step`, or with
    `quadrants` (..., 5 x STEP_SIZE): the whole thumbnail's, then each quadrant's."""
    steps = [phase_step(before, after)]
    if quadrants:  # the four at once: (..., 4, G/2, G/2)
        half = before.shape[-1] // 2

        def parts(pictures):
            return np.stack(
                [
                    pictures[..., r * half : (r + 1) * half, c * half : (c + 1) * half]
                    for r, c in QUADRANTS
                ],
                axis=-3,
            )

        each = phase_step(parts(before), parts(after))  # (..., 4, STEP_SIZE)
        steps.append(each.reshape(*each.shape[:-2], len(QUADRANTS) * STEP_SIZE))
    return np.concatenate(steps, axis=-1)


def window_motion(
    thumbs: np.ndarray, mask: np.ndarray | None = None, quadrants: bool = False
) -> np.ndarray:
    """(..., T, G, G) thumbnails of windows (+ (..., T) bool mask of valid frames; all valid if
    None) -> (..., STEP_SIZE) float32 (5 x STEP_SIZE with `quadrants`): how far each window's
    picture moved, in thumbnail pixels (the module's docstring)."""
    thumbs = np.asarray(thumbs, np.float32)
    previous, moved = previous_valid(thumbs.shape[:-2], mask)
    before = np.take_along_axis(thumbs, previous[..., None, None], axis=-3)
    steps = motion_step(before, thumbs, quadrants)
    return (steps * moved[..., None]).sum(axis=-2).astype(np.float32)


def quadrant_summary() -> np.ndarray:
    """(5 x STEP_SIZE, 12) float64: the map from a window's 20 numbers (`motion_quadrants`:
    the whole thumbnail's, then each quadrant's) to 12 that say how the parts moved, not
    which part (`HeadConfig.motion_summary`): the whole thumbnail's 4 as they are; the four
    quadrants' steps summed (4: what moved in one part moved, wherever it is); for each of
    the two estimates (at the peak, around it) their divergence, sum over quadrants of
    (centre . step), positive when the parts move apart (a zoom in, something coming closer),
    and their curl, sum of (centre x step), positive when they turn clockwise on the screen
    (y down); a quadrant's centre is (+-1, +-1), x right, y down."""
    whole = STEP_SIZE
    summary = np.zeros((whole * (1 + len(QUADRANTS)), 12))
    summary[:whole, :whole] = np.eye(whole)
    for q, (row, column) in enumerate(QUADRANTS):
        at = whole * (1 + q)
        cx, cy = 2 * column - 1, 2 * row - 1
        summary[at : at + whole, whole : 2 * whole] = np.eye(whole)
        for e, x in enumerate((0, 2)):  # the estimate at the peak, then around it
            summary[at + x, 8 + e] = cx  # divergence: cx * step x + cy * step y
            summary[at + x + 1, 8 + e] = cy
            summary[at + x + 1, 10 + e] = cx  # curl: cx * step y - cy * step x
            summary[at + x, 10 + e] = -cy
    return summary
