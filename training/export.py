"""Writing and checking the model directory `python -m realtime --model DIR` reads.

The directory is written with `realtime.head.modeldir.save_model_dir` (head weights +
metadata.json).
A model trained on a LiteRT backbone also carries the `.tflite` file under its own name, where
`realtime.backbones.backbone_spec_from_metadata` looks for it, so the directory is
self-contained. `check_model_dir` loads it the way the runtime does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from realtime.backbones import backbone_spec_from_metadata
from realtime.backbones.base import Backbone, file_digest
from realtime.backbones.litert import LiteRTBackbone
from realtime.backbones.motion import unwrapped
from realtime.core.errors import InputError
from realtime.head.classifier import ActionClassifier
from realtime.head.modeldir import (
    KERAS_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    ModelInfo,
    read_model_info,
    save_model_dir,
)
from training.evaluate import CONFUSION_PNG, REPORT_FILE


def check_output_dir(out: Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out must be a folder, not a file: {out}")
    return out


def write_model_dir(out: Path, head, info: ModelInfo, backbone: Backbone) -> Path:
    out = check_output_dir(out)
    save_model_dir(out, head, info)
    backbone = unwrapped(backbone)  # the one that computes the features: its file
    if isinstance(backbone, LiteRTBackbone):
        target = out / backbone.path.name
        if not target.exists() or file_digest(target) != backbone.sha256:
            shutil.copyfile(backbone.path, target)
    return out


def check_model_dir(model_dir: Path) -> ModelInfo:
    """Load the directory as `realtime` does (metadata, backbone file, head weights)."""
    info = read_model_info(model_dir)
    spec = backbone_spec_from_metadata(info.backbone, Path(model_dir))
    if spec.endswith(".tflite"):
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"{model_dir} lacks its backbone file {path.name}")
        expected = info.backbone.sha256
        if expected and file_digest(path) != expected:
            raise InputError(f"{path} is not the backbone the model was trained with")
    ActionClassifier(model_dir, info)
    return info


def export_model_dir(model_dir: Path, out: Path) -> Path:
    """Check `model_dir` loads in realtime, then copy what the runtime needs to `out`."""
    model_dir, out = Path(model_dir), check_output_dir(out)
    info = check_model_dir(model_dir)
    if out.resolve() == model_dir.resolve():
        return out
    out.mkdir(parents=True, exist_ok=True)
    names = [WEIGHTS_FILE, KERAS_FILE, METADATA_FILE, REPORT_FILE, CONFUSION_PNG]
    spec = backbone_spec_from_metadata(info.backbone, model_dir)
    if spec.endswith(".tflite"):
        names.append(Path(spec).name)
    for name in names:
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, out / name)
    return out
