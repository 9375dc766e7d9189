"""Test-set evaluation: accuracy, per-class precision and recall, a confusion matrix.

Each test video is classified on its first window (the first `window` sampled frames), which
is what the example measures and what `python -m realtime --every-frame` predicts at the
frame where its window first fills. The report is JSON (`evaluation.json` in the model
directory), the confusion matrix is also printed as text and drawn as a PNG (OpenCV, so no
plotting library is needed).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from training.train import one_window

REPORT_FILE = "evaluation.json"
CONFUSION_PNG = "confusion_matrix.png"


def first_windows(per_video: list[np.ndarray], window: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [one_window(f, 0, window) for f in per_video]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


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
