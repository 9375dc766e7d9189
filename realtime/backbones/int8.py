"""int8 InceptionV3: calibration frames, NNCF post-training quantization, agreement with fp32.

The `openvino-int8` backend (`realtime.backbones.conversion`) is never chosen by
`--backend auto`: int8 changes the features by a few percent, and how much depends on the
weights and on the frames it was calibrated on. So it is made only on request, from frames
the user names with `--calibration VIDEO|DIR` (training: the dataset's training videos by
default), and every time it is loaded it reports how closely it agrees with the fp32 Keras
reference on frames held out from calibration.

- `CalibrationSet.from_videos` samples up to `MAX_FRAMES` frames spread evenly over the given
  videos (preprocessed exactly as the live path does), keeps every `HOLDOUT_EVERY`-th one out
  of calibration for the agreement check, and names the set by a digest of its pixels: the
  int8 model is cached per weights *and* calibration set.
- `quantize_openvino` runs NNCF's post-training quantization on the fp32 OpenVINO model.
- `head_agreement` / `held_out_head_agreement` measure how often a head's top-1 prediction
  is unchanged on int8 features (the relative feature error is measured by the backend check).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realtime.backbones.base import HELD_OUT_FILE
from realtime.backbones.motion import unwrapped
from realtime.core.errors import InputError
from realtime.frames.video import VIDEO_EXTENSIONS, UnreadableVideo, evenly_spaced_frames

#: Frames sampled for calibration + the held-out check (NNCF's default subset is 300).
MAX_FRAMES = 400
#: Every HOLDOUT_EVERY-th sampled frame is kept out of calibration to measure agreement.
HOLDOUT_EVERY = 4
#: Fewest frames to calibrate on (plus at least one held out).
MIN_CALIBRATION_FRAMES = 8


def calibration_videos(paths) -> list[Path]:
    """The video files that `--calibration` names: files as given, folders searched for videos."""
    videos: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
            )
            if not found:
                raise InputError(f"--calibration {path}: no video files in this folder")
            videos.extend(found)
        elif path.is_file():
            videos.append(path)
        else:
            raise InputError(f"--calibration {path}: no such file or folder")
    return list(dict.fromkeys(videos))


@dataclass
class CalibrationSet:
    """Frames to calibrate int8 on (`frames`) and frames held out to check it (`held_out`)."""

    frames: np.ndarray
    held_out: np.ndarray
    held_out_video: np.ndarray  # which video each held-out frame came from (index into videos)
    videos: list[str]
    digest: str

    @classmethod
    def from_videos(
        cls, paths, image_size: int = 224, max_frames: int = MAX_FRAMES
    ) -> CalibrationSet:
        videos = calibration_videos(paths)
        if not videos:
            raise InputError("--calibration names no video")
        most = max(1, max_frames // HOLDOUT_EVERY)
        if len(videos) > most:  # a spread of videos (data sets list theirs class by class)
            videos = [videos[i] for i in np.linspace(0, len(videos) - 1, most).round().astype(int)]
        per_video = max(HOLDOUT_EVERY, -(-max_frames // len(videos)))
        calibrate, held, held_video, used = [], [], [], []
        digest = hashlib.sha256(f"{image_size}".encode())
        for path in videos:
            try:
                frames = evenly_spaced_frames(path, per_video, image_size)
            except UnreadableVideo:
                continue
            if not frames:
                continue
            number = len(used)
            used.append(str(path))
            for i, frame in enumerate(frames):
                digest.update(frame.tobytes())
                if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1:
                    held.append(frame)
                    held_video.append(number)
                else:
                    calibrate.append(frame)
            if len(calibrate) + len(held) >= max_frames:
                break
        if len(held) < 1 or len(calibrate) < MIN_CALIBRATION_FRAMES:
            raise InputError(
                f"--calibration: only {len(calibrate) + len(held)} frame(s) could be read "
                f"from {len(videos)} video(s); int8 calibration needs at least "
                f"{MIN_CALIBRATION_FRAMES + 1}"
            )
        return cls(
            frames=np.stack(calibrate),
            held_out=np.stack(held),
            held_out_video=np.array(held_video, np.int32),
            videos=used,
            digest=digest.hexdigest()[:12],
        )

    def describe(self) -> dict:
        return {
            "digest": self.digest,
            "frames": len(self.frames),
            "held_out": len(self.held_out),
            "videos": [os.path.basename(v) for v in self.videos],
        }


def nncf_availability() -> str | None:
    try:
        import nncf  # noqa: F401
    except ImportError:
        return "NNCF is not installed (pip install 'realtime-action[int8]')"
    return None


def quantize_openvino(model, frames: np.ndarray):
    """NNCF post-training int8 quantization of an OpenVINO model on (N, S, S, 3) uint8 frames.

    The model takes one frame at a time; the result still reshapes to any batch size. NNCF's
    own progress bars would go to stdout (where --jsonl - writes): they are discarded, the
    caller shows the step in its own progress display.
    """
    import nncf

    nncf.set_log_level(logging.ERROR)
    dataset = nncf.Dataset([frame[None] for frame in frames])
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        return nncf.quantize(
            model,
            dataset,
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(frames),
        )


def head_agreement(classifier, features: np.ndarray, reference: np.ndarray, groups) -> float:
    """Share of streamed predictions whose top-1 is the same on `features` as on `reference`.

    Frames are streamed through `classifier` (an `ActionClassifier`) one group (video) at a
    time, each from an empty window, so partial windows are compared too.
    """
    same, total = 0, 0
    groups = np.asarray(groups)
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        ours, theirs = classifier.stream(), classifier.stream()
        for row in rows:
            a = int(np.argmax(ours.push(features[row])))
            b = int(np.argmax(theirs.push(reference[row])))
            same += a == b
            total += 1
    return same / total if total else float("nan")


def held_out_thumbnails(size: int) -> str:
    """The name, in `HELD_OUT_FILE`, of the held-out frames' `size` x `size` thumbnails."""
    return f"thumbnails_{size}"


def held_out_head_agreement(
    folder: str | os.PathLike, classifier, motion: int | None = None
) -> tuple[float, int]:
    """(top-1 agreement, frames) of `classifier` on the int8 model in `folder`: its stored
    int8 and fp32 features of the frames held out from calibration (each followed by the
    frame's stored `motion` x `motion` thumbnail, the same on both sides, for a head that
    reads them; KeyError if none were stored)."""
    with np.load(Path(folder) / HELD_OUT_FILE, allow_pickle=False) as held:
        int8, fp32 = held["int8"], held["fp32"]
        if motion:
            thumbs = held[held_out_thumbnails(motion)]
            int8, fp32 = (np.concatenate([f, thumbs], axis=1) for f in (int8, fp32))
        share = head_agreement(classifier, int8, fp32, held["video"])
        return share, len(held["video"])


def int8_head_report(backbone, classifier) -> str | None:
    """For an int8 backbone (thumbnails appended or not): one line on how often
    `classifier`'s top-1 is what it is on fp32 features, over the frames held out from
    calibration. None for any other backbone, or held-out frames stored without the
    thumbnails the head reads (an int8 model made before they were stored)."""
    inner = unwrapped(backbone)  # `WithMotion`: the backbone it wraps
    if not getattr(inner, "quantized", None):
        return None
    try:
        share, frames = held_out_head_agreement(
            inner.folder, classifier, getattr(backbone, "motion", None)
        )
    except (OSError, KeyError, ValueError):
        return None
    return (
        f"int8: this model's top-1 is the same as on fp32 features for {share:.1%} "
        f"of {frames} held-out frames"
    )
