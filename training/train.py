"""Turning per-video features into training windows and fitting the GRU head.

The head is `realtime.model.build_head` (never redefined here). A window is `window`
consecutive *sampled* frames (see `training.video`), zero-padded with the mask off when a
video is shorter, exactly the layout `realtime.window.FeatureWindow` gives the head live.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from realtime.model import build_head
from realtime.quiet import import_tensorflow
from training.recipes import Recipe


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
    """Training examples: features, masks, class indices and the video each came from."""

    features: np.ndarray  # (N, window, D)
    masks: np.ndarray  # (N, window)
    targets: np.ndarray  # (N,) int
    videos: np.ndarray  # (N,) int: index of the source video

    def take(self, index: np.ndarray) -> Windows:
        return Windows(
            self.features[index], self.masks[index], self.targets[index], self.videos[index]
        )

    def __len__(self) -> int:
        return len(self.targets)


def make_windows(per_video: list[np.ndarray], targets: list[int], recipe: Recipe) -> Windows:
    feats, masks, ys, vids = [], [], [], []
    for v, (features, target) in enumerate(zip(per_video, targets, strict=True)):
        starts = window_starts(
            len(features), recipe.window, recipe.stride, recipe.windows_per_video
        )
        for start in starts:
            f, m = one_window(features, start, recipe.window)
            feats.append(f)
            masks.append(m)
            ys.append(target)
            vids.append(v)
    return Windows(np.stack(feats), np.stack(masks), np.array(ys), np.array(vids))


def validation_videos(targets: list[int], fraction: float, seed: int) -> set[int]:
    """Per class, a seeded random `fraction` of its videos (at least one if it has two)."""
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


def train_head(
    windows: Windows,
    n_classes: int,
    recipe: Recipe,
    console: Console | None = None,
) -> TrainResult:
    """Fit a fresh head on `windows` with `recipe`; returns it with the best val-loss weights."""
    import_tensorflow()
    import keras

    console = console or Console(stderr=True)
    keras.utils.set_random_seed(recipe.seed)
    feature_size = windows.features.shape[2]
    head = build_head(
        recipe.window,
        feature_size,
        n_classes,
        gru_units=tuple(recipe.head["gru_units"]),
        dropout=float(recipe.head["dropout"]),
        dense_units=int(recipe.head["dense_units"]),
    )
    head.compile(
        optimizer=keras.optimizers.Adam(recipe.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )
    fit_args: dict = {}
    if recipe.stratified_validation:
        val_videos = validation_videos(
            [int(windows.targets[windows.videos == v][0]) for v in np.unique(windows.videos)],
            recipe.validation_split,
            recipe.seed,
        )
        is_val = np.isin(windows.videos, sorted(val_videos))
        train, val = windows.take(np.flatnonzero(~is_val)), windows.take(np.flatnonzero(is_val))
        if len(val):
            fit_args["validation_data"] = ([val.features, val.masks], val.targets)
    else:
        train = windows
        fit_args["validation_split"] = recipe.validation_split  # the last fraction, as Keras does
    has_val = "validation_data" in fit_args or recipe.validation_split > 0
    monitor = "val_loss" if has_val else "loss"
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = str(Path(tmp) / "best.weights.h5")
        callbacks = [
            keras.callbacks.ModelCheckpoint(
                checkpoint, monitor=monitor, save_best_only=True, save_weights_only=True
            )
        ]
        if recipe.early_stopping_patience:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=monitor, patience=recipe.early_stopping_patience
                )
            )
        columns = (
            TextColumn("[bold]train[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs {task.fields[stats]}"),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("train", total=recipe.epochs, stats="")
            callbacks.append(_RichEpochs(progress, task))
            history = head.fit(
                [train.features, train.masks],
                train.targets,
                epochs=recipe.epochs,
                batch_size=recipe.batch_size,
                shuffle=True,
                verbose=0,
                callbacks=callbacks,
                **fit_args,
            )
        head.load_weights(checkpoint)
    values = history.history
    series = values.get(monitor, [])
    best = int(np.argmin(series)) if series else len(values.get("loss", [])) - 1
    summary = {
        "windows": len(windows),
        "train_windows": len(train) if recipe.stratified_validation else None,
        "epochs_run": len(values.get("loss", [])),
        "best_epoch": best + 1,
        "monitor": monitor,
        "best": {k: round(float(v[best]), 4) for k, v in values.items() if len(v) > best},
    }
    return TrainResult(head, summary)
