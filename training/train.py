"""Turning per-video features into training windows and fitting the GRU head.

The head is `realtime.head.keras.build_head` (never redefined here). A window is `window`
consecutive *sampled* frames (see `realtime.frames.video`), zero-padded with the mask off when a
video is shorter, exactly the layout `realtime.head.window.FeatureWindow` gives the head live.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from realtime.backbones.regions import features_per_channel
from realtime.core.optional import import_tensorflow
from realtime.head.config import MOTION_SCORES_LAYER
from realtime.head.fitting import window_numbers
from realtime.head.keras import (
    build_head,
    count_parameters,
    fit_head_input,
    reads_numbers,
    split_features,
    training_twin,
)
from training.recipes import Recipe

#: Batches per call into TensorFlow while training (Keras's `steps_per_execution`). Measured
#: on the order test set's default recipe (2 cores, beside a bench run, runs alternated): the
#: same weights after 100 epochs as one batch per call, 113-118 s against 127-132 s.
STEPS_PER_EXECUTION = 64


def window_starts(n_frames: int, window: int, stride: int, count: int) -> list[int]:
    """Start offsets of the windows taken from a video with `n_frames` sampled frames."""
    if n_frames <= window:
        return [0]
    last = n_frames - window
    return list(range(0, last + 1, max(stride, 1)))[:count]


def one_window(features: np.ndarray, start: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(window, D) features from `start`, zero-padded, and the (window,) mask."""
    chunk = features[start : start + window]
    out = np.zeros((window, features.shape[1]), np.float32)
    out[: len(chunk)] = chunk
    mask = np.zeros(window, bool)
    mask[: len(chunk)] = True
    return out, mask


@dataclass
class Windows:
    """Training examples: features, masks, class indices, the video each came from and that
    video's group (videos held out together: `make_windows`)."""

    features: np.ndarray  # (N, window, D)
    masks: np.ndarray  # (N, window)
    targets: np.ndarray  # (N,) int
    videos: np.ndarray  # (N,) int: index of the source video
    groups: np.ndarray  # (N,) int: index of the source video's group

    def take(self, index: np.ndarray) -> Windows:
        return Windows(
            self.features[index],
            self.masks[index],
            self.targets[index],
            self.videos[index],
            self.groups[index],
        )

    def __len__(self) -> int:
        return len(self.targets)


def make_windows(
    per_video: list[np.ndarray],
    targets: list[int],
    recipe: Recipe,
    groups: list | None = None,
) -> Windows:
    """The training windows of the videos (`recipe.windows_per_video` at most from each,
    `recipe.stride` apart). `groups`: each video's group (any hashable; `Video.group`), the
    videos that stay on one side wherever training holds videos out (the validation split,
    the motion scores' calibration): clips cut from one recording share what they look like,
    and a held-out clip whose sibling was trained on says nothing about unseen recordings.
    A group is also told apart by class. None: each video is its own group (group index ==
    video index)."""
    keys = list(range(len(per_video))) if groups is None else list(groups)
    if len(keys) != len(per_video):
        raise ValueError(f"{len(keys)} groups for {len(per_video)} videos")
    index: dict = {}
    feats, masks, ys, vids, gids = [], [], [], [], []
    for v, (features, target) in enumerate(zip(per_video, targets, strict=True)):
        group = index.setdefault((target, keys[v]), len(index))
        starts = window_starts(
            len(features), recipe.window, recipe.stride, recipe.windows_per_video
        )
        for start in starts:
            f, m = one_window(features, start, recipe.window)
            feats.append(f)
            masks.append(m)
            ys.append(target)
            vids.append(v)
            gids.append(group)
    return Windows(np.stack(feats), np.stack(masks), np.array(ys), np.array(vids), np.array(gids))


def validation_groups(targets: list[int], fraction: float, seed: int) -> set[int]:
    """Per class, a seeded random `fraction` of its groups (at least one if it has two):
    `targets[g]` is group g's class."""
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    targets_arr = np.asarray(targets)
    for cls in np.unique(targets_arr):
        members = np.flatnonzero(targets_arr == cls)
        n_val = int(round(len(members) * fraction))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        else:
            n_val = 0
        chosen.update(int(i) for i in rng.permutation(members)[:n_val])
    return chosen


