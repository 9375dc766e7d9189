"""The steps behind each `python -m training` command, in the order `all` runs them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from realtime.backbones import backbone_spec_from_metadata, load_backbone
from realtime.backbones.base import Backbone
from realtime.backbones.motion import MOTION_SIZE, WithMotion, unwrapped
from realtime.backbones.regions import Pooling
from realtime.core.errors import InputError
from realtime.head.classifier import ActionClassifier
from realtime.head.modeldir import ModelInfo, check_compatible, read_model_info, save_model_dir
from training.dataset import Dataset, Video, load_dataset
from training.evaluate import (
    CONFUSION_PNG,
    REPORT_FILE,
    confusion_png,
    confusion_text,
    first_windows,
    live_protocols,
    live_summary,
    metrics_report,
)
from training.export import write_model_dir
from training.features import FeatureCache, FeatureSet, extract_features, report_skipped
from training.recipes import Recipe, for_backbone
from training.train import make_windows, train_head


@dataclass
class BackboneChoice:
    """What --backbone / --backbone-weights / --threads / --backend / --calibration asked for."""

    spec: str | None = None
    weights: str | None = None
    threads: int | None = None
    backend: str = "auto"
    calibration: list[str] | None = None
    pooling: Pooling = Pooling.GLOBAL  # --pooling, else the recipe's
    motion: int | None = None  # the recipe's head's thumbnail side (`WithMotion`)

    def load(self) -> Backbone:
        return load_backbone(
            self.spec,
            self.weights,
            self.threads,
            backend=self.backend,
            calibration=self.calibration,
            pooling=self.pooling,
            motion=self.motion,
        )


def cache_root(dataset: Dataset, cache: str | Path | None) -> Path:
    return Path(cache) if cache else dataset.root / ".features"


def features_step(
    dataset: Dataset,
    backbone: Backbone,
    fps: float | None,
    limit: int | None,
    videos: list[Video],
    cache: str | Path | None,
    console: Console,
    use_cache: bool = True,
) -> FeatureSet:
    root = cache_root(dataset, cache)
    # features without thumbnails are the start of those with them (the default recipe's)
    plain = not getattr(backbone, "motion", None)
    wider = (WithMotion(backbone, MOTION_SIZE).cache_identity(),) if plain else ()
    store = FeatureCache(root, backbone.cache_identity(), backbone.image_size, fps, wider)
    result = extract_features(
        videos, backbone, fps, limit, store if use_cache else None, console=console
    )
    console.print(
        f"{len(result.features)} video(s): {result.cache_hits} from the cache "
        f"({store.folder}), {result.extracted_videos} extracted "
        f"({result.extracted_frames} frames, {result.frames_per_second:.1f} frames/s), "
        f"{len(result.skipped)} skipped",
        highlight=False,
    )
    report_skipped(result, console)
    return result


def features_for_recipe(
    dataset: Dataset, backbone: Backbone, recipe: Recipe, cache, console: Console
) -> tuple[FeatureSet, FeatureSet]:
    """Training videos: the frames the recipe trains on; test videos: all their frames
    (evaluation classifies windows at every phase)."""
    train = features_step(
        dataset, backbone, recipe.fps, recipe.frames_needed, dataset.split("train"), cache, console
    )
    test = features_step(dataset, backbone, recipe.fps, None, dataset.split("test"), cache, console)
    return train, test


def _usable(videos: list[Video], result: FeatureSet) -> list[Video]:
    return [v for v in videos if v.path in result.features]


def train_step(
    dataset: Dataset,
    backbone: Backbone,
    recipe: Recipe,
    out: Path,
    cache: str | Path | None,
    console: Console,
) -> Path:
    recipe = for_backbone(recipe, backbone)
    videos = dataset.split("train")
    result = features_step(
        dataset, backbone, recipe.fps, recipe.frames_needed, videos, cache, console
    )
    usable = _usable(videos, result)
    labels = dataset.labels
    missing = sorted(set(labels) - {v.label for v in usable})
    if missing:
        raise InputError(f"no readable training video for class(es): {', '.join(missing)}")
    per_video = [result.features[v.path] for v in usable]
    targets = [labels.index(v.label) for v in usable]
    windows = make_windows(per_video, targets, recipe, [v.group for v in usable])
    groups = len(np.unique(windows.groups))
    console.print(
        f"recipe {recipe.name}: {len(windows)} window(s) of {recipe.window} frames at "
        f"{recipe.fps:g} fps from {len(usable)} training video(s)"
        + (f" in {groups} groups" if groups < len(usable) else "")
        + f", {len(labels)} classes"
    )
    trained = train_head(windows, len(labels), recipe, console)
    parameters = trained.parameters
    console.print(
        f"head {recipe.head.describe(len(labels))}: {parameters['trainable']:,} trainable "
        f"parameters, {parameters['fitted']:,} fitted to the training frames",
        highlight=False,
    )
    # an int8 backbone's calibration (the backbone's, thumbnails or not)
    quantized = getattr(unwrapped(backbone), "quantized", None)
    info = ModelInfo(
        labels=list(labels),
        window=recipe.window,
        image_size=backbone.image_size,
        backbone=backbone.identity(),
        sampling={
            "fps": recipe.fps,
            "rule": "realtime.frames.clock.SamplingClock on the source clock; a window is "
            "consecutive sampled frames",
        },
        head=recipe.head,
        training={
            "recipe": recipe.as_dict(),
            "dataset": dataset.describe(),
            "skipped_videos": [str(p) for p, _ in result.skipped],
            # how the features were computed (any backend serves the head; int8 is recorded
            # with its calibration, since its features differ from fp32 by a few percent)
            "features": {
                "backend": backbone.backend,
                **({"int8_calibration": quantized} if quantized else {}),
            },
            "parameters": parameters,
            "history": trained.history,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    write_model_dir(out, trained.head, info, backbone)
    console.print(f"model written to {out}")
    return out


def evaluate_step(
    dataset: Dataset,
    model_dir: Path,
    backbone: Backbone,
    cache: str | Path | None,
    console: Console,
) -> dict:
    info = read_model_info(model_dir)
    check_compatible(info, backbone.identity(), model_dir)
    unknown = sorted({v.label for v in dataset.split("test")} - set(info.labels))
    if unknown:
        raise InputError(f"the model {model_dir} does not know the class(es) {', '.join(unknown)}")
    videos = dataset.split("test")
    if not videos:
        raise InputError(f"{dataset.root} has no test videos to evaluate on")
    result = features_step(dataset, backbone, info.sampling_fps, None, videos, cache, console)
    usable = _usable(videos, result)
    if not usable:
        raise InputError("no readable test video")
    classifier = ActionClassifier(model_dir, info)
    per_video = [result.features[v.path] for v in usable]
    features, masks = first_windows(per_video, info.window)
    probs = classifier.predict_batch(features, masks)
    predicted = probs.argmax(axis=1)
    targets = [info.labels.index(v.label) for v in usable]
    report = metrics_report(targets, predicted, info.labels)
    report.update(live_protocols(classifier.predict_windows, per_video, targets, info.window))
    report["skipped_videos"] = [{"video": str(p), "reason": r} for p, r in result.skipped]
    report["dataset"] = dataset.describe()
    report["predictions"] = [
        {
            "video": v.name,
            "label": v.label,
            "predicted": info.labels[int(p)],
            "probs": {k: round(float(x), 6) for k, x in zip(info.labels, row, strict=True)},
        }
        for v, p, row in zip(usable, predicted, probs, strict=True)
    ]
    model_dir = Path(model_dir)
    (model_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    confusion_png(report["confusion_matrix"], info.labels, model_dir / CONFUSION_PNG)
    info.evaluation = {
        "accuracy": report["accuracy"],
        "test_videos": report["test_videos"],
        "skipped_videos": len(result.skipped),
        "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"],
        "protocol": f"first window ({info.window} sampled frames) of each test video",
        "any_phase": report["any_phase"],
        "missing_frames": report["missing_frames"],
        "report": REPORT_FILE,
        "plot": CONFUSION_PNG,
    }
    save_model_dir(model_dir, classifier.model, info)
    console.print(confusion_text(report["confusion_matrix"], info.labels), highlight=False)
    for label, row in report["per_class"].items():
        console.print(
            f"{label}: precision {row['precision']}, recall {row['recall']}, "
            f"{row['support']} video(s)",
            highlight=False,
        )
    console.print(
        f"[bold]test accuracy {report['accuracy']:.1%}[/] (first window) on "
        f"{report['test_videos']} video(s) -> {model_dir / REPORT_FILE}"
    )
    console.print(live_summary(report), highlight=False)
    return report


def evaluation_backbone(model_dir: Path, choice: BackboneChoice) -> Backbone:
    """The backbone a model was trained with, unless --backbone says otherwise."""
    info = read_model_info(model_dir)
    spec = choice.spec or backbone_spec_from_metadata(info.backbone, Path(model_dir))
    return load_backbone(
        spec,
        choice.weights,
        choice.threads,
        backend=choice.backend,
        calibration=choice.calibration,
        pooling=info.backbone.pooling,
        motion=info.backbone.motion,
    )


def load(data: str | Path) -> Dataset:
    return load_dataset(data)
