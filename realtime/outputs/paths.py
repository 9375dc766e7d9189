"""Where a run may write: checked before anything is opened, so no run destroys its inputs.

`check_outputs` refuses, with one `InputError` line, any output path that

- resolves (through symlinks, `..`, or a hard link) to an input of the run: the source video,
  anything inside the model directory, the backbone file, its weights, a calibration video
  (or anything inside a calibration folder), anything inside the backbone cache;
- names the same file as another output of the run (two spellings of one path);
- cannot be written: its folder is missing or not writable (a read-only mount included), it
  is a folder, or (for a recording) its extension is not a container we write.

Other existing files may be overwritten, as the README says. `-` (stdout) is not a path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from realtime.core.errors import InputError

STDOUT = "-"
#: How many files of an input folder are compared by inode (hard links); a folder with more
#: (a huge cache) is still protected by path.
MAX_FILES_COMPARED = 20_000


@dataclass(frozen=True)
class Protected:
    """An input of the run that no output may touch."""

    what: str  # "the source video", "the model directory"...
    path: Path
    tree: bool = False  # a folder: everything inside it is protected too


@dataclass(frozen=True)
class Output:
    """One path the run will write: `flag` names it in messages (`--jsonl`)."""

    flag: str
    path: str


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _tree_inodes(root: Path) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for folder, _dirs, files in os.walk(root):
        for name in files:
            inode = _inode(Path(folder) / name)
            if inode is not None:
                found.add(inode)
            if len(found) >= MAX_FILES_COMPARED:
                return found
    return found


class _Input:
    """A protected input that exists, resolved once; a folder's files are listed (for hard
    links) at most once, and only when an output that already exists is compared with it."""

    def __init__(self, item: Protected):
        self.item = item
        self.target = _resolved(item.path)
        self.folder = item.tree and self.target.is_dir()
        self._inodes: set[tuple[int, int]] | None = None

    def holds(self, target: Path, inode: tuple[int, int] | None) -> bool:
        if not self.folder:
            return target == self.target or (inode is not None and inode == _inode(self.target))
        if target == self.target or self.target in target.parents:
            return True
        if inode is None:
            return False
        if self._inodes is None:
            self._inodes = _tree_inodes(self.target)
        return inode in self._inodes


def _check_writable(output: Output, extensions: Iterable[str] | None) -> None:
    path = Path(output.path)
    if path.is_dir():
        raise InputError(f"{output.flag} {path} is a folder; give a file path")
    folder = path.parent
    if not folder.exists():
        raise InputError(f"{output.flag} {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise InputError(f"{output.flag} {path}: {folder} is not a folder")
    if extensions is not None and path.suffix.lower() not in extensions:
        raise InputError(
            f"{output.flag} {path}: cannot record to {path.suffix or 'a file without extension'}"
            f" (use {', '.join(sorted(extensions))})"
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{output.flag} {path}: the file is not writable")
    if not path.exists() and not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{output.flag} {path}: folder {folder} is not writable")


def check_outputs(
    outputs: Iterable[Output],
    protected: Iterable[Protected],
    video_extensions: Iterable[str] = (),
    video_flags: Iterable[str] = ("--output",),
) -> None:
    """Raise InputError unless every output is writable and touches no input nor another
    output. Nothing is created or opened."""
    inputs = [_Input(item) for item in protected if item.path.exists()]
    video_flags = set(video_flags)
    extensions = {e.lower() for e in video_extensions}
    seen: list[tuple[Output, Path, tuple[int, int] | None]] = []
    for output in outputs:
        if output.path == STDOUT:
            if any(o.path == STDOUT for o, _, _ in seen):
                raise InputError(f"{output.flag} and another output both write to stdout")
            seen.append((output, Path(STDOUT), None))
            continue
        if not output.path.strip():
            raise InputError(f"{output.flag} is empty: give a file path")
        path = Path(output.path)
        target, inode = _resolved(path), _inode(path)
        for held in inputs:
            if held.holds(target, inode):
                item = held.item
                verb = "would write inside" if item.tree else "would overwrite"
                raise InputError(
                    f"{output.flag} {path} {verb} {item.what} ({item.path}); choose another path"
                )
        for other, other_target, other_inode in seen:
            same = other_target == target or (inode is not None and inode == other_inode)
            if other.path != STDOUT and same:
                raise InputError(
                    f"{output.flag} {path} and {other.flag} {other.path} are the same file"
                )
        _check_writable(output, extensions if output.flag in video_flags else None)
        seen.append((output, target, inode))
