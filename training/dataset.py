"""Finding the labelled videos of a data set, in either accepted layout.

- The Keras example's layout: `train.csv` and `test.csv` (columns `video_name,tag`), videos
  in `train/` and `test/` (UCF101 top-5 as published with the example).
- One folder per class: `DIR/<class>/*.avi`, split deterministically (per class, a fixed
  fraction of the videos, the ones whose file-name hashes rank first: independent of listing
  order and machine, and adding a video moves at most one other across the split); or a
  given split, `DIR/train/<class>/` and `DIR/test/<class>/`.

Labels are the sorted class names of the training split (as the example's StringLookup).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from realtime.core.errors import InputError
from realtime.frames.video import VIDEO_EXTENSIONS
from realtime.head.metadata import MetadataError, text

#: Written by `training download` beside the extracted data (archive size, sha256, url).
DATASET_INFO_FILE = "dataset.json"

#: UCF101's file names, `v_<Class>_g<group>_c<clip>`: the clips of one group are cut from
#: one longer video (same actor, background and viewpoint; UCF101's own splits keep a group
#: on one side)
UCF101_NAME = re.compile(r"^v_(?P<action>.+)_g(?P<group>\d+)_c\d+$")


@dataclass(frozen=True)
class Video:
    path: Path
    label: str
    split: str  # "train" or "test"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def group(self) -> str:
        """The videos that must stay on one side wherever some are held out (the hash split,
        validation, the motion scores' calibration): UCF101's group for its file names
        (`ApplyEyeMakeup_g08`: clips of one recording), the video alone otherwise."""
        return recording(self.path) or str(self.path)


def recording(path: Path) -> str | None:
    """UCF101's group of a file named `v_<Class>_g<group>_c<clip>.*` (`<Class>_g<group>`,
    the group two digits), None for any other name."""
    found = UCF101_NAME.match(path.stem)
    return f"{found['action']}_g{int(found['group']):02d}" if found else None


@dataclass
class Dataset:
    root: Path
    layout: str  # "csv", "folders (given split)", "folders (hash split)"
    videos: list[Video]
    labels: list[str]
    archive: dict = field(default_factory=dict)  # from dataset.json, when downloaded

    def split(self, name: str) -> list[Video]:
        return [v for v in self.videos if v.split == name]

    def describe(self) -> dict:
        info = {
            "root": str(self.root),
            "layout": self.layout,
            "train_videos": len(self.split("train")),
            "test_videos": len(self.split("test")),
        }
        if self.archive:
            info["archive"] = self.archive
        return info


def _read_csv(path: Path, folder: Path, split: str) -> list[Video]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # a BOM is fine
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"video_name", "tag"} <= set(reader.fieldnames):
                raise InputError(f"{path} must have the columns video_name,tag")
            rows = [(r["video_name"], r["tag"]) for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    videos = []
    for name, tag in rows:
        if not name or not tag:
            raise InputError(f"{path} has a row without video_name or tag")
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise InputError(f"{path} lists {name!r}, which is outside {folder}")
        videos.append(Video(folder / relative, tag.strip(), split))
    return videos


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
        )
        if files:
            classes[sub.name] = files
    return classes


def _hash_split(files: list[Path], test_fraction: float) -> tuple[list[Path], list[Path]]:
    """(train, test) of one class's files: the files of the groups whose names' hashes rank
    first, until `test_fraction` of the files (at least one) are in the test split, never
    every group. A group is UCF101's recording (`recording`), else a file alone (ranked by
    its name): clips of one recording are never on both sides."""
    groups: dict[str, list[Path]] = {}
    for path in files:
        groups.setdefault(recording(path) or path.name, []).append(path)
    ranked = sorted(groups, key=lambda key: hashlib.sha1(key.encode()).hexdigest())
    n_test = max(round(len(files) * test_fraction), 1)
    test: set[Path] = set()
    for key in ranked[: len(groups) - 1]:  # one group at least left to train on
        if len(test) >= n_test:
            break
        test.update(groups[key])
    return [p for p in files if p not in test], [p for p in files if p in test]


def find_data_root(root: Path) -> Path:
    """`root`, or its single subfolder holding train.csv (archives that add a top folder)."""
    if (root / "train.csv").is_file():
        return root
    subs = [p for p in root.iterdir() if p.is_dir() and (p / "train.csv").is_file()]
    return subs[0] if len(subs) == 1 else root


def load_dataset(root: str | Path, test_fraction: float = 0.25) -> Dataset:
    """The videos and labels under `root`, or InputError saying what is wrong with it."""
    root = Path(root)
    if not root.exists():
        raise InputError(f"data folder not found: {root}")
    if not root.is_dir():
        raise InputError(f"--data must be a folder, not a file: {root}")
    archive = {}
    if (root / DATASET_INFO_FILE).is_file():
        try:
            archive = json.loads((root / DATASET_INFO_FILE).read_text())
        except ValueError:
            archive = {}
    base = find_data_root(root)
    if (base / "train.csv").is_file():
        if not (base / "test.csv").is_file():
            raise InputError(f"{base} has train.csv but no test.csv")
        videos = _read_csv(base / "train.csv", base / "train", "train")
        videos += _read_csv(base / "test.csv", base / "test", "test")
        layout = "csv"
    elif (root / "train").is_dir() and (root / "test").is_dir():
        videos = []
        for split in ("train", "test"):
            for label, files in _class_folders(root / split).items():
                videos += [Video(p, label, split) for p in files]
        layout = "folders (given split)"
    else:
        videos = []
        for label, files in _class_folders(root).items():
            train, test = _hash_split(files, test_fraction)
            videos += [Video(p, label, "train") for p in train]
            videos += [Video(p, label, "test") for p in test]
        layout = "folders (hash split)"
    labels = sorted({v.label for v in videos if v.split == "train"})
    for label in labels:  # the runtime refuses such names in metadata.json: refuse them here
        try:
            text(label, "a class name")
        except MetadataError as exc:
            raise InputError(f"{root}: {exc}") from None
    if not labels:
        raise InputError(
            f"no training videos found in {root}: expected train.csv/test.csv with train/ and "
            "test/, or one folder of videos per class"
        )
    if len(labels) < 2:
        raise InputError(f"{root} has only one class ({labels[0]}); a classifier needs two")
    unknown = sorted({v.label for v in videos if v.split == "test"} - set(labels))
    if unknown:
        raise InputError(f"test videos have classes absent from training: {', '.join(unknown)}")
    return Dataset(base, layout, videos, labels, archive)
