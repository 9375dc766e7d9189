"""The head's inference math in NumPy (`NumpyHead`), with its weights read from
`head.weights.h5` without TensorFlow, and per-frame streaming over a window (`HeadStream`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from realtime.core.errors import InputError, first_line
from realtime.head.config import (
    DENSE_LAYER,
    MEMBERS_LAYER,
    MOTION_SCORES_LAYER,
    PROBS_LAYER,
    WINDOW_INPUT_LAYER,
    ChangeReference,
    HeadInput,
    gru_layer,
    member_layer,
    member_of,
    motion_dims,
)
from realtime.head.keras import inactive_at_inference
from realtime.head.modeldir import ModelInfo
from realtime.head.motion import motion_step
from realtime.head.where import step_between, window_trend
from realtime.head.window import FeatureWindow, WindowStream


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


_ACTIVATIONS = {
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "relu": _relu,
    "linear": lambda x: x,
    "softmax": _softmax,
}


class UnsupportedHead(ValueError):
    """The Keras model uses something NumpyHead does not implement (use Keras instead)."""


class _Gru:
    """One Keras GRU layer (reset_after=True, the Keras 3 default) as plain arrays."""

    def __init__(
        self,
        kernel: np.ndarray,
        recurrent: np.ndarray,
        bias: np.ndarray,
        activation: str = "tanh",
        recurrent_activation: str = "sigmoid",
    ):
        kernel, recurrent, bias = (np.asarray(w, np.float32) for w in (kernel, recurrent, bias))
        self.activation = _ACTIVATIONS[_activation_name(activation)]
        self.recurrent_activation = _ACTIVATIONS[_activation_name(recurrent_activation)]
        self.units = recurrent.shape[0]
        self.kernel = np.ascontiguousarray(kernel)  # (D, 3U): z, r, h
        self.recurrent = np.ascontiguousarray(recurrent)  # (U, 3U)
        self.input_bias = bias[0].copy()
        self.recurrent_bias = bias[1].copy()

    @classmethod
    def from_layer(cls, layer) -> _Gru:  # pragma: no mutate block (TensorFlow)
        cell = getattr(layer, "cell", layer)
        config = cell.get_config()
        if not config.get("reset_after", True) or not config.get("use_bias", True):
            raise UnsupportedHead("GRU with reset_after=False or without bias")
        if getattr(layer, "go_backwards", False) or getattr(layer, "stateful", False):
            raise UnsupportedHead("backwards or stateful GRU")
        return cls(*layer.get_weights(), config["activation"], config["recurrent_activation"])


class _Layers:
    """Stacks of GRU layers run as one recurrence: at iteration k, layer l takes its step
    k - l, reading layer l - 1's state after that step (computed at iteration k - 1), so one
    product of all the layers' states with one matrix gives every layer's gates at once. T
    steps of L layers take T + L - 1 iterations of the same few NumPy calls instead of T x L
    (the head's per-frame cost is these calls' overhead, not their arithmetic). Several stacks
    of one depth (a head's members, `HeadConfig.members`) run side by side in the same
    iterations, each layer reading only its own stack's layer below. The sums are the
    layer-by-layer ones, grouped differently (a gate's recurrent and input parts in one dot
    product), plus exact zeros."""

    def __init__(self, stacks: list[list[_Gru]]):
        depth = self.depth = len(stacks[0])
        if any(len(stack) != depth for stack in stacks):
            raise UnsupportedHead("members with different numbers of GRU layers")
        # the state: layer by layer, each layer's stacks in turn
        blocks = [(layer, stack) for layer in range(depth) for stack in range(len(stacks))]
        units = [stacks[stack][layer].units for layer, stack in blocks]
        starts = np.cumsum([0, *units[:-1]]).tolist()
        at = {block: (start, n) for block, start, n in zip(blocks, starts, units, strict=True)}
        size = self.size = sum(units)
        self.gate, self.activation = stacks[0][0].recurrent_activation, stacks[0][0].activation
        #: where each layer's units start in the state (the layers above start later)
        self.layer_starts = [at[(layer, 0)][0] for layer in range(depth)]
        #: (start, units) of each stack's first and last layer
        self.first = [at[(0, stack)] for stack in range(len(stacks))]
        self.last = [at[(depth - 1, stack)] for stack in range(len(stacks))]
        # columns, each of `size` (every layer's units in turn): the update gates and the
        # reset gates (each layer's recurrent part + its input from the layer below), the
        # candidates' recurrent part, the candidates' input from the layer below
        matrix = np.zeros((size, 4 * size), np.float32)
        self.gate_bias = np.zeros(2 * size, np.float32)  # both biases of z and r
        self.recurrent_bias = np.zeros(size, np.float32)  # the candidates' (inside the reset)
        self.input_bias = np.zeros(size, np.float32)  # the candidates' input bias
        for layer, stack in blocks:
            gru, (start, units) = stacks[stack][layer], at[(layer, stack)]
            own = slice(start, start + units)
            for gate in range(3):
                weights = slice(gate * units, (gate + 1) * units)
                column = gate * size + start  # z, r, then the candidates' recurrent part
                matrix[own, column : column + units] = gru.recurrent[:, weights]
                inputs = column if gate < 2 else 3 * size + start
                if layer:  # the input of the layers above the first: the state below
                    below, count = at[(layer - 1, stack)]
                    matrix[below : below + count, inputs : inputs + units] = gru.kernel[:, weights]
                    bias = gru.input_bias[weights]
                else:  # the first layer's input bias comes with its step inputs
                    bias = 0.0
                if gate < 2:
                    self.gate_bias[column : column + units] = gru.recurrent_bias[weights] + bias
                else:
                    self.recurrent_bias[start : start + units] = gru.recurrent_bias[weights]
                    self.input_bias[start : start + units] = bias
        self.matrix = matrix

    @staticmethod
    def fits(grus: list[_Gru]) -> bool:
        """Whether the layers share their activations (each layer's own otherwise)."""
        first = grus[0]
        return all(
            g.activation is first.activation
            and g.recurrent_activation is first.recurrent_activation
            for g in grus
        )

    def last_states(self, steps: list[np.ndarray]) -> list[np.ndarray]:
        """Each stack's last layer's state after the last step, from its first layer's step
        inputs (T, 3U: its input projections, biases included; the same T for every stack)
        and a zero initial state."""
        count, depth, size = len(steps[0]), self.depth, self.size
        if not count:
            return [np.zeros(units, np.float32) for _, units in self.last]
        iterations = count + depth - 1
        gates = np.tile(self.gate_bias, (iterations, 1))
        inputs = np.tile(self.input_bias, (iterations, 1))
        for (start, first), given in zip(self.first, steps, strict=True):
            gates[:count, start : start + first] += given[:, :first]
            gates[:count, size + start : size + start + first] += given[:, first : 2 * first]
            inputs[:count, start : start + first] += given[:, 2 * first :]
        matrix, bias = self.matrix, self.recurrent_bias
        gate, activation = self.gate, self.activation
        h = np.zeros(size, np.float32)
        for k in range(iterations):
            y = h @ matrix
            zr = gate(y[: 2 * size] + gates[k])  # update and reset gates of every layer
            candidate = activation(
                y[3 * size :] + inputs[k] + zr[size:] * (y[2 * size : 3 * size] + bias)
            )
            h = candidate + zr[:size] * (h - candidate)  # z * h + (1 - z) * candidate
            if k + 1 < depth:  # the layers that have not started stay at their zero state
                h[self.layer_starts[k + 1] :] = 0.0
        return [h[start : start + units] for start, units in self.last]


def _activation_name(value) -> str:
    name = value if isinstance(value, str) else getattr(value, "__name__", str(value))
    if name not in _ACTIVATIONS:
        raise UnsupportedHead(f"activation {name}")
    return name


class NumpyHead:
    """The Keras head's inference math in NumPy, with the weights read from the Keras model.

    Masked time steps leave a GRU's state unchanged and the mask reaches every GRU layer
    (Keras propagates it), so the result equals running the GRUs over the unmasked steps
    only, which is what this does. Dropout and the training-only noise are inactive at
    inference. An input transform is folded into the first GRU's input projection (see the
    module's docstring): `project` gives each frame's projection once, `steps` turns the
    projections of a window's valid frames into the first GRU's step inputs.
    """

    def __init__(
        self,
        grus: list[_Gru],
        dense: list[tuple[np.ndarray, np.ndarray, str]],
        window_input: list[np.ndarray] | None = None,
        reference: ChangeReference | None = None,
        map_shape: tuple[int, int, int] | None = None,
        motion: int = 0,
        motion_scores: list[np.ndarray] | None = None,
        members: list[tuple[list[_Gru], list[tuple[np.ndarray, np.ndarray, str]]]] = (),
    ):
        """GRU layers, then (kernel, bias, activation) Dense layers; with `window_input`
        ([mean, A, C]), the `appearance+change` transform relative to `reference`; with
        `map_shape` too ([mean, A, C, where_scale]), the trend of where the picture changes
        read from the map that ends each feature vector (`realtime.head.where`), and how far
        the map moved when `where_scale` holds 2 more numbers; with `motion` (G; its 4
        numbers last in `where_scale`), how far the picture moved, read from the G x G
        thumbnail that ends each feature vector, after the map (`realtime.head.motion`); with
        `motion_scores` ([kernel (4, C), bias (C,)]: `realtime.head.layers.MotionScores`)
        too, those 4 numbers are not read by the first GRU but scored: added to the last
        Dense layer's output (linear), before a softmax; a kernel of 20 rows scores each
        quadrant's 4 too (`motion_quadrants`). `members`: the (GRU layers, Dense layers) of
        the head's members after the first (`HeadConfig.members`), which read the same input
        and whose probabilities are averaged with the first's."""
        stacks = [(grus, dense), *members]
        if any(not g or not d for g, d in stacks):
            raise UnsupportedHead("expected GRU layers followed by Dense layers")
        if not _Layers.fits([gru for g, _ in stacks for gru in g]):
            raise UnsupportedHead("GRU layers with different activations")
        if len({g[0].kernel.shape for g, _ in stacks}) > 1:
            raise UnsupportedHead("members whose first GRUs read different inputs")
        self.grus = grus  # the first member's
        self.layers = _Layers([g for g, _ in stacks])
        #: each member's Dense layers
        self.member_dense: list[list[tuple[np.ndarray, np.ndarray, Callable]]] = [
            [
                (
                    np.asarray(k, np.float32),
                    np.asarray(b, np.float32),
                    _ACTIVATIONS[_activation_name(a)],
                )
                for k, b, a in d
            ]
            for _, d in stacks
        ]
        self.dense = self.member_dense[0]  # the first member's
        self.members = len(stacks)
        first = self.grus[0]
        self.step_size = first.kernel.shape[1]  # 3U
        # steps relative to a reference within the window (None: raw steps)
        self.reference = None if window_input is None else reference
        self.map_shape = None if window_input is None or map_shape is None else tuple(map_shape)
        self.map_size = int(np.prod(self.map_shape)) if self.map_shape else 0
        self.motion = 0 if window_input is None else int(motion)
        self.thumbnail_size = self.motion * self.motion
        self.where_shift = False
        self.where_kernel = np.zeros((0, self.step_size), np.float32)  # none of the window's
        self.motion_scores = motion_scores is not None
        if self.motion_scores and not self.motion:
            raise UnsupportedHead("motion_scores needs motion")
        # the motion's numbers: 4, or 20 when the scores read each quadrant's too
        self.motion_dims = motion_dims(self.motion, False)
        if self.motion_scores:
            self.motion_dims = len(motion_scores[0])
        whole, quadrants = motion_dims(1, False), motion_dims(1, True)
        if self.motion_dims not in (0, whole, quadrants):
            raise UnsupportedHead(
                f"the motion's scores read {whole} or {quadrants} numbers, not {self.motion_dims}"
            )
        self.motion_quadrants = self.motion_dims == quadrants
        if self.motion_scores and any(
            d[-1][2] is not _ACTIVATIONS["linear"] for d in self.member_dense
        ):
            raise UnsupportedHead("the motion's scores are added to linear scores")
        firsts = [g[0] for g, _ in stacks]
        if window_input is None:
            folded = [(gru.kernel, gru.input_bias) for gru in firsts]
        else:
            window_input = [np.asarray(w, np.float64) for w in window_input]
            folded = [_fold_window_input(window_input[:3], gru) for gru in firsts]
        # each member's projection in turn: one product per frame gives all of them
        self.kernel = np.concatenate([k for k, _ in folded], axis=1)
        self.bias = np.concatenate([b for _, b in folded])
        self.width = folded[0][0].shape[1]  # numbers of each member's projection: 3U or 6U
        self.where_kernels = [self.where_kernel] * self.members
        if self.map_shape or self.motion:  # the window's numbers' scale and kernel rows
            if len(window_input) != 4:
                raise UnsupportedHead("a head reading the whole window's motion needs its scale")
            scale = window_input[3]
            looks = window_input[1].shape[1] + window_input[2].shape[1]
            on_map = len(scale) - self.motion_dims
            in_steps = len(scale) - self.motion_dims * self.motion_scores
            if on_map not in ((2, 4) if self.map_shape else (0,)) or len(first.kernel) != (
                looks + in_steps
            ):
                raise UnsupportedHead("where the picture changes: 2 or 4 numbers, 4 for motion")
            self.where_shift = on_map == 4
            # (0-8, 3U) per member: the window's numbers its first GRU reads
            self.where_kernels = [
                (scale[:in_steps, None] * gru.kernel[looks:]).astype(np.float32) for gru in firsts
            ]
            self.where_kernel = self.where_kernels[0]
            if self.motion_scores:  # (4 or 20, C), (C,): the motion's scores, of unscaled numbers
                kernel, bias = (np.asarray(w, np.float64) for w in motion_scores)
                self.scores_kernel = (scale[in_steps:, None] * kernel).astype(np.float32)
                self.scores_bias = bias.astype(np.float32)
        # where each frame's projection keeps its map, its thumbnail and its steps
        self._map_at = self.kernel.shape[1]
        self._thumb_at = self._map_at + self.map_size
        self._shift_at = self._thumb_at + self.thumbnail_size
        self._motion_at = self._shift_at + 2 * self.where_shift

    @classmethod
    def from_keras(cls, model) -> NumpyHead:  # pragma: no mutate block (TensorFlow)
        """From a built Keras head (any stack of GRU, Dropout and Dense layers)."""
        import keras

        # each member's (GRU layers, Dense layers), by the names member_layer gives them
        stacks: dict[int, tuple[list[_Gru], list[tuple[np.ndarray, np.ndarray, str]]]] = {}
        window_input, reference, map_shape, motion, motion_scores = None, None, None, 0, None
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer) or layer.name == MEMBERS_LAYER:
                continue
            if layer.name == WINDOW_INPUT_LAYER:
                window_input = layer.get_weights()
                reference = ChangeReference(layer.reference)
                map_shape = layer.map_shape
                motion = getattr(layer, "motion", 0)
                continue
            if layer.name == MOTION_SCORES_LAYER:
                motion_scores = layer.get_weights()
                continue
            grus, dense = stacks.setdefault(member_of(layer.name), ([], []))
            if isinstance(layer, keras.layers.GRU):
                if dense:
                    raise UnsupportedHead("a GRU after a Dense layer")
                grus.append(_Gru.from_layer(layer))
            elif isinstance(layer, keras.layers.Dense):
                config = layer.get_config()
                if not config.get("use_bias", True):
                    raise UnsupportedHead("Dense without bias")
                dense.append((*layer.get_weights(), _activation_name(config["activation"])))
            elif isinstance(layer, keras.layers.Dropout) or inactive_at_inference(layer):
                continue
            else:
                raise UnsupportedHead(f"layer {type(layer).__name__}")
        if not stacks or sorted(stacks) != list(range(len(stacks))):
            raise UnsupportedHead(
                f"expected GRU layers followed by Dense layers, members {sorted(stacks)}"
            )
        (grus, dense), *members = (stacks[m] for m in range(len(stacks)))
        return cls(grus, dense, window_input, reference, map_shape, motion, motion_scores, members)

    @classmethod
    def from_weights_file(cls, path: Path, info: ModelInfo) -> NumpyHead:
        """From `head.weights.h5` as `build_head` lays it out, without TensorFlow or Keras.

        Keras stores each layer's variables under `layers/<key>/vars` (a GRU's under
        `layers/<key>/cell/vars`), with the layer's own name as the `name` attribute; the
        names and shapes are the ones `build_head(info...)` gives. A file that does not match
        is an `InputError`; a head this reader does not know (`UnsupportedHead`) is left to
        Keras.
        """
        config = info.head
        try:
            with h5py.File(path, "r") as weights:
                found = {}
                for group in weights["layers"].values():
                    holder = group["cell"]["vars"] if "cell" in group else group["vars"]
                    name = str(group["vars"].attrs.get("name", ""))
                    found[name] = [np.asarray(holder[k]) for k in sorted(holder, key=int)]
        except Exception as exc:  # h5py raises OSError, KeyError, ValueError...
            raise InputError(f"cannot load {path} ({first_line(exc, 140)})") from None
        expected = _expected_weight_shapes(info)
        for name, shapes in expected.items():
            got = [w.shape for w in found.get(name, [])]
            if got != shapes:
                raise InputError(
                    f"cannot load {path}: layer {name} holds {got or 'nothing'}, "
                    f"the head in metadata.json needs {shapes}"
                )
        scores = found[MOTION_SCORES_LAYER] if config.motion_scores else None
        last = "linear" if scores else "softmax"  # the motion's scores, then the softmax

        def stack(m: int):
            grus = [
                _Gru(*found[member_layer(gru_layer(i), m)]) for i in range(len(config.gru_units))
            ]
            named = (member_layer(DENSE_LAYER, m), member_layer(PROBS_LAYER, m))
            return grus, [(*found[named[0]], "relu"), (*found[named[1]], last)]

        (grus, dense), *members = [stack(m) for m in range(config.members)]
        if config.input is HeadInput.APPEARANCE_CHANGE:
            map_shape = config.map_shape if config.where_trend else None
            return cls(
                grus,
                dense,
                found[WINDOW_INPUT_LAYER],
                config.change_reference,
                map_shape,
                config.motion,
                scores,
                members,
            )
        return cls(grus, dense, members=members)

    @property
    def projection_size(self) -> int:
        """Numbers kept per frame: 3U, or 6U when steps are relative to a reference (plus the
        frame's map when the head reads where the picture changes, its thumbnail when it reads
        the motion, and its steps from the frame before: 2 numbers on the map when it reads how
        far the map moved, 4 on the thumbnail for the motion)."""
        return self._motion_at + self.motion_dims

    def project(self, features: np.ndarray) -> np.ndarray:
        """(..., D) features -> (..., projection_size): per frame, independent of the window
        (a frame's step from the one before is 0 until `link` or `link_step` sets it)."""
        features = np.asarray(features, np.float32)
        if not self.map_size and not self.motion:
            return features @ self.kernel + self.bias
        split = features.shape[-1] - self.map_size - self.thumbnail_size
        steps = 2 * self.where_shift + self.motion_dims
        parts = [
            features[..., :split] @ self.kernel + self.bias,
            features[..., split:],  # the map, then the thumbnail
            np.zeros((*features.shape[:-1], steps), np.float32),
        ]
        return np.concatenate(parts, axis=-1)

    def _maps(self, projections: np.ndarray) -> np.ndarray:
        return projections[..., self._map_at : self._thumb_at].reshape(
            *projections.shape[:-1], *self.map_shape
        )

    def _thumbs(self, projections: np.ndarray) -> np.ndarray:
        return projections[..., self._thumb_at : self._shift_at].reshape(
            *projections.shape[:-1], self.motion, self.motion
        )

    def link(self, projections: np.ndarray) -> np.ndarray:
        """The projections of a window's valid frames, in order, each with its steps from the
        frame before (`realtime.head.where.step_between`, `realtime.head.motion.phase_step`;
        the first frame's are not read). In place; returns `projections`."""
        if len(projections) > 1:
            self._link(projections[:-1], projections[1:])
        return projections

    def link_step(self, previous: np.ndarray, projection: np.ndarray) -> None:
        """The stream's `link` for its newest frame: its steps from `previous` (the frame
        pushed before it), set in place, once per frame."""
        self._link(previous, projection)

    def _link(self, previous: np.ndarray, projection: np.ndarray) -> None:
        if self.where_shift:
            projection[..., self._shift_at : self._shift_at + 2] = step_between(
                self._maps(previous), self._maps(projection)
            )
        if self.motion:
            projection[..., self._motion_at : self._motion_at + self.motion_dims] = motion_step(
                self._thumbs(previous), self._thumbs(projection), self.motion_quadrants
            )

    def window(self, projections: np.ndarray) -> np.ndarray:
        """The whole window's numbers, unscaled, from its valid frames' projections in order
        (linked): where it changes (and how far the map moved), then how far its pixels
        moved."""
        window = []
        if self.map_size:  # where the window changes (and how far the map moved)
            window.append(window_trend(self._maps(projections)))
        # the frames' steps from the frame before, the first's aside
        moved = projections[1:, self._shift_at : self.projection_size]
        window.append(moved.sum(axis=0, dtype=np.float32))
        return np.concatenate(window)

    def steps(
        self, projections: np.ndarray, window: np.ndarray | None = None, member: int = 0
    ) -> np.ndarray:
        """`member`'s first GRU's step inputs, (T, 3U), from the valid frames' projections in
        order (`window`: their `window` numbers, if already computed)."""
        if not len(projections):
            return projections[:, : self.step_size]
        own = projections[:, member * self.width : (member + 1) * self.width]
        if self.reference is None:
            return own
        size = self.step_size
        if self.reference is ChangeReference.FIRST:
            steps = own[:, :size] - own[0, size:]
        else:
            reference = own[:, size:].mean(axis=0, dtype=np.float64)
            steps = own[:, :size] - reference.astype(np.float32)
        kernel = self.where_kernels[member]
        if len(kernel):  # the whole window's numbers, the same each step
            window = self.window(projections) if window is None else window
            steps = steps + window[: len(kernel)] @ kernel
        return steps

    def from_projections(self, projections: np.ndarray) -> np.ndarray:
        """Class probabilities from the projections of a window's valid frames, in order
        (linked: `link`): the mean of the members'."""
        needs_window = (self.motion_scores or len(self.where_kernel)) and len(projections)
        window = self.window(projections) if needs_window else None
        states = self.layers.last_states(
            [self.steps(projections, window, m) for m in range(self.members)]
        )
        scores = None
        if self.motion_scores:  # what the window's motion says, added to every member's
            dims = self.motion_dims
            moved = window[-dims:] if window is not None else np.zeros(dims, np.float32)
            scores = moved @ self.scores_kernel + self.scores_bias
        probabilities = []
        for x, dense in zip(states, self.member_dense, strict=True):
            for kernel, bias, activation in dense:
                x = activation(x @ kernel + bias)
            if scores is not None:  # through the softmax
                x = _softmax(x + scores)
            probabilities.append(x)
        if self.members == 1:
            return probabilities[0].astype(np.float32, copy=False)
        return np.mean(probabilities, axis=0, dtype=np.float64).astype(np.float32)

    def predict(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(T, D) features + (T,) bool mask -> (n_classes,) probabilities."""
        valid = np.flatnonzero(np.asarray(mask, bool))
        return self.from_projections(self.link(self.project(np.asarray(features)[valid])))

    def predict_windows(self, frames: np.ndarray, starts, window: int) -> np.ndarray:
        """(T, D) features of a run of frames -> (len(starts), n_classes) probabilities of
        the windows starting at `starts` (each `window` frames, fewer at the end). Each frame
        is projected on its own and linked to the one before once, as `HeadStream` does, so
        a window is its frames' projections, sliced (a window's first frame's steps are not
        read)."""
        frames = np.asarray(frames, np.float32)
        projections = np.empty((len(frames), self.projection_size), np.float32)
        for i, frame in enumerate(frames):
            projections[i] = self.project(frame)
            if i:
                self.link_step(projections[i - 1], projections[i])
        return np.stack([self.from_projections(projections[s : s + window]) for s in starts])


def _fold_window_input(weights: list[np.ndarray], gru: _Gru) -> tuple[np.ndarray, np.ndarray]:
    """The `appearance+change` transform folded into `gru`'s input projection.

    Returns the (D, 6U) kernel [A K_a + C K_c | C K_c] and the bias [b - mean A K_a | 0]:
    a frame's projection is [P_t | R_t] and a step's input is P_t - R_ref. Computed in
    float64, stored in float32.
    """
    mean, appearance, change = weights
    kernel = gru.kernel.astype(np.float64)
    a, c = appearance.shape[1], change.shape[1]
    looks, changes = kernel[:a], kernel[a : a + c]  # (rows after them: the where trend's)
    reference = change @ changes  # C K_c
    current = appearance @ looks + reference  # A K_a + C K_c
    bias = gru.input_bias.astype(np.float64) - mean @ appearance @ looks
    folded = np.concatenate([current, reference], axis=1).astype(np.float32)
    return folded, np.concatenate([bias, np.zeros_like(bias)]).astype(np.float32)


def _expected_weight_shapes(info: ModelInfo) -> dict[str, list[tuple[int, ...]]]:
    """Layer name -> its variables' shapes in the head `build_head` makes for `info`."""
    config = info.head
    size = info.feature_size
    shapes: dict[str, list[tuple[int, ...]]] = {}
    if config.input is HeadInput.APPEARANCE_CHANGE:
        a, c = config.dims
        size -= config.map_size + config.thumbnail_size
        shapes[WINDOW_INPUT_LAYER] = [(size,), (size, a), (size, c)]
        if config.window_dims:
            shapes[WINDOW_INPUT_LAYER].append((config.window_dims,))
        size = a + c + config.gru_window_dims
    classes = len(info.labels)
    for member in range(config.members):
        width = size
        for i, units in enumerate(config.gru_units):
            name = member_layer(gru_layer(i), member)
            shapes[name] = [(width, 3 * units), (units, 3 * units), (2, 3 * units)]
            width = units
        shapes[member_layer(DENSE_LAYER, member)] = [
            (width, config.dense_units),
            (config.dense_units,),
        ]
        shapes[member_layer(PROBS_LAYER, member)] = [(config.dense_units, classes), (classes,)]
    if config.motion_scores:
        shapes[MOTION_SCORES_LAYER] = [(config.motion_dims, classes), (classes,)]
    return shapes


class HeadStream(WindowStream):
    """Per-frame head inference over a sliding window of `length` frames.

    `push(feature)` adds the newest frame and returns the probabilities for the window of
    the last `length` frames (fewer at the start: a partial window, as the masked head was
    trained to read). Each frame's projection (`NumpyHead.project`, with its step from the
    frame before: `link_step`) is computed once and kept in a ring, so a new frame costs one
    (D x 3U) product (D x 6U with the `appearance+change` input) plus the small recurrences.
    """

    def __init__(self, head: NumpyHead, length: int):
        # the window holds each frame's projection instead of its raw feature vector
        super().__init__(FeatureWindow(length, head.projection_size))
        self.head = head
        # the newest frame's projection (after a reset too: a window's first frame's step
        # is never read)
        self._previous: np.ndarray | None = None

    def push(self, feature: np.ndarray) -> np.ndarray:
        projection = self.head.project(feature)
        if self._previous is not None:
            self.head.link_step(self._previous, projection)
        self._window.push(projection)
        self._previous = projection
        projections, _ = self._window.arrays()
        return self.head.from_projections(projections[: self._window.fill])
