"""`python -m training`: download, features, train, evaluate, export, all (and synth).

Every bad input is one `error: ...` line on stderr and exit code 2 (argparse mistakes too).
Cheap checks (arguments, folders, data layout) come before TensorFlow is imported.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from realtime.backbones.base import CHOICES as BACKEND_CHOICES
from realtime.backbones.base import INT8
from realtime.backbones.motion import MOTION_SIZE
from realtime.backbones.regions import Pooling
from realtime.core.cliargs import (
    VERBOSE_HELP,
    HelpFormatter,
    OneLineErrorParser,
    configure_logging,
    positive_float,
    positive_int,
    run_reporting_errors,
)
from realtime.core.errors import InputError
from realtime.head.config import HeadInput
from realtime.head.modeldir import DEFAULT_MODEL_DIR, read_model_info
from training import workflow
from training.download import UCF101_TOP5_URL, prepare
from training.export import check_model_dir, check_output_dir, export_model_dir
from training.recipes import get_recipe
from training.synthetic import GENERATORS, KINDS, SyntheticSpec, generate
from training.workflow import BackboneChoice

DEFAULT_DATA_DEST = Path("data")


def _add_backbone(p: argparse.ArgumentParser, pooling: bool = True) -> None:
    g = p.add_argument_group("backbone (as in `python -m realtime`)")
    g.add_argument(
        "--backbone",
        metavar="NAME|FILE.tflite",
        help="feature extractor: inception_v3 (default) or a .tflite file",
    )
    g.add_argument(
        "--backbone-weights",
        metavar="FILE",
        help="InceptionV3 ImageNet weights file, for machines without internet",
    )
    g.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_CHOICES,
        help="how InceptionV3 runs (auto: the fastest that matches Keras within 1%%; "
        "see docs/performance.md); openvino-int8 is opt-in and reports its error",
    )
    g.add_argument(
        "--calibration",
        action="append",
        metavar="VIDEO|DIR",
        help="with --backend openvino-int8: videos to calibrate int8 on "
        "(default: the data set's training videos)",
    )
    if pooling:
        g.add_argument(
            "--pooling",
            choices=[p.value for p in Pooling],
            help="the backbone's last feature map averaged over the whole image (global), "
            "over the whole image and its four quadrants (regions: keeps where things are, "
            "5x the features), or the whole image's average then the map itself, 32 numbers "
            "a position (map: the default recipe's head then also reads "
            "which way the place where the picture changes moves and how far the picture "
            "moved; 2.5x the features) "
            "(docs/training.md) (default: the recipe's)",
        )
    g.add_argument("--threads", type=positive_int, metavar="N", help="CPU threads for LiteRT")


def _add_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="feature cache folder (default: DATA/.features)",
    )


def _add_recipe(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recipe")
    g.add_argument(
        "--recipe",
        choices=("default", "seed"),
        default="default",
        help="seed: the Keras example exactly; default: several windows per video, "
        "per-class validation split, early stopping (see docs/training.md)",
    )
    g.add_argument(
        "--fps",
        type=positive_float,
        help="sampling rate of the frames in a window (recipe default: 25)",
    )
    g.add_argument(
        "--epochs", type=positive_int, help="maximum training epochs (recipe default: 10 / 60)"
    )
    g.add_argument(
        "--windows-per-video",
        type=positive_int,
        metavar="N",
        help="training windows per video (recipe default: 1 / 8)",
    )
    g.add_argument(
        "--stride",
        type=positive_int,
        metavar="N",
        help="sampled frames between windows (recipe default: 10 / 5)",
    )
    g.add_argument("--seed", type=int, help="random seed (weights, shuffling, split; default 0)")
    _add_motion(g)
    g.add_argument(
        "--motion-scores",
        action=argparse.BooleanOptionalAction,
        help="send how far the picture moved (implies --motion) to the class scores through a "
        "linear discriminant fitted on the training videos and calibrated on folds of them, "
        "instead of into the GRU (docs/training.md) (default: the recipe's)",
    )
    g.add_argument(
        "--motion-quadrants",
        action=argparse.BooleanOptionalAction,
        help="the motion's class scores also read how far each quadrant of the picture moved "
        "(20 numbers, a shrunk covariance; implies --motion-scores). Failed its report: on "
        "real clips it fell to 73-80%% from the default's 100%% (docs/training.md) "
        "(default: the recipe's)",
    )
    g.add_argument(
        "--motion-parts",
        action=argparse.BooleanOptionalAction,
        help="the motion's class scores read how the picture's quadrants move against each "
        "other (their steps summed, divergence and curl: 12 numbers; implies "
        "--motion-quadrants), added after the GRU is trained. Passed its rule on the tuning "
        "sets and the clips, not yet reported on the report sets (docs/training.md) "
        "(default: the recipe's)",
    )
    g.add_argument(
        "--members",
        type=positive_int,
        metavar="N",
        help="GRU stacks that read the same input, each from its own initial weights and "
        "trained on its own loss; the head gives the mean of their probabilities "
        "(docs/training.md) (default: the recipe's, 1)",
    )


def _add_motion(g) -> None:
    g.add_argument(
        "--motion",
        action=argparse.BooleanOptionalAction,
        help=f"the head also reads how far the picture moved over each window, from a "
        f"{MOTION_SIZE}x{MOTION_SIZE} grayscale thumbnail of every frame kept after its "
        "features (phase correlation; docs/training.md) (default: the recipe's)",
    )


def build_parser() -> argparse.ArgumentParser:
    fmt = HelpFormatter
    p = OneLineErrorParser(
        prog="python -m training",
        description="Train the GRU action classifier that `python -m realtime` runs.",
        formatter_class=fmt,
    )
    p.add_argument("--verbose", "-v", action="store_true", help=VERBOSE_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    d = sub.add_parser(
        "download",
        help="fetch, check and extract UCF101 top-5",
        description="Download ucf101_top5.tar.gz (resumable), check it and extract it safely "
        "to DEST/ucf101_top5.",
        formatter_class=fmt,
    )
    d.add_argument("--dest", default=str(DEFAULT_DATA_DEST), metavar="DIR", help="data folder")
    d.add_argument("--from", dest="from_file", metavar="FILE", help="an already downloaded archive")
    d.add_argument(
        "--url", default=None, metavar="URL", help="archive URL (default: the example's)"
    )

    s = sub.add_parser(
        "synth",
        help="write a synthetic action data set (see docs/training.md)",
        description="Write a synthetic data set in the example's layout (or folders): "
        "one of eight generators (shapes, textures, sprites, blinds, crossing, rooms, outdoors, "
        "tabletop), "
        "one of three kinds of classes (order: told apart only by the order of the frames; "
        "appearance: only by how they look; mixed: both needed).",
        formatter_class=fmt,
    )
    s.add_argument("--out", required=True, metavar="DIR")
    s.add_argument(
        "--generator", choices=tuple(GENERATORS), default="shapes", help="how the videos are made"
    )
    s.add_argument("--kind", choices=KINDS, default="order", help="kind of classes")
    s.add_argument(
        "--train-per-class",
        type=positive_int,
        default=8,
        metavar="N",
        help="training videos per class",
    )
    s.add_argument(
        "--test-per-class",
        type=positive_int,
        default=3,
        metavar="N",
        help="held-out test videos per class",
    )
    s.add_argument(
        "--layout",
        choices=("csv", "folders"),
        default="csv",
        help="csv: the Keras example's train.csv/test.csv; folders: one per class",
    )
    s.add_argument("--seed", type=int, default=0, help="random seed of the generated videos")

    f = sub.add_parser(
        "features",
        help="extract and cache per-video backbone features",
        description="Decode each video once, sample it like the runtime, run the backbone in "
        "batches, cache the features (a second run is instant).",
        formatter_class=fmt,
    )
    f.add_argument("--data", required=True, metavar="DIR", help="data set folder")
    f.add_argument(
        "--recipe",
        choices=("default", "seed"),
        default="default",
        help="take as many frames per training video as this recipe needs",
    )
    f.add_argument("--fps", type=positive_float, help="sampling rate (default: the recipe's)")
    _add_motion(f)
    _add_backbone(f)
    _add_cache(f)

    t = sub.add_parser(
        "train",
        help="train the head and write a model directory",
        description="Train the GRU head on a data set's training split; write --out.",
        formatter_class=fmt,
    )
    t.add_argument("--data", required=True, metavar="DIR", help="data set folder")
    t.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    _add_recipe(t)
    _add_backbone(t)
    _add_cache(t)

    e = sub.add_parser(
        "evaluate",
        help="test accuracy, per-class precision/recall, confusion matrix",
        description="Evaluate a model directory on the data set's test split; the JSON report "
        "and a PNG confusion matrix are stored in the model directory.",
        formatter_class=fmt,
    )
    e.add_argument("--data", required=True, metavar="DIR", help="data set folder")
    e.add_argument("--model", required=True, metavar="DIR", help="model directory")
    _add_backbone(e, pooling=False)  # the model's metadata says how it pools
    _add_cache(e)

    x = sub.add_parser(
        "export",
        help="check a model directory loads in realtime and copy it",
        description="Load a trained model directory as `realtime` does, then copy what the "
        "runtime needs (weights, metadata, report, .tflite backbone) to --out.",
        formatter_class=fmt,
    )
    x.add_argument("--model", required=True, metavar="DIR", help="trained model directory")
    x.add_argument("--out", required=True, metavar="DIR", help="where the runtime will load it")

    a = sub.add_parser(
        "all",
        help="download (unless --data), features, train, evaluate, export",
        description="Everything in order. With no --data it downloads UCF101 top-5 and writes "
        "weights/ucf101_top5/.",
        formatter_class=fmt,
    )
    a.add_argument("--data", metavar="DIR", help="data set folder (default: download UCF101 top-5)")
    a.add_argument("--out", metavar="DIR", help="model directory (default: weights/ucf101_top5)")
    a.add_argument("--dest", default=str(DEFAULT_DATA_DEST), metavar="DIR", help="download folder")
    a.add_argument("--from", dest="from_file", metavar="FILE", help="an already downloaded archive")
    _add_recipe(a)
    _add_backbone(a)
    _add_cache(a)
    return p


def _recipe(args):
    recipe = _motion_recipe(args)
    members = getattr(args, "members", None)
    if members is None:
        return recipe
    return replace(recipe, head=replace(recipe.head, members=members))


def _motion_recipe(args):
    pooling = getattr(args, "pooling", None)  # recorded with the recipe, used by the backbone
    recipe = get_recipe(
        args.recipe,
        pooling=Pooling(pooling) if pooling else None,
        fps=getattr(args, "fps", None),
        epochs=getattr(args, "epochs", None),
        windows_per_video=getattr(args, "windows_per_video", None),
        stride=getattr(args, "stride", None),
        seed=getattr(args, "seed", None),
    )
    motion = getattr(args, "motion", None)
    scores = getattr(args, "motion_scores", None)
    quadrants = getattr(args, "motion_quadrants", None)
    parts = getattr(args, "motion_parts", None)
    if parts and quadrants is False:
        raise InputError("--motion-parts needs the quadrants: drop --no-motion-quadrants")
    if parts:
        quadrants = True
    if quadrants and scores is False:
        flag = "--motion-parts" if parts else "--motion-quadrants"
        raise InputError(f"{flag} needs the motion's scores: drop --no-motion-scores")
    if quadrants:
        scores = True
    if scores and motion is False:
        flag = (
            "--motion-parts" if parts else "--motion-quadrants" if quadrants else "--motion-scores"
        )
        raise InputError(f"{flag} needs the motion: drop --no-motion")
    if scores:
        motion = True
    if motion is None and scores is None and quadrants is None and parts is None:
        return recipe
    if motion and recipe.head.input is not HeadInput.APPEARANCE_CHANGE:
        flag = (
            "--motion-parts"
            if parts
            else "--motion-quadrants"
            if quadrants
            else "--motion-scores"
            if scores
            else "--motion"
        )
        raise InputError(
            f"{flag} needs a recipe whose head reads appearance and change, not {args.recipe}"
        )
    size = recipe.head.motion if motion is None else MOTION_SIZE if motion else 0
    # the scores need the motion: --no-motion ends both
    keep = recipe.head.motion_scores if scores is None else scores
    keep = bool(keep and size)
    # the quadrants need the scores: --no-motion-scores (or --no-motion) ends them too
    each = bool((recipe.head.motion_quadrants if quadrants is None else quadrants) and keep)
    # the parts need the quadrants: --no-motion-quadrants (or less) ends them too
    summary = recipe.head.motion_summary if parts is None else parts
    after = recipe.motion_scores_after if parts is None else parts
    summary = bool(summary and each)
    # scores added after training go with the parts: ending these ends them
    after = bool(after and keep and (summary or not recipe.head.motion_summary))
    head = replace(
        recipe.head, motion=size, motion_scores=keep, motion_quadrants=each, motion_summary=summary
    )
    return replace(recipe, head=head, motion_scores_after=after)


def _choice(args, dataset=None, recipe=None):
    """The backbone options; int8 without --calibration calibrates on `dataset`'s train split;
    the pooling is `recipe`'s (`--pooling` is part of it)."""
    calibration = args.calibration
    if not calibration and args.backend == INT8 and dataset is not None:
        calibration = [str(video.path) for video in dataset.split("train")]
    pooling = recipe.pooling if recipe else Pooling.GLOBAL
    motion = recipe.head.motion or None if recipe else None
    return BackboneChoice(
        args.backbone,
        args.backbone_weights,
        args.threads,
        args.backend,
        calibration,
        pooling,
        motion,
    )


