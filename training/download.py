"""Downloading, checking and safely extracting the UCF101 top-5 archive.

    fetch (resumable, progress bar) -> verify (reads completely, holds train.csv, test.csv and
    every video they list; sha256) -> extract to a temporary folder -> move into place

- Resume: `realtime.core.download.fetch` (shared with the backbone weights download) writes
  `<archive>.part` and continues a cut transfer with an HTTP `Range` request.
- Safe extraction: members with absolute paths or `..`, links pointing outside the
  destination, and device files are refused before anything is written; extraction goes
  to a temporary folder beside the destination and is renamed into place only when it is
  complete, so a bad archive leaves nothing half-extracted.
- `dataset.json` beside the data records the archive's name, size, sha256 and URL; training
  copies it into the model's metadata.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rich.console import Console

from realtime.backbones.base import file_digest
from realtime.core.download import fetch
from realtime.core.errors import InputError
from training.dataset import DATASET_INFO_FILE

UCF101_TOP5_URL = (
    "https://github.com/sayakpaul/Action-Recognition-in-TensorFlow/releases/download/"
    "v1.0.0/ucf101_top5.tar.gz"
)
ARCHIVE_NAME = "ucf101_top5.tar.gz"
DATA_NAME = "ucf101_top5"


@dataclass
class ArchiveInfo:
    path: Path
    size: int
    sha256: str
    url: str | None

    def as_dict(self) -> dict:
        return {
            "file": self.path.name,
            "size": self.size,
            "sha256": self.sha256,
            "url": self.url,
        }


def _check_member(member: tarfile.TarInfo) -> PurePosixPath:
    """The member's relative path, or InputError if extracting it could escape."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or member.name.startswith(("/", "\\")):
        raise InputError(f"unsafe archive: member {member.name!r} would escape the destination")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        resolved = target if member.islnk() else name.parent / target
        if target.is_absolute() or ".." in PurePosixPath(os.path.normpath(resolved)).parts:
            raise InputError(
                f"unsafe archive: link {member.name!r} -> {member.linkname!r} points outside"
            )
    if member.isdev() or member.isfifo():
        raise InputError(f"unsafe archive: {member.name!r} is a device or pipe")
    return name


def verify_archive(archive: Path) -> list[tarfile.TarInfo]:
    """Read the whole archive; check members are safe and the data set is complete."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = []
            files: dict[str, tarfile.TarInfo] = {}
            csvs: dict[str, bytes] = {}
            for member in tar:  # reads every header, i.e. the whole stream
                name = _check_member(member)
                members.append(member)
                if member.isfile():
                    files[str(name)] = member
                    handle = tar.extractfile(member)
                    data = handle.read() if handle else b""  # decompress every byte
                    if name.name in ("train.csv", "test.csv"):
                        csvs[str(name)] = data
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InputError(f"{archive} is corrupt or not a tar archive ({exc})") from None
    for split in ("train", "test"):
        found = [k for k in csvs if PurePosixPath(k).name == f"{split}.csv"]
        if len(found) != 1:
            raise InputError(f"{archive} does not hold exactly one {split}.csv")
        base = PurePosixPath(found[0]).parent
        rows = list(csv.DictReader(io.StringIO(csvs[found[0]].decode("utf-8", "replace"))))
        if not rows or "video_name" not in rows[0]:
            raise InputError(f"{archive}: {found[0]} has no video_name column or no rows")
        missing = [
            r["video_name"] for r in rows if str(base / split / r["video_name"]) not in files
        ]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise InputError(f"{archive} is incomplete: {split}/{missing[0]}{more} missing")
    return members


def extract_archive(archive: Path, dest: Path, members: list[tarfile.TarInfo]) -> None:
    """Extract into a temporary folder beside `dest`, then rename it to `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, members=members, filter="data")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.replace(dest)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, (tarfile.TarError, OSError, EOFError)):
            raise InputError(f"cannot extract {archive}: {exc}") from None
        raise


def prepare(
    dest: Path,
    console: Console,
    url: str = UCF101_TOP5_URL,
    from_file: Path | None = None,
) -> Path:
    """Download (or take `from_file`), verify, extract; returns the data folder."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise InputError(f"--dest must be a folder, not a file: {dest}")
    data_dir = dest / DATA_NAME
    if from_file is not None:
        archive = Path(from_file)
        if not archive.is_file():
            raise InputError(f"archive not found: {archive}")
        source_url = None
    else:
        archive = dest / ARCHIVE_NAME
        source_url = url
        if not archive.is_file():
            fetch(
                url,
                archive,
                console,
                offline_hint="download the archive elsewhere and pass --from FILE",
            )
    console.print(f"checking {archive} ...")
    try:
        members = verify_archive(archive)
    except InputError:
        if from_file is None:  # our own download is bad: drop it so a rerun fetches again
            archive.unlink(missing_ok=True)
        raise
    info = ArchiveInfo(archive, archive.stat().st_size, file_digest(archive), source_url)
    recorded = data_dir / DATASET_INFO_FILE
    if recorded.is_file():
        try:
            if json.loads(recorded.read_text()).get("sha256") == info.sha256:
                console.print(f"{data_dir} is already extracted from this archive")
                return data_dir
        except ValueError:
            pass
    extract_archive(archive, data_dir, members)
    (data_dir / DATASET_INFO_FILE).write_text(json.dumps(info.as_dict(), indent=2) + "\n")
    console.print(
        f"extracted {len(members)} entries to {data_dir} "
        f"({info.size} bytes, sha256 {info.sha256[:16]}...)"
    )
    return data_dir
