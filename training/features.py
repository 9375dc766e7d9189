"""Per-video backbone features, extracted in batches and cached on disk.

`FeatureCache` keeps one `.npz` per video in a folder named after everything the features
depend on: the backbone's identity (`Backbone.cache_identity()`), the image size, the sampling rate
and the preprocessing version. An entry also records the video file's size and modification
time (a changed video is extracted again) and how many sampled frames it holds: an entry made
for 90 frames serves a request for 20, and a video that ended early serves any request. A
cache can also read the entries of wider features that begin with its own (`wider`: the same
backbone with each frame's thumbnail appended, which the default recipe caches): a miss here
is served from them, cut to this backbone's features, which are the same numbers.

`extract_features` decodes each video once (`realtime.frames.video`), sends the sampled frames to
the backbone in batches, and skips (and reports) videos that cannot be read.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from realtime.backbones.base import Backbone
from realtime.frames.video import UnreadableVideo, VideoFacts, sampled_batches

#: Bump when realtime.frames.preprocessing changes what a frame becomes.
PREPROCESSING_VERSION = "crop-centre-square/bilinear/rgb-uint8/v1"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


class FeatureCache:
    """On-disk cache of per-video features for one backbone + preprocessing + sampling."""

    def __init__(
        self,
        root: str | Path,
        backbone_info: dict,
        image_size: int,
        fps: float | None,
        wider: tuple[dict, ...] = (),
    ):
        """`wider`: the cache identities of backbones whose features begin with this one's."""
        self.size = int(backbone_info["feature_size"])
        self.wider = [FeatureCache(root, info, image_size, fps) for info in wider]
        self.key = {
            "backbone": backbone_info,
            "image_size": int(image_size),
            "sampling_fps": fps,
            "preprocessing": PREPROCESSING_VERSION,
        }
        digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:12]
        fps_text = f"{fps:g}fps" if fps else "allframes"
        name = f"{_safe(backbone_info['name'])}-{image_size}px-{fps_text}-{digest}"
        self.folder = Path(root) / name

    def _entry(self, video: Path) -> Path:
        digest = hashlib.sha1(str(Path(video).resolve()).encode()).hexdigest()[:20]
        return self.folder / f"{_safe(Path(video).stem)[:40]}-{digest}.npz"

    def get(self, video: Path, limit: int | None) -> np.ndarray | None:
        """Cached features of `video` (at most `limit` frames), or None on a miss (here and in
        the `wider` caches)."""
        features = self._get(video, limit)
        for wider in self.wider:
            if features is not None:
                break
            features = wider._get(video, limit)
            features = features[:, : self.size] if features is not None else None
        return features

    def _get(self, video: Path, limit: int | None) -> np.ndarray | None:
        entry = self._entry(video)
        try:
            stat = os.stat(video)
            with np.load(entry, allow_pickle=False) as data:
                if int(data["size"]) != stat.st_size or int(data["mtime_ns"]) != stat.st_mtime_ns:
                    return None
                cached_limit = int(data["limit"])  # -1: the whole video
                ended = bool(data["ended"])
                enough = ended or cached_limit < 0 or (limit is not None and cached_limit >= limit)
                if not enough:
                    return None
                features = data["features"]
        except (OSError, KeyError, ValueError):
            return None
        return features if limit is None else features[:limit]

    def put(self, video: Path, features: np.ndarray, limit: int | None, facts: VideoFacts):
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "key.json").write_text(json.dumps(self.key, indent=2) + "\n")
        stat = os.stat(video)
        entry = self._entry(video)
        tmp = entry.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            features=features.astype(np.float32),
            limit=-1 if limit is None else int(limit),
            ended=facts.ended,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            source_fps=facts.source_fps,
            frames_read=facts.frames_read,
        )
        tmp.replace(entry)


@dataclass
class FeatureSet:
    """Features per video path, plus what happened while getting them."""

    features: dict[Path, np.ndarray] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    cache_hits: int = 0
    extracted_videos: int = 0
    extracted_frames: int = 0
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.extracted_frames / self.seconds if self.seconds > 0 else 0.0


def video_features(
    backbone: Backbone,
    path: Path,
    fps: float | None,
    limit: int | None,
    batch_size: int = 32,
) -> tuple[np.ndarray, VideoFacts]:
    """(n_sampled, D) features of one video, decoded once, the backbone called per batch."""
    facts = VideoFacts()
    chunks = [
        backbone.extract(batch)
        for batch in sampled_batches(path, backbone.image_size, fps, limit, batch_size, facts)
    ]
    if not chunks:
        raise UnreadableVideo(f"{path}: no frame was sampled")
    return np.concatenate(chunks), facts


def extract_features(
    videos,
    backbone: Backbone,
    fps: float | None,
    limit: int | None,
    cache: FeatureCache | None,
    console: Console | None = None,
    batch_size: int = 32,
) -> FeatureSet:
    """Features of every video (cached when possible); unreadable videos are skipped."""
    result = FeatureSet()
    paths = list(dict.fromkeys(Path(v.path if hasattr(v, "path") else v) for v in videos))
    console = console or Console(stderr=True)
    columns = (
        TextColumn("[bold]features[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("videos {task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("features", total=len(paths), rate="")
        for path in paths:
            cached = cache.get(path, limit) if cache is not None else None
            if cached is not None:
                result.features[path] = cached
                result.cache_hits += 1
            else:
                start = time.perf_counter()
                try:
                    features, facts = video_features(backbone, path, fps, limit, batch_size)
                except UnreadableVideo as exc:
                    result.skipped.append((path, str(exc)))
                    progress.advance(task)
                    continue
                result.seconds += time.perf_counter() - start
                result.extracted_videos += 1
                result.extracted_frames += len(features)
                result.features[path] = features
                if cache is not None:
                    cache.put(path, features, limit, facts)
            rate = f"({result.frames_per_second:.1f} frames/s)" if result.seconds else ""
            progress.update(task, advance=1, rate=rate)
    return result


def report_skipped(result: FeatureSet, console: Console) -> None:
    """List the videos that were skipped (at the end of a run, so the list is not missed)."""
    if not result.skipped:
        return
    console.print(f"[yellow]skipped {len(result.skipped)} unreadable video(s):[/]")
    for path, reason in result.skipped:
        console.print(f"  {path}: {reason}", highlight=False, markup=False)
