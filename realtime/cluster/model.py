"""The model the head ships to the workers: the model directory as one compressed archive, kept
in Ray's key-value store, which a worker reads before it joins (`realtime.cluster.commands`)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from realtime.core.errors import InputError

#: A model directory is a few megabytes (the head's weights; the backbone is the worker's own).
MAX_MODEL_BYTES = 256 * 1024 * 1024


def pack_model(model_dir: Path) -> bytes:
    """Every regular file of `model_dir` (relative names, no links), gzip-compressed."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.is_symlink())
    size = sum(p.stat().st_size for p in files)
    if size > MAX_MODEL_BYTES:
        raise InputError(
            f"{model_dir} holds {size / 2**20:.0f} MiB; the cluster ships at most "
            f"{MAX_MODEL_BYTES // 2**20} MiB (a model directory is the head's files only)"
        )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in files:
            archive.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    return buffer.getvalue()


def unpack_model(blob: bytes, destination: Path) -> Path:
    """The archive's files under `destination` (which must be empty); members that would land
    outside it, links and devices are refused (`tarfile`'s data filter)."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as archive:
        archive.extractall(destination, filter="data")
    return destination