def run(args, console: Console) -> int:
    if args.command == "download":
        prepare(Path(args.dest), console, args.url or UCF101_TOP5_URL, _from(args))
        return 0
    if args.command == "synth":
        out = check_output_dir(args.out)
        spec = SyntheticSpec(
            args.train_per_class, args.test_per_class, args.generator, args.kind, args.seed
        )
        generate(out, spec, args.layout)
        console.print(
            f"synthetic data set ({args.generator}, {args.kind}) written to {out} "
            f"({args.layout} layout)"
        )
        return 0

    if args.command == "features":
        dataset = workflow.load(args.data)
        recipe = _recipe(args)
        backbone = _choice(args, dataset, recipe).load()
        workflow.features_for_recipe(dataset, backbone, recipe, args.cache, console)
        return 0
    if args.command == "train":
        out = check_output_dir(args.out)
        dataset = workflow.load(args.data)
        recipe = _recipe(args)
        backbone = _choice(args, dataset, recipe).load()
        workflow.train_step(dataset, backbone, recipe, out, args.cache, console)
        return 0
    if args.command == "evaluate":
        read_model_info(Path(args.model))  # cheap checks first
        dataset = workflow.load(args.data)
        backbone = workflow.evaluation_backbone(Path(args.model), _choice(args, dataset))
        workflow.evaluate_step(dataset, Path(args.model), backbone, args.cache, console)
        return 0
    if args.command == "export":
        out = export_model_dir(Path(args.model), check_output_dir(args.out))
        console.print(f"model directory ready: {out} (python -m realtime --model {out})")
        return 0
    if args.command == "all":
        return _all(args, console, workflow)
    raise InputError(f"unknown command {args.command}")  # pragma: no cover - argparse checks


def _from(args) -> Path | None:
    return Path(args.from_file) if args.from_file else None


def _all(args, console: Console, workflow) -> int:
    if args.data and args.from_file:
        raise InputError("--data and --from are alternatives: give one")
    out = check_output_dir(args.out) if args.out else DEFAULT_MODEL_DIR
    recipe = _recipe(args)
    if args.data:
        dataset = workflow.load(args.data)
    else:
        console.rule("download")
        dataset = workflow.load(prepare(Path(args.dest), console, from_file=_from(args)))
    backbone = _choice(args, dataset, recipe).load()
    console.rule("features")
    workflow.features_for_recipe(dataset, backbone, recipe, args.cache, console)
    console.rule("train")
    workflow.train_step(dataset, backbone, recipe, out, args.cache, console)
    console.rule("evaluate")
    workflow.evaluate_step(dataset, out, backbone, args.cache, console)
    console.rule("export")
    check_model_dir(out)
    console.print(f"[bold]done:[/] python -m realtime --model {out} --source VIDEO")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    console = Console()
    return run_reporting_errors(lambda: run(args, console))
