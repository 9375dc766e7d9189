"""The Keras layers of the head's `appearance+change` input (see `realtime.head`).

Imported only when a Keras head is built (it imports Keras).
"""

from __future__ import annotations

import numpy as np

from realtime.core.optional import import_tensorflow
from realtime.head import motion as pixels
from realtime.head import where
from realtime.head.config import motion_dims, where_dims

import_tensorflow()

import keras  # noqa: E402
from keras import ops  # noqa: E402


@keras.saving.register_keras_serializable(package="realtime")
class WindowInput(keras.layers.Layer):
    """(features, mask) -> what the GRU reads at each step of a window:

        [(x_t - mean) @ appearance,  (x_t - x_ref) @ change]

    where x_ref is the window's first valid frame (the first step whose mask is True;
    `reference="first"`) or the mean of its valid frames (`reference="mean"`).
    `mean` (D,), `appearance` (D, appearance_dims) and `change` (D, change_dims) are fitted
    on the training windows (`realtime.head.fitting.fit_window_input`) and never trained by
    gradient descent.
    The first part says what the frames look like, the second how each differs from the
    rest of the window, which is what tells an action from its reverse.

    With `map_shape` (rows, columns, channels), each feature vector ends with a feature map
    (`Pooling.MAP`): the transform above reads the numbers before it, and a third part, the
    same at every step, is the window's trend of where the picture changes
    (`realtime.head.where`, computed here from the same constants), and with `where_shift`
    how far the picture moved over the window, times `where_scale` (2 or 4), fitted on the
    training windows.

    With `motion` (G), each feature vector ends with a G x G grayscale thumbnail of its frame
    (after the map, if any): the window's part then also holds how far the picture moved
    (`realtime.head.motion`, the phase correlation of consecutive valid frames' thumbnails,
    summed), 4 more numbers, scaled with the others. With `motion_scores` too, those 4 are
    not in the steps: the layer returns (steps, the 4 scaled numbers (N, 4)), for the class
    scores to read (`MotionScores`); with `motion_quadrants`, 20: the whole thumbnail's 4,
    then each quadrant's (`realtime.head.motion.QUADRANTS`).
    """

    def __init__(
        self,
        feature_size: int,
        appearance_dims: int,
        change_dims: int,
        reference: str = "first",
        map_shape: tuple[int, int, int] | list[int] | None = None,
        where_shift: bool = False,
        motion: int = 0,
        motion_scores: bool = False,
        motion_quadrants: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if reference not in ("first", "mean"):
            raise ValueError(f"reference must be 'first' or 'mean', not {reference!r}")
        self.reference = reference
        self.feature_size = int(feature_size)
        self.appearance_dims = int(appearance_dims)
        self.change_dims = int(change_dims)
        self.map_shape = None if map_shape is None else tuple(int(v) for v in map_shape)
        self.map_size = int(np.prod(self.map_shape)) if self.map_shape else 0
        if where_shift and not self.map_shape:
            raise ValueError("where_shift needs map_shape")
        self.where_shift = bool(where_shift)
        self.motion = int(motion)
        self.thumbnail_size = self.motion * self.motion
        if motion_scores and not self.motion:
            raise ValueError("motion_scores needs motion")
        if motion_quadrants and not motion_scores:
            raise ValueError("motion_quadrants needs motion_scores")
        self.motion_scores = bool(motion_scores)
        self.motion_quadrants = bool(motion_quadrants)
        self.motion_dims = motion_dims(self.motion, self.motion_quadrants)
        self.window_dims = where_dims(bool(self.map_shape), self.where_shift) + self.motion_dims
        # the features the transform reads: those before the map and the thumbnail
        self.plain_size = self.feature_size - self.map_size - self.thumbnail_size

    def build(self, input_shape=None):
        size = self.plain_size
        self.mean = self.add_weight(
            shape=(size,), initializer="zeros", trainable=False, name="mean"
        )
        self.appearance = self.add_weight(
            shape=(size, self.appearance_dims),
            initializer="zeros",
            trainable=False,
            name="appearance",
        )
        self.change = self.add_weight(
            shape=(size, self.change_dims), initializer="zeros", trainable=False, name="change"
        )
        if self.window_dims:
            self.where_scale = self.add_weight(
                shape=(self.window_dims,),
                initializer="ones",
                trainable=False,
                name="where_scale",
            )
        self.built = True

    def call(self, features, mask, numbers=None):
        """`numbers` (N, window_dims), for training (`realtime.head.keras.training_twin`): the
        window's numbers computed beforehand (`realtime.head.fitting.window_numbers`,
        unscaled); `features` then end before the map and thumbnail they are computed from."""
        if numbers is None and self.window_dims:
            numbers = self._numbers(features, mask)
        features = features[..., : self.plain_size]
        if self.reference == "first":
            first = ops.argmax(ops.cast(mask, "int32"), axis=1)  # 0 when nothing is valid
            reference = ops.take_along_axis(features, first[:, None, None], axis=1)
        else:  # the mean of the valid frames (zeros when nothing is valid)
            weights = ops.cast(mask, features.dtype)[..., None]
            count = ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1.0)
            reference = ops.sum(features * weights, axis=1, keepdims=True) / count
        looks = ops.matmul(features - self.mean, self.appearance)
        change = ops.matmul(features - reference, self.change)
        parts = [looks, change]
        if self.window_dims:
            window = numbers * self.where_scale
            steps = ops.ones_like(change[..., :1])
            if self.motion_scores:  # the motion's numbers go to the scores, the rest to the steps
                moved = window[:, -self.motion_dims :]
                parts.append(steps * window[:, None, : -self.motion_dims])
                return ops.concatenate(parts, axis=-1), moved
            parts.append(steps * window[:, None, :])
        return ops.concatenate(parts, axis=-1)

    def _numbers(self, features, mask):
        """`realtime.head.fitting.window_numbers` from the map and thumbnail that end the
        features: (N, window_dims), unscaled."""
        end = self.feature_size - self.thumbnail_size
        window = []
        if self.map_shape:
            rows, columns, channels = self.map_shape
            maps = features[..., end - self.map_size : end]
            maps = ops.reshape(maps, (-1, maps.shape[1], rows, columns, channels))
            window.append(self._where_trend(maps, mask))  # (N, 2)
            if self.where_shift:
                window.append(self._where_shift(maps, mask))
        if self.motion:
            size = self.motion
            thumbs = ops.reshape(features[..., end:], (-1, features.shape[1], size, size))
            window.append(self._motion(thumbs, mask, size))
            if self.motion_quadrants:  # each quadrant's, row by row
                half = size // 2
                for row, column in pixels.QUADRANTS:
                    part = thumbs[
                        :, :, row * half : (row + 1) * half, column * half : (column + 1) * half
                    ]
                    window.append(self._motion(part, mask, half))
        return ops.concatenate(window, axis=-1)

    def _where_trend(self, maps, mask):
        """`realtime.head.where.window_trend` on (N, T, rows, columns, channels)."""
        rows, columns, _ = self.map_shape
        steps = maps.shape[1]
        weights = ops.cast(mask, maps.dtype)  # (N, T)
        count = ops.sum(weights, axis=1)
        mean = (
            ops.sum(maps * weights[:, :, None, None, None], axis=1)
            / ops.maximum(count, 1.0)[:, None, None, None]
        )
        distance = ops.sum(ops.square(maps - mean[:, None]), axis=-1)  # (N, T, rows, columns)
        change = ops.reshape(ops.square(distance), (-1, steps, rows * columns))  # |M_t - M| ** 4
        total = ops.sum(change, axis=2) + where.EPSILON
        centre = ops.matmul(change, where.positions(rows, columns)) / total[..., None]  # (N, T, 2)
        t = ops.cumsum(weights, axis=1) - 1.0  # each valid frame's place among the valid ones
        t_mean = ops.sum(t * weights, axis=1) / ops.maximum(count, 1.0)
        lever = (t - t_mean[:, None]) * weights
        spread = ops.maximum(ops.sum(lever * lever, axis=1), where.EPSILON)
        slope = ops.sum(lever[..., None] * centre, axis=1) / spread[:, None]
        return ops.where(count[:, None] >= 2, slope, ops.zeros_like(slope))

    @staticmethod
    def _previous(frames, mask, pattern: str):
        """(each frame's previous valid frame, or itself for the first valid frame and the
        invalid ones; (N, T): 1 for a valid frame after the first). `pattern`: the einsum
        that picks frames, e.g. "nts,nshwk->nthwk"."""
        weights = ops.cast(mask, frames.dtype)  # (N, T)
        rank = ops.cumsum(weights, axis=1) - 1.0
        # (N, T, T): frame s is frame t's previous valid frame
        previous = weights[:, None, :] * ops.cast(
            ops.equal(rank[:, None, :], rank[:, :, None] - 1.0), frames.dtype
        )
        moved = weights * ops.cast(rank >= 1.0, frames.dtype)  # a valid frame after the first
        stays = moved[(slice(None), slice(None)) + (None,) * (len(frames.shape) - 2)]
        before = ops.einsum(pattern, previous, frames) * stays + (1.0 - stays) * frames
        return before, moved

    def _where_shift(self, maps, mask):
        """`realtime.head.where.window_shift` on (N, T, rows, columns, channels)."""
        before, moved = self._previous(maps, mask, "nts,nshwk->nthwk")
        middle = (before + maps) * 0.5
        across = (middle[:, :, 1:-1, 2:] - middle[:, :, 1:-1, :-2]) * 0.5
        down = (middle[:, :, 2:, 1:-1] - middle[:, :, :-2, 1:-1]) * 0.5
        change = (maps - before)[:, :, 1:-1, 1:-1]
        axes = (2, 3, 4)
        xx = ops.sum(across * across, axis=axes)
        yy = ops.sum(down * down, axis=axes)
        xy = ops.sum(across * down, axis=axes)
        ridge = where.SHIFT_RIDGE * 0.5 * (xx + yy) + where.EPSILON
        xx, yy = xx + ridge, yy + ridge
        bx = -ops.sum(across * change, axis=axes)
        by = -ops.sum(down * change, axis=axes)
        determinant = xx * yy - xy * xy
        step = ops.stack([(yy * bx - xy * by) / determinant, (xx * by - xy * bx) / determinant], -1)
        step = ops.clip(step, -where.SHIFT_LIMIT, where.SHIFT_LIMIT)
        return ops.sum(step * moved[..., None], axis=1)  # (N, 2)

    def _motion(self, thumbs, mask, size: int):
        """`realtime.head.motion.window_motion` on (N, T, size, size)."""
        before, moved = self._previous(thumbs, mask, "nts,nshw->nthw")
        window = ops.convert_to_tensor(pixels.hann(size))

        def centred(pictures):  # less each one's mean, times the window
            return (pictures - ops.mean(pictures, axis=(-2, -1), keepdims=True)) * window

        zeros = ops.zeros_like(thumbs)
        first_real, first_imag = ops.fft2((centred(before), zeros))
        second_real, second_imag = ops.fft2((centred(thumbs), zeros))
        # conj(first) * second, brought to unit magnitude
        real = first_real * second_real + first_imag * second_imag
        imag = first_real * second_imag - first_imag * second_real
        magnitude = ops.sqrt(real * real + imag * imag) + pixels.EPSILON
        real, imag = real / magnitude, imag / magnitude
        # the inverse transform's real part: ifft2(z) = conj(fft2(conj(z))) / G^2
        surface, _ = ops.fft2((real, -imag))
        flat = ops.reshape(surface / float(size * size), (-1, thumbs.shape[1], size * size))
        peak = ops.argmax(flat, axis=-1)[..., None]  # (N, T, 1)
        row, column = peak // size, peak % size
        half = size // 2
        place = ops.cast(
            ops.concatenate([(column + half) % size - half, (row + half) % size - half], -1),
            flat.dtype,
        )
        # the 5 x 5 values around the peak, row by row; the 3 x 3 in the middle
        rows, columns = (ops.convert_to_tensor(v, "int32") for v in (pixels.ROWS, pixels.COLUMNS))
        index = ((ops.cast(row, "int32") + rows) % size) * size + (
            ops.cast(column, "int32") + columns
        ) % size
        values = ops.take_along_axis(flat, index, axis=-1)  # (N, T, 25)
        offsets = ops.convert_to_tensor(pixels.OFFSETS)
        near = ops.relu(ops.take(values, pixels.NEAR, axis=-1))
        at_peak = ops.matmul(near, ops.take(offsets, pixels.NEAR, axis=0)) / ops.maximum(
            ops.sum(near, axis=-1, keepdims=True), pixels.EPSILON
        )
        centre = values[..., pixels.CENTRE : pixels.CENTRE + 1]
        wide = ops.maximum(ops.sum(values, axis=-1, keepdims=True), centre + pixels.EPSILON)
        around = ops.clip(ops.matmul(values, offsets) / wide, -pixels.WIDE, pixels.WIDE)
        step = ops.concatenate([place + at_peak, place + around], axis=-1)
        return ops.sum(step * moved[..., None], axis=1)  # (N, 4)

    def compute_output_shape(self, input_shape):
        size = self.appearance_dims + self.change_dims + self.window_dims
        if self.motion_scores:
            steps = (*input_shape[:-1], size - self.motion_dims)
            return steps, (input_shape[0], self.motion_dims)
        return (*input_shape[:-1], size)

    def get_config(self):
        return {
            **super().get_config(),
            "feature_size": self.feature_size,
            "appearance_dims": self.appearance_dims,
            "change_dims": self.change_dims,
            "reference": self.reference,
            "map_shape": list(self.map_shape) if self.map_shape else None,
            "where_shift": self.where_shift,
            "motion": self.motion,
            "motion_scores": self.motion_scores,
            "motion_quadrants": self.motion_quadrants,
        }


