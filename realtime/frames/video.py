"""Reading a training video exactly as `realtime` reads a video file.

One decode pass per video: frames come from `realtime.frames.sources.open_source` (the runtime's
own reader), each frame's time on the source clock is `VideoSource.frame_time` (as in
`realtime.stream.capture.CaptureThread`), `realtime.frames.clock.SamplingClock` decides which
frames enter the model, and only those are preprocessed with
`realtime.frames.preprocessing.preprocess_frame`.
Reading stops as soon as `limit` frames have been sampled, so a video is never decoded past
what training needs. `evenly_spaced_frames` reads frames spread over a whole video the same
way (int8 calibration).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.core.errors import InputError
from realtime.frames.clock import SamplingClock
from realtime.frames.preprocessing import preprocess_frame
from realtime.frames.sources import SourceKind, SourceSpec, open_source

#: What a folder of videos is searched for (training data, --calibration folders).
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


class UnreadableVideo(Exception):
    """A video that cannot be opened or decoded; the message says why (one line)."""


@dataclass
class VideoFacts:
    """What reading one video found out."""

    source_fps: float = 0.0
    frames_read: int = 0
    frames_sampled: int = 0
    ended: bool = False  # the video ended before `limit` frames were sampled


def sampled_batches(
    path: str | Path,
    image_size: int,
    fps: float | None,
    limit: int | None = None,
    batch_size: int = 32,
    facts: VideoFacts | None = None,
) -> Iterator[np.ndarray]:
    """Yield (n, S, S, 3) uint8 RGB batches of the sampled, preprocessed frames of one video.

    `fps` is the model's sampling rate (None: every frame). `facts`, if given, is filled in
    as reading goes. Raises `UnreadableVideo` if the file cannot be opened or has no frame.
    """
    facts = facts if facts is not None else VideoFacts()
    try:
        source = open_source(SourceSpec(SourceKind.FILE, str(path)))
    except InputError as exc:
        raise UnreadableVideo(str(exc)) from None
    clock = SamplingClock(fps)
    facts.source_fps = source.fps
    batch: list[np.ndarray] = []
    try:
        while limit is None or facts.frames_sampled < limit:
            frame = source.read()
            if frame is None:
                facts.ended = True
                break
            index = facts.frames_read
            facts.frames_read += 1
            if not clock.admit(source.frame_time(index)):
                continue
            batch.append(preprocess_frame(frame, image_size))
            facts.frames_sampled += 1
            if len(batch) == batch_size:
                yield np.stack(batch)
                batch = []
    finally:
        source.release()
    if batch:
        yield np.stack(batch)


def sampled_frames(path, image_size: int, fps: float | None, limit: int | None = None):
    """All sampled frames of a video as one array (tests and small tools)."""
    batches = list(sampled_batches(path, image_size, fps, limit))
    if not batches:
        return np.zeros((0, image_size, image_size, 3), np.uint8)
    return np.concatenate(batches)


def evenly_spaced_frames(path: str | Path, count: int, image_size: int) -> list[np.ndarray]:
    """Up to `count` preprocessed frames spread over the whole of one video (every
    frame_count // count-th frame; every frame where the container does not say how many)."""
    try:
        source = open_source(SourceSpec(SourceKind.FILE, str(path)))
    except InputError as exc:
        raise UnreadableVideo(str(exc)) from None
    try:
        step = max(1, source.frame_count // count) if source.frame_count > 0 else 1
        frames: list[np.ndarray] = []
        index = 0
        while len(frames) < count:
            frame = source.read()
            if frame is None:
                break
            if index % step == 0:
                frames.append(preprocess_frame(frame, image_size))
            index += 1
        return frames
    finally:
        source.release()