class _RichEpochs:
    """A Keras callback that shows epochs as a rich progress bar."""

    def __new__(cls, progress: Progress, task):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                text = " ".join(
                    f"{k} {v:.3f}" for k, v in logs.items() if k in ("loss", "val_loss", "val_acc")
                )
                progress.update(task, advance=1, stats=text)

        return Callback()


@dataclass
class TrainResult:
    head: object
    history: dict

    @property
    def parameters(self) -> dict:
        """{"trainable": n, "fitted": n} of the head (`realtime.head.keras.count_parameters`)."""
        return count_parameters(self.head)


def held_out(windows: Windows, recipe: Recipe, member: int = 0) -> np.ndarray:
    """(N,) bool: the windows that member `member` of the head (`HeadConfig.members`; 0 for
    a head of one) validates on and does not train on: whole groups (videos, unless told),
    `validation_groups` drawn with seed `recipe.seed + member`."""
    targets = [int(windows.targets[windows.groups == g][0]) for g in np.unique(windows.groups)]
    chosen = validation_groups(targets, recipe.validation_split, recipe.seed + member)
    return np.isin(windows.groups, sorted(chosen))


def _split(windows: Windows, recipe: Recipe) -> tuple[Windows, Windows | None]:
    """Training and validation windows, all windows of a group (of a video, unless told) on
    the same side."""
    is_val = held_out(windows, recipe)
    train, val = windows.take(np.flatnonzero(~is_val)), windows.take(np.flatnonzero(is_val))
    return train, (val if len(val) else None)