@keras.saving.register_keras_serializable(package="realtime")
class MotionScores(keras.layers.Layer):
    """(logits (N, C), moved (N, dims)) -> softmax(logits + moved @ kernel + bias): the class
    probabilities, with what the window's motion alone says about the class added to the
    head's scores. `kernel` (4, C) and `bias` (C,) are the linear discriminant of the
    training windows' motion (`realtime.head.fitting.fit_motion_scores`) times how far
    held-out training videos bear it out (`calibrate_motion_scores`), fitted and never
    trained by gradient: the rest of the head is trained with them in place.
    """

    def __init__(self, classes: int, dims: int = pixels.STEP_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.classes = int(classes)
        self.dims = int(dims)  # 4, or 20 with the quadrants

    def build(self, input_shape=None):
        self.kernel = self.add_weight(
            shape=(self.dims, self.classes),
            initializer="zeros",
            trainable=False,
            name="kernel",
        )
        self.bias = self.add_weight(
            shape=(self.classes,), initializer="zeros", trainable=False, name="bias"
        )
        self.built = True

    def call(self, logits, moved):
        return ops.softmax(logits + ops.matmul(moved, self.kernel) + self.bias, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.classes)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "dims": self.dims}


@keras.saving.register_keras_serializable(package="realtime")
class WindowOffset(keras.layers.Layer):
    """Training only: moves how a whole window looks as another video of its class might.

    Adds to the first `dims` channels (the appearance part) one random offset per window, the
    same at every step, drawn from N(0, (stddev * spread)(stddev * spread)^T): `spread`
    (dims, dims) is fitted on the training videos (`realtime.head.fitting.fit_appearance_spread`)
    so that the offsets look like the differences between videos of one class. The head then
    cannot tell training videos apart by what only they look like (which it would memorise)
    and keeps what a class looks like where classes differ by more than their videos do. How a
    window changes is untouched. At inference it does nothing.
    """

    def __init__(self, dims: int, stddev: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.dims = int(dims)
        self.stddev = float(stddev)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        self.spread = self.add_weight(
            shape=(self.dims, self.dims), initializer="identity", trainable=False, name="spread"
        )
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.stddev <= 0:
            return inputs
        shape = ops.shape(inputs)
        draw = keras.random.normal((shape[0], 1, self.dims), seed=self.seed_generator)
        offset = self.stddev * ops.matmul(draw, ops.transpose(self.spread))
        rest = ops.zeros((shape[0], 1, shape[2] - self.dims), dtype=offset.dtype)
        return inputs + ops.concatenate([offset, rest], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "dims": self.dims, "stddev": self.stddev}
