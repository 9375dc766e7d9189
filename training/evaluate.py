"""Test-set evaluation: accuracy, per-class precision and recall, a confusion matrix.

Three protocols, each over the test videos' sampled frames:

- **first window**: each video classified on its first `window` sampled frames, which is what
  the example measures and what `python -m realtime --every-frame` predicts at the frame where
  its window first fills. Accuracy, per-class figures and the confusion matrix use it.
- **any phase**: every full window of each video (stride 1: a live stream enters an action at
  any point); a video's score is the share of its windows classified right, and every video
  counts once, whatever its length (a video shorter than a window gives its one partial
  window).
- **missing frames**: the same with 10 % and 30 % of each video's sampled frames removed at
  random before windowing, as an overloaded machine drops them live (a window then spans
  more time than in training). Seeded per video, so a rerun gives the same figure.

The report is JSON (`evaluation.json` in the model directory), the confusion matrix is also
printed as text and drawn as a PNG (OpenCV, so no plotting library is needed).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.train import one_window, window_starts

REPORT_FILE = "evaluation.json"
CONFUSION_PNG = "confusion_matrix.png"
#: Shares of sampled frames removed at random for the "missing frames" figures.
MISSING_RATES = (0.1, 0.3)
MISSING_SEED = 0


def first_windows(per_video: list[np.ndarray], window: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [one_window(f, 0, window) for f in per_video]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def without_frames(frames: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """`frames` with a random `rate` of them removed (at least one frame is kept)."""
    keep = rng.random(len(frames)) >= rate
    if not keep.any():
        keep[int(rng.integers(len(frames)))] = True
    return frames[keep]


def phase_accuracy(windows, per_video: list[np.ndarray], targets, window: int) -> dict:
    """Any-phase accuracy: per video, the share of its windows classified right; the mean.

    `windows(frames, starts)` returns the class probabilities of the windows of one video's
    sampled frames that start at `starts` (`ActionClassifier.predict_windows`): every full
    window, stride 1, or the one partial window of a video shorter than `window`.
    """
    shares, count = [], 0
    for frames, target in zip(per_video, targets, strict=True):
        starts = window_starts(len(frames), window, 1, len(frames))
        right = np.asarray(windows(frames, starts)).argmax(axis=1) == target
        shares.append(float(right.mean()))
        count += len(starts)
    return {"accuracy": round(float(np.mean(shares)), 4), "windows": count}


def live_protocols(windows, per_video: list[np.ndarray], targets, window: int) -> dict:
    """The any-phase figure, and the same with frames missing (`MISSING_RATES`);
    `windows` as for `phase_accuracy`."""
    phase = phase_accuracy(windows, per_video, targets, window)
    phase["protocol"] = (
        f"every full window (stride 1; {window} sampled frames) of each test video; per video "
        "the share classified right, averaged over videos"
    )
    missing = {}
    for rate in MISSING_RATES:
        thinned = [
            without_frames(frames, rate, np.random.default_rng([MISSING_SEED, v]))
            for v, frames in enumerate(per_video)
        ]
        missing[f"{rate:.0%}"] = phase_accuracy(windows, thinned, targets, window)
        missing[f"{rate:.0%}"]["protocol"] = (
            f"any phase after removing {rate:.0%} of each video's sampled frames at random "
            f"(numpy default_rng([{MISSING_SEED}, video index in the test list]))"
        )
    return {"any_phase": phase, "missing_frames": missing}


def live_summary(report: dict) -> str:
    """The any-phase and missing-frames figures in one line."""
    phase = report["any_phase"]
    missing = ", ".join(
        f"{rate} missing {row['accuracy']:.1%}" for rate, row in report["missing_frames"].items()
    )
    return (
        f"any phase {phase['accuracy']:.1%} ({phase['windows']} windows, stride 1); "
        f"frames missing at random: {missing}"
    )


def confusion_matrix(targets, predictions, n_classes: int) -> np.ndarray:
    matrix = np.zeros((n_classes, n_classes), int)
    for t, p in zip(targets, predictions, strict=True):
        matrix[int(t), int(p)] += 1
    return matrix


def metrics_report(targets, predictions, labels: list[str]) -> dict:
    """Accuracy, per-class precision/recall/support and the confusion matrix (rows: truth)."""
    matrix = confusion_matrix(targets, predictions, len(labels))
    total = int(matrix.sum())
    per_class = {}
    for i, label in enumerate(labels):
        tp = int(matrix[i, i])
        predicted = int(matrix[:, i].sum())
        actual = int(matrix[i, :].sum())
        per_class[label] = {
            "precision": round(tp / predicted, 4) if predicted else None,
            "recall": round(tp / actual, 4) if actual else None,
            "support": actual,
        }
    return {
        "accuracy": round(float(np.trace(matrix)) / total, 4) if total else None,
        "test_videos": total,
        "per_class": per_class,
        "labels": list(labels),
        "confusion_matrix": matrix.tolist(),
    }


def confusion_text(matrix, labels: list[str]) -> str:
    matrix = np.asarray(matrix)
    width = max(6, *(len(label) for label in labels))
    head = " " * (width + 2) + " ".join(f"{label[:width]:>{width}}" for label in labels)
    lines = ["rows: true class, columns: predicted class", head]
    for label, row in zip(labels, matrix, strict=True):
        cells = " ".join(f"{int(v):>{width}}" for v in row)
        lines.append(f"{label:>{width}}  {cells}")
    return "\n".join(lines)


def confusion_png(matrix, labels: list[str], path: str | Path, cell: int = 72) -> Path:
    """Draw the confusion matrix (row-normalised shading, counts in the cells) as a PNG."""
    matrix = np.asarray(matrix)
    n = len(labels)
    margin = 12 + 8 * max(len(label) for label in labels)
    size = (margin + n * cell + 20, margin + n * cell + 40)
    image = np.full((size[1], size[0], 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    shade = matrix / rows
    for i in range(n):
        for j in range(n):
            x, y = margin + j * cell, margin + i * cell
            level = int(255 - 200 * shade[i, j])
            cv2.rectangle(image, (x, y), (x + cell, y + cell), (255, level, level), -1)
            cv2.rectangle(image, (x, y), (x + cell, y + cell), (120, 120, 120), 1)
            colour = (255, 255, 255) if shade[i, j] > 0.6 else (0, 0, 0)
            text = str(int(matrix[i, j]))
            (tw, th), _ = cv2.getTextSize(text, font, 0.6, 1)
            cv2.putText(
                image,
                text,
                (x + (cell - tw) // 2, y + (cell + th) // 2),
                font,
                0.6,
                colour,
                1,
                cv2.LINE_AA,
            )
    for k, label in enumerate(labels):
        cv2.putText(
            image,
            label,
            (4, margin + k * cell + cell // 2 + 4),
            font,
            0.4,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        x = margin + k * cell + 4
        cv2.putText(image, label[:10], (x, margin - 6), font, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(
        image,
        "rows: true, columns: predicted",
        (4, size[1] - 12),
        font,
        0.45,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    path = Path(path)
    if not cv2.imwrite(str(path), image):
        raise OSError(f"cannot write {path}")
    return path