def _fit(
    train: Windows,
    val: Windows | None,
    n_classes: int,
    recipe: Recipe,
    console: Console,
    epochs: int,
    keras_split: float = 0.0,
    select_best: bool = True,
    held: np.ndarray | None = None,
):
    """One training run: a fresh head, `epochs` at most; (head, keras history dict).

    `held`: (members, N) bool, the windows of `train` each member validates on instead of
    training on (`held_out`; `val` is then None): every member trains on all the others,
    weighted 0 where it holds them out, and the validation loss is each member's on its own
    held-out windows. What is fitted rather than trained (the transform, the motion's scores)
    is fitted on the first member's training windows, as for a head of one."""
    import keras

    keras.utils.set_random_seed(recipe.seed)
    feature_size = train.features.shape[2]
    head = build_head(recipe.window, feature_size, n_classes, recipe.head)
    fit_on = train if held is None else train.take(np.flatnonzero(~held[0]))
    # fitted on the training windows only
    numbers = fit_head_input(
        head,
        recipe.head,
        fit_on.features,
        fit_on.masks,
        fit_on.videos,
        fit_on.targets,
        features_per_channel(recipe.pooling),
        fit_on.groups,
    )
    if held is not None:  # the numbers of every window, not only of those fitted on
        numbers = None
    after = []  # (layer, weights) of the motion's scores to set after training
    if recipe.motion_scores_after and recipe.head.motion_scores:
        for layer in head.layers:
            if layer.name.endswith(MOTION_SCORES_LAYER):
                after.append((layer, layer.get_weights()))
                layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    # what is trained: the head, or its twin that reads the numbers computed once and gives
    # each member's probabilities (the same layers: training it trains the head)
    twin = training_twin(head, recipe.head)
    model = twin or head
    members = recipe.head.members

    def inputs(windows: Windows, known: np.ndarray | None = None) -> list[np.ndarray]:
        if twin is None or not reads_numbers(recipe.head):
            return [windows.features, windows.masks]
        plain, maps, thumbs = split_features(windows.features, recipe.head)
        if known is None:
            known = window_numbers(maps, windows.masks, recipe.head, thumbs)
        return [plain, windows.masks, known]

    train_inputs = inputs(train, numbers)
    if recipe.input_dropout:
        # augmentation only, of the features the transform reads: the head (what is saved
        # and served) is unchanged
        given = [keras.Input(x.shape[1:], dtype=str(x.dtype)) for x in train_inputs]
        dropped = keras.layers.Dropout(recipe.input_dropout)(given[0])
        model = keras.Model(given, model([dropped, *given[1:]]))

    def targets(windows: Windows):  # each member's own loss, averaged: one member's scale
        return windows.targets if members == 1 else [windows.targets] * members

    model.compile(
        optimizer=keras.optimizers.Adam(recipe.learning_rate),
        loss="sparse_categorical_crossentropy"
        if members == 1
        else ["sparse_categorical_crossentropy"] * members,
        loss_weights=None if members == 1 else [1.0 / members] * members,
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")]
        if members == 1
        else [[keras.metrics.SparseCategoricalAccuracy(name="acc")] for _ in range(members)],
        # several batches per call into TensorFlow: the head is small enough that each
        # call's overhead counts (the same weights, epoch by epoch; ~10 % less time)
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    fit_args: dict = {}
    if held is not None:  # each member's own training and validation windows
        fit_args["sample_weight"] = [(~h).astype(np.float32) for h in held]
        weights = [h.astype(np.float32) for h in held]
        fit_args["validation_data"] = (train_inputs, targets(train), weights)
    if val is not None:
        fit_args["validation_data"] = (inputs(val), targets(val))
    elif keras_split:
        fit_args["validation_split"] = keras_split  # the last fraction, unshuffled, as Keras does
    has_val = bool(fit_args)
    monitor = "val_loss" if has_val else "loss"
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = str(Path(tmp) / "best.weights.h5")
        callbacks = []
        if select_best:
            callbacks.append(
                keras.callbacks.ModelCheckpoint(
                    checkpoint, monitor=monitor, save_best_only=True, save_weights_only=True
                )
            )
        if recipe.early_stopping_patience and has_val:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=monitor,
                    patience=recipe.early_stopping_patience,
                    start_from_epoch=recipe.early_stopping_start,
                )
            )
        columns = (
            TextColumn("[bold]train[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs {task.fields[stats]}"),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("train", total=epochs, stats="")
            callbacks.append(_RichEpochs(progress, task))
            history = model.fit(
                train_inputs,
                targets(train),
                epochs=epochs,
                batch_size=recipe.batch_size,
                shuffle=True,
                verbose=0,
                callbacks=callbacks,
                **fit_args,
            )
        if select_best:
            model.load_weights(checkpoint)  # the best epoch (shares its layers with `head`)
    for layer, weights in after:
        layer.set_weights(weights)
    return head, history.history, monitor


def _summary(values: dict, monitor: str) -> dict:
    series = values.get(monitor, [])
    best = int(np.argmin(series)) if series else len(values.get("loss", [])) - 1
    return {
        "epochs_run": len(values.get("loss", [])),
        "best_epoch": best + 1,
        "monitor": monitor,
        "best": {k: round(float(v[best]), 4) for k, v in values.items() if len(v) > best},
    }


def train_head(
    windows: Windows,
    n_classes: int,
    recipe: Recipe,
    console: Console | None = None,
) -> TrainResult:
    """Fit a fresh head on `windows` with `recipe`.

    seed-style recipes keep the weights of the best validation-loss epoch. With `refit`, the
    validation run only chooses the number of epochs; a fresh head is then trained for that
    many epochs on every training window (validation videos included).
    """
    import_tensorflow()
    console = console or Console(stderr=True)
    if not recipe.stratified_validation:
        head, values, monitor = _fit(
            windows, None, n_classes, recipe, console, recipe.epochs, recipe.validation_split
        )
        summary = {"windows": len(windows), **_summary(values, monitor)}
        return TrainResult(head, summary)
    train, val = _split(windows, recipe)
    members = recipe.head.members
    if members > 1 and val is not None:  # each member holds out its own groups
        held = np.stack([held_out(windows, recipe, m) for m in range(members)])
        head, values, monitor = _fit(
            windows, None, n_classes, recipe, console, recipe.epochs, held=held
        )
    else:
        head, values, monitor = _fit(train, val, n_classes, recipe, console, recipe.epochs)
        held = None
    summary = {
        "windows": len(windows),
        "groups": len(np.unique(windows.groups)),
        "train_windows": len(train),
        "validation_windows": len(val) if val is not None else 0,
        "validation_groups": len(np.unique(val.groups)) if val is not None else 0,
        **_summary(values, monitor),
    }
    if held is not None:  # what each member held out (the counts above: the first's)
        summary["member_validation_windows"] = [int(h.sum()) for h in held]
    if recipe.refit and val is not None:
        epochs = summary["best_epoch"]
        head, refit_values, _ = _fit(
            windows, None, n_classes, recipe, console, epochs, select_best=False
        )
        summary["refit"] = {
            "epochs": epochs,
            "windows": len(windows),
            "final_loss": round(float(refit_values["loss"][-1]), 4),
        }
    return TrainResult(head, summary)
